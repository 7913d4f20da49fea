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
use super::client::{Handshake, Outgoing, Script};
use super::identity::{fresh_call_sid, fresh_stream_sid, Identity};
use crate::domain::{
    compute_signature, fixtures, AccountSid, CallSid, CloseReason, DenyReason, Secret, StreamSid,
};
use crate::local::connection::{CLOSE_POLICY, CLOSE_TOO_BIG, CLOSE_UNSUPPORTED};
use stream_gate_lambda::clock::unix_now;

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

/// The handshake Twilio makes: `X-Twilio-Signature` over `signed_url` under `me`'s primary auth
/// token, Twilio's User-Agent, connecting to `url` (plus `?token=` when `query` is given).
pub fn signed_handshake(
    me: &Identity,
    url: &str,
    signed_url: &str,
    query: Option<&Secret>,
) -> Handshake {
    let sig = compute_signature(me.auth_token.expose(), signed_url, &[]);
    let url = match query {
        Some(t) => format!(
            "{url}?token={}",
            url::form_urlencoded::byte_serialize(t.expose().as_bytes()).collect::<String>()
        ),
        None => url.to_owned(),
    };
    Handshake {
        url,
        signature: Some(Secret::new(sig)),
        user_agent: TWILIO_USER_AGENT.into(),
    }
}

fn signed(setup: &CallSetup<'_>, query: Option<&Secret>) -> Handshake {
    signed_handshake(setup.me, setup.url, setup.signed_url, query)
}

/// One call's frames as Twilio sends them — `connected`, `start`, then (for an attack) the extra
/// frames, one `media` per audio frame (sequence numbers from 2, chunks from 1), `stop` — built as
/// they are sent, so a long call is never held in memory.
pub struct CallFrames<'a> {
    head: std::vec::IntoIter<Outgoing>,
    account: AccountSid,
    call: CallSid,
    stream: StreamSid,
    audio: &'a [[u8; FRAME_BYTES]],
    next: usize,
    stopped: bool,
}

impl<'a> CallFrames<'a> {
    /// The call `call` of `account` on a fresh stream, with `token` in `customParameters`.
    pub fn new(
        account: AccountSid,
        call: CallSid,
        token: Option<&Secret>,
        audio: &'a [[u8; FRAME_BYTES]],
    ) -> Self {
        Self::with_extra(account, call, token, audio, Vec::new())
    }

    /// As [`CallFrames::new`], with `extra` frames between `start` and the first `media`.
    pub fn with_extra(
        account: AccountSid,
        call: CallSid,
        token: Option<&Secret>,
        audio: &'a [[u8; FRAME_BYTES]],
        extra: Vec<Outgoing>,
    ) -> Self {
        let stream = fresh_stream_sid();
        let mut head = vec![
            Outgoing::Text(fixtures::connected()),
            Outgoing::Text(fixtures::start(
                &account,
                &call,
                &stream,
                token.map(Secret::expose),
            )),
        ];
        head.extend(extra);
        Self {
            head: head.into_iter(),
            account,
            call,
            stream,
            audio,
            next: 0,
            stopped: false,
        }
    }
}

impl Iterator for CallFrames<'_> {
    type Item = Outgoing;

    fn next(&mut self) -> Option<Outgoing> {
        if let Some(f) = self.head.next() {
            return Some(f);
        }
        let seq = self.next as u64 + 2;
        if let Some(audio) = self.audio.get(self.next) {
            self.next += 1;
            return Some(Outgoing::Media(fixtures::media(
                &self.stream,
                seq,
                self.next as u64,
                audio,
            )));
        }
        if self.stopped {
            return None;
        }
        self.stopped = true;
        Some(Outgoing::Text(fixtures::stop(
            &self.account,
            &self.call,
            &self.stream,
            seq,
        )))
    }
}

fn script<'a>(
    frames: impl Iterator<Item = Outgoing> + Send + 'a,
    setup: &CallSetup<'_>,
) -> Script<'a> {
    Script {
        frames: Box::new(frames),
        pacing: setup.pacing,
        linger: setup.linger,
        echo: None,
    }
}

