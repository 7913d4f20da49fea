//! stream-gate's developer tools: everything that runs the gate on one machine without AWS, and
//! the logic behind every `stream-gate` subcommand (the root crate only maps flags and prints).
//!
//! [`local`] is an API Gateway stand-in on loopback that builds the same event documents AWS sends
//! and calls the Lambda entrypoints of `stream-gate-lambda` in-process; [`sim`] is a Twilio Media
//! Streams client and a set of hostile ones; [`demo`] runs one legitimate call and every attack
//! against a local gateway; [`load`] measures the gateway under real-time calls; [`verify`] places
//! the same call and attacks against a deployment and says what a failure means;
//! [`record_server`] is the example application (the caller hears themselves) behind the local
//! gateway's HTTP sink; [`signing_tools`] and [`new_credentials`] are the signature, call-token
//! and credentials-document tools; [`http_client`] is the one HTTP request the tools make.

pub mod demo;
pub mod http_client;
pub mod load;
pub mod local;
pub mod new_credentials;
pub mod random;
pub mod record_server;
pub mod signing_tools;
pub mod sim;
pub mod tls;
pub mod verify;

pub use stream_gate_domain as domain;
