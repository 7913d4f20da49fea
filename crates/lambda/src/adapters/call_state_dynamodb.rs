//! `STREAM_GATE_CALL_STATE=dynamodb`: the call-state store on one DynamoDB table (on-demand,
//! partition key `pk` of type S, TTL attribute `ttl`).
//!
//! Items: `conn#{connectionId}` (a connection's verified start: its account, call, and its
//! `stream` for Media Streams or its `session` for ConversationRelay), `claim#{account}#{call}#{exp}`
//! (the connection a call token opened) and `issued#{account}#{call}` (the token expiry the voice
//! webhook answered for a call: never overwritten, its TTL the webhook's retention,
//! `STREAM_GATE_ISSUED_RETENTION_DAYS`). TTL only cleans up: DynamoDB deletes expired items within
//! days and still returns them until then, so every read and every condition that depends on an
//! expiry checks it itself — and an `issued#` item is answered for as long as it exists.
//!
//! Calls and what IAM checks (crate::iam): a start is one `TransactWriteItems` of two conditional
//! puts (`dynamodb:PutItem`), a read is `GetItem` with `ConsistentRead`, `$disconnect` is one
//! `DeleteItem`, the webhook one conditional `PutItem` (plus a `GetItem` when the call was seen),
//! and for a ConversationRelay session's end one conditional `UpdateItem` of the call's `issued#`
//! item (its `ended` attribute; plus a `GetItem` when the condition fails).

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{AttributeValue, CancellationReason, Put, TransactWriteItem};
use aws_sdk_dynamodb::Client;
use futures_util::future::BoxFuture;

use super::call_state_store::{
    CallStateStore, SessionEndMark, StartClaim, StoreError, CLAIM_MARGIN_SECS,
};
use super::sdk::{LazyClient, LazySdk};
use super::sdk_error::sdk_error_code;
use crate::domain::call_state::{CallLeg, CallTokenId, StartedCall};
use crate::domain::{AccountSid, CallSid, SessionSid, StreamSid};

/// The store on `table`.
pub struct DynamoDbStore {
    client: LazyClient<Client>,
    table: String,
}

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_owned())
}

fn n(v: u64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn connection_key(connection_id: &str) -> AttributeValue {
    s(&format!("conn#{connection_id}"))
}

fn claim_key(t: &CallTokenId) -> AttributeValue {
    s(&format!(
        "claim#{}#{}#{}",
        t.account_sid, t.call_sid, t.expires_at
    ))
}

fn issued_key(account: &AccountSid, call: &CallSid) -> AttributeValue {
    s(&format!("issued#{account}#{call}"))
}

fn is_condition_failure<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> bool {
    matches!(e, SdkError::ServiceError(se) if se.err().code() == Some("ConditionalCheckFailedException"))
}

/// Which rule a cancelled start transaction (item 0: the connection's start, item 1: the token's
/// claim) ran into, from DynamoDB's per-item cancellation reasons; `None` when no item names one.
///
/// `ConditionalCheckFailed` is a rule that held: the item exists. `TransactionConflict` is a rule
/// being decided at this instant: another request is writing that very item (two starts racing
/// for one connection, or two connections for one token), and whichever wins, this start loses.
/// Both close the loser with the rule's reason, not as an unavailable store: a race is not an
/// outage. A settled failure is looked for first; the connection's item before the token's.
fn claim_from_reasons(reasons: &[CancellationReason]) -> Option<StartClaim> {
    let code = |i: usize| reasons.get(i).and_then(|r| r.code());
    let claim = |i: usize| match i {
        0 => StartClaim::StartRepeated,
        _ => StartClaim::CallTokenReused,
    };
    ["ConditionalCheckFailed", "TransactionConflict"]
        .iter()
        .find_map(|wanted| (0..2).find(|&i| code(i) == Some(*wanted)).map(claim))
}

fn read_stream(item: &HashMap<String, AttributeValue>, now: u64) -> Option<StartedCall> {
    let text = |k: &str| item.get(k).and_then(|v| v.as_s().ok());
    let number = |k: &str| {
        item.get(k)
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse::<u64>().ok())
    };
    // A connection's item names its stream (Media Streams) or its session (ConversationRelay),
    // never both: an item with both, or neither, is no start.
    let leg = match (text("stream"), text("session")) {
        (Some(stream), None) => CallLeg::Stream(StreamSid::parse(stream).ok()?),
        (None, Some(session)) => CallLeg::Session(SessionSid::parse(session).ok()?),
        _ => return None,
    };
    let stream = StartedCall {
        account_sid: AccountSid::parse(text("account")?).ok()?,
        call_sid: CallSid::parse(text("call")?).ok()?,
        leg,
        expires_at: number("expiresAt")?,
    };
    stream.is_live(now).then_some(stream)
}

