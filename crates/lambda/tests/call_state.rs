//! Per-connection call state (docs/design.md §5) through the router and webhook handlers: every rule
//! in-process against the memory store, and again through the real AWS SDK against DynamoDB
//! served by moto on loopback — the start race, the SDK calls per connection, and a store that
//! fails (through the fault-injecting proxy).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use serde_json::{json, Value};
use stream_gate_domain::CloseReason;
use stream_gate_lambda::adapters::{CallStateStore, DynamoDbStore, MemoryStore, RecordingCloser};
use stream_gate_lambda::call_state_rules::DropReason;
use stream_gate_lambda::config::RouterConfig;
use stream_gate_lambda::entrypoints::router::{self, RouterOutcome};
use stream_gate_lambda::entrypoints::voice_webhook;
use stream_gate_lambda::state::{CallState, RouterState, WebhookState};
use stream_gate_testkit::fault_proxy::{Fault, FaultProxy};
use stream_gate_testkit::moto::moto;
use stream_gate_testkit::{event, repo_file};

mod support;
use support::dynamodb::{create_table, dynamodb_client};
use support::states::{credentials, now_ms, router_on, webhook_on};

const OTHER_STREAM: &str = "MZ0000000000000000000000000000000a";
const OTHER_CALL: &str = "CA0000000000000000000000000000000b";
const OTHER_ACCOUNT: &str = "AC0000000000000000000000000000000c";
/// How long a DynamoDB request may take before the client gives up (the failing-store test waits
/// for it).
const STORE_TIMEOUT: Duration = Duration::from_secs(2);

/// A `$default` event of `file` on `connection`, connected `age_ms` ago, with `edit` applied to
/// the frame.
fn frame(file: &str, connection: &str, age_ms: i64, edit: impl FnOnce(&mut Value)) -> Value {
    let mut e = event(file);
    e["requestContext"]["connectionId"] = json!(connection);
    e["requestContext"]["connectedAt"] = json!(now_ms() - age_ms);
    let mut body: Value = serde_json::from_str(e["body"].as_str().expect("body")).expect("frame");
    edit(&mut body);
    e["body"] = json!(body.to_string());
    e
}

fn disconnect(connection: &str) -> Value {
    let mut e = event("disconnect.json");
    e["requestContext"]["connectionId"] = json!(connection);
    e
}

async fn route(state: &RouterState, e: Value) -> RouterOutcome {
    let (response, outcome) = router::handle(
        state,
        serde_json::from_value::<router::RouterEvent>(e).expect("event"),
    )
    .await;
    assert_eq!(response.status_code, 200);
    assert!(response.body.is_none(), "nothing is ever written back");
    outcome
}

const CONNECTED_LONG_AGO: i64 = 60_000;

