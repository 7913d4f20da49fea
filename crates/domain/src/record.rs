//! Record v1: what the gate delivers for each accepted frame of a verified call, for the end of
//! the connection, and for the end of a ConversationRelay session (`docs/records.md` is the
//! consumers' contract, `docs/record-v1.schema.json` its JSON Schema).
//!
//! A [`DeliveryRecord`] is made only from a [`VerifiedFrame`] (which only the verdict and the
//! call-state step make: see `pipeline`), for the end of a connection, or from a [`SessionEnd`]
//! (which the voice webhook makes only after the callback's signature verified); a `start`'s record has no
//! `start.customParameters.token` (the call token never leaves the gate). A sink that accepts only
//! this type cannot be handed a frame that skipped the checks.
//!
//! The builder runs for every frame (~50 per second per call) and reuses the verdict's parse: the
//! common case is one copy of the frame into a preallocated record. Only a `start` (once per
//! call) and a frame with line breaks are re-serialised.

use std::fmt;

use serde::Serialize;
use serde_json::Value;
use zeroize::Zeroize;

use super::pipeline::{CallSids, VerifiedFrame};
use super::protocol::Protocol;
use super::session_end::SessionEnd;
use super::sid::{AccountSid, CallSid, SessionSid, StreamSid};

/// The record format version, the `v` field.
pub const RECORD_VERSION: u8 = 1;

/// The `type` of a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RecordType {
    /// Twilio's `start`: the call's metadata, minus the call token.
    Start,
    /// Twilio's `media`: 20 ms of audio.
    Media,
    /// Twilio's `mark`: a mark the application sent has played.
    Mark,
    /// Twilio's `dtmf`: a key press.
    Dtmf,
    /// Twilio's `stop`: the stream ended.
    Stop,
    /// ConversationRelay `setup`: the session's metadata.
    Setup,
    /// ConversationRelay `prompt`: what the caller said.
    Prompt,
    /// ConversationRelay `interrupt`: the caller spoke over the agent.
    Interrupt,
    /// ConversationRelay `error`: Twilio reports an error in what the application sent.
    Error,
    /// The WebSocket connection closed (API Gateway's `$disconnect`); carries no Twilio frame.
    Disconnect,
    /// ConversationRelay: Twilio's `<Connect action>` callback after the session ended (posted to
    /// the voice webhook, not sent on the socket: no connection).
    SessionEnd,
}

impl RecordType {
    /// Every type, in the order of the documentation.
    pub const ALL: &'static [RecordType] = &[
        Self::Start,
        Self::Media,
        Self::Mark,
        Self::Dtmf,
        Self::Stop,
        Self::Setup,
        Self::Prompt,
        Self::Interrupt,
        Self::Error,
        Self::Disconnect,
        Self::SessionEnd,
    ];

    /// The `type` field's value (Twilio's event or message type, or `disconnect`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Start => "start",
            Self::Media => "media",
            Self::Mark => "mark",
            Self::Dtmf => "dtmf",
            Self::Stop => "stop",
            Self::Setup => "setup",
            Self::Prompt => "prompt",
            Self::Interrupt => "interrupt",
            Self::Error => "error",
            Self::Disconnect => "disconnect",
            Self::SessionEnd => "session_end",
        }
    }
}

impl fmt::Display for RecordType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the gate knows about the connection when it builds a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Connection<'a> {
    /// The connection's protocol (its authorizer context's).
    pub protocol: Protocol,
    /// API Gateway's connection id (also the Kinesis partition key).
    pub connection_id: &'a str,
    /// The `@connections` endpoint where the application answers (`https://{api}.execute-api.{region}.amazonaws.com/{stage}`).
    pub management_endpoint: &'a str,
    /// When the gate received the frame (or the disconnect), Unix milliseconds.
    pub received_at_ms: u64,
}

/// Why no record was built. A short code, never frame content. A verified frame's text was
/// checked whole by its parse, so this is a defensive refusal that the tests never reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecordError {
    /// The frame could not be written as JSON.
    #[error("frame_not_json")]
    FrameNotJson,
}

impl RecordError {
    /// The stable code used in logs.
    pub const fn code(self) -> &'static str {
        match self {
            Self::FrameNotJson => "frame_not_json",
        }
    }
}

