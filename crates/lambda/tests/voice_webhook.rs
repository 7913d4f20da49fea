//! The real `voice-webhook` binary through the Lambda Runtime API: a signed webhook gets TwiML whose
//! call token the router's decision accepts for that call only; everything else is refused.

use stream_gate_testkit as support;

use base64::Engine as _;
use serde_json::{json, Value};
use stream_gate_domain::verdict::{judge_frame, CallTokenPolicy, Verdict};
use stream_gate_domain::{
    compute_signature, fixtures, AccountSid, CallSid, Credentials, StreamSid,
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
    http_event_at("/voice", method, sig, body, b64)
}

/// [`http_event`] for the route at `path`.
fn http_event_at(path: &str, method: &str, sig: Option<&str>, body: &str, b64: bool) -> Value {
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
        "version": "2.0", "routeKey": format!("POST {path}"), "rawPath": path, "rawQueryString": "",
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012", "apiId": "abc123", "domainName": "hooks.example.com",
            "domainPrefix": "hooks", "requestId": "r1", "routeKey": format!("POST {path}"), "stage": "$default",
            "time": "28/Nov/2026:19:00:00 +0000", "timeEpoch": 1795892400000u64,
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1",
                     "sourceIp": "203.0.113.9", "userAgent": "TwilioProxy/1.1"}
        },
        "body": body, "isBase64Encoded": b64
    })
}

async fn start() -> Function {
    start_with(&[("STREAM_GATE_CALL_STATE", "memory")]).await
}

/// The webhook with the test credentials, its URLs and `extra`.
async fn start_with(extra: &[(&str, &str)]) -> Function {
    let path = repo_file("events/credentials.test.json")
        .display()
        .to_string();
    let mut env = vec![
        ("STREAM_GATE_SECRET_FILE", path.as_str()),
        ("STREAM_GATE_STREAM_URL", STREAM),
        ("STREAM_GATE_WEBHOOK_URL", URL),
    ];
    env.extend_from_slice(extra);
    Function::start(WEBHOOK, &env).await
}

fn log_lines(output: &[String]) -> Vec<Value> {
    output
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .collect()
}

/// Issue #22 item 1: without `STREAM_GATE_CALL_STATE` the webhook does not run stateless (a fresh
/// token for every replay); it does not start, and says which variable and which values.
#[tokio::test]
async fn without_call_state_the_webhook_refuses_to_start() {
    let mut f = start_with(&[]).await;
    let answer = f
        .api
        .invoke(
            support::event("voice-webhook.json"),
            std::time::Duration::from_secs(3),
        )
        .await;
    assert!(
        !matches!(
            answer,
            Ok(support::fake_runtime_api::Invocation::Response(_))
        ),
        "no answer from a webhook without call state: {answer:?}"
    );
    let out = f.output().await.join("\n");
    assert!(
        out.contains("STREAM_GATE_CALL_STATE") && out.contains("required: dynamodb, memory or off"),
        "{out}"
    );
    assert!(!f.is_running(), "the process ended at init");
}

/// `off` stays possible when said, and the webhook says once, at start, at WARN, what it leaves
/// open: a replayed webhook gets a fresh token.
#[tokio::test]
async fn call_state_off_is_warned_about_once_at_start() {
    let f = start_with(&[("STREAM_GATE_CALL_STATE", "off")]).await;
    let params = [("AccountSid", AC), ("CallSid", CA)];
    let sig = compute_signature(TOKEN, URL, &params);
    let mut tokens = Vec::new();
    for _ in 0..2 {
        let r = f
            .respond(http_event("POST", Some(&sig), &form(&params), false))
            .await;
        assert_eq!(status(&r), 200, "{r}");
        tokens.push(token_from(r["body"].as_str().expect("body")));
        // Tokens are whole seconds: the next one is minted in another second.
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    }
    assert_ne!(
        tokens[0], tokens[1],
        "off: the gap the warning names is real"
    );
    let lines = log_lines(&f.output().await);
    let warnings: Vec<&Value> = lines
        .iter()
        .filter(|l| l["event"] == "call_state_off")
        .collect();
    assert_eq!(warnings.len(), 1, "{lines:?}");
    assert_eq!(warnings[0]["level"], "WARN");
    let message = warnings[0]["message"].as_str().unwrap_or("");
    assert!(
        message.contains("replayed webhook POST gets a fresh call token"),
        "{message}"
    );
    // Before the first invocation: at start.
    let first_accept = lines
        .iter()
        .position(|l| l["reason"] == "webhook_signed")
        .expect("accepted");
    let warned = lines
        .iter()
        .position(|l| l["event"] == "call_state_off")
        .expect("warned");
    assert!(warned < first_accept);
}

