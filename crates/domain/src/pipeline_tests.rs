use super::*;
use crate::call_state::StartedStream;
use crate::fixtures;

const AC: &str = "ACdeadbeefdeadbeefdeadbeefdeadbeef";
const CA: &str = "CAffeeddccbbaa99887766554433221100";
const MZ: &str = "MZ00112233445566778899aabbccddeeff";

fn sids() -> (AccountSid, CallSid, StreamSid) {
    (
        AccountSid::parse(AC).expect("ac"),
        CallSid::parse(CA).expect("ca"),
        StreamSid::parse(MZ).expect("mz"),
    )
}

fn judged(text: &str) -> Judged<'_> {
    let (ac, _, _) = sids();
    parse(text)
        .expect("parsed")
        .judge(&ac, CallTokenPolicy::Off, None, 0)
        .expect("accepted")
}

fn frames() -> Vec<(String, RecordType)> {
    let (ac, ca, mz) = sids();
    vec![
        (fixtures::start(&ac, &ca, &mz, None), RecordType::Start),
        (fixtures::media(&mz, 2, 1, b"abc"), RecordType::Media),
        (fixtures::mark(&mz, 3, "m"), RecordType::Mark),
        (fixtures::dtmf(&mz, 4, '5'), RecordType::Dtmf),
        (fixtures::stop(&ac, &ca, &mz, 5), RecordType::Stop),
    ]
}

#[test]
fn each_recorded_event_is_delivered_with_its_type_sequence_and_text() {
    for (i, (text, kind)) in frames().iter().enumerate() {
        let Decision::Deliver(v) = judged(text).decide(StateStep::Accept(None)) else {
            panic!("{text}");
        };
        assert_eq!(v.kind(), *kind);
        assert_eq!(v.text(), text.as_str());
        assert_eq!(v.sequence_number(), Some((i + 1).to_string().as_str()));
        assert_eq!(v.accepted(), judged(text).accepted());
    }
}

#[test]
fn connected_and_unknown_events_are_ignored() {
    for text in [fixtures::connected(), r#"{"event":"later"}"#.to_owned()] {
        let j = judged(&text);
        let accepted = *j.accepted();
        assert_eq!(
            j.decide(StateStep::Accept(None)),
            Decision::Ignore(accepted)
        );
    }
}

#[test]
fn the_call_state_step_drops_and_closes_before_anything_is_delivered() {
    for (text, _) in frames() {
        let why = DropReason::StartPending;
        assert_eq!(
            judged(&text).decide(StateStep::Drop(why)),
            Decision::Drop(why)
        );
        let reason = CloseReason::StreamSidMismatch;
        assert_eq!(
            judged(&text).decide(StateStep::Close(reason)),
            Decision::Close(reason)
        );
    }
}

#[test]
fn records_carry_the_recorded_start_s_sids_or_else_the_frame_s_own() {
    let (ac, ca, mz) = sids();
    let other_call = CallSid::parse("CA00000000000000000000000000000000").expect("ca");
    let other_stream = StreamSid::parse("MZffffffffffffffffffffffffffffffff").expect("mz");
    let recorded = StartedStream::new(ac, other_call, other_stream, 0);
    let own = |call: Option<CallSid>| CallSids {
        account: ac,
        call,
        stream: Some(mz),
    };
    let expected_own = [
        own(Some(ca)),
        own(None),
        own(None),
        own(None),
        own(Some(ca)),
    ];
    for ((text, _), expected) in frames().iter().zip(expected_own) {
        let Decision::Deliver(v) = judged(text).decide(StateStep::Accept(Some(recorded))) else {
            panic!("{text}");
        };
        assert_eq!(v.sids(), &CallSids::of_start(&recorded), "{text}");
        let Decision::Deliver(v) = judged(text).decide(StateStep::Accept(None)) else {
            panic!("{text}");
        };
        assert_eq!(v.sids(), &expected, "{text}");
    }
}

#[test]
fn the_verdict_s_refusals_and_its_needs_are_the_grammar_s() {
    let (ac, ca, mz) = sids();
    let other = AccountSid::parse("AC00000000000000000000000000000000").expect("ac");
    let start = fixtures::start(&ac, &ca, &mz, None);
    assert_eq!(
        parse(&start)
            .expect("parsed")
            .judge(&other, CallTokenPolicy::Off, None, 0),
        Err(CloseReason::StartAccountMismatch)
    );
    assert_eq!(parse("[]"), Err(CloseReason::FrameNotObject));
    let parsed = parse(&start).expect("parsed");
    assert!(parsed.needs_credentials(CallTokenPolicy::Required));
    assert!(!parsed.needs_credentials(CallTokenPolicy::Off));
    let j = judged(&start);
    assert_eq!(j.account(), &ac);
    assert_eq!(j.binding(), None, "a start records its call instead");
    let media = fixtures::media(&mz, 2, 1, b"abc");
    assert_eq!(judged(&media).binding(), Some(Binding::Stream(mz)));
}

#[test]
fn drop_reasons_have_their_log_and_metric_codes() {
    assert_eq!(DropReason::StartPending.code(), "start_pending");
    assert_eq!(
        DropReason::CallStateUnavailable.code(),
        "call_state_unavailable"
    );
}
