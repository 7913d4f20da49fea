//! The real `echo` binary under the loopback Lambda Runtime API, fed `events/echo-kinesis.json` (a
//! Kinesis event in the shape the event source mapping delivers it), posting through the real AWS
//! SDK client (`ConnectionPoster`) to Management API stand-ins: exactly which outbound messages
//! reach which connection, in which order, and nothing else.
//!
//! The fixture: two connections, records out of Twilio's order, a `start`, an outbound-track
//! `media`, a `mark` and a record cut off mid-JSON. Each record's `managementEndpoint` is the
//! execute-api URL a deployed gate writes; the tests put a stand-in's URL there (decoding and
//! re-encoding `kinesis.data`) and configure the echo with it (`STREAM_GATE_MANAGEMENT_ENDPOINT`,
//! the one endpoint it answers). The two connections share the stand-in; each one's conversation
//! is told apart by its path and `streamSid`. tests/echo_endpoint.rs: records naming any other
//! endpoint, and the echo without one.

use base64::Engine as _;
use http::StatusCode;
use serde_json::Value;
use stream_gate_testkit::fake_runtime_api::Invocation;
use stream_gate_testkit::{event, Function, ManagementEndpoint, Seen};

const ECHO: &str = env!("CARGO_BIN_EXE_echo");
const FIXTURE_ENDPOINT: &str = "https://abc123.execute-api.us-east-1.amazonaws.com/prod";
const A: &str = "Xk2TmdKPIAMCJqw=";
const B: &str = "YB7cRd3pIAMCKxQ=";
const MZ_A: &str = "MZ00112233445566778899aabbccddeeff";
const MZ_B: &str = "MZffeeddccbbaa99887766554433221100";

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

/// The fixture with every record's `managementEndpoint` replaced by `endpoint`.
fn fixture_for(endpoint: &str) -> Value {
    let mut e = event("echo-kinesis.json");
    let records = e["Records"].as_array_mut().expect("Records");
    let mut substituted = 0;
    for r in records {
        let k = &mut r["kinesis"];
        let data = b64()
            .decode(k["data"].as_str().expect("data"))
            .expect("base64");
        let text = String::from_utf8(data).expect("utf-8");
        substituted += usize::from(text.contains(FIXTURE_ENDPOINT));
        let text = text.replace(FIXTURE_ENDPOINT, endpoint);
        k["data"] = Value::from(b64().encode(text));
    }
    assert_eq!(
        substituted, 8,
        "every record but the cut-off one names its endpoint"
    );
    e
}

/// The outbound `media` the echo must post: the caller's own 160 bytes, as Twilio expects it.
fn echoed(stream_sid: &str, fill: u8) -> String {
    format!(
        r#"{{"event":"media","streamSid":"{stream_sid}","media":{{"payload":"{}"}}}}"#,
        b64().encode([fill; 160])
    )
}

/// The echo, configured to answer `endpoint` (and `extra` settings).
async fn echo_answering(endpoint: &ManagementEndpoint, extra: &[(&str, &str)]) -> Function {
    let mut env = vec![("STREAM_GATE_MANAGEMENT_ENDPOINT", endpoint.url.as_str())];
    env.extend_from_slice(extra);
    Function::start(ECHO, &env).await
}

/// What `endpoint` was asked for `connection` (its path) and posted for `stream_sid`, in order.
fn conversation(
    endpoint: &ManagementEndpoint,
    connection: &str,
    stream_sid: &str,
) -> (Vec<Seen>, Vec<String>) {
    let path = post(connection).path;
    let seen = endpoint
        .seen()
        .into_iter()
        .filter(|s| s.path == path)
        .collect();
    let bodies = endpoint
        .bodies()
        .into_iter()
        .filter(|b| b.contains(stream_sid))
        .collect();
    (seen, bodies)
}

fn post(connection: &str) -> Seen {
    Seen {
        method: "POST".into(),
        path: format!("/prod/@connections/{connection}"),
        signed: true,
    }
}

fn json_lines(lines: &[String]) -> Vec<Value> {
    lines
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .collect()
}

