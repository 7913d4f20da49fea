//! The legitimate call and the hostile clients, as (handshake, script) pairs.
//!
//! Every hostile client is a variant of [`Attack`]: its protocol, `--attack` name, description and
//! expected outcome are `match`es on the variant, and so is the [`Plan`] [`attack`] builds, so the
//! compiler checks that each one has all five. [`ATTACKS`] lists the Media Streams ones in demo
//! order, [`RELAY_ATTACKS`] the ConversationRelay ones (docs/conversation-relay.md): an attack that
//! applies to both protocols is two variants with one name, told apart by [`Attack::parse_for`].
//!
//! Most attacks are one socket (a handshake and a script). `reuse-call-token` is two sockets that
//! present one call token, and `replay-webhook` is no socket at all but the voice webhook posted
//! twice for one CallSid; [`crate::sim::play`] runs any plan.
//!
//! Three attacks are stopped only by a gate that keeps call state (docs/design.md §5:
//! `STREAM_GATE_CALL_STATE=memory|dynamodb`): [`Attack::needs_call_state`]. Against a stateless
//! gate their expected outcome ([`Attack::expected_under`] with [`GateState::Stateless`]) is the
//! open gap itself — admitted, or a new token — so a table run against such a gate says so
//! instead of failing or hiding the row.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use tokio::sync::oneshot;

use super::audio::FRAME_BYTES;
use super::client::{Handshake, Script};
use super::identity::Identity;
use crate::domain::{CallSid, CloseReason, DenyReason, Protocol};
use crate::local::connection::{CLOSE_POLICY, CLOSE_TOO_BIG, CLOSE_UNSUPPORTED};

/// Twilio's WebSocket client User-Agent.
pub const TWILIO_USER_AGENT: &str = "Twilio.TmeWs/1.0";

/// What a scenario should produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expected {
    /// Admitted, every frame accepted, closed by the client after `stop`.
    Admitted,
    /// Handshake refused with 403; the authorizer's reason.
    Refused(DenyReason),
    /// Admitted, then closed by the gateway with this close code and reason (the local gateway
    /// writes the reason code as the close frame's text).
    Closed(u16, CloseReason),
    /// Admitted, never closed by the server, nothing written back (unknown events are ignored).
    Ignored,
    /// The voice webhook, posted twice for one CallSid, answered the same call token both times.
    SameCallToken,
    /// The voice webhook answered a new call token to the replayed request (a stateless gate).
    NewCallToken,
}

/// Whether the gate under test keeps per-connection call state (docs/design.md §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GateState {
    /// `STREAM_GATE_CALL_STATE=memory` (the local gateway's default) or `dynamodb` (the SAM
    /// template's).
    #[default]
    Stateful,
    /// `STREAM_GATE_CALL_STATE=off` (set explicitly: the binaries have no default): stateless.
    Stateless,
}

impl GateState {
    /// The state of a gate running `mode`.
    pub fn of(mode: &stream_gate_lambda::config::CallStateMode) -> Self {
        match mode {
            stream_gate_lambda::config::CallStateMode::Off => GateState::Stateless,
            _ => GateState::Stateful,
        }
    }

    /// `on` or `off`.
    pub const fn name(self) -> &'static str {
        match self {
            GateState::Stateful => "on",
            GateState::Stateless => "off",
        }
    }
}

impl FromStr for GateState {
    type Err = String;

    /// `on` (also `memory`, `dynamodb`) or `off`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "on" | "memory" | "dynamodb" => Ok(GateState::Stateful),
            "off" => Ok(GateState::Stateless),
            _ => Err(format!("{s:?} is not on or off")),
        }
    }
}

