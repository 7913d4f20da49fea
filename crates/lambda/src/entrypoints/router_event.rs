//! The router's own view of an API Gateway WebSocket event: only the fields it reads.
//!
//! Every media frame is one router invocation (50 per second per call), and deserialising the
//! whole `aws_lambda_events` `ApiGatewayWebsocketProxyRequest` was the largest single cost of one:
//! its `catch-all-fields` `#[serde(flatten)]` maps make serde buffer each object before reading
//! it, and it builds header maps a WebSocket message never has (BENCHMARKS.md "Round three").
//! [`RouterEvent`] names the same JSON keys (`rename_all = "camelCase"`, `apiId`) and skips the
//! rest. The local gateway and the tests build the full AWS type, which converts with `From`; a
//! test holds the two readings of every event document in `events/` equal.

use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::domain::connection_context::{ConnectionContext, RawContext};

/// A WebSocket event (`$connect`, `$default`, `$disconnect`) as the router reads it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RouterEvent {
    /// `requestContext`.
    #[serde(default)]
    pub request_context: RouterRequestContext,
    /// `body`: the frame's text (absent for `$connect` and `$disconnect`).
    #[serde(default)]
    pub body: Option<String>,
    /// `isBase64Encoded`: true for a binary frame. `null` reads as false, as in the AWS type.
    #[serde(default, deserialize_with = "default_if_null")]
    pub is_base64_encoded: bool,
}

/// The `requestContext` fields the router reads.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RouterRequestContext {
    /// `routeKey`: `$connect`, `$default` or `$disconnect`.
    #[serde(default)]
    pub route_key: Option<String>,
    /// `connectionId`.
    #[serde(default)]
    pub connection_id: Option<String>,
    /// `connectedAt`, Unix milliseconds (0 when absent).
    #[serde(default)]
    pub connected_at: i64,
    /// `requestTimeEpoch`, Unix milliseconds (0 when absent).
    #[serde(default)]
    pub request_time_epoch: i64,
    /// `domainName`.
    #[serde(default)]
    pub domain_name: Option<String>,
    /// `stage`.
    #[serde(default)]
    pub stage: Option<String>,
    /// `apiId`.
    #[serde(default, rename = "apiId")]
    pub api_id: Option<String>,
    /// `disconnectStatusCode` (`$disconnect`).
    #[serde(default)]
    pub disconnect_status_code: Option<i64>,
    /// `disconnectReason` (`$disconnect`).
    #[serde(default)]
    pub disconnect_reason: Option<String>,
    /// `authorizer`: the context the authorizer returned at `$connect` (absent or `null`: empty).
    #[serde(default, deserialize_with = "default_if_null")]
    pub authorizer: AuthorizerContext,
}

/// The authorizer context keys the router reads (`domain::connection_context`). Each is read
/// when it is a string; any other JSON value reads as absent (and the router then closes with
/// `no_authorizer_context`), never as an unreadable event.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct AuthorizerContext {
    /// `protocol`.
    #[serde(default, deserialize_with = "string_or_none")]
    pub protocol: Option<String>,
    /// `accountSid`.
    #[serde(default, rename = "accountSid", deserialize_with = "string_or_none")]
    pub account_sid: Option<String>,
    /// `callSid` (ConversationRelay).
    #[serde(default, rename = "callSid", deserialize_with = "string_or_none")]
    pub call_sid: Option<String>,
    /// `callTokenExpiresAt` (ConversationRelay).
    #[serde(
        default,
        rename = "callTokenExpiresAt",
        deserialize_with = "string_or_none"
    )]
    pub call_token_expires_at: Option<String>,
}

impl RouterEvent {
    /// The connection's context as the authorizer pinned it, if it is one of the shapes the
    /// authorizer writes.
    pub fn connection_context(&self) -> Option<ConnectionContext> {
        let a = &self.request_context.authorizer;
        ConnectionContext::read(RawContext {
            protocol: a.protocol.as_deref(),
            account_sid: a.account_sid.as_deref(),
            call_sid: a.call_sid.as_deref(),
            call_token_expires_at: a.call_token_expires_at.as_deref(),
        })
    }
}

impl From<ApiGatewayWebsocketProxyRequest> for RouterEvent {
    fn from(event: ApiGatewayWebsocketProxyRequest) -> Self {
        let ctx = event.request_context;
        // The AWS type keeps the context's keys in `other` or `fields`, depending on how it was
        // built; either is where API Gateway's keys land.
        let key = |name: &str| {
            ctx.authorizer
                .other
                .get(name)
                .or_else(|| ctx.authorizer.fields.get(name))
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        let authorizer = AuthorizerContext {
            protocol: key("protocol"),
            account_sid: key("accountSid"),
            call_sid: key("callSid"),
            call_token_expires_at: key("callTokenExpiresAt"),
        };
        RouterEvent {
            request_context: RouterRequestContext {
                route_key: ctx.route_key,
                connection_id: ctx.connection_id,
                connected_at: ctx.connected_at,
                request_time_epoch: ctx.request_time_epoch,
                domain_name: ctx.domain_name,
                stage: ctx.stage,
                api_id: ctx.apiid,
                disconnect_status_code: ctx.disconnect_status_code,
                disconnect_reason: ctx.disconnect_reason,
                authorizer,
            },
            body: event.body,
            is_base64_encoded: event.is_base64_encoded,
        }
    }
}

fn default_if_null<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

fn string_or_none<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::String(s) => Some(s),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACCOUNT: &str = "ACdeadbeefdeadbeefdeadbeefdeadbeef";

