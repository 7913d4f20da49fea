//! Record v1: what the gate delivers for each accepted frame of a verified call, and for the end of
//! the connection (`docs/records.md` is the consumers' contract, `docs/record-v1.schema.json` its
//! JSON Schema).
//!
//! A [`DeliveryRecord`] can only be made by [`DeliveryRecord::build`], which removes
//! `start.customParameters.token` (the call token never leaves the gate): a sink that accepts only
//! this type cannot be handed a frame that skipped the builder.
//!
//! The builder runs for every frame (~50 per second per call), so the common case is one parse of
//! the frame's top level into borrowed fields and one copy of the frame into a preallocated
//! record. Only a `start` (once per call) and a frame with line breaks are re-serialised.

use std::borrow::Cow;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;
use zeroize::Zeroize;

use super::sid::{AccountSid, CallSid, StreamSid};

/// The record format version, the `v` field.
pub const RECORD_VERSION: u8 = 1;

/// Longest `sequenceNumber` a record carries (the gate's own frame check allows 20 digits).
const MAX_SEQUENCE_DIGITS: usize = 20;

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
    /// The WebSocket connection closed (API Gateway's `$disconnect`); carries no Twilio frame.
    Disconnect,
}

impl RecordType {
    /// Every type, in the order of the documentation.
    pub const ALL: &'static [RecordType] = &[
        Self::Start,
        Self::Media,
        Self::Mark,
        Self::Dtmf,
        Self::Stop,
        Self::Disconnect,
    ];

    /// The `type` field's value (Twilio's event name, or `disconnect`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Start => "start",
            Self::Media => "media",
            Self::Mark => "mark",
            Self::Dtmf => "dtmf",
            Self::Stop => "stop",
            Self::Disconnect => "disconnect",
        }
    }

    /// The record type of a Twilio event name; `None` for `connected` (it precedes `start`, so
    /// nothing about the call is verified yet, and it carries nothing but the protocol version) and
    /// for event names Record v1 does not know.
    pub fn of_event(event: &str) -> Option<Self> {
        match event {
            "start" => Some(Self::Start),
            "media" => Some(Self::Media),
            "mark" => Some(Self::Mark),
            "dtmf" => Some(Self::Dtmf),
            "stop" => Some(Self::Stop),
            _ => None,
        }
    }
}

impl fmt::Display for RecordType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the gate knows about the connection and the call when it builds a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordMeta<'a> {
    /// API Gateway's connection id (also the Kinesis partition key).
    pub connection_id: &'a str,
    /// The `@connections` endpoint where the application answers (`https://{api}.execute-api.{region}.amazonaws.com/{stage}`).
    pub management_endpoint: &'a str,
    /// The account the handshake proved.
    pub account_sid: AccountSid,
    /// The call, when known (from the verified `start` or the call state).
    pub call_sid: Option<CallSid>,
    /// The stream, when known; otherwise the frame's own top-level `streamSid` is used when it is
    /// a stream SID.
    pub stream_sid: Option<StreamSid>,
    /// When the gate received the frame (or the disconnect), Unix milliseconds.
    pub received_at_ms: u64,
}

/// Why no record was built. A short code, never frame content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecordError {
    /// The frame is not one JSON object (the gate refuses such frames before this point).
    #[error("frame_not_json")]
    FrameNotJson,
    /// `connected`, an unknown event name, or no event name: Record v1 has no record for it.
    #[error("event_not_recorded")]
    EventNotRecorded,
    /// A Twilio frame without a `sequenceNumber` string of digits.
    #[error("sequence_number_invalid")]
    SequenceNumberInvalid,
}

impl RecordError {
    /// The stable code used in logs.
    pub const fn code(self) -> &'static str {
        match self {
            Self::FrameNotJson => "frame_not_json",
            Self::EventNotRecorded => "event_not_recorded",
            Self::SequenceNumberInvalid => "sequence_number_invalid",
        }
    }
}