/// With call state, the binary answers a replay of the same signed POST with the same token.
#[tokio::test]
async fn with_call_state_a_replay_gets_the_first_token() {
    let f = start().await;
    let params = [("AccountSid", AC), ("CallSid", CA)];
    let sig = compute_signature(TOKEN, URL, &params);
    let mut tokens = Vec::new();
    for _ in 0..2 {
        let r = f
            .respond(http_event("POST", Some(&sig), &form(&params), false))
            .await;
        assert_eq!(status(&r), 200, "{r}");
        tokens.push(token_from(r["body"].as_str().expect("body")));
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    }
    assert_eq!(tokens[0], tokens[1]);
    let out = f.output().await;
    assert!(!out.iter().any(|l| l.contains("call_state_off")), "{out:?}");
}

fn token_from(twiml: &str) -> String {
    let marker = "<Parameter name=\"token\" value=\"";
    let at = twiml.find(marker).expect("token parameter") + marker.len();
    let end = twiml[at..].find('"').expect("end quote");
    twiml[at..at + end].to_owned()
}

fn judge(token: &str, call: &str) -> Verdict {
    judge_at(token, call, stream_gate_lambda::clock::unix_now())
}

/// The router's `start` check of `token` on `call`'s stream at `now`.
fn judge_at(token: &str, call: &str, now: u64) -> Verdict {
    let doc = std::fs::read_to_string(repo_file("events/credentials.test.json")).expect("doc");
    let creds = Credentials::from_json(&doc).expect("creds");
    let ac = AccountSid::parse(AC).expect("ac");
    let frame = fixtures::start(
        &ac,
        &CallSid::parse(call).expect("ca"),
        &StreamSid::parse("MZ0123456789abcdef0123456789abcdef").expect("mz"),
        Some(token),
    );
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
    // Its `/relay` twin, for a stack that admits ConversationRelay.
    let relay = start_with(&[
        ("STREAM_GATE_CALL_STATE", "memory"),
        ("STREAM_GATE_PROTOCOLS", "media-streams,conversation-relay"),
    ])
    .await;
    let r = relay
        .respond(support::event("voice-webhook-relay.json"))
        .await;
    assert_eq!(status(&r), 200, "{r}");
    assert!(r["body"].as_str().is_some_and(
        |b| b.contains("<ConversationRelay url=\"wss://gate.example.com/prod?callSid=")
    ));
}

/// libfaketime, from Debian's `faketime` package (`scripts/setup` installs it when run as root).
/// Missing, the test that needs it fails saying so: it is never skipped.
fn libfaketime() -> std::path::PathBuf {
    let candidates = [
        "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
        "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
    ];
    candidates
        .iter()
        .map(std::path::PathBuf::from)
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "libfaketime not found in {candidates:?}: install Debian's faketime package \
                 (apt-get install faketime; scripts/setup does it when run as root)"
            )
        })
}

/// The expiry a `v1.<exp>.<mac>` token carries.
fn expiry_of(token: &str) -> u64 {
    token
        .split('.')
        .nth(1)
        .and_then(|e| e.parse().ok())
        .expect("v1.<exp>.<mac>")
}

