//! The `echo` Lambda's translation (src/bin/echo.rs): a Kinesis event, as the event source mapping
//! delivers it, to the gate's records; the replies planned by [`echo_replies`] and posted by
//! [`send_replies`]; one summary.
//!
//! The handler never fails an invocation. An event source mapping retries a failed batch, and a
//! retried batch would post the same audio again: the caller would hear it twice, late. So a
//! record that cannot be read is skipped with a reason code (never its content), a reply that
//! cannot be posted is counted, and the batch always succeeds. The template also sets the
//! mapping's `MaximumRetryAttempts` to 0 for failures outside this code (a crash, a timeout).

use std::time::Duration;

use aws_lambda_events::event::kinesis::KinesisEventRecord;
use serde::Deserialize as _;
use serde_json::Value;

use crate::inbound::{InboundRecord, ReadError};
use crate::replies::{echo_replies, send_replies, Answer, SendSummary};

/// Why a Kinesis record of a batch was skipped. A short code, never the record's content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Skip {
    /// The event has no `Records` array (not a Kinesis event): nothing in it is read.
    EventMalformed,
    /// The Kinesis record is not in the shape Lambda delivers (e.g. `kinesis.data` not base64).
    KinesisRecordMalformed,
    /// The data is not a record v1 the echo can read.
    Record(ReadError),
    /// The Kinesis partition key is not the record's `connectionId`: the gate always writes
    /// `PartitionKey = connectionId`, which is what keeps a connection's records in order.
    PartitionKeyMismatch,
}

impl Skip {
    /// The stable code used in logs.
    pub const fn code(self) -> &'static str {
        match self {
            Self::EventMalformed => "event_malformed",
            Self::KinesisRecordMalformed => "kinesis_record_malformed",
            Self::Record(e) => e.code(),
            Self::PartitionKeyMismatch => "partition_key_mismatch",
        }
    }
}

/// A batch, read: the records the echo can use, in delivery order, and what was skipped.
#[derive(Debug, Default)]
pub struct Batch {
    /// Kinesis records in the event.
    pub kinesis_records: usize,
    /// The gate's records read from them.
    pub records: Vec<InboundRecord>,
    /// Skipped records: the reason and, when readable, the Kinesis sequence number (not content).
    pub skipped: Vec<(Skip, Option<String>)>,
}

/// Reads a Kinesis event (`{"Records": [{"kinesis": {"data": <base64>, "partitionKey": ..}, ..}]}`)
/// one record at a time, so one unreadable record costs only itself, never the batch.
/// `endpoint_override` (`STREAM_GATE_MANAGEMENT_ENDPOINT`, like the router's) replaces every
/// record's `managementEndpoint`: for `sam local invoke` and tests, never needed in AWS.
pub fn read_batch(event: &Value, endpoint_override: Option<&str>) -> Batch {
    let Some(items) = event.get("Records").and_then(Value::as_array) else {
        return Batch {
            skipped: vec![(Skip::EventMalformed, None)],
            ..Batch::default()
        };
    };
    let mut batch = Batch {
        kinesis_records: items.len(),
        ..Batch::default()
    };
    for item in items {
        let Ok(k) = KinesisEventRecord::deserialize(item) else {
            batch.skipped.push((Skip::KinesisRecordMalformed, None));
            continue;
        };
        let seq = Some(k.kinesis.sequence_number.clone());
        match InboundRecord::parse(&k.kinesis.data) {
            Err(e) => batch.skipped.push((Skip::Record(e), seq)),
            Ok(r) if r.connection_id != k.kinesis.partition_key => {
                batch.skipped.push((Skip::PartitionKeyMismatch, seq));
            }
            Ok(mut r) => {
                if let Some(e) = endpoint_override {
                    e.clone_into(&mut r.management_endpoint);
                }
                batch.records.push(r);
            }
        }
    }
    batch
}

/// What one invocation did, for the summary line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchSummary {
    /// Kinesis records in the event.
    pub kinesis_records: usize,
    /// Of those, skipped (logged one by one with the reason).
    pub skipped: usize,
    /// Replies planned: inbound `media` to play back.
    pub replies: usize,
    /// What became of them (all zero when the budget ran out first).
    pub sent: SendSummary,
    /// The invocation's budget ran out before every reply was posted.
    pub deadline: bool,
}

/// Handles one batch: reads it, plans the replies, posts them within `budget`, logs one summary,
/// and returns it. Never fails (see the module's documentation).
pub async fn handle(
    answer: &impl Answer,
    event: &Value,
    endpoint_override: Option<&str>,
    budget: Duration,
) -> BatchSummary {
    let batch = read_batch(event, endpoint_override);
    for (skip, seq) in &batch.skipped {
        tracing::warn!(
            reason = skip.code(),
            kinesis_sequence = seq.as_deref(),
            "echo: record skipped"
        );
    }
    let replies = echo_replies(batch.records);
    let mut summary = BatchSummary {
        kinesis_records: batch.kinesis_records,
        skipped: batch.skipped.len(),
        replies: replies.len(),
        ..BatchSummary::default()
    };
    match tokio::time::timeout(budget, send_replies(answer, replies)).await {
        Ok(sent) => summary.sent = sent,
        Err(_) => summary.deadline = true,
    }
    log_summary(&summary);
    summary
}

