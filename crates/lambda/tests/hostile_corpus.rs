//! The hostile-input corpus (crates/lambda/tests/hostile/*.json, written by make_corpus.py there) through
//! the real `router` and `authorizer` binaries: every case must end in exactly the reason code it
//! names, a closed frame must be closed through the Management API, and nothing may reach Twilio.

use stream_gate_testkit as support;

use std::collections::BTreeSet;

use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::Value;
use stream_gate_domain::{CloseReason, DenyReason};
use support::{event, repo_file, Function, ManagementEndpoint};

const AUTHORIZER: &str = env!("CARGO_BIN_EXE_authorizer");
const ROUTER: &str = env!("CARGO_BIN_EXE_router");

/// Codes the corpus cannot reach with one valid credentials document; tests/lambda_binaries.rs
/// covers them with other configurations.
const OTHER_CONFIGURATION: [&str; 2] = ["credentials_unavailable", "call_token_keys_missing"];
/// Reachable only with call state on (the corpus runs stateless): each is pinned in
/// `call_state.rs` and, for ConversationRelay, `relay_default.rs`, in-process against memory and
/// through the real SDK against DynamoDB, or (`call_state_unavailable`) in the domain's
/// `call_state::tests` and the router's `call_state_rules_tests.rs`.
const CALL_STATE: [&str; 9] = [
    "start_repeated",
    "media_before_start",
    "start_missing",
    "setup_missing",
    "setup_repeated",
    "call_sid_mismatch",
    "stream_sid_mismatch",
    "call_token_reused",
    "call_state_unavailable",
];

#[derive(Deserialize)]
struct FrameCase {
    name: String,
    frame: String,
    expect: String,
    #[serde(default)]
    fill: Option<(String, usize)>,
    #[serde(default)]
    base64: bool,
    /// Absent: the account of the test credentials; `null`: no authorizer context at all.
    #[serde(default = "default_context")]
    context: Option<String>,
    /// `conversation-relay`: the context is a relay handshake's, for the corpus's call.
    #[serde(default)]
    protocol: Option<String>,
}

/// The call and token expiry of a relay case's context (make_corpus.py's `CA` and `EXP`).
const RELAY_CALL: &str = "CAffeeddccbbaa99887766554433221100";
const RELAY_TOKEN_EXPIRES_AT: &str = "4102444800";

fn default_context() -> Option<String> {
    Some("ACdeadbeefdeadbeefdeadbeefdeadbeef".to_owned())
}

#[derive(Deserialize)]
struct HandshakeCase {
    name: String,
    expect: String,
    mode: String,
    /// `STREAM_GATE_PROTOCOLS` of the authorizer that judges the case.
    protocols: String,
    headers: serde_json::Map<String, Value>,
    query: serde_json::Map<String, Value>,
    #[serde(default)]
    drop_domain: bool,
}

fn load<T: for<'de> Deserialize<'de>>(name: &str) -> Vec<T> {
    let text = std::fs::read_to_string(repo_file(&format!("crates/lambda/tests/hostile/{name}")))
        .expect("corpus");
    serde_json::from_str(&text).expect("corpus json")
}

fn frame_event(case: &FrameCase) -> Value {
    let mut e = event("default-media.json");
    let body = match &case.fill {
        Some((with, count)) => case.frame.replace("@FILL@", &with.repeat(*count)),
        None => case.frame.clone(),
    };
    e["body"] = Value::from(body);
    e["isBase64Encoded"] = Value::from(case.base64);
    match &case.context {
        None => {
            e["requestContext"]
                .as_object_mut()
                .map(|o| o.remove("authorizer"));
        }
        Some(account) => {
            e["requestContext"]["authorizer"]["accountSid"] = Value::from(account.as_str())
        }
    }
    if let Some(protocol) = &case.protocol {
        let a = &mut e["requestContext"]["authorizer"];
        a["protocol"] = Value::from(protocol.as_str());
        a["callSid"] = Value::from(RELAY_CALL);
        a["callTokenExpiresAt"] = Value::from(RELAY_TOKEN_EXPIRES_AT);
    }
    e
}

