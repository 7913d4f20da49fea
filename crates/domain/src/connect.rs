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
use super::signature::{handshake_urls, verify_signature, SignatureFailure};
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presented<'a> {
    /// Not sent.
    Absent,
    /// Sent exactly once.
    One(&'a str),
    /// Sent more than once (ambiguous: refused).
    Repeated,
}

/// What the `$connect` decision looks at, already pulled out of the AWS event.
#[derive(Debug, Clone, Copy)]
pub struct ConnectRequest<'a> {
    /// `X-Twilio-Signature`.
    pub signature: Presented<'a>,
    /// The `token` query parameter.
    pub stream_token: Presented<'a>,
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

/// Which configured credential matched; names a position in the document, never a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CredentialRef {
    signature: Option<(usize, usize)>,
    stream_token: Option<usize>,
}

impl fmt::Display for CredentialRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some((a, t)) = self.signature {
            write!(f, "twilioAccounts[{a}].authTokens[{t}]")?;
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

/// A verified signature: the account and its (account index, token index).
type SignatureHit = (AccountSid, (usize, usize));

fn check_signature(
    creds: &Credentials,
    p: Presented<'_>,
    url: &str,
) -> Option<Result<SignatureHit, DenyReason>> {
    match p {
        Presented::Absent => None,
        Presented::Repeated => Some(Err(DenyReason::SignatureMalformed)),
        Presented::One(header) => Some(
            verify_signature(creds, None, header, &handshake_urls(url), &[])
                .map(|m| (m.account_sid, (m.account_index, m.token_index)))
                .map_err(|f| match f {
                    SignatureFailure::Malformed => DenyReason::SignatureMalformed,
                    SignatureFailure::Mismatch => DenyReason::SignatureMismatch,
                }),
        ),
    }
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
        _ => check_signature(creds, req.signature, req.signed_url),
    };
    let tok = match mode {
        AuthMode::Signature => None,
        _ => check_token(creds, req.stream_token),
    };
    let sig = sig.transpose()?;
    let tok = tok.transpose()?;

    let verified = |account_sid, auth_token, stream_token| VerifiedConnect {
        account_sid,
        credential: CredentialRef {
            signature: auth_token,
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
    fn auth_mode_parses() {
        assert_eq!("both".parse::<AuthMode>(), Ok(AuthMode::Both));
        assert!("Both".parse::<AuthMode>().is_err());
    }
}
