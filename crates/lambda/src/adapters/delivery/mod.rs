//! Delivery: where the records of verified calls go (`STREAM_GATE_SINK`, docs/design.md §6).
//!
//! One small trait, [`DeliverySink`], with the sinks a Lambda can be given ([`KinesisSink`],
//! [`NoSink`]) and, with the `dev-adapters` feature (the local gateway, the tests; never the Lambda
//! binaries), the local ones (`HttpSink`, `FileSink`). A sink sees only [`DeliveryRecord`]s, which
//! only the domain's builder makes (the call token already removed). [`deliver_with_retry`] is how
//! the router uses a sink: bounded by the invocation's deadline, retried once, loud when it fails.
//! Delivery is at most once (plus that one retry): a lost 20 ms frame is better than a held or
//! closed call.

#[cfg(feature = "dev-adapters")]
mod file_sink;
#[cfg(feature = "dev-adapters")]
mod http_sink;
mod kinesis_sink;

#[cfg(feature = "dev-adapters")]
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio::time::Instant;

#[cfg(feature = "dev-adapters")]
pub use self::file_sink::FileSink;
#[cfg(feature = "dev-adapters")]
pub use self::http_sink::HttpSink;
pub use self::kinesis_sink::{KinesisSink, KinesisStream};
use crate::config::Build;
pub use crate::domain::record::{Connection, DeliveryRecord, RecordType};
use crate::metrics::{self, Metric};

/// Why a record was not delivered: a short code for logs and the `DeliveryFailed` metric
/// (`timeout`, `http_503`, `ProvisionedThroughputExceededException`, ...), never record content.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("delivery failed: {code}")]
pub struct DeliveryError {
    /// The code.
    pub code: String,
}

impl DeliveryError {
    /// An error with `code`.
    pub fn new(code: impl Into<String>) -> Self {
        Self { code: code.into() }
    }
}

/// Where records go.
pub trait DeliverySink: Send + Sync {
    /// Delivers one record: `Ok` once the destination has it. Should bound its own I/O;
    /// [`deliver_with_retry`] cuts it at the invocation's budget anyway.
    fn deliver<'a>(
        &'a self,
        record: &'a DeliveryRecord,
    ) -> BoxFuture<'a, Result<(), DeliveryError>>;

    /// What kind of sink this is, for logs (`kinesis`, `http`, `file`, `none`, ...).
    fn kind(&self) -> &'static str {
        "custom"
    }
}

/// What one delivery attempt may take: the Kinesis client's operation timeout (1.5 s) and a
/// margin. A retry starts only when this much of the invocation is left.
pub const DELIVERY_ATTEMPT_BUDGET: Duration = Duration::from_millis(1600);

/// Delivers `record`, each attempt cut at [`DELIVERY_ATTEMPT_BUDGET`] or the `deadline`, whichever
/// comes first; a failed attempt is retried once when the deadline leaves a whole attempt's budget.
/// A record still not delivered is logged (`delivery_failed`, ERROR, with the error code) and
/// counted (`DeliveryFailed`, dimension `reason` = the code). Returns whether it was delivered.
/// Never panics and never waits past `deadline`.
pub async fn deliver_with_retry(
    sink: &dyn DeliverySink,
    record: &DeliveryRecord,
    deadline: Instant,
) -> bool {
    let mut attempts = 1;
    let mut result = attempt(sink, record, deadline).await;
    if let Err(first) = &result {
        if deadline.saturating_duration_since(Instant::now()) >= DELIVERY_ATTEMPT_BUDGET {
            tracing::warn!(
                event = "delivery_retry",
                connection_id = record.partition_key(),
                record_type = record.kind().as_str(),
                sink = sink.kind(),
                code = %first.code
            );
            attempts += 1;
            result = attempt(sink, record, deadline).await;
        }
    }
    match result {
        Ok(()) => true,
        Err(e) => {
            tracing::error!(
                event = "delivery_failed",
                connection_id = record.partition_key(),
                record_type = record.kind().as_str(),
                sink = sink.kind(),
                code = %e.code,
                attempts
            );
            metrics::count(Metric::DeliveryFailed, &e.code);
            false
        }
    }
}