/// A hostile client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Attack {
    /// Handshake without `X-Twilio-Signature`.
    NoSignature,
    /// Signature under a wrong auth token.
    BadSignature,
    /// Valid signature of account A plus `?token=` of account B.
    ForeignStreamToken,
    /// `start` for another account.
    ForeignStart,
    /// Call token minted for another call.
    OtherCallToken,
    /// Call token expired an hour ago.
    ExpiredToken,
    /// `start` without `customParameters.token`.
    MissingToken,
    /// A frame that is not JSON.
    MalformedJson,
    /// A binary frame.
    BinaryFrame,
    /// A 40 KiB text frame.
    OversizedFrame,
    /// 200 frames of a non-Twilio event.
    EventFlood,
    /// An admitted, signed socket that streams `media` without ever sending `start`.
    MediaBeforeStart,
    /// A second connection presenting the call token a first (still open) connection started with.
    ReuseCallToken,
    /// The voice webhook posted twice for one CallSid (a captured request, replayed).
    ReplayWebhook,
    /// ConversationRelay: the handshake without `X-Twilio-Signature`.
    RelayNoSignature,
    /// ConversationRelay: the handshake signed under a wrong auth token.
    RelayBadSignature,
    /// ConversationRelay: the query's call token minted for another call.
    RelayOtherCallToken,
    /// ConversationRelay: the query's call token expired an hour ago.
    RelayExpiredToken,
    /// ConversationRelay: a `setup` naming another account.
    ForeignSetup,
    /// ConversationRelay: a `setup` naming another call than the handshake's.
    OtherCallSetup,
    /// ConversationRelay: prompts on an admitted session that never sends `setup`.
    SetupMissing,
    /// ConversationRelay: a second `setup` on one session.
    SecondSetup,
    /// ConversationRelay: a second session on the handshake URL (and call token) of a first, open
    /// one.
    RelayReuseCallToken,
    /// ConversationRelay: a Media Streams `media` frame on a session.
    MediaStreamsFrame,
    /// ConversationRelay: a message that is not JSON.
    RelayMalformedJson,
    /// ConversationRelay: a binary frame.
    RelayBinaryFrame,
    /// ConversationRelay: a 40 KiB text frame.
    RelayOversizedFrame,
}

/// Every attack, in demo order.
pub const ATTACKS: &[Attack] = &[
    Attack::NoSignature,
    Attack::BadSignature,
    Attack::ForeignStreamToken,
    Attack::ForeignStart,
    Attack::OtherCallToken,
    Attack::ExpiredToken,
    Attack::MissingToken,
    Attack::MalformedJson,
    Attack::BinaryFrame,
    Attack::OversizedFrame,
    Attack::EventFlood,
    Attack::MediaBeforeStart,
    Attack::ReuseCallToken,
    Attack::ReplayWebhook,
];

/// Every ConversationRelay attack, in demo order.
pub const RELAY_ATTACKS: &[Attack] = &[
    Attack::RelayNoSignature,
    Attack::RelayBadSignature,
    Attack::RelayOtherCallToken,
    Attack::RelayExpiredToken,
    Attack::ForeignSetup,
    Attack::OtherCallSetup,
    Attack::SetupMissing,
    Attack::SecondSetup,
    Attack::RelayReuseCallToken,
    Attack::MediaStreamsFrame,
    Attack::RelayMalformedJson,
    Attack::RelayBinaryFrame,
    Attack::RelayOversizedFrame,
];

/// The attacks of `protocol`, in demo order.
pub const fn attacks_of(protocol: Protocol) -> &'static [Attack] {
    match protocol {
        Protocol::MediaStreams => ATTACKS,
        Protocol::ConversationRelay => RELAY_ATTACKS,
    }
}

/// How long after the first connection of `reuse-call-token` has sent its `start` the second one
/// connects: time for the gate to record the first start (a warm router takes milliseconds; this
/// leaves room for a cold one).
pub const REUSE_AFTER: Duration = Duration::from_secs(1);

/// How long `replay-webhook` waits before the replay: into another second, so that a stateless
/// webhook (whose token is a function of the call and the expiry, `now + ttl`) mints a different
/// one.
pub const REPLAY_AFTER: Duration = Duration::from_millis(1100);

/// How long `media-before-start` streams after the start grace has run out: a gate that closes
/// must have done so well within this.
pub const BEYOND_GRACE: Duration = Duration::from_secs(2);

