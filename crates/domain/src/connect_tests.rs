//! Tests of `connect.rs` (kept beside it so the module stays readable in one sitting).

use super::*;
use crate::signature::compute_signature;

const AC1: &str = "AC0123456789abcdef0123456789abcdef";
const AC2: &str = "ACffffffffffffffffffffffffffffffff";
const URL: &str = "wss://abc123.execute-api.us-east-1.amazonaws.com/prod";
const TOK1: &str = "stream-token-one-0123456789abcdef0123";
const TOK2: &str = "stream-token-two-0123456789abcdef0123";

fn creds() -> Credentials {
    Credentials::from_json(&format!(
        r#"{{"twilioAccounts":[{{"accountSid":"{AC1}","authTokens":["12345","old"]}},{{"accountSid":"{AC2}","authTokens":["other"]}}],
            "streamTokens":[{{"token":"{TOK1}","accountSid":"{AC1}"}},{{"token":"{TOK2}","accountSid":"{AC2}"}}]}}"#
    ))
    .expect("valid")
}

fn req<'a>(sig: Presented<'a>, tok: Presented<'a>) -> ConnectRequest<'a> {
    ConnectRequest {
        signature: sig,
        stream_token: tok,
        signature_settings: Absent,
        signed_url: URL,
    }
}

const GOOD_SIG: &str = "dYX5bz/sDh2O2Tg6KtHAZLFqkbU="; // docs/twilio.md vector, token 12345
use Presented::{Absent, One, Repeated};

#[test]
fn signature_mode() {
    let c = creds();
    let v =
        decide_connect(&req(One(GOOD_SIG), Absent), Some(&c), AuthMode::Signature).expect("admit");
    assert_eq!(
        (v.account_sid().as_str(), v.method().as_str()),
        (AC1, "twilio-signature")
    );
    assert_eq!((v.both_verified(), v.methods()), (false, None));
    assert_eq!(
        v.credential().to_string(),
        "twilioAccounts[0].authTokens[0]"
    );
    // Previous token of the second account, URL with trailing slash.
    let sig = compute_signature("other", &format!("{URL}/"), &[]);
    let v = decide_connect(&req(One(&sig), Absent), Some(&c), AuthMode::Signature).expect("admit");
    assert_eq!(
        v.credential().to_string(),
        "twilioAccounts[1].authTokens[0]"
    );
    // A valid token does not stand in for a signature.
    assert_eq!(
        decide_connect(&req(Absent, One(TOK1)), Some(&c), AuthMode::Signature),
        Err(DenyReason::SignatureMissing)
    );
    assert_eq!(
        decide_connect(&req(One("AAAA"), Absent), Some(&c), AuthMode::Signature),
        Err(DenyReason::SignatureMalformed)
    );
    assert_eq!(
        decide_connect(&req(Repeated, Absent), Some(&c), AuthMode::Signature),
        Err(DenyReason::SignatureMalformed)
    );
    let wrong = compute_signature("nope", URL, &[]);
    assert_eq!(
        decide_connect(&req(One(&wrong), Absent), Some(&c), AuthMode::Signature),
        Err(DenyReason::SignatureMismatch)
    );
}

#[test]
fn token_mode() {
    let c = creds();
    let v = decide_connect(&req(Absent, One(TOK2)), Some(&c), AuthMode::Token).expect("admit");
    assert_eq!(
        (v.account_sid().as_str(), v.method().as_str()),
        (AC2, "stream-token")
    );
    assert_eq!((v.both_verified(), v.methods()), (false, None));
    assert_eq!(v.credential().to_string(), "streamTokens[1]");
    assert_eq!(
        decide_connect(&req(One(GOOD_SIG), Absent), Some(&c), AuthMode::Token),
        Err(DenyReason::StreamTokenMissing)
    );
    assert_eq!(
        decide_connect(
            &req(Absent, One(&"x".repeat(40))),
            Some(&c),
            AuthMode::Token
        ),
        Err(DenyReason::StreamTokenUnknown)
    );
    assert_eq!(
        decide_connect(&req(Absent, One("")), Some(&c), AuthMode::Token),
        Err(DenyReason::StreamTokenMalformed)
    );
    assert_eq!(
        decide_connect(&req(Absent, One("x")), Some(&c), AuthMode::Token),
        Err(DenyReason::StreamTokenMalformed)
    );
    assert_eq!(
        decide_connect(&req(Absent, Repeated), Some(&c), AuthMode::Token),
        Err(DenyReason::StreamTokenMalformed)
    );
}

