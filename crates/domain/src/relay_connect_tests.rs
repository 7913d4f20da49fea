//! Tests of `relay_connect.rs`.

use super::*;
use crate::call_token::mint_call_token;
use crate::signature::{compute_shared_key_signature, compute_signature, SignatureAlgorithm};
use Presented::{Absent, One, Repeated};

const AC1: &str = "AC0123456789abcdef0123456789abcdef";
const AC2: &str = "ACffffffffffffffffffffffffffffffff";
const CA1: &str = "CA00000000000000000000000000000001";
const CA2: &str = "CA00000000000000000000000000000002";
const URL: &str = "wss://abc123.execute-api.us-east-1.amazonaws.com/prod";
const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";
const SHARED_ID: &str = "KS00000000000000000000000000000001";
const SHARED_SECRET: &str = "shared-key-secret-for-tests-only";
const NOW: u64 = 1_800_000_000;

fn creds_with(call_token_keys: &str) -> Credentials {
    Credentials::from_json(&format!(
        r#"{{"twilioAccounts":[{{"accountSid":"{AC1}","authTokens":["12345"],
              "sharedKeys":[{{"id":"{SHARED_ID}","secret":"{SHARED_SECRET}"}}]}},
             {{"accountSid":"{AC2}","authTokens":["other"]}}],
            "callTokenKeys":{call_token_keys}}}"#
    ))
    .expect("valid")
}

fn creds() -> Credentials {
    creds_with(&format!(r#"["{KEY}"]"#))
}

fn token(account: &str, call: &str, now: u64, ttl: u64) -> String {
    let account = AccountSid::parse(account).expect("sid");
    let call = CallSid::parse(call).expect("sid");
    mint_call_token(&creds(), &account, &call, now, ttl)
        .expect("minted")
        .expose()
        .to_owned()
}

/// The URL as the voice webhook writes it into `<ConversationRelay url>`.
fn full_url(base: &str, call: &str, token: &str) -> String {
    format!("{base}?callSid={call}&callToken={token}")
}

fn req<'a>(
    signature: Presented<'a>,
    call_sid: &'a str,
    call_token: &'a str,
) -> RelayConnectRequest<'a> {
    RelayConnectRequest {
        signature,
        signature_settings: Absent,
        call_sid,
        call_token,
        other_params: false,
        signed_url: URL,
    }
}

#[test]
fn the_query_tells_the_protocol() {
    assert_eq!(
        handshake_kind(Absent, Absent),
        Ok(HandshakeKind::MediaStreams)
    );
    assert_eq!(
        handshake_kind(One("CA1"), One("v1.x")),
        Ok(HandshakeKind::ConversationRelay {
            call_sid: "CA1",
            call_token: "v1.x"
        })
    );
    for (sid, tok) in [(One("CA1"), Absent), (Absent, One("v1.x"))] {
        assert_eq!(
            handshake_kind(sid, tok),
            Err(DenyReason::RelayQueryIncomplete)
        );
    }
    for (sid, tok) in [
        (Repeated, One("v1.x")),
        (One("CA1"), Repeated),
        (Repeated, Absent),
        (Absent, Repeated),
        (Repeated, Repeated),
    ] {
        assert_eq!(
            handshake_kind(sid, tok),
            Err(DenyReason::RelayQueryRepeated)
        );
    }
}

#[test]
fn both_signed_forms_admit_with_the_call_pinned() {
    let c = creds();
    let tok = token(AC1, CA1, NOW, 300);
    let full = compute_signature("12345", &full_url(URL, CA1, &tok), &[]);
    let as_params = compute_signature("12345", URL, &[("callSid", CA1), ("callToken", &tok)]);
    let slash = compute_signature("12345", &full_url(&format!("{URL}/"), CA1, &tok), &[]);
    for sig in [&full, &as_params, &slash] {
        let v = decide_relay_connect(&req(One(sig), CA1, &tok), Some(&c), NOW).expect("admit");
        assert_eq!(
            (v.account_sid().as_str(), v.call_sid().as_str()),
            (AC1, CA1)
        );
        assert_eq!(
            v.credential().to_string(),
            "twilioAccounts[0].authTokens[0]"
        );
        assert_eq!(v.token_expires_at(), NOW + 300);
    }
    // The second account, with its own token.
    let tok2 = token(AC2, CA1, NOW, 300);
    let sig = compute_signature("other", &full_url(URL, CA1, &tok2), &[]);
    let v = decide_relay_connect(&req(One(&sig), CA1, &tok2), Some(&c), NOW).expect("admit");
    assert_eq!(v.account_sid().as_str(), AC2);
}

#[test]
fn a_shared_key_signature_admits() {
    let c = creds();
    let tok = token(AC1, CA1, NOW, 300);
    for alg in SignatureAlgorithm::ALL {
        let sig = compute_shared_key_signature(SHARED_SECRET, alg, &full_url(URL, CA1, &tok), &[]);
        let settings = format!("key={SHARED_ID},algorithm={}", alg.as_str());
        let mut r = req(One(&sig), CA1, &tok);
        r.signature_settings = One(&settings);
        let v = decide_relay_connect(&r, Some(&c), NOW).expect("admit");
        assert_eq!(
            v.credential().to_string(),
            "twilioAccounts[0].sharedKeys[0]"
        );
    }
}

