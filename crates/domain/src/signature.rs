//! Twilio request signatures (`X-Twilio-Signature`): base64(HMAC-SHA1(auth token, URL + sorted
//! form parameters)). Verification tries every configured account, every auth token and every URL
//! variant, always all of them, and compares in constant time.
//!
//! Shared keys (Twilio's Webhooks configuration API): when the request carries
//! `X-Twilio-Webhooks-Signature-Settings: key=<id>,algorithm=HMAC_SHA256|HMAC_SHA1`, the same string
//! is signed with that key's secret (its raw UTF-8 bytes) and that algorithm instead. The key is
//! chosen by id ([`SignatureSettings`]), and the auth tokens are then not tried at all.

use std::borrow::Cow;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::KeyInit;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::Sha256;
use subtle::{ConditionallySelectable, ConstantTimeEq};

use super::credentials::{signing_key, unreachable_key, Credentials, SigningKey};
use super::sid::AccountSid;

/// Bytes in an HMAC-SHA1.
const MAC_LEN: usize = 20;
/// Bytes in the longest MAC accepted (HMAC-SHA256).
const MAX_MAC_LEN: usize = 32;
/// base64 of 32 bytes is 44 characters; anything much longer is not a signature.
const MAX_HEADER_CHARS: usize = 64;

/// The header Twilio adds when it signs with a shared key instead of the auth token.
pub const SIGNATURE_SETTINGS_HEADER: &str = "X-Twilio-Webhooks-Signature-Settings";
/// Longest `X-Twilio-Webhooks-Signature-Settings` value parsed.
pub const MAX_SETTINGS_HEADER_CHARS: usize = 256;

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

/// Which configured shared key produced a matching signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SharedKeyMatch {
    /// The account the shared key belongs to.
    pub account_sid: AccountSid,
    /// Index of the account in `twilioAccounts`.
    pub account_index: usize,
    /// Index of the key in that account's `sharedKeys`.
    pub key_index: usize,
    /// The URL variant that matched.
    pub url_index: usize,
}

/// Why a presented signature did not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureFailure {
    /// Not the base64 of 20 bytes (under a shared key: of 20 or 32 bytes).
    Malformed,
    /// Well-formed, but no configured token (or the named shared key with the named algorithm)
    /// signs any URL variant to it. A MAC of the other algorithm's length is a mismatch.
    Mismatch,
    /// The settings header names a shared key id that no account configures.
    SharedKeyUnknown,
}

/// The HMAC a shared key signs with, as named by `algorithm=` in the settings header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SignatureAlgorithm {
    /// `HMAC_SHA1` (20-byte MAC; what auth tokens always use).
    HmacSha1,
    /// `HMAC_SHA256` (32-byte MAC).
    HmacSha256,
}

impl SignatureAlgorithm {
    /// Both algorithms.
    pub const ALL: [SignatureAlgorithm; 2] = [Self::HmacSha1, Self::HmacSha256];

    /// The name Twilio writes in the header.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::HmacSha1 => "HMAC_SHA1",
            Self::HmacSha256 => "HMAC_SHA256",
        }
    }

    /// The algorithm of a header name: exactly `HMAC_SHA1` or `HMAC_SHA256` (case-sensitive, as
    /// Twilio writes them).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == name)
    }
}

/// Why an `X-Twilio-Webhooks-Signature-Settings` value was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettingsFailure {
    /// Not `key=<id>,algorithm=<alg>`: empty, longer than [`MAX_SETTINGS_HEADER_CHARS`], a part
    /// without `=`, an empty value, a character outside printable ASCII, an unknown or repeated
    /// parameter, or no `key=`.
    Malformed,
    /// A `key=` but no `algorithm=`. (Twilio's Python helper falls back to HMAC_SHA1 here; the gate
    /// does not guess.)
    AlgorithmMissing,
    /// An algorithm other than `HMAC_SHA256` or `HMAC_SHA1`.
    AlgorithmUnsupported,
}

/// A parsed `X-Twilio-Webhooks-Signature-Settings` value: which shared key signed, and how.
/// The key id is public (it travels in the clear); the secret is looked up by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignatureSettings<'a> {
    key_id: &'a str,
    algorithm: SignatureAlgorithm,
}