fn log_summary(s: &BatchSummary) {
    macro_rules! line {
        ($level:ident) => {
            tracing::$level!(
                event = "echo_batch",
                kinesis_records = s.kinesis_records,
                skipped = s.skipped,
                replies = s.replies,
                sent = s.sent.sent,
                gone = s.sent.gone,
                failed = s.sent.failed,
                deadline = s.deadline,
                "echo: batch done"
            )
        };
    }
    // A clean batch is the common case, several per second per call: DEBUG keeps CloudWatch Logs
    // out of the per-call cost. Anything worth a look is logged at INFO or WARN.
    if s.deadline || s.skipped > 0 || s.sent.failed > 0 {
        line!(warn);
    } else if s.sent.gone > 0 {
        line!(info);
    } else {
        line!(debug);
    }
}

/// The budget for posting: the invocation's time left minus a margin to answer the runtime.
pub fn budget_until(deadline: std::time::SystemTime) -> Duration {
    deadline
        .duration_since(std::time::SystemTime::now())
        .unwrap_or_default()
        .saturating_sub(Duration::from_millis(500))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::future::Future;
    use std::sync::Mutex;
    use stream_gate_domain::outbound::Outbound;
    use stream_gate_lambda::adapters::{PostError, PostOutcome};

    const MZ: &str = "MZ00112233445566778899aabbccddeeff";

    fn b64(bytes: &[u8]) -> String {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    fn media(conn: &str, seq: u64, track: &str) -> String {
        format!(
            r#"{{"v":1,"type":"media","connectionId":"{conn}","managementEndpoint":"https://abc123.execute-api.us-east-1.amazonaws.com/prod","accountSid":"AC0123456789abcdef0123456789abcdef","streamSid":"{MZ}","sequenceNumber":"{seq}","receivedAt":1,"twilio":{{"event":"media","sequenceNumber":"{seq}","media":{{"track":"{track}","chunk":"1","timestamp":"20","payload":"AAAA"}},"streamSid":"{MZ}"}}}}"#
        )
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
        let batch = read_batch(&event, None);
        assert_eq!(batch.kinesis_records, 6);
        let read: Vec<_> = batch
            .records
            .iter()
            .map(|r| (r.connection_id.as_str(), r.sequence_number))
            .collect();
        assert_eq!(read, [("a", Some(2)), ("b", Some(1))]);
        let skipped: Vec<_> = batch
            .skipped
            .iter()
            .map(|(s, seq)| (s.code(), seq.as_deref()))
            .collect();
        assert_eq!(
            skipped,
            [
                ("record_malformed", Some("2")),
                ("partition_key_mismatch", Some("3")),
                ("kinesis_record_malformed", None),
                ("kinesis_record_malformed", None),
            ]
        );
    }

    #[test]
    fn an_event_without_records_is_skipped_whole() {
        for event in [json!({}), json!({"Records": {}}), json!([1, 2])] {
            let batch = read_batch(&event, None);
            assert_eq!(batch.kinesis_records, 0);
            assert_eq!(batch.skipped, [(Skip::EventMalformed, None)]);
        }
        assert!(read_batch(&json!({"Records": []}), None).skipped.is_empty());
    }

    #[test]
    fn the_endpoint_override_replaces_every_records_endpoint() {
        let event = json!({"Records": [kinesis("a", media("a", 2, "inbound").as_bytes(), "1")]});
        let batch = read_batch(&event, Some("http://127.0.0.1:9/prod"));
        assert_eq!(
            batch.records[0].management_endpoint,
            "http://127.0.0.1:9/prod"
        );
    }

    #[derive(Default)]
    struct Recorder {
        posted: Mutex<Vec<String>>,
        hang: bool,
    }

    impl Answer for Recorder {
        fn post(
            &self,
            _endpoint: &str,
            connection_id: &str,
            _message: &Outbound,
        ) -> impl Future<Output = Result<PostOutcome, PostError>> + Send {
            if let Ok(mut p) = self.posted.lock() {
                p.push(connection_id.to_owned());
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
    async fn plans_posts_and_sums_up() {
        let event = json!({"Records": [
            kinesis("a", media("a", 3, "inbound").as_bytes(), "1"),
            kinesis("a", media("a", 2, "outbound").as_bytes(), "2"),
            kinesis("a", b"\xff", "3"),
            kinesis("a", media("a", 1, "inbound").as_bytes(), "4"),
        ]});
        let answer = Recorder::default();
        let s = handle(&answer, &event, None, Duration::from_secs(5)).await;
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
        let s = handle(&answer, &event, None, Duration::from_millis(50)).await;
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
}
