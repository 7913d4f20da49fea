//! The entrypoints' `handle` functions called in-process with the `events/` documents and the
//! recording adapters: the returned outcome (decision, reason, close requested) is asserted
//! directly. The binaries' wiring is tested through the Runtime API in `lambda_binaries.rs`.

use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::apigw::{
    ApiGatewayCustomAuthorizerRequestTypeRequest, ApiGatewayCustomAuthorizerResponse,
    ApiGatewayWebsocketProxyRequest,
};
use aws_lambda_events::iam::IamPolicyEffect;
use serde_json::{json, Value};
use stream_gate_domain::call_state::{CallTokenId, StartedStream};
use stream_gate_domain::{AccountSid, CallSid};
use stream_gate_domain::{CloseReason, DenyReason};
use stream_gate_lambda::adapters::delivery::{DeliveryError, DeliverySink};
use stream_gate_lambda::adapters::{
    CallStateStore, CloseError, CloseOutcome, CredentialCache, RecordingCloser, StartClaim,
    StaticSource, StoreError,
};
use stream_gate_lambda::call_state_rules::DropReason;
use stream_gate_lambda::config::{AuthorizerConfig, RouterConfig, WebhookConfig};
use stream_gate_lambda::entrypoints::router::RouterOutcome;
use stream_gate_lambda::entrypoints::{authorizer, router, voice_webhook};
use stream_gate_lambda::state::{AuthorizerState, CallState, RouterState, WebhookState};
use stream_gate_testkit::event;

const AC: &str = "ACdeadbeefdeadbeefdeadbeefdeadbeef";
const ARN: &str = "arn:aws:execute-api:us-east-1:123456789012:abc123/prod/$connect";
const CONNECTION: &str = "Xk2TmdKPIAMCJqw=";

fn authorizer_state(env: &[(&'static str, &'static str)]) -> AuthorizerState {
    AuthorizerState {
        config: AuthorizerConfig::from_lookup(lookup(env)).expect("config"),
        credentials: credentials(),
    }
}

fn router_state(env: &[(&'static str, &'static str)]) -> (RouterState, Arc<RecordingCloser>) {
    let closer = Arc::new(RecordingCloser::default());
    let state = RouterState::new(
        RouterConfig::from_lookup(lookup(env)).expect("config"),
        credentials(),
        closer.clone(),
        CallState::Off,
    );
    (state, closer)
}

fn authorizer_event(value: Value) -> ApiGatewayCustomAuthorizerRequestTypeRequest {
    serde_json::from_value(value).expect("authorizer event")
}

fn ws_event(value: Value) -> ApiGatewayWebsocketProxyRequest {
    serde_json::from_value(value).expect("websocket event")
}

mod support;
use support::log_capture;
use support::slow_fakes::HangingCloser;
use support::states::{credentials, lookup};

fn effect(r: &ApiGatewayCustomAuthorizerResponse) -> (IamPolicyEffect, String) {
    let [s] = r.policy_document.statement.as_slice() else {
        panic!("exactly one statement");
    };
    assert_eq!(s.action, vec!["execute-api:Invoke".to_owned()]);
    (s.effect.clone(), s.resource.join(","))
}

async fn authorize(
    state: &AuthorizerState,
    value: Value,
) -> (ApiGatewayCustomAuthorizerResponse, Option<DenyReason>) {
    authorizer::decide(state, authorizer_event(value)).await
}

#[tokio::test]
async fn authorizer_allows_signed_and_token_handshakes_with_their_context() {
    let state = authorizer_state(&[]);
    let (r, reason) = authorize(&state, event("authorizer-signed.json")).await;
    assert_eq!(
        (effect(&r), reason),
        ((IamPolicyEffect::Allow, ARN.into()), None)
    );
    assert_eq!(r.principal_id.as_deref(), Some(AC));
    assert_eq!(
        r.context,
        json!({"accountSid": AC, "authMethod": "twilio-signature", "credential": "twilioAccounts[0].authTokens[0]"})
    );

    let (r, reason) = authorize(&state, event("authorizer-token.json")).await;
    assert_eq!(
        (effect(&r), reason),
        ((IamPolicyEffect::Allow, ARN.into()), None)
    );
    assert_eq!(r.context["authMethod"], "stream-token");
    assert_eq!(r.context["credential"], "streamTokens[0]");
}

#[tokio::test]
async fn authorizer_denies_with_the_exact_reason() {
    let state = authorizer_state(&[]);
    for (file, expected) in [
        (
            "authorizer-unauthenticated.json",
            DenyReason::SignatureMissing,
        ),
        (
            "authorizer-bad-signature.json",
            DenyReason::SignatureMismatch,
        ),
    ] {
        let (r, reason) = authorize(&state, event(file)).await;
        assert_eq!(effect(&r), (IamPolicyEffect::Deny, ARN.into()), "{file}");
        assert_eq!(reason, Some(expected), "{file}");
        assert_eq!(r.context, json!({}), "a deny carries no context");
    }

    // Header names are case-insensitive; a repeated, differing signature header is refused.
    let mut e = event("authorizer-signed.json");
    let sig = e["headers"]["X-Twilio-Signature"].clone();
    e["headers"] = json!({"x-twilio-signature": sig});
    e["multiValueHeaders"] = json!({"X-TWILIO-SIGNATURE": [sig]});
    assert_eq!(authorize(&state, e.clone()).await.1, None);
    e["multiValueHeaders"] = json!({"X-Twilio-Signature": [sig, "YFfwGS2Ev7f9qAP9MmRoMS7C724="]});
    assert_eq!(
        authorize(&state, e).await.1,
        Some(DenyReason::SignatureMalformed)
    );

    // Without the domain name the signed URL is unknown; without a methodArn there is nothing to
    // allow: deny, never a Lambda error.
    let mut e = event("authorizer-signed.json");
    e["requestContext"]
        .as_object_mut()
        .map(|o| o.remove("domainName"));
    assert_eq!(
        authorize(&state, e).await.1,
        Some(DenyReason::RequestIncomplete)
    );
    let mut e = event("authorizer-signed.json");
    e["methodArn"] = json!("not-an-arn");
    let (r, reason) = authorize(&state, e).await;
    assert_eq!(reason, Some(DenyReason::RequestIncomplete));
    assert_eq!(effect(&r), (IamPolicyEffect::Deny, "*".into()));
}

