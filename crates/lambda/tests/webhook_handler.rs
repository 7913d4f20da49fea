//! The voice webhook's `handle` called in-process with the `events/` documents: status, TwiML and
//! refusals asserted directly (the binary through the Runtime API: `voice_webhook.rs`).

use std::sync::Arc;

use serde_json::{json, Value};
use stream_gate_lambda::adapters::{CredentialCache, NoSink};
use stream_gate_lambda::config::WebhookConfig;
use stream_gate_lambda::entrypoints::voice_webhook;
use stream_gate_lambda::state::{CallState, WebhookState};
use stream_gate_testkit::event;

const AC: &str = "ACdeadbeefdeadbeefdeadbeefdeadbeef";

mod support;
use support::states::{credentials, lookup};

fn webhook_state(env: &[(&'static str, &'static str)]) -> WebhookState {
    let mut all = vec![("STREAM_GATE_STREAM_URL", "wss://gate.example.com/prod")];
    all.extend_from_slice(env);
    WebhookState {
        config: WebhookConfig::from_lookup(lookup(&all)).expect("config"),
        credentials: credentials(),
        call_state: CallState::Off,
        sink: Arc::new(NoSink),
    }
}

async fn webhook(state: &WebhookState, value: Value) -> (u16, String) {
    let request = lambda_http::request::from_str(&value.to_string()).expect("http event");
    let response = voice_webhook::handle(state, request).await;
    let body = match response.body() {
        lambda_http::Body::Text(t) => t.clone(),
        lambda_http::Body::Empty => String::new(),
        lambda_http::Body::Binary(b) => String::from_utf8_lossy(b).into_owned(),
        _ => String::from("<other body>"),
    };
    (response.status().as_u16(), body)
}

#[tokio::test]
async fn webhook_answers_twiml_for_the_signed_event() {
    // No STREAM_GATE_WEBHOOK_URL: the URL is https://{requestContext.domainName}{rawPath}.
    let state = webhook_state(&[]);
    let (status, body) = webhook(&state, event("voice-webhook.json")).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("<Stream url=\"wss://gate.example.com/prod\">"),
        "{body}"
    );
    assert!(
        body.contains("<Parameter name=\"token\" value=\"v1."),
        "{body}"
    );
}

