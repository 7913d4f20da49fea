//! Any bytes as a `$default` frame: a verdict, never a panic; an accepted `start` is one that every
//! rule holds for (right account, consistent stream SIDs, a call token that verifies for the call);
//! and the pipeline's decision agrees with the verdict, and a delivered frame's record is one line of
//! JSON without the call token.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stream_gate_domain::call_token::verify_call_token;
use stream_gate_domain::connection_context::ConnectionContext;
use stream_gate_domain::pipeline::{self, Decision, StateStep};
use stream_gate_domain::record::{Connection, DeliveryRecord};
use stream_gate_domain::{
    judge_frame, parse_frame, Accepted, CallTokenPolicy, Frame, Protocol, Verdict,
};
use stream_gate_fuzz::{credentials, expected_account, NOW};

fuzz_target!(|data: &[u8]| {
    let expected = expected_account();
    for policy in [
        CallTokenPolicy::Required,
        CallTokenPolicy::Optional,
        CallTokenPolicy::Off,
    ] {
        let verdict = judge_frame(data, &expected, policy, Some(credentials()), NOW);
        if let Verdict::Accept(Accepted::Start {
            call_sid,
            stream_sid,
            call_token,
        }) = verdict
        {
            let Ok(Frame::Start(start)) = parse_frame(data) else {
                panic!("accepted a start that does not parse as one");
            };
            assert_eq!(start.account_sid, expected);
            assert_eq!(start.call_sid, call_sid);
            assert_eq!(start.stream_sid, stream_sid);
            assert_eq!(start.start_stream_sid, stream_sid);
            if policy == CallTokenPolicy::Required {
                assert!(call_token.is_some(), "required token not checked");
            }
            if call_token.is_some() {
                let token = start.call_token.as_deref().unwrap_or_default();
                assert!(verify_call_token(credentials(), token, &expected, &call_sid, NOW).is_ok());
            }
        }
    }
    // Without credentials, a start that needs a token is never accepted.
    if let Verdict::Accept(Accepted::Start { .. }) =
        judge_frame(data, &expected, CallTokenPolicy::Required, None, NOW)
    {
        panic!("accepted a start without credentials");
    }
    // The pipeline judges as the verdict does, and what it delivers makes a clean record.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let policy = CallTokenPolicy::Optional;
    let context = ConnectionContext::MediaStreams { account: expected };
    let judged = pipeline::parse(text, Protocol::MediaStreams)
        .and_then(|p| p.judge(&context, policy, Some(credentials()), NOW));
    let verdict = judge_frame(data, &expected, policy, Some(credentials()), NOW);
    match (&judged, verdict) {
        (Ok(j), Verdict::Accept(a)) => assert_eq!(*j.accepted(), a),
        (Err(r), Verdict::Close(c)) => assert_eq!(*r, c),
        _ => panic!("the pipeline and the verdict disagree"),
    }
    if let Ok(j) = judged {
        if let Decision::Deliver(frame) = j.decide(StateStep::Accept(None)) {
            let connection = Connection {
                protocol: Protocol::MediaStreams,
                connection_id: "c",
                management_endpoint: "https://a.execute-api.us-east-1.amazonaws.com/p",
                received_at_ms: NOW * 1000,
            };
            let record = DeliveryRecord::of_frame(&frame, &connection).expect("a record");
            assert!(!record.json().contains('\n') && !record.json().contains('\r'));
            let value: serde_json::Value = serde_json::from_str(record.json()).expect("JSON");
            assert!(value["twilio"]["start"]["customParameters"]
                .get("token")
                .is_none());
        }
    }
});
