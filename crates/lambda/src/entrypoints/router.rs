//! The router: `$connect`, `$default` and `$disconnect` of the WebSocket API.
//!
//! `$default` answers 200 with no body whatever happens (API Gateway does not forward it, and
//! nothing but Twilio's own messages may ever be written to the socket); a violation is acted on by
//! closing the connection through the Management API.

use aws_lambda_events::apigw::ApiGatewayProxyResponse;

use std::time::Duration;

use tokio::time::Instant;

use crate::adapters::{deliver_with_retry, CloseError, DeliveryRecord};
use crate::budget::{Budget, OutOfTime, DEADLINE};
use crate::call_state_rules::{self, DropReason};
use crate::clock::unix_now;
use crate::domain::connection_context::ConnectionContext;
use crate::domain::pipeline::{self, CallSids, Decision, Judged, VerifiedFrame};
use crate::domain::record::Connection;
use crate::domain::{Accepted, AccountSid, CloseReason, Protocol, RelayMessage};
use crate::metrics::{self, Metric};
use crate::partition::{dns_suffix, is_execute_api_host};
use crate::runtime_api::Invocation;
use crate::state::RouterState;

pub use super::router_event::RouterEvent;

/// What the router did with one event (returned for tests and the local gateway; the Lambda runtime
/// sends only the HTTP-style response).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouterOutcome {
    /// `$connect` admitted.
    Connected,
    /// `$connect` refused: no valid authorizer context.
    ConnectRefused,
    /// `$default` frame accepted.
    Accepted(Accepted),
    /// `$default` frame violated a rule; the connection was (asked to be) closed.
    Closed(CloseReason),
    /// `$default` frame neither accepted nor closed (call state: no start yet within the grace,
    /// or the store could not say).
    Dropped(DropReason),
    /// `$disconnect` recorded.
    Disconnected,
}

/// The `@connections` endpoint: configured, or derived from the event. On an execute-api host the
/// event's own domain is used; for a custom domain, the execute-api host of the API in `region`,
/// with the partition's DNS suffix, since `@connections` is only served there.
pub fn management_endpoint(
    configured: Option<&str>,
    region: Option<&str>,
    event: &RouterEvent,
) -> Option<String> {
    if let Some(e) = configured {
        return Some(e.trim_end_matches('/').to_owned());
    }
    let ctx = &event.request_context;
    let stage = ctx.stage.as_deref().filter(|s| !s.is_empty())?;
    let domain = ctx.domain_name.as_deref().filter(|d| !d.is_empty())?;
    if is_execute_api_host(domain) {
        return Some(format!("https://{domain}/{stage}"));
    }
    match (ctx.api_id.as_deref().filter(|a| !a.is_empty()), region) {
        (Some(api), Some(region)) => Some(format!(
            "https://{api}.execute-api.{region}.{}/{stage}",
            dns_suffix(region)
        )),
        _ => Some(format!("https://{domain}/{stage}")),
    }
}

fn response(status: i64) -> ApiGatewayProxyResponse {
    let mut r = ApiGatewayProxyResponse::default();
    r.status_code = status;
    r.body = None;
    r
}

/// Handles one WebSocket event: the router's [`RouterEvent`], or the `aws_lambda_events`
/// `ApiGatewayWebsocketProxyRequest` the local gateway and the tests build. Returns the response
/// for API Gateway and what was decided.
pub async fn handle(
    state: &RouterState,
    event: impl Into<RouterEvent>,
) -> (ApiGatewayProxyResponse, RouterOutcome) {
    handle_until(state, event, Instant::now() + DEFAULT_INVOCATION_BUDGET).await
}

/// [`handle`] with the invocation's deadline (the Lambda context's): every wait is cut at the
/// [`Budget`] it leaves, so the answer is posted before Lambda ends the invocation.
pub async fn handle_until(
    state: &RouterState,
    event: impl Into<RouterEvent>,
    deadline: Instant,
) -> (ApiGatewayProxyResponse, RouterOutcome) {
    let event = event.into();
    let budget = Budget::for_deadline(deadline);
    let ctx = &event.request_context;
    let connection_id = ctx.connection_id.as_deref().unwrap_or("-");
    let context = event.connection_context();
    let outcome = match ctx.route_key.as_deref().unwrap_or("$default") {
        "$connect" => on_connect(connection_id, context),
        "$disconnect" => on_disconnect(state, &event, connection_id, context, &budget).await,
        _ => on_frame(state, &event, connection_id, context, &budget).await,
    };
    let status = match outcome {
        RouterOutcome::ConnectRefused => 403,
        _ => 200,
    };
    (response(status), outcome)
}