#[test]
fn the_signature_must_cover_this_query() {
    let c = creds();
    let tok = token(AC1, CA1, NOW, 300);
    let deny = |sig: &str| decide_relay_connect(&req(One(sig), CA1, &tok), Some(&c), NOW);
    // Over the URL alone (a Media Streams handshake's signature), over another call, over the
    // parameters in the other order, over https://, under an unconfigured token.
    let wrong = [
        compute_signature("12345", URL, &[]),
        compute_signature("12345", &full_url(URL, CA2, &tok), &[]),
        compute_signature(
            "12345",
            &format!("{URL}?callToken={tok}&callSid={CA1}"),
            &[],
        ),
        compute_signature(
            "12345",
            &full_url(&URL.replace("wss://", "https://"), CA1, &tok),
            &[],
        ),
        compute_signature("nope", &full_url(URL, CA1, &tok), &[]),
    ];
    for sig in &wrong {
        assert_eq!(deny(sig), Err(DenyReason::SignatureMismatch), "{sig}");
    }
    assert_eq!(deny("AAAA"), Err(DenyReason::SignatureMalformed));
    let r = req(Absent, CA1, &tok);
    assert_eq!(
        decide_relay_connect(&r, Some(&c), NOW),
        Err(DenyReason::SignatureMissing)
    );
    let r = req(Repeated, CA1, &tok);
    assert_eq!(
        decide_relay_connect(&r, Some(&c), NOW),
        Err(DenyReason::SignatureMalformed)
    );
}

#[test]
fn the_call_token_must_be_this_calls_and_unexpired() {
    let c = creds();
    let signed = |tok: &str, call: &str| compute_signature("12345", &full_url(URL, call, tok), &[]);
    let decide = |tok: &str, call: &str, now: u64| {
        let sig = signed(tok, call);
        decide_relay_connect(&req(One(&sig), call, tok), Some(&c), now)
    };
    // A token of another call, under a signature over this URL: Twilio signed it, the webhook did
    // not mint it for this call.
    assert_eq!(
        decide(&token(AC1, CA2, NOW, 300), CA1, NOW),
        Err(DenyReason::CallTokenInvalid)
    );
    // A token of the other account, signed by this one.
    assert_eq!(
        decide(&token(AC2, CA1, NOW, 300), CA1, NOW),
        Err(DenyReason::CallTokenInvalid)
    );
    let tok = token(AC1, CA1, NOW, 300);
    assert!(
        decide(&tok, CA1, NOW + 300 + 30).is_ok(),
        "within the clock skew"
    );
    assert_eq!(
        decide(&tok, CA1, NOW + 300 + 31),
        Err(DenyReason::CallTokenExpired)
    );
    for bad in [
        "",
        "v1",
        "v2.1.AAAA",
        "v1.01.x",
        &format!("{tok} "),
        &format!("{tok}%20"),
        "v1.1.a+b",
    ] {
        assert_eq!(
            decide(bad, CA1, NOW),
            Err(DenyReason::CallTokenMalformed),
            "{bad:?}"
        );
    }
    // The token's shape is judged before the signature: the query is rebuilt from it.
    let unsigned = req(Absent, CA1, "v1.1.a+b");
    assert_eq!(
        decide_relay_connect(&unsigned, Some(&c), NOW),
        Err(DenyReason::CallTokenMalformed)
    );
    // No call-token key configured: nothing can verify.
    let no_keys = creds_with("[]");
    let sig = signed(&tok, CA1);
    assert_eq!(
        decide_relay_connect(&req(One(&sig), CA1, &tok), Some(&no_keys), NOW),
        Err(DenyReason::CallTokenKeysMissing)
    );
}

#[test]
fn the_query_and_the_request_must_be_whole() {
    let c = creds();
    let tok = token(AC1, CA1, NOW, 300);
    let sig = compute_signature("12345", &full_url(URL, CA1, &tok), &[]);
    for bad in [
        "",
        "CA1",
        "ca00000000000000000000000000000001",
        "AC0123456789abcdef0123456789abcdef",
        &format!("{CA1} "),
    ] {
        assert_eq!(
            decide_relay_connect(&req(One(&sig), bad, &tok), Some(&c), NOW),
            Err(DenyReason::RelayCallSidInvalid),
            "{bad:?}"
        );
    }
    let mut r = req(One(&sig), CA1, &tok);
    r.other_params = true;
    assert_eq!(
        decide_relay_connect(&r, Some(&c), NOW),
        Err(DenyReason::RelayQueryUnexpected)
    );
    let mut r = req(One(&sig), CA1, &tok);
    r.signed_url = "";
    assert_eq!(
        decide_relay_connect(&r, Some(&c), NOW),
        Err(DenyReason::RequestIncomplete)
    );
    let r = req(One(&sig), CA1, &tok);
    assert_eq!(
        decide_relay_connect(&r, None, NOW),
        Err(DenyReason::CredentialsUnavailable)
    );
}

#[test]
fn every_candidate_is_the_url_as_twilio_may_sign_it() {
    let call = CallSid::parse(CA1).expect("sid");
    let got = relay_signed_payloads(URL, &call, "v1.9.t");
    assert_eq!(
        got,
        [
            format!("{URL}?callSid={CA1}&callToken=v1.9.t"),
            format!("{URL}/?callSid={CA1}&callToken=v1.9.t"),
            format!("{URL}callSid{CA1}callTokenv1.9.t"),
            format!("{URL}/callSid{CA1}callTokenv1.9.t"),
        ]
    );
}
