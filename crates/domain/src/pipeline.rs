//! One frame, one decision. A frame's text is parsed once ([`parse`]), judged once against the
//! connection ([`Parsed::judge`]: the stateless verdict), and the call-state step's answer turns
//! the judged frame into the one [`Decision`] the router acts on ([`Judged::decide`]).
//!
//! The proof types: a [`Judged`] frame is made only by the verdict, and a [`VerifiedFrame`] only
//! by [`Judged::decide`] with the call-state step's acceptance. A record is built from a
//! `&VerifiedFrame` alone (`record::DeliveryRecord::of_frame`), so a frame that skipped either
//! check cannot become a record, and the record reuses the parse the verdict made.
//!
//! This is the protocol seam: the router sees [`Parsed`], [`Judged`] and [`Decision`], never a
//! grammar's own frame type. Media Streams (`frame::Frame`) is the grammar today; another Twilio
//! WebSocket protocol adds its grammar inside these types.

use std::borrow::Cow;

use crate::call_state::{Binding, StartedStream};
use crate::credentials::Credentials;
use crate::frame::{parse_sequenced, SequencedFrame};
use crate::reason::CloseReason;
use crate::record::RecordType;
use crate::sid::{AccountSid, CallSid, StreamSid};
use crate::verdict::{judge_parsed, needs_credentials, Accepted, CallTokenPolicy, Verdict};

/// A frame's text, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed<'a> {
    text: &'a str,
    frame: SequencedFrame<'a>,
}

/// Parses one text frame (Media Streams' grammar).
pub fn parse(text: &str) -> Result<Parsed<'_>, CloseReason> {
    let frame = parse_sequenced(text.as_bytes())?;
    Ok(Parsed { text, frame })
}

impl<'a> Parsed<'a> {
    /// Whether judging needs the credentials document (only a `start` whose call token will be
    /// checked): the media hot path never waits on them.
    pub fn needs_credentials(&self, policy: CallTokenPolicy) -> bool {
        needs_credentials(&self.frame.frame, policy)
    }

    /// The stateless verdict against the connection's `expected` account (the handshake's).
    pub fn judge(
        self,
        expected: &AccountSid,
        policy: CallTokenPolicy,
        credentials: Option<&Credentials>,
        now: u64,
    ) -> Result<Judged<'a>, CloseReason> {
        match judge_parsed(&self.frame.frame, expected, policy, credentials, now) {
            Verdict::Accept(accepted) => Ok(Judged {
                parsed: self,
                account: *expected,
                accepted,
            }),
            Verdict::Close(reason) => Err(reason),
        }
    }
}

/// A frame the stateless verdict accepted. Made only by [`Parsed::judge`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Judged<'a> {
    parsed: Parsed<'a>,
    account: AccountSid,
    accepted: Accepted,
}

impl<'a> Judged<'a> {
    /// What the verdict accepted.
    pub fn accepted(&self) -> &Accepted {
        &self.accepted
    }

    /// The account the frame was judged against.
    pub fn account(&self) -> &AccountSid {
        &self.account
    }

    /// What the frame claims about its call, for the call-state step (`None` for a `start`,
    /// which records the call instead).
    pub fn binding(&self) -> Option<Binding> {
        Binding::of(&self.parsed.frame.frame)
    }

    /// The one decision, given the call-state step's answer.
    pub fn decide(self, step: StateStep) -> Decision<'a> {
        let recorded = match step {
            StateStep::Accept(recorded) => recorded,
            StateStep::Drop(why) => return Decision::Drop(why),
            StateStep::Close(reason) => return Decision::Close(reason),
        };
        let Some(kind) = record_type(&self.accepted) else {
            return Decision::Ignore(self.accepted);
        };
        let sids = match recorded {
            Some(start) => CallSids::of_start(&start),
            None => self.own_sids(),
        };
        Decision::Deliver(VerifiedFrame {
            accepted: self.accepted,
            kind,
            sids,
            // Every event with a record carries a checked one (frame::parse_sequenced).
            sequence_number: self.parsed.frame.sequence_number,
            text: self.parsed.text,
        })
    }

    /// The SIDs the frame itself names, with the account it was judged against (call state off:
    /// no recorded start to take them from).
    fn own_sids(&self) -> CallSids {
        let stream = self.binding().as_ref().and_then(Binding::stream_sid);
        let (call, stream) = match self.accepted {
            Accepted::Start {
                call_sid,
                stream_sid,
                ..
            } => (Some(call_sid), Some(stream_sid)),
            Accepted::Stop { call_sid } => (Some(call_sid), stream),
            _ => (None, stream),
        };
        CallSids {
            account: self.account,
            call,
            stream,
        }
    }
}

