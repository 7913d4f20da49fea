//! Frame parsing and verdict tests: one test per rule, asserting the exact reason. The frame
//! grammar is here; the `start` and its call token are in verdict_start_tests.rs.

use serde_json::{json, Value};

use super::fixtures;
use super::*;

const AC: &str = "AC0123456789abcdef0123456789abcdef";
const AC_OTHER: &str = "ACffffffffffffffffffffffffffffffff";
const CA: &str = "CAffeeddccbbaa99887766554433221100";
const MZ: &str = "MZ00112233445566778899aabbccddeeff";
const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";
const NOW: u64 = 1_795_000_000;

fn sids() -> (AccountSid, CallSid, StreamSid) {
    (
        AccountSid::parse(AC).expect("ac"),
        CallSid::parse(CA).expect("ca"),
        StreamSid::parse(MZ).expect("mz"),
    )
}

fn creds() -> Credentials {
    Credentials::from_json(&format!(
        r#"{{"twilioAccounts":[{{"accountSid":"{AC}","authTokens":["t"]}}],"callTokenKeys":["{KEY}"]}}"#
    ))
    .expect("valid")
}

fn token() -> String {
    let (a, c, _) = sids();
    mint_call_token(&creds(), &a, &c, NOW, 300)
        .expect("key")
        .expose()
        .to_owned()
}

fn judge_with(frame: &str, policy: CallTokenPolicy) -> Verdict {
    let (a, _, _) = sids();
    judge_frame(frame.as_bytes(), &a, policy, Some(&creds()), NOW)
}

fn judge(frame: &str) -> Verdict {
    judge_with(frame, CallTokenPolicy::Required)
}

fn closes(frame: &str) -> CloseReason {
    match judge(frame) {
        Verdict::Close(r) => r,
        v => panic!("expected a close, got {v:?} for {frame}"),
    }
}

fn good_start() -> Value {
    let (a, c, s) = sids();
    serde_json::from_str(&fixtures::start(&a, &c, &s, Some(&token()))).expect("json")
}

fn good_media() -> Value {
    let (_, _, s) = sids();
    serde_json::from_str(&fixtures::media(&s, 2, 1, &[0xffu8; 160])).expect("json")
}

/// Applies `edit` to a copy of `base` and judges the result.
fn closes_after(base: &Value, edit: impl FnOnce(&mut Value)) -> CloseReason {
    let mut v = base.clone();
    edit(&mut v);
    closes(&v.to_string())
}

