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
//! grammar's own frame type. A connection's protocol (its [`ConnectionContext`]) picks the
//! grammar: Media Streams (`frame::Frame`) or ConversationRelay (`relay_frame::RelayMessage`).

use std::borrow::Cow;

use crate::call_state::{Binding, CallTokenId, StartedCall};
use crate::connection_context::ConnectionContext;
use crate::credentials::Credentials;
use crate::frame::{parse_sequenced, SequencedFrame};
use crate::protocol::Protocol;
use crate::reason::CloseReason;
use crate::record::RecordType;
use crate::relay_frame::{parse_relay, RelayMessage};
use crate::sid::{AccountSid, CallSid, SessionSid, StreamSid};
use crate::verdict::{judge_parsed, needs_credentials, Accepted, CallTokenPolicy, Verdict};

/// A frame's text, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed<'a> {
    text: &'a str,
    grammar: Grammar<'a>,
}

/// A frame in the grammar of its connection's protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Grammar<'a> {
    MediaStreams(SequencedFrame<'a>),
    ConversationRelay(RelayMessage),
}

/// Parses one text frame in `protocol`'s grammar (a frame of the other protocol closes as
/// `protocol_mismatch`).
pub fn parse(text: &str, protocol: Protocol) -> Result<Parsed<'_>, CloseReason> {
    let grammar = match protocol {
        Protocol::MediaStreams => Grammar::MediaStreams(parse_sequenced(text.as_bytes())?),
        Protocol::ConversationRelay => Grammar::ConversationRelay(parse_relay(text.as_bytes())?),
    };
    Ok(Parsed { text, grammar })
}

impl<'a> Parsed<'a> {
    /// Whether judging needs the credentials document (only a Media Streams `start` whose call
    /// token will be checked; a ConversationRelay token was checked at `$connect`): the media hot
    /// path never waits on them.
    pub fn needs_credentials(&self, policy: CallTokenPolicy) -> bool {
        match &self.grammar {
            Grammar::MediaStreams(f) => needs_credentials(&f.frame, policy),
            Grammar::ConversationRelay(_) => false,
        }
    }

    /// The stateless verdict against the connection's context (the handshake's account, and for
    /// ConversationRelay its call).
    pub fn judge(
        self,
        context: &ConnectionContext,
        policy: CallTokenPolicy,
        credentials: Option<&Credentials>,
        now: u64,
    ) -> Result<Judged<'a>, CloseReason> {
        let accepted = match (&self.grammar, context) {
            (Grammar::MediaStreams(f), ConnectionContext::MediaStreams { account }) => {
                match judge_parsed(&f.frame, account, policy, credentials, now) {
                    Verdict::Accept(accepted) => accepted,
                    Verdict::Close(reason) => return Err(reason),
                }
            }
            (
                Grammar::ConversationRelay(m),
                ConnectionContext::ConversationRelay { account, call, .. },
            ) => Accepted::Relay(m.judge(account, call)?),
            // `parse` with the context's own protocol never gets here.
            _ => return Err(CloseReason::ProtocolMismatch),
        };
        Ok(Judged {
            parsed: self,
            context: *context,
            accepted,
        })
    }
}

/// A frame the stateless verdict accepted. Made only by [`Parsed::judge`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Judged<'a> {
    parsed: Parsed<'a>,
    context: ConnectionContext,
    accepted: Accepted,
}

impl<'a> Judged<'a> {
    /// What the verdict accepted.
    pub fn accepted(&self) -> &Accepted {
        &self.accepted
    }

    /// The account the frame was judged against.
    pub fn account(&self) -> &AccountSid {
        self.context.account()
    }

    /// What the frame claims about its call, for the call-state step (`None` for a `start` or a
    /// `setup`, which records the call instead).
    pub fn binding(&self) -> Option<Binding> {
        match &self.parsed.grammar {
            Grammar::MediaStreams(f) => Binding::of(&f.frame),
            Grammar::ConversationRelay(m) => Binding::of_relay(m),
        }
    }