#[tokio::test]
async fn authorizer_header_and_url_edges() {
    let state = authorizer_state(&[]);
    // `handle` answers with `decide`'s response.
    let r = authorizer::handle(&state, authorizer_event(event("authorizer-signed.json"))).await;
    assert_eq!(effect(&r), (IamPolicyEffect::Allow, ARN.into()));
    assert_eq!(r.principal_id.as_deref(), Some(AC));

    // The same signature twice is one signature.
    let mut e = event("authorizer-signed.json");
    let sig = e["headers"]["X-Twilio-Signature"].clone();
    e["multiValueHeaders"]["X-Twilio-Signature"] = json!([sig, sig]);
    assert_eq!(authorize(&state, e).await.1, None);

    // A signature header that is not visible ASCII is a malformed signature, not a missing one.
    for place in ["headers", "multiValueHeaders"] {
        let mut e = event("authorizer-signed.json");
        let o = e[place].as_object_mut().expect("headers");
        o.remove("X-Twilio-Signature");
        let value = if place == "headers" {
            json!("GpO6QAZTtQNIoTo8/7Esg\u{e9}Heb8A=")
        } else {
            json!(["GpO6QAZTtQNIoTo8/7Esg\u{e9}Heb8A="])
        };
        o.insert("X-Twilio-Signature".into(), value);
        let other = if place == "headers" {
            "multiValueHeaders"
        } else {
            "headers"
        };
        e[other]
            .as_object_mut()
            .map(|o| o.remove("X-Twilio-Signature"));
        assert_eq!(
            authorize(&state, e).await.1,
            Some(DenyReason::SignatureMalformed),
            "{place}"
        );
    }

    // An empty stage or domain name leaves the signed URL unknown.
    for (field, value) in [("stage", ""), ("domainName", "")] {
        let mut e = event("authorizer-signed.json");
        e["requestContext"][field] = json!(value);
        assert_eq!(
            authorize(&state, e).await.1,
            Some(DenyReason::RequestIncomplete),
            "{field}"
        );
    }
    assert_eq!(
        authorizer::signed_url(None, Some("gate.example.com"), Some("prod")).as_deref(),
        Some("wss://gate.example.com/prod")
    );
    assert_eq!(
        authorizer::signed_url(None, Some("gate.example.com"), Some("")),
        None
    );
    assert_eq!(authorizer::signed_url(None, Some(""), Some("prod")), None);
    assert_eq!(authorizer::signed_url(None, None, Some("prod")), None);
    assert_eq!(
        authorizer::signed_url(Some("wss://x/y"), None, None).as_deref(),
        Some("wss://x/y")
    );
}

#[tokio::test]
async fn authorizer_auth_mode_and_public_url_come_from_configuration() {
    let signature = authorizer_state(&[("STREAM_GATE_AUTH_MODE", "signature")]);
    assert_eq!(
        authorize(&signature, event("authorizer-token.json"))
            .await
            .1,
        Some(DenyReason::SignatureMissing)
    );
    let token = authorizer_state(&[("STREAM_GATE_AUTH_MODE", "token")]);
    assert_eq!(
        authorize(&token, event("authorizer-signed.json")).await.1,
        Some(DenyReason::StreamTokenMissing)
    );
    // A configured public URL replaces the event's: the event's signature no longer matches it.
    let custom = authorizer_state(&[("STREAM_GATE_PUBLIC_URL", "wss://gate.example.com/prod")]);
    assert_eq!(
        authorize(&custom, event("authorizer-signed.json")).await.1,
        Some(DenyReason::SignatureMismatch)
    );
}