impl DynamoDbStore {
    /// A store on `table`, with bounded timeouts and no SDK retries (a start that cannot be
    /// recorded closes the connection; media frames must not wait).
    pub fn new(sdk: impl Into<LazySdk>, table: impl Into<String>) -> Self {
        Self {
            client: LazyClient::new(sdk.into(), Self::make_client),
            table: table.into(),
        }
    }

    fn make_client(sdk: &aws_config::SdkConfig) -> Client {
        let conf = aws_sdk_dynamodb::config::Builder::from(sdk)
            .timeout_config(
                aws_config::timeout::TimeoutConfig::builder()
                    .operation_attempt_timeout(Duration::from_millis(800))
                    .operation_timeout(Duration::from_millis(1500))
                    .build(),
            )
            .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(2))
            .build();
        Client::from_conf(conf)
    }

    /// A store on `table` with a client of the caller's (tests point it at an emulator).
    pub fn with_client(client: Client, table: impl Into<String>) -> Self {
        Self {
            client: LazyClient::ready(client),
            table: table.into(),
        }
    }

    fn put_connection(
        &self,
        connection_id: &str,
        st: &StartedCall,
        now: u64,
    ) -> Result<Put, StoreError> {
        let (leg_attribute, leg_sid) = match &st.leg {
            CallLeg::Stream(s) => ("stream", s.as_str()),
            CallLeg::Session(s) => ("session", s.as_str()),
        };
        Put::builder()
            .table_name(&self.table)
            .item("pk", connection_key(connection_id))
            .item("account", s(st.account_sid.as_str()))
            .item("call", s(st.call_sid.as_str()))
            .item(leg_attribute, s(leg_sid))
            .item("expiresAt", n(st.expires_at))
            .item("ttl", n(st.expires_at))
            // A live start on this connection wins; an expired one may be replaced.
            .condition_expression("attribute_not_exists(pk) OR expiresAt < :now")
            .expression_attribute_values(":now", n(now))
            .build()
            .map_err(|_| StoreError::new("request_invalid"))
    }

    fn put_claim(&self, connection_id: &str, t: &CallTokenId) -> Result<Put, StoreError> {
        Put::builder()
            .table_name(&self.table)
            .item("pk", claim_key(t))
            .item("connectionId", s(connection_id))
            .item("ttl", n(t.expires_at.saturating_add(CLAIM_MARGIN_SECS)))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(|_| StoreError::new("request_invalid"))
    }

    async fn get(
        &self,
        key: AttributeValue,
    ) -> Result<Option<HashMap<String, AttributeValue>>, StoreError> {
        self.client
            .get()
            .await
            .get_item()
            .table_name(&self.table)
            .key("pk", key)
            .consistent_read(true)
            .send()
            .await
            .map(|o| o.item)
            .map_err(|e| StoreError::new(sdk_error_code(&e)))
    }

    async fn record(
        &self,
        connection_id: &str,
        stream: &StartedCall,
        token: Option<&CallTokenId>,
        now: u64,
    ) -> Result<StartClaim, StoreError> {
        let mut items = vec![TransactWriteItem::builder()
            .put(self.put_connection(connection_id, stream, now)?)
            .build()];
        if let Some(t) = token {
            items.push(
                TransactWriteItem::builder()
                    .put(self.put_claim(connection_id, t)?)
                    .build(),
            );
        }
        match self
            .client
            .get()
            .await
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
        {
            Ok(_) => Ok(StartClaim::Recorded),
            Err(e) => {
                let cancelled = e
                    .as_service_error()
                    .and_then(|se| match se {
                        aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(c) => {
                            Some(c.cancellation_reasons().to_vec())
                        }
                        _ => None,
                    });
                let Some(reasons) = cancelled else {
                    return Err(StoreError::new(sdk_error_code(&e)));
                };
                if let Some(claim) = claim_from_reasons(&reasons) {
                    Ok(claim)
                } else if reasons.is_empty() {
                    // No per-item reasons: ask the store which rule held.
                    match self.get(connection_key(connection_id)).await? {
                        Some(item) if read_stream(&item, now).is_some() => {
                            Ok(StartClaim::StartRepeated)
                        }
                        _ => Ok(StartClaim::CallTokenReused),
                    }
                } else {
                    Err(StoreError::new("transaction_cancelled"))
                }
            }
        }
    }
}

