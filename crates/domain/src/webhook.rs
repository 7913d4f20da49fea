//! Twilio's voice webhook, as pure functions: the form body, the signature decision and the TwiML
//! answer. The entrypoint (`voice-webhook`) adds only HTTP and the credentials fetch.
//!
//! The decision is split in two so that an unsigned or malformed request is refused before any
//! credentials are fetched: [`precheck_webhook`] needs only the request, [`verify_webhook`] needs the
//! credentials document.

use crate::credentials::Credentials;
use crate::sid::{AccountSid, CallSid};
use crate::signature::verify_signature;

/// Largest form body accepted; Twilio's voice webhook posts a few hundred bytes.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Why a webhook request was refused (the log's reason code).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookRefusal {
    /// Not a POST.
    MethodNotAllowed,
    /// Body larger than [`MAX_BODY_BYTES`].
    BodyTooLarge,
    /// No `X-Twilio-Signature` header.
    SignatureMissing,
    /// `AccountSid` absent, malformed or not configured.
    UnknownAccount,
    /// `CallSid` absent or malformed.
    CallSidInvalid,
    /// The signature does not verify.
    SignatureMismatch,
    /// No credentials document, or it has no call-token key.
    CredentialsUnavailable,
}

impl WebhookRefusal {
    /// Every refusal, for tests and docs.
    pub const ALL: [Self; 7] = [
        Self::MethodNotAllowed,
        Self::BodyTooLarge,
        Self::SignatureMissing,
        Self::UnknownAccount,
        Self::CallSidInvalid,
        Self::SignatureMismatch,
        Self::CredentialsUnavailable,
    ];

    /// Stable reason code for logs and metrics.
    pub fn code(self) -> &'static str {
        match self {
            Self::MethodNotAllowed => "method_not_allowed",
            Self::BodyTooLarge => "webhook_body_too_large",
            Self::SignatureMissing => "webhook_signature_missing",
            Self::UnknownAccount => "webhook_unknown_account",
            Self::CallSidInvalid => "webhook_call_sid_invalid",
            Self::SignatureMismatch => "webhook_signature_mismatch",
            Self::CredentialsUnavailable => "credentials_unavailable",
        }
    }
}

/// A decoded `application/x-www-form-urlencoded` body, in the order posted (Twilio signs every
/// parameter, repeated names included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookForm {
    params: Vec<(String, String)>,
}

impl WebhookForm {
    /// Decodes a body of at most [`MAX_BODY_BYTES`]. Invalid percent-escapes and invalid UTF-8 are
    /// decoded lossily, as Twilio's own validators do; the signature then decides.
    pub fn parse(body: &[u8]) -> Result<Self, WebhookRefusal> {
        if body.len() > MAX_BODY_BYTES {
            return Err(WebhookRefusal::BodyTooLarge);
        }
        Ok(Self {
            params: form_urlencoded::parse(body).into_owned().collect(),
        })
    }

    /// The first value posted under `name`.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every parameter as borrowed pairs (what the signature covers).
    pub fn pairs(&self) -> Vec<(&str, &str)> {
        self.params
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }
}

/// The request-only checks: a signature header is present and `AccountSid` is well formed.
/// Returns the account whose auth tokens must then verify the signature.
pub fn precheck_webhook(
    form: &WebhookForm,
    signature: Option<&str>,
) -> Result<AccountSid, WebhookRefusal> {
    if signature.is_none() {
        return Err(WebhookRefusal::SignatureMissing);
    }
    form.field("AccountSid")
        .and_then(|a| AccountSid::parse(a).ok())
        .ok_or(WebhookRefusal::UnknownAccount)
}

/// The decision: `account` is configured, `signature` is one of its auth tokens' signatures over one
/// of `urls` with the form, and `CallSid` is well formed. Returns the call to mint a token for.
pub fn verify_webhook(
    credentials: &Credentials,
    form: &WebhookForm,
    account: &AccountSid,
    signature: &str,
    urls: &[String],
) -> Result<CallSid, WebhookRefusal> {
    if !credentials.account_sids().any(|a| a == *account) {
        return Err(WebhookRefusal::UnknownAccount);
    }
    verify_signature(credentials, Some(account), signature, urls, &form.pairs())
        .map_err(|_| WebhookRefusal::SignatureMismatch)?;
    // The call SID is checked after the signature: an unsigned request learns nothing from it.
    form.field("CallSid")
        .and_then(|c| CallSid::parse(c).ok())
        .ok_or(WebhookRefusal::CallSidInvalid)
}