/// One frame of each kind, plus a start without a token.
fn one_of_each() -> Vec<(&'static str, String)> {
    let (a, c, s) = sids();
    let mut no_token = good_start();
    no_token["start"]["customParameters"] = json!({});
    vec![
        ("connected", fixtures::connected()),
        ("start", good_start().to_string()),
        ("start without token", no_token.to_string()),
        ("media", good_media().to_string()),
        ("mark", fixtures::mark(&s, 3, "m")),
        ("dtmf", fixtures::dtmf(&s, 4, '1')),
        ("stop", fixtures::stop(&a, &c, &s, 5)),
        ("unknown", r#"{"event":"futureThing"}"#.to_string()),
    ]
}

#[test]
fn a_legitimate_stream_is_accepted_frame_by_frame() {
    let (a, c, s) = sids();
    assert_eq!(
        judge(&fixtures::connected()),
        Verdict::Accept(Accepted::Connected)
    );
    match judge(&good_start().to_string()) {
        Verdict::Accept(Accepted::Start {
            call_sid,
            stream_sid,
            call_token: Some(t),
        }) => {
            assert_eq!(
                (call_sid, stream_sid, t.key_index, t.expires_at),
                (c, s, 0, NOW + 300)
            );
        }
        v => panic!("{v:?}"),
    }
    assert_eq!(
        judge(&good_media().to_string()),
        Verdict::Accept(Accepted::Media)
    );
    assert_eq!(
        judge(&fixtures::mark(&s, 3, "my label")),
        Verdict::Accept(Accepted::Mark)
    );
    assert_eq!(
        judge(&fixtures::dtmf(&s, 4, '#')),
        Verdict::Accept(Accepted::Dtmf)
    );
    assert_eq!(
        judge(&fixtures::stop(&a, &c, &s, 5)),
        Verdict::Accept(Accepted::Stop { call_sid: c })
    );
}

#[test]
fn twilio_md_examples_parse() {
    let start = r#"{"event":"start","sequenceNumber":"1",
 "start":{"accountSid":"AC0123456789abcdef0123456789abcdef","streamSid":"MZ00112233445566778899aabbccddeeff",
          "callSid":"CAffeeddccbbaa99887766554433221100","tracks":["inbound"],
          "mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1},
          "customParameters":{"token":"v1.1795000000.<mac>"}},
 "streamSid":"MZ00112233445566778899aabbccddeeff"}"#;
    assert_eq!(closes(start), CloseReason::CallTokenMalformed);
    assert!(matches!(
        judge_with(start, CallTokenPolicy::Off),
        Verdict::Accept(Accepted::Start {
            call_token: None,
            ..
        })
    ));
    let stop = r#"{"event":"stop","sequenceNumber":"378",
 "stop":{"accountSid":"AC0123456789abcdef0123456789abcdef","callSid":"CAffeeddccbbaa99887766554433221100"},
 "streamSid":"MZ00112233445566778899aabbccddeeff"}"#;
    assert!(matches!(
        judge(stop),
        Verdict::Accept(Accepted::Stop { .. })
    ));
}

