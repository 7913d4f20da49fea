//! Any bytes as a ConversationRelay message: a typed message or a reason, never a panic. Whatever
//! is accepted has a string `type`; an accepted `setup` carries the SIDs its frame holds, and
//! `judge` admits it for that account and call and refuses another account. The two grammars name
//! the other protocol consistently: a frame Media Streams calls a ConversationRelay message
//! (`protocol_mismatch`) has a `type`, so ConversationRelay neither calls it Media Streams nor
//! typeless; and the reverse.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde::Deserialize;
use stream_gate_domain::{parse_frame, parse_relay, CloseReason, RelayMessage};
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
});