#[tokio::test]
async fn authorizer_fails_closed_without_credentials() {
    let state = AuthorizerState {
        config: AuthorizerConfig::from_lookup(lookup(&[])).expect("config"),
        credentials: Arc::new(CredentialCache::empty()),
    };
    let (r, reason) = authorize(&state, event("authorizer-signed.json")).await;
    assert_eq!(effect(&r).0, IamPolicyEffect::Deny);
    assert_eq!(reason, Some(DenyReason::CredentialsUnavailable));

    let broken =
        stream_gate_domain::Secret::new(r#"{"twilioAccounts":[{"accountSid":"AC0123"}]}"#.into());
    let state = AuthorizerState {
        config: AuthorizerConfig::from_lookup(lookup(&[])).expect("config"),
        credentials: Arc::new(CredentialCache::new(
            Box::new(StaticSource::new(broken)),
            Duration::from_secs(300),
            Duration::from_secs(300),
        )),
    };
    assert_eq!(
        authorize(&state, event("authorizer-signed.json")).await.1,
        Some(DenyReason::CredentialsUnavailable)
    );
}

/// Routes `events` in order with the log capture on, asserts each was accepted, and returns the
/// log lines.
async fn route_accepted_logged<const N: usize>(
    state: &RouterState,
    events: [Value; N],
) -> Vec<Value> {
    let (outcomes, logs) = log_capture::logs_of(async {
        let mut outcomes = Vec::new();
        for e in events {
            outcomes.push(route(state, e).await.2);
        }
        outcomes
    })
    .await;
    assert!(
        outcomes
            .iter()
            .all(|o| matches!(o, RouterOutcome::Accepted(_))),
        "{outcomes:?}"
    );
    logs
}

async fn route(state: &RouterState, value: Value) -> (i64, Option<String>, RouterOutcome) {
    let (response, outcome) = router::handle(state, ws_event(value)).await;
    (
        response.status_code,
        response.body.map(|b| format!("{b:?}")),
        outcome,
    )
}

#[tokio::test]
async fn router_accepts_a_legitimate_stream_without_closing_or_answering() {
    let (state, closer) = router_state(&[]);
    let (status, _, outcome) = route(&state, event("connect.json")).await;
    assert_eq!((status, outcome), (200, RouterOutcome::Connected));
    for name in [
        "default-connected.json",
        "default-start.json",
        "default-media.json",
        "default-stop.json",
    ] {
        let (status, body, outcome) = route(&state, event(name)).await;
        assert_eq!(
            (status, body),
            (200, None),
            "{name}: no body reaches Twilio"
        );
        assert!(
            matches!(outcome, RouterOutcome::Accepted(_)),
            "{name}: {outcome:?}"
        );
    }
    let (status, _, outcome) = route(&state, event("disconnect.json")).await;
    assert_eq!((status, outcome), (200, RouterOutcome::Disconnected));
    assert!(
        closer.closed().is_empty(),
        "nothing closed: {:?}",
        closer.closed()
    );
}

#[tokio::test]
async fn router_closes_violations_at_the_event_endpoint() {
    let (state, closer) = router_state(&[]);
    let (status, body, outcome) = route(&state, event("default-start-wrong-account.json")).await;
    assert_eq!((status, body), (200, None));
    assert_eq!(
        outcome,
        RouterOutcome::Closed(CloseReason::StartAccountMismatch)
    );
    assert_eq!(
        closer.closed(),
        vec![(
            "https://abc123.execute-api.us-east-1.amazonaws.com/prod".to_owned(),
            CONNECTION.to_owned()
        )]
    );

    // Without authorizer context: $connect refused, frames closed; binary frames closed.
    let (status, _, outcome) = route(&state, event("connect-no-context.json")).await;
    assert_eq!((status, outcome), (403, RouterOutcome::ConnectRefused));
    let mut e = event("default-media.json");
    e["requestContext"]
        .as_object_mut()
        .map(|o| o.remove("authorizer"));
    assert_eq!(
        route(&state, e).await.2,
        RouterOutcome::Closed(CloseReason::NoAuthorizerContext)
    );
    let mut e = event("default-media.json");
    e["isBase64Encoded"] = json!(true);
    assert_eq!(
        route(&state, e).await.2,
        RouterOutcome::Closed(CloseReason::FrameNotText)
    );
    let mut e = event("default-media.json");
    e["body"] = json!("{not json");
    assert_eq!(
        route(&state, e).await.2,
        RouterOutcome::Closed(CloseReason::FrameNotJson)
    );
    assert_eq!(closer.closed().len(), 4);
}

#[tokio::test]
async fn router_close_endpoint_is_configured_or_derived_per_partition() {
    let (state, closer) =
        router_state(&[("STREAM_GATE_MANAGEMENT_ENDPOINT", "http://127.0.0.1:9/dev/")]);
    route(&state, event("default-start-wrong-account.json")).await;
    assert_eq!(closer.closed()[0].0, "http://127.0.0.1:9/dev");

    // A custom domain: @connections is only served on the execute-api host, whose DNS suffix
    // depends on the partition.
    let (state, closer) = router_state(&[("AWS_REGION", "cn-north-1")]);
    let mut e = event("default-start-wrong-account.json");
    e["requestContext"]["domainName"] = json!("gate.example.cn");
    route(&state, e).await;
    assert_eq!(
        closer.closed()[0].0,
        "https://abc123.execute-api.cn-north-1.amazonaws.com.cn/prod"
    );
}

/// A sink that keeps every record it is handed.
#[derive(Default)]
struct MemorySink(std::sync::Mutex<Vec<Value>>);

impl MemorySink {
    fn taken(&self) -> Vec<Value> {
        std::mem::take(&mut *self.0.lock().expect("sink"))
    }
}

impl DeliverySink for MemorySink {
    fn deliver<'a>(
        &'a self,
        record: &'a stream_gate_domain::record::DeliveryRecord,
    ) -> BoxFuture<'a, Result<(), DeliveryError>> {
        let v: Value = serde_json::from_str(record.json()).expect("record");
        self.0.lock().expect("sink").push(v);
        Box::pin(async { Ok(()) })
    }

    fn kind(&self) -> &'static str {
        "memory"
    }
}

type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

fn delivering_router(call_state: CallState) -> (RouterState, Arc<MemorySink>) {
    let sink = Arc::new(MemorySink::default());
    let state = RouterState::new(
        RouterConfig::from_lookup(lookup(&[])).expect("config"),
        credentials(),
        Arc::new(RecordingCloser::default()),
        call_state,
    )
    .with_sink(sink.clone());
    (state, sink)
}

fn kinds_and_calls(records: &[Value]) -> Vec<(String, Option<String>)> {
    records
        .iter()
        .map(|r| {
            (
                r["type"].as_str().unwrap_or("?").to_owned(),
                r["callSid"].as_str().map(str::to_owned),
            )
        })
        .collect()
}

const CA: &str = "CAffeeddccbbaa99887766554433221100";

#[tokio::test]
async fn router_delivers_what_it_accepts_with_the_call_it_knows() {
    let (state, sink) = delivering_router(CallState::Off);
    for name in [
        "connect.json",
        "default-connected.json",
        "default-start.json",
        "default-media.json",
        "default-stop.json",
        "disconnect.json",
    ] {
        route(&state, event(name)).await;
    }
    let records = sink.taken();
    // `connected` is not recorded; without call state only start and stop name the call.
    assert_eq!(
        kinds_and_calls(&records),
        vec![
            ("start".to_owned(), Some(CA.to_owned())),
            ("media".to_owned(), None),
            ("stop".to_owned(), Some(CA.to_owned())),
            ("disconnect".to_owned(), None),
        ]
    );
    assert_eq!(records[3]["receivedAt"], 1_795_881_601_000_u64);
    // An event without a request time is stamped with the clock.
    let mut e = event("disconnect.json");
    e["requestContext"]["requestTimeEpoch"] = json!(0);
    route(&state, e).await;
    let at = sink.taken()[0]["receivedAt"].as_u64().expect("receivedAt");
    assert!(at > 1_795_881_601_000, "{at}");
    // Without a sink nothing is built or handed anywhere.
    let (state, _) = router_state(&[]);
    assert!(!state.delivers());
}

