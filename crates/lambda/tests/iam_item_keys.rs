//! The item keys `stream_gate_lambda::iam::CALLS` lists are the ones the code really sends. The
//! router and webhook handlers run a call's whole life against DynamoDB (moto on loopback) through
//! the real SDK; an interceptor records every request's IAM action and partition key (each put of
//! a `TransactWriteItems` authorised as the `PutItem` it is). Every request must match a DynamoDB
//! call iam.rs lists for that function (action and key pattern), and every such call must have
//! been seen. tests/iam_policy.rs then evaluates those calls against the template's conditions
//! (`dynamodb:LeadingKeys`): together, no request the code makes is denied, and nothing beyond
//! them is granted.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use serde_json::{json, Value};
use stream_gate_lambda::adapters::{CallStateStore, DynamoDbStore};
use stream_gate_lambda::entrypoints::router::{self, RouterOutcome};
use stream_gate_lambda::entrypoints::voice_webhook;
use stream_gate_lambda::iam::{AwsCall, CALLS};
use stream_gate_lambda::state::RouterState;
use stream_gate_testkit::event;
use stream_gate_testkit::moto::moto;

mod support;
use support::dynamodb::{create_table, dynamodb_client};
use support::states::{now_ms, router_on, webhook_on};

/// Every DynamoDB request that goes out: its `x-amz-target` and JSON body.
#[derive(Debug, Default, Clone)]
struct Requests(Arc<Mutex<Vec<(String, Value)>>>);

impl Requests {
    fn take(&self) -> Vec<(String, Value)> {
        std::mem::take(&mut *self.0.lock().expect("requests"))
    }
}

impl Intercept for Requests {
    fn name(&self) -> &'static str {
        "Requests"
    }
    fn read_before_transmit(
        &self,
        ctx: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let request = ctx.request();
        let target = request
            .headers()
            .get("x-amz-target")
            .unwrap_or("")
            .to_owned();
        let body = request
            .body()
            .bytes()
            .and_then(|b| serde_json::from_slice(b).ok())
            .unwrap_or(Value::Null);
        self.0.lock().expect("requests").push((target, body));
        Ok(())
    }
}

fn pk(item: &Value) -> String {
    item["pk"]["S"].as_str().unwrap_or("<no pk>").to_owned()
}

