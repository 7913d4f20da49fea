//! Per-connection call state (docs/design.md §5), the pure part: what a recorded start is, and the
//! verdict on a frame given what the store knows. The store itself (DynamoDB, memory) is an adapter.
//!
//! With call state on, a connection's `media`, `mark`, `dtmf` and `stop` are accepted only after a
//! verified `start` was recorded for it, and only for that start's stream (a `stop` also for its
//! account and call). Frames of one connection run as concurrent Lambda invocations, so the first
//! media frame may be judged before the start's write has landed: within a grace after
//! `connectedAt` such a frame is dropped (not accepted, not closed); after it, the connection is
//! closed. Past the grace, *every* frame of a connection without a recorded start closes it,
//! `connected` and unknown events included: a socket that never verifies must not hold a
//! connection (and an invocation per frame) for API Gateway's two hours.

use crate::frame::Frame;
use crate::reason::CloseReason;
use crate::relay_frame::RelayMessage;
use crate::sid::{AccountSid, CallSid, SessionSid, StreamSid};

/// How long a recorded start outlives its connection's hard limit (API Gateway closes every
/// connection after 2 h): the record's expiry is `start + 2 h + this`.
pub const RECORD_MARGIN_SECS: u64 = 600;

/// API Gateway's connection duration limit.
pub const CONNECTION_LIMIT_SECS: u64 = 2 * 3600;

/// The default `STREAM_GATE_START_GRACE_MS`.
pub const DEFAULT_START_GRACE_MS: u64 = 2000;

/// The leg of a call a connection carries, as its verified start named it: a Media Streams stream
/// (`start.streamSid`) or a ConversationRelay session (`setup.sessionId`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallLeg {
    /// A Media Streams stream: every later frame must name it.
    Stream(StreamSid),
    /// A ConversationRelay session: later messages name nothing, the connection is the session.
    Session(SessionSid),
}

impl From<StreamSid> for CallLeg {
    fn from(s: StreamSid) -> Self {
        Self::Stream(s)
    }
}

impl From<SessionSid> for CallLeg {
    fn from(s: SessionSid) -> Self {
        Self::Session(s)
    }
}

/// A connection's verified start (a Media Streams `start` or a ConversationRelay `setup`), as
/// recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StartedCall {
    /// The account the handshake proved and the start carried.
    pub account_sid: AccountSid,
    /// The call.
    pub call_sid: CallSid,
    /// The stream or session every later frame belongs to.
    pub leg: CallLeg,
    /// Unix seconds after which the record is void (DynamoDB's TTL deletes it only eventually).
    pub expires_at: u64,
}

impl StartedCall {
    /// The record of a start verified at `now` (Unix seconds).
    pub fn new(
        account_sid: AccountSid,
        call_sid: CallSid,
        leg: impl Into<CallLeg>,
        now: u64,
    ) -> Self {
        Self {
            account_sid,
            call_sid,
            leg: leg.into(),
            expires_at: now.saturating_add(CONNECTION_LIMIT_SECS + RECORD_MARGIN_SECS),
        }
    }

    /// Whether the record still counts at `now` (Unix seconds).
    pub fn is_live(&self, now: u64) -> bool {
        now <= self.expires_at
    }

    /// The Media Streams stream, if this is one.
    pub fn stream_sid(&self) -> Option<StreamSid> {
        match self.leg {
            CallLeg::Stream(s) => Some(s),
            CallLeg::Session(_) => None,
        }
    }

    /// The ConversationRelay session, if this is one.
    pub fn session_sid(&self) -> Option<SessionSid> {
        match self.leg {
            CallLeg::Session(s) => Some(s),
            CallLeg::Stream(_) => None,
        }
    }
}

/// The identity of a call token for the one-connection rule: tokens are deterministic in
/// (account, call, expiry), so this names one minted token without storing the token itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CallTokenId {
    /// The token's account.
    pub account_sid: AccountSid,
    /// The token's call.
    pub call_sid: CallSid,
    /// The token's expiry (Unix seconds).
    pub expires_at: u64,
}

/// What to do with a frame given the connection's recorded start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateVerdict {
    /// It belongs to the recorded start (or needs none): accept.
    Accept,
    /// No start recorded yet, within the grace: neither accept nor close.
    Drop,
    /// Close the connection.
    Close(CloseReason),
}

