//! The JSON log subscriber of every binary.

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
        .with_filter(filter_fn(|meta| may_log(meta.target(), meta.level())))
        .with_filter(env);
    let _ = tracing_subscriber::registry().with(layer).try_init();
}

#[cfg(test)]
mod tests {
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