fn on_connect(connection_id: &str, context: Option<ConnectionContext>) -> RouterOutcome {
    match context {
        Some(ctx) => {
            tracing::info!(route = "$connect", decision = "connect", connection_id,
                account_sid = %ctx.account(), protocol = ctx.protocol().as_str());
            RouterOutcome::Connected
        }
        None => {
            tracing::warn!(
                route = "$connect",
                decision = "refuse",
                connection_id,
                reason = CloseReason::NoAuthorizerContext.code()
            );
            RouterOutcome::ConnectRefused
        }
    }
}

/// A final record for a call the application has seen: with call state, only for a connection
/// with a verified start (an attack's socket never reaches the application); without it, for any
/// admitted connection.
async fn on_disconnect(
    state: &RouterState,
    event: &RouterEvent,
    connection_id: &str,
    context: Option<ConnectionContext>,
    budget: &Budget,
) -> RouterOutcome {
    let ctx = &event.request_context;
    let started = call_state_rules::forget(state, connection_id, state.delivers(), budget).await;
    if let Some(context) = context {
        let sids = match started {
            Some(Some(s)) => Some(CallSids::of_start(&s)),
            None => Some(CallSids::of_context(&context)),
            Some(None) => None,
        };
        if let Some(sids) = sids {
            let what = Delivery::Disconnect(&sids);
            deliver(
                state,
                event,
                connection_id,
                context.protocol(),
                what,
                budget,
            )
            .await;
        }
    }
    let account = context.as_ref().map(ConnectionContext::account);
    let unreported = state.unknown_events.forget(connection_id);
    if unreported > 0 {
        metrics::count_n(Metric::UnknownEvent, UNKNOWN_EVENT, unreported);
    }
    tracing::info!(
        route = "$disconnect",
        event = "audit",
        connection_id,
        account_sid = account.map(AccountSid::as_str).unwrap_or("-"),
        status_code = ctx.disconnect_status_code.unwrap_or_default(),
        reason = ctx.disconnect_reason.as_deref().unwrap_or("")
    );
    RouterOutcome::Disconnected
}

/// One `$default` frame: judged once (the stateless verdict), then the call-state step, then the
/// one decision acted on (deliver, ignore, drop or close).
async fn on_frame(
    state: &RouterState,
    event: &RouterEvent,
    connection_id: &str,
    context: Option<ConnectionContext>,
    budget: &Budget,
) -> RouterOutcome {
    let Some(context) = context else {
        let reason = CloseReason::NoAuthorizerContext;
        return close(state, event, connection_id, None, reason, budget).await;
    };
    let account = *context.account();
    let judged = match judge(state, event, &context, budget).await {
        Ok(judged) => judged,
        Err(reason) => {
            return close(state, event, connection_id, Some(&account), reason, budget).await
        }
    };
    let connected_at = u64::try_from(event.request_context.connected_at)
        .ok()
        .filter(|t| *t > 0);
    let step = call_state_rules::apply(state, connection_id, &judged, connected_at, budget).await;
    match judged.decide(step) {
        Decision::Deliver(frame) => {
            log_accept(state, connection_id, &account, frame.accepted());
            let what = Delivery::Frame(&frame);
            deliver(
                state,
                event,
                connection_id,
                context.protocol(),
                what,
                budget,
            )
            .await;
            RouterOutcome::Accepted(*frame.accepted())
        }
        Decision::Ignore(accepted) => {
            log_accept(state, connection_id, &account, &accepted);
            RouterOutcome::Accepted(accepted)
        }
        Decision::Drop(why) => {
            let reason = why.code();
            tracing::debug!(route = "$default", decision = "drop", connection_id, reason);
            RouterOutcome::Dropped(why)
        }
        Decision::Close(reason) => {
            close(state, event, connection_id, Some(&account), reason, budget).await
        }
    }
}

