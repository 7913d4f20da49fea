//! What the authorizer pinned for a connection at `$connect`, as `$default` reads it back from
//! API Gateway's `requestContext.authorizer`: the protocol, the account the handshake proved and,
//! for ConversationRelay, the call its token was minted for and that token's expiry.
//!
//! Read fail-closed: a context that is not exactly one of the two shapes the authorizer writes is
//! no context (the router closes with `no_authorizer_context`). The one leniency is a context
//! without `protocol`: that is what an authorizer from before ConversationRelay wrote, and it
//! admitted Media Streams only, so a connection it admitted during an update stays Media Streams.

use crate::protocol::Protocol;
use crate::sid::{AccountSid, CallSid};

/// The context key of the protocol.
pub const PROTOCOL_KEY: &str = "protocol";
/// The context key of the account.
pub const ACCOUNT_SID_KEY: &str = "accountSid";
/// The context key of the ConversationRelay call.
pub const CALL_SID_KEY: &str = "callSid";
/// The context key of the ConversationRelay call token's expiry (Unix seconds, decimal): the
/// `setup` claims that very token (docs/design.md §5).
pub const CALL_TOKEN_EXPIRES_AT_KEY: &str = "callTokenExpiresAt";

/// The longest decimal number accepted as an expiry (Unix seconds fit in 11 digits until 5138).
const MAX_EXPIRY_DIGITS: usize = 12;

/// A connection's authorizer context.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionContext {
    /// A Media Streams connection of `account`.
    MediaStreams {
        /// The account the handshake proved.
        account: AccountSid,
    },
    /// A ConversationRelay connection for one call.
    ConversationRelay {
        /// The account the handshake proved.
        account: AccountSid,
        /// The call the handshake's call token was minted for.
        call: CallSid,
        /// That token's expiry (Unix seconds).
        token_expires_at: u64,
    },
}

/// The context's raw string values, as the event carried them (`None`: absent or not a string).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RawContext<'a> {
    /// `protocol`.
    pub protocol: Option<&'a str>,
    /// `accountSid`.
    pub account_sid: Option<&'a str>,
    /// `callSid`.
    pub call_sid: Option<&'a str>,
    /// `callTokenExpiresAt`.
    pub call_token_expires_at: Option<&'a str>,
}

impl ConnectionContext {
    /// Reads a context; `None` unless it is one of the two shapes the authorizer writes.
    pub fn read(raw: RawContext<'_>) -> Option<Self> {
        let account = AccountSid::parse(raw.account_sid?).ok()?;
        let protocol = match raw.protocol {
            None => Protocol::MediaStreams,
            Some(p) => p.parse().ok()?,
        };
        match protocol {
            Protocol::MediaStreams => (raw.call_sid.is_none()
                && raw.call_token_expires_at.is_none())
            .then_some(Self::MediaStreams { account }),
            Protocol::ConversationRelay => Some(Self::ConversationRelay {
                account,
                call: CallSid::parse(raw.call_sid?).ok()?,
                token_expires_at: expiry(raw.call_token_expires_at?)?,
            }),
        }
    }

    /// The account the handshake proved.
    pub fn account(&self) -> &AccountSid {
        match self {
            Self::MediaStreams { account } | Self::ConversationRelay { account, .. } => account,
        }
    }

    /// The connection's protocol.
    pub fn protocol(&self) -> Protocol {
        match self {
            Self::MediaStreams { .. } => Protocol::MediaStreams,
            Self::ConversationRelay { .. } => Protocol::ConversationRelay,
        }
    }
}

/// A decimal expiry: digits only, bounded, no sign or leading `+`.
fn expiry(text: &str) -> Option<u64> {
    if text.is_empty()
        || text.len() > MAX_EXPIRY_DIGITS
        || !text.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const AC: &str = "ACdeadbeefdeadbeefdeadbeefdeadbeef";
    const CA: &str = "CAffeeddccbbaa99887766554433221100";

    fn relay<'a>(call: Option<&'a str>, exp: Option<&'a str>) -> RawContext<'a> {
        RawContext {
            protocol: Some("conversation-relay"),
            account_sid: Some(AC),
            call_sid: call,
            call_token_expires_at: exp,
        }
    }

    #[test]
    fn the_two_shapes_the_authorizer_writes_are_read() {
        let ac = AccountSid::parse(AC).expect("ac");
        for protocol in [None, Some("media-streams")] {
            let raw = RawContext {
                protocol,
                account_sid: Some(AC),
                ..RawContext::default()
            };
            let ctx = ConnectionContext::read(raw).expect("media streams");
            assert_eq!(ctx, ConnectionContext::MediaStreams { account: ac });
            assert_eq!(ctx.protocol(), Protocol::MediaStreams);
            assert_eq!(ctx.account(), &ac);
        }
        let ctx = ConnectionContext::read(relay(Some(CA), Some("1800000000"))).expect("relay");
        assert_eq!(
            ctx,
            ConnectionContext::ConversationRelay {
                account: ac,
                call: CallSid::parse(CA).expect("ca"),
                token_expires_at: 1_800_000_000,
            }
        );
        assert_eq!(ctx.protocol(), Protocol::ConversationRelay);
        assert_eq!(ctx.account(), &ac);
    }

    #[test]
    fn anything_else_is_no_context() {
        let bad = [
            RawContext::default(),
            RawContext {
                account_sid: Some("ACnope"),
                ..RawContext::default()
            },
            RawContext {
                protocol: Some("websocket"),
                account_sid: Some(AC),
                ..RawContext::default()
            },
            RawContext {
                protocol: Some("media-streams"),
                account_sid: Some(AC),
                call_sid: Some(CA),
                ..RawContext::default()
            },
            RawContext {
                protocol: None,
                account_sid: Some(AC),
                call_token_expires_at: Some("1800000000"),
                ..RawContext::default()
            },
            relay(None, Some("1800000000")),
            relay(Some(CA), None),
            relay(Some("CAnope"), Some("1800000000")),
            relay(Some(CA), Some("")),
            relay(Some(CA), Some("+1800000000")),
            relay(Some(CA), Some("-1")),
            relay(Some(CA), Some("18e8")),
            relay(Some(CA), Some("1234567890123")),
        ];
        for raw in bad {
            assert_eq!(ConnectionContext::read(raw), None, "{raw:?}");
        }
        assert!(ConnectionContext::read(relay(Some(CA), Some("123456789012"))).is_some());
    }
}
