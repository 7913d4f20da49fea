//! `POST /voice`, `POST /relay` and `POST /relay/ended`: the voice webhook on the gateway's own
//! port, as the HTTP API in front of the `voice-webhook` function serves it (the template's three
//! routes, stage `$default`). The function tells the routes apart by the path, as in AWS
//! (docs/conversation-relay.md, "The voice webhook").
//!
//! The request becomes the API Gateway HTTP API (v2) event AWS sends — `requestContext.domainName`
//! the gateway's host, `rawPath`, `rawQueryString`, the body (base64 when it is not UTF-8) — parsed
//! by `lambda_http` exactly as the Lambda binary parses it, and handed to
//! `stream_gate_lambda::entrypoints::voice_webhook::handle` with a [`WebhookState`] that shares the
//! gateway's credentials cache and call-state store with the router: a replayed webhook is
//! answered the token it was answered the first time.
//!
//! As on AWS, the client does not choose `Host` or `X-Forwarded-*`: the gateway sets them (the
//! client's values are dropped), so a hostile header can neither change the URL the function
//! verifies nor reach `lambda_http`'s URI builder.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::{json, Map, Value};

use super::events::LOCAL_API_ID;
use super::Shared;
use stream_gate_lambda::entrypoints::voice_webhook;

/// The webhook's path (the SAM template's `POST /voice`).
pub const WEBHOOK_PATH: &str = "/voice";

/// The ConversationRelay webhook's path (`POST /relay`).
pub const RELAY_PATH: &str = "/relay";

/// Where Twilio posts the end of a ConversationRelay session (`POST /relay/ended`).
pub const RELAY_ENDED_PATH: &str = "/relay/ended";

/// The HTTP API's route key of a path this gateway serves (`None`: no such route, 404).
fn route_key(path: &str) -> Option<&'static str> {
    match path {
        WEBHOOK_PATH => Some("POST /voice"),
        RELAY_PATH => Some("POST /relay"),
        RELAY_ENDED_PATH => Some("POST /relay/ended"),
        _ => None,
    }
}

/// The webhook URL that belongs to a gateway whose WebSocket URL (as Twilio signs it) is
/// `public_url`: the same host, `http` for `ws` and `https` for `wss`, path `/voice`. Behind a
/// tunnel (`wss://abcd.ngrok.app/dev`) that is `https://abcd.ngrok.app/voice`, the URL Twilio
/// posts to and signs. `None` for a URL that is not `ws://` or `wss://`.
pub fn webhook_url_for(public_url: &str) -> Option<String> {
    let url = url::Url::parse(public_url).ok()?;
    let scheme = match url.scheme() {
        "ws" => "http",
        "wss" => "https",
        _ => return None,
    };
    let host = url.host_str()?;
    let host = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]") // an IPv6 literal
    } else {
        host.to_owned()
    };
    Some(match url.port() {
        Some(p) => format!("{scheme}://{host}:{p}{WEBHOOK_PATH}"),
        None => format!("{scheme}://{host}{WEBHOOK_PATH}"),
    })
}

/// Headers the gateway sets itself, whatever the client sent (API Gateway does the same).
fn gateway_owned(name: &str) -> bool {
    name.eq_ignore_ascii_case("host") || name.to_ascii_lowercase().starts_with("x-forwarded-")
}

/// What the HTTP API event of one request is built from.
pub struct HttpRequestInfo<'a> {
    /// The gateway's host (`127.0.0.1:8080`): `requestContext.domainName` and `host`.
    pub domain_name: &'a str,
    /// `http` (the local gateway) or `https`: `x-forwarded-proto`.
    pub scheme: &'a str,
    /// The client's address.
    pub source_ip: &'a str,
    /// The method as received.
    pub method: &'a str,
    /// The path as received.
    pub raw_path: &'a str,
    /// The query string as received (without `?`).
    pub raw_query: &'a str,
    /// The request's headers, names as received.
    pub headers: &'a [(String, String)],
    /// The body.
    pub body: &'a [u8],
    /// The route that matched (`POST /voice`).
    pub route_key: &'a str,
}

/// The API Gateway HTTP API (payload format 2.0) event document of a request.
pub fn http_document(r: &HttpRequestInfo<'_>) -> Value {
    // Payload 2.0: lower-case names, repeated headers joined with a comma.
    let mut headers = Map::new();
    for (k, v) in r.headers {
        let name = k.to_ascii_lowercase();
        if gateway_owned(&name) {
            continue;
        }
        match headers.get_mut(&name) {
            Some(Value::String(s)) => {
                s.push(',');
                s.push_str(v);
            }
            _ => {
                headers.insert(name, Value::from(v.as_str()));
            }
        }
    }
    headers.insert("host".into(), Value::from(r.domain_name));
    headers.insert("x-forwarded-proto".into(), Value::from(r.scheme));
    headers.insert("x-forwarded-for".into(), Value::from(r.source_ip));
    let user_agent = headers
        .get("user-agent")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let (body, base64) = match std::str::from_utf8(r.body) {
        Ok(text) => (text.to_owned(), false),
        Err(_) => (
            base64::engine::general_purpose::STANDARD.encode(r.body),
            true,
        ),
    };
    let now = stream_gate_lambda::clock::unix_now_ms();
    json!({
        "version": "2.0",
        "routeKey": r.route_key,
        "rawPath": r.raw_path,
        "rawQueryString": r.raw_query,
        "headers": headers,
        "requestContext": {
            "accountId": "000000000000",
            "apiId": LOCAL_API_ID,
            "domainName": r.domain_name,
            "domainPrefix": r.domain_name.split(['.', ':']).next().unwrap_or(""),
            "requestId": format!("{}=", crate::random::alphanumeric(15)),
            "routeKey": r.route_key,
            "stage": "$default",
            "timeEpoch": now,
            "http": {
                "method": r.method,
                "path": r.raw_path,
                "protocol": "HTTP/1.1",
                "sourceIp": r.source_ip,
                "userAgent": user_agent,
            },
        },
        "body": body,
        "isBase64Encoded": base64,
    })
}

