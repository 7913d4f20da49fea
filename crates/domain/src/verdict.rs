//! The per-frame verdict: a parsed frame judged against the connection's expected account and the
//! call-token policy. Pure: `now` and the credentials are passed in.

use std::str::FromStr;

use super::call_token::{verify_call_token, CallTokenFailure, VerifiedCallToken};
use super::credentials::Credentials;
use super::frame::{parse_frame, Frame, StartFrame};
use super::reason::CloseReason;
use super::relay_frame::RelayMessage;
use super::sid::{AccountSid, CallSid, StreamSid};

/// Whether a `start` must carry a per-call token (`STREAM_GATE_CALL_TOKEN`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CallTokenPolicy {
    /// Missing token closes the connection.
    #[default]
    Required,
    /// Checked when present; a present but bad token closes.
    Optional,
    /// Not looked at. Named so that a reviewer can grep for it.
    Off,
}

impl FromStr for CallTokenPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "required" => Ok(Self::Required),
            "optional" => Ok(Self::Optional),
            "off" => Ok(Self::Off),
            _ => Err("expected required, optional or off".into()),
        }
    }
}

/// What an accepted frame was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accepted {
    /// `connected`.
    Connected,
    /// A `start` that passed every check.
    Start {
        /// The call.
        call_sid: CallSid,
        /// The stream.
        stream_sid: StreamSid,
        /// The call token that verified, if one was checked.
        call_token: Option<VerifiedCallToken>,
    },
    /// `media`.
    Media,
    /// `stop` for the expected account.
    Stop {
        /// The call that ended.
        call_sid: CallSid,
    },
    /// `mark`.
    Mark,
    /// `dtmf`.
    Dtmf,
    /// An unknown event: ignored (and counted by the caller).
    Unknown,
    /// A ConversationRelay message that passed its grammar and, for a `setup`, the checks
    /// against the connection (`RelayMessage::judge`).
    Relay(RelayMessage),
}

/// The outcome for one frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Let it through.
    Accept(Accepted),
    /// Close the connection.
    Close(CloseReason),
}

/// Whether judging this frame needs the credentials document (only a `start` whose call token will
/// be checked). Lets the caller skip loading credentials on the media hot path.
pub fn needs_credentials(frame: &Frame<'_>, policy: CallTokenPolicy) -> bool {
    match frame {
        Frame::Start(s) => match policy {
            CallTokenPolicy::Required => true,
            CallTokenPolicy::Optional => s.call_token.is_some(),
            CallTokenPolicy::Off => false,
        },
        _ => false,
    }
}

fn judge_start(
    s: &StartFrame<'_>,
    expected: &AccountSid,
    policy: CallTokenPolicy,
    credentials: Option<&Credentials>,
    now: u64,
) -> Verdict {
    if s.account_sid != *expected {
        return Verdict::Close(CloseReason::StartAccountMismatch);
    }
    if s.stream_sid != s.start_stream_sid {
        return Verdict::Close(CloseReason::StartStreamSidMismatch);
    }
    if !s.mulaw_8k_mono {
        return Verdict::Close(CloseReason::StartMediaFormat);
    }
    let call_token = match (policy, s.call_token.as_deref()) {
        (CallTokenPolicy::Off, _) | (CallTokenPolicy::Optional, None) => None,
        (CallTokenPolicy::Required, None) => return Verdict::Close(CloseReason::CallTokenMissing),
        (_, Some(token)) => {
            let Some(creds) = credentials else {
                return Verdict::Close(CloseReason::CredentialsUnavailable);
            };
            match verify_call_token(creds, token, &s.account_sid, &s.call_sid, now) {
                Ok(v) => Some(v),
                Err(CallTokenFailure::Malformed) => {
                    return Verdict::Close(CloseReason::CallTokenMalformed)
                }
                Err(CallTokenFailure::NoKeys) => {
                    return Verdict::Close(CloseReason::CallTokenKeysMissing)
                }
                Err(CallTokenFailure::Invalid) => {
                    return Verdict::Close(CloseReason::CallTokenInvalid)
                }
                Err(CallTokenFailure::Expired) => {
                    return Verdict::Close(CloseReason::CallTokenExpired)
                }
            }
        }
    };
    Verdict::Accept(Accepted::Start {
        call_sid: s.call_sid,
        stream_sid: s.stream_sid,
        call_token,
    })
}

/// Judges an already parsed frame.
pub fn judge_parsed(
    frame: &Frame<'_>,
    expected: &AccountSid,
    policy: CallTokenPolicy,
    credentials: Option<&Credentials>,
    now: u64,
) -> Verdict {
    match frame {
        Frame::Connected => Verdict::Accept(Accepted::Connected),
        Frame::Start(s) => judge_start(s, expected, policy, credentials, now),
        Frame::Media { .. } => Verdict::Accept(Accepted::Media),
        Frame::Stop {
            account_sid,
            call_sid,
            ..
        } => {
            if account_sid == expected {
                Verdict::Accept(Accepted::Stop {
                    call_sid: *call_sid,
                })
            } else {
                Verdict::Close(CloseReason::StopAccountMismatch)
            }
        }
        Frame::Mark { .. } => Verdict::Accept(Accepted::Mark),
        Frame::Dtmf { .. } => Verdict::Accept(Accepted::Dtmf),
        Frame::Unknown => Verdict::Accept(Accepted::Unknown),
    }
}

/// Parses and judges one text frame.
pub fn judge_frame(
    frame: &[u8],
    expected: &AccountSid,
    policy: CallTokenPolicy,
    credentials: Option<&Credentials>,
    now: u64,
) -> Verdict {
    match parse_frame(frame) {
        Ok(parsed) => judge_parsed(&parsed, expected, policy, credentials, now),
        Err(reason) => Verdict::Close(reason),
    }
}
