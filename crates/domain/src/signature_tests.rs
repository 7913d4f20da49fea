//! Tests of `signature.rs` (kept beside it so the module stays readable in one sitting).

use super::*;

// Vectors from docs/twilio.md (auth token `12345`), the SDKs' published request-validator vectors.
#[test]
fn matches_published_vectors() {
    let params = [
        ("CallSid", "CA1234567890ABCDE"),
        ("Caller", "+14158675309"),
        ("Digits", "1234"),
        ("From", "+14158675309"),
        ("To", "+18005551212"),
    ];
    assert_eq!(
        compute_signature(
            "12345",
            "https://mycompany.com/myapp.php?foo=1&bar=2",
            &params
        ),
        "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    );
    assert_eq!(
        compute_signature("12345", "wss://example.com/media-stream", &[]),
        "XFfwGS2Ev7f9qAP9MmRoMS7C724="
    );
    assert_eq!(
        compute_signature(
            "12345",
            "wss://abc123.execute-api.us-east-1.amazonaws.com/prod",
            &[]
        ),
        "dYX5bz/sDh2O2Tg6KtHAZLFqkbU="
    );
}

#[test]
fn params_sort_by_name_then_value() {
    assert_eq!(
        signed_payload("u", &[("b", "2"), ("a", "9"), ("b", "1")]),
        "ua9b1b2"
    );
}

#[test]
fn handshake_urls_are_as_written_with_and_without_trailing_slash() {
    assert_eq!(
        handshake_urls("wss://h/prod"),
        vec!["wss://h/prod", "wss://h/prod/"]
    );
    assert_eq!(
        handshake_urls("wss://h/prod/"),
        vec!["wss://h/prod/", "wss://h/prod"]
    );
    assert_eq!(handshake_urls("wss://h"), vec!["wss://h", "wss://h/"]);
    assert_eq!(handshake_urls("wss://h/"), vec!["wss://h/", "wss://h"]);
    assert_eq!(handshake_urls("wss://h//"), vec!["wss://h//"]);
    assert_eq!(
        handshake_urls("wss://h:443/prod"),
        vec!["wss://h:443/prod", "wss://h:443/prod/"]
    );
    assert_eq!(handshake_urls("https://h/p?x=1"), vec!["https://h/p?x=1"]);
    assert_eq!(handshake_urls(""), vec!["", "/"]);
}

#[test]
fn webhook_urls_add_the_default_port() {
    assert_eq!(
        webhook_urls("https://hooks.example/voice"),
        vec![
            "https://hooks.example/voice",
            "https://hooks.example/voice/",
            "https://hooks.example:443/voice",
            "https://hooks.example:443/voice/"
        ]
    );
    assert_eq!(
        webhook_urls("http://h/v?a=1"),
        vec!["http://h/v?a=1", "http://h:80/v?a=1"]
    );
    assert_eq!(
        webhook_urls("wss://h.example/prod"),
        vec![
            "wss://h.example/prod",
            "wss://h.example/prod/",
            "wss://h.example:443/prod",
            "wss://h.example:443/prod/"
        ]
    );
    // A URL that names a port, or a scheme without a default port, gets no port variant.
    assert_eq!(
        webhook_urls("https://h:8443/x?a=1"),
        vec!["https://h:8443/x?a=1"]
    );
    assert_eq!(webhook_urls("ftp://h/x"), vec!["ftp://h/x", "ftp://h/x/"]);
}

#[test]
fn the_handshake_set_is_the_head_of_the_webhook_set() {
    for url in [
        "wss://h/prod",
        "wss://h/prod/",
        "https://h/p?x=1",
        "wss://h:9/p",
    ] {
        let handshake = handshake_urls(url);
        assert_eq!(webhook_urls(url)[..handshake.len()], handshake[..]);
    }
}

fn creds() -> Credentials {
    Credentials::from_json(
        r#"{"twilioAccounts":[
            {"accountSid":"AC0123456789abcdef0123456789abcdef","authTokens":["aaaa","12345"]},
            {"accountSid":"ACffffffffffffffffffffffffffffffff","authTokens":["zzzz"]}]}"#,
    )
    .expect("valid")
}

