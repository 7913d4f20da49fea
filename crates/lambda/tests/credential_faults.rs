//! Credential-store faults, end to end: the real `authorizer` binary, its real AWS SDK client, a
//! fault-injecting proxy and moto (Secrets Manager) behind it, all on loopback.
//!
//! Each fault is shown three ways: a fresh instance (no good document yet) denies every handshake;
//! an instance holding a good document keeps it for the bounded grace period and then denies; both
//! recover once the store does. Every invocation ends well inside the 5 s Lambda timeout, retries
//! are bounded (2 attempts), and the distinctive secrets of the documents never reach the output.

use stream_gate_testkit as support;

use std::time::{Duration, Instant};

use aws_sdk_secretsmanager::config::{Credentials, Region};
use aws_sdk_secretsmanager::Client;
use serde_json::Value;
use stream_gate_domain::compute_signature;
use support::fault_proxy::{Fault, FaultProxy};
use support::moto::{moto, Moto};
use support::{event, Function};

const AUTHORIZER: &str = env!("CARGO_BIN_EXE_authorizer");
const SECRET: &str = "stream-gate/faults";
const URL: &str = "wss://abc123.execute-api.us-east-1.amazonaws.com/prod";
const AUTH_TOKEN: &str = "FAULT-auth-token-5d1e8c2a-DO-NOT-LOG";
const STREAM_TOKEN: &str = "FAULT-stream-token-0b7c4e91f2a3-DO-NOT-LOG";
/// base64url of "FAULT-call-token-key-9a4f01b37c2d" (33 bytes).
const CALL_KEY: &str = "RkFVTFQtY2FsbC10b2tlbi1rZXktOWE0ZjAxYjM3YzJk";
const BROKEN_DOC_TOKEN: &str = "FAULT-broken-doc-token-77ee-DO-NOT-LOG";
/// The Lambda timeout of template.yaml; no invocation may come near it.
const LAMBDA_TIMEOUT: Duration = Duration::from_secs(5);
/// STREAM_GATE_SECRET_TTL_SECS (also the retry interval after a failure) and the grace period.
const TTL: Duration = Duration::from_secs(1);
const MAX_STALE: Duration = Duration::from_secs(4);

fn good_doc() -> String {
    format!(
        r#"{{"twilioAccounts":[{{"accountSid":"ACdeadbeefdeadbeefdeadbeefdeadbeef","authTokens":["{AUTH_TOKEN}"]}}],
            "streamTokens":[{{"token":"{STREAM_TOKEN}","accountSid":"ACdeadbeefdeadbeefdeadbeefdeadbeef"}}],
            "callTokenKeys":["{CALL_KEY}"]}}"#
    )
}