/// What a record is made of: a verified frame, or the end of a connection with its SIDs.
enum Delivery<'a> {
    Frame(&'a VerifiedFrame<'a>),
    Disconnect(&'a CallSids),
}

/// Builds the record v1 of a verified frame (or of `$disconnect`) and delivers it before the
/// invocation answers: one retry within the budget, then `delivery_failed` (the frame is lost,
/// the call goes on: a lost 20 ms frame is better than a closed call).
async fn deliver(
    state: &RouterState,
    event: &RouterEvent,
    connection_id: &str,
    protocol: Protocol,
    what: Delivery<'_>,
    budget: &Budget,
) {
    if !state.delivers() {
        return;
    }
    let endpoint = management_endpoint(
        state.config.management_endpoint.as_deref(),
        state.config.region.as_deref(),
        event,
    )
    .unwrap_or_default();
    let received_at_ms = u64::try_from(event.request_context.request_time_epoch)
        .ok()
        .filter(|t| *t > 0)
        .unwrap_or_else(crate::clock::unix_now_ms);
    let connection = Connection {
        protocol,
        connection_id,
        management_endpoint: &endpoint,
        received_at_ms,
    };
    let record = match what {
        Delivery::Frame(frame) => DeliveryRecord::of_frame(frame, &connection),
        Delivery::Disconnect(sids) => DeliveryRecord::of_disconnect(sids, &connection),
    };
    match record {
        Ok(record) => {
            deliver_with_retry(state.sink.as_ref(), &record, budget.until()).await;
        }
        Err(e) => tracing::error!(
            route = "$default",
            event = "record_refused",
            connection_id,
            reason = e.code()
        ),
    }
}

/// The stateless verdict on the event's frame: parsed once in its connection's grammar, judged
/// against the handshake's context. Only a `start` whose token is checked fetches the credentials.
async fn judge<'a>(
    state: &RouterState,
    event: &'a RouterEvent,
    context: &ConnectionContext,
    budget: &Budget,
) -> Result<Judged<'a>, CloseReason> {
    if event.is_base64_encoded {
        return Err(CloseReason::FrameNotText);
    }
    let parsed = pipeline::parse(event.body.as_deref().unwrap_or(""), context.protocol())?;
    let policy = state.config.call_token;
    let creds = if parsed.needs_credentials(policy) {
        state.credentials.get_until(budget.until()).await
    } else {
        None
    };
    parsed.judge(context, policy, creds.as_deref(), unix_now())
}

/// The metric reason and log event of an ignored unknown event.
const UNKNOWN_EVENT: &str = "unknown_event";

fn log_accept(state: &RouterState, connection_id: &str, account: &AccountSid, accepted: &Accepted) {
    let account_sid = account.as_str();
    match accepted {
        // 50 per second per call: not logged at info.
        Accepted::Media => tracing::trace!(
            route = "$default",
            decision = "accept",
            event = "media",
            connection_id
        ),
        Accepted::Start {
            call_sid,
            stream_sid,
            call_token,
        } => tracing::info!(route = "$default", decision = "accept",
            event = "start", connection_id, account_sid, call_sid = %call_sid, stream_sid = %stream_sid,
            call_token_key = call_token.map(|t| t.key_index as i64).unwrap_or(-1)),
        Accepted::Stop { call_sid } => {
            tracing::info!(route = "$default", decision = "accept", event = "stop",
            connection_id, account_sid, call_sid = %call_sid)
        }
        Accepted::Relay(RelayMessage::Setup(s)) => tracing::info!(route = "$default",
            decision = "accept", event = "setup", connection_id, account_sid,
            call_sid = %s.call_sid, session_id = %s.session_sid),
        // Ignored, and logged at most once per connection per minute (unknown_events.rs):
        // unknown Media Streams events, unknown ConversationRelay types and `info`, Twilio's
        // debug message (sent only when the TwiML asks for it), are counted together.
        Accepted::Unknown | Accepted::Relay(RelayMessage::Info | RelayMessage::Unknown) => {
            if let Some(n) = state
                .unknown_events
                .observe(connection_id, crate::clock::unix_now_ms())
            {
                metrics::count_n(Metric::UnknownEvent, UNKNOWN_EVENT, n);
                tracing::info!(
                    route = "$default",
                    decision = "ignore",
                    event = "unknown",
                    connection_id,
                    account_sid,
                    unknown_events = n,
                    metric = UNKNOWN_EVENT
                );
            }
        }
        other => {
            tracing::debug!(route = "$default", decision = "accept", event = ?other, connection_id)
        }
    }
}

