//! The authorizer's `handle` called in-process with the `events/` documents: the returned policy,
//! context and deny reason are asserted directly (the binaries' wiring: `lambda_binaries.rs`).

use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::apigw::{
    ApiGatewayCustomAuthorizerRequestTypeRequest, ApiGatewayCustomAuthorizerResponse,
};
use aws_lambda_events::iam::IamPolicyEffect;
use serde_json::{json, Value};
use stream_gate_domain::{
    compute_signature, mint_call_token, AccountSid, CallSid, Credentials, DenyReason,
};
use stream_gate_lambda::adapters::{CredentialCache, StaticSource};
use stream_gate_lambda::clock::unix_now;
use stream_gate_lambda::config::AuthorizerConfig;
use stream_gate_lambda::entrypoints::authorizer;
use stream_gate_lambda::state::AuthorizerState;
use stream_gate_testkit::event;

const AC: &str = "ACdeadbeefdeadbeefdeadbeefdeadbeef";
const ARN: &str = "arn:aws:execute-api:us-east-1:123456789012:abc123/prod/$connect";

mod support;
use support::states::{credentials, lookup};

fn authorizer_state(env: &[(&'static str, &'static str)]) -> AuthorizerState {
    AuthorizerState {
        config: AuthorizerConfig::from_lookup(lookup(env)).expect("config"),
        credentials: credentials(),
    }
}

fn authorizer_event(value: Value) -> ApiGatewayCustomAuthorizerRequestTypeRequest {
    serde_json::from_value(value).expect("authorizer event")
}

fn effect(r: &ApiGatewayCustomAuthorizerResponse) -> (IamPolicyEffect, String) {
    let [s] = r.policy_document.statement.as_slice() else {
        panic!("exactly one statement");
    };
    assert_eq!(s.action, vec!["execute-api:Invoke".to_owned()]);
    (s.effect.clone(), s.resource.join(","))
}

async fn authorize(
    state: &AuthorizerState,
    value: Value,
) -> (ApiGatewayCustomAuthorizerResponse, Option<DenyReason>) {
    authorizer::decide(state, authorizer_event(value)).await
}

#[tokio::test]
async fn authorizer_allows_signed_and_token_handshakes_with_their_context() {
    let state = authorizer_state(&[("STREAM_GATE_AUTH_MODE", "either")]);
    let (r, reason) = authorize(&state, event("authorizer-signed.json")).await;
    assert_eq!(
        (effect(&r), reason),
        ((IamPolicyEffect::Allow, ARN.into()), None)
    );
    assert_eq!(r.principal_id.as_deref(), Some(AC));
    assert_eq!(
        r.context,
        json!({"protocol": "media-streams", "accountSid": AC, "authMethod": "twilio-signature", "credential": "twilioAccounts[0].authTokens[0]"})
    );

    let (r, reason) = authorize(&state, event("authorizer-token.json")).await;
    assert_eq!(
        (effect(&r), reason),
        ((IamPolicyEffect::Allow, ARN.into()), None)
    );
    assert_eq!(r.context["authMethod"], "stream-token");
    assert_eq!(r.context["credential"], "streamTokens[0]");
}

/// A ConversationRelay handshake as Twilio opens it: the `<ConversationRelay url>` the voice webhook
/// wrote, query kept, signed over that exact URL.
fn relay_handshake(call: &str, token: &str) -> Value {
    let url = format!(
        "wss://abc123.execute-api.us-east-1.amazonaws.com/prod?callSid={call}&callToken={token}"
    );
    let sig = compute_signature("test-only-auth-token-not-a-secret", &url, &[]);
    let mut e = event("authorizer-signed.json");
    e["headers"]["X-Twilio-Signature"] = json!(sig);
    e["multiValueHeaders"]["X-Twilio-Signature"] = json!([sig]);
    e["queryStringParameters"] = json!({"callSid": call, "callToken": token});
    e["multiValueQueryStringParameters"] = json!({"callSid": [call], "callToken": [token]});
    e
}