#[tokio::test]
async fn router_with_call_state_names_the_call_on_every_record_of_a_verified_start() {
    let store: Arc<dyn stream_gate_lambda::adapters::CallStateStore> =
        Arc::new(stream_gate_lambda::adapters::MemoryStore::new(100));
    let (state, sink) = delivering_router(CallState::Store(store));
    for name in [
        "default-start.json",
        "default-media.json",
        "disconnect.json",
    ] {
        let (_, _, outcome) = route(&state, event(name)).await;
        assert!(
            matches!(
                outcome,
                RouterOutcome::Accepted(_) | RouterOutcome::Disconnected
            ),
            "{name}: {outcome:?}"
        );
    }
    assert_eq!(
        kinds_and_calls(&sink.taken()),
        vec![
            ("start".to_owned(), Some(CA.to_owned())),
            ("media".to_owned(), Some(CA.to_owned())),
            ("disconnect".to_owned(), Some(CA.to_owned())),
        ]
    );
    // A media frame on a fresh connection with no start yet: dropped within the grace (which
    // counts from `connectedAt`), closed once it is over.
    let mut e = event("default-media.json");
    e["requestContext"]["connectionId"] = json!("Fresh1connection=");
    e["requestContext"]["connectedAt"] = json!(stream_gate_lambda::clock::unix_now_ms());
    assert_eq!(
        route(&state, e).await.2,
        RouterOutcome::Dropped(router_drop_pending())
    );
    let mut e = event("default-media.json");
    e["requestContext"]["connectionId"] = json!("Stale1connection=");
    assert_eq!(
        route(&state, e).await.2,
        RouterOutcome::Closed(CloseReason::MediaBeforeStart)
    );
    assert!(
        sink.taken().is_empty(),
        "dropped and closed frames are not delivered"
    );
}

/// A call-state store that cannot answer.
struct DownStore;

impl DownStore {
    fn error<'a, T: Send + 'a>() -> BoxFuture<'a, Result<T, StoreError>> {
        Box::pin(async { Err(StoreError::new("ProvisionedThroughputExceededException")) })
    }
}

impl CallStateStore for DownStore {
    fn record_start<'a>(
        &'a self,
        _connection_id: &'a str,
        _stream: &'a StartedStream,
        _token: Option<&'a CallTokenId>,
        _now: u64,
    ) -> BoxFuture<'a, Result<StartClaim, StoreError>> {
        Self::error()
    }

    fn started<'a>(
        &'a self,
        _connection_id: &'a str,
        _now: u64,
    ) -> BoxFuture<'a, Result<Option<StartedStream>, StoreError>> {
        Self::error()
    }

    fn forget<'a>(&'a self, _connection_id: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        Self::error()
    }

    fn issue_call_token<'a>(
        &'a self,
        _account: &'a AccountSid,
        _call: &'a CallSid,
        _expires_at: u64,
        _keep_until: u64,
        _now: u64,
    ) -> BoxFuture<'a, Result<u64, StoreError>> {
        Self::error()
    }
}

#[tokio::test]
async fn router_logs_an_unavailable_call_state_store_once_per_interval() {
    let state = RouterState::new(
        RouterConfig::from_lookup(lookup(&[])).expect("config"),
        credentials(),
        Arc::new(RecordingCloser::default()),
        CallState::Store(Arc::new(DownStore)),
    );
    let (outcomes, logs) = log_capture::logs_of(async {
        let mut outcomes = Vec::new();
        for name in [
            "default-media.json",
            "default-media.json",
            "default-start.json",
        ] {
            outcomes.push(route(&state, event(name)).await.2);
        }
        outcomes
    })
    .await;
    // Media is dropped (an outage neither admits an unverified frame nor closes a verified call);
    // a start that cannot be recorded is closed.
    assert_eq!(
        outcomes,
        vec![
            RouterOutcome::Dropped(DropReason::CallStateUnavailable),
            RouterOutcome::Dropped(DropReason::CallStateUnavailable),
            RouterOutcome::Closed(CloseReason::CallStateUnavailable),
        ]
    );
    let drops: Vec<&Value> = logs.iter().filter(|l| l["decision"] == "drop").collect();
    assert_eq!(drops.len(), 2, "{:?}", summary(&logs));
    assert!(drops
        .iter()
        .all(|l| l["reason"] == "call_state_unavailable"));
    // Three store errors, one line: the others are counted in the next one.
    let unavailable = events(&logs, "call_state_unavailable");
    assert_eq!(unavailable.len(), 1, "{:?}", summary(&logs));
    assert_eq!(unavailable[0]["level"], "ERROR");
    assert_eq!(
        unavailable[0]["store_error"],
        "ProvisionedThroughputExceededException"
    );
    assert_eq!(unavailable[0]["suppressed_since_last"], 0);
}

fn router_drop_pending() -> stream_gate_lambda::call_state_rules::DropReason {
    stream_gate_lambda::call_state_rules::DropReason::StartPending
}

/// A closer whose first attempt fails.
#[derive(Default)]
struct FlakyCloser(std::sync::Mutex<u32>);

impl stream_gate_lambda::adapters::ConnectionCloser for FlakyCloser {
    fn close<'a>(
        &'a self,
        _endpoint: &'a str,
        _connection_id: &'a str,
    ) -> BoxFuture<'a, Result<CloseOutcome, CloseError>> {
        let mut n = self.0.lock().expect("closer");
        *n += 1;
        let first = *n == 1;
        Box::pin(async move {
            if first {
                Err(CloseError {
                    code: "ThrottlingException".into(),
                })
            } else {
                Ok(CloseOutcome::Closed)
            }
        })
    }
}

#[tokio::test]
async fn router_retries_a_failed_close_only_when_the_invocation_has_time() {
    let flaky = |closer: Arc<FlakyCloser>| {
        RouterState::new(
            RouterConfig::from_lookup(lookup(&[])).expect("config"),
            credentials(),
            closer,
            CallState::Off,
        )
    };
    // `handle` gives the invocation its default budget: time for a second attempt.
    let closer = Arc::new(FlakyCloser::default());
    route(
        &flaky(closer.clone()),
        event("default-start-wrong-account.json"),
    )
    .await;
    assert_eq!(*closer.0.lock().expect("closer"), 2);
    // At the deadline: one attempt only.
    let closer = Arc::new(FlakyCloser::default());
    let e = ws_event(event("default-start-wrong-account.json"));
    let (_, outcome) =
        router::handle_until(&flaky(closer.clone()), e, tokio::time::Instant::now()).await;
    assert_eq!(
        outcome,
        RouterOutcome::Closed(CloseReason::StartAccountMismatch)
    );
    assert_eq!(*closer.0.lock().expect("closer"), 1);
}

