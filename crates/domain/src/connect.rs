//! The `$connect` decision: which credentials a handshake must present (the auth mode), whether
//! they verify, and which account the connection then belongs to.
//!
//! Success is a [`VerifiedConnect`], a proof type only this module can construct: the authorizer
//! can only build an Allow policy from one, so a skipped check does not compile.

use std::fmt;
use std::str::FromStr;

use super::credentials::Credentials;
use super::reason::DenyReason;
use super::sid::AccountSid;
use super::signature::{
    handshake_urls, verify_shared_key_signature, verify_signature, SettingsFailure,
    SignatureFailure, SignatureSettings,
};
use super::stream_token::{verify_stream_token, StreamTokenFailure};

/// Which credential a handshake must present (`STREAM_GATE_AUTH_MODE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AuthMode {
    /// `X-Twilio-Signature` only (what real Twilio calls carry).
    Signature,
    /// `?token=` only (senders that keep query strings).
    Token,
    /// At least one; every credential presented must verify; if both do, they name one account.
    #[default]
    Either,
    /// Both, naming the same account.
    Both,
}

impl FromStr for AuthMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "signature" => Ok(Self::Signature),
            "token" => Ok(Self::Token),
            "either" => Ok(Self::Either),
            "both" => Ok(Self::Both),
            _ => Err("expected signature, token, either or both".into()),
        }
    }
}

/// A header or query value as the event carries it: absent, once, or more than once.
///
/// `Debug` never shows the value (it may be a signature or a stream token), so neither does the
/// `Debug` of a [`ConnectRequest`].
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Presented<'a> {
    /// Not sent.
    Absent,
    /// Sent exactly once.
    One(&'a str),
    /// Sent more than once (ambiguous: refused).
    Repeated,
}

impl fmt::Debug for Presented<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Absent => "Absent",
            Self::One(_) => "One(***)",
            Self::Repeated => "Repeated",
        })
    }
}

/// What the `$connect` decision looks at, already pulled out of the AWS event.
#[derive(Debug, Clone, Copy)]
pub struct ConnectRequest<'a> {
    /// `X-Twilio-Signature`.
    pub signature: Presented<'a>,
    /// The `token` query parameter.
    pub stream_token: Presented<'a>,
    /// `X-Twilio-Webhooks-Signature-Settings` (Twilio signed with a shared key). Looked at only
    /// together with a signature: without `X-Twilio-Signature` it is ignored, as the signature is.
    pub signature_settings: Presented<'a>,
    /// The wss URL Twilio signed (from configuration, or `wss://{domainName}/{stage}`).
    pub signed_url: &'a str,
}

/// How the handshake proved itself: the value of the authorizer context key `authMethod`, which
/// DESIGN.md §3 restricts to exactly `twilio-signature` or `stream-token`.
///
/// When both credentials verified (auth mode `both`, or `either` with both presented) the method is
/// the *primary* one, [`AuthMethod::TwilioSignature`] (Twilio's own proof outranks a shared token),
/// and [`VerifiedConnect::methods`] says that both did, for a separate `authMethods` key. There is
/// deliberately no "both" variant: a consumer matching on `authMethod` never meets a third value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthMethod {
    /// A valid `X-Twilio-Signature` (under an auth token or a shared key).
    TwilioSignature,
    /// A valid stream token (and no signature verified).
    StreamToken,
}

impl AuthMethod {
    /// Every method, for documentation and exhaustive tests.
    pub const ALL: [AuthMethod; 2] = [Self::TwilioSignature, Self::StreamToken];

    /// The value of the `authMethod` context key: `twilio-signature` or `stream-token`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::TwilioSignature => "twilio-signature",
            Self::StreamToken => "stream-token",
        }
    }
}

impl fmt::Display for AuthMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which configured credential matched; names a position in the document, never a value:
/// `twilioAccounts[0].authTokens[1]`, `twilioAccounts[0].sharedKeys[1]`, `streamTokens[2]`, or a
/// signature credential and a stream token joined by `+`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CredentialRef {
    signature: Option<SignatureCredential>,
    stream_token: Option<usize>,
}

/// The credential a verified signature was made with (indices into the document).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SignatureCredential {
    AuthToken { account: usize, token: usize },
    SharedKey { account: usize, key: usize },
}

