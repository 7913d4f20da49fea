//! Records are built from verified frames only: each test runs a frame through the pipeline (parse,
//! verdict, call-state answer) and builds the record of what it decided.

use super::*;
use crate::call_state::StartedCall;
use crate::connection_context::ConnectionContext;
use crate::fixtures;
use crate::pipeline::{self, Decision, StateStep};
use crate::verdict::CallTokenPolicy;

const AC: &str = "ACdeadbeefdeadbeefdeadbeefdeadbeef";
const CA: &str = "CAffeeddccbbaa99887766554433221100";
const MZ: &str = "MZ00112233445566778899aabbccddeeff";
const TOKEN: &str = "v1.4102444800.pSZH3eosU1kCJgp4JojDwlVr-gZachD1ymlCozurunw";
const CONNECTION: Connection<'static> = Connection {
    protocol: Protocol::MediaStreams,
    connection_id: "Xk2TmdKPIAMCJqw=",
    management_endpoint: "https://abc123.execute-api.us-east-1.amazonaws.com/prod",
    received_at_ms: 1_795_881_601_000,
};

fn sids() -> (AccountSid, CallSid, StreamSid) {
    (
        AccountSid::parse(AC).expect("ac"),
        CallSid::parse(CA).expect("ca"),
        StreamSid::parse(MZ).expect("mz"),
    )
}

/// The pipeline's decision on `frame` (call tokens off), with the connection's recorded start
/// when `recorded` (call state on) or none (call state off).
fn decide(frame: &str, recorded: bool) -> Decision<'_> {
    let (ac, ca, mz) = sids();
    let step = StateStep::Accept(recorded.then(|| StartedCall::new(ac, ca, mz, 0)));
    match pipeline::parse(frame, Protocol::MediaStreams).and_then(|p| {
        p.judge(
            &ConnectionContext::MediaStreams { account: ac },
            CallTokenPolicy::Off,
            None,
            0,
        )
    }) {
        Ok(judged) => judged.decide(step),
        Err(reason) => Decision::Close(reason),
    }
}

fn built(frame: &str, recorded: bool) -> DeliveryRecord {
    match decide(frame, recorded) {
        Decision::Deliver(verified) => {
            DeliveryRecord::of_frame(&verified, &CONNECTION).expect("record")
        }
        other => panic!("not delivered: {other:?}"),
    }
}

fn text(frame: &str) -> String {
    built(frame, true).into_json()
}

fn record(frame: &str, recorded: bool) -> Value {
    let text = built(frame, recorded).into_json();
    assert!(!text.contains('\n') && !text.contains('\r'), "{text}");
    serde_json::from_str(&text).expect("record is JSON")
}

/// A full `start` with `params` as its `customParameters` members (raw JSON text).
fn start_with(params: &str) -> String {
    format!(
        r#"{{"event":"start","sequenceNumber":"1","start":{{"accountSid":"{AC}","streamSid":"{MZ}","callSid":"{CA}","tracks":["inbound"],"mediaFormat":{{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1}},"customParameters":{{{params}}}}},"streamSid":"{MZ}"}}"#
    )
}

#[test]
fn media_record_carries_the_frame_verbatim() {
    let (_, _, mz) = sids();
    let frame = fixtures::media(&mz, 2, 1, &[0xff; 160]);
    let expected_head = format!(
        r#"{{"v":1,"type":"media","protocol":"media-streams","connectionId":"Xk2TmdKPIAMCJqw=","managementEndpoint":"https://abc123.execute-api.us-east-1.amazonaws.com/prod","accountSid":"{AC}","callSid":"{CA}","streamSid":"{MZ}","sequenceNumber":"2","receivedAt":1795881601000,"twilio":"#
    );
    assert_eq!(text(&frame), format!("{expected_head}{frame}}}"));
}