impl Attack {
    /// The protocol whose socket it attacks.
    pub const fn protocol(self) -> Protocol {
        match self {
            Attack::NoSignature
            | Attack::BadSignature
            | Attack::ForeignStreamToken
            | Attack::ForeignStart
            | Attack::OtherCallToken
            | Attack::ExpiredToken
            | Attack::MissingToken
            | Attack::MalformedJson
            | Attack::BinaryFrame
            | Attack::OversizedFrame
            | Attack::EventFlood
            | Attack::MediaBeforeStart
            | Attack::ReuseCallToken
            | Attack::ReplayWebhook => Protocol::MediaStreams,
            Attack::RelayNoSignature
            | Attack::RelayBadSignature
            | Attack::RelayOtherCallToken
            | Attack::RelayExpiredToken
            | Attack::ForeignSetup
            | Attack::OtherCallSetup
            | Attack::SetupMissing
            | Attack::SecondSetup
            | Attack::RelayReuseCallToken
            | Attack::MediaStreamsFrame
            | Attack::RelayMalformedJson
            | Attack::RelayBinaryFrame
            | Attack::RelayOversizedFrame => Protocol::ConversationRelay,
        }
    }

    /// The attack of `protocol` whose `--attack` name is `name`.
    pub fn parse_for(protocol: Protocol, name: &str) -> Result<Self, UnknownAttack> {
        attacks_of(protocol)
            .iter()
            .copied()
            .find(|a| a.name() == name)
            .ok_or_else(|| UnknownAttack {
                name: name.to_owned(),
                protocol,
            })
    }