/// Issue #22 item 2 on the real binary: the voice-webhook process runs under libfaketime, whose
/// offset from the real clock the test moves (+1 day +1 s, +30 days, +364 days) between
/// invocations. The same signed POST gets exactly the first token every time, which the router's
/// `start` check closes as `call_token_expired` at that moment; a new call at each moment gets a
/// token minted at the faked time (which shows the clock did move).
#[tokio::test]
async fn under_a_faked_clock_a_replay_days_to_a_year_later_gets_the_first_token() {
    let lib = libfaketime();
    let dir = std::env::temp_dir().join(format!("sg-faketime-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let offset_file = dir.join("offset");
    std::fs::write(&offset_file, "+0").expect("offset");
    let (lib, offset) = (lib.display().to_string(), offset_file.display().to_string());
    let f = start_with(&[
        ("STREAM_GATE_CALL_STATE", "memory"),
        ("LD_PRELOAD", &lib),
        ("FAKETIME_TIMESTAMP_FILE", &offset),
        // Read the offset on every clock call, and leave the monotonic clock (timeouts) alone.
        ("FAKETIME_NO_CACHE", "1"),
        ("FAKETIME_DONT_FAKE_MONOTONIC", "1"),
    ])
    .await;
    let post = |call: &str| {
        let params = [("AccountSid", AC), ("CallSid", call)];
        let sig = compute_signature(TOKEN, URL, &params);
        http_event("POST", Some(&sig), &form(&params), false)
    };
    let token_now = |event: Value| async {
        let r = f.respond(event).await;
        assert_eq!(status(&r), 200, "{r}");
        token_from(r["body"].as_str().expect("body"))
    };
    let now = stream_gate_lambda::clock::unix_now;
    let first = token_now(post(CA)).await;
    assert!(
        matches!(judge(&first, CA), Verdict::Accept(_)),
        "live when issued"
    );
    for (i, (spelled, secs)) in [
        ("+86401", 86_401u64),
        ("+30d", 30 * 86_400),
        ("+364d", 364 * 86_400),
    ]
    .into_iter()
    .enumerate()
    {
        std::fs::write(&offset_file, spelled).expect("offset");
        let replayed = token_now(post(CA)).await;
        let then = now() + secs;
        assert!(
            replayed == first,
            "{spelled}: the first token, not a new one"
        );
        match judge_at(&replayed, CA, then) {
            Verdict::Close(reason) => assert_eq!(reason.code(), "call_token_expired", "{spelled}"),
            other => panic!("{spelled}: an old token must be refused: {other:?}"),
        }
        // A call first seen now gets a token of now: the process's clock did move.
        let call = format!("CA0123456789abcdef0123456789abcde{i}");
        let fresh = expiry_of(&token_now(post(&call)).await);
        assert!(
            fresh.abs_diff(then + 300) <= 5,
            "{spelled}: a new call's expiry {fresh} is ~{} (faked clock)",
            then + 300
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// `…/relay` (where the stack admits ConversationRelay): `<Connect action="…/relay/ended">
/// <ConversationRelay url="<stream url>?callSid=…&callToken=…" …configured attributes…>`, the token
/// valid for that call only and the very token `/voice` answers for the same CallSid; both `/relay`
/// and `…/relay/ended` are refused unsigned, and with 404 where ConversationRelay is not enabled
/// (the end itself: the next test).
#[tokio::test]
async fn the_relay_route_answers_conversation_relay_twiml_with_the_call_s_one_token() {
    const RELAY_URL: &str = "https://hooks.example.com/relay";
    const ENDED_URL: &str = "https://hooks.example.com/relay/ended";
    let f = start_with(&[
        ("STREAM_GATE_CALL_STATE", "memory"),
        ("STREAM_GATE_PROTOCOLS", "media-streams,conversation-relay"),
        (
            "STREAM_GATE_RELAY_ATTRIBUTES",
            r#"{"welcomeGreeting":"Hi & welcome","dtmfDetection":"true"}"#,
        ),
    ])
    .await;
    let params = [
        ("AccountSid", AC),
        ("CallSid", CA),
        ("From", "+15551230000"),
    ];
    let r = f
        .respond(http_event_at(
            "/relay",
            "POST",
            Some(&compute_signature(TOKEN, RELAY_URL, &params)),
            &form(&params),
            false,
        ))
        .await;
    assert_eq!(status(&r), 200, "{r}");
    assert_eq!(r["headers"]["content-type"], "text/xml");
    let body = r["body"].as_str().expect("body");
    let prefix = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Connect action=\"{ENDED_URL}\">\
         <ConversationRelay url=\"{STREAM}?callSid={CA}&amp;callToken="
    );
    assert!(body.starts_with(&prefix), "{body}");
    assert!(
        body.contains("\" dtmfDetection=\"true\" welcomeGreeting=\"Hi &amp; welcome\">"),
        "{body}"
    );
    assert!(body.contains("<Parameter name=\"from\" value=\"+15551230000\"/>"));
    assert!(
        !body.contains("name=\"token\""),
        "the token is in the URL, not a parameter"
    );
    let token = body[prefix.len()..]
        .split('"')
        .next()
        .expect("token")
        .to_owned();
    assert!(matches!(judge(&token, CA), Verdict::Accept(_)));
    assert!(matches!(
        judge(&token, "CAffffffffffffffffffffffffffffffff"),
        Verdict::Close(_)
    ));
    // One token per CallSid, whichever route asks.
    let voice = f
        .respond(http_event(
            "POST",
            Some(&compute_signature(TOKEN, URL, &params)),
            &form(&params),
            false,
        ))
        .await;
    assert_eq!(token_from(voice["body"].as_str().expect("body")), token);
    assert!(!f.output().await.iter().any(|l| l.contains(&token)));

    for path in ["/relay", "/relay/ended"] {
        let r = f
            .respond(http_event_at(path, "POST", None, &form(&params), false))
            .await;
        assert_eq!(status(&r), 403, "{path}: unsigned");
        // Signed for /voice, posted to a relay route: the URL is part of what is signed.
        let r = f
            .respond(http_event_at(
                path,
                "POST",
                Some(&compute_signature(TOKEN, URL, &params)),
                &form(&params),
                false,
            ))
            .await;
        assert_eq!(status(&r), 403, "{path}: signed for another URL");
    }

    let media_only = start().await;
    for path in ["/relay", "/relay/ended"] {
        let r = media_only
            .respond(http_event_at(
                path,
                "POST",
                Some(&compute_signature(TOKEN, RELAY_URL, &params)),
                &form(&params),
                false,
            ))
            .await;
        assert_eq!(status(&r), 404, "{path}");
        assert_eq!(
            media_only.last_reason().await.as_deref(),
            Some("webhook_relay_not_enabled")
        );
    }
}

/// A signed POST of `params` to `path`, signed over `https://hooks.example.com{path}`.
async fn post_signed(f: &Function, path: &str, params: &[(&str, &str)]) -> Value {
    let url = format!("https://hooks.example.com{path}");
    let signature = compute_signature(TOKEN, &url, params);
    f.respond(http_event_at(
        path,
        "POST",
        Some(&signature),
        &form(params),
        false,
    ))
    .await
}

/// `…/relay/ended`, signed, after the call was answered at `/relay`: `<Response/>`, one
/// `session_end` record in the sink (a file here), logged `record=delivered`; a replay of the same
/// POST and the end of a call this webhook never answered are answered too but deliver nothing,
/// each logged at WARN (`repeated`, `not_issued`).
#[tokio::test]
async fn the_session_s_end_is_one_record_per_answered_call() {
    let dir = std::env::temp_dir().join(format!("sg-relay-ended-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let records = dir.join("records.jsonl");
    let sink = format!("file:{}", records.display());
    let f = start_with(&[
        ("STREAM_GATE_SINK", sink.as_str()),
        ("STREAM_GATE_CALL_STATE", "memory"),
        ("STREAM_GATE_PROTOCOLS", "media-streams,conversation-relay"),
    ])
    .await;
    let r = post_signed(&f, "/relay", &[("AccountSid", AC), ("CallSid", CA)]).await;
    assert_eq!(status(&r), 200, "{r}");
    let ended = [
        ("AccountSid", AC),
        ("CallSid", CA),
        ("SessionId", "VX00112233445566778899aabbccddeeff"),
        ("SessionStatus", "completed"),
        ("SessionDuration", "25"),
    ];
    let stranger = [
        ("AccountSid", AC),
        ("CallSid", "CA99999999999999999999999999999999"),
    ];
    // The end; replayed (Twilio's signature has no timestamp); a call never answered here.
    for params in [&ended[..], &ended[..], &stranger[..]] {
        let r = post_signed(&f, "/relay/ended", params).await;
        assert_eq!(status(&r), 200, "{r}");
        assert_eq!(
            r["body"],
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response/>"
        );
    }
    let delivered: Vec<Value> = std::fs::read_to_string(&records)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("a record per line"))
        .collect();
    let [end] = delivered.try_into().expect("one record");
    assert_eq!(
        (&end["type"], &end["protocol"]),
        (&json!("session_end"), &json!("conversation-relay"))
    );
    assert_eq!(
        (&end["accountSid"], &end["callSid"]),
        (&json!(AC), &json!(CA))
    );
    assert_eq!(end["sessionId"], "VX00112233445566778899aabbccddeeff");
    assert_eq!(end["twilio"]["SessionStatus"], "completed");
    assert!(end.get("connectionId").is_none());
    let lines: Vec<Value> = log_lines(&f.output().await)
        .into_iter()
        .filter(|l| l["event"] == "relay_session_ended")
        .collect();
    // What Twilio reported, where it is well formed.
    assert_eq!(
        (&lines[0]["session_status"], &lines[0]["session_duration"]),
        (&json!("completed"), &json!("25"))
    );
    let outcomes: Vec<(Value, Value)> = lines
        .iter()
        .map(|l| (l["record"].clone(), l["level"].clone()))
        .collect();
    assert_eq!(
        outcomes,
        [
            (json!("delivered"), json!("INFO")),
            (json!("repeated"), json!("WARN")),
            (json!("not_issued"), json!("WARN")),
        ]
    );
    let _ = std::fs::remove_dir_all(&dir);
}