#[test]
fn finds_the_matching_account_token_and_url() {
    let c = creds();
    let urls = handshake_urls("wss://example.com/media-stream/");
    let m = verify_signature(&c, None, "XFfwGS2Ev7f9qAP9MmRoMS7C724=", &urls, &[]).expect("match");
    assert_eq!((m.account_index, m.token_index, m.url_index), (0, 1, 1));
    let sig = compute_signature("zzzz", "wss://example.com/media-stream/", &[]);
    let m = verify_signature(&c, None, &sig, &urls, &[]).expect("match");
    assert_eq!((m.account_index, m.token_index, m.url_index), (1, 0, 0));
    // Restricting to another account refuses a signature made with this one's token.
    let other = AccountSid::parse("AC0123456789abcdef0123456789abcdef").expect("sid");
    assert_eq!(
        verify_signature(&c, Some(&other), &sig, &urls, &[]),
        Err(SignatureFailure::Mismatch)
    );
}

#[test]
fn rejects_with_the_exact_reason() {
    let c = creds();
    let urls = handshake_urls("wss://example.com/media-stream");
    assert_eq!(
        verify_signature(&c, None, "", &urls, &[]),
        Err(SignatureFailure::Malformed)
    );
    assert_eq!(
        verify_signature(&c, None, "not base64!!", &urls, &[]),
        Err(SignatureFailure::Malformed)
    );
    assert_eq!(
        verify_signature(&c, None, "AAAA", &urls, &[]),
        Err(SignatureFailure::Malformed)
    );
    assert_eq!(
        verify_signature(&c, None, &"A".repeat(4000), &urls, &[]),
        Err(SignatureFailure::Malformed)
    );
    // Right length, wrong MAC (first char changed).
    assert_eq!(
        verify_signature(&c, None, "YFfwGS2Ev7f9qAP9MmRoMS7C724=", &urls, &[]),
        Err(SignatureFailure::Mismatch)
    );
    // Right MAC for another URL.
    let other = handshake_urls("wss://example.com/other");
    assert_eq!(
        verify_signature(&c, None, "XFfwGS2Ev7f9qAP9MmRoMS7C724=", &other, &[]),
        Err(SignatureFailure::Mismatch)
    );
}

// docs/twilio.md's agreement vector for shared keys (checked against twilio-python 9.13.0).
#[test]
fn matches_the_shared_key_agreement_vector() {
    let url = "wss://abc.execute-api.us-east-1.amazonaws.com/prod/stream";
    assert_eq!(
        compute_shared_key_signature("s3cr3t", SignatureAlgorithm::HmacSha256, url, &[]),
        "XUOkZEJIS4o+uohL8WS/7WNm2OwG+J0rVVhBlRuNTjs="
    );
    assert_eq!(
        compute_shared_key_signature("s3cr3t", SignatureAlgorithm::HmacSha1, url, &[]),
        "yzOlNy041mSvdX2FsF/ELr7roBQ="
    );
    // Under SHA1 a shared key signs exactly as an auth token would.
    assert_eq!(
        compute_shared_key_signature("12345", SignatureAlgorithm::HmacSha1, "u", &[("a", "b")]),
        compute_signature("12345", "u", &[("a", "b")])
    );
}