/// A closer whose every attempt fails.
struct FailingCloser;

impl stream_gate_lambda::adapters::ConnectionCloser for FailingCloser {
    fn close<'a>(
        &'a self,
        _endpoint: &'a str,
        _connection_id: &'a str,
    ) -> BoxFuture<'a, Result<CloseOutcome, CloseError>> {
        Box::pin(async {
            Err(CloseError {
                code: "AccessDeniedException".into(),
            })
        })
    }
}

/// A close that the Management API never answers is cut at the invocation's budget (the deadline
/// less the answer margin), and the failure is loud: `close_failed` at ERROR with `deadline`.
#[tokio::test(start_paused = true)]
async fn a_close_that_outlives_the_budget_fails_loudly_with_deadline() {
    let state = RouterState::new(
        RouterConfig::from_lookup(lookup(&[])).expect("config"),
        credentials(),
        Arc::new(HangingCloser::default()),
        CallState::Off,
    );
    let started = tokio::time::Instant::now();
    let deadline = started + Duration::from_secs(1);
    let e = ws_event(event("default-start-wrong-account.json"));
    // Bounded, so that a close the budget does not cut fails the test instead of hanging it.
    let ((_, outcome), logs) = tokio::time::timeout(
        Duration::from_secs(10),
        log_capture::logs_of(router::handle_until(&state, e, deadline)),
    )
    .await
    .expect("the invocation ends within its budget");
    assert_eq!(
        outcome,
        RouterOutcome::Closed(CloseReason::StartAccountMismatch)
    );
    assert_eq!(
        started.elapsed(),
        Duration::from_secs(1) - stream_gate_lambda::budget::ANSWER_MARGIN,
        "the answer is ready a margin before the deadline"
    );
    let failed = events(&logs, "close_failed");
    assert_eq!(failed.len(), 1, "{:?}", summary(&logs));
    assert_eq!(failed[0]["level"], "ERROR");
    assert_eq!(failed[0]["aws_error"], "deadline");
    assert_eq!(failed[0]["attempts"], 1, "no time was left for a retry");
}

/// The lines of `logs` whose `event` field is `name`.
fn events<'a>(logs: &'a [Value], name: &str) -> Vec<&'a Value> {
    logs.iter().filter(|l| l["event"] == name).collect()
}

/// What an assertion may print of log lines: level, event, decision, reason and attempts (the
/// lines hold no secret, but a failing test should not print more than it needs).
fn summary(logs: &[Value]) -> Vec<String> {
    logs.iter()
        .map(|l| {
            format!(
                "{} {} {} {} {}",
                l["level"], l["event"], l["decision"], l["reason"], l["attempts"]
            )
        })
        .collect()
}

#[tokio::test]
async fn router_logs_each_close_with_its_attempts_and_a_failed_close_at_error() {
    let with_closer = |closer: Arc<dyn stream_gate_lambda::adapters::ConnectionCloser>| {
        RouterState::new(
            RouterConfig::from_lookup(lookup(&[])).expect("config"),
            credentials(),
            closer,
            CallState::Off,
        )
    };
    // Closed on the retry: one `close_retry` warning, then the close, after 2 attempts.
    let state = with_closer(Arc::new(FlakyCloser::default()));
    let (_, logs) =
        log_capture::logs_of(route(&state, event("default-start-wrong-account.json"))).await;
    let retry = events(&logs, "close_retry");
    assert_eq!(retry.len(), 1, "{:?}", summary(&logs));
    assert_eq!(retry[0]["aws_error"], "ThrottlingException");
    let closes: Vec<&Value> = logs.iter().filter(|l| l["decision"] == "close").collect();
    assert_eq!(closes.len(), 1, "{:?}", summary(&logs));
    assert_eq!(closes[0]["level"], "WARN");
    assert_eq!(closes[0]["reason"], "start_account_mismatch");
    assert_eq!(closes[0]["account_sid"], AC);
    assert_eq!(closes[0]["connection_id"], CONNECTION);
    assert_eq!(closes[0]["attempts"], 2);
    assert_eq!(closes[0]["close_result"], "Closed");
    assert!(events(&logs, "close_failed").is_empty());

    // Closed at the first attempt: 1 attempt, no retry.
    let (state, _) = router_state(&[]);
    let (_, logs) =
        log_capture::logs_of(route(&state, event("default-start-wrong-account.json"))).await;
    let closes: Vec<&Value> = logs.iter().filter(|l| l["decision"] == "close").collect();
    assert_eq!(closes.len(), 1, "{:?}", summary(&logs));
    assert_eq!(closes[0]["attempts"], 1);
    assert!(events(&logs, "close_retry").is_empty());

    // Failing twice: `close_failed` at ERROR with the AWS error code, after 2 attempts.
    let state = with_closer(Arc::new(FailingCloser));
    let (_, logs) =
        log_capture::logs_of(route(&state, event("default-start-wrong-account.json"))).await;
    let failed = events(&logs, "close_failed");
    assert_eq!(failed.len(), 1, "{:?}", summary(&logs));
    assert_eq!(failed[0]["level"], "ERROR");
    assert_eq!(failed[0]["aws_error"], "AccessDeniedException");
    assert_eq!(failed[0]["reason"], "start_account_mismatch");
    assert_eq!(failed[0]["account_sid"], AC);
    assert_eq!(failed[0]["attempts"], 2);

    // Failing at the deadline: no time for a retry, 1 attempt.
    let e = ws_event(event("default-start-wrong-account.json"));
    let (_, logs) =
        log_capture::logs_of(router::handle_until(&state, e, tokio::time::Instant::now())).await;
    let failed = events(&logs, "close_failed");
    assert_eq!(failed.len(), 1, "{:?}", summary(&logs));
    assert_eq!(failed[0]["attempts"], 1);

    // No `@connections` endpoint to call (no domain name, none configured): no attempt at all.
    let (state, closer) = router_state(&[]);
    let mut e = event("default-start-wrong-account.json");
    e["requestContext"]
        .as_object_mut()
        .map(|o| o.remove("domainName"));
    let (outcome, logs) = log_capture::logs_of(route(&state, e)).await;
    assert_eq!(
        outcome.2,
        RouterOutcome::Closed(CloseReason::StartAccountMismatch)
    );
    assert!(closer.closed().is_empty());
    let failed = events(&logs, "close_failed");
    assert_eq!(failed.len(), 1, "{:?}", summary(&logs));
    assert_eq!(failed[0]["aws_error"], "no_endpoint");
    assert_eq!(failed[0]["attempts"], 0);
}