fn summary(lines: &[String]) -> Value {
    let batches: Vec<Value> = json_lines(lines)
        .into_iter()
        .filter(|v| v["event"] == "echo_batch")
        .collect();
    assert_eq!(batches.len(), 1, "one summary per batch: {lines:?}");
    batches[0].clone()
}

/// The log lines (not the metric lines, which carry `_aws`) with `reason`.
fn log_lines_with_reason(lines: &[String], reason: &str) -> Vec<Value> {
    json_lines(lines)
        .into_iter()
        .filter(|v| v.get("_aws").is_none() && v["reason"] == reason)
        .collect()
}

/// Not one byte of the audio in the logs: no payload, in base64 or as the record's JSON.
fn assert_no_audio(lines: &[String]) {
    let out = lines.join("\n");
    for fill in [0x22u8, 0x33, 0x44, 0x52, 0x55, 0x63, 0x64] {
        let payload = b64().encode([fill; 160]);
        assert!(!out.contains(&payload[..16]), "audio in the logs: {out}");
    }
    assert!(!out.contains("\"payload\""), "{out}");
}

#[tokio::test]
async fn echoes_each_callers_inbound_audio_in_order_and_nothing_else() {
    let ours = ManagementEndpoint::start(StatusCode::OK).await;
    let f = echo_answering(&ours, &[]).await;

    let answer = f.invoke(fixture_for(&ours.url)).await;
    assert_eq!(
        answer,
        Invocation::Response(Value::Null),
        "the batch succeeds"
    );

    // Connection A: its inbound frames 2 and 3 (they arrived as 3, 2), not its start, its
    // outbound-track frame (the echo itself), its mark, or the record that could not be read.
    assert_eq!(
        conversation(&ours, A, MZ_A),
        (
            vec![post(A), post(A)],
            vec![echoed(MZ_A, 0x22), echoed(MZ_A, 0x33)]
        )
    );
    // Connection B: 2, 3, 4 (they arrived as 3, 2, 4).
    assert_eq!(
        conversation(&ours, B, MZ_B),
        (
            vec![post(B), post(B), post(B)],
            vec![echoed(MZ_B, 0x52), echoed(MZ_B, 0x63), echoed(MZ_B, 0x64)]
        )
    );
    assert_eq!(ours.seen().len(), 5, "nothing else");

    let lines = f.output().await;
    let s = summary(&lines);
    assert_eq!(
        (
            &s["kinesis_records"],
            &s["skipped"],
            &s["replies"],
            &s["sent"],
            &s["gone"],
            &s["failed"]
        ),
        (
            &Value::from(9),
            &Value::from(1),
            &Value::from(5),
            &Value::from(5),
            &Value::from(0),
            &Value::from(0)
        ),
        "{s}"
    );
    assert_eq!(
        s["level"], "WARN",
        "a skipped record makes the summary a warning"
    );
    let skipped = log_lines_with_reason(&lines, "record_malformed");
    assert_eq!(skipped.len(), 1, "{lines:?}");
    assert_eq!(
        skipped[0]["kinesis_sequence"],
        "49656542178123456789012345678901234567890123456780096"
    );
    assert_no_audio(&lines);
}

/// `RUST_LOG=trace`: still not one byte of audio, and no raw event (lambda_runtime prints each
/// event below INFO; stream-gate's subscriber caps every other crate at INFO).
#[tokio::test]
async fn nothing_of_the_audio_at_trace_level() {
    let ours = ManagementEndpoint::start(StatusCode::OK).await;
    let f = echo_answering(&ours, &[("RUST_LOG", "trace")]).await;
    assert_eq!(
        f.invoke(fixture_for(&ours.url)).await,
        Invocation::Response(Value::Null)
    );
    assert_eq!(ours.seen().len(), 5);
    // A clean (empty) batch: its summary is the DEBUG line that trace level lets through.
    assert_eq!(
        f.invoke(serde_json::json!({"Records": []})).await,
        Invocation::Response(Value::Null)
    );
    let lines = f.output().await;
    assert!(
        lines.iter().any(|l| l.contains("\"level\":\"DEBUG\"")),
        "the echo logged below INFO: {lines:?}"
    );
    assert_no_audio(&lines);
    let out = lines.join("\n");
    assert!(
        !out.contains("\"Records\"") && !out.contains("partitionKey"),
        "{out}"
    );
}