/// Where a connection stands in time, for the start grace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// `requestContext.connectedAt` (Unix ms), when the event carries it.
    pub connected_at_ms: Option<u64>,
    /// Now, Unix ms.
    pub now_ms: u64,
    /// `STREAM_GATE_START_GRACE_MS`.
    pub grace_ms: u64,
}

impl Timing {
    /// Whether the connection is still within its start grace. Without `connectedAt` it is not
    /// (fail closed).
    pub fn within_grace(&self) -> bool {
        self.connected_at_ms
            .is_some_and(|at| self.now_ms <= at.saturating_add(self.grace_ms))
    }
}

/// What a frame (other than `start`) claims about the call it belongs to, for binding it to the
/// connection's recorded start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Binding {
    /// `media`, `mark`, `dtmf`: the top-level `streamSid`.
    Stream(StreamSid),
    /// `stop`: its stream, and the account and call it names.
    Stop {
        /// Top-level `streamSid`.
        stream_sid: StreamSid,
        /// `stop.accountSid`.
        account_sid: AccountSid,
        /// `stop.callSid`.
        call_sid: CallSid,
    },
    /// `connected` and unknown events: they name no stream, but after the start grace they too
    /// need a verified start (a socket that never verifies must not stay open).
    Unbound,
    /// ConversationRelay `prompt`, `dtmf`, `interrupt`, `error`: they name nothing, and belong to
    /// the connection's recorded `setup`.
    Session,
    /// ConversationRelay `info` and unknown types: as [`Binding::Unbound`], for a `setup`.
    SessionUnbound,
}

impl Binding {
    /// The binding of `frame`; `None` for `start`, which records the start instead.
    pub fn of(frame: &Frame<'_>) -> Option<Self> {
        match frame {
            Frame::Start(_) => None,
            Frame::Stop {
                stream_sid,
                account_sid,
                call_sid,
            } => Some(Self::Stop {
                stream_sid: *stream_sid,
                account_sid: *account_sid,
                call_sid: *call_sid,
            }),
            Frame::Media { stream_sid, .. }
            | Frame::Mark { stream_sid }
            | Frame::Dtmf { stream_sid } => Some(Self::Stream(*stream_sid)),
            Frame::Connected | Frame::Unknown => Some(Self::Unbound),
        }
    }

    /// The binding of a ConversationRelay message; `None` for `setup`, which records the start.
    pub fn of_relay(message: &RelayMessage) -> Option<Self> {
        match message {
            RelayMessage::Setup(_) => None,
            RelayMessage::Prompt { .. }
            | RelayMessage::Dtmf
            | RelayMessage::Interrupt
            | RelayMessage::Error => Some(Self::Session),
            RelayMessage::Info | RelayMessage::Unknown => Some(Self::SessionUnbound),
        }
    }

    /// The stream the frame names (`None` for an unbound frame or a ConversationRelay message).
    pub fn stream_sid(&self) -> Option<StreamSid> {
        match self {
            Self::Stream(s) | Self::Stop { stream_sid: s, .. } => Some(*s),
            Self::Unbound | Self::Session | Self::SessionUnbound => None,
        }
    }

    /// Whether the verdict on this binding can be given without reading the store: an unbound
    /// frame within the start grace is accepted whatever the store says (it is never delivered).
    pub fn decided_without_store(&self, timing: Timing) -> bool {
        matches!(self, Self::Unbound | Self::SessionUnbound) && timing.within_grace()
    }
}

