//! `$connect` REQUEST authorizer: API Gateway event in, IAM policy out.

use aws_lambda_events::apigw::{
    ApiGatewayCustomAuthorizerPolicy, ApiGatewayCustomAuthorizerRequestTypeRequest,
    ApiGatewayCustomAuthorizerResponse,
};
use aws_lambda_events::iam::{IamPolicyEffect, IamPolicyStatement};
use http::HeaderMap;
use serde_json::Value;

use crate::clock::unix_now;
use crate::domain::relay_connect::{CALL_SID_PARAM, CALL_TOKEN_PARAM};
use crate::domain::{
    decide_handshake, Admitted, AuthMethod, DenyReason, Handshake, Presented,
    SIGNATURE_SETTINGS_HEADER,
};
use crate::state::AuthorizerState;

/// The header Twilio signs the handshake with.
pub const SIGNATURE_HEADER: &str = "x-twilio-signature";

fn context_str<'a>(other: &'a serde_json::Map<String, Value>, key: &str) -> Option<&'a str> {
    other
        .get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// A header value: absent, once, or repeated (case-insensitive; both header maps are consulted).
fn header<'a>(headers: &'a HeaderMap, multi: &'a HeaderMap, name: &str) -> Presented<'a> {
    let mut values: Vec<&str> = multi
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    if values.is_empty() {
        values = headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
    }
    // A header that is not visible ASCII is treated as a (malformed) value, not as absent.
    let invalid = multi
        .get_all(name)
        .iter()
        .chain(headers.get_all(name).iter())
        .any(|v| v.to_str().is_err());
    match values.as_slice() {
        [] if invalid => Presented::One(""),
        [] => Presented::Absent,
        [one] => Presented::One(one),
        [first, rest @ ..] if rest.iter().all(|r| r == first) => Presented::One(first),
        _ => Presented::Repeated,
    }
}

fn query<'a>(event: &'a ApiGatewayCustomAuthorizerRequestTypeRequest, name: &str) -> Presented<'a> {
    let multi = event
        .multi_value_query_string_parameters
        .all(name)
        .unwrap_or_default();
    let single = event.query_string_parameters.all(name).unwrap_or_default();
    let values = if multi.is_empty() { single } else { multi };
    match values.as_slice() {
        [] => Presented::Absent,
        [one] => Presented::One(one),
        _ => Presented::Repeated,
    }
}

/// Whether the query holds a parameter other than ConversationRelay's two (in either map).
fn other_params(event: &ApiGatewayCustomAuthorizerRequestTypeRequest) -> bool {
    let relay = |(name, _): (&str, &str)| name != CALL_SID_PARAM && name != CALL_TOKEN_PARAM;
    event.query_string_parameters.iter().any(relay)
        || event.multi_value_query_string_parameters.iter().any(relay)
}

/// The wss URL Twilio signed: configured, or built from the event's domain name and stage.
pub fn signed_url(
    configured: Option<&str>,
    domain: Option<&str>,
    stage: Option<&str>,
) -> Option<String> {
    match (configured, domain, stage) {
        (Some(url), _, _) => Some(url.to_owned()),
        (None, Some(d), Some(s)) if !d.is_empty() && !s.is_empty() => {
            Some(format!("wss://{d}/{s}"))
        }
        _ => None,
    }
}

fn statement(effect: IamPolicyEffect, resource: String) -> IamPolicyStatement {
    // Every field set explicitly: the type's Default has effect Allow.
    let mut s = IamPolicyStatement::default();
    s.action = vec!["execute-api:Invoke".to_owned()];
    s.effect = effect;
    s.resource = vec![resource];
    s.condition = None;
    s
}

fn policy(statement: IamPolicyStatement) -> ApiGatewayCustomAuthorizerPolicy {
    let mut p = ApiGatewayCustomAuthorizerPolicy::default();
    p.version = Some("2012-10-17".to_owned());
    p.statement = vec![statement];
    p
}

