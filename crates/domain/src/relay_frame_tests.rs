use super::*;
use proptest::prelude::*;
use serde_json::{json, Value};

use crate::frame::{parse_frame, MAX_FRAME_BYTES};

const AC: &str = "ACdeadbeefdeadbeefdeadbeefdeadbeef";
const CA: &str = "CAffeeddccbbaa99887766554433221100";
const VX: &str = "VX00112233445566778899aabbccddeeff";

/// Twilio's documented `setup`, every optional field present.
fn setup_value() -> Value {
    json!({
        "type": "setup",
        "sessionId": VX,
        "accountSid": AC,
        "parentCallSid": "",
        "callSid": CA,
        "from": "+18005550100",
        "to": "+18005550101",
        "forwardedFrom": "+18005550102",
        "callType": "PSTN",
        "callerName": "",
        "direction": "inbound",
        "callStatus": "RINGING",
        "customParameters": {"callReference": "bar"}
    })
}

fn parse(v: &Value) -> Result<RelayMessage, CloseReason> {
    parse_relay(v.to_string().as_bytes())
}

fn with(mut v: Value, key: &str, value: Value) -> Value {
    v[key] = value;
    v
}

fn without(mut v: Value, key: &str) -> Value {
    if let Some(o) = v.as_object_mut() {
        o.remove(key);
    }
    v
}

fn sids() -> (AccountSid, CallSid) {
    (
        AccountSid::parse(AC).expect("ac"),
        CallSid::parse(CA).expect("ca"),
    )
}

#[test]
fn twilios_documented_messages_parse() {
    let (account, call) = sids();
    let setup = RelaySetup {
        session_sid: SessionSid::parse(VX).expect("vx"),
        account_sid: account,
        call_sid: call,
    };
    let cases = [
        (setup_value(), RelayMessage::Setup(setup)),
        (
            json!({"type":"setup","sessionId":VX,"accountSid":AC,"callSid":CA}),
            RelayMessage::Setup(setup),
        ),
        (
            json!({"type":"prompt","voicePrompt":"Hi! Can you tell me about life?","lang":"en-US","last":true}),
            RelayMessage::Prompt { last: true },
        ),
        (
            json!({"type":"prompt","voicePrompt":"Hi","lang":"en-US","last":false}),
            RelayMessage::Prompt { last: false },
        ),
        (
            json!({"type":"prompt","voicePrompt":""}),
            RelayMessage::Prompt { last: false },
        ),
        (json!({"type":"dtmf","digit":"1"}), RelayMessage::Dtmf),
        (
            json!({"type":"interrupt","utteranceUntilInterrupt":"Life is a complex set of","durationUntilInterruptMs":460}),
            RelayMessage::Interrupt,
        ),
        (
            json!({"type":"interrupt","utteranceUntilInterrupt":"","durationUntilInterruptMs":"460"}),
            RelayMessage::Interrupt,
        ),
        (
            json!({"type":"error","description":"Invalid message received: x"}),
            RelayMessage::Error,
        ),
        (
            json!({"type":"info","name":"agentSpeaking","value":"on"}),
            RelayMessage::Info,
        ),
        (
            json!({"type":"later","anything":[1]}),
            RelayMessage::Unknown,
        ),
        (json!({"type":"Setup"}), RelayMessage::Unknown),
    ];
    for (value, want) in cases {
        assert_eq!(parse(&value), Ok(want), "{value}");
    }
}

#[test]
fn type_names_are_twilios_and_unknown_is_not_echoed() {
    let (account, call) = sids();
    let setup = RelaySetup {
        session_sid: SessionSid::parse(VX).expect("vx"),
        account_sid: account,
        call_sid: call,
    };
    let names = [
        (RelayMessage::Setup(setup), "setup"),
        (RelayMessage::Prompt { last: true }, "prompt"),
        (RelayMessage::Dtmf, "dtmf"),
        (RelayMessage::Interrupt, "interrupt"),
        (RelayMessage::Error, "error"),
        (RelayMessage::Info, "info"),
        (RelayMessage::Unknown, "unknown"),
    ];
    for (message, name) in names {
        assert_eq!(message.type_name(), name);
    }
}