/// Well-formed (32+ characters) but not configured.
const BAD_TOKEN: &str = "not-a-configured-stream-token-0123456789";

#[test]
fn either_mode() {
    let c = creds();
    assert!(decide_connect(&req(One(GOOD_SIG), Absent), Some(&c), AuthMode::Either).is_ok());
    assert!(decide_connect(&req(Absent, One(TOK1)), Some(&c), AuthMode::Either).is_ok());
    let v =
        decide_connect(&req(One(GOOD_SIG), One(TOK1)), Some(&c), AuthMode::Either).expect("admit");
    // Both verified: the primary method is the signature, and the second key says both.
    assert_eq!(v.method(), AuthMethod::TwilioSignature);
    assert_eq!(v.method().as_str(), "twilio-signature");
    assert!(v.both_verified());
    assert_eq!(v.methods(), Some("twilio-signature,stream-token"));
    assert_eq!(
        decide_connect(&req(Absent, Absent), Some(&c), AuthMode::Either),
        Err(DenyReason::SignatureMissing)
    );
    // Every credential presented must verify: a bad token spoils a good signature.
    assert_eq!(
        decide_connect(
            &req(One(GOOD_SIG), One(BAD_TOKEN)),
            Some(&c),
            AuthMode::Either
        ),
        Err(DenyReason::StreamTokenUnknown)
    );
    assert_eq!(
        decide_connect(&req(One(GOOD_SIG), One(TOK2)), Some(&c), AuthMode::Either),
        Err(DenyReason::AccountMismatch)
    );
}

#[test]
fn both_mode() {
    let c = creds();
    let v =
        decide_connect(&req(One(GOOD_SIG), One(TOK1)), Some(&c), AuthMode::Both).expect("admit");
    assert_eq!(
        v.credential().to_string(),
        "twilioAccounts[0].authTokens[0]+streamTokens[0]"
    );
    assert_eq!(v.method().as_str(), "twilio-signature");
    assert_eq!(v.methods(), Some(VerifiedConnect::BOTH_METHODS));
    assert_eq!(
        decide_connect(&req(One(GOOD_SIG), One(TOK2)), Some(&c), AuthMode::Both),
        Err(DenyReason::AccountMismatch)
    );
    assert_eq!(
        decide_connect(&req(One(GOOD_SIG), Absent), Some(&c), AuthMode::Both),
        Err(DenyReason::StreamTokenMissing)
    );
    assert_eq!(
        decide_connect(&req(Absent, One(TOK1)), Some(&c), AuthMode::Both),
        Err(DenyReason::SignatureMissing)
    );
}

#[test]
fn fails_closed_without_credentials_or_url() {
    assert_eq!(
        decide_connect(&req(One(GOOD_SIG), One(TOK1)), None, AuthMode::Either),
        Err(DenyReason::CredentialsUnavailable)
    );
    let c = creds();
    let r = ConnectRequest {
        signature: One(GOOD_SIG),
        stream_token: Absent,
        signature_settings: Absent,
        signed_url: "",
    };
    assert_eq!(
        decide_connect(&r, Some(&c), AuthMode::Signature),
        Err(DenyReason::RequestIncomplete)
    );
}

