//! The real `authorizer` and `router` binaries, run through the Lambda Runtime API with the
//! `events/` documents the README tells users to invoke: the wiring (environment, init, the real
//! SDK client, logs). Scenario coverage of the handlers is in-process, in
//! `authorizer_handler.rs`, `router_handler.rs` and `webhook_handler.rs`.

use stream_gate_testkit as support;

use axum::http::StatusCode;
use serde_json::{json, Value};
use stream_gate_testkit::fake_runtime_api::Invocation;
use support::{event, repo_file, Function, ManagementEndpoint};

const AUTHORIZER: &str = env!("CARGO_BIN_EXE_authorizer");
const ROUTER: &str = env!("CARGO_BIN_EXE_router");
const WEBHOOK: &str = env!("CARGO_BIN_EXE_voice-webhook");
const AC: &str = "ACdeadbeefdeadbeefdeadbeefdeadbeef";
const ARN: &str = "arn:aws:execute-api:us-east-1:123456789012:abc123/prod/$connect";

fn creds_path() -> String {
    repo_file("events/credentials.test.json")
        .display()
        .to_string()
}

fn effect(resp: &Value) -> (&str, &str) {
    let st = &resp["policyDocument"]["Statement"];
    assert_eq!(
        st.as_array().map(Vec::len),
        Some(1),
        "exactly one statement: {resp}"
    );
    (
        st[0]["Effect"].as_str().unwrap_or("<missing>"),
        st[0]["Resource"][0].as_str().unwrap_or("<missing>"),
    )
}

#[tokio::test]
async fn authorizer_binary_allows_and_denies_through_the_runtime_api() {
    let path = creds_path();
    let f = Function::start(
        AUTHORIZER,
        &[
            ("STREAM_GATE_SECRET_FILE", &path),
            ("STREAM_GATE_AUTH_MODE", "either"),
        ],
    )
    .await;

    let r = f.respond(event("authorizer-signed.json")).await;
    assert_eq!(effect(&r), ("Allow", ARN));
    assert_eq!(r["principalId"], AC);
    assert_eq!(
        r["context"],
        json!({"protocol": "media-streams", "accountSid": AC, "authMethod": "twilio-signature", "credential": "twilioAccounts[0].authTokens[0]"})
    );

    let r = f.respond(event("authorizer-token.json")).await;
    assert_eq!(effect(&r), ("Allow", ARN));
    assert_eq!(r["context"]["authMethod"], "stream-token");
    assert_eq!(r["context"]["credential"], "streamTokens[0]");

    let r = f.respond(event("authorizer-unauthenticated.json")).await;
    assert_eq!(effect(&r), ("Deny", ARN));
    assert_eq!(f.last_reason().await.as_deref(), Some("signature_missing"));

    let r = f.respond(event("authorizer-bad-signature.json")).await;
    assert_eq!(effect(&r), ("Deny", ARN));
    assert_eq!(f.last_reason().await.as_deref(), Some("signature_mismatch"));
}

/// No security setting defaults to the weaker choice (issue 22): an authorizer started without
/// `STREAM_GATE_AUTH_MODE` is as strict as the template's default, `signature`: a stream token
/// alone no longer opens a connection.
#[tokio::test]
async fn authorizer_without_auth_mode_requires_the_signature() {
    let path = creds_path();
    let f = Function::start(AUTHORIZER, &[("STREAM_GATE_SECRET_FILE", &path)]).await;
    let r = f.respond(event("authorizer-signed.json")).await;
    assert_eq!(effect(&r), ("Allow", ARN));
    let r = f.respond(event("authorizer-token.json")).await;
    assert_eq!(effect(&r), ("Deny", ARN));
    assert_eq!(f.last_reason().await.as_deref(), Some("signature_missing"));
}