#[test]
fn a_setup_must_name_the_handshakes_account_and_call() {
    let (account, call) = sids();
    let other_account = AccountSid::parse("AC0123456789abcdef0123456789abcdef").expect("ac");
    let other_call = CallSid::parse("CA0123456789abcdef0123456789abcdef").expect("ca");
    let setup = parse(&setup_value()).expect("setup");
    assert_eq!(setup.judge(&account, &call), Ok(setup));
    assert_eq!(
        setup.judge(&other_account, &call),
        Err(CloseReason::SetupAccountMismatch)
    );
    assert_eq!(
        setup.judge(&account, &other_call),
        Err(CloseReason::SetupCallSidMismatch)
    );
    assert_eq!(
        setup.judge(&other_account, &other_call),
        Err(CloseReason::SetupAccountMismatch)
    );
    for other in [
        RelayMessage::Prompt { last: true },
        RelayMessage::Dtmf,
        RelayMessage::Interrupt,
        RelayMessage::Error,
        RelayMessage::Info,
        RelayMessage::Unknown,
    ] {
        assert_eq!(other.judge(&other_account, &other_call), Ok(other));
    }
}

#[test]
fn a_setup_without_its_sids_as_strings_is_malformed() {
    for key in ["sessionId", "accountSid", "callSid"] {
        let missing = without(setup_value(), key);
        assert_eq!(parse(&missing), Err(CloseReason::SetupMalformed), "{key}");
        for wrong in [json!(5), json!(null), json!([AC]), json!({"sid": AC})] {
            let v = with(setup_value(), key, wrong);
            assert_eq!(parse(&v), Err(CloseReason::SetupMalformed), "{v}");
        }
    }
}

#[test]
fn a_setup_sid_of_the_wrong_kind_or_shape_is_refused() {
    let bad = [
        ("sessionId", "VX00112233"),
        ("sessionId", "MZ00112233445566778899aabbccddeeff"),
        ("sessionId", "VXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX"),
        ("accountSid", "CAdeadbeefdeadbeefdeadbeefdeadbeef"),
        ("accountSid", ""),
        ("callSid", "ACffeeddccbbaa99887766554433221100"),
        ("callSid", "CAffeeddccbbaa9988776655443322110"),
        ("parentCallSid", "CA123"),
        ("parentCallSid", "ACffeeddccbbaa99887766554433221100"),
    ];
    for (key, value) in bad {
        let v = with(setup_value(), key, json!(value));
        assert_eq!(
            parse(&v),
            Err(CloseReason::SetupSidInvalid),
            "{key}={value}"
        );
    }
    let parent = with(setup_value(), "parentCallSid", json!(CA));
    assert!(matches!(parse(&parent), Ok(RelayMessage::Setup(_))));
    let no_parent = without(setup_value(), "parentCallSid");
    assert!(matches!(parse(&no_parent), Ok(RelayMessage::Setup(_))));
}

#[test]
fn a_setups_optional_fields_must_be_strings() {
    for key in [
        "parentCallSid",
        "from",
        "to",
        "forwardedFrom",
        "callType",
        "callerName",
        "direction",
        "callStatus",
    ] {
        for wrong in [json!(5), json!(null), json!(true), json!(["x"]), json!({})] {
            let v = with(setup_value(), key, wrong);
            assert_eq!(parse(&v), Err(CloseReason::SetupMalformed), "{v}");
        }
        let absent = without(setup_value(), key);
        assert!(
            matches!(parse(&absent), Ok(RelayMessage::Setup(_))),
            "{key}"
        );
    }
}

