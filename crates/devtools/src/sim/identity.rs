//! What the simulator knows about the accounts: read from a credentials document, the way a
//! Twilio account (and the voice webhook) knows its own auth token and call-token key.

use serde_json::Value;

use crate::domain::{
    mint_call_token, AccountSid, CallSid, Credentials, Secret, SessionSid, StreamSid,
};

/// Why a document cannot drive the simulator.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    /// The document is not a valid credentials document (field named, no value).
    #[error("credentials document: {0}")]
    Invalid(String),
    /// The account index is out of range.
    #[error("no account number {0} in the credentials document")]
    NoAccount(usize),
}

/// One account's secrets, plus the whole document (for minting call tokens).
pub struct Identity {
    /// The validated document.
    pub credentials: Credentials,
    /// The account the simulated calls belong to.
    pub account: AccountSid,
    /// Its primary auth token.
    pub auth_token: Secret,
    /// Its stream token, when the document has one.
    pub stream_token: Option<Secret>,
}

impl Identity {
    /// Account number `index` (0 = first) of `document`.
    pub fn from_document(document: &str, index: usize) -> Result<Self, IdentityError> {
        let credentials =
            Credentials::from_json(document).map_err(|e| IdentityError::Invalid(e.to_string()))?;
        let raw: Value = serde_json::from_str(document)
            .map_err(|_| IdentityError::Invalid("not JSON".into()))?;
        let acc = raw["twilioAccounts"]
            .get(index)
            .ok_or(IdentityError::NoAccount(index))?;
        let sid = acc["accountSid"].as_str().unwrap_or_default();
        let account = AccountSid::parse(sid)
            .map_err(|_| IdentityError::Invalid("twilioAccounts[].accountSid".into()))?;
        let auth_token = acc["authTokens"][0]
            .as_str()
            .map(|s| Secret::new(s.to_owned()))
            .ok_or(IdentityError::Invalid("twilioAccounts[].authTokens".into()))?;
        let stream_token = raw["streamTokens"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|t| t["accountSid"].as_str() == Some(sid))
            .and_then(|t| t["token"].as_str())
            .map(|s| Secret::new(s.to_owned()));
        Ok(Self {
            credentials,
            account,
            auth_token,
            stream_token,
        })
    }

    /// A call token for this account and `call`, valid `ttl` seconds from `now`.
    pub fn call_token(&self, call: &CallSid, now: u64, ttl: u64) -> Option<Secret> {
        mint_call_token(&self.credentials, &self.account, call, now, ttl)
    }
}

/// A fresh random CallSid.
pub fn fresh_call_sid() -> CallSid {
    // 32 hex digits after the prefix always parse.
    CallSid::parse(&format!("CA{}", crate::random::hex32())).unwrap_or_else(|_| unreachable!())
}

/// A fresh random StreamSid.
pub fn fresh_stream_sid() -> StreamSid {
    StreamSid::parse(&format!("MZ{}", crate::random::hex32())).unwrap_or_else(|_| unreachable!())
}

/// A fresh random ConversationRelay session SID.
pub fn fresh_session_sid() -> SessionSid {
    SessionSid::parse(&format!("VX{}", crate::random::hex32())).unwrap_or_else(|_| unreachable!())
}

/// A fresh random AccountSid: an account no credentials document configures.
pub fn fresh_account_sid() -> AccountSid {
    AccountSid::parse(&format!("AC{}", crate::random::hex32())).unwrap_or_else(|_| unreachable!())
}
