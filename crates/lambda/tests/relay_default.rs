//! ConversationRelay on `$default` through the router handler: the connection's grammar is the one
//! its authorizer context names, a `setup` must match the context's account and call, and with call
//! state nothing is accepted before the `setup`, a second one closes, and the call token the
//! handshake presented opens one connection, ever (Media Streams included). Every rule runs against
//! the memory store and again through the real AWS SDK against DynamoDB served by moto on loopback;
//! the records a relay call delivers are checked against docs/record-v1.schema.json.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::config::Intercept;
use serde_json::{json, Value};
use stream_gate_domain::fixtures;
use stream_gate_domain::{Accepted, CloseReason, RelayMessage};
use stream_gate_domain::{AccountSid, CallSid, SessionSid, StreamSid};
use stream_gate_lambda::adapters::{CallStateStore, DynamoDbStore, MemoryStore, RecordingSink};
use stream_gate_lambda::call_state_rules::DropReason;
use stream_gate_lambda::entrypoints::router::{self, RouterOutcome};
use stream_gate_lambda::state::RouterState;
use stream_gate_testkit::moto::moto;
use stream_gate_testkit::{event, repo_file};

mod support;
use support::dynamodb::{create_table, dynamodb_client};
use support::states::{credentials, now_ms, router_on};

const AC: &str = "ACdeadbeefdeadbeefdeadbeefdeadbeef";
const CA: &str = "CAffeeddccbbaa99887766554433221100";
const VX: &str = "VX00112233445566778899aabbccddeeff";
const OTHER_CALL: &str = "CA0000000000000000000000000000000b";
const OTHER_ACCOUNT: &str = "AC0000000000000000000000000000000c";
/// The expiry of the handshake's call token, as the authorizer wrote it into the context.
const TOKEN_EXPIRES_AT: u64 = 4_102_444_800;
const CONNECTED_LONG_AGO: i64 = 60_000;

fn sids() -> (AccountSid, CallSid, SessionSid) {
    (
        AccountSid::parse(AC).expect("ac"),
        CallSid::parse(CA).expect("ca"),
        SessionSid::parse(VX).expect("vx"),
    )
}

fn setup() -> String {
    let (ac, ca, vx) = sids();
    fixtures::relay_setup(&vx, &ac, &ca)
}

/// A `$default` event carrying `body` on ConversationRelay connection `connection`, connected
/// `age_ms` ago, with the context the authorizer writes for a relay handshake of call `CA`.
fn relay_frame(body: &str, connection: &str, age_ms: i64) -> Value {
    let mut e = event("default-media.json");
    e["requestContext"]["connectionId"] = json!(connection);
    e["requestContext"]["connectedAt"] = json!(now_ms() - age_ms);
    e["requestContext"]["authorizer"] = json!({
        "principalId": AC,
        "protocol": "conversation-relay",
        "accountSid": AC,
        "callSid": CA,
        "callTokenExpiresAt": TOKEN_EXPIRES_AT.to_string(),
        "authMethod": "twilio-signature",
        "credential": "twilioAccounts[0].authTokens[0]",
    });
    e["body"] = json!(body);
    e
}