    /// The `--attack` name (unique among the attacks of its protocol).
    pub const fn name(self) -> &'static str {
        match self {
            Attack::NoSignature | Attack::RelayNoSignature => "no-signature",
            Attack::BadSignature | Attack::RelayBadSignature => "bad-signature",
            Attack::ForeignStreamToken => "foreign-stream-token",
            Attack::ForeignStart => "foreign-start",
            Attack::OtherCallToken | Attack::RelayOtherCallToken => "other-call-token",
            Attack::ExpiredToken | Attack::RelayExpiredToken => "expired-token",
            Attack::MissingToken => "missing-token",
            Attack::MalformedJson | Attack::RelayMalformedJson => "malformed-json",
            Attack::BinaryFrame | Attack::RelayBinaryFrame => "binary-frame",
            Attack::OversizedFrame | Attack::RelayOversizedFrame => "oversized-frame",
            Attack::EventFlood => "event-flood",
            Attack::MediaBeforeStart => "media-before-start",
            Attack::ReuseCallToken | Attack::RelayReuseCallToken => "reuse-call-token",
            Attack::ReplayWebhook => "replay-webhook",
            Attack::ForeignSetup => "foreign-setup",
            Attack::OtherCallSetup => "other-call-setup",
            Attack::SetupMissing => "setup-missing",
            Attack::SecondSetup => "second-setup",
            Attack::MediaStreamsFrame => "media-streams-frame",
        }
    }

    /// What it does.
    pub const fn description(self) -> &'static str {
        match self {
            Attack::NoSignature => "handshake without X-Twilio-Signature",
            Attack::BadSignature => "signature under a wrong auth token",
            Attack::ForeignStreamToken => "valid signature of account A plus ?token= of account B",
            Attack::ForeignStart => "start for another account",
            Attack::OtherCallToken => "call token minted for another call",
            Attack::ExpiredToken => "call token expired an hour ago",
            Attack::MissingToken => "start without customParameters.token",
            Attack::MalformedJson => "a frame that is not JSON",
            Attack::BinaryFrame => "a binary frame",
            Attack::OversizedFrame => "a 40 KiB text frame",
            Attack::EventFlood => "200 frames of a non-Twilio event",
            Attack::MediaBeforeStart => "media on a signed socket, never a start",
            Attack::ReuseCallToken => {
                "a second connection with the call token of a first, open one"
            }
            Attack::ReplayWebhook => "the voice webhook posted twice for one CallSid",
            Attack::RelayNoSignature => "relay handshake without X-Twilio-Signature",
            Attack::RelayBadSignature => "relay handshake signed under a wrong auth token",
            Attack::RelayOtherCallToken => "call token of another call in the query",
            Attack::RelayExpiredToken => "call token in the query expired an hour ago",
            Attack::ForeignSetup => "setup naming another account",
            Attack::OtherCallSetup => "setup naming another call than the handshake",
            Attack::SetupMissing => "prompts on a signed session, never a setup",
            Attack::SecondSetup => "a second setup on one session",
            Attack::RelayReuseCallToken => {
                "a second session on the handshake URL of a first, open one"
            }
            Attack::MediaStreamsFrame => "a Media Streams media frame on a relay session",
            Attack::RelayMalformedJson => "a message that is not JSON",
            Attack::RelayBinaryFrame => "a binary frame",
            Attack::RelayOversizedFrame => "a 40 KiB text frame",
        }
    }

    /// Whether only a gate with call state stops it (docs/design.md §5).
    pub const fn needs_call_state(self) -> bool {
        matches!(
            self,
            Attack::MediaBeforeStart
                | Attack::ReuseCallToken
                | Attack::ReplayWebhook
                | Attack::SetupMissing
                | Attack::SecondSetup
                | Attack::RelayReuseCallToken
        )
    }

    /// The gate's expected answer under `state`: [`Attack::expected`] with call state; without,
    /// the attacks of [`Attack::needs_call_state`] succeed, and that is what is expected.
    pub const fn expected_under(self, state: GateState) -> Expected {
        match (state, self) {
            (
                GateState::Stateless,
                Attack::MediaBeforeStart
                | Attack::ReuseCallToken
                | Attack::SetupMissing
                | Attack::SecondSetup
                | Attack::RelayReuseCallToken,
            ) => Expected::Admitted,
            (GateState::Stateless, Attack::ReplayWebhook) => Expected::NewCallToken,
            _ => self.expected(),
        }
    }

    /// The gate's expected answer (with call tokens `required`, auth mode `either` and call state
    /// on, as `demo` and `stream-gate local` run by default).
    pub const fn expected(self) -> Expected {
        match self {
            Attack::NoSignature => Expected::Refused(DenyReason::SignatureMissing),
            Attack::BadSignature => Expected::Refused(DenyReason::SignatureMismatch),
            Attack::ForeignStreamToken => Expected::Refused(DenyReason::AccountMismatch),
            Attack::ForeignStart => {
                Expected::Closed(CLOSE_POLICY, CloseReason::StartAccountMismatch)
            }
            Attack::OtherCallToken => Expected::Closed(CLOSE_POLICY, CloseReason::CallTokenInvalid),
            Attack::ExpiredToken => Expected::Closed(CLOSE_POLICY, CloseReason::CallTokenExpired),
            Attack::MissingToken => Expected::Closed(CLOSE_POLICY, CloseReason::CallTokenMissing),
            Attack::MalformedJson => Expected::Closed(CLOSE_POLICY, CloseReason::FrameNotJson),
            Attack::BinaryFrame => Expected::Closed(CLOSE_UNSUPPORTED, CloseReason::FrameNotText),
            Attack::OversizedFrame => Expected::Closed(CLOSE_TOO_BIG, CloseReason::FrameTooLarge),
            Attack::EventFlood => Expected::Ignored,
            Attack::MediaBeforeStart => {
                Expected::Closed(CLOSE_POLICY, CloseReason::MediaBeforeStart)
            }
            Attack::ReuseCallToken | Attack::RelayReuseCallToken => {
                Expected::Closed(CLOSE_POLICY, CloseReason::CallTokenReused)
            }
            Attack::ReplayWebhook => Expected::SameCallToken,
            Attack::RelayNoSignature => Expected::Refused(DenyReason::SignatureMissing),
            Attack::RelayBadSignature => Expected::Refused(DenyReason::SignatureMismatch),
            // The call token is checked at the door: the query keeps it (docs/conversation-relay.md).
            Attack::RelayOtherCallToken => Expected::Refused(DenyReason::CallTokenInvalid),
            Attack::RelayExpiredToken => Expected::Refused(DenyReason::CallTokenExpired),
            Attack::ForeignSetup => {
                Expected::Closed(CLOSE_POLICY, CloseReason::SetupAccountMismatch)
            }
            Attack::OtherCallSetup => {
                Expected::Closed(CLOSE_POLICY, CloseReason::SetupCallSidMismatch)
            }
            Attack::SetupMissing => Expected::Closed(CLOSE_POLICY, CloseReason::SetupMissing),
            Attack::SecondSetup => Expected::Closed(CLOSE_POLICY, CloseReason::SetupRepeated),
            Attack::MediaStreamsFrame => {
                Expected::Closed(CLOSE_POLICY, CloseReason::ProtocolMismatch)
            }
            Attack::RelayMalformedJson => Expected::Closed(CLOSE_POLICY, CloseReason::FrameNotJson),
            Attack::RelayBinaryFrame => {
                Expected::Closed(CLOSE_UNSUPPORTED, CloseReason::FrameNotText)
            }
            Attack::RelayOversizedFrame => {
                Expected::Closed(CLOSE_TOO_BIG, CloseReason::FrameTooLarge)
            }
        }
    }
}