#[test]
fn settings_parse_in_any_order_with_optional_spaces() {
    use SignatureAlgorithm::{HmacSha1, HmacSha256};
    let parsed = |h| SignatureSettings::parse(h).map(|s| (s.key_id(), s.algorithm()));
    assert_eq!(
        parsed("key=k1,algorithm=HMAC_SHA256"),
        Ok(("k1", HmacSha256))
    );
    assert_eq!(parsed("algorithm=HMAC_SHA1,key=k1"), Ok(("k1", HmacSha1)));
    assert_eq!(
        parsed(" key = k1 ,\talgorithm=HMAC_SHA1 "),
        Ok(("k1", HmacSha1))
    );
    assert_eq!(
        parsed("key=webhooks_sharedkey_0123456789abcdef,algorithm=HMAC_SHA256"),
        Ok(("webhooks_sharedkey_0123456789abcdef", HmacSha256))
    );
    for alg in SignatureAlgorithm::ALL {
        assert_eq!(SignatureAlgorithm::from_name(alg.as_str()), Some(alg));
    }
}

#[test]
fn settings_refusals_are_typed() {
    use SettingsFailure::{AlgorithmMissing, AlgorithmUnsupported, Malformed};
    let cases: &[(&str, SettingsFailure)] = &[
        ("key=k1", AlgorithmMissing),
        (" key=k1 ", AlgorithmMissing),
        ("key=k1,algorithm=HMAC_SHA512", AlgorithmUnsupported),
        ("key=k1,algorithm=hmac_sha256", AlgorithmUnsupported),
        ("key=k1,algorithm=SHA256", AlgorithmUnsupported),
        ("", Malformed),
        (" ", Malformed),
        ("key", Malformed),
        ("key=", Malformed),
        ("key=,algorithm=HMAC_SHA1", Malformed),
        ("algorithm=HMAC_SHA1", Malformed),
        ("key=k1,algorithm=", Malformed),
        ("key=k1,algorithm=HMAC_SHA1,", Malformed),
        (",key=k1,algorithm=HMAC_SHA1", Malformed),
        ("key=k1,,algorithm=HMAC_SHA1", Malformed),
        ("key=k1;algorithm=HMAC_SHA1", Malformed),
        ("key=k1,algorithm=HMAC_SHA1,extra=1", Malformed),
        ("key=k1,key=k1,algorithm=HMAC_SHA1", Malformed),
        ("key=k1,algorithm=HMAC_SHA1,algorithm=HMAC_SHA1", Malformed),
        ("Key=k1,algorithm=HMAC_SHA1", Malformed),
        ("key=k=1,algorithm=HMAC_SHA1", Malformed),
        ("key=k 1,algorithm=HMAC_SHA1", Malformed),
        ("key=\"k1\",algorithm=HMAC_SHA1", Malformed),
        ("key=k\u{e9},algorithm=HMAC_SHA1", Malformed),
        ("key=k1\n,algorithm=HMAC_SHA1", Malformed),
        ("key=k1,algorithm=HMAC SHA1", Malformed),
    ];
    for (header, want) in cases {
        assert_eq!(SignatureSettings::parse(header), Err(*want), "{header:?}");
    }
    let long = format!(
        "key={},algorithm=HMAC_SHA1",
        "k".repeat(MAX_SETTINGS_HEADER_CHARS)
    );
    assert_eq!(SignatureSettings::parse(&long), Err(Malformed));
    let fits = format!("key={},algorithm=HMAC_SHA1", "k".repeat(128));
    assert!(SignatureSettings::parse(&fits).is_ok());
    // The bound is on the whole value, at exactly MAX_SETTINGS_HEADER_CHARS.
    let id = "k".repeat(MAX_SETTINGS_HEADER_CHARS - "key=,algorithm=HMAC_SHA1".len());
    let exact = format!("key={id},algorithm=HMAC_SHA1");
    assert_eq!(exact.len(), MAX_SETTINGS_HEADER_CHARS);
    assert_eq!(
        SignatureSettings::parse(&exact).map(|s| s.key_id()),
        Ok(id.as_str())
    );
    let over = format!("key={id}k,algorithm=HMAC_SHA1");
    assert_eq!(SignatureSettings::parse(&over), Err(Malformed));
}

