//! Boundary tests of the credentials document: each size limit at its edge, and what the parsed
//! document reports (mutation testing, issue #15).

use serde_json::json;

use super::*;

const AC1: &str = "AC0123456789abcdef0123456789abcdef";
const AC2: &str = "ACffffffffffffffffffffffffffffffff";
const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"; // 32 bytes, no padding

fn doc(v: serde_json::Value) -> Result<Credentials, CredentialsError> {
    Credentials::from_json(&v.to_string())
}

fn refusal(v: serde_json::Value) -> (String, &'static str) {
    match doc(v) {
        Ok(_) => panic!("document should be refused"),
        Err(e) => (e.field, e.problem),
    }
}

fn with_auth_token(token: &str) -> serde_json::Value {
    json!({"twilioAccounts": [{"accountSid": AC1, "authTokens": [token]}]})
}

#[test]
fn a_document_of_exactly_64_kib_is_read() {
    let small = json!({"twilioAccounts": [{"accountSid": AC1, "authTokens": ["t"]}]}).to_string();
    // Pad with insignificant white space up to the limit.
    let exact = format!("{small}{}", " ".repeat(MAX_DOCUMENT_BYTES - small.len()));
    assert_eq!(exact.len(), MAX_DOCUMENT_BYTES);
    assert!(Credentials::from_json(&exact).is_ok());
    let over = format!("{exact} ");
    let e = Credentials::from_json(&over).expect_err("one byte over");
    assert_eq!((e.field.as_str(), e.problem), ("$", "larger than 64 KiB"));
}

#[test]
fn reports_whether_call_token_keys_are_configured() {
    let with = doc(json!({
        "twilioAccounts": [{"accountSid": AC1, "authTokens": ["t"]}],
        "callTokenKeys": [KEY]
    }))
    .expect("valid");
    assert!(with.has_call_token_keys());
    let without =
        doc(json!({"twilioAccounts": [{"accountSid": AC1, "authTokens": ["t"]}]})).expect("valid");
    assert!(!without.has_call_token_keys());
    let empty = doc(json!({
        "twilioAccounts": [{"accountSid": AC1, "authTokens": ["t"]}],
        "callTokenKeys": []
    }))
    .expect("valid");
    assert!(!empty.has_call_token_keys());
}

#[test]
fn debug_shows_sids_and_counts_only() {
    let c = doc(json!({
        "twilioAccounts": [
            {"accountSid": AC1, "authTokens": ["primary-token", "previous-token"],
             "sharedKeys": [{"id": "k", "secret": "shared-secret"}]},
            {"accountSid": AC2, "authTokens": ["other"]}],
        "streamTokens": [{"token": "s".repeat(32), "accountSid": AC1}],
        "callTokenKeys": [KEY]
    }))
    .expect("valid");
    assert_eq!(
        format!("{c:?}"),
        format!(
            "Credentials {{ accounts: [(AccountSid({AC1}), 2, 1), (AccountSid({AC2}), 1, 0)], \
             stream_tokens: 1, call_token_keys: 1 }}"
        )
    );
}

#[test]
fn at_most_64_entries_per_list() {
    let tokens = |n: usize| -> Vec<serde_json::Value> {
        (0..n)
            .map(|i| json!({"token": format!("stream-token-{i:03}-{}", "x".repeat(32)), "accountSid": AC1}))
            .collect()
    };
    let c = doc(json!({"streamTokens": tokens(64)})).expect("64 entries are fine");
    assert_eq!(c.stream_tokens.len(), 64);
    assert_eq!(
        refusal(json!({"streamTokens": tokens(65)})),
        ("streamTokens".to_owned(), "too many entries (at most 64)")
    );
    let keys: Vec<_> = (0..65)
        .map(|i| json!({"id": format!("k{i}"), "secret": "s"}))
        .collect();
    assert_eq!(
        refusal(
            json!({"twilioAccounts": [{"accountSid": AC1, "authTokens": ["t"], "sharedKeys": keys}]})
        ),
        (
            "twilioAccounts[0].sharedKeys".to_owned(),
            "too many entries (at most 64)"
        )
    );
}

#[test]
fn auth_tokens_are_1_to_256_characters_without_surrounding_space() {
    let rule = "must be 1 to 256 characters without surrounding white space";
    let c = doc(with_auth_token(&"t".repeat(256))).expect("256 characters are fine");
    assert_eq!(c.accounts[0].signing_keys.len(), 1);
    assert!(doc(with_auth_token("t")).is_ok());
    assert!(doc(with_auth_token("in side")).is_ok());
    for bad in [
        String::new(),
        "t".repeat(257),
        " t".to_owned(),
        "t ".to_owned(),
        "\tt".to_owned(),
        "t\n".to_owned(),
    ] {
        assert_eq!(
            refusal(with_auth_token(&bad)),
            ("twilioAccounts[0].authTokens[0]".to_owned(), rule),
            "{:?}",
            bad.len()
        );
    }
}

/// The pre-keyed HMAC states (`SigningKey`, `CallTokenKey`, and the shared-key MACs keyed per
/// request) are enough to forge MACs, so they must wipe themselves on drop (SECURITY.md, "What is
/// wiped"). hmac 0.13 does not say `ZeroizeOnDrop` of `Hmac<D>` itself: it is `{ core:
/// HmacCore<D>, buffer }` and `HmacCore<D>` is `{ digest, opad_digest }`, two `D::Core`. So this
/// pins what it is made of: each part wipes itself on drop (the `zeroize` features of sha1, sha2
/// and hmac; without them these bounds do not compile), and the sizes leave no room for a part
/// that does not.
#[test]
fn pre_keyed_hmac_states_wipe_themselves_on_drop() {
    use hmac::block_api::HmacCore;
    use hmac::digest::block_api::Buffer;
    use hmac::EagerHash;
    use std::mem::{align_of, size_of};

    fn wipes_on_drop<T: zeroize::ZeroizeOnDrop>() {}
    fn made_only_of_wiping_parts<D: EagerHash>()
    where
        D::Core: zeroize::ZeroizeOnDrop,
        Buffer<HmacCore<D>>: zeroize::ZeroizeOnDrop,
    {
        let core = size_of::<D::Core>();
        assert_eq!(
            size_of::<HmacCore<D>>(),
            2 * core,
            "HmacCore is two hash cores"
        );
        let parts = size_of::<HmacCore<D>>() + size_of::<Buffer<HmacCore<D>>>();
        assert_eq!(
            size_of::<hmac::Hmac<D>>(),
            parts.next_multiple_of(align_of::<hmac::Hmac<D>>()),
            "Hmac is its core and its block buffer"
        );
    }
    made_only_of_wiping_parts::<sha1::Sha1>();
    made_only_of_wiping_parts::<Sha256>();
    // The types the credentials keep are exactly those.
    let _: fn(SigningKey) -> hmac::Hmac<sha1::Sha1> = |k| k;
    let _: fn(CallTokenKey) -> hmac::Hmac<Sha256> = |k| k;
    // The text forms: secrets, and call-token keys decoded from the document.
    wipes_on_drop::<Secret>();
    wipes_on_drop::<Zeroizing<Vec<u8>>>();
}
