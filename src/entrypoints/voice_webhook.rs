//! Lambda (HTTP API / Function URL): Twilio's voice webhook. Verifies `X-Twilio-Signature` with the
//! posted account's auth tokens, mints a call token for that account + call and answers TwiML that
//! connects the call to the gate's WebSocket with the token as a `<Parameter>`.

use lambda_http::{Body, Request, Response};
use url::form_urlencoded;

use crate::cli::tools::candidate_urls;
use crate::domain::signature::verify_signature;
use crate::domain::{mint_call_token, AccountSid, CallSid};
use crate::entrypoints::{unix_now, GateState};

/// Largest form body accepted; Twilio's voice webhook posts a few hundred bytes.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Default call token lifetime: the stream starts seconds after the webhook answers.
pub const DEFAULT_CALL_TOKEN_TTL_SECS: u64 = 300;

/// Configuration of the voice webhook beyond [`GateState`].
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// `STREAM_GATE_STREAM_URL`: the wss URL put in `<Stream url>` (required).
    pub stream_url: String,
    /// `STREAM_GATE_WEBHOOK_URL`: the public https URL Twilio posts to; default derived from the
    /// request (`https://{host}{path}`).
    pub webhook_url: Option<String>,
    /// `STREAM_GATE_CALL_TOKEN_TTL_SECS` (default 300).
    pub call_token_ttl_secs: u64,
}

impl WebhookConfig {
    /// Reads the environment; `Err` names the unusable variable.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let nonempty = |k: &str| get(k).filter(|v| !v.trim().is_empty());
        let stream_url = nonempty("STREAM_GATE_STREAM_URL")
            .ok_or("STREAM_GATE_STREAM_URL: required (the wss:// URL of the gate)")?;
        if !stream_url.starts_with("wss://") && !stream_url.starts_with("ws://") {
            return Err("STREAM_GATE_STREAM_URL: must start with wss://".into());
        }
        let call_token_ttl_secs = match nonempty("STREAM_GATE_CALL_TOKEN_TTL_SECS") {
            None => DEFAULT_CALL_TOKEN_TTL_SECS,
            Some(v) => v
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|n| (1..=86_400).contains(n))
                .ok_or("STREAM_GATE_CALL_TOKEN_TTL_SECS: whole seconds, 1..=86400")?,
        };
        Ok(Self {
            stream_url,
            webhook_url: nonempty("STREAM_GATE_WEBHOOK_URL"),
            call_token_ttl_secs,
        })
    }
}

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
    /// Stable reason code for logs.
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

    fn status(self) -> u16 {
        match self {
            Self::MethodNotAllowed => 405,
            Self::BodyTooLarge => 413,
            Self::CredentialsUnavailable => 503,
            _ => 403,
        }
    }
}

/// Escapes a value for an XML attribute in double quotes.
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

fn header<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

/// The URL Twilio signed: the configured one, or `https://{Host}{path}` of the request.
fn signed_url(config: &WebhookConfig, req: &Request) -> Option<String> {
    if let Some(url) = &config.webhook_url {
        return Some(url.clone());
    }
    let host = header(req, "host")?;
    let path = req.uri().path();
    match req.uri().query() {
        Some(q) if !q.is_empty() => Some(format!("https://{host}{path}?{q}")),
        _ => Some(format!("https://{host}{path}")),
    }
}

fn refuse(reason: WebhookRefusal, account: Option<&str>, call: Option<&str>) -> Response<Body> {
    // SIDs are public identifiers; only well-formed ones are logged (no attacker text in logs).
    let account = account.filter(|a| AccountSid::parse(a).is_ok());
    let call = call.filter(|c| CallSid::parse(c).is_ok());
    tracing::warn!(
        event = "webhook_refused",
        reason = reason.code(),
        account_sid = account,
        call_sid = call
    );
    let mut resp = Response::new(Body::Empty);
    *resp.status_mut() =
        http::StatusCode::from_u16(reason.status()).unwrap_or(http::StatusCode::FORBIDDEN);
    if reason == WebhookRefusal::MethodNotAllowed {
        resp.headers_mut()
            .insert(http::header::ALLOW, http::HeaderValue::from_static("POST"));
    }
    resp
}

