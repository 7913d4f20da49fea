//! Issue #22, items 2 and 8.
//!
//! A voice-webhook POST replayed at any age is answered with the token first issued for its
//! CallSid — expired by then, so the router's `start` check closes it as `call_token_expired` —
//! and never with a new one: in-process, with the clock passed in (`voice_webhook::handle_at`),
//! against the memory store and against DynamoDB on moto through the real AWS SDK.
//!
//! Two starts racing in DynamoDB (`TransactionConflict`) close the loser as the rule it raced for,
//! not as an unavailable store: the real router binary and SDK, with the DynamoDB error document
//! (which moto never produces) served by the fault proxy.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::{
    ConfigBag, Credentials as AwsCredentials, Intercept, Region, RuntimeComponents,
};
use aws_sdk_dynamodb::types::AttributeValue;
use axum::http::StatusCode;
use serde_json::{json, Value};
use stream_gate_domain::verdict::{judge_frame, CallTokenPolicy, Verdict};
use stream_gate_domain::{
    compute_signature, fixtures, AccountSid, CallSid, Credentials, StreamSid,
};
use stream_gate_lambda::adapters::{CallStateStore, DynamoDbStore, MemoryStore, NoSink};
use stream_gate_lambda::config::WebhookConfig;
use stream_gate_lambda::entrypoints::voice_webhook;
use stream_gate_lambda::state::{CallState, WebhookState};
use stream_gate_testkit::fault_proxy::{Fault, FaultProxy};
use stream_gate_testkit::moto::moto;
use stream_gate_testkit::{event, repo_file, Function, ManagementEndpoint};

mod support;
use support::dynamodb::create_table;
use support::states::credentials;

/// The account, call and auth token `events/voice-webhook.json` is signed with.
const AC: &str = "ACdeadbeefdeadbeefdeadbeefdeadbeef";
const CA: &str = "CA0123456789abcdef0123456789abcdef";
const AUTH_TOKEN: &str = "test-only-auth-token-not-a-secret";
/// The URL it is signed for (`https://{domainName}{rawPath}`).
const URL: &str = "https://hooks.example.com/voice";
/// When the first webhook comes (any time works: the clock is passed in).
const T0: u64 = 1_800_000_000;
const DAY: u64 = 86_400;
/// The default `STREAM_GATE_ISSUED_RETENTION_DAYS`, which these tests run with.
const RETENTION_DAYS: u64 = 400;
/// The default call-token lifetime.
const TTL: u64 = 300;

/// A fresh webhook instance on `store`, with the default configuration.
fn webhook(store: &Arc<dyn CallStateStore>) -> WebhookState {
    let config = WebhookConfig::from_lookup(|k| match k {
        "STREAM_GATE_STREAM_URL" => Some("wss://gate.example.com/prod".into()),
        "STREAM_GATE_CALL_STATE" => Some("memory".into()),
        _ => None,
    })
    .expect("config");
    assert_eq!(
        config.issued_retention,
        Duration::from_secs(RETENTION_DAYS * DAY),
        "the default retention"
    );
    WebhookState {
        config,
        credentials: credentials(),
        call_state: CallState::Store(store.clone()),
        sink: Arc::new(NoSink),
    }
}

/// `events/voice-webhook.json` (signed for `CA`), or the same POST for `call`, signed for it.
fn webhook_post(call: &str) -> Value {
    let mut e = event("voice-webhook.json");
    if call != CA {
        let params = [("AccountSid", AC), ("CallSid", call)];
        e["body"] = json!(url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(params)
            .finish());
        e["headers"]["x-twilio-signature"] = json!(compute_signature(AUTH_TOKEN, URL, &params));
    }
    e
}

/// The token the webhook answers to `post` at `now`.
async fn token_at(state: &WebhookState, post: &Value, now: u64) -> String {
    let request = lambda_http::request::from_str(&post.to_string()).expect("http event");
    let response = voice_webhook::handle_at(state, request, now).await;
    assert_eq!(response.status(), 200, "at {now}");
    let lambda_http::Body::Text(twiml) = response.body() else {
        panic!("TwiML text");
    };
    let marker = "name=\"token\" value=\"";
    let at = twiml.find(marker).expect("token") + marker.len();
    twiml[at..at + twiml[at..].find('"').expect("quote")].to_owned()
}

