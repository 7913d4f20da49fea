//! Lambda (HTTP API / Function URL): Twilio's voice webhook. Verifies `X-Twilio-Signature` with the
//! posted account's auth tokens, mints a call token for that account + call and answers TwiML that
//! connects the call to the gate's WebSocket: at `…/voice` a `<Stream>` with the token as a
//! `<Parameter>`; at `…/relay` a `<ConversationRelay>` whose URL carries the call and its token in
//! the query (docs/conversation-relay.md). `…/relay/ended` is the session's `<Connect action>`:
//! checked like any webhook, logged, and answered with an empty `<Response/>`.

use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt as _, Response};

use crate::clock::unix_now;
use crate::config::WebhookConfig;
use crate::domain::relay_twiml::relay_twiml;
use crate::domain::signature::webhook_urls;
use crate::domain::webhook_decision::{
    precheck_webhook, twiml, verify_webhook, WebhookForm, WebhookRefusal,
};
use crate::domain::{
    mint_call_token, AccountSid, CallSid, Presented, Protocol, SIGNATURE_SETTINGS_HEADER,
};
use crate::state::{CallState, WebhookState};

/// The HTTP status of a refusal (the body is always empty).
fn status(reason: WebhookRefusal) -> u16 {
    match reason {
        WebhookRefusal::MethodNotAllowed => 405,
        WebhookRefusal::RelayNotEnabled => 404,
        WebhookRefusal::BodyTooLarge => 413,
        WebhookRefusal::CredentialsUnavailable | WebhookRefusal::CallStateUnavailable => 503,
        _ => 403,
    }
}

fn header<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

/// A header that must come at most once: absent, once (repeats of one value count once), or
/// repeated. A value that is not visible ASCII counts as a malformed one.
fn single_header<'a>(req: &'a Request, name: &str) -> Presented<'a> {
    let values: Vec<Option<&str>> = req
        .headers()
        .get_all(name)
        .iter()
        .map(|v| v.to_str().ok())
        .collect();
    match values.as_slice() {
        [] => Presented::Absent,
        [first, rest @ ..] if rest.iter().all(|r| r == first) => {
            Presented::One(first.unwrap_or(""))
        }
        _ => Presented::Repeated,
    }
}

/// What a POST asks for, by the end of its path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookRoute {
    /// `…/voice` (and any other path, as before ConversationRelay): `<Connect><Stream>`.
    Voice,
    /// `…/relay`: `<Connect><ConversationRelay>`.
    Relay,
    /// `…/relay/ended`: the end of a ConversationRelay session.
    RelayEnded,
}

impl WebhookRoute {
    /// The route of a request path (`rawPath`).
    pub fn of(path: &str) -> Self {
        let path = path.trim_end_matches('/');
        if path.ends_with("/relay/ended") {
            Self::RelayEnded
        } else if path.ends_with("/relay") {
            Self::Relay
        } else {
            Self::Voice
        }
    }

    /// The path suffix that replaces a configured URL's `/voice`.
    fn suffix(self) -> &'static str {
        match self {
            Self::Voice => "/voice",
            Self::Relay => "/relay",
            Self::RelayEnded => "/relay/ended",
        }
    }
}

/// The URL Twilio signed: `STREAM_GATE_WEBHOOK_URL`, else API Gateway's
/// `https://{requestContext.domainName}{rawPath}` (plus the raw query string). Never the `Host`
/// header: a client chooses it, and a signed URL built from it would let a request signed for
/// another host pass. The configured URL is the `/voice` one; the ConversationRelay routes are
/// that URL with its trailing `/voice` replaced by `/relay` or `/relay/ended` (a configured URL
/// that does not end in `/voice` has none: their signatures cannot verify).
pub fn signed_url(config: &WebhookConfig, req: &Request) -> Option<String> {
    if let Some(url) = &config.webhook_url {
        let route = WebhookRoute::of(req.raw_http_path());
        if route == WebhookRoute::Voice {
            return Some(url.clone());
        }
        let base = url.trim_end_matches('/').strip_suffix("/voice")?;
        return Some(format!("{base}{}", route.suffix()));
    }
    let domain = match req.request_context_ref()? {
        RequestContext::ApiGatewayV2(ctx) => ctx.domain_name.as_deref(),
        #[allow(unreachable_patterns)] // other event kinds exist under other lambda_http features
        _ => None,
    }
    .filter(|d| !d.is_empty())?;
    let path = req.raw_http_path();
    match req.uri().query() {
        Some(q) if !q.is_empty() => Some(format!("https://{domain}{path}?{q}")),
        _ => Some(format!("https://{domain}{path}")),
    }
}

/// The expiry of the call's token. With call state, one token per CallSid, ever (within the
/// retention): a retried or replayed webhook gets the expiry first recorded, and so the very same
/// token (tokens are deterministic in key, account, call and expiry).
///
/// Why the first token, expired by then, rather than a refusal: Twilio itself retries a webhook
/// whose answer it did not get, and that retry must get a token that works, the same one; an
/// attacker replaying the POST later gets only a token whose `start` closes with
/// `call_token_expired` (and, while it is live, `call_token_reused` once the real stream has
/// claimed it). One rule for both, no judgement of whether a request is "the retry", nothing new
/// minted.
async fn issued_expiry(
    state: &WebhookState,
    account: &AccountSid,
    call: &CallSid,
    now: u64,
) -> Result<u64, WebhookRefusal> {
    let config = &state.config;
    let expires_at = now.saturating_add(config.call_token_ttl.as_secs());
    let CallState::Store(store) = &state.call_state else {
        // `off`, set explicitly (and warned about at start): a fresh token every time.
        return Ok(expires_at);
    };
    let keep_until = now.saturating_add(config.issued_retention.as_secs());
    store
        .issue_call_token(account, call, expires_at, keep_until, now)
        .await
        .map_err(|e| {
            tracing::error!(event = "call_state_unavailable", store_error = %e.code);
            WebhookRefusal::CallStateUnavailable
        })
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
        http::StatusCode::from_u16(status(reason)).unwrap_or(http::StatusCode::FORBIDDEN);
    if reason == WebhookRefusal::MethodNotAllowed {
        resp.headers_mut()
            .insert(http::header::ALLOW, http::HeaderValue::from_static("POST"));
    }
    resp
}

