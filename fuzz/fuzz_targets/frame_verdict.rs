//! Any bytes as a `$default` frame: a verdict, never a panic; an accepted `start` is one that every
//! rule holds for (right account, consistent stream SIDs, a call token that verifies for the call).
#![no_main]

use libfuzzer_sys::fuzz_target;
use stream_gate_domain::call_token::verify_call_token;
use stream_gate_domain::{judge_frame, parse_frame, Accepted, CallTokenPolicy, Frame, Verdict};
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
});