/// When several credentials or URLs match, the first in document (and URL) order is reported,
/// as the docs of [`SignatureMatch`] and `first_match` promise.
#[test]
fn the_first_of_several_matches_is_reported() {
    let url = "wss://example.com/media-stream";
    let twice = vec![url.to_owned(), url.to_owned(), format!("{url}/")];
    let c = Credentials::from_json(
        r#"{"twilioAccounts":[
            {"accountSid":"AC0123456789abcdef0123456789abcdef","authTokens":["aaaa","12345"]},
            {"accountSid":"ACffffffffffffffffffffffffffffffff","authTokens":["12345","12345"]}]}"#,
    )
    .expect("valid");
    let sig = compute_signature("12345", url, &[]);
    let m = verify_signature(&c, None, &sig, &twice, &[]).expect("match");
    assert_eq!((m.account_index, m.token_index, m.url_index), (0, 1, 0));
    assert_eq!(m.account_sid.as_str(), "AC0123456789abcdef0123456789abcdef");
    let second = AccountSid::parse("ACffffffffffffffffffffffffffffffff").expect("sid");
    let m = verify_signature(&c, Some(&second), &sig, &twice, &[]).expect("match");
    assert_eq!((m.account_index, m.token_index, m.url_index), (1, 0, 0));
    // The same under a shared key: the first of two equal URLs.
    let c = shared_creds();
    for alg in SignatureAlgorithm::ALL {
        let sig = compute_shared_key_signature("s3cr3t", alg, url, &[]);
        let header = format!("key=k-old,algorithm={}", alg.as_str());
        let m =
            verify_shared_key_signature(&c, &settings(&header), &sig, &twice, &[]).expect("match");
        assert_eq!((m.account_index, m.key_index, m.url_index), (0, 0, 0));
        let sig = compute_shared_key_signature("s3cr3t", alg, &format!("{url}/"), &[]);
        let m =
            verify_shared_key_signature(&c, &settings(&header), &sig, &twice, &[]).expect("match");
        assert_eq!(m.url_index, 2);
    }
}

#[test]
fn the_header_bound_counts_surrounding_white_space() {
    let c = creds();
    let urls = handshake_urls("wss://example.com/media-stream/");
    let sig = "XFfwGS2Ev7f9qAP9MmRoMS7C724=";
    // Surrounding white space is trimmed, but counts towards the 64-character bound.
    let padded = |n: usize| format!("{sig}{}", " ".repeat(n - sig.len()));
    let m = verify_signature(&c, None, &padded(MAX_HEADER_CHARS), &urls, &[]).expect("match");
    assert_eq!((m.account_index, m.token_index, m.url_index), (0, 1, 1));
    assert_eq!(
        verify_signature(&c, None, &padded(MAX_HEADER_CHARS + 1), &urls, &[]),
        Err(SignatureFailure::Malformed)
    );
}

fn shared_creds() -> Credentials {
    Credentials::from_json(
        r#"{"twilioAccounts":[
            {"accountSid":"AC0123456789abcdef0123456789abcdef","authTokens":["12345"],
             "sharedKeys":[{"id":"k-old","secret":"s3cr3t"},{"id":"k-new","secret":"fresh-secret"}]},
            {"accountSid":"ACffffffffffffffffffffffffffffffff","authTokens":["zzzz"],
             "sharedKeys":[{"id":"k-other","secret":"other-secret"}]}]}"#,
    )
    .expect("valid")
}

fn settings(header: &str) -> SignatureSettings<'_> {
    SignatureSettings::parse(header).expect("well-formed settings")
}

