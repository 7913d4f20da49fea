//! The `echo` Lambda's translation (src/bin/echo.rs): a Kinesis event, as the event source mapping
//! delivers it, to the gate's records; the replies planned by [`echo_replies`] and posted by
//! [`send_replies`]; one summary.
//!
//! The handler never fails an invocation. An event source mapping retries a failed batch, and a
//! retried batch would post the same audio again: the caller would hear it twice, late. So a
//! record that cannot be read is skipped with a reason code (never its content), a reply that
//! cannot be posted is counted, and the batch always succeeds. The template also sets the
//! mapping's `MaximumRetryAttempts` to 0 for failures outside this code (a crash, a timeout).
//!
//! Replies go only to the configured endpoint ([`AllowedEndpoint`]): a record that names another
//! is skipped (`endpoint_not_allowed`), whoever put it on the stream.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_lambda_events::event::kinesis::KinesisEventRecord;
use serde::Deserialize as _;
use serde_json::Value;
use stream_gate_answer::metrics::{self, Metric};

use crate::endpoint::AllowedEndpoint;
use crate::inbound::{InboundRecord, ReadError};
use crate::replies::{echo_replies, send_replies, Answer, SendSummary};

/// Longest connection id written to a log line (API Gateway's are 16 characters); a longer or
/// unprintable one, which only a forged record carries, is logged as absent.
const MAX_LOGGED_CONNECTION_ID: usize = 128;

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
    /// The record's `managementEndpoint` is not the configured one ([`AllowedEndpoint`]): the
    /// echo never posts where a record alone says.
    EndpointNotAllowed,
}

impl Skip {
    /// The stable code used in logs and the `EchoRecordSkipped` metric.
    pub const fn code(self) -> &'static str {
        match self {
            Self::EventMalformed => "event_malformed",
            Self::KinesisRecordMalformed => "kinesis_record_malformed",
            Self::Record(e) => e.code(),
            Self::PartitionKeyMismatch => "partition_key_mismatch",
            Self::EndpointNotAllowed => "endpoint_not_allowed",
        }
    }
}

/// One skipped Kinesis record: why, and what identifies it without its content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// Why.
    pub skip: Skip,
    /// The Kinesis sequence number, when the Kinesis record was readable.
    pub kinesis_sequence: Option<String>,
    /// The record's `connectionId`, when the record was read and the id is fit for a log line.
    pub connection_id: Option<String>,
}

/// A batch, read: the records the echo can use, in delivery order, and what was skipped.
#[derive(Debug, Default)]
pub struct Batch {
    /// Kinesis records in the event.
    pub kinesis_records: usize,
    /// The gate's records read from them, each naming the allowed endpoint.
    pub records: Vec<InboundRecord>,
    /// Skipped records.
    pub skipped: Vec<Skipped>,
}

/// `id` if it can go into a log line as it is: short, printable ASCII.
fn loggable(id: &str) -> Option<String> {
    (id.len() <= MAX_LOGGED_CONNECTION_ID && id.bytes().all(|b| b.is_ascii_graphic()))
        .then(|| id.to_owned())
}

/// Reads a Kinesis event (`{"Records": [{"kinesis": {"data": <base64>, "partitionKey": ..}, ..}]}`)
/// one record at a time, so one unreadable record costs only itself, never the batch. A record
/// whose `managementEndpoint` is not `allowed` is skipped; the others are answered at `allowed`'s
/// own spelling of it.
pub fn read_batch(event: &Value, allowed: &AllowedEndpoint) -> Batch {
    let Some(items) = event.get("Records").and_then(Value::as_array) else {
        return Batch {
            skipped: vec![skipped(Skip::EventMalformed, None, None)],
            ..Batch::default()
        };
    };
    let mut batch = Batch {
        kinesis_records: items.len(),
        ..Batch::default()
    };
    for item in items {
        let Ok(k) = KinesisEventRecord::deserialize(item) else {
            batch
                .skipped
                .push(skipped(Skip::KinesisRecordMalformed, None, None));
            continue;
        };
        let seq = Some(k.kinesis.sequence_number);
        let r = match InboundRecord::parse(&k.kinesis.data) {
            Ok(r) => r,
            // The end of a ConversationRelay session: read, and nothing to answer.
            Err(ReadError::SessionEnd) => continue,
            Err(e) => {
                batch.skipped.push(skipped(Skip::Record(e), seq, None));
                continue;
            }
        };
        let id = loggable(&r.connection_id);
        if r.connection_id != k.kinesis.partition_key {
            batch
                .skipped
                .push(skipped(Skip::PartitionKeyMismatch, seq, id));
        } else if !allowed.allows(&r.management_endpoint) {
            batch
                .skipped
                .push(skipped(Skip::EndpointNotAllowed, seq, id));
        } else {
            let mut r = r;
            allowed.as_str().clone_into(&mut r.management_endpoint);
            batch.records.push(r);
        }
    }
    batch
}

fn skipped(skip: Skip, kinesis_sequence: Option<String>, connection_id: Option<String>) -> Skipped {
    Skipped {
        skip,
        kinesis_sequence,
        connection_id,
    }
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
    allowed: &AllowedEndpoint,
    budget: Duration,
) -> BatchSummary {
    let batch = read_batch(event, allowed);
    log_skipped(&batch.skipped);
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

/// One WARN line per skipped record (reason, Kinesis sequence number, connection id; never the
/// record), and one `EchoRecordSkipped` metric line per reason with its count.
fn log_skipped(skipped: &[Skipped]) {
    let mut by_reason: BTreeMap<&'static str, u64> = BTreeMap::new();
    for s in skipped {
        tracing::warn!(
            reason = s.skip.code(),
            kinesis_sequence = s.kinesis_sequence.as_deref(),
            connection_id = s.connection_id.as_deref(),
            "echo: record skipped"
        );
        *by_reason.entry(s.skip.code()).or_default() += 1;
    }
    for (reason, n) in by_reason {
        metrics::count_n(Metric::EchoRecordSkipped, reason, n);
    }
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
#[path = "kinesis_batch_tests.rs"]
mod tests;
