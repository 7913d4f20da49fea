//! The JSON log subscriber of every binary.

use std::sync::atomic::{AtomicU64, Ordering};

use tracing::Level;
use tracing_subscriber::filter::{filter_fn, EnvFilter};
use tracing_subscriber::prelude::*;

/// Whether an event or span may be logged whatever `RUST_LOG` says: stream-gate's own code at any
/// level (it never logs a secret), everything else only at INFO and above. Below INFO,
/// lambda_runtime prints each raw event (with `X-Twilio-Signature`, the `?token=` stream token and
/// the call token inside `start`), and lambda_http, hyper and the AWS SDK print headers and bodies.
pub fn may_log(target: &str, level: &Level) -> bool {
    target.starts_with("stream_gate") || *level <= Level::INFO
}

/// Installs the JSON log subscriber: one object per line, no ANSI, level from `RUST_LOG`
/// (default `info`), capped by [`may_log`].
pub fn init_logging() {
    let env = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let layer = tracing_subscriber::fmt::layer()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(false)
        .with_target(false)
        .with_ansi(false)
        // No span is recorded: the lines carry no span fields (`with_current_span(false)`), and
        // lambda_runtime opens one per invocation whose fields the JSON layer would otherwise
        // format for nothing, 50 times a second per call.
        .with_filter(filter_fn(|meta| {
            !meta.is_span() && may_log(meta.target(), meta.level())
        }))
        .with_filter(env);
    let _ = tracing_subscriber::registry().with(layer).try_init();
}

/// A log line that repeats at most once per interval (a failing dependency would otherwise log 50
/// lines a second per call): [`Throttled::admit`] says whether to log now, and how many were
/// suppressed since the last line.
#[derive(Debug, Default)]
pub struct Throttled {
    last_ms: AtomicU64,
    suppressed: AtomicU64,
}

/// The interval of [`Throttled`].
pub const THROTTLED_INTERVAL_MS: u64 = 10_000;

impl Throttled {
    /// `Some(suppressed)` when a line may be logged at `now_ms`, else `None` (and counted).
    pub fn admit(&self, now_ms: u64) -> Option<u64> {
        let last = self.last_ms.load(Ordering::Relaxed);
        let due = last == 0 || now_ms.saturating_sub(last) >= THROTTLED_INTERVAL_MS;
        if due
            && self
                .last_ms
                .compare_exchange(last, now_ms.max(1), Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            return Some(self.suppressed.swap(0, Ordering::Relaxed));
        }
        self.suppressed.fetch_add(1, Ordering::Relaxed);
        None
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn throttled_logs_once_per_interval() {
        let t = Throttled::default();
        assert_eq!(t.admit(1_000), Some(0));
        assert_eq!(t.admit(1_001), None);
        assert_eq!(t.admit(10_999), None);
        assert_eq!(t.admit(11_000), Some(2));
        assert_eq!(t.admit(11_001), None);
    }

    use super::*;

    #[test]
    fn dependencies_are_capped_at_info() {
        assert!(!may_log(
            "lambda_runtime::layers::api_response",
            &Level::TRACE
        ));
        assert!(!may_log("lambda_runtime", &Level::DEBUG));
        assert!(!may_log("aws_smithy_runtime::client", &Level::DEBUG));
        assert!(!may_log("hyper_util::client", &Level::TRACE));
        assert!(may_log("lambda_runtime", &Level::INFO));
        assert!(may_log("lambda_runtime", &Level::ERROR));
        assert!(may_log(
            "stream_gate_lambda::entrypoints::router",
            &Level::TRACE
        ));
    }
}