/// One record, serialised: what a sink delivers. Made only by [`DeliveryRecord::build`].
#[derive(Clone, PartialEq, Eq)]
pub struct DeliveryRecord {
    kind: RecordType,
    connection_id: Box<str>,
    json: String,
}

impl fmt::Debug for DeliveryRecord {
    /// Type and connection only: the record carries the caller's audio.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeliveryRecord")
            .field("kind", &self.kind)
            .field("connection_id", &self.connection_id)
            .field("bytes", &self.json.len())
            .finish()
    }
}

impl DeliveryRecord {
    /// Builds the record of `frame` (the accepted frame's text as Twilio sent it), or of the
    /// connection's end when `frame` is `None`. Never panics, whatever `frame` holds.
    pub fn build(meta: &RecordMeta<'_>, frame: Option<&str>) -> Result<Self, RecordError> {
        let (kind, json) = build_json(meta, frame)?;
        Ok(Self {
            kind,
            connection_id: meta.connection_id.into(),
            json,
        })
    }

    /// The record's `type`.
    pub fn kind(&self) -> RecordType {
        self.kind
    }

    /// The connection id: the Kinesis partition key.
    pub fn partition_key(&self) -> &str {
        &self.connection_id
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

/// Builds the record of `frame` (or of the disconnect, for `None`) as one line of JSON.
/// See [`DeliveryRecord::build`].
pub fn build_record(meta: &RecordMeta<'_>, frame: Option<&str>) -> Result<String, RecordError> {
    build_json(meta, frame).map(|(_, json)| json)
}

/// The fields the record has before `twilio`, in the documented order.
#[derive(Serialize)]
struct Head<'a> {
    v: u8,
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(rename = "connectionId")]
    connection_id: &'a str,
    #[serde(rename = "managementEndpoint")]
    management_endpoint: &'a str,
    #[serde(rename = "accountSid")]
    account_sid: &'a AccountSid,
    #[serde(rename = "callSid", skip_serializing_if = "Option::is_none")]
    call_sid: Option<&'a CallSid>,
    #[serde(rename = "streamSid", skip_serializing_if = "Option::is_none")]
    stream_sid: Option<&'a StreamSid>,
    #[serde(rename = "sequenceNumber", skip_serializing_if = "Option::is_none")]
    sequence_number: Option<&'a str>,
    #[serde(rename = "receivedAt")]
    received_at: u64,
}

/// The top level of a frame, borrowed. Deserialising it reads (and so validates) the whole frame;
/// members other than these are skipped without allocation.
#[derive(Deserialize)]
struct Top<'a> {
    #[serde(borrow)]
    event: Option<&'a RawValue>,
    #[serde(rename = "sequenceNumber", borrow)]
    sequence_number: Option<&'a RawValue>,
    #[serde(rename = "streamSid", borrow)]
    stream_sid: Option<&'a RawValue>,
}

/// A JSON string, borrowed from the frame when it has no escapes (as `frame::string` does); `None`
/// when the value is not a string.
fn string(raw: Option<&RawValue>) -> Option<Cow<'_, str>> {
    let raw = raw?.get();
    match serde_json::from_str::<&str>(raw) {
        Ok(s) => Some(Cow::Borrowed(s)),
        Err(_) => serde_json::from_str::<String>(raw).ok().map(Cow::Owned),
    }
}

/// Room for the head's fields besides the connection id and endpoint (SIDs, numbers, names).
const HEAD_BYTES: usize = 320;

