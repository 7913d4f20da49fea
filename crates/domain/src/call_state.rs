//! Per-connection call state (DESIGN.md §5), the pure part: what a recorded start is, and the
//! verdict on a frame given what the store knows. The store itself (DynamoDB, memory) is an adapter.
//!
//! With call state on, a connection's `media`, `mark`, `dtmf` and `stop` are accepted only after a
//! verified `start` was recorded for it, and only for that start's stream. Frames of one connection
//! run as concurrent Lambda invocations, so the first media frame may be judged before the start's
//! write has landed: within a grace after `connectedAt` such a frame is dropped (not accepted, not
//! closed); after it, the connection is closed.

use crate::frame::Frame;
use crate::reason::CloseReason;
use crate::sid::{AccountSid, CallSid, StreamSid};

/// How long a recorded start outlives its connection's hard limit (API Gateway closes every
/// connection after 2 h): the record's expiry is `start + 2 h + this`.
pub const RECORD_MARGIN_SECS: u64 = 600;

/// API Gateway's connection duration limit.
pub const CONNECTION_LIMIT_SECS: u64 = 2 * 3600;

/// The default `STREAM_GATE_START_GRACE_MS`.
pub const DEFAULT_START_GRACE_MS: u64 = 2000;

/// A connection's verified start, as recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StartedStream {
    /// The account the handshake proved and the start carried.
    pub account_sid: AccountSid,
    /// The call.
    pub call_sid: CallSid,
    /// The stream every later frame must name.
    pub stream_sid: StreamSid,
    /// Unix seconds after which the record is void (DynamoDB's TTL deletes it only eventually).
    pub expires_at: u64,
}

impl StartedStream {
    /// The record of a start verified at `now` (Unix seconds).
    pub fn new(
        account_sid: AccountSid,
        call_sid: CallSid,
        stream_sid: StreamSid,
        now: u64,
    ) -> Self {
        Self {
            account_sid,
            call_sid,
            stream_sid,
            expires_at: now.saturating_add(CONNECTION_LIMIT_SECS + RECORD_MARGIN_SECS),
        }
    }

    /// Whether the record still counts at `now` (Unix seconds).
    pub fn is_live(&self, now: u64) -> bool {
        now <= self.expires_at
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

/// Whether `frame` must belong to a recorded start (`media`, `mark`, `dtmf`, `stop`).
pub fn needs_start(frame: &Frame<'_>) -> bool {
    frame.stream_sid().is_some()
}

/// The verdict on a frame that [`needs_start`], known by its top-level `streamSid`, given the
/// connection's recorded start (`None`: no live record). A record past its expiry counts as none.
pub fn judge_against_start(
    stream: &StreamSid,
    recorded: Option<&StartedStream>,
    timing: Timing,
) -> StateVerdict {
    match recorded.filter(|r| r.is_live(timing.now_ms / 1000)) {
        Some(r) if r.stream_sid == *stream => StateVerdict::Accept,
        Some(_) => StateVerdict::Close(CloseReason::StreamSidMismatch),
        None if timing.within_grace() => StateVerdict::Drop,
        None => StateVerdict::Close(CloseReason::MediaBeforeStart),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::parse_frame;
    use crate::messages;

    const AC: &str = "ACdeadbeefdeadbeefdeadbeefdeadbeef";
    const CA: &str = "CAffeeddccbbaa99887766554433221100";
    const MZ: &str = "MZ00112233445566778899aabbccddeeff";
    const OTHER: &str = "MZ0000000000000000000000000000000a";

    fn recorded(now: u64) -> StartedStream {
        StartedStream::new(
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

    fn sid<'a>(f: &'a Frame<'_>) -> &'a StreamSid {
        f.stream_sid().expect("a frame that needs a start")
    }

    fn frames(stream: &str) -> Vec<String> {
        let sid = StreamSid::parse(stream).expect("mz");
        let ac = AccountSid::parse(AC).expect("ac");
        let ca = CallSid::parse(CA).expect("ca");
        vec![
            messages::media(&sid, 2, 1, &[0xff; 160]),
            messages::mark(&sid, 3, "m"),
            messages::dtmf(&sid, 4, '1'),
            messages::stop(&ac, &ca, &sid, 5),
        ]
    }

    #[test]
    fn frames_of_the_recorded_stream_are_accepted_others_closed() {
        let now_ms = 1_800_000_000_000;
        let r = recorded(now_ms / 1000);
        for text in frames(MZ) {
            let f = parse_frame(text.as_bytes()).expect("frame");
            assert!(needs_start(&f));
            assert_eq!(
                judge_against_start(sid(&f), Some(&r), timing(Some(0), now_ms)),
                StateVerdict::Accept
            );
        }
        for text in frames(OTHER) {
            let f = parse_frame(text.as_bytes()).expect("frame");
            assert_eq!(
                judge_against_start(sid(&f), Some(&r), timing(Some(now_ms), now_ms)),
                StateVerdict::Close(CloseReason::StreamSidMismatch),
                "even within the grace"
            );
        }
    }

    #[test]
    fn no_start_is_dropped_within_the_grace_and_closed_after_it() {
        let at = 1_800_000_000_000;
        for text in frames(MZ) {
            let f = parse_frame(text.as_bytes()).expect("frame");
            assert_eq!(
                judge_against_start(sid(&f), None, timing(Some(at), at)),
                StateVerdict::Drop
            );
            assert_eq!(
                judge_against_start(sid(&f), None, timing(Some(at), at + 2000)),
                StateVerdict::Drop
            );
            assert_eq!(
                judge_against_start(sid(&f), None, timing(Some(at), at + 2001)),
                StateVerdict::Close(CloseReason::MediaBeforeStart)
            );
            assert_eq!(
                judge_against_start(sid(&f), None, timing(None, at)),
                StateVerdict::Close(CloseReason::MediaBeforeStart),
                "no connectedAt: no grace"
            );
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
        let f = parse_frame(media.as_bytes()).expect("media");
        assert_eq!(
            judge_against_start(sid(&f), Some(&r), timing(Some(0), now_ms)),
            StateVerdict::Close(CloseReason::MediaBeforeStart)
        );
    }

    #[test]
    fn connected_start_and_unknown_need_no_start() {
        for text in [
            r#"{"event":"connected","protocol":"Call","version":"1.0.0"}"#.to_owned(),
            r#"{"event":"future","streamSid":"MZ00112233445566778899aabbccddeeff"}"#.to_owned(),
        ] {
            let f = parse_frame(text.as_bytes()).expect("frame");
            assert!(!needs_start(&f));
            assert_eq!(f.stream_sid(), None);
        }
    }
}
