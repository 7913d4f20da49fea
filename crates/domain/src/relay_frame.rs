//! ConversationRelay messages (Twilio to the application), parsed strictly into typed messages.
//!
//! The same bounds as a Media Streams frame (size, nesting, a JSON object, duplicate top-level keys
//! refused: `frame::bounded_object`), then the discriminator `type` and only the members that type
//! names, each of its documented JSON type (docs/conversation-relay.md, "The messages"). One parse
//! of the frame: every member is read as raw JSON first and typed only when its message needs it.
//! Everything here depends on the frame alone; the checks against the connection live in
//! [`RelayMessage::judge`].

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;

use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::frame::{bounded_object, string};
use super::reason::CloseReason;
use super::sid::{AccountSid, CallSid, SessionSid};

/// Longest digit string accepted for `durationUntilInterruptMs` as a string.
const MAX_DIGITS: usize = 20;

/// What a `setup` message proves about its session, once parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RelaySetup {
    /// `sessionId`.
    pub session_sid: SessionSid,
    /// `accountSid`.
    pub account_sid: AccountSid,
    /// `callSid`.
    pub call_sid: CallSid,
}

/// A parsed ConversationRelay message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelayMessage {
    /// `setup`: the first message of every session.
    Setup(RelaySetup),
    /// `prompt`: what the caller said (`last`: whether the utterance is complete).
    Prompt {
        /// `last` (absent: `false`).
        last: bool,
    },
    /// `dtmf`: a key press.
    Dtmf,
    /// `interrupt`: the caller spoke over the agent.
    Interrupt,
    /// `error`: Twilio reports an error in what the application sent.
    Error,
    /// `info`: debug information, sent only when the TwiML asks for it. Ignored.
    Info,
    /// A type Twilio may add later: ignored and counted.
    Unknown,
}

impl RelayMessage {
    /// The message type, as used in logs and metrics (`unknown` for unknown types: the name is
    /// attacker-chosen and not echoed).
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Setup(_) => "setup",
            Self::Prompt { .. } => "prompt",
            Self::Dtmf => "dtmf",
            Self::Interrupt => "interrupt",
            Self::Error => "error",
            Self::Info => "info",
            Self::Unknown => "unknown",
        }
    }

    /// Checks a message against the connection: a `setup` must name the account the handshake
    /// proved and the call its token was minted for. Every other message has nothing to check
    /// here (that a `setup` came first is the call-state step's rule).
    pub fn judge(self, account: &AccountSid, call: &CallSid) -> Result<Self, CloseReason> {
        match self {
            Self::Setup(s) if s.account_sid != *account => Err(CloseReason::SetupAccountMismatch),
            Self::Setup(s) if s.call_sid != *call => Err(CloseReason::SetupCallSidMismatch),
            other => Ok(other),
        }
    }
}

/// Every top-level member any message type reads, as raw JSON. A member named twice is a
/// duplicate-field error (the frame is refused as not JSON, as for Media Streams). A member that is
/// `null` is present (and of no type a message accepts), not absent: see [`present`].
#[derive(Deserialize)]
struct Members<'a> {
    #[serde(rename = "type", borrow, default, deserialize_with = "present")]
    kind: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    event: Option<&'a RawValue>,
    #[serde(rename = "sessionId", borrow, default, deserialize_with = "present")]
    session_id: Option<&'a RawValue>,
    #[serde(rename = "accountSid", borrow, default, deserialize_with = "present")]
    account_sid: Option<&'a RawValue>,
    #[serde(rename = "callSid", borrow, default, deserialize_with = "present")]
    call_sid: Option<&'a RawValue>,
    #[serde(
        rename = "parentCallSid",
        borrow,
        default,
        deserialize_with = "present"
    )]
    parent_call_sid: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    from: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    to: Option<&'a RawValue>,
    #[serde(
        rename = "forwardedFrom",
        borrow,
        default,
        deserialize_with = "present"
    )]
    forwarded_from: Option<&'a RawValue>,
    #[serde(rename = "callType", borrow, default, deserialize_with = "present")]
    call_type: Option<&'a RawValue>,
    #[serde(rename = "callerName", borrow, default, deserialize_with = "present")]
    caller_name: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    direction: Option<&'a RawValue>,
    #[serde(rename = "callStatus", borrow, default, deserialize_with = "present")]
    call_status: Option<&'a RawValue>,
    #[serde(
        rename = "customParameters",
        borrow,
        default,
        deserialize_with = "present"
    )]
    custom_parameters: Option<&'a RawValue>,
    #[serde(rename = "voicePrompt", borrow, default, deserialize_with = "present")]
    voice_prompt: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    lang: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    last: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    digit: Option<&'a RawValue>,
    #[serde(
        rename = "utteranceUntilInterrupt",
        borrow,
        default,
        deserialize_with = "present"
    )]
    utterance_until_interrupt: Option<&'a RawValue>,
    #[serde(
        rename = "durationUntilInterruptMs",
        borrow,
        default,
        deserialize_with = "present"
    )]
    duration_until_interrupt_ms: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    description: Option<&'a RawValue>,
}

