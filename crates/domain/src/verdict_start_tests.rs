//! The `start` frame and its call token: one test per rule, asserting the exact reason (helpers
//! in verdict_tests.rs).

use serde_json::json;

use super::*;

#[test]
fn start_rules() {
    let st = good_start();
    assert_eq!(
        closes_after(&st, |v| v["streamSid"] = json!(7)),
        CloseReason::StreamSidInvalid
    );
    assert_eq!(
        closes_after(&st, |v| {
            v.as_object_mut().map(|o| o.remove("sequenceNumber"));
        }),
        CloseReason::SequenceNumberInvalid
    );
    assert_eq!(
        closes_after(&st, |v| v["start"] = json!({})),
        CloseReason::StartMalformed
    );
    assert_eq!(
        closes_after(&st, |v| v["start"]["tracks"] = json!([])),
        CloseReason::StartMalformed
    );
    assert_eq!(
        closes_after(&st, |v| v["start"]["tracks"] = json!(["both"])),
        CloseReason::StartMalformed
    );
    assert_eq!(
        closes_after(&st, |v| {
            v["start"].as_object_mut().map(|o| o.remove("mediaFormat"));
        }),
        CloseReason::StartMalformed
    );
    assert_eq!(
        closes_after(&st, |v| v["start"]["customParameters"] =
            json!({"token": 5})),
        CloseReason::StartMalformed
    );
    assert_eq!(
        closes_after(&st, |v| v["start"]["accountSid"] =
            json!("ACXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX")),
        CloseReason::StartSidInvalid
    );
    assert_eq!(
        closes_after(&st, |v| v["start"]["callSid"] = json!(AC)),
        CloseReason::StartSidInvalid
    );
    assert_eq!(
        closes_after(&st, |v| v["start"]["streamSid"] = json!(CA)),
        CloseReason::StartSidInvalid
    );
    assert_eq!(
        closes_after(&st, |v| v["start"]["accountSid"] = json!(AC_OTHER)),
        CloseReason::StartAccountMismatch
    );
    assert_eq!(
        closes_after(&st, |v| v["streamSid"] =
            json!("MZ00000000000000000000000000000000")),
        CloseReason::StartStreamSidMismatch
    );
    assert_eq!(
        closes_after(&st, |v| v["start"]["mediaFormat"]["encoding"] =
            json!("audio/l16")),
        CloseReason::StartMediaFormat
    );
    assert_eq!(
        closes_after(&st, |v| v["start"]["mediaFormat"]["sampleRate"] =
            json!(16000)),
        CloseReason::StartMediaFormat
    );
    assert_eq!(
        closes_after(&st, |v| v["start"]["mediaFormat"]["channels"] = json!(2)),
        CloseReason::StartMediaFormat
    );
    assert_eq!(
        closes_after(&st, |v| v["start"]["mediaFormat"]["sampleRate"] =
            json!(1e300)),
        CloseReason::StartMediaFormat
    );
    assert_eq!(
        closes_after(&st, |v| v["start"]["mediaFormat"] = json!("mulaw")),
        CloseReason::StartMediaFormat
    );
    // Duplicate token keys in customParameters: ambiguous, refused.
    let dup = good_start()
        .to_string()
        .replacen("\"token\":", "\"token\":\"v1.1.x\",\"token\":", 1);
    assert_eq!(closes(&dup), CloseReason::StartMalformed);
}

