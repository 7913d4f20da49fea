//! The credentials document (docs/design.md §3): parsed, validated as a whole, and turned once into
//! ready-to-use keys (pre-keyed HMAC states, token digests) so the hot paths do no key set-up.
//!
//! Errors name the field (`twilioAccounts[1].authTokens[0]`) and the rule broken, never the value:
//! the document is walked as a `serde_json::Value` by hand because serde's own type errors quote the
//! offending value, which here would be a secret. The `Value` comes from a strict parse that refuses
//! duplicate keys (serde_json would keep the last one silently).

use std::fmt;

use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine as _;
use hmac::{Hmac, KeyInit};
use serde_json::{Map, Value};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::secret::Secret;
use super::sid::AccountSid;
use super::signature::is_key_id_byte;
use super::strict_json::{self, StrictJsonError};

/// HMAC-SHA1 keyed with an auth token (Twilio request signatures).
pub(crate) type SigningKey = Hmac<Sha1>;
/// HMAC-SHA256 keyed with a call-token key.
pub(crate) type CallTokenKey = Hmac<Sha256>;

/// Largest credentials document accepted (Secrets Manager's own limit is 64 KiB).
pub const MAX_DOCUMENT_BYTES: usize = 64 * 1024;
/// A stream token has at least this many characters.
pub const MIN_STREAM_TOKEN_CHARS: usize = 32;
/// Longest stream token (bounds the work done on a hostile `?token=`).
pub const MAX_STREAM_TOKEN_CHARS: usize = 512;
/// A call-token key decodes to at least this many bytes.
pub const MIN_CALL_TOKEN_KEY_BYTES: usize = 32;
const MAX_AUTH_TOKEN_CHARS: usize = 256;
/// Longest shared-key id (Twilio's ids are far shorter; this bounds the header parse and lookup).
pub const MAX_SHARED_KEY_ID_CHARS: usize = 128;
const MAX_SHARED_KEY_SECRET_CHARS: usize = 1024;
const MAX_ENTRIES: usize = 64;

/// Every field name of the document's schema: the names an error path may show.
const FIELD_NAMES: &[&str] = &[
    "twilioAccounts",
    "accountSid",
    "authTokens",
    "sharedKeys",
    "id",
    "secret",
    "streamTokens",
    "token",
    "callTokenKeys",
];

/// Why a credentials document was refused. Names a field path and a rule; never a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("credentials document refused: {field}: {problem}")]
pub struct CredentialsError {
    /// Path of the offending field, e.g. `streamTokens[0].token` (`$` for the document itself).
    pub field: String,
    /// The rule it breaks.
    pub problem: &'static str,
}

fn err(field: impl Into<String>, problem: &'static str) -> CredentialsError {
    CredentialsError {
        field: field.into(),
        problem,
    }
}

/// One Twilio account and its auth tokens and shared keys, ready to verify signatures.
pub struct TwilioAccount {
    pub(crate) account_sid: AccountSid,
    pub(crate) signing_keys: Vec<SigningKey>,
    pub(crate) shared_keys: Vec<SharedKey>,
}

/// One Twilio SharedKey (Webhooks configuration API): a public id, chosen by the
/// `X-Twilio-Webhooks-Signature-Settings` header, and its secret, used as raw UTF-8 bytes for an
/// HMAC whose algorithm the header names. Kept as a [`Secret`] (wiped on drop) and keyed per
/// request, since only the one key the header names is ever used.
pub(crate) struct SharedKey {
    pub(crate) id: String,
    pub(crate) secret: Secret,
}

/// One stream token, kept only as its SHA-256 digest (compared in constant time).
pub(crate) struct StreamTokenEntry {
    pub(crate) digest: [u8; 32],
    pub(crate) account_sid: AccountSid,
}

