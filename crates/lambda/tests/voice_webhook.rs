//! The real `voice-webhook` binary through the Lambda Runtime API: a signed webhook gets TwiML whose
//! call token the router's decision accepts for that call only; everything else is refused.

use stream_gate_testkit as support;

use base64::Engine as _;
use serde_json::{json, Value};
use stream_gate_domain::verdict::{judge_frame, CallTokenPolicy, Verdict};
use stream_gate_domain::{
    compute_signature, messages, AccountSid, CallSid, Credentials, StreamSid,
};
use support::{repo_file, Function};

const WEBHOOK: &str = env!("CARGO_BIN_EXE_voice-webhook");
const AC: &str = "ACdeadbeefdeadbeefdeadbeefdeadbeef";
const TOKEN: &str = "test-only-auth-token-not-a-secret";
const CA: &str = "CA0123456789abcdef0123456789abcdef";
const URL: &str = "https://hooks.example.com/voice";
const STREAM: &str = "wss://gate.example.com/prod";

fn form(params: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish()
}

/// An API Gateway HTTP API (payload 2.0) event, as Function URLs also send.
fn http_event(method: &str, sig: Option<&str>, body: &str, b64: bool) -> Value {
    let mut headers =
        json!({"host": "hooks.example.com", "content-type": "application/x-www-form-urlencoded"});
    if let Some(s) = sig {
        headers["x-twilio-signature"] = json!(s);
    }
    let body = if b64 {
        base64::engine::general_purpose::STANDARD.encode(body)
    } else {
        body.to_owned()
    };
    json!({
        "version": "2.0", "routeKey": "POST /voice", "rawPath": "/voice", "rawQueryString": "",
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012", "apiId": "abc123", "domainName": "hooks.example.com",
            "domainPrefix": "hooks", "requestId": "r1", "routeKey": "POST /voice", "stage": "$default",
            "time": "28/Nov/2026:19:00:00 +0000", "timeEpoch": 1795892400000u64,
            "http": {"method": method, "path": "/voice", "protocol": "HTTP/1.1",
                     "sourceIp": "203.0.113.9", "userAgent": "TwilioProxy/1.1"}
        },
        "body": body, "isBase64Encoded": b64
    })
}

async fn start() -> Function {
    let path = repo_file("events/credentials.test.json")
        .display()
        .to_string();
    Function::start(
        WEBHOOK,
        &[
            ("STREAM_GATE_SECRET_FILE", &path),
            ("STREAM_GATE_STREAM_URL", STREAM),
            ("STREAM_GATE_WEBHOOK_URL", URL),
        ],
    )
    .await
}

fn token_from(twiml: &str) -> String {
    let marker = "<Parameter name=\"token\" value=\"";
    let at = twiml.find(marker).expect("token parameter") + marker.len();
    let end = twiml[at..].find('"').expect("end quote");
    twiml[at..at + end].to_owned()
}

fn judge(token: &str, call: &str) -> Verdict {
    let doc = std::fs::read_to_string(repo_file("events/credentials.test.json")).expect("doc");
    let creds = Credentials::from_json(&doc).expect("creds");
    let ac = AccountSid::parse(AC).expect("ac");
    let frame = messages::start(
        &ac,
        &CallSid::parse(call).expect("ca"),
        &StreamSid::parse("MZ0123456789abcdef0123456789abcdef").expect("mz"),
        Some(token),
    );
    let now = stream_gate_lambda::clock::unix_now();
    judge_frame(
        frame.as_bytes(),
        &ac,
        CallTokenPolicy::Required,
        Some(&creds),
        now,
    )
}

fn status(v: &Value) -> u64 {
    v["statusCode"].as_u64().unwrap_or(0)
}

#[tokio::test]
async fn signed_webhook_gets_twiml_with_a_token_for_that_call_only() {
    let f = start().await;
    let params = [
        ("AccountSid", AC),
        ("CallSid", CA),
        ("From", "+15551230000"),
        ("To", "+15559870000"),
    ];
    let sig = compute_signature(TOKEN, URL, &params);
    for b64 in [false, true] {
        let r = f
            .respond(http_event("POST", Some(&sig), &form(&params), b64))
            .await;
        assert_eq!(status(&r), 200, "{r}");
        assert_eq!(r["headers"]["content-type"], "text/xml");
        let body = r["body"].as_str().expect("body");
        assert!(
            body.contains(&format!("<Connect><Stream url=\"{STREAM}\">")),
            "{body}"
        );
        assert!(body.contains("<Parameter name=\"from\" value=\"+15551230000\"/>"));
        let token = token_from(body);
        assert!(matches!(judge(&token, CA), Verdict::Accept(_)));
        match judge(&token, "CAffffffffffffffffffffffffffffffff") {
            Verdict::Close(reason) => assert_eq!(reason.code(), "call_token_invalid"),
            other => panic!("another call must be refused: {other:?}"),
        }
        assert_eq!(f.last_reason().await.as_deref(), Some("webhook_signed"));
        // The token never reaches the logs.
        assert!(!f.output().await.iter().any(|l| l.contains(&token)));
    }
}

#[tokio::test]
async fn unsigned_wrongly_signed_unknown_account_and_get_are_refused() {
    let f = start().await;
    let params = [("AccountSid", AC), ("CallSid", CA)];
    let body = form(&params);

    let r = f.respond(http_event("POST", None, &body, false)).await;
    assert_eq!((status(&r), r["body"].as_str().unwrap_or("")), (403, ""));
    assert_eq!(
        f.last_reason().await.as_deref(),
        Some("webhook_signature_missing")
    );

    let wrong = compute_signature("not-the-token", URL, &params);
    let r = f
        .respond(http_event("POST", Some(&wrong), &body, false))
        .await;
    assert_eq!((status(&r), r["body"].as_str().unwrap_or("")), (403, ""));
    assert_eq!(
        f.last_reason().await.as_deref(),
        Some("webhook_signature_mismatch")
    );

    // Signed for other parameters (tampered body).
    let other = compute_signature(
        TOKEN,
        URL,
        &[
            ("AccountSid", AC),
            ("CallSid", "CAffffffffffffffffffffffffffffffff"),
        ],
    );
    let r = f
        .respond(http_event("POST", Some(&other), &body, false))
        .await;
    assert_eq!(status(&r), 403);
    assert_eq!(
        f.last_reason().await.as_deref(),
        Some("webhook_signature_mismatch")
    );

    let stranger = [
        ("AccountSid", "AC00000000000000000000000000000000"),
        ("CallSid", CA),
    ];
    let sig = compute_signature(TOKEN, URL, &stranger);
    let r = f
        .respond(http_event("POST", Some(&sig), &form(&stranger), false))
        .await;
    assert_eq!(status(&r), 403);
    assert_eq!(
        f.last_reason().await.as_deref(),
        Some("webhook_unknown_account")
    );

    let sig = compute_signature(TOKEN, URL, &params);
    let r = f.respond(http_event("GET", Some(&sig), "", false)).await;
    assert_eq!(status(&r), 405);
    assert_eq!(f.last_reason().await.as_deref(), Some("method_not_allowed"));
}

#[tokio::test]
async fn the_events_document_is_signed_for_the_test_credentials() {
    let f = start().await;
    let r = f.respond(support::event("voice-webhook.json")).await;
    assert_eq!(status(&r), 200, "{r}");
}
