//! The API Gateway event documents the local gateway sends to the entrypoints, built as JSON shaped
//! like AWS's and deserialized into the same `aws_lambda_events` types the Lambda binaries read.

use std::collections::HashMap;

use aws_lambda_events::apigw::{
    ApiGatewayCustomAuthorizerRequestTypeRequest, ApiGatewayCustomAuthorizerResponse,
    ApiGatewayWebsocketProxyRequest,
};
use aws_lambda_events::iam::IamPolicyEffect;
use serde_json::{json, Map, Value};

/// The API id the local gateway reports.
pub const LOCAL_API_ID: &str = "local";

/// What is known about one connection when its events are built.
#[derive(Debug, Clone)]
pub struct ConnectionInfo {
    /// Connection id (fresh per upgrade).
    pub connection_id: String,
    /// The Host header value, used as `domainName` (e.g. `127.0.0.1:8080`).
    pub domain_name: String,
    /// Stage (the path segment).
    pub stage: String,
    /// Peer address.
    pub source_ip: String,
    /// Connect time, Unix milliseconds.
    pub connected_at: u64,
}

fn now_ms() -> u64 {
    stream_gate_lambda::clock::unix_now_ms()
}

fn request_id() -> String {
    format!("{}=", crate::random::alphanumeric(15))
}

/// The `methodArn` of `$connect` on `stage`.
pub fn method_arn(stage: &str) -> String {
    format!("arn:aws:execute-api:local:000000000000:{LOCAL_API_ID}/{stage}/$connect")
}

/// The REQUEST-authorizer document for an upgrade request (`headers` as received, `query` as
/// decoded pairs).
pub fn authorizer_document(
    info: &ConnectionInfo,
    headers: &[(String, String)],
    query: &[(String, String)],
) -> Value {
    let (single, multi) = maps(headers);
    let (qs, mqs) = maps(query);
    let user_agent = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("user-agent"))
        .map(|(_, v)| v.as_str());
    json!({
        "type": "REQUEST",
        "methodArn": method_arn(&info.stage),
        "headers": single,
        "multiValueHeaders": multi,
        "queryStringParameters": qs,
        "multiValueQueryStringParameters": mqs,
        "stageVariables": {},
        "requestContext": {
            "routeKey": "$connect",
            "eventType": "CONNECT",
            "extendedRequestId": request_id(),
            "messageDirection": "IN",
            "stage": info.stage,
            "connectedAt": info.connected_at,
            "requestTimeEpoch": now_ms(),
            "identity": {"userAgent": user_agent, "sourceIp": info.source_ip},
            "requestId": request_id(),
            "domainName": info.domain_name,
            "connectionId": info.connection_id,
            "apiId": LOCAL_API_ID,
        }
    })
}

/// A WebSocket proxy document for `route` (`$connect`, `$default`, `$disconnect`) carrying the
/// authorizer context; `body` for `$default`, status code and reason for `$disconnect`.
pub fn websocket_document(
    info: &ConnectionInfo,
    route: &str,
    authorizer: &HashMap<String, Value>,
    body: Option<&str>,
    disconnect: Option<(u16, &str)>,
) -> Value {
    let event_type = match route {
        "$connect" => "CONNECT",
        "$disconnect" => "DISCONNECT",
        _ => "MESSAGE",
    };
    let mut ctx = Map::new();
    for (k, v) in [
        ("routeKey", json!(route)),
        ("eventType", json!(event_type)),
        ("extendedRequestId", json!(request_id())),
        ("messageDirection", json!("IN")),
        ("stage", json!(info.stage)),
        ("connectedAt", json!(info.connected_at)),
        ("requestTimeEpoch", json!(now_ms())),
        ("identity", json!({"sourceIp": info.source_ip})),
        ("requestId", json!(request_id())),
        ("domainName", json!(info.domain_name)),
        ("connectionId", json!(info.connection_id)),
        ("apiId", json!(LOCAL_API_ID)),
        ("authorizer", json!(authorizer)),
    ] {
        ctx.insert(k.into(), v);
    }
    if route == "$default" {
        ctx.insert("messageId".into(), json!(request_id()));
    }
    if let Some((code, reason)) = disconnect {
        ctx.insert("disconnectStatusCode".into(), json!(code));
        ctx.insert("disconnectReason".into(), json!(reason));
    }
    let mut doc = Map::new();
    doc.insert("requestContext".into(), Value::Object(ctx));
    doc.insert("isBase64Encoded".into(), json!(false));
    if let Some(b) = body {
        doc.insert("body".into(), json!(b));
    }
    Value::Object(doc)
}

/// Single- and multi-value maps of name/value pairs (the last value wins in the single map, as
/// API Gateway does).
fn maps(pairs: &[(String, String)]) -> (Map<String, Value>, Map<String, Value>) {
    let mut single = Map::new();
    let mut multi: Map<String, Value> = Map::new();
    for (k, v) in pairs {
        single.insert(k.clone(), json!(v));
        match multi.get_mut(k).and_then(Value::as_array_mut) {
            Some(list) => list.push(json!(v)),
            None => {
                multi.insert(k.clone(), json!([v]));
            }
        }
    }
    (single, multi)
}

/// A built document did not parse as the `aws_lambda_events` type (a bug in this module).
#[derive(Debug, thiserror::Error)]
#[error("local gateway built an event the Lambda types reject: {0}")]
pub struct EventError(#[from] serde_json::Error);

/// The authorizer event, as the Lambda binary would receive it.
pub fn authorizer_event(
    info: &ConnectionInfo,
    headers: &[(String, String)],
    query: &[(String, String)],
) -> Result<ApiGatewayCustomAuthorizerRequestTypeRequest, EventError> {
    Ok(serde_json::from_value(authorizer_document(
        info, headers, query,
    ))?)
}

/// A router event, as the Lambda binary would receive it.
pub fn websocket_event(
    info: &ConnectionInfo,
    route: &str,
    authorizer: &HashMap<String, Value>,
    body: Option<&str>,
    disconnect: Option<(u16, &str)>,
) -> Result<ApiGatewayWebsocketProxyRequest, EventError> {
    Ok(serde_json::from_value(websocket_document(
        info, route, authorizer, body, disconnect,
    ))?)
}

/// The authorizer context a `$connect` Allow carries, as a string map (what the gateway attaches to
/// later events of the connection, as API Gateway does).
pub fn context_of(response: &ApiGatewayCustomAuthorizerResponse) -> HashMap<String, Value> {
    let mut out: HashMap<String, Value> = response
        .context
        .as_object()
        .map(|m| m.clone().into_iter().collect())
        .unwrap_or_default();
    if let Some(p) = &response.principal_id {
        out.insert("principalId".into(), Value::from(p.as_str()));
    }
    out
}

/// Whether an authorizer response allows the request (exactly one statement, explicitly Allow), as
/// API Gateway evaluates it.
pub fn is_allow(response: &ApiGatewayCustomAuthorizerResponse) -> bool {
    matches!(response.policy_document.statement.as_slice(), [s] if s.effect == IamPolicyEffect::Allow)
}
