//! Every record the builder produces (each type, from the `events/` frames and the
//! `stream_gate_domain::fixtures` builders) is valid against docs/record-v1.schema.json, checked
//! by Python's `jsonschema` (draft 2020-12, pinned, in `.venv`); and the schema refuses what the
//! contract forbids, so this test can fail.

use serde_json::{json, Value};
use stream_gate_domain::call_state::StartedStream;
use stream_gate_domain::fixtures;
use stream_gate_domain::pipeline::{parse, CallSids, Decision, StateStep};
use stream_gate_domain::record::{Connection, DeliveryRecord};
use stream_gate_domain::CallTokenPolicy;
use stream_gate_domain::{AccountSid, CallSid, StreamSid};
use stream_gate_testkit::{event, repo_file, schema};

const AC: &str = "ACdeadbeefdeadbeefdeadbeefdeadbeef";
const CA: &str = "CAffeeddccbbaa99887766554433221100";
const MZ: &str = "MZ00112233445566778899aabbccddeeff";

const CONNECTION: Connection<'static> = Connection {
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
fn recorded(known: bool) -> Option<StartedStream> {
    let (ac, ca, mz) = sids();
    known.then(|| StartedStream::new(ac, ca, mz, 1_795_881_600))
}

fn body(file: &str) -> String {
    event(file)["body"].as_str().expect("event body").to_owned()
}

/// The record the pipeline delivers for `frame`, or the disconnect record for `None`.
fn record(known: bool, frame: Option<&str>) -> Value {
    let (ac, _, _) = sids();
    let record = match frame {
        Some(frame) => fixtures::delivered(frame, &ac, recorded(known), &CONNECTION),
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
    records
}

#[test]
fn every_record_type_is_valid_against_the_schema() {
    let records = every_record();
    let types: std::collections::BTreeSet<&str> =
        records.iter().filter_map(|r| r["type"].as_str()).collect();
    assert_eq!(
        types.into_iter().collect::<Vec<_>>(),
        ["disconnect", "dtmf", "mark", "media", "start", "stop"]
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
    let judged = parse(&connected)
        .and_then(|p| p.judge(&ac, CallTokenPolicy::Off, None, 0))
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
    let bad = vec![
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
    assert_eq!(types.len(), 6, "an example per type: {types:?}");
    let results = schema::validate(&repo_file("docs/record-v1.schema.json"), &examples);
    for (record, result) in examples.iter().zip(&results) {
        assert_eq!(result, &None, "{record}");
    }
}