/// `events/authorizer-relay-signed.json` (what `sam local invoke` runs) stays valid: signed over
/// its URL with the query, its call token minted with the test key for 2100.
#[tokio::test]
async fn the_relay_events_document_is_admitted_with_its_call_pinned() {
    let state = authorizer_state(&[("STREAM_GATE_PROTOCOLS", "media-streams,conversation-relay")]);
    let (r, reason) = authorize(&state, event("authorizer-relay-signed.json")).await;
    assert_eq!(
        (effect(&r), reason),
        ((IamPolicyEffect::Allow, ARN.into()), None)
    );
    assert_eq!(r.context["protocol"], "conversation-relay");
    assert_eq!(r.context["callSid"], "CAffeeddccbbaa99887766554433221100");
    assert_eq!(r.context["callTokenExpiresAt"], "4102444800");
    let (r, _) = authorize(
        &authorizer_state(&[]),
        event("authorizer-relay-signed.json"),
    )
    .await;
    assert_eq!(
        effect(&r).0,
        IamPolicyEffect::Deny,
        "not where only Media Streams is admitted"
    );
}

#[tokio::test]
async fn a_relay_handshake_is_admitted_only_where_enabled_and_pins_the_call() {
    const CA: &str = "CA00000000000000000000000000000001";
    let document = std::fs::read_to_string(stream_gate_testkit::repo_file(
        "events/credentials.test.json",
    ))
    .expect("test credentials");
    let creds = Credentials::from_json(&document).expect("valid");
    let (ac, ca) = (
        AccountSid::parse(AC).expect("sid"),
        CallSid::parse(CA).expect("sid"),
    );
    let token = mint_call_token(&creds, &ac, &ca, unix_now(), 300).expect("minted");
    let handshake = relay_handshake(CA, token.expose());

    let both = authorizer_state(&[("STREAM_GATE_PROTOCOLS", "media-streams,conversation-relay")]);
    let (r, reason) = authorize(&both, handshake.clone()).await;
    assert_eq!(
        (effect(&r), reason),
        ((IamPolicyEffect::Allow, ARN.into()), None)
    );
    // `v1.<expiry>.<mac>`: the setup claims this very token.
    let expires_at = token.expose().split('.').nth(1).expect("expiry");
    assert_eq!(
        r.context,
        json!({"protocol": "conversation-relay", "accountSid": AC, "callSid": CA,
               "callTokenExpiresAt": expires_at,
               "authMethod": "twilio-signature", "credential": "twilioAccounts[0].authTokens[0]"})
    );
    // The default stack admits Media Streams only.
    let media_only = authorizer_state(&[]);
    let (r, reason) = authorize(&media_only, handshake).await;
    assert_eq!(effect(&r).0, IamPolicyEffect::Deny);
    assert_eq!(reason, Some(DenyReason::ProtocolNotEnabled));
    // The same signed URL with another call's SID in the query is not what Twilio signed.
    let mut forged = relay_handshake(CA, token.expose());
    forged["queryStringParameters"]["callSid"] = json!("CA00000000000000000000000000000002");
    forged["multiValueQueryStringParameters"]["callSid"] =
        json!(["CA00000000000000000000000000000002"]);
    assert_eq!(
        authorize(&both, forged).await.1,
        Some(DenyReason::SignatureMismatch)
    );
}

#[tokio::test]
async fn authorizer_denies_with_the_exact_reason() {
    let state = authorizer_state(&[]);
    for (file, expected) in [
        (
            "authorizer-unauthenticated.json",
            DenyReason::SignatureMissing,
        ),
        (
            "authorizer-bad-signature.json",
            DenyReason::SignatureMismatch,
        ),
    ] {
        let (r, reason) = authorize(&state, event(file)).await;
        assert_eq!(effect(&r), (IamPolicyEffect::Deny, ARN.into()), "{file}");
        assert_eq!(reason, Some(expected), "{file}");
        assert_eq!(r.context, json!({}), "a deny carries no context");
    }

    // Header names are case-insensitive; a repeated, differing signature header is refused.
    let mut e = event("authorizer-signed.json");
    let sig = e["headers"]["X-Twilio-Signature"].clone();
    e["headers"] = json!({"x-twilio-signature": sig});
    e["multiValueHeaders"] = json!({"X-TWILIO-SIGNATURE": [sig]});
    assert_eq!(authorize(&state, e.clone()).await.1, None);
    e["multiValueHeaders"] = json!({"X-Twilio-Signature": [sig, "YFfwGS2Ev7f9qAP9MmRoMS7C724="]});
    assert_eq!(
        authorize(&state, e).await.1,
        Some(DenyReason::SignatureMalformed)
    );

    // Without the domain name the signed URL is unknown; without a methodArn there is nothing to
    // allow: deny, never a Lambda error.
    let mut e = event("authorizer-signed.json");
    e["requestContext"]
        .as_object_mut()
        .map(|o| o.remove("domainName"));
    assert_eq!(
        authorize(&state, e).await.1,
        Some(DenyReason::RequestIncomplete)
    );
    let mut e = event("authorizer-signed.json");
    e["methodArn"] = json!("not-an-arn");
    let (r, reason) = authorize(&state, e).await;
    assert_eq!(reason, Some(DenyReason::RequestIncomplete));
    assert_eq!(effect(&r), (IamPolicyEffect::Deny, "*".into()));
}