#[tokio::test]
async fn authorizer_fails_closed_without_a_valid_document() {
    let f = Function::start(AUTHORIZER, &[]).await;
    assert_eq!(
        effect(&f.respond(event("authorizer-signed.json")).await).0,
        "Deny"
    );
    assert_eq!(
        f.last_reason().await.as_deref(),
        Some("credentials_unavailable")
    );

    let dir = std::env::temp_dir().join(format!("sg-bad-doc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let bad = dir.join("creds.json");
    std::fs::write(
        &bad,
        r#"{"twilioAccounts":[{"accountSid":"AC0123","authTokens":["distinctive-value-xyz"]}]}"#,
    )
    .expect("write");
    let bad = bad.display().to_string();
    let f = Function::start(AUTHORIZER, &[("STREAM_GATE_SECRET_FILE", &bad)]).await;
    assert_eq!(
        effect(&f.respond(event("authorizer-signed.json")).await).0,
        "Deny"
    );
    assert_eq!(
        f.last_reason().await.as_deref(),
        Some("credentials_unavailable")
    );
    let out = f.output().await.join("\n");
    assert!(
        out.contains("twilioAccounts[0].accountSid"),
        "names the field: {out}"
    );
    assert!(
        !out.contains("distinctive-value-xyz") && !out.contains("AC0123\""),
        "never the value: {out}"
    );

    // A bad setting stops the function at init, reported to /init/error: API Gateway then denies.
    let mut f = Function::start(AUTHORIZER, &[("STREAM_GATE_AUTH_MODE", "everything")]).await;
    let answer = f
        .api
        .invoke(
            event("authorizer-signed.json"),
            std::time::Duration::from_secs(3),
        )
        .await;
    assert!(
        !matches!(answer, Ok(Invocation::Response(_))),
        "no answer from a misconfigured function"
    );
    assert_init_error_reported(&mut f, "STREAM_GATE_AUTH_MODE", "everything").await;
}

/// A function that cannot start has exited non-zero without asking for an event, after posting
/// to `/runtime/init/error` a `Runtime.ConfigError` that names `variable` and not `value`, and
/// logging it at ERROR.
async fn assert_init_error_reported(f: &mut Function, variable: &str, value: &str) -> String {
    let status = f
        .exit_status(std::time::Duration::from_secs(20))
        .await
        .expect("a function that cannot start exits");
    assert!(!status.success(), "{status}");
    let reported = f.api.init_error().expect("reported to /runtime/init/error");
    assert_eq!(reported.error_type.as_deref(), Some("Runtime.ConfigError"));
    assert_eq!(reported.body["errorType"], "Runtime.ConfigError");
    let message = reported.body["errorMessage"]
        .as_str()
        .expect("errorMessage")
        .to_owned();
    assert!(message.starts_with(&format!("{variable}: ")), "{message}");
    assert!(!message.contains(value), "never the value: {message}");
    assert_eq!(f.api.next_calls(), 0, "it never asked for an event");
    let lines = f.output().await;
    let logged = lines
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["event"] == "init_error")
        .unwrap_or_else(|| panic!("init_error logged: {lines:?}"));
    assert_eq!(logged["level"], "ERROR");
    assert_eq!(logged["error_message"], message.as_str());
    assert!(
        !lines.join("\n").contains(value),
        "never the value: {lines:?}"
    );
    message
}

/// Issue 22: a router with an unusable `STREAM_GATE_CALL_STATE` refuses to start, says why
/// through the Runtime API, and exits non-zero without serving anything.
#[tokio::test]
async fn router_with_an_invalid_call_state_reports_init_error() {
    let path = creds_path();
    let bogus = "bogus-call-state-xyz";
    let mut f = Function::start(
        ROUTER,
        &[
            ("STREAM_GATE_SECRET_FILE", &path),
            ("STREAM_GATE_CALL_STATE", bogus),
        ],
    )
    .await;
    let message = assert_init_error_reported(&mut f, "STREAM_GATE_CALL_STATE", bogus).await;
    assert!(message.contains("dynamodb, memory or off"), "{message}");
}

/// Issue 22 item 1: with no `STREAM_GATE_CALL_STATE` at all the router refuses to start, as with
/// a bad one (there is no weaker default to fall back on).
#[tokio::test]
async fn router_without_call_state_reports_init_error() {
    let path = creds_path();
    // `Function::start` clears the environment: STREAM_GATE_CALL_STATE is unset.
    let mut f = Function::start(ROUTER, &[("STREAM_GATE_SECRET_FILE", &path)]).await;
    let message = assert_init_error_reported(&mut f, "STREAM_GATE_CALL_STATE", "\u{0}unset").await;
    assert!(message.contains("dynamodb, memory or off"), "{message}");
}

/// The voice webhook (lambda_http) reports its init error the same way, before lambda_http starts.
#[tokio::test]
async fn voice_webhook_with_a_bad_stream_url_reports_init_error() {
    let path = creds_path();
    let bad = "http://not-a-websocket-xyz.example";
    let mut f = Function::start(
        WEBHOOK,
        &[
            ("STREAM_GATE_SECRET_FILE", &path),
            ("STREAM_GATE_STREAM_URL", bad),
        ],
    )
    .await;
    assert_init_error_reported(&mut f, "STREAM_GATE_STREAM_URL", bad).await;
}

/// The AWS SDK configuration is loaded on the first call to AWS, not at init (issue 14): loading it
/// builds an HTTPS client that reads the whole certificate store, and every cold start paid for
/// that before its first answer. The trap: the AWS config and credentials files are FIFOs with no
/// writer, so a process that opens either blocks for ever and answers nothing. An authorizer and
/// a router that answer their events (credentials from a file, nothing to close) never opened them.
#[tokio::test]
async fn functions_that_call_no_aws_service_never_load_the_sdk_configuration() {
    let dir = std::env::temp_dir().join(format!("sg-fifo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let (config, credentials) = (dir.join("config"), dir.join("credentials"));
    for fifo in [&config, &credentials] {
        let _ = std::fs::remove_file(fifo);
        let made = std::process::Command::new("mkfifo").arg(fifo).status();
        assert!(made.is_ok_and(|s| s.success()), "mkfifo {}", fifo.display());
    }
    let (config, credentials) = (
        config.display().to_string(),
        credentials.display().to_string(),
    );
    let path = creds_path();
    let trap = [
        ("STREAM_GATE_SECRET_FILE", path.as_str()),
        ("AWS_CONFIG_FILE", config.as_str()),
        ("AWS_SHARED_CREDENTIALS_FILE", credentials.as_str()),
        ("STREAM_GATE_CALL_STATE", "off"),
    ];

    let authorizer = Function::start(AUTHORIZER, &trap).await;
    let router = Function::start(ROUTER, &trap).await;
    let answers = async {
        let allow = authorizer.respond(event("authorizer-signed.json")).await;
        let mut statuses = Vec::new();
        for name in ["connect.json", "default-start.json", "default-media.json"] {
            statuses.push(router.respond(event(name)).await["statusCode"].clone());
        }
        (allow, statuses)
    };
    // Function::respond waits 20 s; a blocked init never answers at all.
    let (allow, statuses) = tokio::time::timeout(std::time::Duration::from_secs(30), answers)
        .await
        .expect("an init that opened the AWS config FIFO would never answer");
    assert_eq!(effect(&allow).0, "Allow");
    assert_eq!(statuses, [json!(200), json!(200), json!(200)]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn router_accepts_a_legitimate_stream_and_closes_a_wrong_account_start() {
    let mgmt = ManagementEndpoint::start(StatusCode::NO_CONTENT).await;
    let path = creds_path();
    let f = Function::start(
        ROUTER,
        &[
            ("STREAM_GATE_CALL_STATE", "off"),
            ("STREAM_GATE_SECRET_FILE", &path),
            ("STREAM_GATE_MANAGEMENT_ENDPOINT", &mgmt.url),
        ],
    )
    .await;

    assert_eq!(f.respond(event("connect.json")).await["statusCode"], 200);
    assert_eq!(
        f.respond(event("connect-no-context.json")).await["statusCode"],
        403
    );
    assert_eq!(
        f.last_reason().await.as_deref(),
        Some("no_authorizer_context")
    );
    for name in [
        "default-connected.json",
        "default-start.json",
        "default-media.json",
        "default-stop.json",
    ] {
        let r = f.respond(event(name)).await;
        assert_eq!(r["statusCode"], 200, "{name}");
        assert!(
            r.get("body").is_none_or(Value::is_null),
            "no body reaches Twilio: {r}"
        );
    }
    assert!(
        mgmt.seen().is_empty(),
        "nothing closed for a legitimate stream: {:?}",
        mgmt.seen()
    );

    let r = f.respond(event("default-start-wrong-account.json")).await;
    assert_eq!(r["statusCode"], 200);
    assert!(r.get("body").is_none_or(Value::is_null));
    assert_eq!(
        f.last_reason().await.as_deref(),
        Some("start_account_mismatch")
    );
    let seen = mgmt.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(
        (seen[0].method.as_str(), seen[0].path.as_str()),
        ("DELETE", "/prod/@connections/Xk2TmdKPIAMCJqw=")
    );
    assert!(seen[0].signed, "the real SDK client signs with SigV4");

    assert_eq!(f.respond(event("disconnect.json")).await["statusCode"], 200);
    let audit = f
        .output()
        .await
        .into_iter()
        .filter(|l| l.contains("\"audit\""))
        .collect::<Vec<_>>();
    assert_eq!(audit.len(), 1);
    assert!(
        audit[0].contains("Xk2TmdKPIAMCJqw=") && audit[0].contains(AC) && audit[0].contains("1005"),
        "{}",
        audit[0]
    );
}

/// The router's own Runtime API loop: a document that is not a WebSocket event is an invocation
/// error that names the position, never the content (it may carry a call token), and the same
/// process goes on to answer the next event.
#[tokio::test]
async fn router_reports_an_unreadable_event_as_an_invocation_error_and_goes_on() {
    let path = creds_path();
    let mut f = Function::start(
        ROUTER,
        &[
            ("STREAM_GATE_SECRET_FILE", &path),
            ("STREAM_GATE_CALL_STATE", "off"),
        ],
    )
    .await;
    let token = "v1.1795000000.dGhpcy1pcy1hLWNhbGwtdG9rZW4tbWFj";
    let mut bad = event("default-media.json");
    bad["requestContext"]["connectedAt"] = json!(token);
    for doc in [bad, json!(token), json!([1, 2])] {
        match f.invoke(doc.clone()).await {
            Invocation::Error(e) => {
                assert_eq!(e["errorType"], "Runtime.UnmarshalError", "{doc}: {e}");
                assert!(
                    e["errorMessage"]
                        .as_str()
                        .is_some_and(|m| m.contains("column")),
                    "{e}"
                );
                assert!(!e.to_string().contains(token), "{e}");
            }
            other => panic!("{doc}: {other:?}"),
        }
    }
    assert_eq!(f.respond(event("connect.json")).await["statusCode"], 200);
    assert!(f.is_running());
    let out = f.output().await.join("\n");
    assert!(out.contains("invocation_error"), "{out}");
    assert!(!out.contains(token), "{out}");
}

#[tokio::test]
async fn router_treats_gone_as_closed_and_a_failed_close_is_loud() {
    let path = creds_path();
    // 410: already gone, as good as closed; one request, no failure.
    let mgmt = ManagementEndpoint::start(StatusCode::GONE).await;
    let f = Function::start(
        ROUTER,
        &[
            ("STREAM_GATE_CALL_STATE", "off"),
            ("STREAM_GATE_SECRET_FILE", &path),
            ("STREAM_GATE_MANAGEMENT_ENDPOINT", &mgmt.url),
        ],
    )
    .await;
    let mut e = event("default-media.json");
    e["body"] = json!("{not json");
    assert_eq!(f.respond(e).await["statusCode"], 200);
    let out = f.output().await.join("\n");
    assert!(
        out.contains("AlreadyGone") && !out.contains("close_failed"),
        "{out}"
    );
    assert_eq!(mgmt.seen().len(), 1);

    // 403 (the role cannot DeleteConnection) and 500: retried once, then close_failed at ERROR
    // with the AWS error code, and the CloseFailed metric in Embedded Metric Format.
    for status in [StatusCode::FORBIDDEN, StatusCode::INTERNAL_SERVER_ERROR] {
        let mgmt = ManagementEndpoint::start(status).await;
        let mut f = Function::start(
            ROUTER,
            &[
                ("STREAM_GATE_CALL_STATE", "off"),
                ("STREAM_GATE_SECRET_FILE", &path),
                ("STREAM_GATE_MANAGEMENT_ENDPOINT", &mgmt.url),
            ],
        )
        .await;
        let mut e = event("default-media.json");
        e["body"] = json!("{not json");
        assert_eq!(f.respond(e).await["statusCode"], 200);
        assert_eq!(mgmt.seen().len(), 2, "{status}: one attempt and one retry");
        let lines = f.output().await;
        let failed: Vec<Value> = lines
            .iter()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v["event"] == "close_failed")
            .collect();
        assert_eq!(failed.len(), 1, "{status}: {lines:?}");
        assert_eq!(failed[0]["level"], "ERROR");
        assert_eq!(failed[0]["reason"], "frame_not_json");
        assert_eq!(failed[0]["attempts"], 2);
        let code = failed[0]["aws_error"].as_str().unwrap_or("").to_owned();
        assert!(!code.is_empty(), "{status}: the AWS error code is logged");
        let emf: Vec<Value> = lines
            .iter()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v.get("_aws").is_some())
            .collect();
        assert_eq!(emf.len(), 1, "{status}: one EMF line: {lines:?}");
        assert_eq!(
            emf[0]["_aws"]["CloudWatchMetrics"][0]["Namespace"],
            "StreamGate"
        );
        assert_eq!(emf[0]["CloseFailed"], 1);
        assert_eq!(emf[0]["reason"], code.as_str());
        // Still answering, still running.
        assert_eq!(
            f.respond(event("default-media.json")).await["statusCode"],
            200
        );
        assert!(f.is_running());
    }
}

/// The Management API client is bounded (1.5 s per close, one retry while the invocation has
/// time): a Management API that accepts the connection and never answers cannot hold an
/// invocation past the 5 s Lambda timeout, and the failed close is loud.
#[tokio::test]
async fn a_management_api_that_never_answers_cannot_hold_an_invocation_past_the_timeout() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let endpoint = format!("http://{}/prod", listener.local_addr().expect("addr"));
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket); // accepted, never read, never answered
        }
    });
    let path = creds_path();
    let f = Function::start(
        ROUTER,
        &[
            ("STREAM_GATE_SECRET_FILE", &path),
            ("STREAM_GATE_MANAGEMENT_ENDPOINT", &endpoint),
            ("STREAM_GATE_CALL_STATE", "memory"),
        ],
    )
    .await;
    let mut e = event("default-media.json");
    e["body"] = json!("{not json");
    let started = std::time::Instant::now();
    assert_eq!(f.respond(e).await["statusCode"], 200);
    let took = started.elapsed();
    assert!(
        took < std::time::Duration::from_millis(4500),
        "the invocation took {took:?}"
    );
    let failed: Vec<Value> = f
        .output()
        .await
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["event"] == "close_failed")
        .collect();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["attempts"], 2, "{failed:?}");
    silent.abort();
}