/// A validated credentials document in ready-to-use form.
pub struct Credentials {
    pub(crate) accounts: Vec<TwilioAccount>,
    pub(crate) stream_tokens: Vec<StreamTokenEntry>,
    pub(crate) call_token_keys: Vec<CallTokenKey>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // SIDs are identifiers, not secrets; keys and tokens are only counted.
        let accounts: Vec<_> = self
            .accounts
            .iter()
            .map(|a| (a.account_sid, a.signing_keys.len(), a.shared_keys.len()))
            .collect();
        f.debug_struct("Credentials")
            .field("accounts", &accounts)
            .field("stream_tokens", &self.stream_tokens.len())
            .field("call_token_keys", &self.call_token_keys.len())
            .finish()
    }
}

impl Credentials {
    /// Parses and validates a credentials document. Refuses it whole on the first broken rule.
    pub fn from_json(document: &str) -> Result<Self, CredentialsError> {
        if document.len() > MAX_DOCUMENT_BYTES {
            return Err(err("$", "larger than 64 KiB"));
        }
        // serde_json keeps the last of two equal keys; a document that says a thing twice is
        // ambiguous and refused whole, naming where.
        let value = strict_json::parse(document, FIELD_NAMES).map_err(|e| match e {
            StrictJsonError::Invalid => err("$", "not valid JSON"),
            StrictJsonError::DuplicateKey(path) => err(path, "duplicate key"),
        })?;
        let result = Self::from_value(&value);
        strict_json::wipe(value);
        result
    }

    fn from_value(value: &Value) -> Result<Self, CredentialsError> {
        let root = value
            .as_object()
            .ok_or_else(|| err("$", "must be a JSON object"))?;
        only_keys(
            root,
            "$",
            &["twilioAccounts", "streamTokens", "callTokenKeys"],
        )?;

        let accounts = parse_accounts(root.get("twilioAccounts"))?;
        let stream_tokens = parse_stream_tokens(root.get("streamTokens"))?;
        let call_token_keys = parse_call_token_keys(root.get("callTokenKeys"))?;
        if accounts.is_empty() && stream_tokens.is_empty() {
            return Err(err(
                "twilioAccounts",
                "no account and no stream token: nothing could ever be admitted",
            ));
        }
        Ok(Self {
            accounts,
            stream_tokens,
            call_token_keys,
        })
    }

    /// The configured Twilio accounts, in document order.
    pub fn account_sids(&self) -> impl Iterator<Item = AccountSid> + '_ {
        self.accounts.iter().map(|a| a.account_sid)
    }

    /// Whether the document has at least one call-token key.
    pub fn has_call_token_keys(&self) -> bool {
        !self.call_token_keys.is_empty()
    }

    /// The shared key with this id: (account index, key index). Ids are unique in a document and
    /// public (they travel in a header), so a plain lookup leaks nothing.
    pub(crate) fn find_shared_key(&self, id: &str) -> Option<(usize, usize)> {
        self.accounts.iter().enumerate().find_map(|(ai, account)| {
            account
                .shared_keys
                .iter()
                .position(|k| k.id == id)
                .map(|ki| (ai, ki))
        })
    }
}

fn only_keys(
    map: &Map<String, Value>,
    path: &str,
    allowed: &[&str],
) -> Result<(), CredentialsError> {
    // Unknown keys are refused so that a typo (`authToken`) cannot silently drop a credential.
    // The unknown key's name is not echoed: a misplaced secret might be sitting in it.
    if map.keys().any(|k| !allowed.contains(&k.as_str())) {
        return Err(err(path, "has an unknown field"));
    }
    Ok(())
}

fn array<'a>(v: Option<&'a Value>, path: &str) -> Result<&'a [Value], CredentialsError> {
    match v {
        None => Ok(&[]),
        Some(Value::Array(items)) if items.len() <= MAX_ENTRIES => Ok(items),
        Some(Value::Array(_)) => Err(err(path, "too many entries (at most 64)")),
        Some(_) => Err(err(path, "must be an array")),
    }
}

fn string<'a>(v: Option<&'a Value>, path: &str) -> Result<&'a str, CredentialsError> {
    match v {
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(err(path, "must be a string")),
        None => Err(err(path, "is required")),
    }
}