#[tokio::test]
async fn a_gone_connection_gets_one_post_and_no_more() {
    // 410: the call ended. One post per connection, the rest of its replies dropped; the batch
    // still succeeds (nothing to retry: the caller is gone).
    let gone = ManagementEndpoint::start(StatusCode::GONE).await;
    let f = echo_answering(&gone, &[]).await;
    assert_eq!(
        f.invoke(fixture_for(&gone.url)).await,
        Invocation::Response(Value::Null)
    );

    let mut seen = gone.seen();
    seen.sort_by(|x, y| x.path.cmp(&y.path));
    assert_eq!(seen, vec![post(A), post(B)]);
    let mut bodies = gone.bodies();
    bodies.sort();
    let mut first = vec![echoed(MZ_A, 0x22), echoed(MZ_B, 0x52)];
    first.sort();
    assert_eq!(bodies, first, "each connection's first reply, in order");

    let lines = f.output().await;
    let s = summary(&lines);
    assert_eq!(
        (&s["replies"], &s["sent"], &s["gone"], &s["failed"]),
        (
            &Value::from(5),
            &Value::from(0),
            &Value::from(5),
            &Value::from(0)
        ),
        "{s}"
    );
    assert_no_audio(&lines);
}

#[tokio::test]
async fn a_failing_post_is_tried_once_and_the_batch_still_succeeds() {
    // 500 on every post: each reply is attempted exactly once (a repeated media would play twice),
    // logged with the error code, and the invocation succeeds so the mapping does not replay it.
    let failing = ManagementEndpoint::start(StatusCode::INTERNAL_SERVER_ERROR).await;
    let f = echo_answering(&failing, &[]).await;
    assert_eq!(
        f.invoke(fixture_for(&failing.url)).await,
        Invocation::Response(Value::Null)
    );
    assert_eq!(failing.seen().len(), 5, "one attempt per reply, no retry");

    let lines = f.output().await;
    let s = summary(&lines);
    assert_eq!(
        (&s["sent"], &s["failed"]),
        (&Value::from(0), &Value::from(5))
    );
    let failed = log_lines_with_reason(&lines, "post_failed").len();
    assert_eq!(failed, 5, "{lines:?}");
    assert_no_audio(&lines);
}

#[tokio::test]
async fn an_event_that_is_not_a_kinesis_batch_is_skipped_and_succeeds() {
    let local = ManagementEndpoint::start(StatusCode::OK).await;
    let f = echo_answering(&local, &[]).await;
    assert_eq!(
        f.invoke(serde_json::json!({"hello": "world"})).await,
        Invocation::Response(Value::Null)
    );
    assert!(local.seen().is_empty());
    // The WARN line (`reasons` leaves out metric lines; its EchoRecordSkipped line is checked below).
    assert_eq!(f.reasons().await, ["event_malformed"]);
    let lines = f.output().await;
    assert_eq!(log_lines_with_reason(&lines, "event_malformed").len(), 1);
    let metric: Vec<Value> = json_lines(&lines)
        .into_iter()
        .filter(|v| v.get("_aws").is_some())
        .collect();
    assert_eq!(metric.len(), 1, "{lines:?}");
    assert_eq!(
        (&metric[0]["reason"], &metric[0]["EchoRecordSkipped"]),
        (&Value::from("event_malformed"), &Value::from(1))
    );
}

/// The fixture without its cut-off record: a batch in which nothing is skipped.
fn clean_fixture_for(endpoint: &str) -> Value {
    let mut e = fixture_for(endpoint);
    let records = e["Records"].as_array_mut().expect("Records");
    records.retain(|r| {
        let data = b64()
            .decode(r["kinesis"]["data"].as_str().unwrap_or_default())
            .unwrap_or_default();
        String::from_utf8_lossy(&data).contains(endpoint)
    });
    assert_eq!(records.len(), 8);
    e
}