#[test]
fn event_files_are_consistent_with_the_test_credentials() {
    use stream_gate_domain::{
        compute_signature, mint_call_token, AccountSid, CallSid, Credentials,
    };
    let doc = std::fs::read_to_string(repo_file("events/credentials.test.json")).expect("creds");
    let creds = Credentials::from_json(&doc).expect("valid test credentials");
    let raw: Value = serde_json::from_str(&doc).expect("json");
    let token = raw["twilioAccounts"][0]["authTokens"][0]
        .as_str()
        .expect("token");
    let signed = event("authorizer-signed.json");
    let url = format!(
        "wss://{}/{}",
        signed["requestContext"]["domainName"].as_str().expect("d"),
        signed["requestContext"]["stage"].as_str().expect("s")
    );
    assert_eq!(
        signed["headers"]["X-Twilio-Signature"].as_str(),
        Some(compute_signature(token, &url, &[]).as_str())
    );
    assert_eq!(
        event("authorizer-token.json")["queryStringParameters"]["token"],
        raw["streamTokens"][0]["token"]
    );
    let start: Value =
        serde_json::from_str(event("default-start.json")["body"].as_str().expect("body"))
            .expect("start");
    let tok = start["start"]["customParameters"]["token"]
        .as_str()
        .expect("tok");
    let exp: u64 = tok
        .split('.')
        .nth(1)
        .and_then(|e| e.parse().ok())
        .expect("exp");
    let (a, c) = (
        AccountSid::parse(AC).expect("ac"),
        CallSid::parse(start["start"]["callSid"].as_str().expect("ca")).expect("ca"),
    );
    let minted = mint_call_token(&creds, &a, &c, exp - 300, 300).expect("key");
    assert_eq!(minted.expose(), tok);
}