/// Every rule of §5 against `store`, through the router handler.
async fn the_rules_hold(store: Arc<dyn CallStateStore>) {
    let state = router_on(store.clone());
    let accepted = |o: &RouterOutcome| matches!(o, RouterOutcome::Accepted(_));
    let closed = |r: CloseReason| RouterOutcome::Closed(r);

    // Media before any start: dropped within the grace, closed after it.
    let o = route(&state, frame("default-media.json", "c-early", 0, |_| {})).await;
    assert_eq!(o, RouterOutcome::Dropped(DropReason::StartPending));
    let o = route(
        &state,
        frame("default-media.json", "c-late", CONNECTED_LONG_AGO, |_| {}),
    )
    .await;
    assert_eq!(o, closed(CloseReason::MediaBeforeStart));
    for file in ["default-stop.json"] {
        let o = route(&state, frame(file, "c-late2", CONNECTED_LONG_AGO, |_| {})).await;
        assert_eq!(o, closed(CloseReason::MediaBeforeStart), "{file}");
    }
    // A socket that never verifies (issue 22): within the grace its `connected` and unknown events
    // are accepted (never delivered); past it, they close it like any other frame.
    let unknown = |f: &mut Value| f["event"] = json!("later");
    for (connection, edit) in [("c-quiet", None), ("c-chatty", Some(unknown))] {
        let edit = |f: &mut Value| edit.into_iter().for_each(|e| e(f));
        let o = route(&state, frame("default-connected.json", connection, 0, edit)).await;
        assert!(accepted(&o), "{connection}: {o:?}");
        let late = frame(
            "default-connected.json",
            connection,
            CONNECTED_LONG_AGO,
            edit,
        );
        let o = route(&state, late).await;
        assert_eq!(o, closed(CloseReason::StartMissing), "{connection}");
    }

    // A verified start, then its stream's frames.
    let o = route(&state, frame("default-start.json", "c1", 100, |_| {})).await;
    assert!(accepted(&o), "{o:?}");
    for file in ["default-media.json", "default-stop.json"] {
        let o = route(&state, frame(file, "c1", CONNECTED_LONG_AGO, |_| {})).await;
        assert!(accepted(&o), "{file}: {o:?}");
    }
    // Another stream's frame on that connection.
    let o = route(
        &state,
        frame("default-media.json", "c1", CONNECTED_LONG_AGO, |f| {
            f["streamSid"] = json!(OTHER_STREAM)
        }),
    )
    .await;
    assert_eq!(o, closed(CloseReason::StreamSidMismatch));
    // A `stop` naming another call than the recorded start (issue 22); another account is the
    // stateless verdict's to close already (the handshake proved one).
    let cases = [
        ("callSid", OTHER_CALL, CloseReason::CallSidMismatch),
        (
            "accountSid",
            OTHER_ACCOUNT,
            CloseReason::StopAccountMismatch,
        ),
    ];
    for (field, other, reason) in cases {
        let o = route(
            &state,
            frame("default-stop.json", "c1", CONNECTED_LONG_AGO, |f| {
                f["stop"][field] = json!(other)
            }),
        )
        .await;
        assert_eq!(o, closed(reason), "{field}");
    }
    // A second start on the connection.
    let o = route(&state, frame("default-start.json", "c1", 100, |_| {})).await;
    assert_eq!(o, closed(CloseReason::StartRepeated));

    // The same call token on another connection — also from another instance (fresh cache), and
    // also after the first connection is gone.
    let o = route(&state, frame("default-start.json", "c2", 100, |_| {})).await;
    assert_eq!(o, closed(CloseReason::CallTokenReused));
    let other_instance = router_on(store.clone());
    let o = route(
        &other_instance,
        frame("default-start.json", "c3", 100, |_| {}),
    )
    .await;
    assert_eq!(o, closed(CloseReason::CallTokenReused));
    // ... which reads the first connection's start from the store.
    let o = route(
        &other_instance,
        frame("default-media.json", "c1", CONNECTED_LONG_AGO, |_| {}),
    )
    .await;
    assert!(accepted(&o), "{o:?}");

    assert_eq!(
        route(&state, disconnect("c1")).await,
        RouterOutcome::Disconnected
    );
    let fresh = router_on(store.clone());
    let o = route(
        &fresh,
        frame("default-media.json", "c1", CONNECTED_LONG_AGO, |_| {}),
    )
    .await;
    assert_eq!(
        o,
        closed(CloseReason::MediaBeforeStart),
        "forgotten on $disconnect"
    );
    let o = route(&fresh, frame("default-start.json", "c4", 100, |_| {})).await;
    assert_eq!(
        o,
        closed(CloseReason::CallTokenReused),
        "a token opens one connection, ever"
    );
}

#[tokio::test]
async fn the_rules_hold_in_memory() {
    the_rules_hold(Arc::new(MemoryStore::new(1000))).await;
}

#[tokio::test]
async fn a_racing_media_frame_is_dropped_then_accepted_once_the_start_is_recorded() {
    let store = Arc::new(MemoryStore::new(1000));
    let state = router_on(store.clone());
    let started = std::time::Instant::now();
    let o = route(&state, frame("default-media.json", "race", 0, |_| {})).await;
    assert_eq!(o, RouterOutcome::Dropped(DropReason::StartPending));
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "the wait is bounded"
    );
    // The start's write lands while a frame waits for it: that frame is accepted.
    let waiting = tokio::spawn({
        let state = router_on(store.clone());
        async move { route(&state, frame("default-media.json", "race", 0, |_| {})).await }
    });
    tokio::time::sleep(Duration::from_millis(10)).await;
    let o = route(&state, frame("default-start.json", "race", 0, |_| {})).await;
    assert!(matches!(o, RouterOutcome::Accepted(_)), "{o:?}");
    let o = waiting.await.expect("join");
    assert!(matches!(o, RouterOutcome::Accepted(_)), "{o:?}");
    let o = route(&state, frame("default-media.json", "race", 0, |_| {})).await;
    assert!(matches!(o, RouterOutcome::Accepted(_)), "{o:?}");
}

