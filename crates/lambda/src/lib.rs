//! The Lambda gate of stream-gate: what runs in AWS (docs/design.md, ARCHITECTURE.md).
//!
//! - [`config`] reads every `STREAM_GATE_*` variable once; [`state`] builds, once per instance,
//!   what each binary borrows in every invocation.
//! - [`adapters`] do the I/O the domain needs behind small traits: credentials (file or Secrets
//!   Manager under a TTL cache), closing connections and posting to them (Management API), the
//!   per-connection call state (DynamoDB) and delivery of records (Kinesis), each AWS client made
//!   on first use. The local adapters (memory call state, HTTP and file sinks, test doubles) are
//!   only in a build with the `dev-adapters` feature (the dev tools, the tests), never in the
//!   Lambda binaries, whose configuration refuses them ([`config::Build`]).
//! - [`entrypoints`] translate `aws_lambda_events` types to the pure domain ([`domain`],
//!   re-exported) and back, one per binary; [`call_state_rules`] is the router's call-state step
//!   and [`budget`] the invocation's time budget that cuts every wait.
//! - [`runtime_api`] is the router's own Lambda Runtime API loop (and how every binary refuses to
//!   start); [`iam`] lists every AWS call each binary makes, for the template's policies;
//!   [`logging`], [`metrics`] and [`unknown_events`] are the decision log lines and their counts
//!   ([`logging`], [`metrics`] and [`clock`] are `stream-gate-answer`'s, which the `echo` Lambda
//!   shares).
//!
//! The binaries in `src/bin` only build state and run.

pub mod adapters;
pub mod budget;
pub mod call_state_rules;
pub mod config;
pub mod entrypoints;
pub mod iam;
pub mod partition;
pub mod runtime_api;
pub mod state;
pub mod unknown_events;

pub use stream_gate_answer::{clock, logging, metrics};
pub use stream_gate_domain as domain;