fn account_sid(v: Option<&Value>, path: &str) -> Result<AccountSid, CredentialsError> {
    AccountSid::parse(string(v, path)?)
        .map_err(|_| err(path, "must be AC followed by 32 hex digits"))
}

fn parse_accounts(v: Option<&Value>) -> Result<Vec<TwilioAccount>, CredentialsError> {
    let mut accounts: Vec<TwilioAccount> = Vec::new();
    for (i, item) in array(v, "twilioAccounts")?.iter().enumerate() {
        let path = format!("twilioAccounts[{i}]");
        let obj = item
            .as_object()
            .ok_or_else(|| err(&path, "must be an object"))?;
        only_keys(obj, &path, &["accountSid", "authTokens", "sharedKeys"])?;
        let sid_path = format!("{path}.accountSid");
        let sid = account_sid(obj.get("accountSid"), &sid_path)?;
        if accounts.iter().any(|a| a.account_sid == sid) {
            return Err(err(sid_path, "duplicate account"));
        }
        let tokens_path = format!("{path}.authTokens");
        let tokens = match obj.get("authTokens") {
            None => return Err(err(tokens_path, "is required")),
            Some(t) => array(Some(t), &tokens_path)?,
        };
        if tokens.is_empty() || tokens.len() > 2 {
            return Err(err(
                tokens_path,
                "must hold the primary auth token and at most one previous one",
            ));
        }
        let mut signing_keys = Vec::with_capacity(tokens.len());
        for (j, token) in tokens.iter().enumerate() {
            let tpath = format!("{tokens_path}[{j}]");
            let token = string(Some(token), &tpath)?;
            if token.is_empty() || token.len() > MAX_AUTH_TOKEN_CHARS || token.trim() != token {
                return Err(err(
                    tpath,
                    "must be 1 to 256 characters without surrounding white space",
                ));
            }
            signing_keys.push(signing_key(token.as_bytes()));
        }
        let shared_keys = parse_shared_keys(
            obj.get("sharedKeys"),
            &format!("{path}.sharedKeys"),
            &accounts,
        )?;
        accounts.push(TwilioAccount {
            account_sid: sid,
            signing_keys,
            shared_keys,
        });
    }
    Ok(accounts)
}

/// `sharedKeys` of one account: `[{"id": .., "secret": ..}]`, optional. Ids must be unique across
/// the whole document (`earlier` holds the accounts parsed so far), since the header names a key by
/// id alone.
fn parse_shared_keys(
    v: Option<&Value>,
    path: &str,
    earlier: &[TwilioAccount],
) -> Result<Vec<SharedKey>, CredentialsError> {
    let items = array(v, path)?;
    let mut keys: Vec<SharedKey> = Vec::with_capacity(items.len());
    for (k, item) in items.iter().enumerate() {
        let kpath = format!("{path}[{k}]");
        let obj = item
            .as_object()
            .ok_or_else(|| err(&kpath, "must be an object"))?;
        only_keys(obj, &kpath, &["id", "secret"])?;
        let id_path = format!("{kpath}.id");
        let id = string(obj.get("id"), &id_path)?;
        if id.is_empty() || id.len() > MAX_SHARED_KEY_ID_CHARS || !id.bytes().all(is_key_id_byte) {
            return Err(err(
                id_path,
                "must be 1 to 128 printable ASCII characters without spaces, commas, equals signs or quotes",
            ));
        }
        let taken = earlier
            .iter()
            .flat_map(|a| a.shared_keys.iter())
            .chain(keys.iter())
            .any(|other| other.id == id);
        if taken {
            return Err(err(id_path, "duplicate shared key id"));
        }
        let secret_path = format!("{kpath}.secret");
        let secret = string(obj.get("secret"), &secret_path)?;
        if secret.is_empty()
            || secret.len() > MAX_SHARED_KEY_SECRET_CHARS
            || secret.trim() != secret
        {
            return Err(err(
                secret_path,
                "must be 1 to 1024 bytes without surrounding white space",
            ));
        }
        keys.push(SharedKey {
            id: id.to_owned(),
            secret: Secret::new(secret.to_owned()),
        });
    }
    Ok(keys)
}