async fn attempt(
    sink: &dyn DeliverySink,
    record: &DeliveryRecord,
    deadline: Instant,
) -> Result<(), DeliveryError> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(DeliveryError::new("no_time_left"));
    }
    match tokio::time::timeout(left.min(DELIVERY_ATTEMPT_BUDGET), sink.deliver(record)).await {
        Ok(result) => result,
        Err(_) => Err(DeliveryError::new("timeout")),
    }
}

/// `STREAM_GATE_SINK`: which sink to build.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum SinkTarget {
    /// `kinesis:<stream name or ARN>`.
    Kinesis(KinesisStream),
    /// `http://host:port/path` on loopback: each record POSTed as JSON (`dev-adapters` only).
    #[cfg(feature = "dev-adapters")]
    Http(::http::Uri),
    /// `file:PATH`: JSON lines, appended (`dev-adapters` only).
    #[cfg(feature = "dev-adapters")]
    File(PathBuf),
    /// `none` (the default): records are dropped.
    #[default]
    None,
}

/// What `STREAM_GATE_SINK` may be in a build with the local sinks, for error messages.
const EXPECTED: &str =
    "expected kinesis:<stream name or ARN>, http://<loopback host>:<port>/<path>, file:<path> or none";

/// What `STREAM_GATE_SINK` may be in a Lambda binary's build, for error messages.
const EXPECTED_IN_LAMBDA: &str = "expected kinesis:<stream name or ARN> or none";

/// Why a local sink is refused by a Lambda binary's build.
const LOCAL_SINK_IN_LAMBDA: &str = "this build has only kinesis:<stream name or ARN> and none: \
     the http:// and file: sinks are the local gateway's (stream-gate local), not in the Lambda \
     binaries";

impl FromStr for SinkTarget {
    type Err = String;

    /// Parses `STREAM_GATE_SINK` for this build ([`Build::THIS`]): the error names the problem,
    /// never the value (a URL may carry credentials).
    fn from_str(s: &str) -> Result<Self, String> {
        Self::parse_for(s, Build::THIS)
    }
}

impl SinkTarget {
    /// Parses `STREAM_GATE_SINK` as `build` reads it: `http://` and `file:` only with the local
    /// adapters ([`Build::Dev`]); a Lambda binary ([`Build::Lambda`]) refuses them, saying so.
    pub fn parse_for(s: &str, build: Build) -> Result<Self, String> {
        if s == "none" {
            return Ok(Self::None);
        }
        if let Some(stream) = s.strip_prefix("kinesis:") {
            return KinesisStream::parse(stream).map(Self::Kinesis);
        }
        if s.starts_with("file:") || s.starts_with("http://") {
            #[cfg(feature = "dev-adapters")]
            if build == Build::Dev {
                return Self::local(s);
            }
            return Err(LOCAL_SINK_IN_LAMBDA.into());
        }
        if s.starts_with("https://") {
            return Err(
                "https:// sinks are not supported: use kinesis: in AWS, http:// on loopback locally"
                    .into(),
            );
        }
        Err(match build {
            Build::Lambda => EXPECTED_IN_LAMBDA.into(),
            Build::Dev => EXPECTED.into(),
        })
    }

    /// `file:PATH` or `http://...`, in a build with the local sinks.
    #[cfg(feature = "dev-adapters")]
    fn local(s: &str) -> Result<Self, String> {
        if let Some(path) = s.strip_prefix("file:") {
            if path.is_empty() {
                return Err("file: needs a path (file:/tmp/records.jsonl)".into());
            }
            return Ok(Self::File(PathBuf::from(path)));
        }
        http_sink::parse_loopback_url(s).map(Self::Http)
    }

    /// The sink's kind, for logs: `kinesis`, `http`, `file` or `none`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Kinesis(_) => "kinesis",
            #[cfg(feature = "dev-adapters")]
            Self::Http(_) => "http",
            #[cfg(feature = "dev-adapters")]
            Self::File(_) => "file",
            Self::None => "none",
        }
    }

    /// Builds the sink. Nothing is opened, connected or loaded here: clients and files are made on
    /// the first delivery (no certificate or file I/O at init).
    pub fn build(&self, sdk: impl Into<crate::adapters::LazySdk>) -> Arc<dyn DeliverySink> {
        match self {
            Self::Kinesis(stream) => Arc::new(KinesisSink::new(sdk, stream.clone())),
            #[cfg(feature = "dev-adapters")]
            Self::Http(uri) => Arc::new(HttpSink::new(uri.clone())),
            #[cfg(feature = "dev-adapters")]
            Self::File(path) => Arc::new(FileSink::new(path.clone())),
            Self::None => Arc::new(NoSink),
        }
    }
}