/// Keeps a member's raw JSON even when it is `null` (an `Option<&RawValue>` alone would read `null`
/// as absent, and `"lang": null` would pass as a prompt without a language).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(d).map(Some)
}

/// Parses one ConversationRelay text frame. Every failure is a typed [`CloseReason`]; nothing here
/// panics or allocates in proportion to anything but the (bounded) frame.
pub fn parse_relay(frame: &[u8]) -> Result<RelayMessage, CloseReason> {
    bounded_object(frame)?;
    let m: Members<'_> = serde_json::from_slice(frame).map_err(|_| CloseReason::FrameNotJson)?;
    let Some(kind) = string(m.kind) else {
        return Err(match (m.kind, m.event) {
            (None, Some(_)) => CloseReason::ProtocolMismatch,
            _ => CloseReason::TypeMissing,
        });
    };
    match kind.as_ref() {
        "setup" => setup(&m).map(RelayMessage::Setup),
        "prompt" => {
            let last = optional_bool(m.last).ok_or(CloseReason::PromptMalformed)?;
            match (string(m.voice_prompt), optional_string(m.lang)) {
                (Some(_), true) => Ok(RelayMessage::Prompt { last }),
                _ => Err(CloseReason::PromptMalformed),
            }
        }
        "dtmf" => match string(m.digit).as_deref().map(str::as_bytes) {
            Some([d]) if d.is_ascii_digit() || b"*#ABCDabcd".contains(d) => Ok(RelayMessage::Dtmf),
            _ => Err(CloseReason::DtmfMalformed),
        },
        "interrupt" => {
            let said = string(m.utterance_until_interrupt).is_some();
            if said && whole_number(m.duration_until_interrupt_ms) {
                Ok(RelayMessage::Interrupt)
            } else {
                Err(CloseReason::InterruptMalformed)
            }
        }
        "error" => string(m.description)
            .map(|_| RelayMessage::Error)
            .ok_or(CloseReason::RelayErrorMalformed),
        "info" => Ok(RelayMessage::Info),
        _ => Ok(RelayMessage::Unknown),
    }
}

fn setup(m: &Members<'_>) -> Result<RelaySetup, CloseReason> {
    let (Some(session), Some(account), Some(call)) = (
        string(m.session_id),
        string(m.account_sid),
        string(m.call_sid),
    ) else {
        return Err(CloseReason::SetupMalformed);
    };
    let optional = [
        m.from,
        m.to,
        m.forwarded_from,
        m.call_type,
        m.caller_name,
        m.direction,
        m.call_status,
    ];
    let parent = m.parent_call_sid.map(|raw| string(Some(raw)));
    let parameters_ok = m
        .custom_parameters
        .is_none_or(|raw| serde_json::from_str::<StringMap>(raw.get()).is_ok());
    if !optional.into_iter().all(optional_string) || matches!(parent, Some(None)) || !parameters_ok
    {
        return Err(CloseReason::SetupMalformed);
    }
    // Twilio sends `parentCallSid` as "" for a call without a parent.
    let parent_ok = match parent.flatten() {
        Some(p) => p.is_empty() || CallSid::parse(&p).is_ok(),
        None => true,
    };
    match (
        SessionSid::parse(&session),
        AccountSid::parse(&account),
        CallSid::parse(&call),
    ) {
        (Ok(session_sid), Ok(account_sid), Ok(call_sid)) if parent_ok => Ok(RelaySetup {
            session_sid,
            account_sid,
            call_sid,
        }),
        _ => Err(CloseReason::SetupSidInvalid),
    }
}

/// Absent, or a string.
fn optional_string(raw: Option<&RawValue>) -> bool {
    raw.is_none_or(|r| string(Some(r)).is_some())
}

/// Absent (`false`), or a bool; `None` when present and not a bool.
fn optional_bool(raw: Option<&RawValue>) -> Option<bool> {
    match raw {
        None => Some(false),
        Some(r) => serde_json::from_str::<bool>(r.get()).ok(),
    }
}

/// A whole number of milliseconds: a JSON integer, or (as an older Twilio page shows it) a string
/// of at most 20 digits.
fn whole_number(raw: Option<&RawValue>) -> bool {
    let Some(raw) = raw else {
        return false;
    };
    serde_json::from_str::<u64>(raw.get()).is_ok()
        || string(Some(raw)).is_some_and(|s| {
            !s.is_empty() && s.len() <= MAX_DIGITS && s.bytes().all(|b| b.is_ascii_digit())
        })
}

/// `customParameters`: an object whose values are all strings, no key twice. (serde_json's own
/// maps keep the last of two equal keys without a word.)
struct StringMap;

impl<'de> Deserialize<'de> for StringMap {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(StringMapVisitor)
    }
}

struct StringMapVisitor;

impl<'de> Visitor<'de> for StringMapVisitor {
    type Value = StringMap;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object of strings")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<StringMap, A::Error> {
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            map.next_value::<Cow<'de, str>>()?;
            if !seen.insert(key) {
                return Err(serde::de::Error::custom("duplicate parameter"));
            }
        }
        Ok(StringMap)
    }
}

#[cfg(test)]
#[path = "relay_frame_tests.rs"]
mod tests;