/// The legitimate call: signed handshake, `start` with a call token minted for this call.
pub fn legit<'a>(setup: &CallSetup<'a>) -> (Handshake, Script<'a>) {
    let call = fresh_call_sid();
    let token = setup.me.call_token(&call, unix_now(), 300);
    legit_with(setup, call, token.as_ref())
}

/// The legitimate call `call` with the call token `token` (e.g. the one a voice webhook answered).
pub fn legit_with<'a>(
    setup: &CallSetup<'a>,
    call: CallSid,
    token: Option<&Secret>,
) -> (Handshake, Script<'a>) {
    let frames = CallFrames::new(setup.me.account, call, token, setup.audio);
    (signed(setup, None), script(frames, setup))
}

/// The hostile client `which`.
pub fn attack<'a>(which: Attack, setup: &CallSetup<'a>) -> Result<Plan<'a>, ScenarioError> {
    let call = fresh_call_sid();
    let now = unix_now();
    let good_token = setup.me.call_token(&call, now, 300);
    let me = setup.me.account;
    let normal = |extra: Vec<Outgoing>| {
        CallFrames::with_extra(me, call, good_token.as_ref(), setup.audio, extra)
    };
    let hs = signed(setup, None);
    let socket = |h: Handshake, frames: Box<dyn Iterator<Item = Outgoing> + Send + 'a>| {
        Plan::Socket(
            h,
            Script {
                frames,
                pacing: setup.pacing,
                linger: setup.linger,
                echo: None,
            },
        )
    };
    Ok(match which {
        Attack::NoSignature => {
            let mut h = hs;
            h.signature = None;
            socket(h, Box::new(normal(vec![])))
        }
        Attack::BadSignature => {
            let mut h = hs;
            let wrong =
                compute_signature("0123456789abcdef0123456789abcdef", setup.signed_url, &[]);
            h.signature = Some(Secret::new(wrong));
            socket(h, Box::new(normal(vec![])))
        }
        Attack::ForeignStreamToken => {
            let other =
                setup
                    .other
                    .and_then(|o| o.stream_token.as_ref())
                    .ok_or(ScenarioError::Needs(
                        which,
                        "a second account with a stream token",
                    ))?;
            socket(signed(setup, Some(other)), Box::new(normal(vec![])))
        }
        Attack::ForeignStart => {
            let other = setup.other.ok_or(ScenarioError::Needs(
                which,
                "a second account in the credentials document",
            ))?;
            let token = other.call_token(&call, now, 300);
            let frames = CallFrames::new(other.account, call, token.as_ref(), setup.audio);
            socket(hs, Box::new(frames))
        }
        Attack::OtherCallToken => {
            let token = setup.me.call_token(&fresh_call_sid(), now, 300);
            let frames = CallFrames::new(me, call, token.as_ref(), setup.audio);
            socket(hs, Box::new(frames))
        }
        Attack::ExpiredToken => {
            let token = setup.me.call_token(&call, now.saturating_sub(3600), 300);
            let frames = CallFrames::new(me, call, token.as_ref(), setup.audio);
            socket(hs, Box::new(frames))
        }
        Attack::MissingToken => {
            let frames = CallFrames::new(me, call, None, setup.audio);
            socket(hs, Box::new(frames))
        }
        Attack::MalformedJson => socket(
            hs,
            Box::new(normal(vec![Outgoing::Text("{\"event\":\"media\",".into())])),
        ),
        Attack::BinaryFrame => socket(
            hs,
            Box::new(normal(vec![Outgoing::Binary(vec![0xFF; FRAME_BYTES])])),
        ),
        Attack::OversizedFrame => {
            let big = format!(
                "{{\"event\":\"media\",\"pad\":\"{}\"}}",
                "x".repeat(40 * 1024)
            );
            socket(hs, Box::new(normal(vec![Outgoing::Text(big)])))
        }
        Attack::EventFlood => {
            let stream = fresh_stream_sid();
            let flood = (0..200)
                .map(|i| {
                    Outgoing::Text(
                        serde_json::json!({"event": "surprise", "sequenceNumber": (i + 2).to_string(),
                            "streamSid": stream.as_str(), "surprise": {"n": i}})
                        .to_string(),
                    )
                })
                .collect();
            socket(hs, Box::new(normal(flood)))
        }
        Attack::MediaBeforeStart => socket(hs, Box::new(media_without_start(setup))),
        Attack::ReuseCallToken => {
            let (reached_tx, reached) = oneshot::channel::<()>();
            let (release, release_rx) = oneshot::channel::<()>();
            let (head, tail) = setup.audio.split_at(setup.audio.len().min(3));
            // The first connection: the token's rightful user. connected, start, a few media,
            // then it waits for the second connection's turn, then the rest of the call.
            let wait = Outgoing::Wait(Box::pin(async move {
                let _ = reached_tx.send(());
                let _ = release_rx.await;
            }));
            let stream = fresh_stream_sid();
            let token = good_token.clone();
            let mut first: Vec<Outgoing> = vec![
                Outgoing::Text(fixtures::connected()),
                Outgoing::Text(fixtures::start(
                    &me,
                    &call,
                    &stream,
                    token.as_ref().map(Secret::expose),
                )),
            ];
            let media = |i: usize, audio: &[u8; FRAME_BYTES]| {
                Outgoing::Media(fixtures::media(&stream, i as u64 + 2, i as u64 + 1, audio))
            };
            first.extend(head.iter().enumerate().map(|(i, a)| media(i, a)));
            first.push(wait);
            first.extend(
                tail.iter()
                    .enumerate()
                    .map(|(i, a)| media(i + head.len(), a)),
            );
            first.push(Outgoing::Text(fixtures::stop(
                &me,
                &call,
                &stream,
                setup.audio.len() as u64 + 2,
            )));
            // The second connection: the same call, the same token, its own stream.
            let second = CallFrames::new(me, call, good_token.as_ref(), setup.audio);
            Plan::TokenReuse(TokenReuse {
                first: (
                    signed(setup, None),
                    Script {
                        frames: Box::new(first.into_iter()),
                        pacing: setup.pacing,
                        linger: setup.linger,
                        echo: None,
                    },
                ),
                second: (
                    hs,
                    Script {
                        frames: Box::new(second),
                        pacing: setup.pacing,
                        linger: setup.linger,
                        echo: None,
                    },
                ),
                reached,
                release,
                after: REUSE_AFTER,
            })
        }
        Attack::ReplayWebhook => {
            let hook = setup.webhook.ok_or(ScenarioError::NoWebhook(which))?;
            Plan::WebhookReplay(WebhookReplay {
                url: hook.url.to_owned(),
                signed_url: hook.signed_url.to_owned(),
                call,
                after: REPLAY_AFTER,
            })
        }
    })
}