#[test]
fn the_handshake_accepts_only_handshake_urls() {
    let c = creds();
    let port = "wss://abc123.execute-api.us-east-1.amazonaws.com:443/prod";
    for url in crate::signature::webhook_urls(URL) {
        let sig = compute_signature("12345", &url, &[]);
        let decision = decide_connect(&req(One(&sig), Absent), Some(&c), AuthMode::Signature);
        if handshake_urls(URL).contains(&url) {
            assert!(decision.is_ok(), "handshake variant refused");
        } else {
            // A default-port variant is a webhook variant only: the authorizer denies it.
            assert!(url.starts_with(port), "unexpected variant");
            assert_eq!(decision, Err(DenyReason::SignatureMismatch));
        }
    }
}

#[test]
fn auth_method_is_one_of_exactly_two_strings() {
    let shown: Vec<&str> = AuthMethod::ALL.iter().map(|m| m.as_str()).collect();
    assert_eq!(shown, ["twilio-signature", "stream-token"]);
    assert_eq!(AuthMethod::StreamToken.to_string(), "stream-token");
    // Every admitted handshake, in every mode, names one of the two.
    let c = creds();
    for mode in [
        AuthMode::Signature,
        AuthMode::Token,
        AuthMode::Either,
        AuthMode::Both,
    ] {
        for (sig, tok) in [
            (One(GOOD_SIG), Absent),
            (Absent, One(TOK1)),
            (One(GOOD_SIG), One(TOK1)),
        ] {
            if let Ok(v) = decide_connect(&req(sig, tok), Some(&c), mode) {
                assert!(shown.contains(&v.method().as_str()));
                // Signature and token modes look at one credential only.
                let both_looked_at = matches!(mode, AuthMode::Either | AuthMode::Both);
                assert_eq!(
                    v.methods().is_some(),
                    both_looked_at && sig != Absent && tok != Absent,
                    "{mode:?}"
                );
            }
        }
    }
}

#[test]
fn debug_never_shows_presented_values() {
    let r = ConnectRequest {
        signature: One(GOOD_SIG),
        stream_token: One(TOK1),
        signature_settings: One("key=k,algorithm=HMAC_SHA256"),
        signed_url: URL,
    };
    let shown = format!("{r:?}");
    assert!(
        !shown.contains(GOOD_SIG) && !shown.contains(TOK1),
        "Debug leaks"
    );
    assert_eq!(format!("{:?}", One(TOK1)), "One(***)");
    assert_eq!(format!("{Absent:?} {Repeated:?}"), "Absent Repeated");
}

#[test]
fn auth_mode_parses() {
    for (text, mode) in [
        ("signature", AuthMode::Signature),
        ("token", AuthMode::Token),
        ("either", AuthMode::Either),
        ("both", AuthMode::Both),
    ] {
        assert_eq!(text.parse::<AuthMode>(), Ok(mode), "{text}");
    }
    for text in ["Both", "", "sig", "tokens", " either"] {
        assert_eq!(
            text.parse::<AuthMode>(),
            Err("expected signature, token, either or both".to_owned()),
            "{text:?}"
        );
    }
}

/// Each mode verifies only the credentials it looks at: one it ignores cannot spoil (or help)
/// the decision, however bad it is.
#[test]
fn a_mode_ignores_the_credential_it_does_not_look_at() {
    let c = creds();
    for tok in [One(BAD_TOKEN), One("x"), Repeated] {
        let v = decide_connect(&req(One(GOOD_SIG), tok), Some(&c), AuthMode::Signature)
            .expect("signature mode ignores the token");
        assert_eq!(
            v.credential().to_string(),
            "twilioAccounts[0].authTokens[0]"
        );
        assert_eq!(v.methods(), None);
    }
    // A valid token of another account is not looked at either (no account mismatch).
    let v = decide_connect(
        &req(One(GOOD_SIG), One(TOK2)),
        Some(&c),
        AuthMode::Signature,
    )
    .expect("admit");
    assert_eq!(v.account_sid().as_str(), AC1);
    for sig in [One("AAAA"), One(GOOD_SIG), Repeated] {
        let v = decide_connect(&req(sig, One(TOK2)), Some(&c), AuthMode::Token)
            .expect("token mode ignores the signature");
        assert_eq!(v.credential().to_string(), "streamTokens[1]");
        assert_eq!(v.account_sid().as_str(), AC2);
    }
}