#[tokio::test]
async fn webhook_never_signs_over_the_host_header() {
    let state = webhook_state(&[]);
    // A request whose signature is valid for the URL on the attacker's Host, but API Gateway's
    // domain is another one: the signed URL is built from the domain, so it is refused.
    let mut e = event("voice-webhook.json");
    e["requestContext"]["domainName"] = json!("abc123.execute-api.us-east-1.amazonaws.com");
    let (status, _) = webhook(&state, e).await;
    assert_eq!(status, 403);
    // And the Host header alone changes nothing for a correctly signed request.
    let mut e = event("voice-webhook.json");
    e["headers"]["host"] = json!("evil.example.com");
    let (status, _) = webhook(&state, e).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn webhook_refusals_have_their_status() {
    let state = webhook_state(&[]);
    let mut e = event("voice-webhook.json");
    e["requestContext"]["http"]["method"] = json!("GET");
    assert_eq!(webhook(&state, e).await, (405, String::new()));
    let mut e = event("voice-webhook.json");
    e["headers"]
        .as_object_mut()
        .map(|h| h.remove("x-twilio-signature"));
    assert_eq!(webhook(&state, e).await, (403, String::new()));
    let mut e = event("voice-webhook.json");
    e["headers"]["x-twilio-signature"] = json!("YFfwGS2Ev7f9qAP9MmRoMS7C724=");
    assert_eq!(webhook(&state, e).await, (403, String::new()));
    let no_credentials = WebhookState {
        config: webhook_state(&[]).config,
        credentials: Arc::new(CredentialCache::empty()),
        call_state: CallState::Off,
        sink: Arc::new(NoSink),
    };
    assert_eq!(
        webhook(&no_credentials, event("voice-webhook.json")).await,
        (503, String::new())
    );
}

const WEBHOOK_TOKEN: &str = "test-only-auth-token-not-a-secret";
const WEBHOOK_URL: &str = "https://hooks.example.com/voice";

/// The webhook event with this form (percent-encoded by `form_urlencoded`), signed for `url`.
fn signed_webhook(fields: &[(&str, &str)], url: &str) -> Value {
    let mut params: Vec<(&str, &str)> = vec![
        ("AccountSid", AC),
        ("CallSid", "CA0123456789abcdef0123456789abcdef"),
    ];
    params.extend_from_slice(fields);
    let body = params
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&");
    let mut e = event("voice-webhook.json");
    e["body"] = json!(body);
    e["headers"]["x-twilio-signature"] = json!(stream_gate_domain::compute_signature(
        WEBHOOK_TOKEN,
        url,
        &params
    ));
    e
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn webhook_passes_who_called_only_when_present_and_short() {
    let state = webhook_state(&[]);
    let (status, body) = webhook(&state, event("voice-webhook.json")).await;
    assert_eq!(status, 200);
    assert!(
        body.contains(r#"<Parameter name="from" value="+15551230000"/>"#),
        "{body}"
    );
    let longest = "n".repeat(128);
    let too_long = "n".repeat(129);
    for (fields, from, caller_name) in [
        (
            vec![("From", ""), ("CallerName", longest.as_str())],
            false,
            true,
        ),
        (
            vec![("From", "+15551230000"), ("CallerName", too_long.as_str())],
            true,
            false,
        ),
    ] {
        let (status, body) = webhook(&state, signed_webhook(&fields, WEBHOOK_URL)).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body.contains(r#"name="from""#), from, "{body}");
        assert_eq!(body.contains(r#"name="callerName""#), caller_name, "{body}");
        if caller_name {
            assert!(
                body.contains(&format!(
                    r#"<Parameter name="callerName" value="{longest}"/>"#
                )),
                "{body}"
            );
        }
    }
}

#[tokio::test]
async fn webhook_signed_url_keeps_the_query_string() {
    let state = webhook_state(&[]);
    let mut e = signed_webhook(&[], &format!("{WEBHOOK_URL}?tenant=a"));
    e["rawQueryString"] = json!("tenant=a");
    assert_eq!(webhook(&state, e).await.0, 200);
    // Signed without it: refused.
    let mut e = signed_webhook(&[], WEBHOOK_URL);
    e["rawQueryString"] = json!("tenant=a");
    assert_eq!(webhook(&state, e).await.0, 403);
}

#[tokio::test]
async fn webhook_signed_url_has_no_bare_question_mark() {
    // lambda_http builds the URI from `rawQueryString`, and an empty one adds no `?`; a `Request`
    // built otherwise can still end in a bare `?`, which adds nothing to the signed URL either.
    let state = webhook_state(&[]);
    let bare = |value: Value| {
        let mut request = lambda_http::request::from_str(&value.to_string()).expect("event");
        *request.uri_mut() = "https://hooks.example.com/voice?".parse().expect("uri");
        assert_eq!(
            request.uri().query(),
            Some(""),
            "the URI keeps its bare `?`"
        );
        request
    };
    let status = |value: Value| {
        let request = bare(value);
        let state = &state;
        async move {
            voice_webhook::handle(state, request)
                .await
                .status()
                .as_u16()
        }
    };
    assert_eq!(status(signed_webhook(&[], WEBHOOK_URL)).await, 200);
    assert_eq!(
        status(signed_webhook(&[], &format!("{WEBHOOK_URL}?"))).await,
        403
    );
}

#[tokio::test]
async fn webhook_refusal_headers_and_too_large_bodies() {
    let state = webhook_state(&[]);
    let request = |value: Value| lambda_http::request::from_str(&value.to_string()).expect("event");
    let mut e = event("voice-webhook.json");
    e["requestContext"]["http"]["method"] = json!("GET");
    let r = voice_webhook::handle(&state, request(e)).await;
    assert_eq!(r.status().as_u16(), 405);
    assert_eq!(
        r.headers().get("allow").and_then(|v| v.to_str().ok()),
        Some("POST")
    );
    let mut e = event("voice-webhook.json");
    e["headers"]["x-twilio-signature"] = json!("YFfwGS2Ev7f9qAP9MmRoMS7C724=");
    let r = voice_webhook::handle(&state, request(e)).await;
    assert_eq!(r.status().as_u16(), 403);
    assert!(r.headers().get("allow").is_none());

    let mut e = event("voice-webhook.json");
    e["body"] = json!("a".repeat(stream_gate_domain::webhook_decision::MAX_BODY_BYTES + 1));
    assert_eq!(webhook(&state, e).await, (413, String::new()));
}

// Shared-key signatures (Twilio's Webhooks configuration API), computed by Twilio's own Python
// library: accepted at the handshake and at the webhook; wrong key id, wrong or missing algorithm
// and SHA1/SHA256 confusion refused with their own reason codes.
const SHARED_KEY_ID: &str = "KStestonly00000000000000000000001";
const SHARED_KEY: &str = "test-only-shared-key-secret-sha";
const SETTINGS: &str = "X-Twilio-Webhooks-Signature-Settings";

fn with_shared_key(mut e: Value, signature: &str, settings: &str, header_map: &str) -> Value {
    if let Some(h) = e[header_map].as_object_mut() {
        h.retain(|name, _| !name.eq_ignore_ascii_case("x-twilio-signature"));
    }
    e[header_map]["X-Twilio-Signature"] = json!(signature);
    e[header_map][SETTINGS] = json!(settings);
    e
}

/// The shared-key signature Twilio's Python library computes over `voice-webhook.json`'s form
/// for `url` with `algorithm`.
fn oracle_webhook_signature(url: &str, algorithm: &str) -> String {
    let body = event("voice-webhook.json")["body"]
        .as_str()
        .expect("body")
        .to_owned();
    let params: Vec<(String, String)> = url::form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect();
    let params: Vec<(&str, &str)> = params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    stream_gate_testkit::oracle::twilio_signature(SHARED_KEY, url, &params, algorithm)
}

#[tokio::test]
async fn webhook_signature_settings_header_must_come_once_or_repeat_one_value() {
    let state = webhook_state(&[]);
    let sig = oracle_webhook_signature(WEBHOOK_URL, "HMAC_SHA256");
    let settings = format!("key={SHARED_KEY_ID},algorithm=HMAC_SHA256");
    // lambda_http joins repeated headers of an HTTP API event; a `Request` can still carry two.
    let post = |second: &str| {
        let e = with_shared_key(event("voice-webhook.json"), &sig, &settings, "headers");
        let mut request = lambda_http::request::from_str(&e.to_string()).expect("event");
        request.headers_mut().append(
            SETTINGS,
            http::HeaderValue::from_str(second).expect("header"),
        );
        request
    };
    let ok = voice_webhook::handle(&state, post(&settings)).await;
    assert_eq!(
        ok.status().as_u16(),
        200,
        "the same settings twice count once"
    );
    let other = "key=KSother,algorithm=HMAC_SHA256";
    let refused = voice_webhook::handle(&state, post(other)).await;
    assert_eq!(
        refused.status().as_u16(),
        403,
        "two different settings are refused"
    );
}

#[tokio::test]
async fn shared_key_signatures_from_twilios_library_at_the_webhook() {
    let state = webhook_state(&[]);
    let url = "https://hooks.example.com/voice";
    let post = |sig: &str, settings: &str| {
        with_shared_key(event("voice-webhook.json"), sig, settings, "headers")
    };
    for alg in ["HMAC_SHA256", "HMAC_SHA1"] {
        let sig = oracle_webhook_signature(url, alg);
        let (status, body) = webhook(
            &state,
            post(&sig, &format!("key={SHARED_KEY_ID},algorithm={alg}")),
        )
        .await;
        assert_eq!(status, 200, "{alg}");
        assert!(body.contains("<Parameter name=\"token\""), "{alg}");
    }
    let sha1 = oracle_webhook_signature(url, "HMAC_SHA1");
    for settings in [
        "key=KSother,algorithm=HMAC_SHA1".to_owned(),
        format!("key={SHARED_KEY_ID}"),
        format!("key={SHARED_KEY_ID},algorithm=HMAC_MD5"),
        format!("key={SHARED_KEY_ID},algorithm=HMAC_SHA256"),
    ] {
        assert_eq!(
            webhook(&state, post(&sha1, &settings)).await.0,
            403,
            "{settings}"
        );
    }
}

/// `…/relay/ended` in-process on a recording sink: with call state, the first end of a call the
/// webhook answered is one record and a replay adds none; with `off` (explicit, warned about) there
/// is no mark, so every replay of the signed POST is delivered again (SECURITY.md's gap).
#[tokio::test]
async fn a_session_end_is_delivered_once_with_call_state_and_every_time_without() {
    use stream_gate_lambda::adapters::{MemoryStore, RecordingSink};
    let relay = [("STREAM_GATE_PROTOCOLS", "media-streams,conversation-relay")];
    for (stateful, expected) in [(true, 1), (false, 3)] {
        let sink = Arc::new(RecordingSink::new());
        let mut state = webhook_state(&relay);
        state.sink = sink.clone();
        if stateful {
            state.call_state = CallState::Store(Arc::new(MemoryStore::new(16)));
        }
        let (status, body) = webhook(&state, event("voice-webhook-relay.json")).await;
        assert_eq!(status, 200, "{body}");
        for _ in 0..3 {
            let (status, body) = webhook(&state, event("voice-webhook-relay-ended.json")).await;
            assert_eq!(status, 200, "{body}");
            assert_eq!(
                body,
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response/>"
            );
        }
        let records = sink.records();
        assert_eq!(records.len(), expected, "call state: {stateful}");
        assert!(records.iter().all(
            |r| r.partition_key() == "CA0123456789abcdef0123456789abcdef"
                && r.json().contains("\"type\":\"session_end\"")
        ));
    }
}

/// A store that does not answer within the invocation's budget: 503 (`call_state_unavailable`),
/// and nothing delivered (no record without the mark).
#[tokio::test(start_paused = true)]
async fn a_session_end_the_store_cannot_mark_in_time_is_refused_and_not_delivered() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use stream_gate_lambda::adapters::{MemoryStore, RecordingSink};
    let sink = Arc::new(RecordingSink::new());
    let mut state = webhook_state(&[("STREAM_GATE_PROTOCOLS", "media-streams,conversation-relay")]);
    state.sink = sink.clone();
    let store = Arc::new(support::slow_fakes::SlowStore {
        inner: Arc::new(MemoryStore::new(16)),
        delay: std::time::Duration::from_secs(30),
        calls: AtomicUsize::new(0),
    });
    state.call_state = CallState::Store(store.clone());
    let started = tokio::time::Instant::now();
    let (status, _) = webhook(&state, event("voice-webhook-relay-ended.json")).await;
    assert_eq!(status, 503);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(4),
        "cut at the budget"
    );
    assert_eq!(store.calls.load(Ordering::SeqCst), 1);
    assert!(sink.records().is_empty());
}
