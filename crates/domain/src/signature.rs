//! Twilio request signatures (`X-Twilio-Signature`): base64(HMAC-SHA1(auth token, URL + sorted
//! form parameters)). Verification tries every configured account, every auth token and every URL
//! variant, always all of them, and compares in constant time.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::Mac;
use subtle::{ConditionallySelectable, ConstantTimeEq};

use super::credentials::{signing_key, Credentials, SigningKey};
use super::sid::AccountSid;

/// Bytes in an HMAC-SHA1.
const MAC_LEN: usize = 20;
/// base64 of 20 bytes is 28 characters; anything much longer is not a signature.
const MAX_HEADER_CHARS: usize = 64;

/// Which configured credential produced a matching signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignatureMatch {
    /// The account whose auth token matched.
    pub account_sid: AccountSid,
    /// Index of the account in `twilioAccounts`.
    pub account_index: usize,
    /// Index of the auth token in that account's `authTokens` (0 = primary).
    pub token_index: usize,
    /// The URL variant that matched.
    pub url_index: usize,
}

/// Why a presented signature did not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureFailure {
    /// Not the base64 of 20 bytes.
    Malformed,
    /// Well-formed, but no configured token signs any URL variant to it.
    Mismatch,
}

/// The URLs the `$connect` authorizer accepts a handshake signature over: the configured wss URL as
/// written, and with or without a trailing `/` (Twilio's docs advise trying both). Never a port
/// variant: Twilio signs the `<Stream url>` exactly as written in the TwiML. Query strings and
/// fragments are left as they are (a URL with a query gets no slash variant).
///
/// This is the set `stream-gate check-signature` must use for a wss URL, so that it reports a match
/// exactly when the authorizer would admit.
pub fn handshake_urls(url: &str) -> Vec<String> {
    let mut out = vec![url.to_owned()];
    match url.strip_suffix('/') {
        Some(without)
            if !without.ends_with('/') && without.contains("://") && !without.ends_with(':') =>
        {
            out.push(without.to_owned())
        }
        Some(_) => {}
        None if !url.contains('?') => out.push(format!("{url}/")),
        None => {}
    }
    out
}

/// The URLs the voice webhook accepts a signature over: every [`handshake_urls`] variant, then the
/// same with the scheme's default port added (`:443` for https/wss, `:80` for http/ws) when the URL
/// names no port, as Twilio's SDK validators accept both. First the URL as given, so a
/// [`SignatureMatch::url_index`] of 0 means "exactly as configured".
pub fn webhook_urls(url: &str) -> Vec<String> {
    let mut out = handshake_urls(url);
    if let Some(with_port) = with_default_port(url) {
        for v in handshake_urls(&with_port) {
            if !out.contains(&v) {
                out.push(v);
            }
        }
    }
    out
}

/// The old name of [`webhook_urls`], kept while callers outside the domain (the CLI and the
/// voice-webhook entrypoint) move to the surface-specific names. Do not use it for a handshake:
/// the authorizer accepts only [`handshake_urls`].
pub fn candidate_urls(url: &str) -> Vec<String> {
    webhook_urls(url)
}

fn with_default_port(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let port = match scheme {
        "https" | "wss" => 443,
        "http" | "ws" => 80,
        _ => return None,
    };
    let host_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let host = &rest[..host_end];
    if host.contains(':') {
        return None;
    }
    Some(format!("{scheme}://{host}:{port}{}", &rest[host_end..]))
}

/// The string Twilio signs: the URL, then each form parameter's name and value, sorted by name and,
/// for a repeated name, by value (byte order), with no separators.
pub fn signed_payload(url: &str, params: &[(&str, &str)]) -> String {
    let mut sorted: Vec<&(&str, &str)> = params.iter().collect();
    sorted.sort_unstable();
    let mut s = String::with_capacity(
        url.len() + params.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>(),
    );
    s.push_str(url);
    for (k, v) in sorted {
        s.push_str(k);
        s.push_str(v);
    }
    s
}

fn mac_with(key: &SigningKey, payload: &[u8]) -> [u8; MAC_LEN] {
    let mut mac = key.clone();
    mac.update(payload);
    mac.finalize().into_bytes().into()
}

/// Computes the `X-Twilio-Signature` value for a URL and form parameters under an auth token.
pub fn compute_signature(auth_token: &str, url: &str, params: &[(&str, &str)]) -> String {
    let key = signing_key(auth_token.as_bytes());
    STANDARD.encode(mac_with(&key, signed_payload(url, params).as_bytes()))
}

/// Decodes a presented header into the 20 MAC bytes, or says it is malformed.
fn decode_header(header: &str) -> Option<[u8; MAC_LEN]> {
    if header.len() > MAX_HEADER_CHARS {
        return None;
    }
    let mut buf = [0u8; 32];
    match STANDARD.decode_slice(header.trim().as_bytes(), &mut buf) {
        Ok(MAC_LEN) => {
            let mut out = [0u8; MAC_LEN];
            out.copy_from_slice(&buf[..MAC_LEN]);
            Some(out)
        }
        _ => None,
    }
}

/// Verifies a signature against every account and auth token of `credentials` (optionally only
/// `account`), over every URL in `urls`, with `params`. Runs every comparison whatever the result,
/// so timing says nothing about which token or URL came close.
pub fn verify_signature(
    credentials: &Credentials,
    only_account: Option<&AccountSid>,
    header: &str,
    urls: &[String],
    params: &[(&str, &str)],
) -> Result<SignatureMatch, SignatureFailure> {
    let presented = decode_header(header).ok_or(SignatureFailure::Malformed)?;
    // Without form parameters (the WebSocket handshake) the signed payload is the URL itself: no
    // copies. `Vec::new()` does not allocate.
    let built: Vec<String> = if params.is_empty() {
        Vec::new()
    } else {
        urls.iter().map(|u| signed_payload(u, params)).collect()
    };
    let payloads: &[String] = if params.is_empty() { urls } else { &built };

    let mut found = subtle::Choice::from(0u8);
    let (mut acc_i, mut tok_i, mut url_i) = (0u32, 0u32, 0u32);
    for (ai, account) in credentials.accounts.iter().enumerate() {
        // Which accounts to try is public (it comes from the posted AccountSid), not secret.
        if only_account.is_some_and(|sid| *sid != account.account_sid) {
            continue;
        }
        for (ti, key) in account.signing_keys.iter().enumerate() {
            for (ui, payload) in payloads.iter().enumerate() {
                let hit = mac_with(key, payload.as_bytes()).ct_eq(&presented);
                // Keep the first match only: select when hit and nothing found yet.
                let take = hit & !found;
                acc_i.conditional_assign(&(ai as u32), take);
                tok_i.conditional_assign(&(ti as u32), take);
                url_i.conditional_assign(&(ui as u32), take);
                found |= hit;
            }
        }
    }
    if !bool::from(found) {
        return Err(SignatureFailure::Mismatch);
    }
    let account = &credentials.accounts[acc_i as usize];
    Ok(SignatureMatch {
        account_sid: account.account_sid,
        account_index: acc_i as usize,
        token_index: tok_i as usize,
        url_index: url_i as usize,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // Vectors from twilio.md (auth token `12345`), the SDKs' published request-validator vectors.
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
        assert_eq!(candidate_urls("https://h/x"), webhook_urls("https://h/x"));
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
        let m =
            verify_signature(&c, None, "XFfwGS2Ev7f9qAP9MmRoMS7C724=", &urls, &[]).expect("match");
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
}
