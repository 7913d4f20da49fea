//! The two Twilio WebSocket protocols the gate judges, and which of them a stack admits
//! (`STREAM_GATE_PROTOCOLS`).
//!
//! Media Streams sends raw audio as `event`-tagged JSON; ConversationRelay sends text turns as
//! `type`-tagged JSON (docs/conversation-relay.md). A connection is one or the other from its
//! handshake on: the authorizer writes which into the connection's context (`protocol`).

use std::fmt;
use std::str::FromStr;

/// One Twilio WebSocket protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// `<Connect><Stream>`: audio frames (`connected`, `start`, `media`, …).
    MediaStreams,
    /// `<Connect><ConversationRelay>`: text messages (`setup`, `prompt`, `dtmf`, …).
    ConversationRelay,
}

impl Protocol {
    /// Both protocols, in the order they are documented.
    pub const ALL: [Protocol; 2] = [Self::MediaStreams, Self::ConversationRelay];

    /// The name used in `STREAM_GATE_PROTOCOLS`, the authorizer context and records.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::MediaStreams => "media-streams",
            Self::ConversationRelay => "conversation-relay",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Protocol {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| "expected media-streams or conversation-relay".to_owned())
    }
}

/// The protocols a stack admits: a non-empty set. The default admits Media Streams only, so a
/// stack that never asked for ConversationRelay denies its handshakes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Protocols {
    media_streams: bool,
    conversation_relay: bool,
}

impl Default for Protocols {
    fn default() -> Self {
        Self::only(Protocol::MediaStreams)
    }
}

impl Protocols {
    /// Exactly one protocol.
    pub const fn only(p: Protocol) -> Self {
        Self {
            media_streams: matches!(p, Protocol::MediaStreams),
            conversation_relay: matches!(p, Protocol::ConversationRelay),
        }
    }

    /// Both protocols.
    pub const BOTH: Self = Self {
        media_streams: true,
        conversation_relay: true,
    };

    /// Whether `p` is admitted.
    pub const fn admits(self, p: Protocol) -> bool {
        match p {
            Protocol::MediaStreams => self.media_streams,
            Protocol::ConversationRelay => self.conversation_relay,
        }
    }
}

impl fmt::Display for Protocols {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = Protocol::ALL
            .into_iter()
            .filter(|p| self.admits(*p))
            .map(Protocol::as_str)
            .collect();
        f.write_str(&names.join(","))
    }
}

impl FromStr for Protocols {
    type Err = String;
    /// A comma-separated list of protocol names, each once (`media-streams,conversation-relay`;
    /// spaces around a name are allowed).
    fn from_str(s: &str) -> Result<Self, String> {
        let mut set = Self {
            media_streams: false,
            conversation_relay: false,
        };
        for name in s.split(',') {
            let p: Protocol = name.trim().parse()?;
            if set.admits(p) {
                return Err(format!("{p} is listed twice"));
            }
            match p {
                Protocol::MediaStreams => set.media_streams = true,
                Protocol::ConversationRelay => set.conversation_relay = true,
            }
        }
        Ok(set)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_admits_media_streams_only() {
        let d = Protocols::default();
        assert!(d.admits(Protocol::MediaStreams));
        assert!(!d.admits(Protocol::ConversationRelay));
        assert_eq!(d.to_string(), "media-streams");
    }

    #[test]
    fn lists_parse_and_print_back() {
        for (text, media, relay) in [
            ("media-streams", true, false),
            ("conversation-relay", false, true),
            ("media-streams,conversation-relay", true, true),
            ("conversation-relay,media-streams", true, true),
            (" media-streams , conversation-relay", true, true),
        ] {
            let p: Protocols = text.parse().expect(text);
            assert_eq!(p.admits(Protocol::MediaStreams), media, "{text}");
            assert_eq!(p.admits(Protocol::ConversationRelay), relay, "{text}");
            assert_eq!(p.to_string().parse::<Protocols>(), Ok(p));
        }
        assert_eq!(
            "media-streams,conversation-relay".parse(),
            Ok(Protocols::BOTH)
        );
    }

    #[test]
    fn anything_else_is_refused() {
        for bad in [
            "",
            ",",
            "media-streams,",
            "Media-Streams",
            "media_streams",
            "media streams",
            "relay",
            "media-streams,media-streams",
            "conversation-relay,conversation-relay",
        ] {
            assert!(bad.parse::<Protocols>().is_err(), "{bad:?} parsed");
        }
        for p in Protocol::ALL {
            assert_eq!(p.as_str().parse::<Protocol>(), Ok(p));
            assert_eq!(p.to_string(), p.as_str());
        }
    }
}
