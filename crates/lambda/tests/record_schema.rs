//! Every record the builder produces (each type, from the `events/` frames and the
//! `stream_gate_domain::fixtures` builders) is valid against docs/record-v1.schema.json, checked
//! by Python's `jsonschema` (draft 2020-12, pinned, in `.venv`); and the schema refuses what the
//! contract forbids, so this test can fail.

use serde_json::{json, Value};
use stream_gate_domain::call_state::StartedCall;
use stream_gate_domain::connection_context::ConnectionContext;
use stream_gate_domain::fixtures;
use stream_gate_domain::pipeline::{parse, CallSids, Decision, StateStep};
use stream_gate_domain::record::{Connection, DeliveryRecord};
use stream_gate_domain::session_end::SessionEnd;
use stream_gate_domain::webhook_decision::WebhookForm;
use stream_gate_domain::CallTokenPolicy;
use stream_gate_domain::{AccountSid, CallSid, Protocol, SessionSid, StreamSid};
use stream_gate_testkit::{event, repo_file, schema};

const AC: &str = "ACdeadbeefdeadbeefdeadbeefdeadbeef";
const CA: &str = "CAffeeddccbbaa99887766554433221100";
const MZ: &str = "MZ00112233445566778899aabbccddeeff";
const VX: &str = "VX00112233445566778899aabbccddeeff";

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

/// The connection's recorded start (call state on), or none (call state off).
fn recorded(known: bool) -> Option<StartedCall> {
    let (ac, ca, mz) = sids();
    known.then(|| StartedCall::new(ac, ca, mz, 1_795_881_600))
}

fn body(file: &str) -> String {
    event(file)["body"].as_str().expect("event body").to_owned()
}

/// The record the pipeline delivers for `frame`, or the disconnect record for `None`.
fn record(known: bool, frame: Option<&str>) -> Value {
    let (ac, _, _) = sids();
    let record = match frame {
        Some(frame) => fixtures::delivered(
            frame,
            &ConnectionContext::MediaStreams { account: ac },
            recorded(known),
            &CONNECTION,
        ),
        None => {
            let sids =
                recorded(known).map_or(CallSids::account_only(ac), |r| CallSids::of_start(&r));
            DeliveryRecord::of_disconnect(&sids, &CONNECTION).expect("record")
        }
    };
    serde_json::from_str(record.json()).expect("record JSON")
}

fn every_record() -> Vec<Value> {
    let ac = AccountSid::parse(AC).expect("ac");
    let ca = CallSid::parse(CA).expect("ca");
    let mz = StreamSid::parse(MZ).expect("mz");
    let frames = vec![
        body("default-start.json"),
        body("default-media.json"),
        body("default-stop.json"),
        fixtures::start(&ac, &ca, &mz, Some("v1.4102444800.mac")),
        fixtures::start(&ac, &ca, &mz, None),
        fixtures::media(&mz, 2, 1, &[0xff; 160]),
        fixtures::media(&mz, 3, 2, &[0x00; 1]),
        fixtures::mark(&mz, 4, "greeting played"),
        fixtures::dtmf(&mz, 5, '#'),
        fixtures::stop(&ac, &ca, &mz, 378),
    ];
    let mut records = Vec::new();
    for known in [true, false] {
        for frame in &frames {
            records.push(record(known, Some(frame)));
        }
        records.push(record(known, None));
    }
    records.extend(relay_records());
    records
}