impl fmt::Display for Attack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An `--attack` name that names no attack of the protocol.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {protocol} attack {name:?}; known: {known}", known = known_names(*protocol))]
pub struct UnknownAttack {
    /// The name given.
    pub name: String,
    /// The protocol it was looked up in.
    pub protocol: Protocol,
}

fn known_names(protocol: Protocol) -> String {
    attacks_of(protocol)
        .iter()
        .map(|a| a.name())
        .collect::<Vec<_>>()
        .join(", ")
}

impl FromStr for Attack {
    type Err = UnknownAttack;

    /// A Media Streams attack by name ([`Attack::parse_for`] for either protocol).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse_for(Protocol::MediaStreams, s)
    }
}

/// A scenario of `demo`, `sim` and `verify`: the legitimate call or one attack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scenario {
    /// One Media Streams call exactly as Twilio places it.
    Legit,
    /// One ConversationRelay session exactly as Twilio opens it: `setup`, prompts, a digit, an
    /// interrupt.
    RelayLegit,
    /// A hostile client.
    Attack(Attack),
}

impl Scenario {
    /// The Media Streams call first, then every Media Streams attack in demo order.
    pub fn all() -> impl Iterator<Item = Scenario> {
        Self::of(Protocol::MediaStreams)
    }

    /// The legitimate call of `protocol` first, then every attack of it in demo order.
    pub fn of(protocol: Protocol) -> impl Iterator<Item = Scenario> {
        let legit = match protocol {
            Protocol::MediaStreams => Scenario::Legit,
            Protocol::ConversationRelay => Scenario::RelayLegit,
        };
        std::iter::once(legit).chain(attacks_of(protocol).iter().copied().map(Scenario::Attack))
    }

    /// The protocol it speaks.
    pub const fn protocol(self) -> Protocol {
        match self {
            Scenario::Legit => Protocol::MediaStreams,
            Scenario::RelayLegit => Protocol::ConversationRelay,
            Scenario::Attack(a) => a.protocol(),
        }
    }

    /// Whether it is the legitimate call (of either protocol).
    pub const fn is_legit(self) -> bool {
        matches!(self, Scenario::Legit | Scenario::RelayLegit)
    }