#[test]
fn call_token_rules() {
    let st = good_start();
    assert_eq!(
        closes_after(&st, |v| v["start"]["customParameters"] = json!({})),
        CloseReason::CallTokenMissing
    );
    assert_eq!(
        closes_after(&st, |v| {
            v["start"]
                .as_object_mut()
                .map(|o| o.remove("customParameters"));
        }),
        CloseReason::CallTokenMissing
    );
    assert_eq!(
        closes_after(&st, |v| v["start"]["customParameters"] = json!(null)),
        CloseReason::CallTokenMissing
    );
    assert_eq!(
        closes_after(&st, |v| v["start"]["customParameters"]["token"] =
            json!("nope")),
        CloseReason::CallTokenMalformed
    );
    // Token of another call.
    let other_call = CallSid::parse("CA00000000000000000000000000000000").expect("ca");
    let (a, _, _) = sids();
    let other = mint_call_token(&creds(), &a, &other_call, NOW, 300).expect("key");
    assert_eq!(
        closes_after(&st, |v| v["start"]["customParameters"]["token"] =
            json!(other.expose())),
        CloseReason::CallTokenInvalid
    );
    // Expired: minted 10 minutes ago with a 5-minute lifetime.
    let (a, c, _) = sids();
    let old = mint_call_token(&creds(), &a, &c, NOW - 600, 300).expect("key");
    assert_eq!(
        closes_after(&st, |v| v["start"]["customParameters"]["token"] =
            json!(old.expose())),
        CloseReason::CallTokenExpired
    );
    // Optional: missing is fine, present and bad is not.
    let mut no_token = good_start();
    no_token["start"]["customParameters"] = json!({});
    assert!(matches!(
        judge_with(&no_token.to_string(), CallTokenPolicy::Optional),
        Verdict::Accept(_)
    ));
    let mut bad = good_start();
    bad["start"]["customParameters"]["token"] = json!("nope");
    assert_eq!(
        judge_with(&bad.to_string(), CallTokenPolicy::Optional),
        Verdict::Close(CloseReason::CallTokenMalformed)
    );
    assert!(matches!(
        judge_with(&bad.to_string(), CallTokenPolicy::Off),
        Verdict::Accept(_)
    ));
    // No credentials loaded: a start that needs its token checked closes.
    let (a, _, _) = sids();
    assert_eq!(
        judge_frame(
            good_start().to_string().as_bytes(),
            &a,
            CallTokenPolicy::Required,
            None,
            NOW
        ),
        Verdict::Close(CloseReason::CredentialsUnavailable)
    );
    // A document without call-token keys.
    let no_keys = Credentials::from_json(&format!(
        r#"{{"twilioAccounts":[{{"accountSid":"{AC}","authTokens":["t"]}}]}}"#
    ))
    .expect("valid");
    assert_eq!(
        judge_frame(
            good_start().to_string().as_bytes(),
            &a,
            CallTokenPolicy::Required,
            Some(&no_keys),
            NOW
        ),
        Verdict::Close(CloseReason::CallTokenKeysMissing)
    );
}

#[test]
fn call_token_policy_parses_exactly_its_three_names() {
    // STREAM_GATE_CALL_TOKEN: a typo must be a configuration error, never the default.
    for (text, policy) in [
        ("required", CallTokenPolicy::Required),
        ("optional", CallTokenPolicy::Optional),
        ("off", CallTokenPolicy::Off),
    ] {
        assert_eq!(text.parse::<CallTokenPolicy>(), Ok(policy), "{text}");
    }
    for text in [
        "",
        "Required",
        "OFF",
        " off",
        "off ",
        "none",
        "false",
        "0",
        "optional,off",
    ] {
        assert_eq!(
            text.parse::<CallTokenPolicy>(),
            Err("expected required, optional or off".to_string()),
            "{text:?}"
        );
    }
    assert_eq!(CallTokenPolicy::default(), CallTokenPolicy::Required);
}

#[test]
fn credentials_are_needed_only_for_a_start_whose_token_is_checked() {
    use CallTokenPolicy::{Off, Optional, Required};
    let expected = [
        // (frame, Required, Optional, Off)
        ("connected", false, false, false),
        ("start", true, true, false),
        ("start without token", true, false, false),
        ("media", false, false, false),
        ("mark", false, false, false),
        ("dtmf", false, false, false),
        ("stop", false, false, false),
        ("unknown", false, false, false),
    ];
    for ((name, frame), (row, required, optional, off)) in one_of_each().iter().zip(expected) {
        assert_eq!(*name, row);
        let parsed = parse_frame(frame.as_bytes()).expect("parses");
        assert_eq!(
            [Required, Optional, Off].map(|p| needs_credentials(&parsed, p)),
            [required, optional, off],
            "{name}"
        );
    }
}

#[test]
fn a_frame_that_needs_no_credentials_is_judged_the_same_without_them() {
    // The router loads the credentials document only when `needs_credentials` says so (media
    // must never wait on it): every other frame must get the same verdict with `None`.
    let (a, _, _) = sids();
    let other = AccountSid::parse(AC_OTHER).expect("ac");
    let creds = creds();
    for (name, frame) in one_of_each() {
        let parsed = parse_frame(frame.as_bytes()).expect("parses");
        for policy in [
            CallTokenPolicy::Required,
            CallTokenPolicy::Optional,
            CallTokenPolicy::Off,
        ] {
            if needs_credentials(&parsed, policy) {
                continue;
            }
            for expected in [&a, &other] {
                assert_eq!(
                    judge_parsed(&parsed, expected, policy, Some(&creds), NOW),
                    judge_parsed(&parsed, expected, policy, None, NOW),
                    "{name} under {policy:?}"
                );
            }
        }
    }
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn accepted_start_names_the_expected_account_and_call(acc in "AC[0-9a-f]{32}", call in "CA[0-9a-f]{32}") {
            let mut v = good_start();
            v["start"]["accountSid"] = json!(acc);
            v["start"]["callSid"] = json!(call);
            if let Verdict::Accept(Accepted::Start { call_sid, .. }) = judge(&v.to_string()) {
                prop_assert_eq!(acc.as_str(), AC);
                prop_assert_eq!(call_sid.as_str(), CA);
            }
        }
    }
}
