//! Test support for stream-gate (a dev-dependency only, one copy for every crate's tests): a real
//! Lambda binary run under the loopback Runtime API ([`fake_runtime_api`]) with its output captured, a
//! loopback `@connections` endpoint that records what the router asks of it, moto on loopback
//! ([`moto`]) and a fault-injecting proxy ([`fault_proxy`]).
#![allow(missing_docs)]

pub mod fake_runtime_api;
pub mod fault_proxy;
pub mod moto;
pub mod oracle;
pub mod python;
pub mod schema;

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use fake_runtime_api::{lambda_env, Invocation, RuntimeApi};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The workspace root (where `events/`, `.venv` and `target/` live).
pub fn repo_root() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

/// A file of the repository, by its path from the root.
pub fn repo_file(rel: &str) -> PathBuf {
    repo_root().join(rel)
}

pub fn event(name: &str) -> Value {
    let text = std::fs::read_to_string(repo_file(&format!("events/{name}"))).expect("event file");
    serde_json::from_str(&text).expect("event json")
}

/// A Lambda binary running against its own Runtime API; killed on drop.
pub struct Function {
    pub api: RuntimeApi,
    child: Child,
    output: Arc<Mutex<Vec<String>>>,
}

impl Function {
    pub async fn start(binary: &str, env: &[(&str, &str)]) -> Function {
        let api = RuntimeApi::start().await.expect("runtime api");
        let mut cmd = Command::new(binary);
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(lambda_env(&api, "test-fn"))
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd.spawn().expect("spawn binary");
        let output = Arc::new(Mutex::new(Vec::new()));
        let out = child.stdout.take().expect("stdout");
        let err = child.stderr.take().expect("stderr");
        for stream in [
            Box::new(out) as Box<dyn tokio::io::AsyncRead + Unpin + Send>,
            Box::new(err),
        ] {
            let sink = output.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(stream).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    sink.lock().expect("lock").push(line);
                }
            });
        }
        Function { api, child, output }
    }

    pub async fn invoke(&self, event: Value) -> Invocation {
        self.api
            .invoke(event, Duration::from_secs(20))
            .await
            .expect("answer")
    }

    pub async fn respond(&self, event: Value) -> Value {
        match self.invoke(event).await {
            Invocation::Response(v) => v,
            Invocation::Error(e) => panic!("function error: {e}"),
        }
    }

    /// All output lines so far (waits briefly for the reader tasks to catch up).
    pub async fn output(&self) -> Vec<String> {
        tokio::time::sleep(Duration::from_millis(100)).await;
        self.output.lock().expect("lock").clone()
    }

    /// The JSON log lines that carry a `reason`, in order.
    pub async fn reasons(&self) -> Vec<String> {
        self.output()
            .await
            .iter()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            // A metric line (Embedded Metric Format) repeats a decision's code as its dimension.
            .filter(|v| v.get("_aws").is_none())
            .filter_map(|v| v.get("reason").and_then(Value::as_str).map(str::to_owned))
            .collect()
    }

    pub async fn last_reason(&self) -> Option<String> {
        self.reasons().await.pop()
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The process's exit status once it has exited, `None` if it still runs after `timeout`.
    pub async fn exit_status(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        tokio::time::timeout(timeout, self.child.wait())
            .await
            .ok()
            .and_then(Result::ok)
    }
}

/// A request seen by the loopback `@connections` endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub signed: bool,
}

/// Loopback stand-in for API Gateway's Management API: records requests, answers `status`.
pub struct ManagementEndpoint {
    pub url: String,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    bodies: Arc<Mutex<Vec<String>>>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for ManagementEndpoint {
    fn drop(&mut self) {
        self.server.abort();
    }
}

#[derive(Clone)]
struct Ep {
    seen: Arc<Mutex<Vec<Seen>>>,
    bodies: Arc<Mutex<Vec<String>>>,
    status: StatusCode,
}

async fn record(
    State(ep): State<Ep>,
    method: Method,
    Path((stage, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: String,
) -> StatusCode {
    ep.bodies.lock().expect("lock").push(body);
    let signed = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("AWS4-HMAC-SHA256"));
    ep.seen.lock().expect("lock").push(Seen {
        method: method.to_string(),
        path: format!("/{stage}/@connections/{id}"),
        signed,
    });
    ep.status
}

impl ManagementEndpoint {
    pub async fn start(status: StatusCode) -> ManagementEndpoint {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let app = axum::Router::new()
            .route("/{stage}/@connections/{id}", axum::routing::any(record))
            .with_state(Ep {
                seen: seen.clone(),
                bodies: bodies.clone(),
                status,
            });
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        ManagementEndpoint {
            url: format!("http://{addr}/prod"),
            seen,
            bodies,
            server,
        }
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("lock").clone()
    }

    /// The request bodies, in the order of [`seen`](Self::seen) (`PostToConnection` data).
    pub fn bodies(&self) -> Vec<String> {
        self.bodies.lock().expect("lock").clone()
    }
}