fn parse_stream_tokens(v: Option<&Value>) -> Result<Vec<StreamTokenEntry>, CredentialsError> {
    let mut entries: Vec<StreamTokenEntry> = Vec::new();
    for (i, item) in array(v, "streamTokens")?.iter().enumerate() {
        let path = format!("streamTokens[{i}]");
        let obj = item
            .as_object()
            .ok_or_else(|| err(&path, "must be an object"))?;
        only_keys(obj, &path, &["token", "accountSid"])?;
        let tpath = format!("{path}.token");
        let token = string(obj.get("token"), &tpath)?;
        let chars = token.chars().count();
        if !(MIN_STREAM_TOKEN_CHARS..=MAX_STREAM_TOKEN_CHARS).contains(&chars) {
            return Err(err(tpath, "must be 32 to 512 characters"));
        }
        if !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(err(
                tpath,
                "must be printable ASCII without spaces (it travels in a URL)",
            ));
        }
        let digest = token_digest(token);
        if entries.iter().any(|e| e.digest == digest) {
            return Err(err(tpath, "duplicate stream token"));
        }
        let account_sid = account_sid(obj.get("accountSid"), &format!("{path}.accountSid"))?;
        entries.push(StreamTokenEntry {
            digest,
            account_sid,
        });
    }
    Ok(entries)
}

fn parse_call_token_keys(v: Option<&Value>) -> Result<Vec<CallTokenKey>, CredentialsError> {
    let items = array(v, "callTokenKeys")?;
    if items.len() > 2 {
        return Err(err(
            "callTokenKeys",
            "must hold the current key and at most one previous one",
        ));
    }
    let mut keys = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let path = format!("callTokenKeys[{i}]");
        let text = string(Some(item), &path)?;
        let bytes = decode_key(text).ok_or_else(|| err(&path, "must be base64url"))?;
        if bytes.len() < MIN_CALL_TOKEN_KEY_BYTES {
            return Err(err(path, "must decode to at least 32 bytes"));
        }
        keys.push(call_token_key(&bytes));
    }
    Ok(keys)
}

fn decode_key(text: &str) -> Option<Zeroizing<Vec<u8>>> {
    let engine = if text.ends_with('=') {
        &URL_SAFE
    } else {
        &URL_SAFE_NO_PAD
    };
    engine.decode(text).ok().map(Zeroizing::new)
}

/// SHA-256 of a stream token: what is stored and compared, so the comparison has a fixed length
/// whatever the lengths of the configured and presented tokens.
pub(crate) fn token_digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

pub(crate) fn signing_key(auth_token: &[u8]) -> SigningKey {
    // HMAC accepts keys of any length, so this cannot fail; the fallback keeps the type total.
    SigningKey::new_from_slice(auth_token).unwrap_or_else(|_| unreachable_key())
}

pub(crate) fn call_token_key(key: &[u8]) -> CallTokenKey {
    CallTokenKey::new_from_slice(key).unwrap_or_else(|_| unreachable_key())
}

#[cold]
pub(crate) fn unreachable_key<K>() -> K {
    // `Hmac::new_from_slice` only fails for fixed-length-key MACs; HMAC takes any length.
    panic!("HMAC rejected a key; HMAC accepts keys of any length")
}

#[cfg(test)]
mod tests {
    use super::*;

    const AC1: &str = "AC0123456789abcdef0123456789abcdef";
    const AC2: &str = "ACffffffffffffffffffffffffffffffff";
    const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"; // 32 bytes, no padding

    fn doc(v: serde_json::Value) -> Result<Credentials, CredentialsError> {
        Credentials::from_json(&v.to_string())
    }

    fn field_of(v: serde_json::Value) -> String {
        match doc(v) {
            Ok(_) => panic!("document should be refused"),
            Err(e) => e.field,
        }
    }