/// Serves router invocations from the Lambda Runtime API with `state` until the Runtime API
/// fails: the `router` binary's loop, and any router built from this crate's public API (a custom
/// delivery sink, say). `rt` is the current-thread runtime the handler's AWS calls run on.
pub fn serve(
    rt: &tokio::runtime::Runtime,
    state: &RouterState,
) -> Result<(), crate::runtime_api::LoopError> {
    crate::runtime_api::run(rt, |invocation: Invocation<RouterEvent>| async move {
        let deadline = deadline_of(invocation.deadline_ms);
        handle_until(state, invocation.event, deadline).await.0
    })
}

/// The instant of a Lambda deadline given in Unix milliseconds (the runtime's `Context::deadline`).
/// 0 (no deadline given) is the default budget.
pub fn deadline_of(deadline_ms: u64) -> Instant {
    if deadline_ms == 0 {
        return Instant::now() + DEFAULT_INVOCATION_BUDGET;
    }
    let left = deadline_ms.saturating_sub(crate::clock::unix_now_ms());
    Instant::now() + Duration::from_millis(left)
}

/// What one close attempt may take: the Management API client's operation timeout (1.5 s) and a
/// margin. A retry starts only when this much of the budget is left.
pub const CLOSE_ATTEMPT_BUDGET: Duration = Duration::from_millis(1600);

/// How long an invocation may run when the caller gives no deadline: the template's 5 s Lambda
/// timeout, less a margin for the runtime's own answer.
pub const DEFAULT_INVOCATION_BUDGET: Duration = Duration::from_millis(4500);

/// Closes the connection. A failure other than 410 (which counts as closed) is retried once when
/// the budget has time for another attempt; every attempt is cut at the budget. A close that
/// still fails is loud: `close_failed` at ERROR with the AWS error code (`deadline` when the budget
/// ran out first), and the `CloseFailed` metric. Never panics, never returns an error to the
/// runtime (API Gateway would retry nothing, and the frame's answer is 200 anyway).
async fn close(
    state: &RouterState,
    event: &RouterEvent,
    connection_id: &str,
    account: Option<&AccountSid>,
    reason: CloseReason,
    budget: &Budget,
) -> RouterOutcome {
    let account_sid = account.map(AccountSid::as_str).unwrap_or("-");
    let Some(endpoint) = management_endpoint(
        state.config.management_endpoint.as_deref(),
        state.config.region.as_deref(),
        event,
    ) else {
        close_failed(connection_id, account_sid, reason, "no_endpoint", 0);
        return RouterOutcome::Closed(reason);
    };
    let attempt = || async {
        budget
            .run(state.closer.close(&endpoint, connection_id))
            .await
            .unwrap_or_else(|OutOfTime| {
                Err(CloseError {
                    code: DEADLINE.to_owned(),
                })
            })
    };
    let mut attempts = 1;
    let mut result = attempt().await;
    if let Err(first) = &result {
        if budget.left() >= CLOSE_ATTEMPT_BUDGET {
            tracing::warn!(route = "$default", event = "close_retry", connection_id, reason = reason.code(), aws_error = %first.code);
            attempts += 1;
            result = attempt().await;
        }
    }
    match result {
        Ok(outcome) => {
            tracing::warn!(route = "$default", decision = "close", connection_id, account_sid,
                reason = reason.code(), close_result = ?outcome, attempts);
        }
        Err(e) => close_failed(connection_id, account_sid, reason, &e.code, attempts),
    }
    RouterOutcome::Closed(reason)
}

fn close_failed(
    connection_id: &str,
    account_sid: &str,
    reason: CloseReason,
    aws_error: &str,
    attempts: u32,
) {
    tracing::error!(
        route = "$default",
        decision = "close",
        event = "close_failed",
        connection_id,
        account_sid,
        reason = reason.code(),
        aws_error,
        attempts
    );
    metrics::count(Metric::CloseFailed, aws_error);
}
