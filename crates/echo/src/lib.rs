//! The classic Twilio echo, as an application behind the gate: every inbound `media` frame of a
//! verified call is played back to the caller, in the caller's order.
//!
//! The same logic runs in two places: the `echo` Lambda, which reads the gate's records from
//! Kinesis, and `stream-gate echo`, which receives them from the local gateway's HTTP sink. Both
//! answer through the Management API with [`stream_gate_answer::ConnectionPoster`], so
//! only Twilio's own outbound messages ever reach the socket, and each only to the endpoint it
//! was configured to answer: the Lambda its own API's ([`endpoint::AllowedEndpoint`]), the local
//! tool loopback ([`endpoint::is_loopback_endpoint`]), never wherever a record says.

#![warn(missing_docs)]

pub mod endpoint;
pub mod inbound;
pub mod kinesis_batch;
pub mod replies;

pub use endpoint::AllowedEndpoint;
pub use inbound::{InboundRecord, InboundRelay, ReadError};
pub use replies::{echo_replies, send_replies, Answer, Reply, ReplyMessage, SendSummary};
