//! stream-gate: admit only Twilio Media Streams of your own accounts to an API Gateway WebSocket API.
//!
//! Layout: [`domain`] is pure (SIDs, frames, signatures, tokens, decisions); [`adapters`] do I/O
//! behind small traits; [`entrypoints`] translate AWS events to the domain and back, one per binary.

#![forbid(unsafe_code)]
#![deny(unused_must_use)]
#![warn(missing_docs)]

pub mod adapters;
pub mod cli;
pub mod config;
pub mod demo;
pub mod devtools;
pub use stream_gate_domain as domain;
pub mod entrypoints;
pub mod load;
pub mod local;
pub mod sim;