    #[test]
    fn accepts_a_full_document() {
        let c = doc(serde_json::json!({
            "twilioAccounts": [{"accountSid": AC1, "authTokens": ["primary-token", "previous-token"]},
                               {"accountSid": AC2, "authTokens": ["other"]}],
            "streamTokens": [{"token": "s".repeat(32), "accountSid": AC1}],
            "callTokenKeys": [KEY, format!("{KEY}=")]
        }))
        .expect("valid");
        assert_eq!(c.accounts.len(), 2);
        assert_eq!(c.accounts[0].signing_keys.len(), 2);
        assert_eq!(c.stream_tokens.len(), 1);
        assert_eq!(c.call_token_keys.len(), 2);
        let debug = format!("{c:?}");
        assert!(!debug.contains("primary-token") && !debug.contains("ssss"));
    }

    #[test]
    fn names_the_broken_field() {
        use serde_json::json;
        assert_eq!(field_of(json!([])), "$");
        assert_eq!(field_of(json!({})), "twilioAccounts");
        assert_eq!(field_of(json!({"twilioAccounts": {}})), "twilioAccounts");
        assert_eq!(
            field_of(json!({"twilioAccounts": [{"accountSid": "ACXX", "authTokens": ["t"]}]})),
            "twilioAccounts[0].accountSid"
        );
        assert_eq!(
            field_of(json!({"twilioAccounts": [{"accountSid": AC1}]})),
            "twilioAccounts[0].authTokens"
        );
        assert_eq!(
            field_of(json!({"twilioAccounts": [{"accountSid": AC1, "authTokens": []}]})),
            "twilioAccounts[0].authTokens"
        );
        assert_eq!(
            field_of(json!({"twilioAccounts": [{"accountSid": AC1, "authTokens": ["a","b","c"]}]})),
            "twilioAccounts[0].authTokens"
        );
        assert_eq!(
            field_of(json!({"twilioAccounts": [{"accountSid": AC1, "authTokens": ["ok", 5]}]})),
            "twilioAccounts[0].authTokens[1]"
        );
        assert_eq!(
            field_of(json!({"twilioAccounts": [{"accountSid": AC1, "authTokens": [""]}]})),
            "twilioAccounts[0].authTokens[0]"
        );
        assert_eq!(
            field_of(
                json!({"twilioAccounts": [{"accountSid": AC1, "authTokens": ["t"]}, {"accountSid": AC1, "authTokens": ["u"]}]})
            ),
            "twilioAccounts[1].accountSid"
        );
        assert_eq!(
            field_of(json!({"twilioAccounts": [{"accountSid": AC1, "authToken": ["t"]}]})),
            "twilioAccounts[0]"
        );
        assert_eq!(
            field_of(json!({"streamTokens": [{"token": "short", "accountSid": AC1}]})),
            "streamTokens[0].token"
        );
        assert_eq!(
            field_of(
                json!({"streamTokens": [{"token": format!("{} x", "s".repeat(32)), "accountSid": AC1}]})
            ),
            "streamTokens[0].token"
        );
        assert_eq!(
            field_of(
                json!({"streamTokens": [{"token": "s".repeat(32), "accountSid": AC1}, {"token": "s".repeat(32), "accountSid": AC2}]})
            ),
            "streamTokens[1].token"
        );
        assert_eq!(
            field_of(json!({"streamTokens": [{"token": "s".repeat(32)}]})),
            "streamTokens[0].accountSid"
        );
        assert_eq!(
            field_of(
                json!({"streamTokens": [{"token": "s".repeat(32), "accountSid": AC1}], "callTokenKeys": ["c2hvcnQ"]})
            ),
            "callTokenKeys[0]"
        );
        assert_eq!(
            field_of(
                json!({"streamTokens": [{"token": "s".repeat(32), "accountSid": AC1}], "callTokenKeys": ["not base64!"]})
            ),
            "callTokenKeys[0]"
        );
        assert_eq!(
            field_of(
                json!({"streamTokens": [{"token": "s".repeat(32), "accountSid": AC1}], "callTokenKeys": [KEY, KEY, KEY]})
            ),
            "callTokenKeys"
        );
        assert_eq!(
            field_of(
                json!({"streamTokens": [{"token": "s".repeat(32), "accountSid": AC1}], "extra": 1})
            ),
            "$"
        );
    }

