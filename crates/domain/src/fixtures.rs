//! Builders for the JSON messages Twilio sends on a Media Stream and on a ConversationRelay session,
//! exactly as docs/twilio.md and docs/conversation-relay.md show them. Used by the call simulator,
//! the tests and the benchmarks, so all of them speak one dialect.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::json;

use super::sid::{AccountSid, CallSid, SessionSid, StreamSid};

/// `{"event":"connected",...}`.
pub fn connected() -> String {
    json!({"event": "connected", "protocol": "Call", "version": "1.0.0"}).to_string()
}

/// A `start` message; `token` goes into `customParameters.token` when given.
pub fn start(
    account: &AccountSid,
    call: &CallSid,
    stream: &StreamSid,
    token: Option<&str>,
) -> String {
    let mut params = serde_json::Map::new();
    if let Some(t) = token {
        params.insert("token".into(), json!(t));
    }
    json!({
        "event": "start",
        "sequenceNumber": "1",
        "start": {
            "accountSid": account.as_str(),
            "streamSid": stream.as_str(),
            "callSid": call.as_str(),
            "tracks": ["inbound"],
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
            "customParameters": params,
        },
        "streamSid": stream.as_str(),
    })
    .to_string()
}

/// A `media` message carrying `audio` (mu-law bytes) as chunk `chunk`, 20 ms apart.
pub fn media(stream: &StreamSid, sequence: u64, chunk: u64, audio: &[u8]) -> String {
    json!({
        "event": "media",
        "sequenceNumber": sequence.to_string(),
        "media": {
            "track": "inbound",
            "chunk": chunk.to_string(),
            "timestamp": (100 + chunk * 20).to_string(),
            "payload": STANDARD.encode(audio),
        },
        "streamSid": stream.as_str(),
    })
    .to_string()
}

/// A `stop` message.
pub fn stop(account: &AccountSid, call: &CallSid, stream: &StreamSid, sequence: u64) -> String {
    json!({
        "event": "stop",
        "sequenceNumber": sequence.to_string(),
        "stop": {"accountSid": account.as_str(), "callSid": call.as_str()},
        "streamSid": stream.as_str(),
    })
    .to_string()
}

/// A `mark` message.
pub fn mark(stream: &StreamSid, sequence: u64, name: &str) -> String {
    json!({"event": "mark", "sequenceNumber": sequence.to_string(), "streamSid": stream.as_str(), "mark": {"name": name}})
        .to_string()
}

/// A `dtmf` message.
pub fn dtmf(stream: &StreamSid, sequence: u64, digit: char) -> String {
    json!({"event": "dtmf", "streamSid": stream.as_str(), "sequenceNumber": sequence.to_string(),
           "dtmf": {"track": "inbound_track", "digit": digit.to_string()}})
    .to_string()
}

/// A ConversationRelay `setup` for an inbound call.
pub fn relay_setup(session: &SessionSid, account: &AccountSid, call: &CallSid) -> String {
    json!({"type": "setup", "sessionId": session.as_str(), "accountSid": account.as_str(),
           "parentCallSid": "", "callSid": call.as_str(), "from": "+18005550100",
           "to": "+18005550101", "forwardedFrom": "", "callType": "PSTN", "callerName": "",
           "direction": "inbound", "callStatus": "RINGING",
           "customParameters": {"callReference": "fixture"}})
    .to_string()
}

/// A ConversationRelay `prompt` (`last`: the utterance is complete).
pub fn relay_prompt(text: &str, last: bool) -> String {
    json!({"type": "prompt", "voicePrompt": text, "lang": "en-US", "last": last}).to_string()
}

/// A ConversationRelay `dtmf`.
pub fn relay_dtmf(digit: char) -> String {
    json!({"type": "dtmf", "digit": digit.to_string()}).to_string()
}

/// A ConversationRelay `interrupt`.
pub fn relay_interrupt(utterance: &str, duration_ms: u64) -> String {
    json!({"type": "interrupt", "utteranceUntilInterrupt": utterance,
           "durationUntilInterruptMs": duration_ms})
    .to_string()
}

/// A ConversationRelay `error`.
pub fn relay_error(description: &str) -> String {
    json!({"type": "error", "description": description}).to_string()
}

/// The record the gate delivers for `frame`: the frame run through the real pipeline (parsed,
/// judged for the connection's `context` with call tokens off, the call-state step answering with `recorded`, the
/// connection's recorded start, or none as with call state off) and built for `connection`. For
/// tests and fixtures; panics when the pipeline would not deliver the frame.
pub fn delivered(
    frame: &str,
    context: &crate::connection_context::ConnectionContext,
    recorded: Option<crate::call_state::StartedCall>,
    connection: &crate::record::Connection<'_>,
) -> crate::record::DeliveryRecord {
    use crate::pipeline::{parse, Decision, StateStep};
    let judged = parse(frame, context.protocol())
        .and_then(|p| p.judge(context, crate::CallTokenPolicy::Off, None, 0))
        .unwrap_or_else(|reason| panic!("frame refused: {reason:?}"));
    match judged.decide(StateStep::Accept(recorded)) {
        Decision::Deliver(verified) => {
            crate::record::DeliveryRecord::of_frame(&verified, connection).expect("record")
        }
        other => panic!("frame not delivered: {other:?}"),
    }
}
