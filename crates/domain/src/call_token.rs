//! Per-call tokens: `v1.<exp>.<mac>`, minted by the voice webhook into the TwiML and checked on the
//! stream's `start` message (docs/design.md §3).
//!
//! `mac` = base64url (no padding) of HMAC-SHA256(key, "v1\n<accountSid>\n<callSid>\n<exp>"). A token
//! is valid when the MAC matches under any configured key (all are tried, constant time) and
//! `now <= exp + 30 s` of clock skew.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::Mac;
use subtle::ConstantTimeEq;

use super::credentials::{CallTokenKey, Credentials};
use super::secret::Secret;
use super::sid::{AccountSid, CallSid};

/// Seconds of clock skew allowed past `exp`.
pub const CLOCK_SKEW_SECS: u64 = 30;
/// Default token lifetime: Twilio opens the socket within seconds of fetching the TwiML.
pub const DEFAULT_TTL_SECS: u64 = 300;
const PREFIX: &str = "v1.";
const MAC_LEN: usize = 32;
const MAC_B64_LEN: usize = 43;
/// Decimal digits in a Unix time we accept (u64 holds 19 safely).
const MAX_EXP_DIGITS: usize = 12;
/// The largest expiry with [`MAX_EXP_DIGITS`] digits (year 33658).
const MAX_EXP: u64 = 999_999_999_999;

/// Why a call token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallTokenFailure {
    /// Not `v1.<digits>.<43 base64url chars>`.
    Malformed,
    /// No configured key was present to check it with.
    NoKeys,
    /// The MAC matches no key for this account and call.
    Invalid,
    /// Genuine, but expired.
    Expired,
}

/// A call token that verified: which key (0 = current) and when it expires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifiedCallToken {
    /// Index of the key in `callTokenKeys`.
    pub key_index: usize,
    /// Expiry, Unix seconds.
    pub expires_at: u64,
}

/// `n` in decimal, as `n.to_string()` spells it, written into `buf` (no allocation per check).
fn decimal(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    &buf[i..]
}

fn mac(key: &CallTokenKey, account: &AccountSid, call: &CallSid, exp: u64) -> [u8; MAC_LEN] {
    let mut m = key.clone();
    m.update(b"v1\n");
    m.update(account.as_str().as_bytes());
    m.update(b"\n");
    m.update(call.as_str().as_bytes());
    m.update(b"\n");
    let mut digits = [0u8; 20];
    m.update(decimal(exp, &mut digits));
    m.finalize().into_bytes().into()
}

/// Mints a token for `account` + `call` that expires `ttl_secs` after `now`, with the first
/// (current) key. `None` when the document has no call-token key.
pub fn mint_call_token(
    credentials: &Credentials,
    account: &AccountSid,
    call: &CallSid,
    now: u64,
    ttl_secs: u64,
) -> Option<Secret> {
    let key = credentials.call_token_keys.first()?;
    let exp = now.saturating_add(ttl_secs);
    // Never mint what `verify_call_token` would call malformed (found by the call_token fuzz
    // target: a clock set absurdly far ahead gave a 13-digit expiry).
    if exp > MAX_EXP {
        return None;
    }
    let tag = URL_SAFE_NO_PAD.encode(mac(key, account, call, exp));
    Some(Secret::new(format!("{PREFIX}{exp}.{tag}")))
}

/// Splits a token into `exp` and the MAC bytes, or `None` when it is not of the v1 shape.
fn parse(token: &str) -> Option<(u64, [u8; MAC_LEN])> {
    let rest = token.strip_prefix(PREFIX)?;
    let (exp, tag) = rest.split_once('.')?;
    if exp.is_empty() || exp.len() > MAX_EXP_DIGITS || !exp.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // A leading zero would give two spellings of one expiry; only the canonical one is minted.
    if exp.len() > 1 && exp.starts_with('0') {
        return None;
    }
    let exp: u64 = exp.parse().ok()?;
    if tag.len() != MAC_B64_LEN {
        return None;
    }
    let mut out = [0u8; MAC_LEN + 1];
    match URL_SAFE_NO_PAD.decode_slice(tag.as_bytes(), &mut out) {
        Ok(MAC_LEN) => {
            let mut mac = [0u8; MAC_LEN];
            mac.copy_from_slice(&out[..MAC_LEN]);
            Some((exp, mac))
        }
        _ => None,
    }
}