/// Whether a byte may appear in a shared key id (and any settings parameter value): printable
/// ASCII, no space, not the header's own separators `,` and `=`, and no `"` (values are never
/// quoted; a quoted id would otherwise be looked up with its quotes).
pub(crate) fn is_key_id_byte(b: u8) -> bool {
    b.is_ascii_graphic() && !matches!(b, b',' | b'=' | b'"')
}

impl<'a> SignatureSettings<'a> {
    /// Parses `key=<id>,algorithm=<alg>`: parameters in any order, optional spaces or tabs around
    /// each name and value, nothing else. Malformed beats a missing algorithm, which beats an
    /// unsupported one.
    pub fn parse(header: &'a str) -> Result<Self, SettingsFailure> {
        if header.is_empty() || header.len() > MAX_SETTINGS_HEADER_CHARS {
            return Err(SettingsFailure::Malformed);
        }
        let ows: &[char] = &[' ', '\t'];
        let (mut key, mut algorithm) = (None, None);
        for part in header.split(',') {
            let (name, value) = part.split_once('=').ok_or(SettingsFailure::Malformed)?;
            let (name, value) = (name.trim_matches(ows), value.trim_matches(ows));
            if value.is_empty() || !value.bytes().all(is_key_id_byte) {
                return Err(SettingsFailure::Malformed);
            }
            let slot = match name {
                "key" => &mut key,
                "algorithm" => &mut algorithm,
                _ => return Err(SettingsFailure::Malformed),
            };
            if slot.replace(value).is_some() {
                return Err(SettingsFailure::Malformed);
            }
        }
        let key_id = key.ok_or(SettingsFailure::Malformed)?;
        let algorithm = algorithm.ok_or(SettingsFailure::AlgorithmMissing)?;
        let algorithm = SignatureAlgorithm::from_name(algorithm)
            .ok_or(SettingsFailure::AlgorithmUnsupported)?;
        Ok(Self { key_id, algorithm })
    }

    /// The shared key id (`key=`).
    pub fn key_id(&self) -> &'a str {
        self.key_id
    }

    /// The algorithm (`algorithm=`).
    pub fn algorithm(&self) -> SignatureAlgorithm {
        self.algorithm
    }
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

/// Computes the `X-Twilio-Signature` value Twilio sends under a shared key: the same string as
/// [`compute_signature`], signed with `algorithm` keyed by the secret's raw UTF-8 bytes (not
/// base64-decoded).
pub fn compute_shared_key_signature(
    secret: &str,
    algorithm: SignatureAlgorithm,
    url: &str,
    params: &[(&str, &str)],
) -> String {
    let payload = signed_payload(url, params);
    match algorithm {
        SignatureAlgorithm::HmacSha1 => STANDARD.encode(
            keyed::<Hmac<Sha1>>(secret)
                .chain_update(&payload)
                .finalize()
                .into_bytes(),
        ),
        SignatureAlgorithm::HmacSha256 => STANDARD.encode(
            keyed::<Hmac<Sha256>>(secret)
                .chain_update(&payload)
                .finalize()
                .into_bytes(),
        ),
    }
}

/// An HMAC keyed with `secret`'s bytes (HMAC takes keys of any length, so keying cannot fail).
fn keyed<M: Mac + KeyInit>(secret: &str) -> M {
    <M as KeyInit>::new_from_slice(secret.as_bytes()).unwrap_or_else(|_| unreachable_key())
}

/// A presented MAC: up to 32 bytes, and how many.
struct PresentedMac {
    bytes: [u8; MAX_MAC_LEN],
    len: usize,
}

impl PresentedMac {
    fn as_slice(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// Decodes a presented header into the MAC bytes if it is the standard base64 of 20 or 32 bytes
/// (an HMAC-SHA1 or HMAC-SHA256), else says it is malformed.
fn decode_mac(header: &str) -> Option<PresentedMac> {
    if header.len() > MAX_HEADER_CHARS {
        return None;
    }
    // Room for any decode of 64 characters, so only the decoded length decides.
    let mut buf = [0u8; 48];
    match STANDARD.decode_slice(header.trim().as_bytes(), &mut buf) {
        Ok(len @ (MAC_LEN | MAX_MAC_LEN)) => {
            let mut bytes = [0u8; MAX_MAC_LEN];
            bytes[..len].copy_from_slice(&buf[..len]);
            Some(PresentedMac { bytes, len })
        }
        _ => None,
    }
}

/// Decodes a presented header into the 20 MAC bytes of an HMAC-SHA1, or says it is malformed.
fn decode_header(header: &str) -> Option<[u8; MAC_LEN]> {
    let mac = decode_mac(header).filter(|m| m.len == MAC_LEN)?;
    let mut out = [0u8; MAC_LEN];
    out.copy_from_slice(&mac.bytes[..MAC_LEN]);
    Some(out)
}

/// What is signed for each URL: the URL itself without form parameters (no copies), else the URL
/// followed by the sorted parameters.
fn signed_payloads<'u>(urls: &'u [String], params: &[(&str, &str)]) -> Cow<'u, [String]> {
    if params.is_empty() {
        Cow::Borrowed(urls)
    } else {
        Cow::Owned(urls.iter().map(|u| signed_payload(u, params)).collect())
    }
}