/// The verdict on a frame's [`Binding`] given the connection's recorded start (`None`: no live
/// record). A record past its expiry counts as none.
///
/// - a stream frame must name the recorded stream (`stream_sid_mismatch`), a `stop` also the
///   recorded account and call (`call_sid_mismatch`); a ConversationRelay message belongs to the
///   recorded session (a record of the other protocol closes as `protocol_mismatch`);
/// - with no start, within the grace a bound frame is dropped and an unbound one accepted (it is
///   never delivered); after the grace, a stream frame closes as `media_before_start`, an unbound
///   one as `start_missing`, and any ConversationRelay message as `setup_missing`.
pub fn judge_against_start(
    binding: &Binding,
    recorded: Option<&StartedCall>,
    timing: Timing,
) -> StateVerdict {
    let live = recorded.filter(|r| r.is_live(timing.now_ms / 1000));
    let Some(r) = live else {
        return match binding {
            Binding::Unbound | Binding::SessionUnbound if timing.within_grace() => {
                StateVerdict::Accept
            }
            Binding::Unbound => StateVerdict::Close(CloseReason::StartMissing),
            _ if timing.within_grace() => StateVerdict::Drop,
            Binding::Session | Binding::SessionUnbound => {
                StateVerdict::Close(CloseReason::SetupMissing)
            }
            Binding::Stream(_) | Binding::Stop { .. } => {
                StateVerdict::Close(CloseReason::MediaBeforeStart)
            }
        };
    };
    match (binding, r.leg) {
        (Binding::Unbound, CallLeg::Stream(_))
        | (Binding::Session | Binding::SessionUnbound, CallLeg::Session(_)) => StateVerdict::Accept,
        (
            Binding::Stream(stream)
            | Binding::Stop {
                stream_sid: stream, ..
            },
            CallLeg::Stream(s),
        ) if s != *stream => StateVerdict::Close(CloseReason::StreamSidMismatch),
        (
            Binding::Stop {
                account_sid,
                call_sid,
                ..
            },
            CallLeg::Stream(_),
        ) if r.account_sid != *account_sid || r.call_sid != *call_sid => {
            StateVerdict::Close(CloseReason::CallSidMismatch)
        }
        (Binding::Stream(_) | Binding::Stop { .. }, CallLeg::Stream(_)) => StateVerdict::Accept,
        // A connection is one protocol from its handshake on: a record of the other one means
        // the frame is on the wrong connection.
        _ => StateVerdict::Close(CloseReason::ProtocolMismatch),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;
    use crate::frame::parse_frame;

    const AC: &str = "ACdeadbeefdeadbeefdeadbeefdeadbeef";
    const CA: &str = "CAffeeddccbbaa99887766554433221100";
    const MZ: &str = "MZ00112233445566778899aabbccddeeff";
    const OTHER: &str = "MZ0000000000000000000000000000000a";
    const OTHER_CA: &str = "CA0000000000000000000000000000000b";
    const OTHER_AC: &str = "AC0000000000000000000000000000000c";

    fn recorded(now: u64) -> StartedCall {
        StartedCall::new(
            AccountSid::parse(AC).expect("ac"),
            CallSid::parse(CA).expect("ca"),
            StreamSid::parse(MZ).expect("mz"),
            now,
        )
    }

    fn timing(connected_at_ms: Option<u64>, now_ms: u64) -> Timing {
        Timing {
            connected_at_ms,
            now_ms,
            grace_ms: 2000,
        }
    }

    fn binding(text: &str) -> Binding {
        let f = parse_frame(text.as_bytes()).expect("frame");
        Binding::of(&f).expect("not a start")
    }

    fn stop(ac: &str, ca: &str, mz: &str) -> String {
        fixtures::stop(
            &AccountSid::parse(ac).expect("ac"),
            &CallSid::parse(ca).expect("ca"),
            &StreamSid::parse(mz).expect("mz"),
            5,
        )
    }

    fn frames(stream: &str) -> Vec<String> {
        let sid = StreamSid::parse(stream).expect("mz");
        vec![
            fixtures::media(&sid, 2, 1, &[0xff; 160]),
            fixtures::mark(&sid, 3, "m"),
            fixtures::dtmf(&sid, 4, '1'),
            stop(AC, CA, stream),
        ]
    }

    fn unbound_frames() -> [&'static str; 2] {
        [
            r#"{"event":"connected","protocol":"Call","version":"1.0.0"}"#,
            r#"{"event":"future","streamSid":"MZ00112233445566778899aabbccddeeff"}"#,
        ]
    }

    #[test]
    fn frames_of_the_recorded_stream_are_accepted_others_closed() {
        let now_ms = 1_800_000_000_000;
        let r = recorded(now_ms / 1000);
        for text in frames(MZ) {
            assert_eq!(
                judge_against_start(&binding(&text), Some(&r), timing(Some(0), now_ms)),
                StateVerdict::Accept
            );
        }
        for text in frames(OTHER) {
            assert_eq!(
                judge_against_start(&binding(&text), Some(&r), timing(Some(now_ms), now_ms)),
                StateVerdict::Close(CloseReason::StreamSidMismatch),
                "even within the grace"
            );
        }
    }

    #[test]
    fn a_stop_is_bound_to_the_recorded_call_and_account() {
        let now_ms = 1_800_000_000_000;
        let r = recorded(now_ms / 1000);
        let within = timing(Some(now_ms), now_ms);
        for (ac, ca) in [(AC, OTHER_CA), (OTHER_AC, CA), (OTHER_AC, OTHER_CA)] {
            assert_eq!(
                judge_against_start(&binding(&stop(ac, ca, MZ)), Some(&r), within),
                StateVerdict::Close(CloseReason::CallSidMismatch),
                "{ac} {ca}"
            );
        }
        assert_eq!(
            judge_against_start(&binding(&stop(AC, OTHER_CA, OTHER)), Some(&r), within),
            StateVerdict::Close(CloseReason::StreamSidMismatch),
            "the stream is checked first"
        );
        assert_eq!(
            judge_against_start(&binding(&stop(AC, CA, MZ)), Some(&r), within),
            StateVerdict::Accept
        );
    }

    #[test]
    fn no_start_is_dropped_within_the_grace_and_closed_after_it() {
        let at = 1_800_000_000_000;
        for text in frames(MZ) {
            let b = binding(&text);
            assert!(!b.decided_without_store(timing(Some(at), at)));
            assert_eq!(
                judge_against_start(&b, None, timing(Some(at), at)),
                StateVerdict::Drop
            );
            assert_eq!(
                judge_against_start(&b, None, timing(Some(at), at + 2000)),
                StateVerdict::Drop
            );
            assert_eq!(
                judge_against_start(&b, None, timing(Some(at), at + 2001)),
                StateVerdict::Close(CloseReason::MediaBeforeStart)
            );
            assert_eq!(
                judge_against_start(&b, None, timing(None, at)),
                StateVerdict::Close(CloseReason::MediaBeforeStart),
                "no connectedAt: no grace"
            );
        }
    }

    #[test]
    fn unbound_frames_need_a_start_after_the_grace() {
        let at = 1_800_000_000_000;
        let r = recorded(at / 1000);
        for text in unbound_frames() {
            let b = binding(text);
            assert_eq!(b, Binding::Unbound);
            assert!(b.decided_without_store(timing(Some(at), at + 2000)));
            assert!(!b.decided_without_store(timing(Some(at), at + 2001)));
            assert!(!b.decided_without_store(timing(None, at)));
            assert_eq!(
                judge_against_start(&b, None, timing(Some(at), at + 2000)),
                StateVerdict::Accept,
                "{text} within the grace"
            );
            for late in [timing(Some(at), at + 2001), timing(None, at)] {
                assert_eq!(
                    judge_against_start(&b, None, late),
                    StateVerdict::Close(CloseReason::StartMissing),
                    "{text} after the grace"
                );
                assert_eq!(
                    judge_against_start(&b, Some(&r), late),
                    StateVerdict::Accept,
                    "{text} on a verified call"
                );
            }
        }
    }

    #[test]
    fn an_expired_record_counts_as_none() {
        let start = 1_800_000_000;
        let r = recorded(start);
        assert_eq!(r.expires_at, start + 7200 + 600);
        assert!(r.is_live(r.expires_at) && !r.is_live(r.expires_at + 1));
        let now_ms = (r.expires_at + 1) * 1000;
        let media = frames(MZ).remove(0);
        assert_eq!(
            judge_against_start(&binding(&media), Some(&r), timing(Some(0), now_ms)),
            StateVerdict::Close(CloseReason::MediaBeforeStart)
        );
        assert_eq!(
            judge_against_start(&Binding::Unbound, Some(&r), timing(Some(0), now_ms)),
            StateVerdict::Close(CloseReason::StartMissing)
        );
    }

    #[test]
    fn a_start_has_no_binding() {
        let text = fixtures::start(
            &AccountSid::parse(AC).expect("ac"),
            &CallSid::parse(CA).expect("ca"),
            &StreamSid::parse(MZ).expect("mz"),
            None,
        );
        let f = parse_frame(text.as_bytes()).expect("start");
        assert_eq!(Binding::of(&f), None);
    }

    fn relay_recorded(now: u64) -> StartedCall {
        StartedCall::new(
            AccountSid::parse(AC).expect("ac"),
            CallSid::parse(CA).expect("ca"),
            SessionSid::parse("VX00112233445566778899aabbccddeeff").expect("vx"),
            now,
        )
    }

    #[test]
    fn a_call_leg_is_a_stream_or_a_session() {
        let stream = recorded(0);
        let session = relay_recorded(0);
        assert_eq!(stream.stream_sid(), Some(StreamSid::parse(MZ).expect("mz")));
        assert_eq!(stream.session_sid(), None);
        assert_eq!(session.stream_sid(), None);
        assert_eq!(
            session.session_sid().map(|s| s.to_string()).as_deref(),
            Some("VX00112233445566778899aabbccddeeff")
        );
    }

    #[test]
    fn relay_messages_bind_to_the_session() {
        let setup = RelayMessage::Setup(crate::relay_frame::RelaySetup {
            session_sid: SessionSid::parse("VX00112233445566778899aabbccddeeff").expect("vx"),
            account_sid: AccountSid::parse(AC).expect("ac"),
            call_sid: CallSid::parse(CA).expect("ca"),
        });
        assert_eq!(Binding::of_relay(&setup), None);
        for m in [
            RelayMessage::Prompt { last: true },
            RelayMessage::Dtmf,
            RelayMessage::Interrupt,
            RelayMessage::Error,
        ] {
            assert_eq!(Binding::of_relay(&m), Some(Binding::Session), "{m:?}");
        }
        for m in [RelayMessage::Info, RelayMessage::Unknown] {
            assert_eq!(
                Binding::of_relay(&m),
                Some(Binding::SessionUnbound),
                "{m:?}"
            );
        }
        assert_eq!(Binding::Session.stream_sid(), None);
        assert_eq!(Binding::SessionUnbound.stream_sid(), None);
        assert_eq!(Binding::Unbound.stream_sid(), None);
    }

    #[test]
    fn a_relay_connection_needs_its_setup_like_a_stream_its_start() {
        let at = 1_800_000_000_000;
        let within = timing(Some(at), at + 2000);
        let after = timing(Some(at), at + 2001);
        let session = relay_recorded(at / 1000);
        assert!(!Binding::Session.decided_without_store(within));
        assert!(Binding::SessionUnbound.decided_without_store(within));
        assert!(!Binding::SessionUnbound.decided_without_store(after));
        for (binding, none_within) in [
            (Binding::Session, StateVerdict::Drop),
            (Binding::SessionUnbound, StateVerdict::Accept),
        ] {
            assert_eq!(judge_against_start(&binding, None, within), none_within);
            assert_eq!(
                judge_against_start(&binding, None, after),
                StateVerdict::Close(CloseReason::SetupMissing),
                "{binding:?}"
            );
            assert_eq!(
                judge_against_start(&binding, Some(&session), after),
                StateVerdict::Accept
            );
            assert_eq!(
                judge_against_start(&binding, Some(&recorded(at / 1000)), within),
                StateVerdict::Close(CloseReason::ProtocolMismatch),
                "a relay message on a connection with a Media Streams start"
            );
        }
        let expired = timing(Some(0), (session.expires_at + 1) * 1000);
        assert_eq!(
            judge_against_start(&Binding::Session, Some(&session), expired),
            StateVerdict::Close(CloseReason::SetupMissing)
        );
        // Media Streams frames on a connection with a relay setup.
        for text in frames(MZ) {
            assert_eq!(
                judge_against_start(&binding(&text), Some(&session), within),
                StateVerdict::Close(CloseReason::ProtocolMismatch),
                "{text}"
            );
        }
        assert_eq!(
            judge_against_start(&Binding::Unbound, Some(&session), within),
            StateVerdict::Close(CloseReason::ProtocolMismatch)
        );
    }
}