fn broken_doc() -> String {
    format!(r#"{{"twilioAccounts":[{{"accountSid":"AC1","authTokens":["{BROKEN_DOC_TOKEN}"]}}]}}"#)
}

fn admin(m: &Moto) -> Client {
    let conf = aws_sdk_secretsmanager::Config::builder()
        .behavior_version(aws_sdk_secretsmanager::config::BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(&m.endpoint)
        .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
        .build();
    Client::from_conf(conf)
}

async fn put(c: &Client, doc: &str, create: bool) {
    if create {
        c.create_secret()
            .name(SECRET)
            .secret_string(doc)
            .send()
            .await
            .expect("create");
    } else {
        c.put_secret_value()
            .secret_id(SECRET)
            .secret_string(doc)
            .send()
            .await
            .expect("put");
    }
}

async fn authorizer(proxy: &FaultProxy) -> Function {
    let (ttl, stale) = (TTL.as_secs().to_string(), MAX_STALE.as_secs().to_string());
    Function::start(
        AUTHORIZER,
        &[
            ("STREAM_GATE_SECRET_ID", SECRET),
            ("AWS_ENDPOINT_URL", &proxy.url),
            ("STREAM_GATE_SECRET_TTL_SECS", &ttl),
            ("STREAM_GATE_SECRET_MAX_STALE_SECS", &stale),
            ("STREAM_GATE_AUTH_MODE", "signature"),
        ],
    )
    .await
}

/// One signed handshake: `allow`, or the deny reason; and how long the invocation took.
async fn handshake(f: &Function) -> (String, Duration) {
    let mut e = event("authorizer-signed.json");
    let sig = Value::from(compute_signature(AUTH_TOKEN, URL, &[]));
    e["headers"]["X-Twilio-Signature"] = sig.clone();
    e["multiValueHeaders"]["X-Twilio-Signature"] = Value::Array(vec![sig]);
    let started = Instant::now();
    let r = f.respond(e).await;
    let took = started.elapsed();
    assert!(
        took < LAMBDA_TIMEOUT - Duration::from_millis(500),
        "an invocation took {took:?}"
    );
    let outcome = match r["policyDocument"]["Statement"][0]["Effect"].as_str() {
        Some("Allow") => "allow".to_owned(),
        _ => f.last_reason().await.unwrap_or_default(),
    };
    (outcome, took)
}

/// Waits out the retry interval after a failed fetch (= the TTL here).
async fn next_fetch_due() {
    tokio::time::sleep(TTL + Duration::from_millis(150)).await;
}

/// All output of `functions` holds `codes` (so the capture is real) and none of the secrets.
async fn assert_logged_without_secrets(functions: &[&Function], codes: &[&str]) {
    let mut all = String::new();
    for f in functions {
        all.push_str(&f.output().await.join("\n"));
    }
    for code in codes {
        assert!(all.contains(code), "{code} not logged");
    }
    for secret in [AUTH_TOKEN, STREAM_TOKEN, CALL_KEY, BROKEN_DOC_TOKEN] {
        assert!(!all.contains(secret), "a secret reached the output");
    }
}

#[tokio::test]
async fn each_store_fault_denies_a_fresh_instance_within_bounds_and_recovers() {
    let m = moto().await;
    let proxy = FaultProxy::start(&m.endpoint).await;
    put(&admin(&m), &good_doc(), true).await;
    let mut functions = Vec::new();
    // (fault, GetSecretValue requests one fetch may make, the code the log must name)
    let faults = [
        (
            Fault::Error(400, "ThrottlingException"),
            2,
            "ThrottlingException",
        ),
        (
            Fault::Error(500, "InternalServiceError"),
            2,
            "InternalServiceError",
        ),
        (
            Fault::Error(503, "ServiceUnavailable"),
            2,
            "ServiceUnavailable",
        ),
        (
            Fault::Error(400, "AccessDeniedException"),
            1,
            "AccessDeniedException",
        ),
        (Fault::Delay(Duration::from_secs(30)), 2, "timeout"),
    ];
    for (fault, max_gets, code) in faults {
        let f = authorizer(&proxy).await;
        proxy.set(fault.clone());
        let before = proxy.gets();
        let (outcome, _) = handshake(&f).await;
        assert_eq!(outcome, "credentials_unavailable", "{fault:?}");
        let made = proxy.gets() - before;
        assert!((1..=max_gets).contains(&made), "{fault:?}: {made} requests");
        // Within the retry interval the store is not asked again: deny at once.
        let (outcome, took) = handshake(&f).await;
        assert_eq!(outcome, "credentials_unavailable");
        assert!(took < Duration::from_millis(500), "{fault:?}: {took:?}");
        assert_eq!(
            proxy.gets() - before,
            made,
            "{fault:?}: no request before the retry is due"
        );

        proxy.set(Fault::Pass);
        next_fetch_due().await;
        assert_eq!(handshake(&f).await.0, "allow", "recovers from {fault:?}");
        assert_logged_without_secrets(&[&f], &[code]).await;
        functions.push(f);
    }
}

/// moto with the good document, the proxy in front, and an authorizer that has loaded it.
struct Holding {
    _moto: Moto,
    proxy: FaultProxy,
    sm: Client,
    holder: Function,
    loaded: Instant,
}

async fn holding_a_good_document() -> Holding {
    let m = moto().await;
    let proxy = FaultProxy::start(&m.endpoint).await;
    let sm = admin(&m);
    put(&sm, &good_doc(), true).await;
    let holder = authorizer(&proxy).await;
    assert_eq!(handshake(&holder).await.0, "allow");
    Holding {
        _moto: m,
        proxy,
        sm,
        holder,
        loaded: Instant::now(),
    }
}

async fn past_the_grace_period(loaded: Instant) {
    let until = loaded + MAX_STALE + Duration::from_millis(200);
    tokio::time::sleep(until.saturating_duration_since(Instant::now())).await;
}

#[tokio::test]
async fn a_deleted_secret_is_survived_for_the_grace_period_only() {
    let Holding {
        _moto,
        proxy,
        sm,
        holder,
        loaded,
    } = holding_a_good_document().await;

    sm.delete_secret()
        .secret_id(SECRET)
        .force_delete_without_recovery(true)
        .send()
        .await
        .expect("delete");
    next_fetch_due().await;
    assert_eq!(
        handshake(&holder).await.0,
        "allow",
        "last good document, within grace"
    );
    let fresh = authorizer(&proxy).await;
    assert_eq!(handshake(&fresh).await.0, "credentials_unavailable");

    past_the_grace_period(loaded).await;
    assert_eq!(
        handshake(&holder).await.0,
        "credentials_unavailable",
        "grace is bounded"
    );

    put(&sm, &good_doc(), true).await;
    next_fetch_due().await;
    assert_eq!(handshake(&holder).await.0, "allow");
    assert_eq!(handshake(&fresh).await.0, "allow");
    assert_logged_without_secrets(
        &[&holder, &fresh],
        &["ResourceNotFoundException", "credentials_expired"],
    )
    .await;
}

#[tokio::test]
async fn a_rotation_to_an_invalid_document_keeps_the_last_good_one_for_the_grace_period() {
    let Holding {
        _moto,
        proxy,
        sm,
        holder,
        loaded,
    } = holding_a_good_document().await;

    put(&sm, &broken_doc(), false).await;
    next_fetch_due().await;
    assert_eq!(handshake(&holder).await.0, "allow");
    let fresh = authorizer(&proxy).await;
    assert_eq!(handshake(&fresh).await.0, "credentials_unavailable");

    // A slow store while a good document is held: the fetch is cut at its bound, the decision
    // still made from the last good document.
    proxy.set(Fault::Delay(Duration::from_secs(30)));
    next_fetch_due().await;
    assert_eq!(handshake(&holder).await.0, "allow");
    proxy.set(Fault::Pass);

    past_the_grace_period(loaded).await;
    assert_eq!(handshake(&holder).await.0, "credentials_unavailable");

    put(&sm, &good_doc(), false).await;
    next_fetch_due().await;
    assert_eq!(handshake(&holder).await.0, "allow");
    assert_eq!(handshake(&fresh).await.0, "allow");
    assert_logged_without_secrets(
        &[&holder, &fresh],
        &[
            "credentials_refused",
            "twilioAccounts[0].accountSid",
            "credentials_expired",
        ],
    )
    .await;
}