#[test]
fn envelope_rules() {
    assert_eq!(
        closes(&" ".repeat(64 * 1024 + 1)),
        CloseReason::FrameTooLarge
    );
    assert_eq!(closes(""), CloseReason::FrameNotJson);
    assert_eq!(closes("{"), CloseReason::FrameNotJson);
    assert_eq!(closes("hello"), CloseReason::FrameNotJson);
    assert_eq!(closes("[1,2]"), CloseReason::FrameNotObject);
    assert_eq!(closes("\"media\""), CloseReason::FrameNotObject);
    assert_eq!(closes("null"), CloseReason::FrameNotObject);
    assert_eq!(closes("{}"), CloseReason::EventMissing);
    assert_eq!(closes(r#"{"event":5}"#), CloseReason::EventMissing);
    assert_eq!(closes(r#"{"event":null}"#), CloseReason::EventMissing);
    assert_eq!(
        closes(r#"{"event":"media","event":"start"}"#),
        CloseReason::FrameNotJson
    );
    // Deep nesting anywhere, even in a member the parser skips, and even as the whole frame.
    let deep = |n: usize| {
        format!(
            "{{\"event\":\"future\",\"x\":{}1{}}}",
            "[".repeat(n),
            "]".repeat(n)
        )
    };
    assert_eq!(judge(&deep(15)), Verdict::Accept(Accepted::Unknown));
    assert_eq!(closes(&deep(16)), CloseReason::FrameTooDeep);
    assert_eq!(closes(&"[".repeat(20_000)), CloseReason::FrameTooDeep);
    // Brackets inside strings (escaped quotes included) are not nesting.
    let in_strings = format!("{{\"event\":\"future\",\"x\":\"\\\"{}\"}}", "[".repeat(100));
    assert_eq!(judge(&in_strings), Verdict::Accept(Accepted::Unknown));
    let (_, _, s) = sids();
    let mut bad_utf8 = fixtures::mark(&s, 1, "x").into_bytes();
    let at = bad_utf8.iter().rposition(|&b| b == b'x').expect("x");
    bad_utf8[at] = 0xff;
    assert_eq!(
        judge_frame(&bad_utf8, &sids().0, CallTokenPolicy::Required, None, NOW),
        Verdict::Close(CloseReason::FrameNotJson)
    );
}

#[test]
fn unknown_events_are_accepted_and_flagged() {
    assert_eq!(
        judge(r#"{"event":"futureThing","x":[1,2,3]}"#),
        Verdict::Accept(Accepted::Unknown)
    );
    assert_eq!(
        judge(r#"{"event":"Media"}"#),
        Verdict::Accept(Accepted::Unknown)
    );
}

#[test]
fn connected_rules() {
    assert_eq!(
        closes(r#"{"event":"connected"}"#),
        CloseReason::ConnectedMalformed
    );
    assert_eq!(
        closes(r#"{"event":"connected","protocol":"Call","version":1}"#),
        CloseReason::ConnectedMalformed
    );
}

#[test]
fn media_rules() {
    let m = good_media();
    assert_eq!(
        closes_after(&m, |v| v["streamSid"] = json!("MZ123")),
        CloseReason::StreamSidInvalid
    );
    assert_eq!(
        closes_after(&m, |v| {
            v.as_object_mut().map(|o| o.remove("streamSid"));
        }),
        CloseReason::StreamSidInvalid
    );
    assert_eq!(
        closes_after(&m, |v| v["sequenceNumber"] = json!(2)),
        CloseReason::SequenceNumberInvalid
    );
    assert_eq!(
        closes_after(&m, |v| v["sequenceNumber"] = json!("")),
        CloseReason::SequenceNumberInvalid
    );
    assert_eq!(
        closes_after(&m, |v| v["sequenceNumber"] = json!("-1")),
        CloseReason::SequenceNumberInvalid
    );
    assert_eq!(
        closes_after(&m, |v| v["sequenceNumber"] = json!("1".repeat(21))),
        CloseReason::SequenceNumberInvalid
    );
    assert_eq!(
        closes_after(&m, |v| v["media"] = json!(null)),
        CloseReason::MediaMalformed
    );
    assert_eq!(
        closes_after(&m, |v| v["media"] = json!("x")),
        CloseReason::MediaMalformed
    );
    assert_eq!(
        closes_after(&m, |v| {
            v["media"].as_object_mut().map(|o| o.remove("payload"));
        }),
        CloseReason::MediaMalformed
    );
    assert_eq!(
        closes_after(&m, |v| v["media"]["track"] = json!(1)),
        CloseReason::MediaMalformed
    );
    assert_eq!(
        closes_after(&m, |v| v["media"]["track"] = json!("inbound_track")),
        CloseReason::MediaTrackInvalid
    );
    assert_eq!(
        closes_after(&m, |v| v["media"]["chunk"] = json!("1.5")),
        CloseReason::MediaCounterInvalid
    );
    assert_eq!(
        closes_after(&m, |v| v["media"]["timestamp"] = json!("")),
        CloseReason::MediaCounterInvalid
    );
    assert_eq!(
        closes_after(&m, |v| v["media"]["chunk"] = json!("\u{0661}")),
        CloseReason::MediaCounterInvalid
    ); // Arabic-Indic one
    assert_eq!(
        closes_after(&m, |v| v["media"]["payload"] = json!("")),
        CloseReason::MediaPayloadInvalid
    );
    assert_eq!(
        closes_after(&m, |v| v["media"]["payload"] = json!("abc")),
        CloseReason::MediaPayloadInvalid
    );
    assert_eq!(
        closes_after(&m, |v| v["media"]["payload"] = json!("ab-_")),
        CloseReason::MediaPayloadInvalid
    );
    assert_eq!(
        closes_after(&m, |v| v["media"]["payload"] = json!("A".repeat(43_692))),
        CloseReason::MediaPayloadTooLarge
    );
    // 32 KiB decoded exactly is allowed.
    let (_, _, s) = sids();
    assert_eq!(
        judge(&fixtures::media(&s, 2, 1, &vec![0u8; 32 * 1024])),
        Verdict::Accept(Accepted::Media)
    );
    // Escaped but equal strings are still accepted (JSON equivalence).
    assert_eq!(
        judge(
            &good_media()
                .to_string()
                .replace("\"inbound\"", "\"\\u0069nbound\"")
        ),
        Verdict::Accept(Accepted::Media)
    );
}

#[test]
fn stop_mark_dtmf_rules() {
    let (_, c, s) = sids();
    let other = AccountSid::parse(AC_OTHER).expect("ac");
    assert_eq!(
        closes(&fixtures::stop(&other, &c, &s, 9)),
        CloseReason::StopAccountMismatch
    );
    assert_eq!(
        closes(&format!(
            r#"{{"event":"stop","sequenceNumber":"9","streamSid":"{MZ}","stop":{{"accountSid":"{AC}"}}}}"#
        )),
        CloseReason::StopMalformed
    );
    assert_eq!(
        closes(&format!(
            r#"{{"event":"stop","sequenceNumber":"9","streamSid":"{MZ}","stop":{{"accountSid":"x","callSid":"{CA}"}}}}"#
        )),
        CloseReason::StopMalformed
    );
    assert_eq!(
        closes(&format!(
            r#"{{"event":"mark","sequenceNumber":"9","streamSid":"{MZ}","mark":{{}}}}"#
        )),
        CloseReason::MarkMalformed
    );
    assert_eq!(
        closes(&format!(
            r#"{{"event":"mark","sequenceNumber":"9","streamSid":"{MZ}"}}"#
        )),
        CloseReason::MarkMalformed
    );
    assert_eq!(
        closes(&format!(
            r#"{{"event":"dtmf","sequenceNumber":"9","streamSid":"{MZ}","dtmf":{{"track":"inbound","digit":"1"}}}}"#
        )),
        CloseReason::DtmfMalformed
    );
    assert_eq!(
        closes(&format!(
            r#"{{"event":"dtmf","sequenceNumber":"9","streamSid":"{MZ}","dtmf":{{"track":"inbound_track","digit":"12"}}}}"#
        )),
        CloseReason::DtmfMalformed
    );
    assert_eq!(
        closes(
            r#"{"event":"dtmf","sequenceNumber":"9","streamSid":"MZ1","dtmf":{"track":"inbound_track","digit":"1"}}"#
        ),
        CloseReason::StreamSidInvalid
    );
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn any_bytes_get_a_verdict(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let (a, _, _) = sids();
            let _ = judge_frame(&bytes, &a, CallTokenPolicy::Required, Some(&creds()), NOW);
        }

        #[test]
        fn accepted_media_satisfies_every_rule(
            seq in "[0-9]{1,3}|x", chunk in "[0-9]{1,3}|-1", track in "inbound|outbound|both",
            payload in "[A-Za-z0-9+/]{0,8}={0,2}", sid in "MZ[0-9a-f]{32}|MZ[0-9a-g]{31}",
        ) {
            let frame = json!({"event":"media","sequenceNumber":seq,"streamSid":sid,
                "media":{"track":track,"chunk":chunk,"timestamp":"20","payload":payload}}).to_string();
            if let Verdict::Accept(Accepted::Media) = judge(&frame) {
                prop_assert!(seq.bytes().all(|b| b.is_ascii_digit()));
                prop_assert!(chunk.bytes().all(|b| b.is_ascii_digit()));
                prop_assert!(track == "inbound" || track == "outbound");
                prop_assert!(StreamSid::parse(&sid).is_ok());
                prop_assert!(base64check::decoded_len(payload.as_bytes()).is_some());
            }
        }
    }
}

#[test]
fn event_names_are_twilios_and_never_echo_an_unknown_one() {
    for (name, frame) in one_of_each() {
        let parsed = parse_frame(frame.as_bytes()).expect("parses");
        let sent: Value = serde_json::from_str(&frame).expect("json");
        let sent = sent["event"].as_str().expect("event");
        if name == "unknown" {
            assert_eq!(parsed.event_name(), "unknown", "{sent} is attacker-chosen");
        } else {
            assert_eq!(parsed.event_name(), sent);
        }
    }
}

#[test]
fn a_frame_of_exactly_64_kib_is_read() {
    // Whitespace after the object is still JSON: pad a real media frame to the limit.
    let media = good_media().to_string();
    let at_limit = media.clone() + &" ".repeat(frame::MAX_FRAME_BYTES - media.len());
    assert_eq!(at_limit.len(), 64 * 1024);
    assert_eq!(judge(&at_limit), Verdict::Accept(Accepted::Media));
    assert_eq!(closes(&format!("{at_limit} ")), CloseReason::FrameTooLarge);
}

/// `{"event":"future","x":<x>,"y":<y>}`: an unknown event, so only the envelope rules apply.
fn future(x: &str, y: &str) -> String {
    format!(r#"{{"event":"future","x":{x},"y":{y}}}"#)
}

fn arrays(depth: usize) -> String {
    format!("{}1{}", "[".repeat(depth), "]".repeat(depth))
}

#[test]
fn nesting_of_16_levels_is_allowed_and_17_refused() {
    // The frame's object is level 1, so `x` holds 15 more levels at most. `y` adds openers (more
    // than 16 in all) without adding depth.
    assert_eq!(
        judge(&future(&arrays(15), "[]")),
        Verdict::Accept(Accepted::Unknown)
    );
    assert_eq!(
        closes(&future(&arrays(16), "[]")),
        CloseReason::FrameTooDeep
    );
    let objects = |depth: usize| format!("{}1{}", r#"{"a":"#.repeat(depth), "}".repeat(depth));
    assert_eq!(
        judge(&future(&objects(15), "{}")),
        Verdict::Accept(Accepted::Unknown)
    );
    assert_eq!(
        closes(&future(&objects(16), "{}")),
        CloseReason::FrameTooDeep
    );
    // Depth is refused before JSON is parsed: an unclosed run of 17 openers is too deep, of
    // either kind, while 16 are merely not JSON.
    for opener in ["[", "{"] {
        assert_eq!(closes(&opener.repeat(17)), CloseReason::FrameTooDeep);
        assert_eq!(closes(&opener.repeat(16)), CloseReason::FrameNotJson);
    }
}

#[test]
fn closed_levels_do_not_count_towards_the_nesting_limit() {
    // Many shallow containers side by side: wide, not deep.
    let siblings = |item: &str| format!("[{}]", vec![item; 40].join(","));
    for item in ["[]", "{}", r#"{"a":[1]}"#, "[[[[]]]]"] {
        assert_eq!(
            judge(&future(&siblings(item), "[]")),
            Verdict::Accept(Accepted::Unknown),
            "{item}"
        );
    }
}

#[test]
fn counters_are_1_to_20_ascii_digits() {
    let m = good_media();
    let twenty = "1".repeat(20);
    let twentyone = "1".repeat(21);
    for field in ["chunk", "timestamp"] {
        for ok in ["0", twenty.as_str()] {
            let mut v = m.clone();
            v["media"][field] = json!(ok);
            assert_eq!(
                judge(&v.to_string()),
                Verdict::Accept(Accepted::Media),
                "{field}={ok}"
            );
        }
        for bad in ["", twentyone.as_str(), "1e3", "+1", " 1", "0x1"] {
            assert_eq!(
                closes_after(&m, |v| v["media"][field] = json!(bad)),
                CloseReason::MediaCounterInvalid,
                "{field}={bad}"
            );
        }
    }
    for ok in ["0", twenty.as_str()] {
        let mut v = m.clone();
        v["sequenceNumber"] = json!(ok);
        assert_eq!(judge(&v.to_string()), Verdict::Accept(Accepted::Media));
    }
    for bad in ["", twentyone.as_str(), "+1", "1 "] {
        assert_eq!(
            closes_after(&m, |v| v["sequenceNumber"] = json!(bad)),
            CloseReason::SequenceNumberInvalid,
            "{bad}"
        );
    }
}

#[path = "verdict_start_tests.rs"]
mod start;