impl CallStateStore for DynamoDbStore {
    fn record_start<'a>(
        &'a self,
        connection_id: &'a str,
        stream: &'a StartedCall,
        token: Option<&'a CallTokenId>,
        now: u64,
    ) -> BoxFuture<'a, Result<StartClaim, StoreError>> {
        Box::pin(self.record(connection_id, stream, token, now))
    }

    fn started<'a>(
        &'a self,
        connection_id: &'a str,
        now: u64,
    ) -> BoxFuture<'a, Result<Option<StartedCall>, StoreError>> {
        Box::pin(async move {
            Ok(self
                .get(connection_key(connection_id))
                .await?
                .and_then(|item| read_stream(&item, now)))
        })
    }

    fn forget<'a>(&'a self, connection_id: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            self.client
                .get()
                .await
                .delete_item()
                .table_name(&self.table)
                .key("pk", connection_key(connection_id))
                .send()
                .await
                .map(|_| ())
                .map_err(|e| StoreError::new(sdk_error_code(&e)))
        })
    }

    fn issue_call_token<'a>(
        &'a self,
        account: &'a AccountSid,
        call: &'a CallSid,
        expires_at: u64,
        keep_until: u64,
        _now: u64,
    ) -> BoxFuture<'a, Result<u64, StoreError>> {
        Box::pin(async move {
            // Never overwritten, whatever its age: only DynamoDB's TTL, after `keep_until`,
            // deletes the record; until then every webhook for the call gets its first expiry.
            let put = self
                .client
                .get()
                .await
                .put_item()
                .table_name(&self.table)
                .item("pk", issued_key(account, call))
                .item("exp", n(expires_at))
                .item("ttl", n(keep_until))
                .condition_expression("attribute_not_exists(pk)")
                .send()
                .await;
            match put {
                Ok(_) => Ok(expires_at),
                Err(e) if is_condition_failure(&e) => {
                    let item = self.get(issued_key(account, call)).await?;
                    item.as_ref()
                        .and_then(|i| i.get("exp"))
                        .and_then(|v| v.as_n().ok())
                        .and_then(|v| v.parse::<u64>().ok())
                        .ok_or_else(|| StoreError::new("issued_record_unreadable"))
                }
                Err(e) => Err(StoreError::new(sdk_error_code(&e))),
            }
        })
    }

    fn end_session<'a>(
        &'a self,
        account: &'a AccountSid,
        call: &'a CallSid,
        now: u64,
    ) -> BoxFuture<'a, Result<SessionEndMark, StoreError>> {
        Box::pin(async move {
            // One conditional UpdateItem of the issued# item: it must exist (a call this webhook
            // answered; UpdateItem would otherwise create it) and not be marked yet.
            let update = self
                .client
                .get()
                .await
                .update_item()
                .table_name(&self.table)
                .key("pk", issued_key(account, call))
                .update_expression("SET ended = :now")
                .expression_attribute_values(":now", n(now))
                .condition_expression("attribute_exists(pk) AND attribute_not_exists(ended)")
                .send()
                .await;
            match update {
                Ok(_) => Ok(SessionEndMark::First),
                // Which condition failed: the item says (a strongly consistent read).
                Err(e) if is_condition_failure(&e) => {
                    match self.get(issued_key(account, call)).await? {
                        Some(_) => Ok(SessionEndMark::Repeated),
                        None => Ok(SessionEndMark::NotIssued),
                    }
                }
                Err(e) => Err(StoreError::new(sdk_error_code(&e))),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reasons(codes: &[&str]) -> Vec<CancellationReason> {
        codes
            .iter()
            .map(|c| CancellationReason::builder().code(*c).build())
            .collect()
    }

    #[test]
    fn cancellation_reasons_name_the_rule() {
        use StartClaim::{CallTokenReused, StartRepeated};
        for (codes, wanted) in [
            (vec!["ConditionalCheckFailed", "None"], Some(StartRepeated)),
            (
                vec!["None", "ConditionalCheckFailed"],
                Some(CallTokenReused),
            ),
            (vec!["ConditionalCheckFailed"], Some(StartRepeated)),
            // Racing: another request is writing the same item at this instant.
            (vec!["TransactionConflict", "None"], Some(StartRepeated)),
            (vec!["None", "TransactionConflict"], Some(CallTokenReused)),
            (vec!["TransactionConflict"], Some(StartRepeated)),
            // A settled rule is named before a race, the connection before the token.
            (
                vec!["TransactionConflict", "ConditionalCheckFailed"],
                Some(CallTokenReused),
            ),
            (
                vec!["ConditionalCheckFailed", "TransactionConflict"],
                Some(StartRepeated),
            ),
            (
                vec!["ConditionalCheckFailed", "ConditionalCheckFailed"],
                Some(StartRepeated),
            ),
            (
                vec!["TransactionConflict", "TransactionConflict"],
                Some(StartRepeated),
            ),
            // Anything else is the store failing, not a rule: fail closed as unavailable.
            (vec!["None", "ThrottlingError"], None),
            (vec!["ProvisionedThroughputExceeded", "None"], None),
            (vec!["ValidationError", "None"], None),
            (vec!["None", "None"], None),
            (vec![], None),
            // Only the two items of a start count.
            (vec!["None", "None", "ConditionalCheckFailed"], None),
        ] {
            assert_eq!(claim_from_reasons(&reasons(&codes)), wanted, "{codes:?}");
        }
        let no_code = [CancellationReason::builder().build()];
        assert_eq!(claim_from_reasons(&no_code), None);
    }
}
