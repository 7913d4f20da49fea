//! The pure domain: no AWS types, no I/O, time passed in.

pub mod base64check;
pub mod call_state;
pub mod call_token;
pub mod connect;
pub mod connection_context;
pub mod credentials;
pub mod fixtures;
pub mod frame;
pub mod handshake;
pub mod outbound;
pub mod pipeline;
pub mod protocol;
pub mod reason;
pub mod record;
pub mod relay_connect;
pub mod relay_frame;
pub mod relay_outbound;
pub mod relay_twiml;
pub mod secret;
pub mod session_end;
pub mod sid;
pub mod signature;
pub mod socket_message;
pub mod stream_token;
mod strict_json;
pub mod verdict;
pub mod webhook_decision;

#[cfg(test)]
mod verdict_tests;

pub use call_token::{mint_call_token, verify_call_token, CallTokenFailure, VerifiedCallToken};
pub use connect::{
    decide_connect, AuthMethod, AuthMode, ConnectRequest, CredentialRef, Presented, VerifiedConnect,
};
pub use credentials::{Credentials, CredentialsError};
pub use frame::{parse_frame, Frame};
pub use handshake::{decide_handshake, Admitted, Handshake};
pub use protocol::{Protocol, Protocols};
pub use reason::{CloseReason, DenyReason, WebhookRefusal};
pub use relay_connect::{
    decide_relay_connect, handshake_kind, HandshakeKind, RelayConnectRequest, VerifiedRelayConnect,
};
pub use relay_frame::{parse_relay, RelayMessage, RelaySetup};
pub use relay_outbound::{RelayOutbound, RelayOutboundError};
pub use secret::Secret;
pub use sid::{AccountSid, CallSid, SessionSid, SidError, StreamSid};
pub use signature::{
    compute_shared_key_signature, compute_signature, handshake_urls, webhook_urls, SettingsFailure,
    SignatureAlgorithm, SignatureSettings, SIGNATURE_SETTINGS_HEADER,
};
pub use verdict::{
    judge_frame, judge_parsed, needs_credentials, Accepted, CallTokenPolicy, Verdict,
};
