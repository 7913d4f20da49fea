//! Unit tests of kinesis.rs: reading a batch, the endpoint check, and the handler with a recorder
//! in place of the Management API.

use super::*;
use crate::replies::ReplyMessage;
use serde_json::json;
use std::future::Future;
use std::sync::Mutex;
use stream_gate_answer::{PostError, PostOutcome};

const MZ: &str = "MZ00112233445566778899aabbccddeeff";
const OURS: &str = "https://abc123.execute-api.us-east-1.amazonaws.com/prod";

fn ours() -> AllowedEndpoint {
    AllowedEndpoint::parse(OURS).expect("configured")
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn media_at(endpoint: &str, conn: &str, seq: u64, track: &str) -> String {
    format!(
        r#"{{"v":1,"type":"media","connectionId":"{conn}","managementEndpoint":"{endpoint}","accountSid":"AC0123456789abcdef0123456789abcdef","streamSid":"{MZ}","sequenceNumber":"{seq}","receivedAt":1,"twilio":{{"event":"media","sequenceNumber":"{seq}","media":{{"track":"{track}","chunk":"1","timestamp":"20","payload":"AAAA"}},"streamSid":"{MZ}"}}}}"#
    )
}

fn media(conn: &str, seq: u64, track: &str) -> String {
    media_at(OURS, conn, seq, track)
}

fn kinesis(partition_key: &str, data: &[u8], seq: &str) -> Value {
    json!({
        "kinesis": {
            "kinesisSchemaVersion": "1.0", "partitionKey": partition_key, "sequenceNumber": seq,
            "data": b64(data), "approximateArrivalTimestamp": 1_795_881_600.5
        },
        "eventSource": "aws:kinesis", "eventVersion": "1.0", "eventID": format!("shardId-000000000000:{seq}"),
        "eventName": "aws:kinesis:record", "awsRegion": "us-east-1",
        "invokeIdentityArn": "arn:aws:iam::123456789012:role/echo",
        "eventSourceARN": "arn:aws:kinesis:us-east-1:123456789012:stream/s/consumer/c:1"
    })
}

fn skips(batch: &Batch) -> Vec<(&'static str, Option<&str>, Option<&str>)> {
    batch
        .skipped
        .iter()
        .map(|s| {
            (
                s.skip.code(),
                s.kinesis_sequence.as_deref(),
                s.connection_id.as_deref(),
            )
        })
        .collect()
}

#[test]
fn reads_each_record_on_its_own() {
    let mut not_base64 = kinesis("a", b"{}", "4");
    not_base64["kinesis"]["data"] = json!("not base64!");
    let event = json!({"Records": [
        kinesis("a", media("a", 2, "inbound").as_bytes(), "1"),
        kinesis("a", b"secret audio that is not json", "2"),
        kinesis("b", media("a", 3, "inbound").as_bytes(), "3"),
        not_base64,
        {"kinesis": 7},
        kinesis("b", media("b", 1, "inbound").as_bytes(), "5"),
    ]});
    let batch = read_batch(&event, &ours());
    assert_eq!(batch.kinesis_records, 6);
    let read: Vec<_> = batch
        .records
        .iter()
        .map(|r| (r.connection_id.as_str(), r.sequence_number))
        .collect();
    assert_eq!(read, [("a", Some(2)), ("b", Some(1))]);
    assert_eq!(
        skips(&batch),
        [
            ("record_malformed", Some("2"), None),
            ("partition_key_mismatch", Some("3"), Some("a")),
            ("kinesis_record_malformed", None, None),
            ("kinesis_record_malformed", None, None),
        ]
    );
}

#[test]
fn an_event_without_records_is_skipped_whole() {
    for event in [json!({}), json!({"Records": {}}), json!([1, 2])] {
        let batch = read_batch(&event, &ours());
        assert_eq!(batch.kinesis_records, 0);
        assert_eq!(skips(&batch), [("event_malformed", None, None)]);
    }
    assert!(read_batch(&json!({"Records": []}), &ours())
        .skipped
        .is_empty());
}

/// Records naming any endpoint but the configured one, one connection each; the last two name
/// the configured one, with and without a trailing `/`.
fn endpoints_batch() -> Value {
    let endpoints = [
        (
            "other-api",
            "https://xyz789.execute-api.us-east-1.amazonaws.com/prod",
        ),
        (
            "plain-http",
            "http://abc123.execute-api.us-east-1.amazonaws.com/prod",
        ),
        ("loopback", "http://127.0.0.1:9/prod"),
        (
            "lookalike",
            "https://abc123.execute-api.us-east-1.amazonaws.com.evil.example/prod",
        ),
        (
            "stage",
            "https://abc123.execute-api.us-east-1.amazonaws.com/dev",
        ),
        (
            "prefix",
            "https://abc123.execute-api.us-east-1.amazonaws.com/prod/x",
        ),
        (
            "case",
            "https://abc123.execute-api.us-east-1.amazonaws.com/PROD",
        ),
        (
            "slash",
            "https://abc123.execute-api.us-east-1.amazonaws.com/prod/",
        ),
        ("exact", OURS),
    ];
    let records: Vec<Value> = endpoints
        .iter()
        .enumerate()
        .map(|(i, (conn, endpoint))| {
            let data = media_at(endpoint, conn, 1, "inbound");
            kinesis(conn, data.as_bytes(), &i.to_string())
        })
        .collect();
    json!({ "Records": records })
}

#[test]
fn reads_only_records_naming_the_configured_endpoint() {
    let batch = read_batch(&endpoints_batch(), &ours());
    let read: Vec<_> = batch
        .records
        .iter()
        .map(|r| (r.connection_id.as_str(), r.management_endpoint.as_str()))
        .collect();
    // Answered at the configured spelling, whatever trailing `/` the record had.
    assert_eq!(read, [("slash", OURS), ("exact", OURS)]);
    let refused: Vec<_> = [
        "other-api",
        "plain-http",
        "loopback",
        "lookalike",
        "stage",
        "prefix",
        "case",
    ]
    .iter()
    .enumerate()
    .map(|(i, c)| (i.to_string(), *c))
    .collect();
    let want: Vec<_> = refused
        .iter()
        .map(|(seq, c)| ("endpoint_not_allowed", Some(seq.as_str()), Some(*c)))
        .collect();
    assert_eq!(skips(&batch), want);
}

#[test]
fn a_forged_connection_id_is_not_logged() {
    let long = "x".repeat(MAX_LOGGED_CONNECTION_ID + 1);
    let event = json!({"Records": [
        kinesis(&long, media_at("https://evil.example/prod", &long, 1, "inbound").as_bytes(), "1"),
        kinesis("a\u{7f}", media_at("https://evil.example/prod", "a\u{7f}", 1, "inbound").as_bytes(), "2"),
        kinesis(&long[1..], media_at("https://evil.example/prod", &long[1..], 1, "inbound").as_bytes(), "3"),
    ]});
    assert_eq!(
        skips(&read_batch(&event, &ours())),
        [
            ("endpoint_not_allowed", Some("1"), None),
            ("endpoint_not_allowed", Some("2"), None),
            ("endpoint_not_allowed", Some("3"), Some(&long[1..])),
        ]
    );
}

/// Records every post (endpoint and connection); can hang instead of answering.
#[derive(Default)]
struct Recorder {
    posted: Mutex<Vec<(String, String)>>,
    hang: bool,
}

impl Recorder {
    fn posted(&self) -> Vec<(String, String)> {
        self.posted.lock().map(|p| p.clone()).unwrap_or_default()
    }
}

impl Answer for Recorder {
    fn post(
        &self,
        endpoint: &str,
        connection_id: &str,
        _message: &ReplyMessage,
    ) -> impl Future<Output = Result<PostOutcome, PostError>> + Send {
        if let Ok(mut p) = self.posted.lock() {
            p.push((endpoint.to_owned(), connection_id.to_owned()));
        }
        let hang = self.hang;
        async move {
            if hang {
                std::future::pending::<()>().await;
            }
            Ok(PostOutcome::Sent)
        }
    }
}

#[tokio::test]
async fn posts_only_to_the_configured_endpoint() {
    let answer = Recorder::default();
    let s = handle(&answer, &endpoints_batch(), &ours(), Duration::from_secs(5)).await;
    assert_eq!(
        answer.posted(),
        [
            (OURS.to_owned(), "slash".to_owned()),
            (OURS.to_owned(), "exact".to_owned())
        ]
    );
    assert_eq!((s.kinesis_records, s.skipped, s.replies), (9, 7, 2));
    assert_eq!(s.sent.sent, 2);
}

#[tokio::test]
async fn plans_posts_and_sums_up() {
    let event = json!({"Records": [
        kinesis("a", media("a", 3, "inbound").as_bytes(), "1"),
        kinesis("a", media("a", 2, "outbound").as_bytes(), "2"),
        kinesis("a", b"\xff", "3"),
        kinesis("a", media("a", 1, "inbound").as_bytes(), "4"),
    ]});
    let answer = Recorder::default();
    let s = handle(&answer, &event, &ours(), Duration::from_secs(5)).await;
    assert_eq!(
        s,
        BatchSummary {
            kinesis_records: 4,
            skipped: 1,
            replies: 2,
            sent: SendSummary {
                sent: 2,
                gone: 0,
                failed: 0
            },
            deadline: false
        }
    );
}

#[tokio::test]
async fn a_hanging_post_ends_at_the_budget_and_the_batch_still_succeeds() {
    let event = json!({"Records": [kinesis("a", media("a", 1, "inbound").as_bytes(), "1")]});
    let answer = Recorder {
        hang: true,
        ..Recorder::default()
    };
    let s = handle(&answer, &event, &ours(), Duration::from_millis(50)).await;
    assert!(s.deadline);
    assert_eq!((s.replies, s.sent), (1, SendSummary::default()));
}

#[test]
fn the_budget_keeps_a_margin() {
    let soon = std::time::SystemTime::now() + Duration::from_secs(3);
    let b = budget_until(soon);
    assert!(b <= Duration::from_millis(2500) && b > Duration::from_millis(2000));
    assert_eq!(
        budget_until(std::time::SystemTime::UNIX_EPOCH),
        Duration::ZERO
    );
}

/// A `session_end` (the end of a ConversationRelay session, keyed by its CallSid, no connection)
/// is read as nothing to answer: no reply, and no skip line (it is not an error).
#[test]
fn a_session_end_is_neither_answered_nor_skipped() {
    const CA: &str = "CAffeeddccbbaa99887766554433221100";
    let end = format!(
        r#"{{"v":1,"type":"session_end","protocol":"conversation-relay","accountSid":"AC0123456789abcdef0123456789abcdef","callSid":"{CA}","receivedAt":1,"twilio":{{"SessionStatus":"ended"}}}}"#
    );
    let event = json!({ "Records": [
        kinesis(CA, end.as_bytes(), "1"),
        kinesis("c1", media("c1", 2, "inbound").as_bytes(), "2"),
    ]});
    let batch = read_batch(&event, &ours());
    assert_eq!(batch.kinesis_records, 2);
    assert!(skips(&batch).is_empty(), "{:?}", skips(&batch));
    assert_eq!(batch.records.len(), 1);
    assert_eq!(batch.records[0].kind, "media");
}