/// The router's `start` check (the domain's verdict) for `token` on `call`'s stream at `now`.
fn start_check(token: &str, call: &str, now: u64) -> Verdict {
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

fn closes_as(verdict: Verdict) -> String {
    match verdict {
        Verdict::Close(reason) => reason.code().to_owned(),
        Verdict::Accept(_) => "accepted".to_owned(),
    }
}

/// The first webhook's token is live; the same signed POST replayed a day and a second, a month
/// and 364 days later (each on a fresh instance) gets exactly that token, whose `start` closes as
/// `call_token_expired`; past the retention, while the record still exists, the same again. A
/// webhook for another call a month later gets its own live token. Returns the first token.
async fn replays_get_the_first_token(store: Arc<dyn CallStateStore>) -> String {
    let post = webhook_post(CA);
    let first = token_at(&webhook(&store), &post, T0).await;
    assert_eq!(closes_as(start_check(&first, CA, T0)), "accepted");
    for age in [DAY + 1, 30 * DAY, 364 * DAY, RETENTION_DAYS * DAY + 1] {
        let now = T0 + age;
        let replayed = token_at(&webhook(&store), &post, now).await;
        // Never assert_eq on tokens: a failure would print them.
        assert!(
            replayed == first,
            "+{age} s: the first token, not a new one"
        );
        assert_eq!(
            closes_as(start_check(&replayed, CA, now)),
            "call_token_expired",
            "+{age} s"
        );
    }
    let other_call = "CA0123456789abcdef0123456789abcdee";
    let now = T0 + 30 * DAY;
    let other = token_at(&webhook(&store), &webhook_post(other_call), now).await;
    assert!(other != first, "another call has its own token");
    assert_eq!(closes_as(start_check(&other, other_call, now)), "accepted");
    first
}

#[tokio::test]
async fn a_webhook_replayed_at_any_age_gets_the_first_token_in_memory() {
    replays_get_the_first_token(Arc::new(MemoryStore::new(1000))).await;
}

fn dynamodb(endpoint: &str) -> aws_sdk_dynamodb::Client {
    let conf = aws_sdk_dynamodb::Config::builder()
        .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(AwsCredentials::new(
            "testing", "testing", None, None, "test",
        ))
        .retry_config(aws_sdk_dynamodb::config::retry::RetryConfig::disabled())
        .build();
    aws_sdk_dynamodb::Client::from_conf(conf)
}

fn number(item: &std::collections::HashMap<String, AttributeValue>, name: &str) -> Option<u64> {
    item.get(name)?.as_n().ok()?.parse().ok()
}

/// The same on DynamoDB; then the record itself: written once (its expiry and its TTL, issue time
/// plus the retention, untouched by every replay), and the limit SECURITY.md states: once the
/// record is gone (DynamoDB's TTL deletes it some time after the retention), a replay is a new call.
#[tokio::test]
async fn a_webhook_replayed_at_any_age_gets_the_first_token_on_dynamodb() {
    let m = moto().await;
    let client = dynamodb(&m.endpoint);
    create_table(&client, "calls").await;
    let store: Arc<dyn CallStateStore> =
        Arc::new(DynamoDbStore::with_client(client.clone(), "calls"));
    let first = replays_get_the_first_token(store.clone()).await;

    let key = AttributeValue::S(format!("issued#{AC}#{CA}"));
    let item = client
        .get_item()
        .table_name("calls")
        .key("pk", key.clone())
        .consistent_read(true)
        .send()
        .await
        .expect("get")
        .item
        .expect("the issued record");
    assert_eq!(number(&item, "exp"), Some(T0 + TTL), "the first expiry");
    assert_eq!(
        number(&item, "ttl"),
        Some(T0 + RETENTION_DAYS * DAY),
        "TTL = issue time + retention, never moved by a replay"
    );
    assert_eq!(item.len(), 3, "pk, exp, ttl: {:?}", item.keys());

    // What DynamoDB's TTL does some time after the retention: the record goes, and with it the
    // memory of the call.
    client
        .delete_item()
        .table_name("calls")
        .key("pk", key)
        .send()
        .await
        .expect("delete");
    let now = T0 + RETENTION_DAYS * DAY + 3 * DAY;
    let minted = token_at(&webhook(&store), &webhook_post(CA), now).await;
    assert!(
        minted != first,
        "past the retention, a replay is a new call"
    );
    assert_eq!(closes_as(start_check(&minted, CA, now)), "accepted");
}

/// Counts the `GetItem` requests a client sends.
#[derive(Debug, Default, Clone)]
struct CountGets(Arc<std::sync::atomic::AtomicUsize>);

impl Intercept for CountGets {
    fn name(&self) -> &'static str {
        "CountGets"
    }
    fn read_before_transmit(
        &self,
        ctx: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        if ctx.request().headers().get("x-amz-target") == Some("DynamoDB_20120810.GetItem") {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        Ok(())
    }
}

/// A put that fails for any reason but the record's existence is the store failing: the webhook
/// refuses (503) with that error's code, and does not read the record as if the call had been
/// seen before.
#[tokio::test]
async fn a_failed_put_is_an_unavailable_store_not_a_call_seen_before() {
    let proxy = FaultProxy::start("http://127.0.0.1:9").await;
    proxy.set(Fault::Error(400, "ProvisionedThroughputExceededException"));
    let gets = CountGets::default();
    let conf = dynamodb(&proxy.url)
        .config()
        .to_builder()
        .interceptor(gets.clone())
        .build();
    let store = DynamoDbStore::with_client(aws_sdk_dynamodb::Client::from_conf(conf), "calls");
    let (account, call) = (
        AccountSid::parse(AC).expect("ac"),
        CallSid::parse(CA).expect("ca"),
    );
    let answer = store
        .issue_call_token(&account, &call, T0 + TTL, T0 + RETENTION_DAYS * DAY, T0)
        .await;
    assert_eq!(
        answer.map_err(|e| e.code),
        Err("ProvisionedThroughputExceededException".to_owned())
    );
    assert_eq!(gets.0.load(std::sync::atomic::Ordering::SeqCst), 0);
}

const ROUTER: &str = env!("CARGO_BIN_EXE_router");

/// DynamoDB's answer to a `TransactWriteItems` it cancelled, with one reason per item (item 0: the
/// connection's start, item 1: the token's claim), as the service spells it.
fn cancelled(codes: [&str; 2]) -> String {
    json!({
        "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
        "Message": format!(
            "Transaction cancelled, please refer cancellation reasons for specific reasons [{}, {}]",
            codes[0], codes[1]
        ),
        "CancellationReasons": codes.iter().map(|c| json!({"Code": c})).collect::<Vec<_>>(),
    })
    .to_string()
}

fn json_lines(output: &[String]) -> Vec<Value> {
    output
        .iter()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Issue #22 item 8: a start whose transaction DynamoDB cancels for a `TransactionConflict` (the
/// other start of a race is writing the same item) closes as `call_token_reused` (the claim) or
/// `start_repeated` (the connection), with no `CallStateUnavailable` metric and no ERROR line. A
/// cancellation for a reason that is not a rule (throttling) is still the store failing: closed as
/// `call_state_unavailable`, with the metric and the ERROR line (which shows the checks can fail).
#[tokio::test]
async fn a_start_that_loses_a_race_closes_as_the_rule_it_raced_for() {
    // Every DynamoDB request is answered by the proxy itself: nothing is forwarded.
    let proxy = FaultProxy::start("http://127.0.0.1:9").await;
    let mgmt = ManagementEndpoint::start(StatusCode::NO_CONTENT).await;
    let creds = repo_file("events/credentials.test.json")
        .display()
        .to_string();
    let f = Function::start(
        ROUTER,
        &[
            ("STREAM_GATE_SECRET_FILE", &creds),
            ("STREAM_GATE_MANAGEMENT_ENDPOINT", &mgmt.url),
            ("STREAM_GATE_CALL_STATE", "dynamodb"),
            ("STREAM_GATE_CALL_TABLE", "calls"),
            ("AWS_ENDPOINT_URL", &proxy.url),
        ],
    )
    .await;
    let start_on = |connection: &str| {
        let mut e = event("default-start.json");
        e["requestContext"]["connectionId"] = json!(connection);
        e
    };
    for (i, (codes, wanted)) in [
        (["None", "TransactionConflict"], "call_token_reused"),
        (["TransactionConflict", "None"], "start_repeated"),
        (["None", "ConditionalCheckFailed"], "call_token_reused"),
        (["ConditionalCheckFailed", "None"], "start_repeated"),
    ]
    .into_iter()
    .enumerate()
    {
        proxy.set(Fault::Answer(400, cancelled(codes)));
        let r = f.respond(start_on(&format!("race-{i}"))).await;
        assert_eq!(r["statusCode"], 200);
        assert_eq!(f.last_reason().await.as_deref(), Some(wanted), "{codes:?}");
    }
    let lines = json_lines(&f.output().await);
    assert!(
        !lines.iter().any(|l| l["level"] == "ERROR"),
        "a race is not an outage: {lines:?}"
    );
    let metric = |lines: &[Value]| {
        lines
            .iter()
            .any(|l| l.to_string().contains("CallStateUnavailable"))
    };
    assert!(!metric(&lines), "no CallStateUnavailable metric: {lines:?}");
    assert_eq!(mgmt.seen().len(), 4, "each loser is closed");

    proxy.set(Fault::Answer(400, cancelled(["None", "ThrottlingError"])));
    let r = f.respond(start_on("throttled")).await;
    assert_eq!(r["statusCode"], 200);
    assert_eq!(
        f.last_reason().await.as_deref(),
        Some("call_state_unavailable")
    );
    let lines = json_lines(&f.output().await);
    assert!(metric(&lines), "the store failing is counted: {lines:?}");
    assert!(lines.iter().any(|l| l["level"] == "ERROR"), "{lines:?}");
}
