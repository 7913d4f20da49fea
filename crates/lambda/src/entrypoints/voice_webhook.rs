//! Lambda (HTTP API / Function URL): Twilio's voice webhook. Verifies `X-Twilio-Signature` with the
//! posted account's auth tokens, mints a call token for that account + call and answers TwiML that
//! connects the call to the gate's WebSocket: at `…/voice` a `<Stream>` with the token as a
//! `<Parameter>`; at `…/relay` a `<ConversationRelay>` whose URL carries the call and its token in
//! the query (docs/conversation-relay.md). `…/relay/ended` is the session's `<Connect action>`:
//! checked like any webhook, delivered once per call as a `session_end` record, and answered with
//! an empty `<Response/>`.

use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt as _, Response};

use crate::adapters::delivery::{deliver_with_retry, DeliveryRecord};
use crate::adapters::SessionEndMark;
use crate::budget::{Budget, DEADLINE};
use crate::clock::{unix_now, unix_now_ms};
use crate::config::WebhookConfig;
use crate::domain::relay_twiml::relay_twiml;
use crate::domain::session_end::SessionEnd;
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
        let budget = budget_of(&req);
        let end = SessionEnd::of_verified(&form, account, call);
        return relay_ended(state, end, now, budget).await;
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

/// What became of a session's end: the `record` field of its `relay_session_ended` log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EndRecord {
    /// Delivered to the sink.
    Delivered,
    /// The sink failed (`delivery_failed` says why): the record is lost, as a frame's would be.
    Undelivered,
    /// The call's end was posted before: Twilio's retry or a replay (no second record).
    Repeated,
    /// No token was issued for the call here: not a session this stack answered (no record).
    NotIssued,
}

impl EndRecord {
    const fn as_str(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Undelivered => "undelivered",
            Self::Repeated => "repeated",
            Self::NotIssued => "not_issued",
        }
    }
}

/// When nothing says when the invocation ends (a test, the local gateway): a delivery's two
/// attempts.
const UNKNOWN_DEADLINE_BUDGET: std::time::Duration = std::time::Duration::from_millis(3_200);

/// The end of what this invocation may spend: Lambda's deadline less the answer's margin.
fn budget_of(req: &Request) -> Budget {
    let now = tokio::time::Instant::now();
    let left = req
        .lambda_context_ref()
        .map(|c| c.deadline)
        .filter(|d| *d > 0)
        .map(|deadline_ms| {
            std::time::Duration::from_millis(deadline_ms.saturating_sub(unix_now_ms()))
        })
        .unwrap_or(UNKNOWN_DEADLINE_BUDGET);
    Budget::for_deadline(now + left)
}

/// `…/relay/ended`, signed: the session's end. With call state, the first end posted for a call
/// this webhook answered is delivered as a `session_end` record (a retry or a replay of the
/// signed POST delivers nothing: the mark on the call's issued record says it was posted); `off`
/// delivers every one. Logged with what Twilio reports of it (only well-formed values) and
/// answered with an empty `<Response/>` (the call then goes on to the TwiML after `<Connect>`, or
/// ends) unless the store cannot say (503, no record).
async fn relay_ended(
    state: &WebhookState,
    end: SessionEnd,
    now: u64,
    budget: Budget,
) -> Response<Body> {
    let mark = match &state.call_state {
        CallState::Off => SessionEndMark::First,
        CallState::Store(store) => {
            let marked = budget
                .run(store.end_session(end.account(), end.call(), now))
                .await;
            let code = match marked {
                Ok(Ok(mark)) => Ok(mark),
                Ok(Err(e)) => Err(e.code),
                Err(_) => Err(DEADLINE.to_owned()),
            };
            match code {
                Ok(mark) => mark,
                Err(code) => {
                    tracing::error!(event = "call_state_unavailable", store_error = %code);
                    return refuse(
                        WebhookRefusal::CallStateUnavailable,
                        Some(end.account().as_str()),
                        Some(end.call().as_str()),
                    );
                }
            }
        }
    };
    let record = match mark {
        SessionEndMark::Repeated => EndRecord::Repeated,
        SessionEndMark::NotIssued => EndRecord::NotIssued,
        SessionEndMark::First => match DeliveryRecord::of_session_end(&end, unix_now_ms()) {
            Ok(record) if deliver_with_retry(&*state.sink, &record, budget.until()).await => {
                EndRecord::Delivered
            }
            _ => EndRecord::Undelivered,
        },
    };
    // One line either way: INFO when delivered, WARN when not (a replay, a stranger, a failure).
    macro_rules! log_end {
        ($level:ident) => {
            tracing::$level!(
                event = "relay_session_ended",
                record = record.as_str(),
                account_sid = end.account().as_str(),
                call_sid = end.call().as_str(),
                session_status = end.status(),
                session_duration = end.digits("SessionDuration"),
                error_code = end.digits("ErrorCode")
            )
        };
    }
    if record == EndRecord::Delivered {
        log_end!(info);
    } else {
        log_end!(warn);
    }
    xml("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response/>".to_owned())
}