/// Handles one webhook request, at the wall clock's time.
pub async fn handle(state: &WebhookState, req: Request) -> Response<Body> {
    handle_at(state, req, unix_now()).await
}

/// Handles one webhook request at `now` (Unix seconds): [`handle`] with the clock passed in, so a
/// test can replay a request a day, a month or a year later.
pub async fn handle_at(state: &WebhookState, req: Request, now: u64) -> Response<Body> {
    let config = &state.config;
    if req.method() != http::Method::POST {
        return refuse(WebhookRefusal::MethodNotAllowed, None, None);
    }
    let route = WebhookRoute::of(req.raw_http_path());
    if route != WebhookRoute::Voice && !config.protocols.admits(Protocol::ConversationRelay) {
        return refuse(WebhookRefusal::RelayNotEnabled, None, None);
    }
    // lambda_http has already decoded a base64 body (isBase64Encoded) into bytes.
    let form = match WebhookForm::parse(req.body().as_ref()) {
        Ok(form) => form,
        Err(reason) => return refuse(reason, None, None),
    };
    let (account_raw, call_raw) = (form.field("AccountSid"), form.field("CallSid"));
    let signature = header(&req, "x-twilio-signature");
    let settings = single_header(&req, SIGNATURE_SETTINGS_HEADER);
    let claim = match precheck_webhook(&form, signature, settings) {
        Ok(claim) => claim,
        Err(reason) => return refuse(reason, account_raw, call_raw),
    };
    // Only now, with a signed request for a well-formed account, are credentials needed.
    let Some(credentials) = state.credentials.get().await else {
        return refuse(
            WebhookRefusal::CredentialsUnavailable,
            account_raw,
            call_raw,
        );
    };
    let urls = signed_url(config, &req)
        .map(|u| webhook_urls(&u))
        .unwrap_or_default();
    let account = claim.account();
    let call = match verify_webhook(&credentials, &form, &claim, &urls) {
        Ok(call) => call,
        Err(reason) => return refuse(reason, account_raw, call_raw),
    };
    if route == WebhookRoute::RelayEnded {
        return relay_ended(&form, &account, &call);
    }
    let ttl = config.call_token_ttl.as_secs();
    let expires_at = match issued_expiry(state, &account, &call, now).await {
        Ok(exp) => exp,
        Err(reason) => return refuse(reason, account_raw, call_raw),
    };
    let Some(token) = mint_call_token(
        &credentials,
        &account,
        &call,
        expires_at.saturating_sub(ttl),
        ttl,
    ) else {
        return refuse(
            WebhookRefusal::CredentialsUnavailable,
            account_raw,
            call_raw,
        );
    };

    // Useful to applications and not secret: who called.
    let caller: Vec<(&str, &str)> = [("from", "From"), ("callerName", "CallerName")]
        .into_iter()
        .filter_map(|(name, key)| {
            let v = form
                .field(key)
                .filter(|v| !v.is_empty() && v.len() <= 128)?;
            Some((name, v))
        })
        .collect();
    tracing::info!(
        event = "webhook_accepted",
        reason = "webhook_signed",
        account_sid = account.as_str(),
        call_sid = call.as_str()
    );
    let body = match route {
        WebhookRoute::Relay => {
            // The session's end is posted next to this route: `…/relay/ended`, without a query.
            let signed = signed_url(config, &req).unwrap_or_default();
            let action = format!("{}/ended", signed.split('?').next().unwrap_or_default());
            let attributes = &config.relay_attributes;
            relay_twiml(
                &config.stream_url,
                &call,
                token.expose(),
                &action,
                attributes,
                &caller,
            )
        }
        // `<Stream url>` loses its query: the token travels as a `<Parameter>`.
        _ => {
            let mut parameters = vec![("token", token.expose())];
            parameters.extend(caller);
            twiml(&config.stream_url, &parameters)
        }
    };
    xml(body)
}

fn xml(body: String) -> Response<Body> {
    let mut resp = Response::new(Body::Text(body));
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/xml"),
    );
    resp
}

/// `…/relay/ended`, signed: the session's end, logged with what Twilio reports of it (only
/// well-formed values: a status among Twilio's, digits for the duration and the error code), and
/// an empty `<Response/>` (the call then goes on to the TwiML after `<Connect>`, or ends).
fn relay_ended(form: &WebhookForm, account: &AccountSid, call: &CallSid) -> Response<Body> {
    let digits = |key: &str| {
        form.field(key)
            .filter(|v| !v.is_empty() && v.len() <= 12 && v.bytes().all(|b| b.is_ascii_digit()))
    };
    let status = form
        .field("SessionStatus")
        .filter(|s| matches!(*s, "ended" | "completed" | "failed"));
    tracing::info!(
        event = "relay_session_ended",
        account_sid = account.as_str(),
        call_sid = call.as_str(),
        session_status = status,
        session_duration = digits("SessionDuration"),
        error_code = digits("ErrorCode")
    );
    xml("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response/>".to_owned())
}