/// Every ConversationRelay record: each delivered message type with call state on and off, and
/// the disconnect with and without a recorded setup.
fn relay_records() -> Vec<Value> {
    let (ac, ca, _) = sids();
    let vx = SessionSid::parse(VX).expect("vx");
    let context = ConnectionContext::ConversationRelay {
        account: ac,
        call: ca,
        token_expires_at: 4_102_444_800,
    };
    let connection = Connection {
        protocol: Protocol::ConversationRelay,
        ..CONNECTION
    };
    let setup = StartedCall::new(ac, ca, vx, 1_795_881_600);
    let messages = [
        fixtures::relay_setup(&vx, &ac, &ca),
        fixtures::relay_prompt("What's the weather?", true),
        fixtures::relay_prompt("What's", false),
        fixtures::relay_dtmf('5'),
        fixtures::relay_interrupt("What's the", 1200),
        fixtures::relay_error("Invalid message received"),
    ];
    let mut records = Vec::new();
    for recorded in [Some(setup), None] {
        for message in &messages {
            let r = fixtures::delivered(message, &context, recorded, &connection);
            records.push(serde_json::from_str(r.json()).expect("record JSON"));
        }
        let sids = recorded.map_or(CallSids::of_context(&context), |r| CallSids::of_start(&r));
        let r = DeliveryRecord::of_disconnect(&sids, &connection).expect("record");
        records.push(serde_json::from_str(r.json()).expect("record JSON"));
    }
    // The session's end, as Twilio posts it (all six fields; none but the SIDs; a malformed
    // SessionId, which names no session).
    for body in [
        format!(
            "AccountSid={AC}&CallSid={CA}&SessionId={VX}&SessionStatus=failed&SessionDuration=25\
             &HandoffData=%7B%22reason%22%3A%22agent%22%7D&ErrorCode=39001&ErrorMessage=Network+failed"
        ),
        format!("AccountSid={AC}&CallSid={CA}"),
        "SessionId=VXnope&SessionStatus=ended".to_owned(),
    ] {
        let form = WebhookForm::parse(body.as_bytes()).expect("form");
        let end = SessionEnd::of_verified(&form, ac, ca);
        let r = DeliveryRecord::of_session_end(&end, 1_795_881_700_000).expect("record");
        records.push(serde_json::from_str(r.json()).expect("record JSON"));
    }
    records
}

#[test]
fn every_record_type_is_valid_against_the_schema() {
    let records = every_record();
    let types: std::collections::BTreeSet<&str> =
        records.iter().filter_map(|r| r["type"].as_str()).collect();
    assert_eq!(
        types.into_iter().collect::<Vec<_>>(),
        [
            "disconnect",
            "dtmf",
            "error",
            "interrupt",
            "mark",
            "media",
            "prompt",
            "session_end",
            "setup",
            "start",
            "stop"
        ]
    );
    let results = schema::validate(&repo_file("docs/record-v1.schema.json"), &records);
    for (record, result) in records.iter().zip(&results) {
        assert_eq!(result, &None, "{record}");
    }
}

#[test]
fn the_connected_event_has_no_record() {
    let (ac, _, _) = sids();
    let connected = body("default-connected.json");
    let judged = parse(&connected, Protocol::MediaStreams)
        .and_then(|p| {
            p.judge(
                &ConnectionContext::MediaStreams { account: ac },
                CallTokenPolicy::Off,
                None,
                0,
            )
        })
        .expect("accepted");
    assert!(matches!(
        judged.decide(StateStep::Accept(recorded(true))),
        Decision::Ignore(_)
    ));
}