/// `none`: every record is dropped (and counts as delivered).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoSink;

impl DeliverySink for NoSink {
    fn deliver<'a>(&'a self, _: &'a DeliveryRecord) -> BoxFuture<'a, Result<(), DeliveryError>> {
        Box::pin(async { Ok(()) })
    }

    fn kind(&self) -> &'static str {
        "none"
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::domain::{AccountSid, StreamSid};
    use std::sync::atomic::{AtomicUsize, Ordering};

    pub(crate) fn record(seq: u64) -> DeliveryRecord {
        let mz = StreamSid::parse("MZ00112233445566778899aabbccddeeff").expect("mz");
        let account = AccountSid::parse("ACdeadbeefdeadbeefdeadbeefdeadbeef").expect("ac");
        let connection = Connection {
            protocol: crate::domain::Protocol::MediaStreams,
            connection_id: "Xk2TmdKPIAMCJqw=",
            management_endpoint: "https://abc123.execute-api.us-east-1.amazonaws.com/prod",
            received_at_ms: 1,
        };
        let frame = crate::domain::fixtures::media(&mz, seq, seq, &[0xff; 160]);
        crate::domain::fixtures::delivered(
            &frame,
            &crate::domain::connection_context::ConnectionContext::MediaStreams { account },
            None,
            &connection,
        )
    }

    #[test]
    fn sink_targets_parse() {
        assert_eq!("none".parse(), Ok(SinkTarget::None));
        assert_eq!(SinkTarget::default(), SinkTarget::None);
        assert_eq!(
            "kinesis:calls".parse(),
            Ok(SinkTarget::Kinesis(KinesisStream::Name("calls".into())))
        );
        let arn = "arn:aws-cn:kinesis:cn-north-1:123456789012:stream/calls.v1_x-y";
        assert_eq!(
            format!("kinesis:{arn}").parse(),
            Ok(SinkTarget::Kinesis(KinesisStream::Arn(arn.into())))
        );
        assert_eq!(
            "file:/tmp/records.jsonl".parse(),
            Ok(SinkTarget::File("/tmp/records.jsonl".into()))
        );
        for url in [
            "http://127.0.0.1:9000/records",
            "http://localhost:8080/",
            "http://[::1]:1/x",
            "http://127.1.2.3/",
        ] {
            match url.parse::<SinkTarget>() {
                Ok(SinkTarget::Http(uri)) => assert_eq!(uri.to_string(), url),
                other => panic!("{url}: {other:?}"),
            }
        }
    }

    #[test]
    fn bad_sink_targets_name_the_problem_not_the_value() {
        for (value, problem) in [
            ("", "expected kinesis:"),
            ("kinesis", "expected kinesis:"),
            ("sqs:queue", "expected kinesis:"),
            ("NONE", "expected kinesis:"),
            ("kinesis:", "stream name or ARN"),
            ("kinesis:bad name", "stream name"),
            ("kinesis:arn:aws:kinesis:us-east-1:123:stream/x", "ARN"),
            ("kinesis:arn:aws:sqs:us-east-1:123456789012:queue", "ARN"),
            (
                "kinesis:arn:aws:kinesis:us-east-1:123456789012:stream/",
                "ARN",
            ),
            ("file:", "needs a path"),
            ("https://example.com/records", "not supported"),
            ("http://example.com/records", "loopback"),
            ("http://10.0.0.1:80/records", "loopback"),
            ("http://127.0.0.1.example.com/records", "loopback"),
            ("http://user:secret-pw@127.0.0.1:9/records", "credentials"),
            ("http://", "URL"),
            ("http://127.0.0.1:99999/", "URL"),
        ] {
            let err = value.parse::<SinkTarget>().expect_err(value);
            assert!(err.contains(problem), "{value}: {err}");
            assert!(
                !err.contains("secret-pw") && !err.contains("example.com"),
                "{err}"
            );
        }
        let long = format!("kinesis:{}", "a".repeat(129));
        assert!(long.parse::<SinkTarget>().is_err());
    }