/// `media-before-start`: `connected`, then a `media` frame every 20 ms — never a `start` — for the
/// start grace plus [`BEYOND_GRACE`] (the client stops early when the server closes).
fn media_without_start<'a>(setup: &CallSetup<'a>) -> impl Iterator<Item = Outgoing> + Send + 'a {
    const SILENCE: [u8; FRAME_BYTES] = [0xFF; FRAME_BYTES];
    const EVERY: Duration = Duration::from_millis(20);
    let stream = fresh_stream_sid();
    let count = (setup.start_grace + BEYOND_GRACE).as_millis() / EVERY.as_millis();
    let audio = setup.audio;
    std::iter::once(Outgoing::Text(fixtures::connected())).chain(
        (0..u64::try_from(count).unwrap_or(u64::MAX)).flat_map(move |i| {
            let frame = usize::try_from(i)
                .ok()
                .and_then(|i| audio.get(i % audio.len().max(1)))
                .unwrap_or(&SILENCE);
            [
                Outgoing::Pause(EVERY),
                Outgoing::Text(fixtures::media(&stream, i + 2, i + 1, frame)),
            ]
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_attack_is_listed_once_and_its_name_parses_back() {
        let mut seen = std::collections::HashSet::new();
        for a in ATTACKS {
            assert!(seen.insert(*a), "{a} listed twice");
            assert_eq!(a.name().parse::<Attack>(), Ok(*a));
            assert!(!a.description().is_empty());
            // A new variant must be added to this match, and so to the list above it.
            match a {
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
                | Attack::ReplayWebhook => {}
            }
        }
        assert_eq!(ATTACKS.len(), 14);
        let err = "legit-call".parse::<Attack>().err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("unknown attack \"legit-call\"; known: no-signature, bad-signature, foreign-stream-token, foreign-start, other-call-token, expired-token, missing-token, malformed-json, binary-frame, oversized-frame, event-flood, media-before-start, reuse-call-token, replay-webhook")
        );
    }

    #[test]
    fn without_call_state_only_the_call_state_attacks_expect_otherwise() {
        for a in ATTACKS {
            let (on, off) = (
                a.expected_under(GateState::Stateful),
                a.expected_under(GateState::Stateless),
            );
            assert_eq!(on, a.expected());
            assert_eq!(on != off, a.needs_call_state(), "{a}");
        }
        assert_eq!(
            Attack::MediaBeforeStart.expected(),
            Expected::Closed(1008, CloseReason::MediaBeforeStart)
        );
        assert_eq!(
            Attack::ReuseCallToken.expected(),
            Expected::Closed(1008, CloseReason::CallTokenReused)
        );
        assert_eq!(Attack::ReplayWebhook.expected(), Expected::SameCallToken);
        assert_eq!(
            Attack::ReplayWebhook.expected_under(GateState::Stateless),
            Expected::NewCallToken
        );
        assert_eq!("off".parse(), Ok(GateState::Stateless));
        assert_eq!("dynamodb".parse(), Ok(GateState::Stateful));
        assert!("maybe".parse::<GateState>().is_err());
    }

    fn setup_with<'a>(
        me: &'a Identity,
        audio: &'a [[u8; FRAME_BYTES]],
        webhook: Option<WebhookTarget<'a>>,
    ) -> CallSetup<'a> {
        CallSetup {
            url: "ws://127.0.0.1:9/dev",
            signed_url: "ws://127.0.0.1:9/dev",
            me,
            other: None,
            audio,
            pacing: Duration::ZERO,
            linger: Duration::ZERO,
            start_grace: Duration::from_millis(100),
            webhook,
        }
    }

    fn texts(frames: impl Iterator<Item = Outgoing>) -> Vec<serde_json::Value> {
        frames
            .filter_map(|f| match f {
                Outgoing::Text(t) | Outgoing::Media(t) => serde_json::from_str(&t).ok(),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn the_call_state_attacks_are_built_as_described() {
        let doc = crate::local::devcreds::generate();
        let me = Identity::from_document(doc.expose(), 0).expect("identity");
        let audio = [[0xFFu8; FRAME_BYTES]; 5];

        // media-before-start: connected, then media for the grace + 2 s at 20 ms, never a start.
        let Ok(Plan::Socket(h, script)) =
            attack(Attack::MediaBeforeStart, &setup_with(&me, &audio, None))
        else {
            panic!("one socket");
        };
        assert!(h.signature.is_some(), "a signed, admissible handshake");
        let steps: Vec<Outgoing> = script.frames.collect();
        let pauses = steps
            .iter()
            .filter(|s| matches!(s, Outgoing::Pause(d) if *d == Duration::from_millis(20)))
            .count();
        assert_eq!(pauses, 105, "(100 ms + 2 s) / 20 ms");
        let frames = texts(steps.into_iter());
        assert_eq!(frames.len(), 106);
        assert_eq!(frames[0]["event"], "connected");
        assert!(frames[1..].iter().all(|f| f["event"] == "media"));

        // reuse-call-token: two sockets, one start token.
        let Ok(Plan::TokenReuse(plan)) =
            attack(Attack::ReuseCallToken, &setup_with(&me, &audio, None))
        else {
            panic!("two sockets");
        };
        let token_of = |frames: &[serde_json::Value]| {
            frames
                .iter()
                .find(|f| f["event"] == "start")
                .map(|f| f["start"]["customParameters"]["token"].clone())
        };
        let steps: Vec<Outgoing> = plan.first.1.frames.collect();
        let at = steps
            .iter()
            .position(|s| matches!(s, Outgoing::Wait(_)))
            .expect("the first waits");
        assert_eq!(at, 5, "connected, start, 3 media, then the wait");
        let first = texts(steps.into_iter());
        let second = texts(plan.second.1.frames);
        assert_eq!(first.len(), 8, "connected, start, 5 media, stop");
        assert_eq!(second.len(), 8);
        assert!(token_of(&first).is_some_and(|t| t.is_string()));
        assert_eq!(token_of(&first), token_of(&second));
        assert_ne!(first[1]["streamSid"], second[1]["streamSid"]);
        assert_eq!(plan.after, REUSE_AFTER);

        // replay-webhook: needs the webhook.
        assert!(matches!(
            attack(Attack::ReplayWebhook, &setup_with(&me, &audio, None)),
            Err(ScenarioError::NoWebhook(Attack::ReplayWebhook))
        ));
        let hook = WebhookTarget {
            url: "http://127.0.0.1:9/voice",
            signed_url: "https://tunnel.example/voice",
        };
        let Ok(Plan::WebhookReplay(r)) =
            attack(Attack::ReplayWebhook, &setup_with(&me, &audio, Some(hook)))
        else {
            panic!("webhook");
        };
        assert_eq!(
            (r.url.as_str(), r.signed_url.as_str(), r.after),
            (
                "http://127.0.0.1:9/voice",
                "https://tunnel.example/voice",
                REPLAY_AFTER
            )
        );
    }

    #[test]
    fn scenarios_start_with_the_legitimate_call() {
        let names: Vec<&str> = Scenario::all().map(Scenario::name).collect();
        assert_eq!(names.first(), Some(&"legit-call"));
        assert_eq!(names.len(), 1 + ATTACKS.len());
        assert_eq!(Scenario::Legit.expected(), Expected::Admitted);
    }

    #[test]
    fn call_frames_are_numbered_as_twilio_numbers_them() {
        let audio = [[0xFFu8; FRAME_BYTES]; 3];
        let account = AccountSid::parse("AC0123456789abcdef0123456789abcdef").expect("sid");
        let frames: Vec<String> = CallFrames::new(account, fresh_call_sid(), None, &audio)
            .map(|f| match f {
                Outgoing::Text(t) | Outgoing::Media(t) => t,
                _ => String::new(),
            })
            .collect();
        assert_eq!(frames.len(), 6);
        let v: Vec<serde_json::Value> = frames
            .iter()
            .map(|f| serde_json::from_str(f).expect("json"))
            .collect();
        assert_eq!(v[0]["event"], "connected");
        assert_eq!(
            (v[1]["event"].as_str(), v[1]["sequenceNumber"].as_str()),
            (Some("start"), Some("1"))
        );
        assert_eq!(
            (
                v[2]["sequenceNumber"].as_str(),
                v[2]["media"]["chunk"].as_str()
            ),
            (Some("2"), Some("1"))
        );
        assert_eq!(
            (
                v[4]["sequenceNumber"].as_str(),
                v[4]["media"]["chunk"].as_str()
            ),
            (Some("4"), Some("3"))
        );
        assert_eq!(
            (v[5]["event"].as_str(), v[5]["sequenceNumber"].as_str()),
            (Some("stop"), Some("5"))
        );
    }
}