/// A frame of an event Twilio may add later.
fn unknown_event() -> Value {
    let mut e = event("default-media.json");
    e["body"] = json!(
        r#"{"event":"transcript","sequenceNumber":"9","streamSid":"MZ00112233445566778899aabbccddeeff"}"#
    );
    e
}

#[tokio::test]
async fn router_logs_the_accepted_start_and_stop_and_the_ignored_unknown_event() {
    let (state, _) = router_state(&[]);
    let logs = route_accepted_logged(
        &state,
        [
            event("default-start.json"),
            event("default-stop.json"),
            unknown_event(),
        ],
    )
    .await;
    let start = events(&logs, "start");
    assert_eq!(start.len(), 1, "{:?}", summary(&logs));
    assert_eq!(start[0]["level"], "INFO");
    assert_eq!(start[0]["decision"], "accept");
    assert_eq!(start[0]["connection_id"], CONNECTION);
    assert_eq!(start[0]["account_sid"], AC);
    assert_eq!(start[0]["call_sid"], CA);
    assert_eq!(start[0]["stream_sid"], "MZ00112233445566778899aabbccddeeff");
    // The start's call token verified with callTokenKeys[0].
    assert_eq!(start[0]["call_token_key"], 0);
    let stop = events(&logs, "stop");
    assert_eq!(stop.len(), 1, "{:?}", summary(&logs));
    assert_eq!(
        (
            &stop[0]["level"],
            &stop[0]["decision"],
            &stop[0]["call_sid"]
        ),
        (&json!("INFO"), &json!("accept"), &json!(CA))
    );
    let unknown = events(&logs, "unknown");
    assert_eq!(unknown.len(), 1, "{:?}", summary(&logs));
    assert_eq!(
        (&unknown[0]["decision"], &unknown[0]["metric"]),
        (&json!("ignore"), &json!("unknown_event"))
    );
}

#[tokio::test]
async fn router_builds_no_record_for_connected_and_unknown_events() {
    // Neither is delivered, and neither is even handed to the record builder (which would refuse
    // it, loudly: `record_refused` at ERROR).
    let (state, sink) = delivering_router(CallState::Off);
    let logs =
        route_accepted_logged(&state, [event("default-connected.json"), unknown_event()]).await;
    assert!(sink.taken().is_empty());
    assert!(
        logs.iter().all(|l| l["level"] != "ERROR"),
        "{:?}",
        summary(&logs)
    );
    // The capture is live: the unknown event's own line is there.
    assert_eq!(events(&logs, "unknown").len(), 1, "{:?}", summary(&logs));
}

#[test]
fn router_deadline_of_a_unix_deadline_is_that_far_ahead() {
    let now = tokio::time::Instant::now();
    let at = router::deadline_of(stream_gate_lambda::clock::unix_now_ms() + 10_000);
    let ahead = at.saturating_duration_since(now);
    assert!(
        ahead > Duration::from_secs(9) && ahead <= Duration::from_millis(10_500),
        "{ahead:?}"
    );
    // A deadline already past is now.
    let past = router::deadline_of(1);
    assert!(
        past.saturating_duration_since(tokio::time::Instant::now()) < Duration::from_millis(500)
    );
    // No deadline from the Runtime API (0) is the default budget, not "already past".
    let unknown = router::deadline_of(0).saturating_duration_since(tokio::time::Instant::now());
    assert!(
        unknown > Duration::from_secs(4) && unknown <= router::DEFAULT_INVOCATION_BUDGET,
        "{unknown:?}"
    );
}

fn webhook_state(env: &[(&'static str, &'static str)]) -> WebhookState {
    let mut all = vec![("STREAM_GATE_STREAM_URL", "wss://gate.example.com/prod")];
    all.extend_from_slice(env);
    WebhookState {
        config: WebhookConfig::from_lookup(lookup(&all)).expect("config"),
        credentials: credentials(),
        call_state: CallState::Off,
    }
}

async fn webhook(state: &WebhookState, value: Value) -> (u16, String) {
    let request = lambda_http::request::from_str(&value.to_string()).expect("http event");
    let response = voice_webhook::handle(state, request).await;
    let body = match response.body() {
        lambda_http::Body::Text(t) => t.clone(),
        lambda_http::Body::Empty => String::new(),
        lambda_http::Body::Binary(b) => String::from_utf8_lossy(b).into_owned(),
        _ => String::from("<other body>"),
    };
    (response.status().as_u16(), body)
}

#[tokio::test]
async fn webhook_answers_twiml_for_the_signed_event() {
    // No STREAM_GATE_WEBHOOK_URL: the URL is https://{requestContext.domainName}{rawPath}.
    let state = webhook_state(&[]);
    let (status, body) = webhook(&state, event("voice-webhook.json")).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("<Stream url=\"wss://gate.example.com/prod\">"),
        "{body}"
    );
    assert!(
        body.contains("<Parameter name=\"token\" value=\"v1."),
        "{body}"
    );
}

