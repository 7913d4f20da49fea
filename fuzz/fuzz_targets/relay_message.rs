//! Any bytes as a ConversationRelay message: a typed message or a reason, never a panic. Whatever
//! is accepted has a string `type`; an accepted `setup` carries the SIDs its frame holds, and
//! `judge` admits it for that account and call and refuses another account. The two grammars name
//! the other protocol consistently: a frame Media Streams calls a ConversationRelay message
//! (`protocol_mismatch`) has a `type`, so ConversationRelay neither calls it Media Streams nor
//! typeless; and the reverse. Through the pipeline, on a connection whose context pins an
//! account and a call: the pipeline accepts what the grammar and `judge` accept, and a delivered
//! message makes a one-line record of that protocol, naming the context's call.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde::Deserialize;
use stream_gate_domain::connection_context::ConnectionContext;
use stream_gate_domain::pipeline::{self, Decision, StateStep};
use stream_gate_domain::record::{Connection, DeliveryRecord};
use stream_gate_domain::{
    parse_frame, parse_relay, Accepted, CallSid, CallTokenPolicy, CloseReason, Protocol,
    RelayMessage,
};
use stream_gate_fuzz::expected_account;

/// The members the oracle reads, independently of the grammar. (Not a `serde_json::Value`: members
/// no message reads are only checked to be JSON, and a `Value` would also decode their escapes.)
#[derive(Deserialize)]
struct Claimed {
    #[serde(rename = "type")]
    kind: String,
    #[serde(rename = "sessionId")]
    session_id: Option<String>,
    #[serde(rename = "accountSid")]
    account_sid: Option<String>,
    #[serde(rename = "callSid")]
    call_sid: Option<String>,
}

/// Only the discriminator (an accepted unknown type may carry anything else).
#[derive(Deserialize)]
struct Typed {
    #[serde(rename = "type")]
    _kind: String,
}

fuzz_target!(|data: &[u8]| {
    let relay = parse_relay(data);
    if let Ok(RelayMessage::Setup(setup)) = relay {
        let claimed: Claimed = serde_json::from_slice(data).expect("an accepted setup is JSON");
        assert_eq!(claimed.kind, "setup");
        assert_eq!(
            claimed.session_id.as_deref(),
            Some(setup.session_sid.as_str())
        );
        assert_eq!(
            claimed.account_sid.as_deref(),
            Some(setup.account_sid.as_str())
        );
        assert_eq!(claimed.call_sid.as_deref(), Some(setup.call_sid.as_str()));
        let message = RelayMessage::Setup(setup);
        assert_eq!(
            message.judge(&setup.account_sid, &setup.call_sid),
            Ok(message)
        );
        if setup.account_sid != expected_account() {
            assert_eq!(
                message.judge(&expected_account(), &setup.call_sid),
                Err(CloseReason::SetupAccountMismatch)
            );
        }
    }
    if relay.is_ok() {
        let typed: Result<Typed, _> = serde_json::from_slice(data);
        assert!(typed.is_ok(), "accepted without a string type");
    }
    let media = parse_frame(data);
    if media == Err(CloseReason::ProtocolMismatch) {
        assert_ne!(relay, Err(CloseReason::ProtocolMismatch));
        assert_ne!(relay, Err(CloseReason::TypeMissing));
    }
    if relay == Err(CloseReason::ProtocolMismatch) {
        assert_ne!(media, Err(CloseReason::ProtocolMismatch));
    }
    // The pipeline on a relay connection for `call`: the grammar's answer, then `judge`'s.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let call = match relay {
        Ok(RelayMessage::Setup(s)) => s.call_sid,
        _ => CallSid::parse("CAffeeddccbbaa99887766554433221100").expect("a call"),
    };
    let context = ConnectionContext::ConversationRelay {
        account: expected_account(),
        call,
        token_expires_at: 4_102_444_800,
    };
    let judged = pipeline::parse(text, Protocol::ConversationRelay)
        .and_then(|p| p.judge(&context, CallTokenPolicy::Required, None, 0));
    let expected = relay.and_then(|m| m.judge(&expected_account(), &call));
    match (&judged, expected) {
        (Ok(j), Ok(m)) => assert_eq!(*j.accepted(), Accepted::Relay(m)),
        (Err(r), Err(e)) => assert_eq!(*r, e),
        _ => panic!("the pipeline and the grammar disagree"),
    }
    if let Ok(j) = judged {
        if let Decision::Deliver(frame) = j.decide(StateStep::Accept(None)) {
            let connection = Connection {
                protocol: Protocol::ConversationRelay,
                connection_id: "c",
                management_endpoint: "https://a.execute-api.us-east-1.amazonaws.com/p",
                received_at_ms: 1,
            };
            let record = DeliveryRecord::of_frame(&frame, &connection).expect("a record");
            assert!(!record.json().contains('\n') && !record.json().contains('\r'));
            let value: serde_json::Value = serde_json::from_str(record.json()).expect("JSON");
            assert_eq!(value["protocol"], "conversation-relay");
            assert_eq!(value["callSid"], call.as_str());
        }
    }
});
