use super::*;
use crate::call_state::StartedCall;
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
    parse(text, Protocol::MediaStreams)
        .expect("parsed")
        .judge(
            &ConnectionContext::MediaStreams { account: ac },
            CallTokenPolicy::Off,
            None,
            0,
        )
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
    let recorded = StartedCall::new(ac, other_call, other_stream, 0);
    let own = |call: Option<CallSid>| CallSids {
        account: ac,
        call,
        stream: Some(mz),
        session: None,
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
        parse(&start, Protocol::MediaStreams)
            .expect("parsed")
            .judge(
                &ConnectionContext::MediaStreams { account: other },
                CallTokenPolicy::Off,
                None,
                0
            ),
        Err(CloseReason::StartAccountMismatch)
    );
    assert_eq!(
        parse("[]", Protocol::MediaStreams),
        Err(CloseReason::FrameNotObject)
    );
    let parsed = parse(&start, Protocol::MediaStreams).expect("parsed");
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

// ConversationRelay: the same pipeline with the relay grammar and a context that pins the call.

const VX: &str = "VX00112233445566778899aabbccddeeff";
const TOKEN_EXPIRES_AT: u64 = 1_900_000_000;

fn relay_context() -> ConnectionContext {
    let (ac, ca, _) = sids();
    ConnectionContext::ConversationRelay {
        account: ac,
        call: ca,
        token_expires_at: TOKEN_EXPIRES_AT,
    }
}

fn relay_judged(text: &str) -> Judged<'_> {
    parse(text, Protocol::ConversationRelay)
        .expect("parsed")
        .judge(&relay_context(), CallTokenPolicy::Required, None, 0)
        .expect("accepted")
}

fn relay_setup() -> String {
    let (ac, ca, _) = sids();
    fixtures::relay_setup(&SessionSid::parse(VX).expect("vx"), &ac, &ca)
}

fn relay_messages() -> Vec<(String, RecordType)> {
    vec![
        (relay_setup(), RecordType::Setup),
        (fixtures::relay_prompt("hello", true), RecordType::Prompt),
        (fixtures::relay_dtmf('9'), RecordType::Dtmf),
        (fixtures::relay_interrupt("hel", 10), RecordType::Interrupt),
        (fixtures::relay_error("bad"), RecordType::Error),
    ]
}

#[test]
fn relay_messages_are_delivered_with_the_context_s_call_and_no_sequence_number() {
    let (ac, ca, _) = sids();
    let vx = SessionSid::parse(VX).expect("vx");
    for (text, kind) in relay_messages() {
        let Decision::Deliver(v) = relay_judged(&text).decide(StateStep::Accept(None)) else {
            panic!("{text}");
        };
        assert_eq!(v.kind(), kind, "{text}");
        assert_eq!(v.text(), text.as_str());
        assert_eq!(v.sequence_number(), None);
        let session = (kind == RecordType::Setup).then_some(vx);
        assert_eq!(
            v.sids(),
            &CallSids {
                account: ac,
                call: Some(ca),
                stream: None,
                session
            },
            "{text}"
        );
        let recorded = StartedCall::new(ac, ca, vx, 0);
        let Decision::Deliver(v) = relay_judged(&text).decide(StateStep::Accept(Some(recorded)))
        else {
            panic!("{text}");
        };
        assert_eq!(v.sids(), &CallSids::of_start(&recorded));
        assert_eq!(v.sids().session, Some(vx));
    }
    for text in [r#"{"type":"info","name":"x"}"#, r#"{"type":"later"}"#] {
        let j = relay_judged(text);
        let accepted = *j.accepted();
        assert_eq!(
            j.decide(StateStep::Accept(None)),
            Decision::Ignore(accepted)
        );
    }
}

