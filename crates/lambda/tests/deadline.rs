//! The invocation deadline (issue 22, item 4) with every dependency slow at once: a cold
//! credentials cache whose Secrets Manager takes 1.5 s, a DynamoDB that answers each call after
//! 1 s, and a Management API that never answers, in one router invocation with Lambda's 5 s. The
//! answer is ready a margin before the deadline, and the close that could not finish is loud.
//! Tokio's clock is paused: the waits cost no real time and the instants are exact.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
use serde_json::{json, Value};
use stream_gate_domain::CloseReason;
use stream_gate_lambda::adapters::{
    CallStateStore, CredentialCache, MemoryStore, RecordingCloser, StaticSource,
};
use stream_gate_lambda::budget::ANSWER_MARGIN;
use stream_gate_lambda::config::RouterConfig;
use stream_gate_lambda::entrypoints::router::{self, RouterOutcome};
use stream_gate_lambda::state::{CallState, RouterState};
use stream_gate_testkit::{event, repo_file};

mod support;
use support::log_capture;
use support::slow_fakes::{HangingCloser, SlowSource, SlowStore};

/// Lambda's timeout for the router in template.yaml.
const LAMBDA_TIMEOUT: Duration = Duration::from_secs(5);

fn config() -> RouterConfig {
    RouterConfig::from_lookup(|k| match k {
        "STREAM_GATE_MANAGEMENT_ENDPOINT" => Some("http://127.0.0.1:9/prod".to_owned()),
        "STREAM_GATE_CALL_STATE" => Some("dynamodb".to_owned()),
        "STREAM_GATE_CALL_TABLE" => Some("calls".to_owned()),
        _ => None,
    })
    .expect("config")
}

fn document() -> String {
    std::fs::read_to_string(repo_file("events/credentials.test.json")).expect("test credentials")
}

/// The shipped verified `start` on `connection`, connected a moment ago.
fn start_on(connection: &str) -> ApiGatewayWebsocketProxyRequest {
    let mut e: Value = event("default-start.json");
    e["requestContext"]["connectionId"] = json!(connection);
    let now = i64::try_from(stream_gate_lambda::clock::unix_now_ms()).expect("ms");
    e["requestContext"]["connectedAt"] = json!(now - 100);
    serde_json::from_value(e).expect("websocket event")
}

#[tokio::test(start_paused = true)]
async fn slow_secrets_manager_slow_dynamodb_and_a_hanging_management_api_in_one_invocation() {
    let table: Arc<dyn CallStateStore> = Arc::new(MemoryStore::new(100));
    // Another connection already used the call token (everything fast there).
    let first = RouterState::new(
        config(),
        Arc::new(CredentialCache::new(
            Box::new(StaticSource::new(stream_gate_domain::Secret::new(
                document(),
            ))),
            Duration::from_secs(300),
            Duration::from_secs(300),
        )),
        Arc::new(RecordingCloser::default()),
        CallState::Store(table.clone()),
    );
    let (_, o) = router::handle(&first, start_on("c-first")).await;
    assert!(matches!(o, RouterOutcome::Accepted(_)), "{o:?}");

    // A fresh instance where every dependency is slow or hangs.
    let fetches = Arc::new(AtomicUsize::new(0));
    let secrets = SlowSource {
        document: document(),
        delay: Duration::from_millis(1500),
        fetches: fetches.clone(),
    };
    let dynamodb = Arc::new(SlowStore {
        inner: table,
        delay: Duration::from_secs(1),
        calls: Default::default(),
    });
    let management = Arc::new(HangingCloser::default());
    let state = RouterState::new(
        config(),
        Arc::new(CredentialCache::new(
            Box::new(secrets),
            Duration::from_secs(300),
            Duration::from_secs(300),
        )),
        management.clone(),
        CallState::Store(dynamodb.clone()),
    );
    let started = tokio::time::Instant::now();
    let deadline = started + LAMBDA_TIMEOUT;
    // Bounded, so that a wait the budget does not cut fails the test instead of hanging it.
    let ((response, outcome), logs) = tokio::time::timeout(
        Duration::from_secs(60),
        log_capture::logs_of(router::handle_until(&state, start_on("c-second"), deadline)),
    )
    .await
    .expect("the invocation ends within its budget");

    // The token's second use is closed, and the answer is ready a margin before the deadline.
    assert_eq!(outcome, RouterOutcome::Closed(CloseReason::CallTokenReused));
    assert_eq!(response.status_code, 200);
    assert!(response.body.is_none(), "nothing is ever written back");
    assert_eq!(started.elapsed(), LAMBDA_TIMEOUT - ANSWER_MARGIN);
    // Each slow dependency was really waited for.
    assert_eq!(fetches.load(Ordering::SeqCst), 1);
    assert!(dynamodb.calls.load(Ordering::SeqCst) >= 1);
    assert!(management.attempts.load(Ordering::SeqCst) >= 1);
    // The close that the budget cut is loud: ERROR, with `deadline` as its error.
    let failed: Vec<&Value> = logs
        .iter()
        .filter(|l| l["event"] == "close_failed")
        .collect();
    assert_eq!(failed.len(), 1, "{logs:?}");
    assert_eq!(failed[0]["level"], "ERROR");
    assert_eq!(failed[0]["aws_error"], "deadline");
    assert_eq!(failed[0]["reason"], "call_token_reused");
}
