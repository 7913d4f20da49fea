//! The router's `handle` called in-process with the `events/` documents and the recording
//! adapters: the returned outcome (decision, reason, close requested), the records delivered and
//! the log lines are asserted directly (the binaries' wiring: `lambda_binaries.rs`).

use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
use serde_json::{json, Value};
use stream_gate_domain::call_state::{CallTokenId, StartedCall};
use stream_gate_domain::CloseReason;
use stream_gate_domain::{AccountSid, CallSid};
use stream_gate_lambda::adapters::delivery::{DeliveryError, DeliverySink};
use stream_gate_lambda::adapters::{
    CallStateStore, CloseError, CloseOutcome, RecordingCloser, SessionEndMark, StartClaim,
    StoreError,
};
use stream_gate_lambda::call_state_rules::DropReason;
use stream_gate_lambda::config::RouterConfig;
use stream_gate_lambda::entrypoints::router;
use stream_gate_lambda::entrypoints::router::RouterOutcome;
use stream_gate_lambda::state::{CallState, RouterState};
use stream_gate_testkit::event;

const AC: &str = "ACdeadbeefdeadbeefdeadbeefdeadbeef";
const CONNECTION: &str = "Xk2TmdKPIAMCJqw=";

mod support;
use support::log_capture;
use support::slow_fakes::HangingCloser;
use support::states::{credentials, lookup};

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

fn ws_event(value: Value) -> ApiGatewayWebsocketProxyRequest {
    serde_json::from_value(value).expect("websocket event")
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
        _stream: &'a StartedCall,
        _token: Option<&'a CallTokenId>,
        _now: u64,
    ) -> BoxFuture<'a, Result<StartClaim, StoreError>> {
        Self::error()
    }

    fn started<'a>(
        &'a self,
        _connection_id: &'a str,
        _now: u64,
    ) -> BoxFuture<'a, Result<Option<StartedCall>, StoreError>> {
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

    fn end_session<'a>(
        &'a self,
        _account: &'a AccountSid,
        _call: &'a CallSid,
        _now: u64,
    ) -> BoxFuture<'a, Result<SessionEndMark, StoreError>> {
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