/// One record, serialised: what a sink delivers. Made only from a [`VerifiedFrame`], for the end
/// of a connection, or from a verified [`SessionEnd`] callback; never from a string.
#[derive(Clone, PartialEq, Eq)]
pub struct DeliveryRecord {
    kind: RecordType,
    partition_key: Box<str>,
    json: String,
}

impl fmt::Debug for DeliveryRecord {
    /// Type and connection only: the record carries the caller's audio.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeliveryRecord")
            .field("kind", &self.kind)
            .field("partition_key", &self.partition_key)
            .field("bytes", &self.json.len())
            .finish()
    }
}

impl DeliveryRecord {
    /// The record of a verified frame: its SIDs, sequence number and type from the verdict, and
    /// the frame as Twilio sent it (a `start` without its call token). Never panics.
    pub fn of_frame(
        frame: &VerifiedFrame<'_>,
        connection: &Connection<'_>,
    ) -> Result<Self, RecordError> {
        let json = frame_json(frame, connection)?;
        Ok(Self::new(frame.kind(), connection, json))
    }

    /// The record of the connection's end (`$disconnect`), with the SIDs known of it.
    pub fn of_disconnect(
        sids: &CallSids,
        connection: &Connection<'_>,
    ) -> Result<Self, RecordError> {
        let head = Head::new(RecordType::Disconnect, sids, None, connection);
        let mut out = Vec::with_capacity(head_capacity(connection));
        write_head(&mut out, &head)?;
        out.push(b'}');
        Ok(Self::new(RecordType::Disconnect, connection, finish(out)?))
    }

    /// The record of a ConversationRelay session's end (`…/relay/ended`, signed): the call's SIDs,
    /// no connection (the socket is gone), and the session's fields under `twilio`. Its partition
    /// key is the CallSid: the socket's records have the connection id, so on a stream of several
    /// shards it may be read before the session's last messages.
    pub fn of_session_end(end: &SessionEnd, received_at_ms: u64) -> Result<Self, RecordError> {
        let head = Head {
            v: RECORD_VERSION,
            kind: RecordType::SessionEnd.as_str(),
            protocol: Protocol::ConversationRelay.as_str(),
            connection_id: None,
            management_endpoint: None,
            account_sid: end.account(),
            call_sid: Some(end.call()),
            stream_sid: None,
            session_sid: end.session(),
            sequence_number: None,
            received_at: received_at_ms,
        };
        let fields: serde_json::Map<String, Value> = end
            .fields()
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Value::from(v.as_str())))
            .collect();
        let mut out = Vec::with_capacity(HEAD_BYTES);
        write_head(&mut out, &head)?;
        out.extend_from_slice(b",\"twilio\":");
        serde_json::to_writer(&mut out, &fields).map_err(|_| RecordError::FrameNotJson)?;
        out.push(b'}');
        Ok(Self {
            kind: RecordType::SessionEnd,
            partition_key: end.call().as_str().into(),
            json: finish(out)?,
        })
    }

    fn new(kind: RecordType, connection: &Connection<'_>, json: String) -> Self {
        Self {
            kind,
            partition_key: connection.connection_id.into(),
            json,
        }
    }

    /// The record's `type`.
    pub fn kind(&self) -> RecordType {
        self.kind
    }

    /// The Kinesis partition key: the connection id (the CallSid for `session_end`).
    pub fn partition_key(&self) -> &str {
        &self.partition_key
    }

    /// The record as one line of JSON (no line break in it).
    pub fn json(&self) -> &str {
        &self.json
    }

    /// The record's JSON text, taken out.
    pub fn into_json(self) -> String {
        self.json
    }
}

/// The fields the record has before `twilio`, in the documented order.
#[derive(Serialize)]
struct Head<'a> {
    v: u8,
    #[serde(rename = "type")]
    kind: &'static str,
    protocol: &'static str,
    #[serde(rename = "connectionId", skip_serializing_if = "Option::is_none")]
    connection_id: Option<&'a str>,
    #[serde(rename = "managementEndpoint", skip_serializing_if = "Option::is_none")]
    management_endpoint: Option<&'a str>,
    #[serde(rename = "accountSid")]
    account_sid: &'a AccountSid,
    #[serde(rename = "callSid", skip_serializing_if = "Option::is_none")]
    call_sid: Option<&'a CallSid>,
    #[serde(rename = "streamSid", skip_serializing_if = "Option::is_none")]
    stream_sid: Option<&'a StreamSid>,
    #[serde(rename = "sessionId", skip_serializing_if = "Option::is_none")]
    session_sid: Option<&'a SessionSid>,
    #[serde(rename = "sequenceNumber", skip_serializing_if = "Option::is_none")]
    sequence_number: Option<&'a str>,
    #[serde(rename = "receivedAt")]
    received_at: u64,
}