fn is_json_whitespace(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

fn build_json(
    meta: &RecordMeta<'_>,
    frame: Option<&str>,
) -> Result<(RecordType, String), RecordError> {
    let mut head = Head {
        v: RECORD_VERSION,
        kind: RecordType::Disconnect.as_str(),
        connection_id: meta.connection_id,
        management_endpoint: meta.management_endpoint,
        account_sid: &meta.account_sid,
        call_sid: meta.call_sid.as_ref(),
        stream_sid: meta.stream_sid.as_ref(),
        sequence_number: None,
        received_at: meta.received_at_ms,
    };
    let capacity = HEAD_BYTES
        + meta.connection_id.len()
        + meta.management_endpoint.len()
        + frame.map_or(0, str::len);
    let mut out = Vec::with_capacity(capacity);
    let Some(frame) = frame else {
        write_head(&mut out, &head)?;
        out.push(b'}');
        return finish(RecordType::Disconnect, out);
    };

    // Deserialising `Top` checks that the whole frame is one JSON object (serde_json parses the
    // members it skips and refuses trailing characters), which is what makes copying it verbatim
    // below safe.
    let top: Top<'_> = serde_json::from_str(frame).map_err(|_| RecordError::FrameNotJson)?;
    let kind = string(top.event)
        .as_deref()
        .and_then(RecordType::of_event)
        .ok_or(RecordError::EventNotRecorded)?;
    let sequence = string(top.sequence_number);
    let sequence = sequence
        .as_deref()
        .filter(|s| {
            !s.is_empty() && s.len() <= MAX_SEQUENCE_DIGITS && s.bytes().all(|b| b.is_ascii_digit())
        })
        .ok_or(RecordError::SequenceNumberInvalid)?;
    let frame_stream = match meta.stream_sid {
        Some(_) => None,
        None => string(top.stream_sid).and_then(|s| StreamSid::parse(&s).ok()),
    };
    head.kind = kind.as_str();
    head.sequence_number = Some(sequence);
    if head.stream_sid.is_none() {
        head.stream_sid = frame_stream.as_ref();
    }
    write_head(&mut out, &head)?;
    out.extend_from_slice(b",\"twilio\":");

    let frame = frame.trim_matches(is_json_whitespace);
    if kind == RecordType::Start {
        // Once per call: rebuild the frame without the call token.
        let mut value: Value =
            serde_json::from_str(frame).map_err(|_| RecordError::FrameNotJson)?;
        remove_call_token(&mut value);
        serde_json::to_writer(&mut out, &value).map_err(|_| RecordError::FrameNotJson)?;
    } else if frame.bytes().any(|b| b == b'\n' || b == b'\r') {
        // A line break between tokens (never inside a string: JSON forbids that) would split a
        // JSON-lines file: write the frame compactly instead.
        let value: Value = serde_json::from_str(frame).map_err(|_| RecordError::FrameNotJson)?;
        serde_json::to_writer(&mut out, &value).map_err(|_| RecordError::FrameNotJson)?;
    } else {
        out.extend_from_slice(frame.as_bytes());
    }
    out.push(b'}');
    finish(kind, out)
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

fn finish(kind: RecordType, out: Vec<u8>) -> Result<(RecordType, String), RecordError> {
    // Every byte came from `&str`s or serde_json's output: valid UTF-8.
    String::from_utf8(out)
        .map(|json| (kind, json))
        .map_err(|_| RecordError::FrameNotJson)
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
mod tests {
    use super::*;
    use crate::messages;

    const AC: &str = "ACdeadbeefdeadbeefdeadbeefdeadbeef";
    const CA: &str = "CAffeeddccbbaa99887766554433221100";
    const MZ: &str = "MZ00112233445566778899aabbccddeeff";
    const TOKEN: &str = "v1.4102444800.pSZH3eosU1kCJgp4JojDwlVr-gZachD1ymlCozurunw";

    fn sids() -> (AccountSid, CallSid, StreamSid) {
        (
            AccountSid::parse(AC).expect("ac"),
            CallSid::parse(CA).expect("ca"),
            StreamSid::parse(MZ).expect("mz"),
        )
    }

    fn meta(call: bool, stream: bool) -> RecordMeta<'static> {
        let (ac, ca, mz) = sids();
        RecordMeta {
            connection_id: "Xk2TmdKPIAMCJqw=",
            management_endpoint: "https://abc123.execute-api.us-east-1.amazonaws.com/prod",
            account_sid: ac,
            call_sid: call.then_some(ca),
            stream_sid: stream.then_some(mz),
            received_at_ms: 1_795_881_601_000,
        }
    }

    fn record(meta: &RecordMeta<'_>, frame: Option<&str>) -> Value {
        let text = build_record(meta, frame).expect("record");
        assert!(!text.contains('\n') && !text.contains('\r'), "{text}");
        serde_json::from_str(&text).expect("record is JSON")
    }

    #[test]
    fn media_record_carries_the_frame_verbatim() {
        let (_, _, mz) = sids();
        let frame = messages::media(&mz, 2, 1, &[0xff; 160]);
        let text = build_record(&meta(true, true), Some(&frame)).expect("record");
        let expected_head = format!(
            r#"{{"v":1,"type":"media","connectionId":"Xk2TmdKPIAMCJqw=","managementEndpoint":"https://abc123.execute-api.us-east-1.amazonaws.com/prod","accountSid":"{AC}","callSid":"{CA}","streamSid":"{MZ}","sequenceNumber":"2","receivedAt":1795881601000,"twilio":"#
        );
        assert_eq!(text, format!("{expected_head}{frame}}}"));
    }

    #[test]
    fn start_record_has_no_call_token_and_keeps_other_parameters() {
        let (ac, ca, mz) = sids();
        let frame = messages::start(&ac, &ca, &mz, Some(TOKEN)).replace(
            "\"customParameters\":{",
            "\"customParameters\":{\"agent\":\"sales\",",
        );
        let text = build_record(&meta(true, true), Some(&frame)).expect("record");
        assert!(!text.contains(TOKEN), "{text}");
        let v: Value = serde_json::from_str(&text).expect("json");
        assert_eq!(v["type"], "start");
        assert_eq!(v["sequenceNumber"], "1");
        assert_eq!(
            v["twilio"]["start"]["customParameters"],
            serde_json::json!({"agent": "sales"})
        );
        assert_eq!(v["twilio"]["start"]["callSid"], CA);
        // The rest of the frame is unchanged.
        let mut original: Value = serde_json::from_str(&frame).expect("json");
        if let Some(p) = original["start"]["customParameters"].as_object_mut() {
            p.remove("token");
        }
        assert_eq!(v["twilio"], original);
    }

    #[test]
    fn every_spelling_and_copy_of_the_token_is_removed() {
        let frames = [
            // Escaped key.
            format!(
                r#"{{"event":"start","sequenceNumber":"1","start":{{"customParameters":{{"\u0074oken":"{TOKEN}"}}}},"streamSid":"{MZ}"}}"#
            ),
            // Repeated key: serde keeps the last, and only the parsed value is written.
            format!(
                r#"{{"event":"start","sequenceNumber":"1","start":{{"customParameters":{{"token":"{TOKEN}","token":"{TOKEN}"}}}},"streamSid":"{MZ}"}}"#
            ),
            // Repeated start.
            format!(
                r#"{{"event":"start","sequenceNumber":"1","start":{{"customParameters":{{"token":"{TOKEN}"}}}},"start":{{"customParameters":{{"token":"{TOKEN}"}}}}}}"#
            ),
            // Line breaks between tokens.
            format!(
                "{{\n\"event\":\"start\",\r\n\"sequenceNumber\":\"1\",\"start\":{{\"customParameters\":{{\"token\":\"{TOKEN}\"}}}}}}\n"
            ),
        ];
        for frame in &frames {
            let text = build_record(&meta(true, true), Some(frame)).expect("record");
            assert!(!text.contains(TOKEN), "{frame} -> {text}");
            assert!(!text.contains("\"token\""), "{frame} -> {text}");
        }
    }

    #[test]
    fn a_start_without_parameters_is_recorded_as_sent() {
        let frame = format!(
            r#"{{"event":"start","sequenceNumber":"1","start":{{"callSid":"{CA}"}},"streamSid":"{MZ}"}}"#
        );
        let v = record(&meta(true, true), Some(&frame));
        assert_eq!(
            v["twilio"],
            serde_json::from_str::<Value>(&frame).expect("json")
        );
    }

    #[test]
    fn each_type_of_record() {
        let (ac, ca, mz) = sids();
        let cases = [
            (messages::mark(&mz, 4, "greeting"), "mark", "4"),
            (messages::dtmf(&mz, 5, '1'), "dtmf", "5"),
            (messages::stop(&ac, &ca, &mz, 378), "stop", "378"),
        ];
        for (frame, kind, seq) in &cases {
            let v = record(&meta(true, true), Some(frame));
            assert_eq!(v["type"], *kind);
            assert_eq!(v["sequenceNumber"], *seq);
            assert_eq!(
                v["twilio"],
                serde_json::from_str::<Value>(frame).expect("json")
            );
            let built = DeliveryRecord::build(&meta(true, true), Some(frame)).expect("built");
            assert_eq!(built.kind().as_str(), *kind);
            assert_eq!(built.partition_key(), "Xk2TmdKPIAMCJqw=");
        }
    }

    #[test]
    fn disconnect_record_has_no_frame_and_no_sequence_number() {
        let text = build_record(&meta(true, true), None).expect("record");
        assert_eq!(
            text,
            format!(
                r#"{{"v":1,"type":"disconnect","connectionId":"Xk2TmdKPIAMCJqw=","managementEndpoint":"https://abc123.execute-api.us-east-1.amazonaws.com/prod","accountSid":"{AC}","callSid":"{CA}","streamSid":"{MZ}","receivedAt":1795881601000}}"#
            )
        );
        let v = record(&meta(false, false), None);
        assert!(v.get("callSid").is_none() && v.get("streamSid").is_none());
    }

    #[test]
    fn stream_sid_falls_back_to_the_frames_own() {
        let (_, _, mz) = sids();
        let frame = messages::media(&mz, 9, 8, &[0; 160]);
        let v = record(&meta(false, false), Some(&frame));
        assert_eq!(v["streamSid"], MZ);
        assert!(v.get("callSid").is_none());
        // What the gate knows wins over the frame.
        let other = StreamSid::parse("MZffffffffffffffffffffffffffffffff").expect("mz");
        let m = RecordMeta {
            stream_sid: Some(other),
            ..meta(false, false)
        };
        assert_eq!(record(&m, Some(&frame))["streamSid"], other.as_str());
        // A frame stream SID that is not one is left out.
        let bad = frame.replace(MZ, "MZnothex");
        assert!(record(&meta(false, false), Some(&bad))
            .get("streamSid")
            .is_none());
    }

    #[test]
    fn connected_and_unknown_events_have_no_record() {
        for frame in [
            messages::connected(),
            r#"{"event":"telemetry","sequenceNumber":"3"}"#.to_owned(),
            r#"{"sequenceNumber":"3"}"#.to_owned(),
            r#"{"event":5,"sequenceNumber":"3"}"#.to_owned(),
        ] {
            assert_eq!(
                build_record(&meta(true, true), Some(&frame)),
                Err(RecordError::EventNotRecorded),
                "{frame}"
            );
        }
    }

    #[test]
    fn hostile_frames_are_errors_not_panics() {
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        let long_seq = format!(
            r#"{{"event":"media","sequenceNumber":"{}"}}"#,
            "9".repeat(21)
        );
        let cases: Vec<(&str, RecordError)> = vec![
            ("", RecordError::FrameNotJson),
            ("{", RecordError::FrameNotJson),
            ("[]", RecordError::FrameNotJson),
            ("\"media\"", RecordError::FrameNotJson),
            (r#"{"event":"media"} x"#, RecordError::FrameNotJson),
            (r#"{"event":"media","x":[}"#, RecordError::FrameNotJson),
            (&deep, RecordError::FrameNotJson),
            (r#"{"event":"media"}"#, RecordError::SequenceNumberInvalid),
            (
                r#"{"event":"media","sequenceNumber":2}"#,
                RecordError::SequenceNumberInvalid,
            ),
            (
                r#"{"event":"media","sequenceNumber":"-2"}"#,
                RecordError::SequenceNumberInvalid,
            ),
            (
                r#"{"event":"media","sequenceNumber":""}"#,
                RecordError::SequenceNumberInvalid,
            ),
            (&long_seq, RecordError::SequenceNumberInvalid),
            (
                r#"{"event":"stop","event":"stop","sequenceNumber":"1"}"#,
                RecordError::FrameNotJson,
            ),
        ];
        for (frame, want) in cases {
            assert_eq!(
                build_record(&meta(true, true), Some(frame)),
                Err(want),
                "{frame}"
            );
        }
    }

    #[test]
    fn escaped_names_and_odd_whitespace_still_make_one_valid_line() {
        let frame = format!(
            " {{\"event\":\"\\u006dark\",\t\"sequenceNumber\":\"\\u0034\",\"streamSid\":\"{MZ}\",\"mark\":{{\"name\":\"a\\nb\"}}}} "
        );
        let v = record(&meta(true, true), Some(&frame));
        assert_eq!(v["type"], "mark");
        assert_eq!(v["sequenceNumber"], "4");
        assert_eq!(v["twilio"]["mark"]["name"], "a\nb");
    }

    #[test]
    fn connection_id_and_endpoint_are_escaped() {
        let m = RecordMeta {
            connection_id: "a\"b\\c\n",
            management_endpoint: "http://127.0.0.1:9/dev",
            ..meta(true, true)
        };
        let v = record(&m, None);
        assert_eq!(v["connectionId"], "a\"b\\c\n");
    }

    #[test]
    fn debug_shows_no_content() {
        let (_, _, mz) = sids();
        let frame = messages::media(&mz, 2, 1, &[0x55; 160]);
        let r = DeliveryRecord::build(&meta(true, true), Some(&frame)).expect("record");
        let debug = format!("{r:?}");
        assert!(
            !debug.contains("payload") && !debug.contains("VVVV"),
            "{debug}"
        );
        assert!(debug.contains("Media"), "{debug}");
    }

    #[test]
    fn each_error_has_its_stable_code() {
        let cases = [
            (RecordError::FrameNotJson, "frame_not_json"),
            (RecordError::EventNotRecorded, "event_not_recorded"),
            (
                RecordError::SequenceNumberInvalid,
                "sequence_number_invalid",
            ),
        ];
        for (error, code) in cases {
            assert_eq!(error.code(), code);
            assert_eq!(error.to_string(), code);
        }
    }

    #[test]
    fn each_type_displays_as_its_type_field() {
        let shown: Vec<String> = RecordType::ALL.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            ["start", "media", "mark", "dtmf", "stop", "disconnect"]
        );
        for kind in RecordType::ALL {
            assert_eq!(kind.to_string(), kind.as_str());
        }
    }

    #[test]
    fn the_delivery_record_holds_the_built_json() {
        let (_, _, mz) = sids();
        let frame = messages::mark(&mz, 4, "greeting");
        let m = meta(true, true);
        let expected = build_record(&m, Some(&frame)).expect("record");
        let built = DeliveryRecord::build(&m, Some(&frame)).expect("built");
        assert_eq!(built.kind(), RecordType::Mark);
        assert_eq!(built.json(), expected);
        assert_eq!(built.into_json(), expected);
        let end = DeliveryRecord::build(&m, None).expect("built");
        assert_eq!(end.kind(), RecordType::Disconnect);
        assert_eq!(end.json(), build_record(&m, None).expect("record"));
    }

    #[test]
    fn a_one_line_frame_is_copied_as_sent_without_surrounding_whitespace() {
        // Spaces inside and an escape: not how serde_json would write it, so a re-serialised
        // frame would differ from this one.
        let inner = format!(
            r#"{{"event": "mark", "sequenceNumber": "4", "streamSid": "{MZ}", "mark": {{"name": "\u0041"}}}}"#
        );
        let frame = format!(" \t {inner}\t ");
        let text = build_record(&meta(true, true), Some(&frame)).expect("record");
        let expected_head = format!(
            r#"{{"v":1,"type":"mark","connectionId":"Xk2TmdKPIAMCJqw=","managementEndpoint":"https://abc123.execute-api.us-east-1.amazonaws.com/prod","accountSid":"{AC}","callSid":"{CA}","streamSid":"{MZ}","sequenceNumber":"4","receivedAt":1795881601000,"twilio":"#
        );
        assert_eq!(text, format!("{expected_head}{inner}}}"));
    }

    #[test]
    fn a_frame_with_only_one_kind_of_line_break_is_written_on_one_line() {
        for line_break in ["\n", "\r"] {
            let frame = format!(
                r#"{{"event":"mark",{line_break}"sequenceNumber":"4","mark":{{"name":"x"}}}}"#
            );
            // `record` refuses any line break in the record.
            let v = record(&meta(true, true), Some(&frame));
            assert_eq!(
                v["twilio"],
                serde_json::json!({"event": "mark", "sequenceNumber": "4", "mark": {"name": "x"}}),
                "{line_break:?}"
            );
        }
    }

    /// Not a timing test: the hot path allocates the output once, sized up front, so building a
    /// media record never reallocates (a reallocation would change the capacity).
    #[test]
    fn media_record_is_built_in_one_preallocated_buffer() {
        let (_, _, mz) = sids();
        let frame = messages::media(&mz, 2, 1, &[0xff; 160]);
        let m = meta(true, true);
        let text = build_record(&m, Some(&frame)).expect("record");
        let expected_capacity =
            HEAD_BYTES + m.connection_id.len() + m.management_endpoint.len() + frame.len();
        assert_eq!(text.capacity(), expected_capacity);
        assert!(text.len() <= expected_capacity);
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn check(frame: &str) {
            if let Ok(text) = build_record(&meta(false, false), Some(frame)) {
                assert!(!text.contains('\n') && !text.contains('\r'));
                let v: Value = serde_json::from_str(&text).expect("record is JSON");
                assert!(v["twilio"].is_object());
            }
        }

        proptest! {
            #[test]
            fn any_text_is_a_record_or_an_error(frame in ".{0,200}") {
                check(&frame);
            }

            #[test]
            fn near_frames_are_a_record_or_an_error(
                event in "(start|media|mark|dtmf|stop|connected|x)",
                seq in "[0-9a]{0,3}",
                extra in "[\\[\\]{}\",:0-9a-z \n]{0,40}",
            ) {
                check(&format!(r#"{{"event":"{event}","sequenceNumber":"{seq}",{extra}}}"#));
                check(&format!(r#"{{"event":"{event}","sequenceNumber":"{seq}","x":{extra}}}"#));
            }

            #[test]
            fn no_call_token_survives(mac in "[A-Za-z0-9_-]{8,80}", other in "[a-z]{1,8}") {
                // "v1." appears nowhere else in a record.
                let token = format!("v1.{mac}");
                let frame = format!(
                    r#"{{"event":"start","sequenceNumber":"1","start":{{"customParameters":{{"{other}":"x","token":"{token}"}}}},"streamSid":"{MZ}"}}"#
                );
                let text = build_record(&meta(true, true), Some(&frame)).expect("record");
                prop_assert!(!text.contains(&token));
            }
        }
    }
}