#[tokio::test]
async fn authorizer_header_and_url_edges() {
    let state = authorizer_state(&[]);
    // `handle` answers with `decide`'s response.
    let r = authorizer::handle(&state, authorizer_event(event("authorizer-signed.json"))).await;
    assert_eq!(effect(&r), (IamPolicyEffect::Allow, ARN.into()));
    assert_eq!(r.principal_id.as_deref(), Some(AC));

    // The same signature twice is one signature.
    let mut e = event("authorizer-signed.json");
    let sig = e["headers"]["X-Twilio-Signature"].clone();
    e["multiValueHeaders"]["X-Twilio-Signature"] = json!([sig, sig]);
    assert_eq!(authorize(&state, e).await.1, None);

    // A signature header that is not visible ASCII is a malformed signature, not a missing one.
    for place in ["headers", "multiValueHeaders"] {
        let mut e = event("authorizer-signed.json");
        let o = e[place].as_object_mut().expect("headers");
        o.remove("X-Twilio-Signature");
        let value = if place == "headers" {
            json!("GpO6QAZTtQNIoTo8/7Esg\u{e9}Heb8A=")
        } else {
            json!(["GpO6QAZTtQNIoTo8/7Esg\u{e9}Heb8A="])
        };
        o.insert("X-Twilio-Signature".into(), value);
        let other = if place == "headers" {
            "multiValueHeaders"
        } else {
            "headers"
        };
        e[other]
            .as_object_mut()
            .map(|o| o.remove("X-Twilio-Signature"));
        assert_eq!(
            authorize(&state, e).await.1,
            Some(DenyReason::SignatureMalformed),
            "{place}"
        );
    }

    // An empty stage or domain name leaves the signed URL unknown.
    for (field, value) in [("stage", ""), ("domainName", "")] {
        let mut e = event("authorizer-signed.json");
        e["requestContext"][field] = json!(value);
        assert_eq!(
            authorize(&state, e).await.1,
            Some(DenyReason::RequestIncomplete),
            "{field}"
        );
    }
    assert_eq!(
        authorizer::signed_url(None, Some("gate.example.com"), Some("prod")).as_deref(),
        Some("wss://gate.example.com/prod")
    );
    assert_eq!(
        authorizer::signed_url(None, Some("gate.example.com"), Some("")),
        None
    );
    assert_eq!(authorizer::signed_url(None, Some(""), Some("prod")), None);
    assert_eq!(authorizer::signed_url(None, None, Some("prod")), None);
    assert_eq!(
        authorizer::signed_url(Some("wss://x/y"), None, None).as_deref(),
        Some("wss://x/y")
    );
}

#[tokio::test]
async fn authorizer_auth_mode_and_public_url_come_from_configuration() {
    let signature = authorizer_state(&[("STREAM_GATE_AUTH_MODE", "signature")]);
    assert_eq!(
        authorize(&signature, event("authorizer-token.json"))
            .await
            .1,
        Some(DenyReason::SignatureMissing)
    );
    let token = authorizer_state(&[("STREAM_GATE_AUTH_MODE", "token")]);
    assert_eq!(
        authorize(&token, event("authorizer-signed.json")).await.1,
        Some(DenyReason::StreamTokenMissing)
    );
    // A configured public URL replaces the event's: the event's signature no longer matches it.
    let custom = authorizer_state(&[("STREAM_GATE_PUBLIC_URL", "wss://gate.example.com/prod")]);
    assert_eq!(
        authorize(&custom, event("authorizer-signed.json")).await.1,
        Some(DenyReason::SignatureMismatch)
    );
}