/// An Allow for exactly `method_arn`, built only from a verified handshake. The context pins what
/// `$default` checks the connection against (docs/design.md §3, docs/conversation-relay.md).
pub fn allow(admitted: &Admitted, method_arn: &str) -> ApiGatewayCustomAuthorizerResponse {
    let mut context = serde_json::Map::new();
    context.insert("protocol".into(), Value::from(admitted.protocol().as_str()));
    let account_sid = match admitted {
        Admitted::MediaStreams(proof) => {
            // `authMethod` is one of the two documented values; when both credentials verified,
            // `authMethods` says so, so that no consumer meets a third value.
            context.insert("authMethod".into(), Value::from(proof.method().as_str()));
            if let Some(both) = proof.methods() {
                context.insert("authMethods".into(), Value::from(both));
            }
            context.insert(
                "credential".into(),
                Value::from(proof.credential().to_string()),
            );
            proof.account_sid()
        }
        Admitted::ConversationRelay(proof) => {
            context.insert("callSid".into(), Value::from(proof.call_sid().as_str()));
            // A string, as every other key: the `setup` claims this very token.
            context.insert(
                "callTokenExpiresAt".into(),
                Value::from(proof.token_expires_at().to_string()),
            );
            context.insert(
                "authMethod".into(),
                Value::from(AuthMethod::TwilioSignature.as_str()),
            );
            context.insert(
                "credential".into(),
                Value::from(proof.credential().to_string()),
            );
            proof.account_sid()
        }
    };
    context.insert("accountSid".into(), Value::from(account_sid.as_str()));
    let mut r = ApiGatewayCustomAuthorizerResponse::default();
    r.principal_id = Some(account_sid.to_string());
    r.policy_document = policy(statement(IamPolicyEffect::Allow, method_arn.to_owned()));
    r.context = Value::Object(context);
    r
}

/// An explicit Deny. The reason goes to the log, not to the caller.
pub fn deny(method_arn: Option<&str>) -> ApiGatewayCustomAuthorizerResponse {
    let mut r = ApiGatewayCustomAuthorizerResponse::default();
    r.principal_id = Some("unauthenticated".to_owned());
    r.policy_document = policy(statement(
        IamPolicyEffect::Deny,
        method_arn.unwrap_or("*").to_owned(),
    ));
    r.context = Value::Object(serde_json::Map::new());
    r
}

/// Handles one `$connect` authorizer event. Never fails: a rejected or broken request is a Deny.
pub async fn handle(
    state: &AuthorizerState,
    event: ApiGatewayCustomAuthorizerRequestTypeRequest,
) -> ApiGatewayCustomAuthorizerResponse {
    decide(state, event).await.0
}

/// [`handle`], also returning the deny reason (`None` on Allow). The local gateway reports it;
/// the Lambda binary sends only the response.
pub async fn decide(
    state: &AuthorizerState,
    event: ApiGatewayCustomAuthorizerRequestTypeRequest,
) -> (ApiGatewayCustomAuthorizerResponse, Option<DenyReason>) {
    let other = &event.request_context.other;
    let connection_id = context_str(other, "connectionId").unwrap_or("-");
    let domain = context_str(other, "domainName");
    let url = signed_url(
        state.config.public_url.as_deref(),
        domain,
        event.request_context.stage.as_deref(),
    );
    let method_arn = event
        .method_arn
        .as_deref()
        .filter(|a| a.starts_with("arn:"));

    let decision = match (url.as_deref(), method_arn) {
        (Some(url), Some(_)) => {
            let creds = state.credentials.get().await;
            let (headers, multi) = (&event.headers, &event.multi_value_headers);
            let handshake = Handshake {
                signature: header(headers, multi, SIGNATURE_HEADER),
                signature_settings: header(headers, multi, SIGNATURE_SETTINGS_HEADER),
                stream_token: query(&event, "token"),
                call_sid: query(&event, CALL_SID_PARAM),
                call_token: query(&event, CALL_TOKEN_PARAM),
                other_params: other_params(&event),
                signed_url: url,
            };
            let config = &state.config;
            decide_handshake(
                &handshake,
                creds.as_deref(),
                config.auth_mode,
                config.protocols,
                unix_now(),
            )
        }
        _ => Err(DenyReason::RequestIncomplete),
    };
    match (decision, method_arn) {
        (Ok(admitted), Some(arn)) => {
            log_allow(connection_id, &admitted);
            (allow(&admitted, arn), None)
        }
        (Ok(_), None) => {
            let reason = DenyReason::RequestIncomplete;
            (deny_logged(connection_id, method_arn, reason), Some(reason))
        }
        (Err(reason), _) => (deny_logged(connection_id, method_arn, reason), Some(reason)),
    }
}

fn log_allow(connection_id: &str, admitted: &Admitted) {
    let protocol = admitted.protocol().as_str();
    match admitted {
        Admitted::MediaStreams(p) => {
            tracing::info!(route = "$connect", decision = "allow", connection_id,
            protocol, account_sid = %p.account_sid(), auth_method = p.method().as_str(), credential = %p.credential())
        }
        Admitted::ConversationRelay(p) => {
            tracing::info!(route = "$connect", decision = "allow", connection_id,
            protocol, account_sid = %p.account_sid(), call_sid = %p.call_sid(), credential = %p.credential())
        }
    }
}

fn deny_logged(
    connection_id: &str,
    method_arn: Option<&str>,
    reason: DenyReason,
) -> ApiGatewayCustomAuthorizerResponse {
    tracing::warn!(
        route = "$connect",
        decision = "deny",
        connection_id,
        reason = reason.code()
    );
    deny(method_arn)
}