mod shared_keys {
    use super::*;
    use crate::signature::{compute_shared_key_signature, SignatureAlgorithm};
    use SignatureAlgorithm::{HmacSha1, HmacSha256};

    const OLD: (&str, &str) = ("webhooks_sharedkey_old", "old-shared-secret");
    const NEW: (&str, &str) = ("webhooks_sharedkey_new", "new-shared-secret");
    const TWO: (&str, &str) = ("webhooks_sharedkey_two", "second-account-secret");

    fn creds() -> Credentials {
        Credentials::from_json(&format!(
            r#"{{"twilioAccounts":[
                {{"accountSid":"{AC1}","authTokens":["12345"],
                  "sharedKeys":[{{"id":"{}","secret":"{}"}},{{"id":"{}","secret":"{}"}}]}},
                {{"accountSid":"{AC2}","authTokens":["other"],
                  "sharedKeys":[{{"id":"{}","secret":"{}"}}]}}],
                "streamTokens":[{{"token":"{TOK1}","accountSid":"{AC1}"}}]}}"#,
            OLD.0, OLD.1, NEW.0, NEW.1, TWO.0, TWO.1
        ))
        .expect("valid")
    }

    fn sign(key: (&str, &str), alg: SignatureAlgorithm, url: &str) -> String {
        compute_shared_key_signature(key.1, alg, url, &[])
    }

    fn header(key: (&str, &str), alg: SignatureAlgorithm) -> String {
        format!("key={},algorithm={}", key.0, alg.as_str())
    }

    fn decide(
        sig: Presented<'_>,
        settings: Presented<'_>,
        tok: Presented<'_>,
        mode: AuthMode,
    ) -> Result<VerifiedConnect, DenyReason> {
        let r = ConnectRequest {
            signature: sig,
            stream_token: tok,
            signature_settings: settings,
            signed_url: URL,
        };
        decide_connect(&r, Some(&creds()), mode)
    }

    #[test]
    fn admits_by_key_id_with_the_named_algorithm() {
        let cases = [
            (NEW, HmacSha256, AC1, "twilioAccounts[0].sharedKeys[1]"),
            (OLD, HmacSha1, AC1, "twilioAccounts[0].sharedKeys[0]"),
            (OLD, HmacSha256, AC1, "twilioAccounts[0].sharedKeys[0]"),
            (TWO, HmacSha256, AC2, "twilioAccounts[1].sharedKeys[0]"),
        ];
        for (key, alg, account, credential) in cases {
            let h = header(key, alg);
            for url in handshake_urls(URL) {
                let sig = sign(key, alg, &url);
                let v = decide(One(&sig), One(&h), Absent, AuthMode::Signature).expect("admit");
                assert_eq!(v.account_sid().as_str(), account);
                assert_eq!(v.credential().to_string(), credential);
                assert_eq!(v.method(), AuthMethod::TwilioSignature);
                assert_eq!(v.methods(), None);
            }
        }
    }

    #[test]
    fn refuses_with_the_exact_reason() {
        let sha256 = sign(NEW, HmacSha256, URL);
        let sha1 = sign(NEW, HmacSha1, URL);
        let sig_mode = |sig: &str, h: &str| decide(One(sig), One(h), Absent, AuthMode::Signature);
        let cases: [(&str, &str, DenyReason); 10] = [
            (
                &sha1,
                &header(NEW, HmacSha256),
                DenyReason::SignatureMismatch,
            ),
            (
                &sha256,
                &header(NEW, HmacSha1),
                DenyReason::SignatureMismatch,
            ),
            (
                &sha256,
                &header(OLD, HmacSha256),
                DenyReason::SignatureMismatch,
            ),
            (
                GOOD_SIG,
                &header(NEW, HmacSha1),
                DenyReason::SignatureMismatch,
            ),
            (
                "AAAA",
                &header(NEW, HmacSha256),
                DenyReason::SignatureMalformed,
            ),
            (
                &sha256,
                "key=webhooks_sharedkey_gone,algorithm=HMAC_SHA256",
                DenyReason::SharedKeyUnknown,
            ),
            (
                &sha256,
                "key=webhooks_sharedkey_new",
                DenyReason::SharedKeyAlgorithmMissing,
            ),
            (
                &sha256,
                "key=webhooks_sharedkey_new,algorithm=HMAC_MD5",
                DenyReason::SharedKeyAlgorithmUnsupported,
            ),
            (
                &sha256,
                "key webhooks_sharedkey_new",
                DenyReason::SharedKeySettingsMalformed,
            ),
            (&sha256, "", DenyReason::SharedKeySettingsMalformed),
        ];
        for (i, (sig, h, want)) in cases.into_iter().enumerate() {
            assert_eq!(sig_mode(sig, h), Err(want), "case {i}");
        }
        assert_eq!(
            decide(One(&sha256), Repeated, Absent, AuthMode::Signature),
            Err(DenyReason::SharedKeySettingsMalformed)
        );
        // Without the header, a shared key's signature is judged under the auth tokens.
        assert_eq!(
            decide(One(&sha1), Absent, Absent, AuthMode::Signature),
            Err(DenyReason::SignatureMismatch)
        );
        assert_eq!(
            decide(One(&sha256), Absent, Absent, AuthMode::Signature),
            Err(DenyReason::SignatureMalformed)
        );
        // A default-port variant is not a handshake URL, under a shared key too.
        let port = sign(NEW, HmacSha256, &crate::signature::webhook_urls(URL)[2]);
        assert_eq!(
            sig_mode(&port, &header(NEW, HmacSha256)),
            Err(DenyReason::SignatureMismatch)
        );
    }

    #[test]
    fn settings_go_with_the_signature() {
        let sha256 = sign(NEW, HmacSha256, URL);
        let h = header(NEW, HmacSha256);
        // No signature: the settings header alone proves nothing and is not looked at.
        assert_eq!(
            decide(Absent, One(&h), Absent, AuthMode::Signature),
            Err(DenyReason::SignatureMissing)
        );
        assert!(decide(Absent, One("garbage"), One(TOK1), AuthMode::Either).is_ok());
        assert!(decide(Absent, Repeated, One(TOK1), AuthMode::Either).is_ok());
        // Token mode looks at neither.
        assert!(decide(One(&sha256), One("garbage"), One(TOK1), AuthMode::Token).is_ok());
        // With a signature, a bad settings header spoils an otherwise valid token (either).
        assert_eq!(
            decide(One(&sha256), One("key=x"), One(TOK1), AuthMode::Either),
            Err(DenyReason::SharedKeyAlgorithmMissing)
        );
        // Both verified under a shared key.
        let v = decide(One(&sha256), One(&h), One(TOK1), AuthMode::Both).expect("admit");
        assert_eq!(
            v.credential().to_string(),
            "twilioAccounts[0].sharedKeys[1]+streamTokens[0]"
        );
        assert_eq!(v.method().as_str(), "twilio-signature");
        assert_eq!(v.methods(), Some("twilio-signature,stream-token"));
        // A shared key of another account than the token's.
        let two = sign(TWO, HmacSha256, URL);
        assert_eq!(
            decide(
                One(&two),
                One(&header(TWO, HmacSha256)),
                One(TOK1),
                AuthMode::Both
            ),
            Err(DenyReason::AccountMismatch)
        );
    }
}