/// Handles one webhook request.
pub async fn handle(state: &GateState, config: &WebhookConfig, req: Request) -> Response<Body> {
    if req.method() != http::Method::POST {
        return refuse(WebhookRefusal::MethodNotAllowed, None, None);
    }
    // lambda_http has already decoded a base64 body (isBase64Encoded) into bytes.
    let body: &[u8] = req.body().as_ref();
    if body.len() > MAX_BODY_BYTES {
        return refuse(WebhookRefusal::BodyTooLarge, None, None);
    }
    let owned: Vec<(String, String)> = form_urlencoded::parse(body).into_owned().collect();
    let params: Vec<(&str, &str)> = owned
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let field = |name: &str| params.iter().find(|(k, _)| *k == name).map(|(_, v)| *v);
    let (account_raw, call_raw) = (field("AccountSid"), field("CallSid"));

    let Some(signature) = header(&req, "x-twilio-signature") else {
        return refuse(WebhookRefusal::SignatureMissing, account_raw, call_raw);
    };
    let Some(account) = account_raw.and_then(|a| AccountSid::parse(a).ok()) else {
        return refuse(WebhookRefusal::UnknownAccount, account_raw, call_raw);
    };
    let Some(credentials) = state.credentials.get().await else {
        return refuse(
            WebhookRefusal::CredentialsUnavailable,
            account_raw,
            call_raw,
        );
    };
    if !credentials
        .accounts
        .iter()
        .any(|a| a.account_sid == account)
    {
        return refuse(WebhookRefusal::UnknownAccount, account_raw, call_raw);
    }
    let urls = signed_url(config, &req)
        .map(|u| candidate_urls(&u))
        .unwrap_or_default();
    if verify_signature(&credentials, Some(&account), signature, &urls, &params).is_err() {
        return refuse(WebhookRefusal::SignatureMismatch, account_raw, call_raw);
    }
    // The call SID is checked after the signature: an unsigned request learns nothing from it.
    let Some(call) = call_raw.and_then(|c| CallSid::parse(c).ok()) else {
        return refuse(WebhookRefusal::CallSidInvalid, account_raw, call_raw);
    };
    let Some(token) = mint_call_token(
        &credentials,
        &account,
        &call,
        unix_now(),
        config.call_token_ttl_secs,
    ) else {
        return refuse(
            WebhookRefusal::CredentialsUnavailable,
            account_raw,
            call_raw,
        );
    };

    let mut parameters: Vec<(&str, &str)> = vec![("token", token.expose())];
    // Useful to applications and not secret: who called.
    for (name, key) in [("from", "From"), ("callerName", "CallerName")] {
        if let Some(v) = field(key).filter(|v| !v.is_empty() && v.len() <= 128) {
            parameters.push((name, v));
        }
    }
    tracing::info!(
        event = "webhook_accepted",
        reason = "webhook_signed",
        account_sid = account.as_str(),
        call_sid = call.as_str()
    );
    let mut resp = Response::new(Body::Text(twiml(&config.stream_url, &parameters)));
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/xml"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_attribute_values() {
        assert_eq!(xml_escape(r#"a&b<c>"d'"#), "a&amp;b&lt;c&gt;&quot;d&apos;");
        let t = twiml("wss://x/y?a=1&b=2", &[("token", "v1.1\"<")]);
        assert!(t.contains("url=\"wss://x/y?a=1&amp;b=2\""));
        assert!(t.contains("value=\"v1.1&quot;&lt;\""));
    }

    #[test]
    fn stream_url_required() {
        assert!(WebhookConfig::from_lookup(|_| None).is_err());
        let ok = WebhookConfig::from_lookup(|k| {
            (k == "STREAM_GATE_STREAM_URL").then(|| "wss://h/prod".to_owned())
        });
        assert_eq!(ok.map(|c| c.call_token_ttl_secs), Ok(300));
    }
}