/// Compares `presented` with the MAC of every payload under `key`, all of them, in constant time
/// (a presented MAC of another length compares unequal). Returns whether one matched and the index
/// of the first that did.
fn first_match<M: Mac + Clone>(
    key: &M,
    payloads: &[String],
    presented: &PresentedMac,
) -> (subtle::Choice, u32) {
    let mut found = subtle::Choice::from(0u8);
    let mut index = 0u32;
    for (i, payload) in payloads.iter().enumerate() {
        let computed = key
            .clone()
            .chain_update(payload.as_bytes())
            .finalize()
            .into_bytes();
        let hit = computed.as_slice().ct_eq(presented.as_slice());
        index.conditional_assign(&(i as u32), hit & !found);
        found |= hit;
    }
    (found, index)
}

/// Verifies a signature made with the shared key that `settings` names, with the algorithm it
/// names, over every URL in `urls` with `params`. The key is looked up by id across every account;
/// its account is the one the match reports (the caller checks it against any account it expects).
/// Auth tokens are not tried: a request that says it was signed with a shared key is judged as such.
pub fn verify_shared_key_signature(
    credentials: &Credentials,
    settings: &SignatureSettings<'_>,
    header: &str,
    urls: &[String],
    params: &[(&str, &str)],
) -> Result<SharedKeyMatch, SignatureFailure> {
    verify_shared_key_payloads(
        credentials,
        settings,
        header,
        &signed_payloads(urls, params),
    )
}

/// [`verify_shared_key_signature`] over strings already in signed form ([`signed_payload`]): the
/// caller chooses every candidate, and every one is tried. `url_index` indexes `payloads`.
pub(crate) fn verify_shared_key_payloads(
    credentials: &Credentials,
    settings: &SignatureSettings<'_>,
    header: &str,
    payloads: &[String],
) -> Result<SharedKeyMatch, SignatureFailure> {
    let presented = decode_mac(header).ok_or(SignatureFailure::Malformed)?;
    let (account_index, key_index) = credentials
        .find_shared_key(settings.key_id())
        .ok_or(SignatureFailure::SharedKeyUnknown)?;
    let account = credentials
        .accounts
        .get(account_index)
        .ok_or(SignatureFailure::SharedKeyUnknown)?;
    let key = account
        .shared_keys
        .get(key_index)
        .ok_or(SignatureFailure::SharedKeyUnknown)?;
    let secret = key.secret.expose();
    let (found, url_index) = match settings.algorithm() {
        SignatureAlgorithm::HmacSha1 => {
            first_match(&keyed::<Hmac<Sha1>>(secret), payloads, &presented)
        }
        SignatureAlgorithm::HmacSha256 => {
            first_match(&keyed::<Hmac<Sha256>>(secret), payloads, &presented)
        }
    };
    if !bool::from(found) {
        return Err(SignatureFailure::Mismatch);
    }
    Ok(SharedKeyMatch {
        account_sid: account.account_sid,
        account_index,
        key_index,
        url_index: url_index as usize,
    })
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
    // Without form parameters (the WebSocket handshake) the signed payload is the URL itself: no
    // copies.
    verify_signature_payloads(
        credentials,
        only_account,
        header,
        &signed_payloads(urls, params),
    )
}

/// [`verify_signature`] over strings already in signed form ([`signed_payload`]): the caller
/// chooses every candidate, and every one is tried. `url_index` indexes `payloads`.
pub(crate) fn verify_signature_payloads(
    credentials: &Credentials,
    only_account: Option<&AccountSid>,
    header: &str,
    payloads: &[String],
) -> Result<SignatureMatch, SignatureFailure> {
    let presented = decode_header(header).ok_or(SignatureFailure::Malformed)?;

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
#[path = "signature_tests.rs"]
mod tests;