/// The request `lambda_http` makes of an event document, as in the Lambda runtime. `None` when the
/// document does not parse (or `lambda_http` would panic on it: never with the headers this
/// gateway sets, but a development tool must not die on a client's request).
pub fn lambda_request(document: &Value) -> Option<lambda_http::Request> {
    let text = document.to_string();
    std::panic::catch_unwind(move || lambda_http::request::from_str(&text).ok())
        .ok()
        .flatten()
}

fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        [("content-type", "application/json")],
        r#"{"message":"Not Found"}"#,
    )
        .into_response()
}

/// `POST /voice`, `/relay` and `/relay/ended` (the function's answer), any other path 404 (as an HTTP
/// API with the template's routes).
pub async fn post(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(route_key) = route_key(uri.path()) else {
        return not_found();
    };
    let header_list: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let source_ip = peer.ip().to_string();
    let scheme = if shared.webhook_url.starts_with("https://") {
        "https"
    } else {
        "http"
    };
    let domain = shared.addr.to_string();
    let document = http_document(&HttpRequestInfo {
        domain_name: &domain,
        scheme,
        source_ip: &source_ip,
        method: method.as_str(),
        raw_path: uri.path(),
        raw_query: uri.query().unwrap_or(""),
        headers: &header_list,
        body: &body,
        route_key,
    });
    let Some(request) = lambda_request(&document) else {
        tracing::error!(
            event = "local_webhook_event",
            "the HTTP API event did not parse"
        );
        return (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response();
    };
    let answer = voice_webhook::handle(&shared.webhook, request).await;
    shared
        .stats
        .webhooks
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    into_axum(answer)
}

/// The function's answer as the HTTP API returns it.
fn into_axum(answer: lambda_http::Response<lambda_http::Body>) -> Response {
    let (parts, body) = answer.into_parts();
    let bytes: Vec<u8> = match body {
        lambda_http::Body::Empty => Vec::new(),
        lambda_http::Body::Text(t) => t.into_bytes(),
        lambda_http::Body::Binary(b) => b,
        _ => Vec::new(),
    };
    let mut response = Response::new(axum::body::Body::from(bytes));
    *response.status_mut() = parts.status;
    *response.headers_mut() = parts.headers;
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_webhook_url_follows_the_public_url() {
        assert_eq!(
            webhook_url_for("ws://127.0.0.1:8080/dev").as_deref(),
            Some("http://127.0.0.1:8080/voice")
        );
        assert_eq!(
            webhook_url_for("wss://abcd.ngrok.app/dev").as_deref(),
            Some("https://abcd.ngrok.app/voice")
        );
        assert_eq!(
            webhook_url_for("wss://gate.example.com:8443/prod?x=1").as_deref(),
            Some("https://gate.example.com:8443/voice")
        );
        assert_eq!(
            webhook_url_for("ws://[::1]:9000/dev").as_deref(),
            Some("http://[::1]:9000/voice")
        );
        assert_eq!(webhook_url_for("https://x/dev"), None);
        assert_eq!(webhook_url_for("not a url"), None);
    }

    fn request(headers: &[(&str, &str)], body: &[u8]) -> lambda_http::Request {
        let headers: Vec<(String, String)> = headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let doc = http_document(&HttpRequestInfo {
            domain_name: "127.0.0.1:8080",
            scheme: "http",
            source_ip: "127.0.0.1",
            method: "POST",
            raw_path: "/voice",
            raw_query: "a=1",
            headers: &headers,
            body,
            route_key: "POST /voice",
        });
        lambda_request(&doc).expect("parses")
    }

    #[test]
    fn the_event_is_the_http_api_v2_event_and_the_gateway_owns_host() {
        use lambda_http::RequestExt as _;
        let req = request(
            &[
                ("Host", "evil.example.com"),
                ("X-Forwarded-Proto", "gopher://x y"),
                ("X-Twilio-Signature", "c2ln"),
                ("Accept", "a"),
                ("accept", "b"),
            ],
            b"CallSid=CA1&AccountSid=AC2",
        );
        assert_eq!(req.method(), "POST");
        assert_eq!(req.raw_http_path(), "/voice");
        assert_eq!(req.uri().to_string(), "http://127.0.0.1:8080/voice?a=1");
        let h = req.headers();
        assert_eq!(
            h.get("host").map(|v| v.as_bytes()),
            Some(&b"127.0.0.1:8080"[..])
        );
        assert_eq!(
            h.get("x-twilio-signature").map(|v| v.as_bytes()),
            Some(&b"c2ln"[..])
        );
        assert_eq!(h.get("accept").map(|v| v.as_bytes()), Some(&b"a,b"[..]));
        match req.request_context_ref() {
            Some(lambda_http::request::RequestContext::ApiGatewayV2(ctx)) => {
                assert_eq!(ctx.domain_name.as_deref(), Some("127.0.0.1:8080"));
                assert_eq!(ctx.route_key.as_deref(), Some("POST /voice"));
            }
            _ => panic!("an HTTP API v2 request"),
        }
        assert_eq!(req.body().as_ref(), b"CallSid=CA1&AccountSid=AC2");
        // A body that is not UTF-8 travels base64-encoded and arrives as sent.
        let req = request(&[], &[0xff, 0x00, 0x41]);
        assert_eq!(req.body().as_ref(), &[0xff, 0x00, 0x41]);
    }
}