fn disconnect(connection: &str, relay: bool) -> Value {
    let mut e = event("disconnect.json");
    e["requestContext"]["connectionId"] = json!(connection);
    if relay {
        e["requestContext"]["authorizer"] =
            relay_frame("", connection, 0)["requestContext"]["authorizer"].clone();
    }
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

fn closed(reason: CloseReason) -> RouterOutcome {
    RouterOutcome::Closed(reason)
}

fn relay(message: RelayMessage) -> RouterOutcome {
    RouterOutcome::Accepted(Accepted::Relay(message))
}

/// Every ConversationRelay rule of call state against `store`, through the router handler.
async fn the_relay_rules_hold(store: Arc<dyn CallStateStore>) {
    let state = router_on(store);
    let (ac, ca, vx) = sids();
    let prompt = fixtures::relay_prompt("What are your opening hours?", true);

    // Nothing before the setup: a prompt is dropped within the grace and closes after it; `info`
    // and unknown types are ignored within the grace and close after it too.
    let o = route(&state, relay_frame(&prompt, "r-early", 0)).await;
    assert_eq!(o, RouterOutcome::Dropped(DropReason::StartPending));
    let late = [
        prompt.clone(),
        fixtures::relay_dtmf('1'),
        r#"{"type":"info","name":"roundTripDelayMs","value":120}"#.to_owned(),
        r#"{"type":"later","x":1}"#.to_owned(),
    ];
    for (i, body) in late.iter().enumerate() {
        let o = route(
            &state,
            relay_frame(body, &format!("r-late-{i}"), CONNECTED_LONG_AGO),
        )
        .await;
        assert_eq!(o, closed(CloseReason::SetupMissing), "{body}");
    }
    let info = r#"{"type":"info","name":"roundTripDelayMs","value":120}"#;
    let o = route(&state, relay_frame(info, "r-info", 0)).await;
    assert_eq!(o, relay(RelayMessage::Info), "ignored within the grace");

    // A setup must name the handshake's account and call.
    let foreign = fixtures::relay_setup(&vx, &AccountSid::parse(OTHER_ACCOUNT).expect("ac"), &ca);
    let o = route(&state, relay_frame(&foreign, "r-foreign", 10)).await;
    assert_eq!(o, closed(CloseReason::SetupAccountMismatch));
    let other_call = fixtures::relay_setup(&vx, &ac, &CallSid::parse(OTHER_CALL).expect("ca"));
    let o = route(&state, relay_frame(&other_call, "r-other-call", 10)).await;
    assert_eq!(o, closed(CloseReason::SetupCallSidMismatch));

    // The call: a setup, then every message type; a second setup closes.
    let o = route(&state, relay_frame(&setup(), "r-ok", 10)).await;
    assert!(
        matches!(o, RouterOutcome::Accepted(Accepted::Relay(RelayMessage::Setup(s))) if s.session_sid == vx && s.call_sid == ca),
        "{o:?}"
    );
    for (body, expected) in [
        (prompt.clone(), RelayMessage::Prompt { last: true }),
        (
            fixtures::relay_prompt("What are", false),
            RelayMessage::Prompt { last: false },
        ),
        (fixtures::relay_dtmf('5'), RelayMessage::Dtmf),
        (
            fixtures::relay_interrupt("We are", 900),
            RelayMessage::Interrupt,
        ),
        (
            fixtures::relay_error("Invalid message"),
            RelayMessage::Error,
        ),
        (info.to_owned(), RelayMessage::Info),
        (r#"{"type":"later"}"#.to_owned(), RelayMessage::Unknown),
    ] {
        let o = route(&state, relay_frame(&body, "r-ok", CONNECTED_LONG_AGO)).await;
        assert_eq!(o, relay(expected), "{body}");
    }
    let o = route(&state, relay_frame(&setup(), "r-ok", CONNECTED_LONG_AGO)).await;
    assert_eq!(o, closed(CloseReason::SetupRepeated));

    // The handshake's token opened `r-ok`: a replayed handshake's setup on another connection
    // closes, even after `r-ok` is gone.
    route(&state, disconnect("r-ok", true)).await;
    let o = route(&state, relay_frame(&setup(), "r-replay", 10)).await;
    assert_eq!(o, closed(CloseReason::CallTokenReused));

    // A frame of the other protocol closes, before or after a setup.
    let media = fixtures::media(
        &StreamSid::parse("MZ00112233445566778899aabbccddeeff").expect("mz"),
        2,
        1,
        b"abc",
    );
    let o = route(&state, relay_frame(&media, "r-media", 10)).await;
    assert_eq!(o, closed(CloseReason::ProtocolMismatch));

    // A relay context without the token's expiry is no context.
    let mut e = relay_frame(&setup(), "r-no-expiry", 10);
    e["requestContext"]["authorizer"]
        .as_object_mut()
        .map(|a| a.remove("callTokenExpiresAt"));
    assert_eq!(
        route(&state, e).await,
        closed(CloseReason::NoAuthorizerContext)
    );
}

#[tokio::test]
async fn the_relay_rules_hold_in_memory() {
    the_relay_rules_hold(Arc::new(MemoryStore::new(1000))).await;
}

#[derive(Debug, Default, Clone)]
struct NoInterceptor;

impl Intercept for NoInterceptor {
    fn name(&self) -> &'static str {
        "NoInterceptor"
    }
}

#[tokio::test]
async fn the_relay_rules_hold_on_dynamodb_through_the_real_sdk() {
    let m = moto().await;
    let client = dynamodb_client(&m.endpoint, Duration::from_secs(2), NoInterceptor);
    create_table(&client, "stream-gate-calls").await;
    the_relay_rules_hold(Arc::new(DynamoDbStore::with_client(
        client,
        "stream-gate-calls",
    )))
    .await;
}

/// The token a ConversationRelay setup claimed is the token a Media Streams start of the same call
/// would present: one connection per token, whichever protocol tries second.
#[tokio::test]
async fn a_relay_token_cannot_open_a_media_stream_afterwards() {
    let state = router_on(Arc::new(MemoryStore::new(100)));
    let (ac, ca, _) = sids();
    let creds = credentials().get().await.expect("credentials");
    let token = stream_gate_domain::mint_call_token(&creds, &ac, &ca, TOKEN_EXPIRES_AT - 600, 600)
        .expect("token");
    let o = route(&state, relay_frame(&setup(), "relay", 10)).await;
    assert!(matches!(o, RouterOutcome::Accepted(_)), "{o:?}");
    let mz = StreamSid::parse("MZ00112233445566778899aabbccddeeff").expect("mz");
    let start = fixtures::start(&ac, &ca, &mz, Some(token.expose()));
    let mut e = event("default-start.json");
    e["requestContext"]["connectionId"] = json!("stream");
    e["requestContext"]["connectedAt"] = json!(now_ms() - 10);
    e["body"] = json!(start);
    assert_eq!(route(&state, e).await, closed(CloseReason::CallTokenReused));
}

/// A relay call delivers one schema-valid record per delivered message, with its protocol, call
/// and session; `info`, unknown types and every refused or attack connection deliver nothing.
#[tokio::test]
async fn a_relay_call_delivers_its_messages_and_nothing_else() {
    let sink = Arc::new(RecordingSink::default());
    let state = router_on(Arc::new(MemoryStore::new(1000))).with_sink(sink.clone());
    let messages = [
        setup(),
        fixtures::relay_prompt("Hello", true),
        fixtures::relay_dtmf('7'),
        fixtures::relay_interrupt("Hel", 300),
        fixtures::relay_error("Invalid message"),
        r#"{"type":"info","name":"x"}"#.to_owned(),
        r#"{"type":"later"}"#.to_owned(),
    ];
    for m in &messages {
        let o = route(&state, relay_frame(m, "call", 10)).await;
        assert!(matches!(o, RouterOutcome::Accepted(_)), "{m}: {o:?}");
    }
    // Attacks on other connections: none is delivered.
    route(&state, relay_frame(&messages[1], "early", 0)).await;
    route(&state, relay_frame(&setup(), "replay", 10)).await;
    let other_call = fixtures::relay_setup(
        &sids().2,
        &sids().0,
        &CallSid::parse(OTHER_CALL).expect("ca"),
    );
    route(&state, relay_frame(&other_call, "foreign", 10)).await;
    for c in ["early", "replay", "foreign"] {
        route(&state, disconnect(c, true)).await;
    }
    route(&state, disconnect("call", true)).await;

    let records = sink.records();
    let kinds: Vec<&str> = records.iter().map(|r| r.kind().as_str()).collect();
    assert_eq!(
        kinds,
        [
            "setup",
            "prompt",
            "dtmf",
            "interrupt",
            "error",
            "disconnect"
        ]
    );
    assert!(records.iter().all(|r| r.partition_key() == "call"));
    let values: Vec<Value> = records
        .iter()
        .map(|r| serde_json::from_str(r.json()).expect("record JSON"))
        .collect();
    for v in &values {
        assert_eq!(v["protocol"], "conversation-relay", "{v}");
        assert_eq!(v["callSid"], CA, "{v}");
        assert_eq!(v["sessionId"], VX, "{v}");
    }
    assert_eq!(values[1]["twilio"]["voicePrompt"], "Hello");
    let verdicts =
        stream_gate_testkit::schema::validate(&repo_file("docs/record-v1.schema.json"), &values);
    assert!(verdicts.iter().all(Option::is_none), "{verdicts:?}");
}
