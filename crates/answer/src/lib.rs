//! What every Lambda of stream-gate shares with the applications behind the gate, and all that the
//! example application (`stream-gate-echo`) takes from it, so that the `echo` Lambda compiles one
//! AWS SDK (the API Gateway Management API's) and not the gate's four:
//!
//! - [`connection_poster`]: answering a caller, Twilio's outbound messages posted with
//!   `PostToConnection`, over the per-endpoint client of [`management_client`] (which the gate's
//!   connection closer uses too);
//! - [`sdk`]: the AWS SDK configuration and clients, made on first use, and [`sdk_error`], one
//!   short code per AWS SDK error;
//! - [`logging`] and [`metrics`]: the JSON log lines and the CloudWatch metric lines of every
//!   binary, and [`clock`], the wall clock they and the gate read;
//! - [`ConfigError`]: a setting that stops a function at init, naming the variable.

pub mod clock;
pub mod connection_poster;
pub mod logging;
pub mod management_client;
pub mod metrics;
pub mod sdk;
pub mod sdk_error;

pub use connection_poster::{ConnectionPoster, PostError, PostOutcome};
pub use sdk::{load_sdk_config, LazyClient, LazySdk};
pub use sdk_error::sdk_error_code;

/// A variable that is set to something unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{variable}: {problem}")]
pub struct ConfigError {
    /// The environment variable.
    pub variable: &'static str,
    /// What is wrong with it (never its value: some variables name secrets).
    pub problem: String,
}
