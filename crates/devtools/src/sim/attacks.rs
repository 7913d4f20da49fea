//! The legitimate call and the hostile clients, as (handshake, script) pairs.
//!
//! Every hostile client is a variant of [`Attack`]: its `--attack` name, description and expected
//! outcome are `match`es on the variant, and so is the script [`attack`] builds, so the compiler
//! checks that each one has all four. [`ATTACKS`] lists them in demo order.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use super::audio::FRAME_BYTES;
use super::client::{Handshake, Outgoing, Script};
use super::identity::{fresh_call_sid, fresh_stream_sid, Identity};
use crate::domain::{
    compute_signature, messages, AccountSid, CallSid, CloseReason, DenyReason, Secret, StreamSid,
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
];

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
        }
    }

    /// The gate's expected answer (with call tokens `required` and auth mode `either`, as `demo`
    /// and `stream-gate local` run by default).
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

    /// What the gate should do.
    pub const fn expected(self) -> Expected {
        match self {
            Scenario::Legit => Expected::Admitted,
            Scenario::Attack(a) => a.expected(),
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
}

/// Why a scenario cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScenarioError {
    /// The credentials document lacks what the attack needs.
    #[error("attack {0} needs {1}")]
    Needs(Attack, &'static str),
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
            Outgoing::Text(messages::connected()),
            Outgoing::Text(messages::start(
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
            return Some(Outgoing::Media(messages::media(
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
        Some(Outgoing::Text(messages::stop(
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
pub fn attack<'a>(
    which: Attack,
    setup: &CallSetup<'a>,
) -> Result<(Handshake, Script<'a>), ScenarioError> {
    let call = fresh_call_sid();
    let now = unix_now();
    let good_token = setup.me.call_token(&call, now, 300);
    let me = setup.me.account;
    let normal = |extra: Vec<Outgoing>| {
        CallFrames::with_extra(me, call, good_token.as_ref(), setup.audio, extra)
    };
    let hs = signed(setup, None);
    Ok(match which {
        Attack::NoSignature => {
            let mut h = hs;
            h.signature = None;
            (h, script(normal(vec![]), setup))
        }
        Attack::BadSignature => {
            let mut h = hs;
            let wrong =
                compute_signature("0123456789abcdef0123456789abcdef", setup.signed_url, &[]);
            h.signature = Some(Secret::new(wrong));
            (h, script(normal(vec![]), setup))
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
            (signed(setup, Some(other)), script(normal(vec![]), setup))
        }
        Attack::ForeignStart => {
            let other = setup.other.ok_or(ScenarioError::Needs(
                which,
                "a second account in the credentials document",
            ))?;
            let token = other.call_token(&call, now, 300);
            let frames = CallFrames::new(other.account, call, token.as_ref(), setup.audio);
            (hs, script(frames, setup))
        }
        Attack::OtherCallToken => {
            let token = setup.me.call_token(&fresh_call_sid(), now, 300);
            let frames = CallFrames::new(me, call, token.as_ref(), setup.audio);
            (hs, script(frames, setup))
        }
        Attack::ExpiredToken => {
            let token = setup.me.call_token(&call, now.saturating_sub(3600), 300);
            let frames = CallFrames::new(me, call, token.as_ref(), setup.audio);
            (hs, script(frames, setup))
        }
        Attack::MissingToken => {
            let frames = CallFrames::new(me, call, None, setup.audio);
            (hs, script(frames, setup))
        }
        Attack::MalformedJson => (
            hs,
            script(
                normal(vec![Outgoing::Text("{\"event\":\"media\",".into())]),
                setup,
            ),
        ),
        Attack::BinaryFrame => (
            hs,
            script(
                normal(vec![Outgoing::Binary(vec![0xFF; FRAME_BYTES])]),
                setup,
            ),
        ),
        Attack::OversizedFrame => {
            let big = format!(
                "{{\"event\":\"media\",\"pad\":\"{}\"}}",
                "x".repeat(40 * 1024)
            );
            (hs, script(normal(vec![Outgoing::Text(big)]), setup))
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
            (hs, script(normal(flood), setup))
        }
    })
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
                | Attack::EventFlood => {}
            }
        }
        assert_eq!(ATTACKS.len(), 11);
        let err = "legit-call".parse::<Attack>().err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("unknown attack \"legit-call\"; known: no-signature, bad-signature, foreign-stream-token, foreign-start, other-call-token, expired-token, missing-token, malformed-json, binary-frame, oversized-frame, event-flood")
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
                Outgoing::Binary(_) => String::new(),
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
