//! The states the handlers run on in tests: the test credentials document and each binary's
//! state on a given call-state store, built as the binaries build them.

use std::sync::Arc;
use std::time::Duration;

use stream_gate_lambda::adapters::{
    CallStateStore, CredentialCache, FileSource, NoSink, RecordingCloser,
};
use stream_gate_lambda::config::{RouterConfig, WebhookConfig};
use stream_gate_lambda::state::{CallState, RouterState, WebhookState};
use stream_gate_testkit::repo_file;

/// The repository's test credentials document (`events/credentials.test.json`).
pub const CREDENTIALS_FILE: &str = "events/credentials.test.json";

/// The test credentials behind the cache the binaries use (5-minute TTL and staleness).
pub fn credentials() -> Arc<CredentialCache> {
    Arc::new(CredentialCache::new(
        Box::new(FileSource::new(repo_file(CREDENTIALS_FILE))),
        Duration::from_secs(300),
        Duration::from_secs(300),
    ))
}

/// The variables of `pairs`; `STREAM_GATE_CALL_STATE` (required) is `off` unless `pairs` sets it:
/// the tests give each state its call state themselves.
pub fn lookup(pairs: &[(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
    let pairs = pairs.to_vec();
    move |k| {
        pairs
            .iter()
            .find(|(name, _)| *name == k)
            .map(|(_, v)| v.to_string())
            .or_else(|| (k == "STREAM_GATE_CALL_STATE").then(|| "off".to_owned()))
    }
}

/// A router on `store`, closing through a recording closer, its Management API a dead port.
pub fn router_on(store: Arc<dyn CallStateStore>) -> RouterState {
    // The store is built by the test; the variable only has to be valid.
    let env = lookup(&[
        ("STREAM_GATE_MANAGEMENT_ENDPOINT", "http://127.0.0.1:9/prod"),
        ("STREAM_GATE_CALL_STATE", "memory"),
    ]);
    let config = RouterConfig::from_lookup(env).expect("config");
    let closer = Arc::new(RecordingCloser::default());
    RouterState::new(config, credentials(), closer, CallState::Store(store))
}

/// A voice webhook on `store`, answering with the stream URL `wss://gate.example.com/prod`.
pub fn webhook_on(store: Arc<dyn CallStateStore>) -> WebhookState {
    let env = lookup(&[
        ("STREAM_GATE_STREAM_URL", "wss://gate.example.com/prod"),
        ("STREAM_GATE_CALL_STATE", "memory"),
    ]);
    WebhookState {
        config: WebhookConfig::from_lookup(env).expect("config"),
        credentials: credentials(),
        call_state: CallState::Store(store),
        sink: Arc::new(NoSink),
    }
}

/// Now in Unix milliseconds, as an event's `connectedAt`.
pub fn now_ms() -> i64 {
    i64::try_from(stream_gate_lambda::clock::unix_now_ms()).expect("ms")
}