    /// `legit-call` or the attack's name (unique within its protocol).
    pub const fn name(self) -> &'static str {
        match self {
            Scenario::Legit | Scenario::RelayLegit => "legit-call",
            Scenario::Attack(a) => a.name(),
        }
    }

    /// What the gate should do (with call state).
    pub const fn expected(self) -> Expected {
        match self {
            Scenario::Legit | Scenario::RelayLegit => Expected::Admitted,
            Scenario::Attack(a) => a.expected(),
        }
    }

    /// What a gate with or without call state should do.
    pub const fn expected_under(self, state: GateState) -> Expected {
        match self {
            Scenario::Legit | Scenario::RelayLegit => Expected::Admitted,
            Scenario::Attack(a) => a.expected_under(state),
        }
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Everything a scenario needs.
pub struct CallSetup<'a> {
    /// URL to connect to.
    pub url: &'a str,
    /// URL to sign (the one in the TwiML).
    pub signed_url: &'a str,
    /// The calling account.
    pub me: &'a Identity,
    /// Another configured account (for the cross-account attacks).
    pub other: Option<&'a Identity>,
    /// mu-law frames for `media`.
    pub audio: &'a [[u8; FRAME_BYTES]],
    /// Pause between media frames.
    pub pacing: Duration,
    /// How long to wait for a server close after the script.
    pub linger: Duration,
    /// The gate's start grace (`STREAM_GATE_START_GRACE_MS`): how long `media-before-start` must
    /// stream before a gate with call state closes it.
    pub start_grace: Duration,
    /// The voice webhook, for `replay-webhook`.
    pub webhook: Option<WebhookTarget<'a>>,
}

/// Where the voice webhook is.
#[derive(Debug, Clone, Copy)]
pub struct WebhookTarget<'a> {
    /// The URL to POST to.
    pub url: &'a str,
    /// The URL to sign (the one Twilio posts to: differs from `url` behind a tunnel).
    pub signed_url: &'a str,
}

/// Why a scenario cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScenarioError {
    /// The credentials document lacks what the attack needs.
    #[error("attack {0} needs {1}")]
    Needs(Attack, &'static str),
    /// The attack talks to the voice webhook, and none was given.
    #[error("attack {0} needs the voice webhook's URL (--webhook-url)")]
    NoWebhook(Attack),
    /// A ConversationRelay handshake carries a call token, and the document has no key to mint one.
    #[error("a ConversationRelay session needs a call-token key in the credentials document")]
    NoCallTokenKey,
    /// The attack is another protocol's (a builder was handed the wrong one: a bug).
    #[error("attack {0} is not built by this protocol's plans")]
    OtherProtocol(Attack),
}

/// What running a scenario takes.
pub enum Plan<'a> {
    /// One socket: a handshake and a script.
    Socket(Handshake, Script<'a>),
    /// Two sockets presenting one call token (`reuse-call-token`).
    TokenReuse(TokenReuse<'a>),
    /// The voice webhook posted twice for one call (`replay-webhook`).
    WebhookReplay(WebhookReplay),
}

/// `reuse-call-token`: `first` connects, starts with the token and streams, then waits; `reached`
/// fires when it waits. [`REUSE_AFTER`] later `second` connects and starts with the same token;
/// when it is done, `release` lets `first` stream on and stop. `first` is the legitimate holder
/// of the token and must not be touched.
pub struct TokenReuse<'a> {
    /// The first connection (the token's rightful user).
    pub first: (Handshake, Script<'a>),
    /// The second connection (the reuse).
    pub second: (Handshake, Script<'a>),
    /// Fires when `first` has sent its `start` and first frames.
    pub reached: oneshot::Receiver<()>,
    /// Lets `first` continue.
    pub release: oneshot::Sender<()>,
    /// How long after `reached` the second connects.
    pub after: Duration,
}

/// `replay-webhook`: one signed webhook request for `call`, sent twice, `after` apart.
pub struct WebhookReplay {
    /// The URL to POST to.
    pub url: String,
    /// The URL signed.
    pub signed_url: String,
    /// The call.
    pub call: CallSid,
    /// The pause between the request and its replay.
    pub after: Duration,
}

mod frames;
mod plans;
mod relay_plans;

pub use frames::{legit, legit_with, signed_handshake, CallFrames};
pub use plans::attack;
pub use relay_plans::{relay_handshake, relay_legit, relay_legit_with, RELAY_TURNS};

#[cfg(test)]
mod tests;