async fn token_of(state: &WebhookState) -> String {
    let request = lambda_http::request::from_str(&event("voice-webhook.json").to_string())
        .expect("http event");
    let response = voice_webhook::handle(state, request).await;
    assert_eq!(response.status(), 200);
    let lambda_http::Body::Text(twiml) = response.body() else {
        panic!("TwiML text");
    };
    let at = twiml.find("name=\"token\" value=\"").expect("token") + 20;
    twiml[at..at + twiml[at..].find('"').expect("quote")].to_owned()
}

async fn a_replayed_webhook_gets_the_same_token(store: Arc<dyn CallStateStore>) {
    let first = token_of(&webhook_on(store.clone())).await;
    tokio::time::sleep(Duration::from_millis(1100)).await; // a later second: a new exp if minted
    let again = token_of(&webhook_on(store.clone())).await;
    assert!(
        first == again,
        "a repeated webhook for one CallSid answers the same token"
    );
    let stateless = WebhookState {
        call_state: CallState::Off,
        ..webhook_on(store)
    };
    assert!(
        token_of(&stateless).await != first,
        "without state every webhook mints anew"
    );
}

#[tokio::test]
async fn a_replayed_webhook_gets_the_same_token_in_memory() {
    a_replayed_webhook_gets_the_same_token(Arc::new(MemoryStore::new(1000))).await;
}

/// Counts the DynamoDB operations that go out, by `x-amz-target`.
#[derive(Debug, Default, Clone)]
struct Calls {
    transact: Arc<AtomicUsize>,
    get: Arc<AtomicUsize>,
    delete: Arc<AtomicUsize>,
    put: Arc<AtomicUsize>,
}