    #[test]
    fn errors_never_quote_values() {
        let secret = "AUTH-TOKEN-VALUE-0123456789abcdef";
        let cases = [
            format!(
                r#"{{"twilioAccounts":[{{"accountSid":"{secret}","authTokens":["{secret}"]}}]}}"#
            ),
            format!(r#"{{"twilioAccounts":[{{"accountSid":"{AC1}","authTokens":"{secret}"}}]}}"#),
            format!(r#"{{"{secret}":1}}"#),
            format!(
                r#"{{"streamTokens":[{{"token":"{secret}","accountSid":"{AC1}"}}],"callTokenKeys":["{secret}"]}}"#
            ),
            format!(r#"{{"twilioAccounts":[{{"accountSid":"{AC1}","authTokens":["{secret}"]}}"#),
        ];
        for case in cases {
            let e = match Credentials::from_json(&case) {
                Ok(_) => panic!("should be refused"),
                Err(e) => e,
            };
            let shown = format!("{e} {e:?}");
            assert!(!shown.contains(secret), "leaked in: {shown}");
        }
    }

    /// Refused with `duplicate key` at `field`.
    fn duplicate_at(text: &str) -> String {
        match Credentials::from_json(text) {
            Ok(_) => panic!("a document with a duplicate key must be refused"),
            Err(e) => {
                assert_eq!(e.problem, "duplicate key");
                e.field
            }
        }
    }

    #[test]
    fn refuses_duplicate_keys_anywhere() {
        let account = format!(r#"{{"accountSid":"{AC1}","authTokens":["t"]}}"#);
        // `twilioAccounts` twice at the top level: serde_json alone would keep the second.
        assert_eq!(
            duplicate_at(&format!(
                r#"{{"twilioAccounts":[{account}],"twilioAccounts":[]}}"#
            )),
            "twilioAccounts"
        );
        // `authTokens` twice in one account (the second would silently replace the first).
        assert_eq!(
            duplicate_at(&format!(
                r#"{{"twilioAccounts":[{account},{{"accountSid":"{AC2}","authTokens":["a"],"authTokens":["b"]}}]}}"#
            )),
            "twilioAccounts[1].authTokens"
        );
        assert_eq!(
            duplicate_at(&format!(
                r#"{{"twilioAccounts":[{{"accountSid":"{AC1}","accountSid":"{AC2}","authTokens":["t"]}}]}}"#
            )),
            "twilioAccounts[0].accountSid"
        );
        let stream = "s".repeat(32);
        assert_eq!(
            duplicate_at(&format!(
                r#"{{"streamTokens":[{{"token":"{stream}","accountSid":"{AC1}","token":"{stream}"}}]}}"#
            )),
            "streamTokens[0].token"
        );
        assert_eq!(
            duplicate_at(&format!(
                r#"{{"streamTokens":[{{"token":"{stream}","accountSid":"{AC1}"}}],"callTokenKeys":[],"callTokenKeys":["{KEY}"]}}"#
            )),
            "callTokenKeys"
        );
        // The same key spelled with an escape is the same key.
        assert_eq!(
            duplicate_at(&format!(
                r#"{{"twilioAccounts":[{account}],"twilio\u0041ccounts":[]}}"#
            )),
            "twilioAccounts"
        );
        // Duplicates inside values the schema does not know are refused too, naming the
        // enclosing known field (a duplicate beats an unknown field: the document is ambiguous).
        assert_eq!(
            duplicate_at(&format!(
                r#"{{"twilioAccounts":[{{"accountSid":"{AC1}","authTokens":[{{"x":1,"x":2}}]}}]}}"#
            )),
            "twilioAccounts[0].authTokens[0]"
        );
    }

    #[test]
    fn duplicate_errors_never_name_unknown_keys_or_values() {
        let secret = "AUTH-TOKEN-VALUE-0123456789abcdef";
        let cases = [
            format!(r#"{{"{secret}":1,"{secret}":2}}"#),
            format!(r#"{{"twilioAccounts":[{{"{secret}":1,"{secret}":1}}]}}"#),
            format!(
                r#"{{"twilioAccounts":[{{"accountSid":"{AC1}","authTokens":["{secret}"],"authTokens":["{secret}"]}}]}}"#
            ),
        ];
        let fields = ["$", "twilioAccounts[0]", "twilioAccounts[0].authTokens"];
        for (case, field) in cases.iter().zip(fields) {
            let e = match Credentials::from_json(case) {
                Ok(_) => panic!("should be refused"),
                Err(e) => e,
            };
            assert_eq!(e.field, field);
            let shown = format!("{e} {e:?}");
            assert!(!shown.contains(secret), "a value reached the error text");
        }
    }

    fn with_keys(keys: serde_json::Value) -> serde_json::Value {
        serde_json::json!({"twilioAccounts": [{"accountSid": AC1, "authTokens": ["t"], "sharedKeys": keys}]})
    }

    #[test]
    fn accepts_shared_keys() {
        use serde_json::json;
        let c = doc(json!({
            "twilioAccounts": [
                {"accountSid": AC1, "authTokens": ["t"],
                 "sharedKeys": [{"id": "webhooks_sharedkey_a", "secret": "shared-secret-value-a"},
                                {"secret": "shared-secret-value-b", "id": "webhooks_sharedkey_b"}]},
                {"accountSid": AC2, "authTokens": ["u"], "sharedKeys": []},
            ]
        }))
        .expect("valid");
        assert_eq!(c.accounts[0].shared_keys.len(), 2);
        assert_eq!(c.find_shared_key("webhooks_sharedkey_b"), Some((0, 1)));
        assert_eq!(c.find_shared_key("webhooks_sharedkey_c"), None);
        assert_eq!(c.find_shared_key(""), None);
        let debug = format!("{c:?}");
        assert!(
            !debug.contains("shared-secret-value"),
            "Debug shows a secret"
        );
        // Optional: an account without `sharedKeys` has none.
        assert!(
            doc(json!({"twilioAccounts": [{"accountSid": AC1, "authTokens": ["t"]}]}))
                .expect("valid")
                .accounts[0]
                .shared_keys
                .is_empty()
        );
    }

    #[test]
    fn names_the_broken_shared_key_field() {
        use serde_json::json;
        let k = |id: &str, secret: &str| json!({"id": id, "secret": secret});
        let p = "twilioAccounts[0].sharedKeys";
        let cases = [
            (with_keys(json!({})), p.to_owned()),
            (with_keys(json!(["x"])), format!("{p}[0]")),
            (
                with_keys(json!([{"id": "a", "secret": "s", "extra": 1}])),
                format!("{p}[0]"),
            ),
            (with_keys(json!([{"secret": "s"}])), format!("{p}[0].id")),
            (
                with_keys(json!([{"id": 5, "secret": "s"}])),
                format!("{p}[0].id"),
            ),
            (with_keys(json!([k("", "s")])), format!("{p}[0].id")),
            (with_keys(json!([k("a b", "s")])), format!("{p}[0].id")),
            (with_keys(json!([k("a,b", "s")])), format!("{p}[0].id")),
            (with_keys(json!([k("a=b", "s")])), format!("{p}[0].id")),
            (with_keys(json!([k("\"a\"", "s")])), format!("{p}[0].id")),
            (
                with_keys(json!([k("caf\u{e9}", "s")])),
                format!("{p}[0].id"),
            ),
            (
                with_keys(json!([k(&"a".repeat(129), "s")])),
                format!("{p}[0].id"),
            ),
            (with_keys(json!([{"id": "a"}])), format!("{p}[0].secret")),
            (
                with_keys(json!([{"id": "a", "secret": ["s"]}])),
                format!("{p}[0].secret"),
            ),
            (with_keys(json!([k("a", "")])), format!("{p}[0].secret")),
            (with_keys(json!([k("a", " s")])), format!("{p}[0].secret")),
            (with_keys(json!([k("a", "s\n")])), format!("{p}[0].secret")),
            (
                with_keys(json!([k("a", &"s".repeat(1025))])),
                format!("{p}[0].secret"),
            ),
            (
                with_keys(json!([k("a", "s"), k("a", "t")])),
                format!("{p}[1].id"),
            ),
            (
                json!({"twilioAccounts": [
                    {"accountSid": AC1, "authTokens": ["t"], "sharedKeys": [k("a", "s")]},
                    {"accountSid": AC2, "authTokens": ["u"], "sharedKeys": [k("b", "s"), k("a", "s")]}]}),
                "twilioAccounts[1].sharedKeys[1].id".to_owned(),
            ),
        ];
        for (document, field) in cases {
            assert_eq!(field_of(document), field);
        }
        // Boundaries that are fine.
        assert!(doc(with_keys(json!([k(&"a".repeat(128), &"s".repeat(1024))]))).is_ok());
        assert!(doc(with_keys(json!([k(
            "AZaz09_-.:/+!~",
            "s p a c e s inside"
        )])))
        .is_ok());
    }

    #[test]
    fn refuses_duplicate_keys_in_shared_keys() {
        let text = format!(
            r#"{{"twilioAccounts":[{{"accountSid":"{AC1}","authTokens":["t"],"sharedKeys":[{{"id":"a","secret":"s","secret":"u"}}]}}]}}"#
        );
        assert_eq!(
            duplicate_at(&text),
            "twilioAccounts[0].sharedKeys[0].secret"
        );
        let text = format!(
            r#"{{"twilioAccounts":[{{"accountSid":"{AC1}","authTokens":["t"],"sharedKeys":[],"sharedKeys":[]}}]}}"#
        );
        assert_eq!(duplicate_at(&text), "twilioAccounts[0].sharedKeys");
    }

    #[test]
    fn shared_key_errors_never_quote_secrets() {
        let secret = "SHARED-KEY-SECRET-0123456789abcdef";
        let cases = [
            format!(
                r#"{{"twilioAccounts":[{{"accountSid":"{AC1}","authTokens":["t"],"sharedKeys":[{{"id":"{secret} x","secret":"{secret}"}}]}}]}}"#
            ),
            format!(
                r#"{{"twilioAccounts":[{{"accountSid":"{AC1}","authTokens":["t"],"sharedKeys":[{{"id":"a","secret":" {secret}"}}]}}]}}"#
            ),
            format!(
                r#"{{"twilioAccounts":[{{"accountSid":"{AC1}","authTokens":["t"],"sharedKeys":[{{"id":"a","{secret}":"{secret}"}}]}}]}}"#
            ),
            format!(
                r#"{{"twilioAccounts":[{{"accountSid":"{AC1}","authTokens":["t"],"sharedKeys":[{{"id":"a","secret":"{secret}"}},{{"id":"a","secret":"{secret}"}}]}}]}}"#
            ),
        ];
        for case in cases {
            let e = match Credentials::from_json(&case) {
                Ok(_) => panic!("should be refused"),
                Err(e) => e,
            };
            let shown = format!("{e} {e:?}");
            assert!(!shown.contains(secret), "a secret reached the error text");
        }
    }

    #[test]
    fn refuses_oversized_documents() {
        let big = format!(r#"{{"pad":"{}"}}"#, "x".repeat(MAX_DOCUMENT_BYTES));
        assert_eq!(
            Credentials::from_json(&big).err().map(|e| e.problem),
            Some("larger than 64 KiB")
        );
    }
}

#[cfg(test)]
#[path = "credentials_tests.rs"]
mod boundary_tests;