/// Whether `token` has the v1 shape (`v1.<digits>.<43 base64url chars>`), whatever its MAC: then it
/// holds only characters a URL carries as they are.
pub(crate) fn is_well_formed(token: &str) -> bool {
    parse(token).is_some()
}

/// Verifies a call token for `account` + `call` at time `now` (Unix seconds).
pub fn verify_call_token(
    credentials: &Credentials,
    token: &str,
    account: &AccountSid,
    call: &CallSid,
    now: u64,
) -> Result<VerifiedCallToken, CallTokenFailure> {
    let (exp, presented) = parse(token).ok_or(CallTokenFailure::Malformed)?;
    if credentials.call_token_keys.is_empty() {
        return Err(CallTokenFailure::NoKeys);
    }
    let mut found = subtle::Choice::from(0u8);
    let mut key_index = 0usize;
    for (i, key) in credentials.call_token_keys.iter().enumerate() {
        let hit = mac(key, account, call, exp).ct_eq(&presented);
        // At most two keys; selecting the index branch-free is not needed for secrecy here (which key
        // matched is logged anyway), but every key is always computed.
        if bool::from(hit & !found) {
            key_index = i;
        }
        found |= hit;
    }
    if !bool::from(found) {
        return Err(CallTokenFailure::Invalid);
    }
    if now > exp.saturating_add(CLOCK_SKEW_SECS) {
        return Err(CallTokenFailure::Expired);
    }
    Ok(VerifiedCallToken {
        key_index,
        expires_at: exp,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_spells_like_to_string() {
        for n in [0, 7, 10, 99, 1_795_881_600, 4_102_444_800, u64::MAX] {
            let mut buf = [0u8; 20];
            assert_eq!(decimal(n, &mut buf), n.to_string().as_bytes());
        }
    }

    const AC: &str = "AC0123456789abcdef0123456789abcdef";
    const CA: &str = "CAffeeddccbbaa99887766554433221100";
    const K0: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";
    const K1: &str = "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8";

    fn creds(keys: &[&str]) -> Credentials {
        let keys: Vec<String> = keys.iter().map(|k| format!("\"{k}\"")).collect();
        Credentials::from_json(&format!(
            r#"{{"twilioAccounts":[{{"accountSid":"{AC}","authTokens":["t"]}}],"callTokenKeys":[{}]}}"#,
            keys.join(",")
        ))
        .expect("valid")
    }

    fn sids() -> (AccountSid, CallSid) {
        (
            AccountSid::parse(AC).expect("ac"),
            CallSid::parse(CA).expect("ca"),
        )
    }

    #[test]
    fn known_answer() {
        // Computed independently: python3 -c "import hmac,hashlib,base64;
        // k=bytes(range(32)); m=b'v1\nAC0123456789abcdef0123456789abcdef\nCAffeeddccbbaa99887766554433221100\n1795000000';
        // print(base64.urlsafe_b64encode(hmac.new(k,m,hashlib.sha256).digest()).rstrip(b'='))"
        let c = creds(&[K0]);
        let (a, call) = sids();
        let t = mint_call_token(&c, &a, &call, 1_795_000_000 - 300, 300).expect("minted");
        assert_eq!(
            t.expose(),
            "v1.1795000000.UIC7QNBtDcrbKaonsLndllHTa0a14GX-etEBrVFwCq4"
        );
    }

    #[test]
    fn round_trips_and_rotates() {
        let (a, call) = sids();
        let old = creds(&[K1]);
        let t = mint_call_token(&old, &a, &call, 1000, 300).expect("minted");
        // After rotation K1 is the previous key: still valid, reported as key 1.
        let rotated = creds(&[K0, K1]);
        assert_eq!(
            verify_call_token(&rotated, t.expose(), &a, &call, 1000).map(|v| v.key_index),
            Ok(1)
        );
        assert_eq!(
            verify_call_token(&rotated, t.expose(), &a, &call, 1330).map(|v| v.expires_at),
            Ok(1300)
        );
        // Once K1 is dropped, the token is invalid.
        assert_eq!(
            verify_call_token(&creds(&[K0]), t.expose(), &a, &call, 1000),
            Err(CallTokenFailure::Invalid)
        );
    }

    #[test]
    fn rejects_with_the_exact_reason() {
        let c = creds(&[K0]);
        let (a, call) = sids();
        let t = mint_call_token(&c, &a, &call, 1000, 300).expect("minted");
        let t = t.expose();
        assert_eq!(
            verify_call_token(&c, t, &a, &call, 1331),
            Err(CallTokenFailure::Expired)
        );
        let other_call = CallSid::parse("CA00000000000000000000000000000000").expect("ca");
        assert_eq!(
            verify_call_token(&c, t, &a, &other_call, 1000),
            Err(CallTokenFailure::Invalid)
        );
        let other_acc = AccountSid::parse("ACffffffffffffffffffffffffffffffff").expect("ac");
        assert_eq!(
            verify_call_token(&c, t, &other_acc, &call, 1000),
            Err(CallTokenFailure::Invalid)
        );
        // A later expiry with the old MAC: the MAC covers exp.
        let forged = t.replacen("v1.1300.", "v1.9999.", 1);
        assert_eq!(
            verify_call_token(&c, &forged, &a, &call, 1000),
            Err(CallTokenFailure::Invalid)
        );
        for bad in [
            "",
            "v1",
            "v1..",
            "v2.1300.x",
            "v1.13a0.x",
            "v1.01300.aaaa",
            "v1.1300.short",
            "v1.99999999999999999999.x",
        ] {
            assert_eq!(
                verify_call_token(&c, bad, &a, &call, 1000),
                Err(CallTokenFailure::Malformed),
                "{bad}"
            );
        }
        let no_keys = Credentials::from_json(&format!(
            r#"{{"twilioAccounts":[{{"accountSid":"{AC}","authTokens":["t"]}}]}}"#
        ))
        .expect("valid");
        assert_eq!(
            verify_call_token(&no_keys, t, &a, &call, 1000),
            Err(CallTokenFailure::NoKeys)
        );
        assert!(mint_call_token(&no_keys, &a, &call, 1000, 300).is_none());
    }

    /// A token with expiry `exp` whose MAC is genuine under the first key of `c` (what only the
    /// webhook could produce), with `exp_text` written in place of the canonical decimal.
    fn genuine(c: &Credentials, exp: u64, exp_text: &str) -> String {
        let (a, call) = sids();
        let tag = URL_SAFE_NO_PAD.encode(mac(&c.call_token_keys[0], &a, &call, exp));
        format!("v1.{exp_text}.{tag}")
    }

    #[test]
    fn expiry_is_one_to_twelve_canonical_digits() {
        let (c, (a, call)) = (creds(&[K0]), sids());
        // The largest expiry mintable (12 digits) verifies.
        let t = mint_call_token(&c, &a, &call, MAX_EXP - 300, 300).expect("minted");
        assert_eq!(
            verify_call_token(&c, t.expose(), &a, &call, 1000),
            Ok(VerifiedCallToken {
                key_index: 0,
                expires_at: MAX_EXP
            })
        );
        // `0` is a single digit, not a leading zero: a genuine token, valid within the skew.
        let t = mint_call_token(&c, &a, &call, 0, 0).expect("minted");
        assert_eq!(t.expose(), genuine(&c, 0, "0"));
        assert_eq!(
            verify_call_token(&c, t.expose(), &a, &call, CLOCK_SKEW_SECS).map(|v| v.expires_at),
            Ok(0)
        );
        assert_eq!(
            verify_call_token(&c, t.expose(), &a, &call, CLOCK_SKEW_SECS + 1),
            Err(CallTokenFailure::Expired)
        );
        // Genuine MACs, but spellings the webhook never mints: each is refused as malformed, so a
        // token cannot be re-spelled (and no expiry past 12 digits exists).
        assert_eq!(
            verify_call_token(&c, &genuine(&c, 1300, "1300"), &a, &call, 1000)
                .map(|v| v.expires_at),
            Ok(1300)
        );
        for (exp, spelled) in [
            (1300, "01300"),
            (1300, "001300"),
            (1300, "+1300"),
            (1300, " 1300"),
            (1_000_000_000_000, "1000000000000"),
            (u64::MAX, "18446744073709551615"),
        ] {
            assert_eq!(
                verify_call_token(&c, &genuine(&c, exp, spelled), &a, &call, 1000),
                Err(CallTokenFailure::Malformed),
                "{spelled}"
            );
        }
        assert_eq!(
            verify_call_token(&c, &genuine(&c, 0, ""), &a, &call, 0),
            Err(CallTokenFailure::Malformed)
        );
    }

    #[test]
    fn mac_is_exactly_43_canonical_base64url_characters() {
        let (c, (a, call)) = (creds(&[K0]), sids());
        let t = genuine(&c, 1300, "1300");
        let tag = &t["v1.1300.".len()..];
        assert_eq!(tag.len(), MAC_B64_LEN);
        // The last character carries 2 unused bits, which must be zero: one spelling per MAC.
        const ALPHABET: &[u8; 64] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let last = ALPHABET
            .iter()
            .position(|&b| b == tag.as_bytes()[MAC_B64_LEN - 1])
            .expect("base64url");
        assert_eq!(last & 0b11, 0);
        let noncanonical = format!(
            "v1.1300.{}{}",
            &tag[..MAC_B64_LEN - 1],
            ALPHABET[last | 1] as char
        );
        for bad in [
            format!("v1.1300.{}", &tag[..MAC_B64_LEN - 1]),
            format!("v1.1300.{tag}A"),
            format!("v1.1300.{tag}="),
            format!("v1.1300.{tag}.x"),
            // A standard-alphabet character is not base64url.
            format!("v1.1300.+{}", &tag[1..]),
            noncanonical,
        ] {
            assert_eq!(
                verify_call_token(&c, &bad, &a, &call, 1000),
                Err(CallTokenFailure::Malformed),
                "{bad}"
            );
        }
    }

    #[test]
    fn the_current_key_is_named_when_both_keys_are_the_same() {
        // A document may list one key twice (a rotation that copied the current key into the
        // previous slot). The token is then reported as verified by the current key, index 0: the
        // index is what tells an operator whether the previous key is still in use.
        let (a, call) = sids();
        let c = creds(&[K0, K0]);
        let t = mint_call_token(&c, &a, &call, 1000, 300).expect("minted");
        assert_eq!(
            verify_call_token(&c, t.expose(), &a, &call, 1000).map(|v| v.key_index),
            Ok(0)
        );
    }

    #[test]
    fn never_mints_an_expiry_verify_refuses() {
        let (c, (a, call)) = (creds(&[K0]), sids());
        assert!(mint_call_token(&c, &a, &call, MAX_EXP - 300, 300).is_some());
        assert!(mint_call_token(&c, &a, &call, MAX_EXP - 299, 300).is_none());
        assert!(mint_call_token(&c, &a, &call, u64::MAX, 300).is_none());
    }
}