impl fmt::Display for CredentialRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(signature) = self.signature {
            match signature {
                SignatureCredential::AuthToken { account, token } => {
                    write!(f, "twilioAccounts[{account}].authTokens[{token}]")?
                }
                SignatureCredential::SharedKey { account, key } => {
                    write!(f, "twilioAccounts[{account}].sharedKeys[{key}]")?
                }
            }
            if self.stream_token.is_some() {
                f.write_str("+")?;
            }
        }
        if let Some(s) = self.stream_token {
            write!(f, "streamTokens[{s}]")?;
        }
        Ok(())
    }
}

/// Proof that a handshake verified. Only [`decide_connect`] constructs it.
///
/// Authorizer context (DESIGN.md §3): `authMethod` = [`method`](Self::method)`().as_str()`, always
/// one of the two documented strings; `authMethods` = [`methods`](Self::methods), present only when
/// both a signature and a stream token verified; `credential` = [`credential`](Self::credential).
/// The method is derived from which credentials matched, so the two can never disagree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifiedConnect {
    account_sid: AccountSid,
    credential: CredentialRef,
}

impl VerifiedConnect {
    /// The value of the `authMethods` context key when both credentials verified.
    pub const BOTH_METHODS: &'static str = "twilio-signature,stream-token";

    /// The account this connection belongs to: the expected `accountSid` of its `start`.
    pub fn account_sid(&self) -> AccountSid {
        self.account_sid
    }

    /// The primary way the handshake proved itself (`authMethod`): [`AuthMethod::TwilioSignature`]
    /// whenever a signature verified, else [`AuthMethod::StreamToken`].
    pub fn method(&self) -> AuthMethod {
        if self.credential.signature.is_some() {
            AuthMethod::TwilioSignature
        } else {
            AuthMethod::StreamToken
        }
    }

    /// Whether both a signature and a stream token verified (and named this one account).
    pub fn both_verified(&self) -> bool {
        self.credential.signature.is_some() && self.credential.stream_token.is_some()
    }

    /// The value of the `authMethods` context key: [`Self::BOTH_METHODS`] when both credentials
    /// verified, `None` otherwise (then the key is left out).
    pub fn methods(&self) -> Option<&'static str> {
        self.both_verified().then_some(Self::BOTH_METHODS)
    }

    /// Which configured credential matched.
    pub fn credential(&self) -> CredentialRef {
        self.credential
    }
}

/// A verified signature: the account and the credential that made it.
type SignatureHit = (AccountSid, SignatureCredential);

fn signature_denial(f: SignatureFailure) -> DenyReason {
    match f {
        SignatureFailure::Malformed => DenyReason::SignatureMalformed,
        SignatureFailure::Mismatch => DenyReason::SignatureMismatch,
        SignatureFailure::SharedKeyUnknown => DenyReason::SharedKeyUnknown,
    }
}

fn settings_denial(f: SettingsFailure) -> DenyReason {
    match f {
        SettingsFailure::Malformed => DenyReason::SharedKeySettingsMalformed,
        SettingsFailure::AlgorithmMissing => DenyReason::SharedKeyAlgorithmMissing,
        SettingsFailure::AlgorithmUnsupported => DenyReason::SharedKeyAlgorithmUnsupported,
    }
}

/// Checks `X-Twilio-Signature` over the handshake URLs: under the shared key and algorithm the
/// settings header names when it is present, else under every account's auth tokens.
fn check_signature(
    creds: &Credentials,
    signature: Presented<'_>,
    settings: Presented<'_>,
    url: &str,
) -> Option<Result<SignatureHit, DenyReason>> {
    let header = match signature {
        Presented::Absent => return None,
        Presented::Repeated => return Some(Err(DenyReason::SignatureMalformed)),
        Presented::One(header) => header,
    };
    let urls = handshake_urls(url);
    Some(match settings {
        Presented::Absent => verify_signature(creds, None, header, &urls, &[])
            .map(|m| {
                let credential = SignatureCredential::AuthToken {
                    account: m.account_index,
                    token: m.token_index,
                };
                (m.account_sid, credential)
            })
            .map_err(signature_denial),
        Presented::Repeated => Err(DenyReason::SharedKeySettingsMalformed),
        Presented::One(value) => SignatureSettings::parse(value)
            .map_err(settings_denial)
            .and_then(|settings| {
                verify_shared_key_signature(creds, &settings, header, &urls, &[])
                    .map_err(signature_denial)
            })
            .map(|m| {
                let credential = SignatureCredential::SharedKey {
                    account: m.account_index,
                    key: m.key_index,
                };
                (m.account_sid, credential)
            }),
    })
}

