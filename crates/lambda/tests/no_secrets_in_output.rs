//! Redaction: every rejection path of the real binaries, run with distinctive secret values, and
//! all output captured: none of the configured secrets nor the presented credentials may appear.

use stream_gate_testkit as support;

use axum::http::StatusCode;
use serde_json::{json, Value};
use stream_gate_domain::{compute_signature, mint_call_token, AccountSid, CallSid, Credentials};
use support::{event, Function, ManagementEndpoint};

const AC: &str = "ACdeadbeefdeadbeefdeadbeefdeadbeef";
const AC2: &str = "ACbadbadbadbadbadbadbadbadbadbadba";
const CA: &str = "CAffeeddccbbaa99887766554433221100";
const AUTH_TOKEN: &str = "SECRETAUTHTOKEN7f3a9c1e5b";
const AUTH_TOKEN_OLD: &str = "SECRETOLDTOKEN0d2e4f6a8c";
const STREAM_TOKEN: &str = "SECRETSTREAMTOKEN-9b8a7c6d5e4f3a2b1c0d";
const KEY_B64: &str = "U0VDUkVUS0VZLWJ5dGVzLXRoYXQtYXJlLTMyLWxvbmch";
const PRESENTED_TOKEN: &str = "PRESENTEDWRONGSTREAMTOKEN-0123456789abcdef";

fn document() -> String {
    json!({
        "twilioAccounts": [{"accountSid": AC, "authTokens": [AUTH_TOKEN, AUTH_TOKEN_OLD]},
                           {"accountSid": AC2, "authTokens": ["SECRETSECONDACCOUNTTOKEN"]}],
        "streamTokens": [{"token": STREAM_TOKEN, "accountSid": AC}],
        "callTokenKeys": [KEY_B64]
    })
    .to_string()
}

fn start_with_token(token: &str, account: &str) -> Value {
    let mut e = event("default-start.json");
    let mut body: Value = serde_json::from_str(e["body"].as_str().expect("body")).expect("json");
    body["start"]["customParameters"]["token"] = json!(token);
    body["start"]["accountSid"] = json!(account);
    e["body"] = json!(body.to_string());
    e
}