impl Intercept for Calls {
    fn name(&self) -> &'static str {
        "Calls"
    }
    fn read_before_transmit(
        &self,
        ctx: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let counter = match ctx.request().headers().get("x-amz-target") {
            Some("DynamoDB_20120810.TransactWriteItems") => &self.transact,
            Some("DynamoDB_20120810.GetItem") => &self.get,
            Some("DynamoDB_20120810.DeleteItem") => &self.delete,
            Some("DynamoDB_20120810.PutItem") => &self.put,
            _ => return Ok(()),
        };
        counter.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

#[tokio::test]
async fn the_rules_hold_on_dynamodb_through_the_real_sdk() {
    let m = moto().await;
    let calls = Calls::default();
    let client = dynamodb_client(&m.endpoint, STORE_TIMEOUT, calls.clone());
    create_table(&client, "stream-gate-calls").await;
    the_rules_hold(Arc::new(DynamoDbStore::with_client(
        client,
        "stream-gate-calls",
    )))
    .await;
}

#[tokio::test]
async fn a_replayed_webhook_gets_the_same_token_on_dynamodb() {
    let m = moto().await;
    let client = dynamodb_client(&m.endpoint, STORE_TIMEOUT, Calls::default());
    create_table(&client, "calls").await;
    a_replayed_webhook_gets_the_same_token(Arc::new(DynamoDbStore::with_client(client, "calls")))
        .await;
}

#[tokio::test]
async fn sdk_calls_per_connection_stay_within_budget() {
    let m = moto().await;
    let calls = Calls::default();
    let client = dynamodb_client(&m.endpoint, STORE_TIMEOUT, calls.clone());
    create_table(&client, "calls").await;
    let store: Arc<dyn CallStateStore> = Arc::new(DynamoDbStore::with_client(client, "calls"));
    let starter = router_on(store.clone());
    let other = router_on(store.clone());
    let count = |c: &Arc<AtomicUsize>| c.load(Ordering::SeqCst);

    let o = route(&starter, frame("default-start.json", "b1", 100, |_| {})).await;
    assert!(matches!(o, RouterOutcome::Accepted(_)), "{o:?}");
    assert_eq!(count(&calls.transact), 1, "one conditional write per start");
    for _ in 0..50 {
        route(
            &starter,
            frame("default-media.json", "b1", CONNECTED_LONG_AGO, |_| {}),
        )
        .await;
    }
    assert_eq!(
        count(&calls.get),
        0,
        "the instance that recorded the start reads nothing"
    );
    for _ in 0..50 {
        let o = route(
            &other,
            frame("default-media.json", "b1", CONNECTED_LONG_AGO, |_| {}),
        )
        .await;
        assert!(matches!(o, RouterOutcome::Accepted(_)), "{o:?}");
    }
    assert_eq!(
        count(&calls.get),
        1,
        "one read per connection per other warm instance"
    );
    route(&starter, disconnect("b1")).await;
    assert_eq!(count(&calls.delete), 1, "one delete per disconnect");
    // A disconnect on an instance that never saw the call, with no sink: no read, one delete.
    route(
        &starter,
        frame("default-start.json", "b2", 100, |f| {
            f["start"]["customParameters"]
                .as_object_mut()
                .map(|p| p.remove("token"));
        }),
    )
    .await;
    let reads = count(&calls.get);
    route(&router_on(store.clone()), disconnect("b2")).await;
    assert_eq!(
        count(&calls.get),
        reads,
        "no read at $disconnect without a sink"
    );
    assert_eq!(count(&calls.delete), 2);
    assert_eq!(count(&calls.put), 0);
}

#[tokio::test]
async fn a_failing_store_closes_starts_and_keeps_verified_calls_streaming() {
    let m = moto().await;
    let proxy = FaultProxy::start(&m.endpoint).await;
    let client = dynamodb_client(&proxy.url, STORE_TIMEOUT, Calls::default());
    create_table(&client, "calls").await;
    let store: Arc<dyn CallStateStore> = Arc::new(DynamoDbStore::with_client(client, "calls"));
    let state = router_on(store.clone());
    let o = route(&state, frame("default-start.json", "f1", 100, |_| {})).await;
    assert!(matches!(o, RouterOutcome::Accepted(_)), "{o:?}");

    for fault in [
        Fault::Error(500, "InternalServerError"),
        Fault::Error(400, "ProvisionedThroughputExceededException"),
        Fault::Delay(Duration::from_secs(5)),
    ] {
        proxy.set(fault.clone());
        let started = std::time::Instant::now();
        // A verified, cached connection keeps streaming.
        let o = route(
            &state,
            frame("default-media.json", "f1", CONNECTED_LONG_AGO, |_| {}),
        )
        .await;
        assert!(matches!(o, RouterOutcome::Accepted(_)), "{fault:?}: {o:?}");
        // A start cannot be recorded: closed (fail closed).
        let mut other = frame("default-start.json", "f2", 100, |f| {
            f["start"]["customParameters"]
                .as_object_mut()
                .map(|p| p.remove("token"));
        });
        other["requestContext"]["connectionId"] = json!("f2");
        let fresh = RouterState::new(
            RouterConfig::from_lookup(|k| match k {
                "STREAM_GATE_CALL_TOKEN" => Some("optional".into()),
                "STREAM_GATE_MANAGEMENT_ENDPOINT" => Some("http://127.0.0.1:9/prod".into()),
                "STREAM_GATE_CALL_STATE" => Some("memory".into()),
                _ => None,
            })
            .expect("config"),
            credentials(),
            Arc::new(RecordingCloser::default()),
            CallState::Store(store.clone()),
        );
        let o = route(&fresh, other).await;
        assert_eq!(
            o,
            RouterOutcome::Closed(CloseReason::CallStateUnavailable),
            "{fault:?}"
        );
        // An uncached connection's media is neither accepted nor closed.
        let o = route(
            &fresh,
            frame("default-media.json", "f1", CONNECTED_LONG_AGO, |_| {}),
        )
        .await;
        assert_eq!(
            o,
            RouterOutcome::Dropped(DropReason::CallStateUnavailable),
            "{fault:?}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{fault:?}: bounded by the timeouts"
        );
    }
    proxy.set(Fault::Pass);
    let o = route(&state, frame("default-start.json", "f3", 100, |_| {})).await;
    assert_eq!(
        o,
        RouterOutcome::Closed(CloseReason::CallTokenReused),
        "recovered"
    );
}

/// Delivery behind the gate (docs/records.md): with call state on, every accepted frame of a
/// verified call produces exactly one schema-valid record, a final `disconnect` closes it, and no
/// refused frame, dropped frame or attack connection produces any; the call token never leaves.
#[tokio::test]
async fn only_verified_calls_reach_the_sink_one_record_per_accepted_frame() {
    use stream_gate_lambda::adapters::RecordingSink;
    let sink = Arc::new(RecordingSink::default());
    let state = router_on(Arc::new(MemoryStore::new(1000))).with_sink(sink.clone());

    // The legitimate call.
    assert_eq!(
        route(&state, frame("default-connected.json", "ok", 10, |_| {})).await,
        RouterOutcome::Accepted(stream_gate_domain::Accepted::Connected)
    );
    for file in [
        "default-start.json",
        "default-media.json",
        "default-media.json",
        "default-stop.json",
    ] {
        let o = route(&state, frame(file, "ok", 50, |_| {})).await;
        assert!(matches!(o, RouterOutcome::Accepted(_)), "{file}: {o:?}");
    }
    // Attacks on other connections: none of them is delivered.
    route(&state, frame("default-media.json", "early", 0, |_| {})).await; // dropped in the grace
    route(
        &state,
        frame("default-media.json", "late", CONNECTED_LONG_AGO, |_| {}),
    )
    .await;
    route(
        &state,
        frame("default-start-wrong-account.json", "foreign", 50, |_| {}),
    )
    .await;
    route(&state, frame("default-start.json", "reuse", 50, |_| {})).await; // token reused
    route(
        &state,
        frame("default-media.json", "ok", 50, |f| {
            f["streamSid"] = json!(OTHER_STREAM)
        }),
    )
    .await;
    for c in ["early", "late", "foreign", "reuse"] {
        route(&state, disconnect(c)).await;
    }
    route(&state, disconnect("ok")).await;

    let records = sink.records();
    let kinds: Vec<&str> = records.iter().map(|r| r.kind().as_str()).collect();
    assert_eq!(
        kinds,
        ["start", "media", "media", "stop", "disconnect"],
        "exactly one record per accepted frame"
    );
    assert!(
        records.iter().all(|r| r.partition_key() == "ok"),
        "no attack connection reached the sink"
    );
    let values: Vec<Value> = records
        .iter()
        .map(|r| serde_json::from_str(r.json()).expect("record JSON"))
        .collect();
    let start: Value =
        serde_json::from_str(event("default-start.json")["body"].as_str().expect("body"))
            .expect("start");
    let token = start["start"]["customParameters"]["token"]
        .as_str()
        .expect("token");
    assert!(
        records.iter().all(|r| !r.json().contains(token)),
        "the call token never leaves the gate"
    );
    assert_eq!(
        values[1]["callSid"], start["start"]["callSid"],
        "media records carry the call"
    );
    let verdicts =
        stream_gate_testkit::schema::validate(&repo_file("docs/record-v1.schema.json"), &values);
    assert!(verdicts.iter().all(Option::is_none), "{verdicts:?}");
}

// The gap table of SECURITY.md ("What it does not stop"): what each mode leaves open or closes,
// beyond `the_rules_hold`.

/// A router with `env` (on top of a Management API endpoint) and `call_state`.
fn router_configured(
    env: &'static [(&'static str, &'static str)],
    call_state: CallState,
) -> RouterState {
    // The variable says what `call_state` is (the router refuses to start without it).
    let named = match call_state {
        CallState::Off => "off",
        _ => "memory",
    };
    let config = RouterConfig::from_lookup(|k| match k {
        "STREAM_GATE_MANAGEMENT_ENDPOINT" => Some("http://127.0.0.1:9/prod".to_owned()),
        "STREAM_GATE_CALL_STATE" => Some(named.to_owned()),
        _ => env
            .iter()
            .find(|(name, _)| *name == k)
            .map(|(_, v)| (*v).to_owned()),
    })
    .expect("config");
    RouterState::new(
        config,
        credentials(),
        Arc::new(RecordingCloser::default()),
        call_state,
    )
}

/// `default-media.json` turned into a `mark` or a `dtmf` frame of the same stream.
fn as_event(name: &'static str) -> impl Fn(&mut Value) {
    move |f: &mut Value| {
        let o = f.as_object_mut().expect("frame");
        o.remove("media");
        o.insert("event".into(), json!(name));
        let body = match name {
            "mark" => json!({"name": "greeting-done"}),
            _ => json!({"track": "inbound_track", "digit": "5"}),
        };
        o.insert(name.into(), body);
    }
}

#[tokio::test]
async fn mark_and_dtmf_need_a_start_like_media_and_stop() {
    let state = router_on(Arc::new(MemoryStore::new(1000)));
    for name in ["mark", "dtmf"] {
        let early = route(&state, frame("default-media.json", name, 0, as_event(name))).await;
        assert_eq!(
            early,
            RouterOutcome::Dropped(DropReason::StartPending),
            "{name}"
        );
        let late = format!("{name}-late");
        let o = route(
            &state,
            frame(
                "default-media.json",
                &late,
                CONNECTED_LONG_AGO,
                as_event(name),
            ),
        )
        .await;
        assert_eq!(
            o,
            RouterOutcome::Closed(CloseReason::MediaBeforeStart),
            "{name}"
        );
    }
    // The same frames are accepted behind a start: they were refused for the missing start only.
    let o = route(&state, frame("default-start.json", "started", 100, |_| {})).await;
    assert!(matches!(o, RouterOutcome::Accepted(_)), "{o:?}");
    for name in ["mark", "dtmf"] {
        let o = route(
            &state,
            frame(
                "default-media.json",
                "started",
                CONNECTED_LONG_AGO,
                as_event(name),
            ),
        )
        .await;
        assert!(matches!(o, RouterOutcome::Accepted(_)), "{name}: {o:?}");
    }
}

#[tokio::test]
async fn without_call_state_each_frame_is_judged_by_its_shape_only() {
    let state = router_configured(&[], CallState::Off);
    let accepted = |o: &RouterOutcome| matches!(o, RouterOutcome::Accepted(_));
    // Media that no start announced, long after the connection opened.
    let o = route(
        &state,
        frame("default-media.json", "s1", CONNECTED_LONG_AGO, |_| {}),
    )
    .await;
    assert!(accepted(&o), "{o:?}");
    // A start, a second start, and another stream's frame on the same connection.
    for _ in 0..2 {
        let o = route(&state, frame("default-start.json", "s1", 100, |_| {})).await;
        assert!(accepted(&o), "{o:?}");
    }
    let o = route(
        &state,
        frame("default-media.json", "s1", CONNECTED_LONG_AGO, |f| {
            f["streamSid"] = json!(OTHER_STREAM)
        }),
    )
    .await;
    assert!(accepted(&o), "{o:?}");
    // The same call token on another connection.
    let o = route(&state, frame("default-start.json", "s2", 100, |_| {})).await;
    assert!(accepted(&o), "{o:?}");
}

#[tokio::test]
async fn without_call_tokens_call_state_admits_a_start_on_every_connection() {
    let without_token = |f: &mut Value| {
        f["start"]["customParameters"]
            .as_object_mut()
            .map(|p| p.remove("token"));
    };
    for policy in ["off", "optional"] {
        let state = router_configured(
            if policy == "off" {
                &[("STREAM_GATE_CALL_TOKEN", "off")]
            } else {
                &[("STREAM_GATE_CALL_TOKEN", "optional")]
            },
            CallState::Store(Arc::new(MemoryStore::new(1000))),
        );
        // Two connections opened with one (replayed) handshake both start the same call: call
        // state binds frames to a start, not a start to a call.
        for connection in ["r1", "r2"] {
            let o = route(
                &state,
                frame("default-start.json", connection, 100, without_token),
            )
            .await;
            assert!(matches!(o, RouterOutcome::Accepted(_)), "{policy}: {o:?}");
        }
    }
}