impl<'a> Head<'a> {
    fn new(
        kind: RecordType,
        sids: &'a CallSids,
        sequence_number: Option<&'a str>,
        connection: &Connection<'a>,
    ) -> Self {
        Self {
            v: RECORD_VERSION,
            kind: kind.as_str(),
            protocol: connection.protocol.as_str(),
            connection_id: Some(connection.connection_id),
            management_endpoint: Some(connection.management_endpoint),
            account_sid: &sids.account,
            call_sid: sids.call.as_ref(),
            stream_sid: sids.stream.as_ref(),
            session_sid: sids.session.as_ref(),
            sequence_number,
            received_at: connection.received_at_ms,
        }
    }
}

/// Room for the head's fields besides the connection id and endpoint (SIDs, numbers, names).
const HEAD_BYTES: usize = 320;

fn head_capacity(connection: &Connection<'_>) -> usize {
    HEAD_BYTES + connection.connection_id.len() + connection.management_endpoint.len()
}

fn is_json_whitespace(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

/// The record of a verified frame as one line of JSON: the head, then the frame under `twilio`.
/// The frame's text was parsed whole by the verdict (one JSON object, nothing after it), which is
/// what makes copying it verbatim safe.
fn frame_json(
    frame: &VerifiedFrame<'_>,
    connection: &Connection<'_>,
) -> Result<String, RecordError> {
    let head = Head::new(
        frame.kind(),
        frame.sids(),
        frame.sequence_number(),
        connection,
    );
    let text = frame.text().trim_matches(is_json_whitespace);
    let mut out = Vec::with_capacity(head_capacity(connection) + text.len());
    write_head(&mut out, &head)?;
    out.extend_from_slice(b",\"twilio\":");
    if frame.kind() == RecordType::Start {
        // Once per call: rebuild the frame without the call token.
        let mut value: Value = serde_json::from_str(text).map_err(|_| RecordError::FrameNotJson)?;
        remove_call_token(&mut value);
        serde_json::to_writer(&mut out, &value).map_err(|_| RecordError::FrameNotJson)?;
    } else if text.bytes().any(|b| b == b'\n' || b == b'\r') {
        // A line break between tokens (never inside a string: JSON forbids that) would split a
        // JSON-lines file: write the frame compactly instead.
        let value: Value = serde_json::from_str(text).map_err(|_| RecordError::FrameNotJson)?;
        serde_json::to_writer(&mut out, &value).map_err(|_| RecordError::FrameNotJson)?;
    } else {
        out.extend_from_slice(text.as_bytes());
    }
    out.push(b'}');
    finish(out)
}

/// Writes `head` as an object without its closing brace.
fn write_head(out: &mut Vec<u8>, head: &Head<'_>) -> Result<(), RecordError> {
    serde_json::to_writer(&mut *out, head).map_err(|_| RecordError::FrameNotJson)?;
    // `to_writer` of a struct always ends with the object's `}`.
    if out.pop() != Some(b'}') {
        return Err(RecordError::FrameNotJson);
    }
    Ok(())
}

fn finish(out: Vec<u8>) -> Result<String, RecordError> {
    // Every byte came from `&str`s or serde_json's output: valid UTF-8.
    String::from_utf8(out).map_err(|_| RecordError::FrameNotJson)
}

/// Removes `start.customParameters.token` (every copy: with duplicate keys the parse kept only the
/// last `start`, `customParameters` and `token`, and only the parsed value is written), wiping it.
fn remove_call_token(frame: &mut Value) {
    let params = frame
        .get_mut("start")
        .and_then(|s| s.get_mut("customParameters"))
        .and_then(Value::as_object_mut);
    if let Some(params) = params {
        if let Some(token) = params.remove("token") {
            wipe(token);
        }
    }
}

fn wipe(value: Value) {
    match value {
        Value::String(mut s) => s.zeroize(),
        Value::Array(items) => items.into_iter().for_each(wipe),
        Value::Object(map) => map.into_iter().for_each(|(_, v)| wipe(v)),
        _ => {}
    }
}

#[cfg(test)]
#[path = "record_tests.rs"]
mod tests;