    fn both(doc: &str) -> (RouterEvent, RouterEvent) {
        let slim: RouterEvent = serde_json::from_str(doc).expect("router event");
        let full: ApiGatewayWebsocketProxyRequest = serde_json::from_str(doc).expect("AWS event");
        (slim, RouterEvent::from(full))
    }

    /// The router reads every WebSocket document the README invokes exactly as it read the AWS type.
    #[test]
    fn every_websocket_event_document_reads_as_the_aws_type_does() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../events");
        let mut seen = 0;
        for entry in std::fs::read_dir(dir).expect("events/") {
            let path = entry.expect("entry").path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            let websocket = ["connect", "default-", "disconnect"]
                .iter()
                .any(|p| name.starts_with(p));
            if !websocket || !name.ends_with(".json") {
                continue;
            }
            let doc = std::fs::read_to_string(&path).expect("read");
            let (slim, full) = both(&doc);
            assert_eq!(slim, full, "{name}");
            assert!(slim.request_context.route_key.is_some(), "{name}");
            seen += 1;
        }
        assert!(seen >= 8, "only {seen} WebSocket event documents found");
    }

    #[test]
    fn the_media_document_reads_every_field_the_router_uses() {
        let doc = include_str!("../../../../events/default-media.json");
        let e: RouterEvent = serde_json::from_str(doc).expect("router event");
        let ctx = &e.request_context;
        assert_eq!(ctx.route_key.as_deref(), Some("$default"));
        assert_eq!(ctx.connection_id.as_deref(), Some("Xk2TmdKPIAMCJqw="));
        assert_eq!(ctx.connected_at, 1_795_881_600_000);
        assert_eq!(ctx.request_time_epoch, 1_795_881_601_000);
        assert_eq!(
            ctx.domain_name.as_deref(),
            Some("abc123.execute-api.us-east-1.amazonaws.com")
        );
        assert_eq!(ctx.stage.as_deref(), Some("prod"));
        assert_eq!(ctx.api_id.as_deref(), Some("abc123"));
        assert_eq!(
            e.connection_context()
                .map(|c| *c.account())
                .map(|a| a.to_string())
                .as_deref(),
            Some(ACCOUNT)
        );
        assert!(!e.is_base64_encoded);
        assert!(e
            .body
            .as_deref()
            .is_some_and(|b| b.starts_with("{\"event\":\"media\"")));
    }

    #[test]
    fn a_relay_document_reads_its_protocol_call_and_token_expiry_on_both_readings() {
        let doc = include_str!("../../../../events/default-relay-setup.json");
        let (slim, full) = both(doc);
        assert_eq!(slim, full);
        assert_eq!(
            slim.connection_context(),
            Some(ConnectionContext::ConversationRelay {
                account: crate::domain::AccountSid::parse(ACCOUNT).expect("ac"),
                call: crate::domain::CallSid::parse("CAffeeddccbbaa99887766554433221100")
                    .expect("ca"),
                token_expires_at: 4_102_444_800,
            })
        );
    }

    #[test]
    fn an_account_sid_that_is_not_a_valid_string_is_no_account_on_both_readings() {
        for value in [
            serde_json::json!(12),
            serde_json::json!(true),
            serde_json::json!(null),
            serde_json::json!({"nested": ACCOUNT}),
            serde_json::json!([ACCOUNT]),
            serde_json::json!("ACXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX"),
        ] {
            let doc = serde_json::json!({
                "requestContext": {"routeKey": "$default", "connectedAt": 1, "requestTimeEpoch": 2,
                                   "authorizer": {"accountSid": value, "principalId": ACCOUNT}},
                "body": "{}", "isBase64Encoded": null
            })
            .to_string();
            let (slim, full) = both(&doc);
            assert_eq!(slim, full, "{value}");
            assert_eq!(
                slim.connection_context().map(|c| *c.account()),
                None,
                "{value}"
            );
            assert!(!slim.is_base64_encoded);
        }
    }

    #[test]
    fn no_authorizer_and_an_empty_one_are_no_account() {
        for auth in ["", r#","authorizer":null"#, r#","authorizer":{}"#] {
            let doc = format!(
                r#"{{"requestContext":{{"routeKey":"$connect","connectedAt":1,"requestTimeEpoch":2{auth}}}}}"#
            );
            let (slim, full) = both(&doc);
            assert_eq!(slim, full, "{auth}");
            assert_eq!(
                slim.connection_context().map(|c| *c.account()),
                None,
                "{auth}"
            );
        }
    }

    #[test]
    fn a_binary_frame_is_flagged() {
        let doc = r#"{"requestContext":{"routeKey":"$default","connectedAt":1,"requestTimeEpoch":2},
                      "body":"AAEC","isBase64Encoded":true}"#;
        let (slim, full) = both(doc);
        assert_eq!(slim, full);
        assert!(slim.is_base64_encoded);
    }
}