/// What IAM authorises for one request: (action, partition key) per item it touches.
fn authorised(target: &str, body: &Value) -> Vec<(String, String)> {
    let one = |action: &str, key: &Value| vec![(format!("dynamodb:{action}"), pk(key))];
    match target.strip_prefix("DynamoDB_20120810.") {
        Some("GetItem") => one("GetItem", &body["Key"]),
        Some("DeleteItem") => one("DeleteItem", &body["Key"]),
        Some("PutItem") => one("PutItem", &body["Item"]),
        Some("UpdateItem") => one("UpdateItem", &body["Key"]),
        Some("TransactWriteItems") => body["TransactItems"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .flat_map(|item| match item {
                i if i.get("Put").is_some() => one("PutItem", &i["Put"]["Item"]),
                i if i.get("Update").is_some() => one("UpdateItem", &i["Update"]["Key"]),
                i if i.get("Delete").is_some() => one("DeleteItem", &i["Delete"]["Key"]),
                i => one("ConditionCheckItem", &i["ConditionCheck"]["Key"]),
            })
            .collect(),
        _ => vec![(format!("unmodelled:{target}"), String::new())],
    }
}

/// The DynamoDB calls iam.rs lists for `function`, with their key template.
fn listed(function: &str) -> Vec<(&'static str, &'static str)> {
    let calls: &[AwsCall] = CALLS
        .iter()
        .find(|(f, _)| *f == function)
        .map(|(_, c)| *c)
        .unwrap_or_default();
    calls
        .iter()
        .filter_map(|c| {
            c.context
                .iter()
                .find(|(k, _)| *k == "dynamodb:LeadingKeys")
                .map(|(_, key)| (c.action, *key))
        })
        .collect()
}

/// `conn#{connection_id}` matches `conn#` and one or more characters other than `#`.
fn key_matches(template: &str, key: &str) -> bool {
    let mut rest = key;
    for (i, part) in template.split('{').enumerate() {
        let literal = if i == 0 {
            part
        } else {
            let Some((_, literal)) = part.split_once('}') else {
                return false;
            };
            let end = rest.find('#').unwrap_or(rest.len());
            if end == 0 {
                return false;
            }
            rest = &rest[end..];
            literal
        };
        let Some(after) = rest.strip_prefix(literal) else {
            return false;
        };
        rest = after;
    }
    rest.is_empty()
}

/// Every request of `function` is a call iam.rs lists, and every call listed was made.
fn assert_listed(function: &str, requests: &[(String, Value)]) {
    let listed = listed(function);
    let mut seen = vec![false; listed.len()];
    for (target, body) in requests {
        for (action, key) in authorised(target, body) {
            let hit = listed
                .iter()
                .position(|(a, t)| *a == action && key_matches(t, &key));
            let Some(i) = hit else {
                panic!(
                    "{function} sent {action} on key {key}, which iam.rs does not list: {listed:?}"
                );
            };
            seen[i] = true;
        }
    }
    for ((action, key), seen) in listed.iter().zip(seen) {
        assert!(
            seen,
            "{function}: iam.rs lists {action} on {key}, never sent"
        );
    }
}

/// `file`'s event on `connection`, connected `age_ms` ago.
async fn route(state: &RouterState, file: &str, connection: &str, age_ms: i64) -> RouterOutcome {
    let now = now_ms();
    let mut e = event(file);
    e["requestContext"]["connectionId"] = json!(connection);
    e["requestContext"]["connectedAt"] = json!(now - age_ms);
    let e = serde_json::from_value::<router::RouterEvent>(e).expect("event");
    router::handle(state, e).await.1
}

#[tokio::test]
async fn every_dynamodb_request_of_the_handlers_is_a_call_iam_rs_lists() {
    let m = moto().await;
    let requests = Requests::default();
    let client = dynamodb_client(&m.endpoint, Duration::from_secs(5), requests.clone());
    create_table(&client, "calls").await;
    requests.take();
    let store: Arc<dyn CallStateStore> = Arc::new(DynamoDbStore::with_client(client, "calls"));

    // The router: a start with a call token (the connection and the claim), a frame on another
    // instance (reads the start), the disconnect.
    let (first, other) = (router_on(store.clone()), router_on(store.clone()));
    let o = route(&first, "default-start.json", "k1", 100).await;
    assert!(matches!(o, RouterOutcome::Accepted(_)), "{o:?}");
    let o = route(&other, "default-media.json", "k1", 60_000).await;
    assert!(matches!(o, RouterOutcome::Accepted(_)), "{o:?}");
    let o = route(&first, "disconnect.json", "k1", 60_000).await;
    assert_eq!(o, RouterOutcome::Disconnected);
    assert_listed("RouterFunction", &requests.take());

    // The webhook: a call seen first (the put), then again (the put refused, the read); a
    // ConversationRelay session's end, posted twice (the mark, then the mark refused and the read).
    let mut webhook = webhook_on(store.clone());
    webhook.config.protocols = stream_gate_domain::Protocols::BOTH;
    for file in [
        "voice-webhook.json",
        "voice-webhook.json",
        "voice-webhook-relay-ended.json",
        "voice-webhook-relay-ended.json",
    ] {
        let request = lambda_http::request::from_str(&event(file).to_string()).expect("http event");
        let response = voice_webhook::handle(&webhook, request).await;
        assert_eq!(response.status(), 200, "{file}");
    }
    assert_listed("VoiceWebhookFunction", &requests.take());
}

#[test]
fn key_templates_match_only_their_own_shape() {
    assert!(key_matches("conn#{connection_id}", "conn#Xk2TmdKPIAMCJqw="));
    assert!(key_matches("claim#{a}#{b}#{c}", "claim#AC1#CA2#17"));
    assert!(!key_matches("claim#{a}#{b}#{c}", "claim#AC1#CA2"));
    assert!(!key_matches("conn#{connection_id}", "conn#"));
    assert!(!key_matches("conn#{connection_id}", "issued#AC1#CA2"));
    assert!(!key_matches("issued#{a}#{b}", "issued#AC1#CA2#x"));
    assert_eq!(
        authorised("DynamoDB_20120810.Scan", &Value::Null),
        vec![(
            "unmodelled:DynamoDB_20120810.Scan".to_owned(),
            String::new()
        )]
    );
}
