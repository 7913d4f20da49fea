//! The `$connect` decision for a ConversationRelay handshake (docs/conversation-relay.md).
//!
//! Twilio keeps the query string of `<ConversationRelay url>`, so the voice webhook writes the call
//! into it: `…?callSid=CA…&callToken=v1.…`. A handshake is admitted only when Twilio's signature
//! verifies (under an auth token, or the shared key the settings header names) over one of the
//! strings Twilio may have signed, *and* the call token verifies for the signing account and that
//! `callSid`, unexpired. No auth mode weakens this: a stream token cannot stand in for either.
//!
//! Success is a [`VerifiedRelayConnect`], a proof type only [`decide_relay_connect`] constructs.

use super::call_token::{is_well_formed, verify_call_token, CallTokenFailure};
use super::connect::{check_signature, CredentialRef, Presented};
use super::credentials::Credentials;
use super::reason::DenyReason;
use super::sid::{AccountSid, CallSid};
use super::signature::{handshake_urls, signed_payload};

/// The query parameter naming the call.
pub const CALL_SID_PARAM: &str = "callSid";
/// The query parameter carrying the call token.
pub const CALL_TOKEN_PARAM: &str = "callToken";

/// Which protocol a handshake's query says it is: no `callSid`/`callToken` is Media Streams (Twilio
/// strips `<Stream url>` queries), both once is ConversationRelay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandshakeKind<'a> {
    /// No ConversationRelay parameter.
    MediaStreams,
    /// `callSid` and `callToken`, each once (values not yet checked).
    ConversationRelay {
        /// The `callSid` value as sent.
        call_sid: &'a str,
        /// The `callToken` value as sent.
        call_token: &'a str,
    },
}

/// Tells the protocol from the two query parameters. One without the other, or either repeated, is
/// neither protocol: denied with its own code.
pub fn handshake_kind<'a>(
    call_sid: Presented<'a>,
    call_token: Presented<'a>,
) -> Result<HandshakeKind<'a>, DenyReason> {
    match (call_sid, call_token) {
        (Presented::Absent, Presented::Absent) => Ok(HandshakeKind::MediaStreams),
        (Presented::One(call_sid), Presented::One(call_token)) => {
            Ok(HandshakeKind::ConversationRelay {
                call_sid,
                call_token,
            })
        }
        (Presented::Repeated, _) | (_, Presented::Repeated) => Err(DenyReason::RelayQueryRepeated),
        (Presented::Absent, _) | (_, Presented::Absent) => Err(DenyReason::RelayQueryIncomplete),
    }
}

/// What the ConversationRelay `$connect` decision looks at, already pulled out of the AWS event.
#[derive(Debug, Clone, Copy)]
pub struct RelayConnectRequest<'a> {
    /// `X-Twilio-Signature`.
    pub signature: Presented<'a>,
    /// `X-Twilio-Webhooks-Signature-Settings`.
    pub signature_settings: Presented<'a>,
    /// The `callSid` query value.
    pub call_sid: &'a str,
    /// The `callToken` query value. `Debug` of the request shows it: it is no secret once it has
    /// travelled in a URL, but it is still never logged (the entrypoint logs the decision only).
    pub call_token: &'a str,
    /// Whether the query held any parameter besides `callSid` and `callToken`.
    pub other_params: bool,
    /// The wss URL without the query, as configured (`STREAM_GATE_PUBLIC_URL`) or built from the
    /// event's domain and stage.
    pub signed_url: &'a str,
}

/// Proof that a ConversationRelay handshake verified: Twilio signed it for this account, and the
/// call token was minted for this account and call. Only [`decide_relay_connect`] constructs it.
///
/// Authorizer context (docs/conversation-relay.md): `protocol=conversation-relay`, `accountSid`,
/// `callSid`, `authMethod=twilio-signature`, `credential`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifiedRelayConnect {
    account_sid: AccountSid,
    call_sid: CallSid,
    credential: CredentialRef,
    token_expires_at: u64,
}

impl VerifiedRelayConnect {
    /// The account that signed the handshake and for which the call token was minted.
    pub fn account_sid(&self) -> AccountSid {
        self.account_sid
    }

    /// The call the token was minted for: the expected `callSid` of the `setup`.
    pub fn call_sid(&self) -> CallSid {
        self.call_sid
    }

    /// Which configured credential made the signature.
    pub fn credential(&self) -> CredentialRef {
        self.credential
    }

    /// When the call token expires (Unix seconds).
    pub fn token_expires_at(&self) -> u64 {
        self.token_expires_at
    }
}

/// Every string Twilio may have signed for this handshake, each tried in constant time: the wss
/// URL with the query exactly as the voice webhook writes it, and the URL without the query with
/// the two parameters appended as sorted form parameters (how Twilio's ConversationRelay server
/// SDKs validate). Each over the URL with and without a trailing `/` ([`handshake_urls`]).
///
/// The query can be rebuilt exactly because both values were checked first: a SID is `CA` and hex,
/// a well-formed call token is `v1.`, digits and base64url — nothing a URL would percent-encode.
pub fn relay_signed_payloads(url: &str, call_sid: &CallSid, call_token: &str) -> Vec<String> {
    let bases = handshake_urls(url);
    let with_query = bases
        .iter()
        .map(|base| format!("{base}?{CALL_SID_PARAM}={call_sid}&{CALL_TOKEN_PARAM}={call_token}"));
    let params = [
        (CALL_SID_PARAM, call_sid.as_str()),
        (CALL_TOKEN_PARAM, call_token),
    ];
    let as_params = bases.iter().map(|base| signed_payload(base, &params));
    with_query.chain(as_params).collect()
}

/// Decides a ConversationRelay handshake at time `now` (Unix seconds). `credentials` is `None`
/// when no valid document is loaded, and then everything is denied.
pub fn decide_relay_connect(
    req: &RelayConnectRequest<'_>,
    credentials: Option<&Credentials>,
    now: u64,
) -> Result<VerifiedRelayConnect, DenyReason> {
    let creds = credentials.ok_or(DenyReason::CredentialsUnavailable)?;
    if req.signed_url.is_empty() {
        return Err(DenyReason::RequestIncomplete);
    }
    if req.other_params {
        return Err(DenyReason::RelayQueryUnexpected);
    }
    let call_sid = CallSid::parse(req.call_sid).map_err(|_| DenyReason::RelayCallSidInvalid)?;
    // Checked before the signature: rebuilding the query relies on the token's alphabet.
    if !is_well_formed(req.call_token) {
        return Err(DenyReason::CallTokenMalformed);
    }
    let payloads = relay_signed_payloads(req.signed_url, &call_sid, req.call_token);
    let (account_sid, signature) =
        check_signature(creds, req.signature, req.signature_settings, &payloads)
            .unwrap_or(Err(DenyReason::SignatureMissing))?;
    let token = verify_call_token(creds, req.call_token, &account_sid, &call_sid, now).map_err(
        |f| match f {
            CallTokenFailure::Malformed => DenyReason::CallTokenMalformed,
            CallTokenFailure::Invalid => DenyReason::CallTokenInvalid,
            CallTokenFailure::Expired => DenyReason::CallTokenExpired,
            CallTokenFailure::NoKeys => DenyReason::CallTokenKeysMissing,
        },
    )?;
    Ok(VerifiedRelayConnect {
        account_sid,
        call_sid,
        credential: CredentialRef::signature(signature),
        token_expires_at: token.expires_at,
    })
}

#[cfg(test)]
#[path = "relay_connect_tests.rs"]
mod tests;