#[test]
fn custom_parameters_are_an_object_of_strings_each_named_once() {
    for good in [
        json!({}),
        json!({"a": "1", "b": ""}),
        json!({"\u{e9}": "\u{e9}"}),
    ] {
        let v = with(setup_value(), "customParameters", good);
        assert!(matches!(parse(&v), Ok(RelayMessage::Setup(_))), "{v}");
    }
    for bad in [
        json!(null),
        json!([]),
        json!("a=1"),
        json!({"a": 1}),
        json!({"a": null}),
        json!({"a": {"b": "c"}}),
        json!({"a": ["b"]}),
    ] {
        let v = with(setup_value(), "customParameters", bad);
        assert_eq!(parse(&v), Err(CloseReason::SetupMalformed), "{v}");
    }
    let twice = setup_value()
        .to_string()
        .replace(r#"{"callReference":"bar"}"#, r#"{"k":"1","k":"2"}"#);
    assert!(twice.contains(r#""k":"1","k":"2""#));
    assert_eq!(
        parse_relay(twice.as_bytes()),
        Err(CloseReason::SetupMalformed)
    );
}

#[test]
fn a_prompt_has_a_string_voice_prompt_and_typed_options() {
    let good = json!({"type":"prompt","voicePrompt":"hi","lang":"en-US","last":true});
    for bad in [
        without(good.clone(), "voicePrompt"),
        with(good.clone(), "voicePrompt", json!(5)),
        with(good.clone(), "voicePrompt", json!(null)),
        with(good.clone(), "lang", json!(5)),
        with(good.clone(), "lang", json!(null)),
        with(good.clone(), "last", json!("true")),
        with(good.clone(), "last", json!(1)),
        with(good.clone(), "last", json!(null)),
    ] {
        assert_eq!(parse(&bad), Err(CloseReason::PromptMalformed), "{bad}");
    }
    let no_lang = without(good, "lang");
    assert_eq!(parse(&no_lang), Ok(RelayMessage::Prompt { last: true }));
}

#[test]
fn a_dtmf_is_one_key() {
    for digit in ["0", "9", "*", "#", "A", "d"] {
        let v = json!({"type":"dtmf","digit":digit});
        assert_eq!(parse(&v), Ok(RelayMessage::Dtmf), "{v}");
    }
    for bad in [
        json!(""),
        json!("12"),
        json!("x"),
        json!("E"),
        json!(1),
        json!(null),
    ] {
        let v = json!({"type":"dtmf","digit":bad});
        assert_eq!(parse(&v), Err(CloseReason::DtmfMalformed), "{v}");
    }
    let none = json!({"type":"dtmf"});
    assert_eq!(parse(&none), Err(CloseReason::DtmfMalformed));
}

#[test]
fn an_interrupt_has_its_utterance_and_a_whole_duration() {
    let good =
        json!({"type":"interrupt","utteranceUntilInterrupt":"so","durationUntilInterruptMs":0});
    assert_eq!(parse(&good), Ok(RelayMessage::Interrupt));
    let longest = "9".repeat(20);
    let long = with(good.clone(), "durationUntilInterruptMs", json!(longest));
    assert_eq!(parse(&long), Ok(RelayMessage::Interrupt));
    for bad_duration in [
        json!(-1),
        json!(4.5),
        json!(18446744073709551616u128
            .to_string()
            .parse::<f64>()
            .unwrap_or(0.0)),
        json!("4.5"),
        json!(""),
        json!("x"),
        json!("-1"),
        json!("9".repeat(21)),
        json!(null),
        json!([460]),
    ] {
        let v = with(good.clone(), "durationUntilInterruptMs", bad_duration);
        assert_eq!(parse(&v), Err(CloseReason::InterruptMalformed), "{v}");
    }
    for bad in [
        without(good.clone(), "durationUntilInterruptMs"),
        without(good.clone(), "utteranceUntilInterrupt"),
        with(good, "utteranceUntilInterrupt", json!(5)),
    ] {
        assert_eq!(parse(&bad), Err(CloseReason::InterruptMalformed), "{bad}");
    }
}

#[test]
fn an_error_has_a_description() {
    for bad in [
        json!({"type":"error"}),
        json!({"type":"error","description":5}),
        json!({"type":"error","description":null}),
    ] {
        assert_eq!(parse(&bad), Err(CloseReason::RelayErrorMalformed), "{bad}");
    }
}

#[test]
fn the_envelope_is_bounded_strict_and_names_the_other_protocol() {
    let cases: [(&str, CloseReason); 12] = [
        ("{}", CloseReason::TypeMissing),
        (r#"{"type":5}"#, CloseReason::TypeMissing),
        (r#"{"type":null}"#, CloseReason::TypeMissing),
        (r#"{"type":5,"event":"media"}"#, CloseReason::TypeMissing),
        (r#"{"event":"media"}"#, CloseReason::ProtocolMismatch),
        (
            r#"{"event":"connected","protocol":"Call","version":"1.0.0"}"#,
            CloseReason::ProtocolMismatch,
        ),
        (r#"{"event":5}"#, CloseReason::ProtocolMismatch),
        (
            r#"{"type":"prompt","type":"prompt","voicePrompt":"a"}"#,
            CloseReason::FrameNotJson,
        ),
        (
            r#"{"type":"prompt","voicePrompt":"a","voicePrompt":"b"}"#,
            CloseReason::FrameNotJson,
        ),
        ("not json", CloseReason::FrameNotJson),
        ("[]", CloseReason::FrameNotObject),
        (r#"{"type":"setup"}x"#, CloseReason::FrameNotJson),
    ];
    for (frame, want) in cases {
        assert_eq!(parse_relay(frame.as_bytes()), Err(want), "{frame}");
    }
    let deep = format!(
        r#"{{"type":"info","v":{}{}}}"#,
        "[".repeat(16),
        "]".repeat(16)
    );
    assert_eq!(parse_relay(deep.as_bytes()), Err(CloseReason::FrameTooDeep));
    let big = format!(
        r#"{{"type":"prompt","voicePrompt":"{}"}}"#,
        "a".repeat(MAX_FRAME_BYTES)
    );
    assert_eq!(parse_relay(big.as_bytes()), Err(CloseReason::FrameTooLarge));
}

#[test]
fn a_relay_message_on_a_media_streams_connection_is_the_other_protocol() {
    let setup = setup_value().to_string();
    assert_eq!(
        parse_frame(setup.as_bytes()),
        Err(CloseReason::ProtocolMismatch)
    );
    assert_eq!(parse_frame(b"{}"), Err(CloseReason::EventMissing));
    // Media Streams reads a null `event` as none (its grammar predates this check).
    assert_eq!(
        parse_frame(br#"{"event":null,"type":"setup"}"#),
        Err(CloseReason::ProtocolMismatch)
    );
    assert_eq!(
        parse_frame(br#"{"type":5}"#),
        Err(CloseReason::EventMissing)
    );
}

proptest! {
    #[test]
    fn any_bytes_get_a_message_or_a_reason(frame in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = parse_relay(&frame);
    }

    #[test]
    fn an_accepted_setup_names_the_sids_it_carries(
        session in "VX[0-9a-f]{32}", account in "AC[0-9a-f]{32}", call in "CA[0-9a-f]{32}",
    ) {
        let v = json!({"type":"setup","sessionId":session,"accountSid":account,"callSid":call});
        let Ok(RelayMessage::Setup(s)) = parse(&v) else {
            return Err(TestCaseError::fail(format!("{v}")));
        };
        prop_assert_eq!(s.session_sid.as_str(), session.as_str());
        prop_assert_eq!(s.account_sid.as_str(), account.as_str());
        prop_assert_eq!(s.call_sid.as_str(), call.as_str());
    }

    #[test]
    fn any_spoken_text_is_a_prompt(said in "\\PC{0,200}", last: bool) {
        let v = json!({"type":"prompt","voicePrompt":said,"lang":"en-US","last":last});
        prop_assert_eq!(parse(&v), Ok(RelayMessage::Prompt { last }));
    }
}