/// The record type of an accepted frame; `None` for what is never delivered (`connected`, which
/// precedes any verified start, and unknown events).
fn record_type(accepted: &Accepted) -> Option<RecordType> {
    match accepted {
        Accepted::Start { .. } => Some(RecordType::Start),
        Accepted::Media => Some(RecordType::Media),
        Accepted::Mark => Some(RecordType::Mark),
        Accepted::Dtmf => Some(RecordType::Dtmf),
        Accepted::Stop { .. } => Some(RecordType::Stop),
        Accepted::Connected | Accepted::Unknown => None,
    }
}

/// The call-state step's answer for a judged frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateStep {
    /// The verdict stands; with call state, the connection's recorded start.
    Accept(Option<StartedStream>),
    /// Neither accepted nor closed: no start recorded yet within the grace, or the store could
    /// not say (an outage must neither admit an unverified frame nor close a verified call).
    Drop(DropReason),
    /// Close the connection.
    Close(CloseReason),
}

/// Why a frame was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// No start recorded yet, within `STREAM_GATE_START_GRACE_MS` of `connectedAt`.
    StartPending,
    /// The store could not be read.
    CallStateUnavailable,
}

impl DropReason {
    /// The log and metric code.
    pub const fn code(self) -> &'static str {
        match self {
            DropReason::StartPending => "start_pending",
            DropReason::CallStateUnavailable => "call_state_unavailable",
        }
    }
}

/// What the router does with one frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision<'a> {
    /// A frame of a verified call: deliver its record.
    Deliver(VerifiedFrame<'a>),
    /// Accepted and never delivered: `connected`, unknown events.
    Ignore(Accepted),
    /// Neither accepted nor closed.
    Drop(DropReason),
    /// Close the connection.
    Close(CloseReason),
}

/// The SIDs a record carries: with call state, the recorded start's, whatever a frame names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallSids {
    /// The account the handshake proved.
    pub account: AccountSid,
    /// The call, when known.
    pub call: Option<CallSid>,
    /// The stream, when known.
    pub stream: Option<StreamSid>,
}

impl CallSids {
    /// A recorded start's.
    pub fn of_start(s: &StartedStream) -> Self {
        Self {
            account: s.account_sid,
            call: Some(s.call_sid),
            stream: Some(s.stream_sid),
        }
    }

    /// The account alone (`$disconnect` of a connection whose start is not known).
    pub fn account_only(account: AccountSid) -> Self {
        Self {
            account,
            call: None,
            stream: None,
        }
    }
}

/// An accepted frame of a verified call, with what its record needs. Made only by
/// [`Judged::decide`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedFrame<'a> {
    accepted: Accepted,
    kind: RecordType,
    sids: CallSids,
    sequence_number: Option<Cow<'a, str>>,
    text: &'a str,
}

impl VerifiedFrame<'_> {
    /// What the verdict accepted.
    pub fn accepted(&self) -> &Accepted {
        &self.accepted
    }

    /// The record's `type`.
    pub fn kind(&self) -> RecordType {
        self.kind
    }

    /// The SIDs the record carries.
    pub fn sids(&self) -> &CallSids {
        &self.sids
    }

    /// The frame's checked `sequenceNumber` (every Media Streams event with a record has one).
    pub fn sequence_number(&self) -> Option<&str> {
        self.sequence_number.as_deref()
    }

    /// The frame's text as Twilio sent it (one JSON object: the parse checked it whole).
    pub fn text(&self) -> &str {
        self.text
    }
}

#[cfg(test)]
#[path = "pipeline_tests.rs"]
mod tests;