#[tokio::test]
async fn the_summary_level_says_what_happened() {
    // Nothing skipped: DEBUG when every reply was sent, INFO when the call was gone, WARN when a
    // post failed.
    for (status, level) in [
        (StatusCode::OK, "DEBUG"),
        (StatusCode::GONE, "INFO"),
        (StatusCode::INTERNAL_SERVER_ERROR, "WARN"),
    ] {
        let ours = ManagementEndpoint::start(status).await;
        let f = echo_answering(&ours, &[("RUST_LOG", "debug")]).await;
        assert_eq!(
            f.invoke(clean_fixture_for(&ours.url)).await,
            Invocation::Response(Value::Null)
        );
        let s = summary(&f.output().await);
        assert_eq!(
            (&s["skipped"], &s["level"]),
            (&Value::from(0), &Value::from(level)),
            "{s}"
        );
    }
}

/// A Kinesis record of `data`, in the mapping's shape.
fn kinesis_record(data: &str, sequence: u32) -> Value {
    serde_json::json!({
        "kinesis": {"kinesisSchemaVersion": "1.0", "partitionKey": "Yl3UneLQJBNDKrx=",
                    "sequenceNumber": format!("4965654217812345678901234567890123456789012345678{sequence:04}"),
                    "data": b64().encode(data), "approximateArrivalTimestamp": 1795881600.5},
        "eventSource": "aws:kinesis", "eventVersion": "1.0",
        "eventID": format!("shardId-000000000000:{sequence}"), "eventName": "aws:kinesis:record",
        "invokeIdentityArn": "arn:aws:iam::123456789012:role/echo", "awsRegion": "us-east-1",
        "eventSourceARN": "arn:aws:kinesis:us-east-1:123456789012:stream/calls"
    })
}

/// A ConversationRelay call's records, as the gate builds them, out of order: the echo answers each
/// complete prompt with "You said: …" and each key press with "You pressed …", in the order the gate
/// received them, as `text` messages; the setup, a partial prompt, an interrupt and the disconnect
/// get nothing.
#[tokio::test]
async fn answers_a_conversation_relay_caller_in_text() {
    use stream_gate_domain::connection_context::ConnectionContext;
    use stream_gate_domain::record::Connection;
    use stream_gate_domain::{fixtures, AccountSid, CallSid, Protocol, SessionSid};

    let ours = ManagementEndpoint::start(StatusCode::OK).await;
    let f = echo_answering(&ours, &[]).await;
    let account = AccountSid::parse("AC0123456789abcdef0123456789abcdef").expect("ac");
    let call = CallSid::parse("CAffeeddccbbaa99887766554433221100").expect("ca");
    let session = SessionSid::parse("VX00112233445566778899aabbccddeeff").expect("vx");
    let context = ConnectionContext::ConversationRelay {
        account,
        call,
        token_expires_at: 4_102_444_800,
    };
    let record = |frame: String, received_at_ms: u64| {
        let connection = Connection {
            protocol: Protocol::ConversationRelay,
            connection_id: "Yl3UneLQJBNDKrx=",
            management_endpoint: &ours.url,
            received_at_ms,
        };
        fixtures::delivered(&frame, &context, None, &connection).into_json()
    };
    let records = [
        record(fixtures::relay_setup(&session, &account, &call), 100),
        record(fixtures::relay_dtmf('7'), 400),
        record(fixtures::relay_prompt("What are", false), 200),
        record(fixtures::relay_prompt("What are your hours?", true), 300),
        record(fixtures::relay_interrupt("We are", 900), 500),
    ];
    let batch = serde_json::json!({"Records": records
        .iter()
        .enumerate()
        .map(|(i, r)| kinesis_record(r, i as u32))
        .collect::<Vec<_>>()});

    let answer = f.invoke(batch).await;
    assert_eq!(answer, Invocation::Response(Value::Null));
    assert_eq!(
        ours.bodies(),
        [
            r#"{"type":"text","token":"You said: What are your hours?","last":true}"#,
            r#"{"type":"text","token":"You pressed 7.","last":true}"#,
        ]
    );
    assert_eq!(
        ours.seen(),
        [post("Yl3UneLQJBNDKrx="), post("Yl3UneLQJBNDKrx=")]
    );
    let lines = f.output().await;
    assert!(
        !lines.join("\n").contains("hours"),
        "the caller's words are not logged"
    );
}