    #[tokio::test]
    async fn built_sinks_are_of_their_kind_and_none_delivers_nothing() {
        let sdk = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .build();
        for (value, kind) in [
            ("none", "none"),
            ("kinesis:calls", "kinesis"),
            ("http://127.0.0.1:9/x", "http"),
            ("file:/nonexistent/dir/records.jsonl", "file"),
        ] {
            let target: SinkTarget = value.parse().expect(value);
            assert_eq!(target.kind(), kind);
            assert_eq!(target.build(&sdk).kind(), kind);
        }
        assert_eq!(NoSink.deliver(&record(1)).await, Ok(()));
    }

    /// Fails `failures` times with `code`, then delivers; counts calls.
    struct Flaky {
        failures: usize,
        calls: AtomicUsize,
    }

    impl DeliverySink for Flaky {
        fn deliver<'a>(
            &'a self,
            _: &'a DeliveryRecord,
        ) -> BoxFuture<'a, Result<(), DeliveryError>> {
            let n = self.calls.fetch_add(1, Ordering::SeqCst);
            let failures = self.failures;
            Box::pin(async move {
                if n < failures {
                    Err(DeliveryError::new("ThrottlingException"))
                } else {
                    Ok(())
                }
            })
        }
    }

    /// Never answers.
    struct Hanging(AtomicUsize);

    impl DeliverySink for Hanging {
        fn deliver<'a>(
            &'a self,
            _: &'a DeliveryRecord,
        ) -> BoxFuture<'a, Result<(), DeliveryError>> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Box::pin(std::future::pending())
        }
    }

    #[tokio::test(start_paused = true)]
    async fn one_failure_is_retried_when_there_is_time() {
        let sink = Flaky {
            failures: 1,
            calls: AtomicUsize::new(0),
        };
        let deadline = Instant::now() + Duration::from_secs(4);
        assert!(deliver_with_retry(&sink, &record(1), deadline).await);
        assert_eq!(sink.calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn two_failures_are_a_failed_delivery() {
        let sink = Flaky {
            failures: 2,
            calls: AtomicUsize::new(0),
        };
        let deadline = Instant::now() + Duration::from_secs(4);
        assert!(!deliver_with_retry(&sink, &record(1), deadline).await);
        assert_eq!(sink.calls.load(Ordering::SeqCst), 2, "one retry, not more");
        // A sink that does not say what it is logs as `custom`.
        assert_eq!(sink.kind(), "custom");
    }

    #[tokio::test(start_paused = true)]
    async fn no_retry_without_time_for_a_whole_attempt() {
        let sink = Flaky {
            failures: 1,
            calls: AtomicUsize::new(0),
        };
        let deadline = Instant::now() + DELIVERY_ATTEMPT_BUDGET - Duration::from_millis(1);
        assert!(!deliver_with_retry(&sink, &record(1), deadline).await);
        assert_eq!(sink.calls.load(Ordering::SeqCst), 1);
        // A deadline already past: not even one attempt.
        let past = Instant::now();
        let sink = Flaky {
            failures: 0,
            calls: AtomicUsize::new(0),
        };
        assert!(!deliver_with_retry(&sink, &record(1), past).await);
        assert_eq!(sink.calls.load(Ordering::SeqCst), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_hanging_sink_is_cut_at_the_attempt_budget_and_the_deadline() {
        let sink = Hanging(AtomicUsize::new(0));
        let t0 = Instant::now();
        assert!(!deliver_with_retry(&sink, &record(1), t0 + Duration::from_millis(4500)).await);
        assert_eq!(sink.0.load(Ordering::SeqCst), 2);
        assert_eq!(
            t0.elapsed(),
            DELIVERY_ATTEMPT_BUDGET * 2,
            "two cut attempts"
        );
        // With less than one budget left, the deadline cuts the only attempt.
        let t1 = Instant::now();
        assert!(!deliver_with_retry(&sink, &record(1), t1 + Duration::from_millis(300)).await);
        assert_eq!(t1.elapsed(), Duration::from_millis(300));
        assert_eq!(sink.0.load(Ordering::SeqCst), 3);
    }
}