#[test]
fn verifies_shared_key_signatures_by_id() {
    use SignatureAlgorithm::{HmacSha1, HmacSha256};
    let c = shared_creds();
    let url = "wss://abc.execute-api.us-east-1.amazonaws.com/prod/stream";
    let urls = handshake_urls(url);
    let m = verify_shared_key_signature(
        &c,
        &settings("key=k-old,algorithm=HMAC_SHA256"),
        "XUOkZEJIS4o+uohL8WS/7WNm2OwG+J0rVVhBlRuNTjs=",
        &urls,
        &[],
    )
    .expect("match");
    assert_eq!((m.account_index, m.key_index, m.url_index), (0, 0, 0));
    // Rotation: the other key of the same account, over the trailing-slash variant.
    let sig = compute_shared_key_signature("fresh-secret", HmacSha1, &format!("{url}/"), &[]);
    let m = verify_shared_key_signature(
        &c,
        &settings("key=k-new,algorithm=HMAC_SHA1"),
        &sig,
        &urls,
        &[],
    )
    .expect("match");
    assert_eq!((m.account_index, m.key_index, m.url_index), (0, 1, 1));
    // A key of the second account reports that account.
    let params = [("CallSid", "CA1"), ("AccountSid", "AC2")];
    let sig = compute_shared_key_signature("other-secret", HmacSha256, url, &params);
    let m = verify_shared_key_signature(
        &c,
        &settings("key=k-other,algorithm=HMAC_SHA256"),
        &sig,
        &urls,
        &params,
    )
    .expect("match");
    assert_eq!(m.account_sid.as_str(), "ACffffffffffffffffffffffffffffffff");
    assert_eq!((m.account_index, m.key_index), (1, 0));
}

#[test]
fn shared_key_refusals_are_exact() {
    use SignatureAlgorithm::{HmacSha1, HmacSha256};
    let c = shared_creds();
    let url = "wss://h/prod";
    let urls = handshake_urls(url);
    let sha256 = compute_shared_key_signature("s3cr3t", HmacSha256, url, &[]);
    let sha1 = compute_shared_key_signature("s3cr3t", HmacSha1, url, &[]);
    let verify = |header: &str, sig: &str| {
        verify_shared_key_signature(&c, &settings(header), sig, &urls, &[]).map(|_| ())
    };
    assert_eq!(verify("key=k-old,algorithm=HMAC_SHA256", &sha256), Ok(()));
    assert_eq!(verify("key=k-old,algorithm=HMAC_SHA1", &sha1), Ok(()));
    // The other algorithm's MAC (another length) and the other key's MAC: mismatches.
    assert_eq!(
        verify("key=k-old,algorithm=HMAC_SHA256", &sha1),
        Err(SignatureFailure::Mismatch)
    );
    assert_eq!(
        verify("key=k-old,algorithm=HMAC_SHA1", &sha256),
        Err(SignatureFailure::Mismatch)
    );
    assert_eq!(
        verify("key=k-new,algorithm=HMAC_SHA256", &sha256),
        Err(SignatureFailure::Mismatch)
    );
    // The auth token's signature is not a shared key's.
    let by_token = compute_signature("12345", url, &[]);
    assert_eq!(
        verify("key=k-old,algorithm=HMAC_SHA1", &by_token),
        Err(SignatureFailure::Mismatch)
    );
    assert_eq!(
        verify("key=k-gone,algorithm=HMAC_SHA256", &sha256),
        Err(SignatureFailure::SharedKeyUnknown)
    );
    let (short, long) = (STANDARD.encode([0u8; 16]), STANDARD.encode([0u8; 33]));
    for bad in ["", "AAAA", "not base64!!", &"A".repeat(4000), &short, &long] {
        assert_eq!(
            verify("key=k-old,algorithm=HMAC_SHA256", bad),
            Err(SignatureFailure::Malformed)
        );
    }
    // The auth-token path is unchanged: a 32-byte MAC is not an HMAC-SHA1.
    assert_eq!(
        verify_signature(&c, None, &sha256, &urls, &[]),
        Err(SignatureFailure::Malformed)
    );
    assert_eq!(
        verify_signature(&c, None, &sha1, &urls, &[]),
        Err(SignatureFailure::Mismatch)
    );
}
