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
    handshake_urls, verify_shared_key_payloads, verify_signature_payloads, SettingsFailure,
    SignatureFailure, SignatureSettings,
};
use super::stream_token::{verify_stream_token, StreamTokenFailure};

/// Which credential a handshake must present (`STREAM_GATE_AUTH_MODE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AuthMode {
    /// `X-Twilio-Signature` only (what real Twilio calls carry). The default: the template's, and
    /// no unset variable may leave a function weaker than the template would.
    #[default]
    Signature,
    /// `?token=` only (senders that keep query strings).
    Token,
    /// At least one; every credential presented must verify; if both do, they name one account.
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
/// docs/design.md §3 restricts to exactly `twilio-signature` or `stream-token`.
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
pub(crate) enum SignatureCredential {
    AuthToken { account: usize, token: usize },
    SharedKey { account: usize, key: usize },
}

impl CredentialRef {
    /// A signature alone (a ConversationRelay handshake: no stream token there).
    pub(crate) fn signature(signature: SignatureCredential) -> Self {
        Self {
            signature: Some(signature),
            stream_token: None,
        }
    }
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
/// Authorizer context (docs/design.md §3): `authMethod` = [`method`](Self::method)`().as_str()`, always
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
pub(crate) type SignatureHit = (AccountSid, SignatureCredential);

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

/// Checks `X-Twilio-Signature` over `payloads` (every string Twilio may have signed, each tried):
/// under the shared key and algorithm the settings header names when it is present, else under
/// every account's auth tokens.
pub(crate) fn check_signature(
    creds: &Credentials,
    signature: Presented<'_>,
    settings: Presented<'_>,
    payloads: &[String],
) -> Option<Result<SignatureHit, DenyReason>> {
    let header = match signature {
        Presented::Absent => return None,
        Presented::Repeated => return Some(Err(DenyReason::SignatureMalformed)),
        Presented::One(header) => header,
    };
    Some(match settings {
        Presented::Absent => verify_signature_payloads(creds, None, header, payloads)
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
                verify_shared_key_payloads(creds, &settings, header, payloads)
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
        // A Media Streams handshake has no query to sign (Twilio strips it): the URL is the payload.
        _ => check_signature(
            creds,
            req.signature,
            req.signature_settings,
            &handshake_urls(req.signed_url),
        ),
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
#[path = "connect_tests.rs"]
mod tests;