#[test]
fn start_record_has_no_call_token_and_keeps_other_parameters() {
    let (ac, ca, mz) = sids();
    let frame = fixtures::start(&ac, &ca, &mz, Some(TOKEN)).replace(
        "\"customParameters\":{",
        "\"customParameters\":{\"agent\":\"sales\",",
    );
    let text = text(&frame);
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
fn every_spelling_of_the_token_is_removed_and_copies_never_get_this_far() {
    // An escaped key is the same key: the verdict read it as the token, the record drops it.
    let escaped = start_with(&format!(r#""\u0074oken":"{TOKEN}""#));
    // Line breaks between tokens.
    let broken = start_with(&format!("\n\"token\":\r\n\"{TOKEN}\"\n"));
    for frame in [&escaped, &broken] {
        let text = text(frame);
        assert!(!text.contains(TOKEN), "{frame} -> {text}");
        assert!(!text.contains("\"token\""), "{frame} -> {text}");
    }
    // A repeated token or a repeated start is refused by the parse: no record can be made.
    let repeated_key = start_with(&format!(r#""token":"{TOKEN}","token":"{TOKEN}""#));
    let repeated_start = format!(
        r#"{{"event":"start","sequenceNumber":"1","start":{{}},"start":{{}},"streamSid":"{MZ}"}}"#
    );
    for frame in [&repeated_key, &repeated_start] {
        assert!(matches!(decide(frame, true), Decision::Close(_)), "{frame}");
    }
}

#[test]
fn a_start_without_parameters_is_recorded_as_sent() {
    let frame = start_with("").replace(",\"customParameters\":{}", "");
    assert!(!frame.contains("customParameters"), "{frame}");
    let v = record(&frame, true);
    assert_eq!(
        v["twilio"],
        serde_json::from_str::<Value>(&frame).expect("json")
    );
}

#[test]
fn each_type_of_record() {
    let (ac, ca, mz) = sids();
    let cases = [
        (fixtures::mark(&mz, 4, "greeting"), "mark", "4"),
        (fixtures::dtmf(&mz, 5, '1'), "dtmf", "5"),
        (fixtures::stop(&ac, &ca, &mz, 378), "stop", "378"),
    ];
    for (frame, kind, seq) in &cases {
        let v = record(frame, true);
        assert_eq!(v["type"], *kind);
        assert_eq!(v["sequenceNumber"], *seq);
        assert_eq!(
            v["twilio"],
            serde_json::from_str::<Value>(frame).expect("json")
        );
        let built = built(frame, true);
        assert_eq!(built.kind().as_str(), *kind);
        assert_eq!(built.partition_key(), "Xk2TmdKPIAMCJqw=");
    }
}

#[test]
fn disconnect_record_has_no_frame_and_no_sequence_number() {
    let (ac, ca, mz) = sids();
    let all = CallSids::of_start(&StartedCall::new(ac, ca, mz, 0));
    let end = DeliveryRecord::of_disconnect(&all, &CONNECTION).expect("record");
    assert_eq!(end.kind(), RecordType::Disconnect);
    assert_eq!(
        end.json(),
        format!(
            r#"{{"v":1,"type":"disconnect","protocol":"media-streams","connectionId":"Xk2TmdKPIAMCJqw=","managementEndpoint":"https://abc123.execute-api.us-east-1.amazonaws.com/prod","accountSid":"{AC}","callSid":"{CA}","streamSid":"{MZ}","receivedAt":1795881601000}}"#
        )
    );
    let bare = DeliveryRecord::of_disconnect(&CallSids::account_only(ac), &CONNECTION)
        .expect("record")
        .into_json();
    let v: Value = serde_json::from_str(&bare).expect("json");
    assert!(v.get("callSid").is_none() && v.get("streamSid").is_none());
    assert_eq!(v["accountSid"], AC);
}

#[test]
fn a_session_end_record_has_the_call_and_the_session_fields_and_no_connection() {
    let (ac, ca, _) = sids();
    let form = crate::webhook_decision::WebhookForm::parse(
        b"AccountSid=x&CallSid=y&From=%2B1555&SessionId=VX00112233445566778899aabbccddeeff\
          &SessionStatus=completed&SessionDuration=25&HandoffData=%7B%22to%22%3A%22agent%22%7D%0A",
    )
    .expect("form");
    let end = crate::session_end::SessionEnd::of_verified(&form, ac, ca);
    let record = DeliveryRecord::of_session_end(&end, 1_795_881_601_000).expect("record");
    assert_eq!(record.kind(), RecordType::SessionEnd);
    assert_eq!(
        record.partition_key(),
        CA,
        "no connection: the call is the key"
    );
    assert!(!record.json().contains('\n'), "one line");
    let v: Value = serde_json::from_str(record.json()).expect("json");
    assert_eq!(
        v,
        serde_json::json!({
            "v": 1, "type": "session_end", "protocol": "conversation-relay",
            "accountSid": AC, "callSid": CA, "sessionId": "VX00112233445566778899aabbccddeeff",
            "receivedAt": 1_795_881_601_000_u64,
            "twilio": {
                "SessionId": "VX00112233445566778899aabbccddeeff", "SessionStatus": "completed",
                "SessionDuration": "25", "HandoffData": "{\"to\":\"agent\"}\n"
            }
        })
    );
    // Without a well-formed SessionId the record names no session (the field stays as posted).
    let form = crate::webhook_decision::WebhookForm::parse(b"SessionId=VX1").expect("form");
    let end = crate::session_end::SessionEnd::of_verified(&form, ac, ca);
    let v: Value = serde_json::from_str(
        DeliveryRecord::of_session_end(&end, 0)
            .expect("record")
            .json(),
    )
    .expect("json");
    assert!(v.get("sessionId").is_none());
    assert_eq!(v["twilio"], serde_json::json!({ "SessionId": "VX1" }));
}

#[test]
fn without_a_recorded_start_the_frame_names_its_own_sids() {
    let (ac, ca, mz) = sids();
    let frame = fixtures::media(&mz, 9, 8, &[0; 160]);
    let v = record(&frame, false);
    assert_eq!(v["streamSid"], MZ);
    assert!(v.get("callSid").is_none());
    let stop = record(&fixtures::stop(&ac, &ca, &mz, 10), false);
    assert_eq!(
        (&stop["callSid"], &stop["streamSid"]),
        (&json(CA), &json(MZ))
    );
    let start = record(&fixtures::start(&ac, &ca, &mz, None), false);
    assert_eq!(
        (&start["callSid"], &start["streamSid"]),
        (&json(CA), &json(MZ))
    );
    // What the call state recorded wins over what a frame names.
    let (other_call, other_stream) = (
        CallSid::parse("CA00000000000000000000000000000000").expect("ca"),
        StreamSid::parse("MZffffffffffffffffffffffffffffffff").expect("mz"),
    );
    let recorded = StartedCall::new(ac, other_call, other_stream, 0);
    let Decision::Deliver(v) = pipeline::parse(&frame, Protocol::MediaStreams)
        .and_then(|p| {
            p.judge(
                &ConnectionContext::MediaStreams { account: ac },
                CallTokenPolicy::Off,
                None,
                0,
            )
        })
        .expect("judged")
        .decide(StateStep::Accept(Some(recorded)))
    else {
        panic!("delivered");
    };
    assert_eq!(v.sids(), &CallSids::of_start(&recorded));
}

fn json(s: &str) -> Value {
    Value::from(s)
}

#[test]
fn connected_and_unknown_events_are_ignored_not_recorded() {
    for frame in [
        fixtures::connected(),
        r#"{"event":"telemetry","sequenceNumber":"3"}"#.to_owned(),
    ] {
        assert!(
            matches!(decide(&frame, true), Decision::Ignore(_)),
            "{frame}"
        );
    }
}

#[test]
fn escaped_names_and_odd_whitespace_still_make_one_valid_line() {
    let frame = format!(
        " {{\"event\":\"\\u006dark\",\t\"sequenceNumber\":\"\\u0034\",\"streamSid\":\"{MZ}\",\"mark\":{{\"name\":\"a\\nb\"}}}} "
    );
    let v = record(&frame, true);
    assert_eq!(v["type"], "mark");
    assert_eq!(v["sequenceNumber"], "4");
    assert_eq!(v["twilio"]["mark"]["name"], "a\nb");
}

#[test]
fn connection_id_and_endpoint_are_escaped() {
    let odd = Connection {
        connection_id: "a\"b\\c\n",
        management_endpoint: "http://127.0.0.1:9/dev",
        ..CONNECTION
    };
    let (ac, _, _) = sids();
    let text = DeliveryRecord::of_disconnect(&CallSids::account_only(ac), &odd)
        .expect("record")
        .into_json();
    let v: Value = serde_json::from_str(&text).expect("json");
    assert_eq!(v["connectionId"], "a\"b\\c\n");
}

#[test]
fn debug_shows_no_content() {
    let (_, _, mz) = sids();
    let frame = fixtures::media(&mz, 2, 1, &[0x55; 160]);
    let debug = format!("{:?}", built(&frame, true));
    assert!(
        !debug.contains("payload") && !debug.contains("VVVV"),
        "{debug}"
    );
    assert!(debug.contains("Media"), "{debug}");
}

#[test]
fn the_error_has_its_stable_code() {
    assert_eq!(RecordError::FrameNotJson.code(), "frame_not_json");
    assert_eq!(RecordError::FrameNotJson.to_string(), "frame_not_json");
}

#[test]
fn each_type_displays_as_its_type_field() {
    let shown: Vec<String> = RecordType::ALL.iter().map(ToString::to_string).collect();
    assert_eq!(
        shown,
        [
            "start",
            "media",
            "mark",
            "dtmf",
            "stop",
            "setup",
            "prompt",
            "interrupt",
            "error",
            "disconnect",
            "session_end"
        ]
    );
    for kind in RecordType::ALL {
        assert_eq!(kind.to_string(), kind.as_str());
    }
}

#[test]
fn the_delivery_record_holds_the_built_json() {
    let (_, _, mz) = sids();
    let frame = fixtures::mark(&mz, 4, "greeting");
    let built = built(&frame, true);
    assert_eq!(built.kind(), RecordType::Mark);
    let json = built.json().to_owned();
    assert!(json.ends_with(&format!("\"twilio\":{frame}}}")), "{json}");
    assert_eq!(built.into_json(), json);
}

#[test]
fn a_one_line_frame_is_copied_as_sent_without_surrounding_whitespace() {
    // Spaces inside and an escape: not how serde_json would write it, so a re-serialised frame
    // would differ from this one.
    let inner = format!(
        r#"{{"event": "mark", "sequenceNumber": "4", "streamSid": "{MZ}", "mark": {{"name": "\u0041"}}}}"#
    );
    let frame = format!(" \t {inner}\t ");
    let expected_head = format!(
        r#"{{"v":1,"type":"mark","protocol":"media-streams","connectionId":"Xk2TmdKPIAMCJqw=","managementEndpoint":"https://abc123.execute-api.us-east-1.amazonaws.com/prod","accountSid":"{AC}","callSid":"{CA}","streamSid":"{MZ}","sequenceNumber":"4","receivedAt":1795881601000,"twilio":"#
    );
    assert_eq!(text(&frame), format!("{expected_head}{inner}}}"));
}

#[test]
fn a_frame_with_only_one_kind_of_line_break_is_written_on_one_line() {
    for line_break in ["\n", "\r"] {
        let frame = format!(
            r#"{{"event":"mark",{line_break}"sequenceNumber":"4","streamSid":"{MZ}","mark":{{"name":"x"}}}}"#
        );
        // `record` refuses any line break in the record.
        let v = record(&frame, true);
        assert_eq!(
            v["twilio"],
            serde_json::json!({"event": "mark", "sequenceNumber": "4", "streamSid": MZ, "mark": {"name": "x"}}),
            "{line_break:?}"
        );
    }
}

/// Not a timing test: the hot path allocates the output once, sized up front, so building a media
/// record never reallocates (a reallocation would change the capacity).
#[test]
fn media_record_is_built_in_one_preallocated_buffer() {
    let (_, _, mz) = sids();
    let frame = fixtures::media(&mz, 2, 1, &[0xff; 160]);
    let text = text(&frame);
    let expected_capacity = HEAD_BYTES
        + CONNECTION.connection_id.len()
        + CONNECTION.management_endpoint.len()
        + frame.len();
    assert_eq!(text.capacity(), expected_capacity);
    assert!(text.len() <= expected_capacity);
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    /// Whatever the text, the pipeline decides, and what it delivers is one line of JSON.
    fn check(frame: &str) {
        for recorded in [false, true] {
            if let Decision::Deliver(v) = decide(frame, recorded) {
                let text = DeliveryRecord::of_frame(&v, &CONNECTION)
                    .expect("a verified frame always has a record")
                    .into_json();
                assert!(!text.contains('\n') && !text.contains('\r'));
                let v: Value = serde_json::from_str(&text).expect("record is JSON");
                assert!(v["twilio"].is_object());
            }
        }
    }

    proptest! {
        #[test]
        fn any_text_is_decided_and_a_delivered_one_is_a_record(frame in ".{0,200}") {
            check(&frame);
        }

        #[test]
        fn near_frames_are_decided_and_a_delivered_one_is_a_record(
            event in "(start|media|mark|dtmf|stop|connected|x)",
            seq in "[0-9a]{0,3}",
            extra in "[\\[\\]{}\",:0-9a-z \n]{0,40}",
        ) {
            check(&format!(r#"{{"event":"{event}","sequenceNumber":"{seq}","streamSid":"{MZ}",{extra}}}"#));
            check(&format!(r#"{{"event":"{event}","sequenceNumber":"{seq}","streamSid":"{MZ}","mark":{{"name":"x"}},"x":{extra}}}"#));
        }

        #[test]
        fn no_call_token_survives(mac in "[A-Za-z0-9_-]{8,80}", other in "[a-z]{1,8}") {
            prop_assume!(other != "token");
            // "v1." appears nowhere else in a record.
            let token = format!("v1.{mac}");
            let frame = start_with(&format!(r#""{other}":"x","token":"{token}""#));
            prop_assert!(!text(&frame).contains(&token));
        }
    }
}