fn check_token(
    creds: &Credentials,
    p: Presented<'_>,
) -> Option<Result<(AccountSid, usize), DenyReason>> {
    match p {
        Presented::Absent => None,
        Presented::Repeated => Some(Err(DenyReason::StreamTokenMalformed)),
        Presented::One(token) => Some(
            verify_stream_token(creds, token)
                .map(|m| (m.account_sid, m.index))
                .map_err(|f| match f {
                    StreamTokenFailure::Malformed => DenyReason::StreamTokenMalformed,
                    StreamTokenFailure::Unknown => DenyReason::StreamTokenUnknown,
                }),
        ),
    }
}

/// Decides a `$connect` handshake. `credentials` is `None` when no valid document is loaded, and then
/// everything is denied.
pub fn decide_connect(
    req: &ConnectRequest<'_>,
    credentials: Option<&Credentials>,
    mode: AuthMode,
) -> Result<VerifiedConnect, DenyReason> {
    let creds = credentials.ok_or(DenyReason::CredentialsUnavailable)?;
    if req.signed_url.is_empty() {
        return Err(DenyReason::RequestIncomplete);
    }
    // Only the credentials the mode looks at are verified; the others are ignored.
    let sig = match mode {
        AuthMode::Token => None,
        _ => check_signature(creds, req.signature, req.signature_settings, req.signed_url),
    };
    let tok = match mode {
        AuthMode::Signature => None,
        _ => check_token(creds, req.stream_token),
    };
    let sig = sig.transpose()?;
    let tok = tok.transpose()?;

    let verified = |account_sid, signature, stream_token| VerifiedConnect {
        account_sid,
        credential: CredentialRef {
            signature,
            stream_token,
        },
    };
    match (mode, sig, tok) {
        (AuthMode::Signature | AuthMode::Either, Some((acc, at)), None) => {
            Ok(verified(acc, Some(at), None))
        }
        (AuthMode::Token | AuthMode::Either, None, Some((acc, st))) => {
            Ok(verified(acc, None, Some(st)))
        }
        (AuthMode::Either | AuthMode::Both, Some((a1, at)), Some((a2, st))) => {
            if a1 == a2 {
                Ok(verified(a1, Some(at), Some(st)))
            } else {
                Err(DenyReason::AccountMismatch)
            }
        }
        (AuthMode::Signature, None, _) | (AuthMode::Either | AuthMode::Both, None, None) => {
            Err(DenyReason::SignatureMissing)
        }
        (AuthMode::Both, None, Some(_)) => Err(DenyReason::SignatureMissing),
        (AuthMode::Token, _, None) | (AuthMode::Both, Some(_), None) => {
            Err(DenyReason::StreamTokenMissing)
        }
        // Unreachable by construction (signature mode never yields a token result and vice versa);
        // listed so the match stays total and fails closed.
        (AuthMode::Signature, Some(_), Some(_)) | (AuthMode::Token, Some(_), _) => {
            Err(DenyReason::RequestIncomplete)
        }
    }
}

#[cfg(test)]
mod tests {
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

    const GOOD_SIG: &str = "dYX5bz/sDh2O2Tg6KtHAZLFqkbU="; // twilio.md vector, token 12345
    use Presented::{Absent, One, Repeated};

    #[test]
    fn signature_mode() {
        let c = creds();
        let v = decide_connect(&req(One(GOOD_SIG), Absent), Some(&c), AuthMode::Signature)
            .expect("admit");
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
        let v =
            decide_connect(&req(One(&sig), Absent), Some(&c), AuthMode::Signature).expect("admit");
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
        let v = decide_connect(&req(One(GOOD_SIG), One(TOK1)), Some(&c), AuthMode::Either)
            .expect("admit");
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
        let v = decide_connect(&req(One(GOOD_SIG), One(TOK1)), Some(&c), AuthMode::Both)
            .expect("admit");
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
            let sig_mode =
                |sig: &str, h: &str| decide(One(sig), One(h), Absent, AuthMode::Signature);
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
}