#[tokio::test]
async fn authorizer_fails_closed_without_credentials() {
    let state = AuthorizerState {
        config: AuthorizerConfig::from_lookup(lookup(&[])).expect("config"),
        credentials: Arc::new(CredentialCache::empty()),
    };
    let (r, reason) = authorize(&state, event("authorizer-signed.json")).await;
    assert_eq!(effect(&r).0, IamPolicyEffect::Deny);
    assert_eq!(reason, Some(DenyReason::CredentialsUnavailable));

    let broken =
        stream_gate_domain::Secret::new(r#"{"twilioAccounts":[{"accountSid":"AC0123"}]}"#.into());
    let state = AuthorizerState {
        config: AuthorizerConfig::from_lookup(lookup(&[])).expect("config"),
        credentials: Arc::new(CredentialCache::new(
            Box::new(StaticSource::new(broken)),
            Duration::from_secs(300),
            Duration::from_secs(300),
        )),
    };
    assert_eq!(
        authorize(&state, event("authorizer-signed.json")).await.1,
        Some(DenyReason::CredentialsUnavailable)
    );
}

// Shared-key signatures (Twilio's Webhooks configuration API), computed by Twilio's own Python
// library: accepted at the handshake and at the webhook; wrong key id, wrong or missing algorithm
// and SHA1/SHA256 confusion refused with their own reason codes.
const SHARED_KEY_ID: &str = "KStestonly00000000000000000000001";
const SHARED_KEY: &str = "test-only-shared-key-secret-sha";
const SETTINGS: &str = "X-Twilio-Webhooks-Signature-Settings";
const HANDSHAKE_URL: &str = "wss://abc123.execute-api.us-east-1.amazonaws.com/prod";

fn with_shared_key(mut e: Value, signature: &str, settings: &str, header_map: &str) -> Value {
    if let Some(h) = e[header_map].as_object_mut() {
        h.retain(|name, _| !name.eq_ignore_ascii_case("x-twilio-signature"));
    }
    e[header_map]["X-Twilio-Signature"] = json!(signature);
    e[header_map][SETTINGS] = json!(settings);
    e
}

#[tokio::test]
async fn shared_key_signatures_from_twilios_library_at_the_handshake() {
    use stream_gate_testkit::oracle::twilio_signature;
    let state = authorizer_state(&[]);
    let handshake = |sig: &str, settings: &str| {
        let mut e = event("authorizer-unauthenticated.json");
        e["multiValueHeaders"] = json!({});
        let mut e = with_shared_key(e, sig, settings, "headers");
        e["multiValueHeaders"] = json!({});
        e
    };
    for alg in ["HMAC_SHA256", "HMAC_SHA1"] {
        let sig = twilio_signature(SHARED_KEY, HANDSHAKE_URL, &[], alg);
        let settings = format!("key={SHARED_KEY_ID},algorithm={alg}");
        let (r, reason) = authorize(&state, handshake(&sig, &settings)).await;
        assert_eq!(reason, None, "{alg}");
        assert_eq!(r.context["credential"], "twilioAccounts[0].sharedKeys[0]");
        assert_eq!(r.context["authMethod"], "twilio-signature");
    }
    let sha1 = twilio_signature(SHARED_KEY, HANDSHAKE_URL, &[], "HMAC_SHA1");
    let sha256 = twilio_signature(SHARED_KEY, HANDSHAKE_URL, &[], "HMAC_SHA256");
    for (sig, settings, expected) in [
        (
            &sha256,
            "key=KSother,algorithm=HMAC_SHA256".to_owned(),
            DenyReason::SharedKeyUnknown,
        ),
        (
            &sha256,
            format!("key={SHARED_KEY_ID}"),
            DenyReason::SharedKeyAlgorithmMissing,
        ),
        (
            &sha256,
            format!("key={SHARED_KEY_ID},algorithm=HMAC_SHA512"),
            DenyReason::SharedKeyAlgorithmUnsupported,
        ),
        (
            &sha1,
            format!("key={SHARED_KEY_ID},algorithm=HMAC_SHA256"),
            DenyReason::SignatureMismatch,
        ),
        (
            &sha256,
            format!("key={SHARED_KEY_ID},algorithm=HMAC_SHA1"),
            DenyReason::SignatureMismatch,
        ),
    ] {
        let (_, reason) = authorize(&state, handshake(sig, &settings)).await;
        assert_eq!(reason, Some(expected), "settings {settings}");
    }
}