#[test]
fn a_setup_claims_the_handshake_s_token_and_a_start_its_own() {
    let (ac, ca, mz) = sids();
    let vx = SessionSid::parse(VX).expect("vx");
    let setup = relay_setup();
    let j = relay_judged(&setup);
    assert_eq!(j.binding(), None, "a setup records its call instead");
    assert_eq!(j.repeated_start(), CloseReason::SetupRepeated);
    let (started, token) = j.start_claim(100).expect("a setup is a start");
    assert_eq!(started, StartedCall::new(ac, ca, vx, 100));
    assert_eq!(
        token,
        Some(CallTokenId {
            account_sid: ac,
            call_sid: ca,
            expires_at: TOKEN_EXPIRES_AT
        })
    );
    for (text, _) in relay_messages().into_iter().skip(1) {
        assert_eq!(relay_judged(&text).start_claim(100), None, "{text}");
        assert_eq!(relay_judged(&text).binding(), Some(Binding::Session));
    }
    assert_eq!(
        relay_judged(r#"{"type":"info"}"#).binding(),
        Some(Binding::SessionUnbound)
    );

    let start = fixtures::start(&ac, &ca, &mz, None);
    let j = judged(&start);
    assert_eq!(j.repeated_start(), CloseReason::StartRepeated);
    assert_eq!(
        j.start_claim(100),
        Some((StartedCall::new(ac, ca, mz, 100), None)),
        "a start without a checked token claims none"
    );
    let media = fixtures::media(&mz, 2, 1, b"abc");
    assert_eq!(judged(&media).start_claim(100), None);
}

#[test]
fn a_start_claims_the_token_it_presented() {
    let (ac, ca, mz) = sids();
    let creds = Credentials::from_json(include_str!("../../../events/credentials.test.json"))
        .expect("credentials");
    let token = crate::mint_call_token(&creds, &ac, &ca, 1000, 600).expect("token");
    let start = fixtures::start(&ac, &ca, &mz, Some(token.expose()));
    let j = parse(&start, Protocol::MediaStreams)
        .expect("parsed")
        .judge(
            &ConnectionContext::MediaStreams { account: ac },
            CallTokenPolicy::Required,
            Some(&creds),
            1000,
        )
        .expect("accepted");
    let (_, claimed) = j.start_claim(1000).expect("start");
    assert_eq!(
        claimed,
        Some(CallTokenId {
            account_sid: ac,
            call_sid: ca,
            expires_at: 1600
        })
    );
}

#[test]
fn a_frame_judged_against_the_other_protocol_s_context_closes() {
    let (ac, ca, mz) = sids();
    let start = fixtures::start(&ac, &ca, &mz, None);
    let media_streams = ConnectionContext::MediaStreams { account: ac };
    assert_eq!(
        parse(&start, Protocol::MediaStreams).and_then(|p| p.judge(
            &relay_context(),
            CallTokenPolicy::Off,
            None,
            0
        )),
        Err(CloseReason::ProtocolMismatch)
    );
    assert_eq!(
        parse(&relay_setup(), Protocol::ConversationRelay).and_then(|p| p.judge(
            &media_streams,
            CallTokenPolicy::Off,
            None,
            0
        )),
        Err(CloseReason::ProtocolMismatch)
    );
    assert_eq!(
        parse(&start, Protocol::ConversationRelay),
        Err(CloseReason::ProtocolMismatch)
    );
    assert_eq!(
        parse(&relay_setup(), Protocol::MediaStreams),
        Err(CloseReason::ProtocolMismatch)
    );
    let setup = relay_setup();
    let parsed = parse(&setup, Protocol::ConversationRelay).expect("parsed");
    assert!(
        !parsed.needs_credentials(CallTokenPolicy::Required),
        "the relay token was checked at $connect"
    );
    let other_call = fixtures::relay_setup(
        &SessionSid::parse(VX).expect("vx"),
        &ac,
        &CallSid::parse("CA00000000000000000000000000000000").expect("ca"),
    );
    assert_eq!(
        parse(&other_call, Protocol::ConversationRelay).and_then(|p| p.judge(
            &relay_context(),
            CallTokenPolicy::Off,
            None,
            0
        )),
        Err(CloseReason::SetupCallSidMismatch)
    );
}

#[test]
fn a_disconnect_knows_what_its_context_knows() {
    let (ac, ca, _) = sids();
    assert_eq!(
        CallSids::of_context(&relay_context()),
        CallSids {
            account: ac,
            call: Some(ca),
            stream: None,
            session: None
        }
    );
    assert_eq!(
        CallSids::of_context(&ConnectionContext::MediaStreams { account: ac }),
        CallSids::account_only(ac)
    );
}
