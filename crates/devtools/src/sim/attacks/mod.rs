//! The legitimate call and the hostile clients, as (handshake, script) pairs.
//!
//! Every hostile client is a variant of [`Attack`]: its `--attack` name, description and expected
//! outcome are `match`es on the variant, and so is the [`Plan`] [`attack`] builds, so the compiler
//! checks that each one has all four. [`ATTACKS`] lists them in demo order.
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
use crate::domain::{CallSid, CloseReason, DenyReason};
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
    /// The `--attack` name.
    pub const fn name(self) -> &'static str {
        match self {
            Attack::NoSignature => "no-signature",
            Attack::BadSignature => "bad-signature",
            Attack::ForeignStreamToken => "foreign-stream-token",
            Attack::ForeignStart => "foreign-start",
            Attack::OtherCallToken => "other-call-token",
            Attack::ExpiredToken => "expired-token",
            Attack::MissingToken => "missing-token",
            Attack::MalformedJson => "malformed-json",
            Attack::BinaryFrame => "binary-frame",
            Attack::OversizedFrame => "oversized-frame",
            Attack::EventFlood => "event-flood",
            Attack::MediaBeforeStart => "media-before-start",
            Attack::ReuseCallToken => "reuse-call-token",
            Attack::ReplayWebhook => "replay-webhook",
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
        }
    }

    /// Whether only a gate with call state stops it (docs/design.md §5).
    pub const fn needs_call_state(self) -> bool {
        matches!(
            self,
            Attack::MediaBeforeStart | Attack::ReuseCallToken | Attack::ReplayWebhook
        )
    }

    /// The gate's expected answer under `state`: [`Attack::expected`] with call state; without,
    /// the attacks of [`Attack::needs_call_state`] succeed, and that is what is expected.
    pub const fn expected_under(self, state: GateState) -> Expected {
        match (state, self) {
            (GateState::Stateless, Attack::MediaBeforeStart | Attack::ReuseCallToken) => {
                Expected::Admitted
            }
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
            Attack::ReuseCallToken => Expected::Closed(CLOSE_POLICY, CloseReason::CallTokenReused),
            Attack::ReplayWebhook => Expected::SameCallToken,
        }
    }
}

impl fmt::Display for Attack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An `--attack` name that names no attack.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown attack {0:?}; known: {known}", known = known_names())]
pub struct UnknownAttack(pub String);

fn known_names() -> String {
    ATTACKS
        .iter()
        .map(|a| a.name())
        .collect::<Vec<_>>()
        .join(", ")
}

impl FromStr for Attack {
    type Err = UnknownAttack;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ATTACKS
            .iter()
            .copied()
            .find(|a| a.name() == s)
            .ok_or_else(|| UnknownAttack(s.to_owned()))
    }
}

/// A scenario of `demo`, `sim` and `verify`: the legitimate call or one attack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scenario {
    /// One call exactly as Twilio places it.
    Legit,
    /// A hostile client.
    Attack(Attack),
}

impl Scenario {
    /// The legitimate call first, then every attack in demo order.
    pub fn all() -> impl Iterator<Item = Scenario> {
        std::iter::once(Scenario::Legit).chain(ATTACKS.iter().copied().map(Scenario::Attack))
    }

    /// `legit-call` or the attack's name.
    pub const fn name(self) -> &'static str {
        match self {
            Scenario::Legit => "legit-call",
            Scenario::Attack(a) => a.name(),
        }
    }

    /// What the gate should do (with call state).
    pub const fn expected(self) -> Expected {
        match self {
            Scenario::Legit => Expected::Admitted,
            Scenario::Attack(a) => a.expected(),
        }
    }

    /// What a gate with or without call state should do.
    pub const fn expected_under(self, state: GateState) -> Expected {
        match self {
            Scenario::Legit => Expected::Admitted,
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

pub use frames::{legit, legit_with, signed_handshake, CallFrames};
pub use plans::attack;

#[cfg(test)]
mod tests;
