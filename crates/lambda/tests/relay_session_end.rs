//! The end of a ConversationRelay session, as deployed: the real `voice-webhook` binary with call
//! state on DynamoDB and `STREAM_GATE_SINK=kinesis:…`, both moto on loopback through the real AWS
//! SDK. A signed `…/relay/ended` delivers one `session_end` record, keyed by the CallSid, only for
//! a call the webhook answered and only once (Twilio's signature has no timestamp: a replay must
//! deliver nothing).

use serde_json::Value;
use stream_gate_testkit::moto::moto;
use stream_gate_testkit::{event, repo_file, Function};

mod support;
use support::dynamodb::create_table;
use support::kinesis::{kinesis_with_stream, read_stream, sdk};

const CA: &str = "CA0123456789abcdef0123456789abcdef";

fn ended_lines(output: &[String]) -> Vec<Value> {
    output
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["event"] == "relay_session_ended")
        .collect()
}

#[tokio::test]
async fn a_session_end_is_delivered_once_for_a_call_the_webhook_answered() {
    let m = moto().await;
    let sdk = sdk(&m.endpoint).await;
    let kinesis = kinesis_with_stream(&sdk, "calls", 1).await;
    create_table(&aws_sdk_dynamodb::Client::new(&sdk), "calls").await;
    let records = || read_stream(&kinesis, "calls");

    let creds = repo_file("events/credentials.test.json")
        .display()
        .to_string();
    let f = Function::start(
        env!("CARGO_BIN_EXE_voice-webhook"),
        &[
            ("STREAM_GATE_SECRET_FILE", &creds),
            (
                "STREAM_GATE_STREAM_URL",
                "wss://abc123.execute-api.us-east-1.amazonaws.com/prod",
            ),
            ("STREAM_GATE_PROTOCOLS", "media-streams,conversation-relay"),
            ("STREAM_GATE_CALL_STATE", "dynamodb"),
            ("STREAM_GATE_CALL_TABLE", "calls"),
            ("STREAM_GATE_SINK", "kinesis:calls"),
            ("AWS_ENDPOINT_URL", &m.endpoint),
        ],
    )
    .await;
    let post = |file: &str| f.respond(event(file));

    // The end of a call this webhook never answered: signed, answered, nothing delivered.
    let r = post("voice-webhook-relay-ended.json").await;
    assert_eq!(r["statusCode"], 200, "{r}");
    assert!(records().await.is_empty());
    // The call is answered (its one token issued), then its session ends: one record.
    let r = post("voice-webhook-relay.json").await;
    assert_eq!(r["statusCode"], 200, "{r}");
    let r = post("voice-webhook-relay-ended.json").await;
    assert_eq!(r["statusCode"], 200, "{r}");
    assert_eq!(
        r["body"],
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response/>"
    );
    // Replayed, as anyone holding the signed POST could, any time later: nothing more.
    let r = post("voice-webhook-relay-ended.json").await;
    assert_eq!(r["statusCode"], 200, "{r}");

    let got = records().await;
    let [(_, key, end)] = got.as_slice() else {
        panic!("one record: {got:?}");
    };
    let end: Value = serde_json::from_str(end).expect("record JSON");
    assert_eq!(key, CA, "partition key = CallSid");
    assert_eq!(end["type"], "session_end");
    assert_eq!(end["protocol"], "conversation-relay");
    assert_eq!(end["callSid"], CA);
    assert_eq!(end["sessionId"], "VX00112233445566778899aabbccddeeff");
    assert_eq!(end["twilio"]["SessionDuration"], "25");
    assert!(end.get("connectionId").is_none() && end.get("managementEndpoint").is_none());

    let outcomes: Vec<(String, String)> = ended_lines(&f.output().await)
        .iter()
        .map(|l| {
            (
                l["record"].as_str().unwrap_or_default().to_owned(),
                l["level"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        outcomes,
        [
            ("not_issued".to_owned(), "WARN".to_owned()),
            ("delivered".to_owned(), "INFO".to_owned()),
            ("repeated".to_owned(), "WARN".to_owned()),
        ]
    );
    let out = f.output().await.join("\n");
    assert!(!out.contains("delivery_failed"), "{out}");
}
