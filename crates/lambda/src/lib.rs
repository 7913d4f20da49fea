//! The Lambda gate of stream-gate: what runs in AWS.
//!
//! [`config`] reads every `STREAM_GATE_*` variable once; [`adapters`] do the I/O the domain needs
//! behind small traits (credentials, closing connections); [`entrypoints`] translate
//! `aws_lambda_events` types to the pure domain ([`domain`], re-exported) and back, one per binary.
//! The binaries in `src/bin` only build state and run.

pub mod adapters;
pub mod budget;
pub mod call_state_rules;
pub mod clock;
pub mod config;
pub mod entrypoints;
pub mod iam;
pub mod logging;
pub mod metrics;
pub mod partition;
pub mod runtime_api;
pub mod state;
pub mod unknown_events;

pub use stream_gate_domain as domain;