#[test]
fn the_schema_refuses_what_the_contract_forbids() {
    let start = record(true, Some(&body("default-start.json")));
    let media = record(true, Some(&body("default-media.json")));
    let disconnect = record(true, None);
    let mut with_token = start.clone();
    with_token["twilio"]["start"]["customParameters"]["token"] = json!("v1.1.mac");
    let mut v2 = media.clone();
    v2["v"] = json!(2);
    let mut extra = media.clone();
    extra["payload"] = json!("AAAA");
    let mut no_sequence = media.clone();
    no_sequence
        .as_object_mut()
        .map(|o| o.remove("sequenceNumber"));
    let mut numeric_sequence = media.clone();
    numeric_sequence["sequenceNumber"] = json!(2);
    let mut disconnect_with_frame = disconnect.clone();
    disconnect_with_frame["twilio"] = media["twilio"].clone();
    let mut connected = media.clone();
    connected["type"] = json!("connected");
    let mut bad_sid = media.clone();
    bad_sid["accountSid"] = json!("ACXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX");
    let mut bad_payload = media.clone();
    bad_payload["twilio"]["media"]["payload"] = json!("not base64");
    let mut wrong_event = media.clone();
    wrong_event["twilio"]["event"] = json!("stop");
    let relay = relay_records();
    let relay_of = |kind: &str| {
        relay
            .iter()
            .find(|r| r["type"] == kind)
            .cloned()
            .expect("a relay record of that type")
    };
    let mut no_protocol = media.clone();
    no_protocol.as_object_mut().map(|o| o.remove("protocol"));
    let mut media_as_relay = media.clone();
    media_as_relay["protocol"] = json!("conversation-relay");
    let mut prompt_as_media = relay_of("prompt");
    prompt_as_media["protocol"] = json!("media-streams");
    let mut setup_without_session = relay_of("setup");
    setup_without_session
        .as_object_mut()
        .map(|o| o.remove("sessionId"));
    let mut relay_without_call = relay_of("prompt");
    relay_without_call
        .as_object_mut()
        .map(|o| o.remove("callSid"));
    let mut prompt_without_text = relay_of("prompt");
    prompt_without_text["twilio"]
        .as_object_mut()
        .map(|o| o.remove("voicePrompt"));
    let mut prompt_typed_error = relay_of("prompt");
    prompt_typed_error["twilio"]["type"] = json!("error");
    let mut bad_session = relay_of("setup");
    bad_session["sessionId"] = json!("MZ00112233445566778899aabbccddeeff");
    let mut relay_with_sequence = relay_of("dtmf");
    relay_with_sequence["sequenceNumber"] = json!("3");
    let mut info = relay_of("prompt");
    info["type"] = json!("info");
    let mut media_with_session = media.clone();
    media_with_session["sessionId"] = json!("VX00112233445566778899aabbccddeeff");
    let end = relay_of("session_end");
    let mut end_with_connection = end.clone();
    end_with_connection["connectionId"] = json!("Xk2TmdKPIAMCJqw=");
    let mut end_of_media = end.clone();
    end_of_media["protocol"] = json!("media-streams");
    let mut end_without_call = end.clone();
    end_without_call
        .as_object_mut()
        .map(|o| o.remove("callSid"));
    let mut end_with_number = end.clone();
    end_with_number["twilio"]["SessionDuration"] = json!(25);
    let mut prompt_without_connection = relay_of("prompt");
    prompt_without_connection
        .as_object_mut()
        .map(|o| o.remove("connectionId"));
    let bad = vec![
        end_with_connection,
        end_of_media,
        end_without_call,
        end_with_number,
        prompt_without_connection,
        no_protocol,
        media_as_relay,
        prompt_as_media,
        setup_without_session,
        relay_without_call,
        prompt_without_text,
        prompt_typed_error,
        bad_session,
        relay_with_sequence,
        info,
        media_with_session,
        with_token,
        v2,
        extra,
        no_sequence,
        numeric_sequence,
        disconnect_with_frame,
        connected,
        bad_sid,
        bad_payload,
        wrong_event,
    ];
    let results = schema::validate(&repo_file("docs/record-v1.schema.json"), &bad);
    for (record, result) in bad.iter().zip(&results) {
        assert!(result.is_some(), "the schema accepted {record}");
    }
}

#[test]
fn the_examples_in_the_records_doc_are_valid() {
    let doc = std::fs::read_to_string(repo_file("docs/records.md")).expect("docs/records.md");
    // Every ```json block that is a record (has "v").
    let examples: Vec<Value> = doc
        .split("```json")
        .skip(1)
        .filter_map(|block| block.split("```").next())
        .filter_map(|text| serde_json::from_str::<Value>(text).ok())
        .filter(|v| v.get("v").is_some())
        .collect();
    let types: std::collections::BTreeSet<&str> =
        examples.iter().filter_map(|r| r["type"].as_str()).collect();
    assert_eq!(types.len(), 11, "an example per type: {types:?}");
    let results = schema::validate(&repo_file("docs/record-v1.schema.json"), &examples);
    for (record, result) in examples.iter().zip(&results) {
        assert_eq!(result, &None, "{record}");
    }
}