/// Escapes a value for an XML attribute in double quotes; control characters XML 1.0 cannot carry
/// are dropped.
pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 && c != '\t' && c != '\n' && c != '\r' => {}
            c => out.push(c),
        }
    }
    out
}

/// The TwiML answer: connect the call to `stream_url` with `params` as `<Parameter>`s.
pub fn twiml(stream_url: &str, params: &[(&str, &str)]) -> String {
    let mut s = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Connect><Stream url=\"{}\">",
        xml_escape(stream_url)
    );
    for (name, value) in params {
        s.push_str(&format!(
            "<Parameter name=\"{}\" value=\"{}\"/>",
            xml_escape(name),
            xml_escape(value)
        ));
    }
    s.push_str("</Stream></Connect></Response>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signature::{compute_signature, webhook_urls};

    const ACCOUNT: &str = "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const CALL: &str = "CAbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
    const TOKEN: &str = "webhook-test-auth-token-0123456789";
    const URL: &str = "https://hooks.example.com/voice";

    fn credentials() -> Credentials {
        let doc = format!(
            r#"{{"twilioAccounts":[{{"accountSid":"{ACCOUNT}","authTokens":["{TOKEN}"]}}]}}"#
        );
        Credentials::from_json(&doc).expect("test document is valid")
    }

    fn body(call: &str) -> String {
        format!("AccountSid={ACCOUNT}&CallSid={call}&From=%2B15550100")
    }

    fn decide(body: &str, signature: Option<&str>) -> Result<CallSid, WebhookRefusal> {
        let form = WebhookForm::parse(body.as_bytes())?;
        let account = precheck_webhook(&form, signature)?;
        let signature = signature.unwrap_or_default();
        verify_webhook(
            &credentials(),
            &form,
            &account,
            signature,
            &webhook_urls(URL),
        )
    }

    fn sign(body: &str, url: &str) -> String {
        let form = WebhookForm::parse(body.as_bytes()).expect("small body");
        compute_signature(TOKEN, url, &form.pairs())
    }

    #[test]
    fn signed_webhook_yields_its_call() {
        let b = body(CALL);
        let call = decide(&b, Some(&sign(&b, URL))).map(|c| c.as_str().to_owned());
        assert_eq!(call.as_deref(), Ok(CALL));
        // Signed over the URL with a trailing slash or the default port: still a webhook URL.
        assert!(decide(&b, Some(&sign(&b, &format!("{URL}/")))).is_ok());
        let with_port = "https://hooks.example.com:443/voice";
        assert!(decide(&b, Some(&sign(&b, with_port))).is_ok());
    }

    #[test]
    fn refusals_in_order() {
        let b = body(CALL);
        let sig = sign(&b, URL);
        assert_eq!(decide(&b, None), Err(WebhookRefusal::SignatureMissing));
        assert_eq!(
            decide("CallSid=x", Some(&sig)),
            Err(WebhookRefusal::UnknownAccount)
        );
        let other = b.replace("ACaaaa", "ACcccc");
        assert_eq!(
            decide(&other, Some(&sign(&other, URL))),
            Err(WebhookRefusal::UnknownAccount)
        );
        let tampered = format!("{b}&Extra=1");
        assert_eq!(
            decide(&tampered, Some(&sig)),
            Err(WebhookRefusal::SignatureMismatch)
        );
        let bad_call = body("CAshort");
        assert_eq!(
            decide(&bad_call, Some(&sign(&bad_call, URL))),
            Err(WebhookRefusal::CallSidInvalid)
        );
        let huge = vec![b'a'; MAX_BODY_BYTES + 1];
        assert_eq!(WebhookForm::parse(&huge), Err(WebhookRefusal::BodyTooLarge));
    }

    #[test]
    fn codes_are_distinct() {
        let mut codes: Vec<_> = WebhookRefusal::ALL.iter().map(|r| r.code()).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), WebhookRefusal::ALL.len());
    }

    #[test]
    fn escapes_attribute_values() {
        assert_eq!(xml_escape(r#"a&b<c>"d'"#), "a&amp;b&lt;c&gt;&quot;d&apos;");
        let t = twiml("wss://x/y?a=1&b=2", &[("token", "v1.1\"<")]);
        assert!(t.contains("url=\"wss://x/y?a=1&amp;b=2\""));
        assert!(t.contains("value=\"v1.1&quot;&lt;\""));
    }
}