#[tokio::test]
async fn no_secret_value_reaches_any_output() {
    let dir = std::env::temp_dir().join(format!("sg-redaction-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("credentials.json");
    std::fs::write(&path, document()).expect("write");
    let path = path.display().to_string();
    let creds = Credentials::from_json(&document()).expect("valid");
    let url = "wss://abc123.execute-api.us-east-1.amazonaws.com/prod";
    let good_sig = compute_signature(AUTH_TOKEN, url, &[]);
    let wrong_sig = compute_signature("SECRETNOTCONFIGURED", url, &[]);
    let (a, c) = (
        AccountSid::parse(AC).expect("ac"),
        CallSid::parse(CA).expect("ca"),
    );
    let now = stream_gate_lambda::clock::unix_now();
    let expired = mint_call_token(&creds, &a, &c, now - 10_000, 300)
        .expect("key")
        .expose()
        .to_owned();
    let other_call = CallSid::parse("CA0000000000000000000000000000000a").expect("ca");
    let foreign = mint_call_token(&creds, &a, &other_call, now, 300)
        .expect("key")
        .expose()
        .to_owned();
    let valid = mint_call_token(&creds, &a, &c, now, 300)
        .expect("key")
        .expose()
        .to_owned();

    let mut output = Vec::new();
    // Authorizer: every deny path, plus an allow (which must not log the signature either).
    for mode in ["either", "signature", "token", "both"] {
        let f = Function::start(
            env!("CARGO_BIN_EXE_authorizer"),
            &[
                ("STREAM_GATE_SECRET_FILE", &path),
                ("STREAM_GATE_AUTH_MODE", mode),
            ],
        )
        .await;
        let base = event("authorizer-unauthenticated.json");
        let with = |sig: Option<&str>, tok: Option<&str>| {
            let mut e = base.clone();
            if let Some(s) = sig {
                e["headers"]["X-Twilio-Signature"] = json!(s);
                e["multiValueHeaders"]["X-Twilio-Signature"] = json!([s]);
            }
            if let Some(t) = tok {
                e["queryStringParameters"] = json!({"token": t});
                e["multiValueQueryStringParameters"] = json!({"token": [t]});
            }
            e
        };
        for e in [
            with(None, None),
            with(Some(&good_sig), None),
            with(Some(&wrong_sig), None),
            with(Some("garbage!"), None),
            with(None, Some(PRESENTED_TOKEN)),
            with(None, Some(STREAM_TOKEN)),
            with(Some(&wrong_sig), Some(STREAM_TOKEN)),
            with(Some(&good_sig), Some(PRESENTED_TOKEN)),
        ] {
            f.respond(e).await;
        }
        output.extend(f.output().await);
    }
    // Router: every call-token failure and the account checks.
    let mgmt = ManagementEndpoint::start(StatusCode::NO_CONTENT).await;
    let f = Function::start(
        env!("CARGO_BIN_EXE_router"),
        &[
            ("STREAM_GATE_SECRET_FILE", &path),
            ("STREAM_GATE_MANAGEMENT_ENDPOINT", &mgmt.url),
            ("STREAM_GATE_CALL_STATE", "off"),
        ],
    )
    .await;
    for e in [
        start_with_token(&valid, AC),
        start_with_token(&expired, AC),
        start_with_token(&foreign, AC),
        start_with_token(PRESENTED_TOKEN, AC),
        start_with_token(&valid, AC2),
        start_with_token(&format!("v1.{now}.{}", "A".repeat(43)), AC),
    ] {
        f.respond(e).await;
    }
    output.extend(f.output().await);

    let all = output.join("\n");
    // Sanity: the capture holds the decisions we caused, so an empty capture cannot pass.
    for code in [
        "signature_missing",
        "signature_mismatch",
        "signature_malformed",
        "stream_token_unknown",
        "stream_token_missing",
        "account_mismatch",
        "call_token_expired",
        "call_token_invalid",
        "call_token_malformed",
        "start_account_mismatch",
        "\"allow\"",
    ] {
        assert!(all.contains(code), "expected {code} in the captured output");
    }
    for secret in [
        AUTH_TOKEN,
        AUTH_TOKEN_OLD,
        "SECRETSECONDACCOUNTTOKEN",
        STREAM_TOKEN,
        KEY_B64,
        PRESENTED_TOKEN,
        good_sig.as_str(),
        wrong_sig.as_str(),
        expired.as_str(),
        foreign.as_str(),
        valid.as_str(),
    ] {
        assert!(
            !all.contains(secret),
            "a secret value appeared in the output ({} bytes captured)",
            all.len()
        );
    }
    // Parts of call tokens (the MAC) must not appear either.
    for token in [&expired, &foreign, &valid] {
        let mac = token.rsplit('.').next().unwrap_or_default();
        assert!(
            !all.contains(mac),
            "a call-token MAC appeared in the output"
        );
    }
}

/// `RUST_LOG=trace` (and every module at trace) for all three binaries over every shipped event:
/// no signature, stream token, call token, auth token or key reaches the output, nor any event's
/// headers, query string or body.
#[tokio::test]
async fn nothing_secret_at_trace_level() {
    let creds = support::repo_file("events/credentials.test.json")
        .display()
        .to_string();
    let doc: Value =
        serde_json::from_str(&std::fs::read_to_string(&creds).expect("test credentials"))
            .expect("json");
    // Every secret of the document.
    let mut secrets: Vec<String> = vec![];
    for account in doc["twilioAccounts"].as_array().into_iter().flatten() {
        for t in account["authTokens"].as_array().into_iter().flatten() {
            secrets.push(t.as_str().unwrap_or_default().to_owned());
        }
        for k in account["sharedKeys"].as_array().into_iter().flatten() {
            secrets.push(k["secret"].as_str().unwrap_or_default().to_owned());
        }
    }
    for t in doc["streamTokens"].as_array().into_iter().flatten() {
        secrets.push(t["token"].as_str().unwrap_or_default().to_owned());
    }
    for k in doc["callTokenKeys"].as_array().into_iter().flatten() {
        secrets.push(k.as_str().unwrap_or_default().to_owned());
    }
    // Every presented credential of the events, and their bodies.
    let mut presented: Vec<String> = vec![];
    let files: Vec<String> = std::fs::read_dir(support::repo_file("events"))
        .expect("events/")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| {
            // The echo example's Kinesis batch is for the echo binary (crates/echo, its own
            // trace-level test), not for the gate's.
            n.ends_with(".json")
                && n != "credentials.test.json"
                && !n.starts_with("sam-local")
                && !n.starts_with("echo-")
        })
        .collect();
    assert!(files.len() >= 12, "{files:?}");
    for name in &files {
        let e = event(name);
        for map in ["headers", "multiValueHeaders"] {
            for (k, v) in e[map].as_object().into_iter().flatten() {
                if k.eq_ignore_ascii_case("x-twilio-signature") {
                    let values = v.as_array().cloned().unwrap_or_else(|| vec![v.clone()]);
                    presented.extend(values.iter().filter_map(Value::as_str).map(str::to_owned));
                }
            }
        }
        for q in ["queryStringParameters", "multiValueQueryStringParameters"] {
            // A ConversationRelay handshake's `callSid` is a public identifier the gate logs
            // (its `callToken` is the credential, and is collected).
            let credentials = e[q]
                .as_object()
                .into_iter()
                .flatten()
                .filter(|(k, _)| k.as_str() != "callSid");
            for (_, v) in credentials {
                let values = v.as_array().cloned().unwrap_or_else(|| vec![v.clone()]);
                presented.extend(values.iter().filter_map(Value::as_str).map(str::to_owned));
            }
        }
        if let Some(body) = e["body"].as_str().filter(|b| b.len() >= 16) {
            presented.push(body.to_owned());
            if let Ok(frame) = serde_json::from_str::<Value>(body) {
                if let Some(t) = frame["start"]["customParameters"]["token"].as_str() {
                    presented.push(t.to_owned());
                }
            }
        }
    }
    assert!(
        presented.len() >= 6,
        "the events present credentials: {}",
        presented.len()
    );

    let mgmt = ManagementEndpoint::start(StatusCode::NO_CONTENT).await;
    let trace = [
        ("RUST_LOG", "trace"),
        ("STREAM_GATE_SECRET_FILE", creds.as_str()),
        ("STREAM_GATE_MANAGEMENT_ENDPOINT", mgmt.url.as_str()),
        ("STREAM_GATE_STREAM_URL", "wss://gate.example.com/prod"),
        ("STREAM_GATE_WEBHOOK_URL", "https://hooks.example.com/voice"),
        ("STREAM_GATE_CALL_STATE", "off"),
    ];
    let mut output = vec![];
    for (binary, prefix) in [
        (env!("CARGO_BIN_EXE_authorizer"), "authorizer-"),
        (env!("CARGO_BIN_EXE_router"), ""),
        (env!("CARGO_BIN_EXE_voice-webhook"), "voice-webhook"),
    ] {
        let f = Function::start(binary, &trace).await;
        for name in &files {
            let for_router = !name.starts_with("authorizer-") && !name.starts_with("voice-webhook");
            if (prefix.is_empty() && for_router) || (!prefix.is_empty() && name.starts_with(prefix))
            {
                f.respond(event(name)).await;
            }
        }
        let out = f.output().await;
        assert!(
            out.iter().any(|l| l.contains("\"level\":\"TRACE\"")
                || l.contains("\"level\":\"DEBUG\"")
                || l.contains("\"level\":\"INFO\"")),
            "{binary} logged something at trace level"
        );
        output.extend(out);
    }
    let all = output.join("\n");
    for s in secrets.iter().chain(presented.iter()) {
        assert!(
            !s.is_empty() && !all.contains(s.as_str()),
            "a secret or an event's content reached the output at trace level"
        );
    }
    for field in [
        "X-Twilio-Signature",
        "x-twilio-signature",
        "customParameters",
        "queryStringParameters",
        "\"headers\"",
    ] {
        assert!(
            !all.contains(field),
            "{field} reached the output at trace level"
        );
    }
}