#[tokio::test]
async fn webhook_never_signs_over_the_host_header() {
    let state = webhook_state(&[]);
    // A request whose signature is valid for the URL on the attacker's Host, but API Gateway's
    // domain is another one: the signed URL is built from the domain, so it is refused.
    let mut e = event("voice-webhook.json");
    e["requestContext"]["domainName"] = json!("abc123.execute-api.us-east-1.amazonaws.com");
    let (status, _) = webhook(&state, e).await;
    assert_eq!(status, 403);
    // And the Host header alone changes nothing for a correctly signed request.
    let mut e = event("voice-webhook.json");
    e["headers"]["host"] = json!("evil.example.com");
    let (status, _) = webhook(&state, e).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn webhook_refusals_have_their_status() {
    let state = webhook_state(&[]);
    let mut e = event("voice-webhook.json");
    e["requestContext"]["http"]["method"] = json!("GET");
    assert_eq!(webhook(&state, e).await, (405, String::new()));
    let mut e = event("voice-webhook.json");
    e["headers"]
        .as_object_mut()
        .map(|h| h.remove("x-twilio-signature"));
    assert_eq!(webhook(&state, e).await, (403, String::new()));
    let mut e = event("voice-webhook.json");
    e["headers"]["x-twilio-signature"] = json!("YFfwGS2Ev7f9qAP9MmRoMS7C724=");
    assert_eq!(webhook(&state, e).await, (403, String::new()));
    let no_credentials = WebhookState {
        config: webhook_state(&[]).config,
        credentials: Arc::new(CredentialCache::empty()),
        call_state: CallState::Off,
    };
    assert_eq!(
        webhook(&no_credentials, event("voice-webhook.json")).await,
        (503, String::new())
    );
}

const WEBHOOK_TOKEN: &str = "test-only-auth-token-not-a-secret";
const WEBHOOK_URL: &str = "https://hooks.example.com/voice";

/// The webhook event with this form (percent-encoded by `form_urlencoded`), signed for `url`.
fn signed_webhook(fields: &[(&str, &str)], url: &str) -> Value {
    let mut params: Vec<(&str, &str)> = vec![
        ("AccountSid", AC),
        ("CallSid", "CA0123456789abcdef0123456789abcdef"),
    ];
    params.extend_from_slice(fields);
    let body = params
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&");
    let mut e = event("voice-webhook.json");
    e["body"] = json!(body);
    e["headers"]["x-twilio-signature"] = json!(stream_gate_domain::compute_signature(
        WEBHOOK_TOKEN,
        url,
        &params
    ));
    e
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn webhook_passes_who_called_only_when_present_and_short() {
    let state = webhook_state(&[]);
    let (status, body) = webhook(&state, event("voice-webhook.json")).await;
    assert_eq!(status, 200);
    assert!(
        body.contains(r#"<Parameter name="from" value="+15551230000"/>"#),
        "{body}"
    );
    let longest = "n".repeat(128);
    let too_long = "n".repeat(129);
    for (fields, from, caller_name) in [
        (
            vec![("From", ""), ("CallerName", longest.as_str())],
            false,
            true,
        ),
        (
            vec![("From", "+15551230000"), ("CallerName", too_long.as_str())],
            true,
            false,
        ),
    ] {
        let (status, body) = webhook(&state, signed_webhook(&fields, WEBHOOK_URL)).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body.contains(r#"name="from""#), from, "{body}");
        assert_eq!(body.contains(r#"name="callerName""#), caller_name, "{body}");
        if caller_name {
            assert!(
                body.contains(&format!(
                    r#"<Parameter name="callerName" value="{longest}"/>"#
                )),
                "{body}"
            );
        }
    }
}

#[tokio::test]
async fn webhook_signed_url_keeps_the_query_string() {
    let state = webhook_state(&[]);
    let mut e = signed_webhook(&[], &format!("{WEBHOOK_URL}?tenant=a"));
    e["rawQueryString"] = json!("tenant=a");
    assert_eq!(webhook(&state, e).await.0, 200);
    // Signed without it: refused.
    let mut e = signed_webhook(&[], WEBHOOK_URL);
    e["rawQueryString"] = json!("tenant=a");
    assert_eq!(webhook(&state, e).await.0, 403);
}

#[tokio::test]
async fn webhook_signed_url_has_no_bare_question_mark() {
    // lambda_http builds the URI from `rawQueryString`, and an empty one adds no `?`; a `Request`
    // built otherwise can still end in a bare `?`, which adds nothing to the signed URL either.
    let state = webhook_state(&[]);
    let bare = |value: Value| {
        let mut request = lambda_http::request::from_str(&value.to_string()).expect("event");
        *request.uri_mut() = "https://hooks.example.com/voice?".parse().expect("uri");
        assert_eq!(
            request.uri().query(),
            Some(""),
            "the URI keeps its bare `?`"
        );
        request
    };
    let status = |value: Value| {
        let request = bare(value);
        let state = &state;
        async move {
            voice_webhook::handle(state, request)
                .await
                .status()
                .as_u16()
        }
    };
    assert_eq!(status(signed_webhook(&[], WEBHOOK_URL)).await, 200);
    assert_eq!(
        status(signed_webhook(&[], &format!("{WEBHOOK_URL}?"))).await,
        403
    );
}

#[tokio::test]
async fn webhook_refusal_headers_and_too_large_bodies() {
    let state = webhook_state(&[]);
    let request = |value: Value| lambda_http::request::from_str(&value.to_string()).expect("event");
    let mut e = event("voice-webhook.json");
    e["requestContext"]["http"]["method"] = json!("GET");
    let r = voice_webhook::handle(&state, request(e)).await;
    assert_eq!(r.status().as_u16(), 405);
    assert_eq!(
        r.headers().get("allow").and_then(|v| v.to_str().ok()),
        Some("POST")
    );
    let mut e = event("voice-webhook.json");
    e["headers"]["x-twilio-signature"] = json!("YFfwGS2Ev7f9qAP9MmRoMS7C724=");
    let r = voice_webhook::handle(&state, request(e)).await;
    assert_eq!(r.status().as_u16(), 403);
    assert!(r.headers().get("allow").is_none());

    let mut e = event("voice-webhook.json");
    e["body"] = json!("a".repeat(stream_gate_domain::webhook::MAX_BODY_BYTES + 1));
    assert_eq!(webhook(&state, e).await, (413, String::new()));
}

// Shared-key signatures (Twilio's Webhooks configuration API), computed by Twilio's own Python
// library: accepted at the handshake and at the webhook; wrong key id, wrong or missing algorithm
// and SHA1/SHA256 confusion refused with their own reason codes.
const SHARED_KEY_ID: &str = "KStestonly00000000000000000000001";
const SHARED_KEY: &str = "test-only-shared-key-secret-sha";
const SETTINGS: &str = "X-Twilio-Webhooks-Signature-Settings";
const HANDSHAKE_URL: &str = "wss://abc123.execute-api.us-east-1.amazonaws.com/prod";

fn with_shared_key(mut e: Value, signature: &str, settings: &str, header_map: &str) -> Value {
    if let Some(h) = e[header_map].as_object_mut() {
        h.retain(|name, _| !name.eq_ignore_ascii_case("x-twilio-signature"));
    }
    e[header_map]["X-Twilio-Signature"] = json!(signature);
    e[header_map][SETTINGS] = json!(settings);
    e
}

#[tokio::test]
async fn shared_key_signatures_from_twilios_library_at_the_handshake() {
    use stream_gate_testkit::oracle::twilio_signature;
    let state = authorizer_state(&[]);
    let handshake = |sig: &str, settings: &str| {
        let mut e = event("authorizer-unauthenticated.json");
        e["multiValueHeaders"] = json!({});
        let mut e = with_shared_key(e, sig, settings, "headers");
        e["multiValueHeaders"] = json!({});
        e
    };
    for alg in ["HMAC_SHA256", "HMAC_SHA1"] {
        let sig = twilio_signature(SHARED_KEY, HANDSHAKE_URL, &[], alg);
        let settings = format!("key={SHARED_KEY_ID},algorithm={alg}");
        let (r, reason) = authorize(&state, handshake(&sig, &settings)).await;
        assert_eq!(reason, None, "{alg}");
        assert_eq!(r.context["credential"], "twilioAccounts[0].sharedKeys[0]");
        assert_eq!(r.context["authMethod"], "twilio-signature");
    }
    let sha1 = twilio_signature(SHARED_KEY, HANDSHAKE_URL, &[], "HMAC_SHA1");
    let sha256 = twilio_signature(SHARED_KEY, HANDSHAKE_URL, &[], "HMAC_SHA256");
    for (sig, settings, expected) in [
        (
            &sha256,
            "key=KSother,algorithm=HMAC_SHA256".to_owned(),
            DenyReason::SharedKeyUnknown,
        ),
        (
            &sha256,
            format!("key={SHARED_KEY_ID}"),
            DenyReason::SharedKeyAlgorithmMissing,
        ),
        (
            &sha256,
            format!("key={SHARED_KEY_ID},algorithm=HMAC_SHA512"),
            DenyReason::SharedKeyAlgorithmUnsupported,
        ),
        (
            &sha1,
            format!("key={SHARED_KEY_ID},algorithm=HMAC_SHA256"),
            DenyReason::SignatureMismatch,
        ),
        (
            &sha256,
            format!("key={SHARED_KEY_ID},algorithm=HMAC_SHA1"),
            DenyReason::SignatureMismatch,
        ),
    ] {
        let (_, reason) = authorize(&state, handshake(sig, &settings)).await;
        assert_eq!(reason, Some(expected), "settings {settings}");
    }
}

/// The shared-key signature Twilio's Python library computes over `voice-webhook.json`'s form
/// for `url` with `algorithm`.
fn oracle_webhook_signature(url: &str, algorithm: &str) -> String {
    let body = event("voice-webhook.json")["body"]
        .as_str()
        .expect("body")
        .to_owned();
    let params: Vec<(String, String)> = url::form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect();
    let params: Vec<(&str, &str)> = params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    stream_gate_testkit::oracle::twilio_signature(SHARED_KEY, url, &params, algorithm)
}

#[tokio::test]
async fn webhook_signature_settings_header_must_come_once_or_repeat_one_value() {
    let state = webhook_state(&[]);
    let sig = oracle_webhook_signature(WEBHOOK_URL, "HMAC_SHA256");
    let settings = format!("key={SHARED_KEY_ID},algorithm=HMAC_SHA256");
    // lambda_http joins repeated headers of an HTTP API event; a `Request` can still carry two.
    let post = |second: &str| {
        let e = with_shared_key(event("voice-webhook.json"), &sig, &settings, "headers");
        let mut request = lambda_http::request::from_str(&e.to_string()).expect("event");
        request.headers_mut().append(
            SETTINGS,
            http::HeaderValue::from_str(second).expect("header"),
        );
        request
    };
    let ok = voice_webhook::handle(&state, post(&settings)).await;
    assert_eq!(
        ok.status().as_u16(),
        200,
        "the same settings twice count once"
    );
    let other = "key=KSother,algorithm=HMAC_SHA256";
    let refused = voice_webhook::handle(&state, post(other)).await;
    assert_eq!(
        refused.status().as_u16(),
        403,
        "two different settings are refused"
    );
}

#[tokio::test]
async fn shared_key_signatures_from_twilios_library_at_the_webhook() {
    let state = webhook_state(&[]);
    let url = "https://hooks.example.com/voice";
    let post = |sig: &str, settings: &str| {
        with_shared_key(event("voice-webhook.json"), sig, settings, "headers")
    };
    for alg in ["HMAC_SHA256", "HMAC_SHA1"] {
        let sig = oracle_webhook_signature(url, alg);
        let (status, body) = webhook(
            &state,
            post(&sig, &format!("key={SHARED_KEY_ID},algorithm={alg}")),
        )
        .await;
        assert_eq!(status, 200, "{alg}");
        assert!(body.contains("<Parameter name=\"token\""), "{alg}");
    }
    let sha1 = oracle_webhook_signature(url, "HMAC_SHA1");
    for settings in [
        "key=KSother,algorithm=HMAC_SHA1".to_owned(),
        format!("key={SHARED_KEY_ID}"),
        format!("key={SHARED_KEY_ID},algorithm=HMAC_MD5"),
        format!("key={SHARED_KEY_ID},algorithm=HMAC_SHA256"),
    ] {
        assert_eq!(
            webhook(&state, post(&sha1, &settings)).await.0,
            403,
            "{settings}"
        );
    }
}