#[tokio::test]
async fn every_hostile_frame_ends_in_its_reason_code() {
    let cases: Vec<FrameCase> = load("frames.json");
    let mgmt = ManagementEndpoint::start(StatusCode::NO_CONTENT).await;
    let creds = repo_file("events/credentials.test.json")
        .display()
        .to_string();
    let f = Function::start(
        ROUTER,
        &[
            ("STREAM_GATE_CALL_STATE", "off"),
            ("STREAM_GATE_SECRET_FILE", &creds),
            ("STREAM_GATE_MANAGEMENT_ENDPOINT", &mgmt.url),
        ],
    )
    .await;

    let mut failures = Vec::new();
    for case in &cases {
        let (reasons_before, closes_before) = (f.reasons().await.len(), mgmt.seen().len());
        let r = f.respond(frame_event(case)).await;
        assert_eq!(r["statusCode"], 200, "{}: {r}", case.name);
        assert!(
            r.get("body").is_none_or(Value::is_null),
            "{}: a body would reach Twilio: {r}",
            case.name
        );
        let reasons = f.reasons().await;
        let new_reasons = &reasons[reasons_before..];
        let closes = mgmt.seen().len() - closes_before;
        let got = match (new_reasons, closes) {
            ([], 0) => "accept".to_owned(),
            ([reason], 1) => reason.clone(),
            _ => format!("{new_reasons:?} with {closes} close(s)"),
        };
        if got != case.expect {
            failures.push(format!(
                "{}: expected {}, got {got}",
                case.name, case.expect
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let output = f.output().await.join("\n");
    assert!(!output.contains("panicked"));
    // No presented call token (valid or not) and no secret of the document reaches the output.
    let presented: Vec<String> = cases
        .iter()
        .filter_map(|c| serde_json::from_str::<Value>(&c.frame).ok())
        .filter_map(|v| {
            v["start"]["customParameters"]["token"]
                .as_str()
                .map(str::to_owned)
        })
        .filter(|t| t.len() >= 16)
        .collect();
    assert!(presented.len() >= 10, "the corpus presents call tokens");
    assert_no_secrets(&output, &presented);
}

/// The secrets of events/credentials.test.json.
const DOCUMENT_SECRETS: [&str; 4] = [
    "test-only-auth-token-not-a-secret",
    "test-only-second-account-token",
    "test-only-stream-token-0123456789abcdef",
    "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8",
];

fn assert_no_secrets(output: &str, presented: &[String]) {
    assert!(!output.is_empty());
    for secret in DOCUMENT_SECRETS
        .iter()
        .copied()
        .chain(presented.iter().map(String::as_str))
    {
        assert!(
            !output.contains(secret),
            "a secret or presented credential reached the output"
        );
    }
}

fn handshake_event(case: &HandshakeCase) -> Value {
    let mut e = event("authorizer-unauthenticated.json");
    let last = |m: &serde_json::Map<String, Value>| -> Value {
        m.iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    v.as_array()
                        .and_then(|a| a.last())
                        .cloned()
                        .unwrap_or(Value::Null),
                )
            })
            .collect::<serde_json::Map<_, _>>()
            .into()
    };
    let mut headers = e["headers"].as_object().cloned().unwrap_or_default();
    headers.extend(last(&case.headers).as_object().cloned().unwrap_or_default());
    let mut multi = e["multiValueHeaders"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    multi.extend(case.headers.clone());
    e["headers"] = Value::Object(headers);
    e["multiValueHeaders"] = Value::Object(multi);
    e["queryStringParameters"] = last(&case.query);
    e["multiValueQueryStringParameters"] = Value::Object(case.query.clone());
    if case.drop_domain {
        e["requestContext"]
            .as_object_mut()
            .map(|o| o.remove("domainName"));
    }
    e
}

#[tokio::test]
async fn every_hostile_handshake_ends_in_its_reason_code() {
    let cases: Vec<HandshakeCase> = load("handshakes.json");
    let creds = repo_file("events/credentials.test.json")
        .display()
        .to_string();
    let (mut failures, mut outputs) = (Vec::new(), Vec::new());
    // One authorizer process per configuration the corpus uses.
    let configurations: BTreeSet<(&str, &str)> = cases
        .iter()
        .map(|c| (c.mode.as_str(), c.protocols.as_str()))
        .collect();
    for (mode, protocols) in configurations {
        let f = Function::start(
            AUTHORIZER,
            &[
                ("STREAM_GATE_SECRET_FILE", &creds),
                ("STREAM_GATE_AUTH_MODE", mode),
                ("STREAM_GATE_PROTOCOLS", protocols),
            ],
        )
        .await;
        for case in cases
            .iter()
            .filter(|c| (c.mode.as_str(), c.protocols.as_str()) == (mode, protocols))
        {
            let before = f.reasons().await.len();
            let r = f.respond(handshake_event(case)).await;
            let effect = r["policyDocument"]["Statement"][0]["Effect"].as_str();
            let reasons = f.reasons().await;
            let got = match (effect, &reasons[before..]) {
                (Some("Allow"), _) => "allow".to_owned(),
                (Some("Deny"), [reason]) => reason.clone(),
                _ => format!("{effect:?} with {:?}", &reasons[before..]),
            };
            if got != case.expect {
                failures.push(format!(
                    "{mode} / {protocols} / {}: expected {}, got {got}",
                    case.name, case.expect
                ));
            }
            assert!(
                effect == Some("Allow")
                    || r.get("context")
                        .is_none_or(|c| c.is_null() || c == &serde_json::json!({})),
                "{}: a deny carries no context: {r}",
                case.name
            );
        }
        outputs.extend(f.output().await);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // No presented signature, stream token or call token reaches the output (of any process).
    // A `callSid` is an identifier, logged on an Allow like the account SID.
    let presented: Vec<String> = cases
        .iter()
        .flat_map(|c| {
            let query = c
                .query
                .iter()
                .filter(|(k, _)| *k != "callSid")
                .map(|(_, v)| v);
            c.headers.values().chain(query)
        })
        .filter_map(Value::as_array)
        .flatten()
        .filter_map(Value::as_str)
        .filter(|v| v.len() >= 16)
        .map(str::to_owned)
        .collect();
    assert_no_secrets(&outputs.join("\n"), &presented);
}

#[test]
fn the_corpus_is_large_and_covers_every_reason_code() {
    let frames: Vec<FrameCase> = load("frames.json");
    let handshakes: Vec<HandshakeCase> = load("handshakes.json");
    assert!(frames.len() + handshakes.len() >= 60);
    let used: BTreeSet<&str> = frames
        .iter()
        .map(|c| c.expect.as_str())
        .chain(handshakes.iter().map(|c| c.expect.as_str()))
        .collect();
    let missing: Vec<&str> = CloseReason::ALL
        .iter()
        .map(|r| r.code())
        .chain(DenyReason::ALL.iter().map(|r| r.code()))
        .filter(|c| {
            !used.contains(c) && !OTHER_CONFIGURATION.contains(c) && !CALL_STATE.contains(c)
        })
        .collect();
    assert!(missing.is_empty(), "no case for {missing:?}");
    // An exemption is only for codes no stateless case can reach: once one does, it leaves.
    let reached: Vec<&&str> = CALL_STATE.iter().filter(|c| used.contains(*c)).collect();
    assert!(reached.is_empty(), "reached, so not exempt: {reached:?}");
    assert!(CALL_STATE
        .iter()
        .all(|c| CloseReason::ALL.iter().any(|r| r.code() == *c)));
    let relay = frames
        .iter()
        .filter(|c| c.protocol.as_deref() == Some("conversation-relay"))
        .count();
    assert!(relay >= 25, "ConversationRelay cases: {relay}");
}