    /// For a verified `start` or `setup`: the record of it made at `now` (Unix seconds), with the
    /// call token it claims (a `start`'s own token when one was checked; a `setup` claims the
    /// token its handshake presented, named by the context). `None` for any other frame.
    pub fn start_claim(&self, now: u64) -> Option<(StartedCall, Option<CallTokenId>)> {
        let account = *self.account();
        match (self.accepted, self.context) {
            (
                Accepted::Start {
                    call_sid,
                    stream_sid,
                    call_token,
                },
                _,
            ) => Some((
                StartedCall::new(account, call_sid, stream_sid, now),
                call_token.map(|t| CallTokenId {
                    account_sid: account,
                    call_sid,
                    expires_at: t.expires_at,
                }),
            )),
            (
                Accepted::Relay(RelayMessage::Setup(s)),
                ConnectionContext::ConversationRelay {
                    token_expires_at, ..
                },
            ) => Some((
                StartedCall::new(account, s.call_sid, s.session_sid, now),
                Some(CallTokenId {
                    account_sid: account,
                    call_sid: s.call_sid,
                    expires_at: token_expires_at,
                }),
            )),
            _ => None,
        }
    }

    /// The close reason of a second start on a connection that has one.
    pub fn repeated_start(&self) -> CloseReason {
        match self.context.protocol() {
            Protocol::MediaStreams => CloseReason::StartRepeated,
            Protocol::ConversationRelay => CloseReason::SetupRepeated,
        }
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
        let sequence_number = match self.parsed.grammar {
            // Every Media Streams event with a record carries a checked one
            // (frame::parse_sequenced).
            Grammar::MediaStreams(f) => f.sequence_number,
            Grammar::ConversationRelay(_) => None,
        };
        Decision::Deliver(VerifiedFrame {
            accepted: self.accepted,
            kind,
            sids,
            sequence_number,
            text: self.parsed.text,
        })
    }

    /// The SIDs the frame itself names, with the account it was judged against and, for
    /// ConversationRelay, the call the handshake pinned (call state off: no recorded start to
    /// take them from).
    fn own_sids(&self) -> CallSids {
        let account = *self.account();
        if let ConnectionContext::ConversationRelay { call, .. } = self.context {
            let session = match self.accepted {
                Accepted::Relay(RelayMessage::Setup(s)) => Some(s.session_sid),
                _ => None,
            };
            return CallSids {
                account,
                call: Some(call),
                stream: None,
                session,
            };
        }
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
            account,
            call,
            stream,
            session: None,
        }
    }
}

/// The record type of an accepted frame; `None` for what is never delivered (`connected`, which
/// precedes any verified start, unknown events, ConversationRelay `info` and unknown types).
fn record_type(accepted: &Accepted) -> Option<RecordType> {
    match accepted {
        Accepted::Start { .. } => Some(RecordType::Start),
        Accepted::Media => Some(RecordType::Media),
        Accepted::Mark => Some(RecordType::Mark),
        Accepted::Dtmf => Some(RecordType::Dtmf),
        Accepted::Stop { .. } => Some(RecordType::Stop),
        Accepted::Connected | Accepted::Unknown => None,
        Accepted::Relay(message) => match message {
            RelayMessage::Setup(_) => Some(RecordType::Setup),
            RelayMessage::Prompt { .. } => Some(RecordType::Prompt),
            RelayMessage::Dtmf => Some(RecordType::Dtmf),
            RelayMessage::Interrupt => Some(RecordType::Interrupt),
            RelayMessage::Error => Some(RecordType::Error),
            RelayMessage::Info | RelayMessage::Unknown => None,
        },
    }
}

/// The call-state step's answer for a judged frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateStep {
    /// The verdict stands; with call state, the connection's recorded start.
    Accept(Option<StartedCall>),
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
    /// The Media Streams stream, when known.
    pub stream: Option<StreamSid>,
    /// The ConversationRelay session, when known.
    pub session: Option<SessionSid>,
}

impl CallSids {
    /// A recorded start's.
    pub fn of_start(s: &StartedCall) -> Self {
        Self {
            account: s.account_sid,
            call: Some(s.call_sid),
            stream: s.stream_sid(),
            session: s.session_sid(),
        }
    }

    /// The account alone (`$disconnect` of a Media Streams connection whose start is not known).
    pub fn account_only(account: AccountSid) -> Self {
        Self {
            account,
            call: None,
            stream: None,
            session: None,
        }
    }

    /// What the context alone says (`$disconnect` of a connection whose start is not known):
    /// the account, and for ConversationRelay the call its handshake pinned.
    pub fn of_context(context: &ConnectionContext) -> Self {
        let call = match context {
            ConnectionContext::ConversationRelay { call, .. } => Some(*call),
            ConnectionContext::MediaStreams { .. } => None,
        };
        Self {
            account: *context.account(),
            call,
            stream: None,
            session: None,
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

    /// The frame's checked `sequenceNumber` (every Media Streams event with a record has one;
    /// ConversationRelay messages have none).
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
