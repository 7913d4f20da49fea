//! A small, real AWS Lambda Runtime API server on loopback, so the real Lambda binaries can be run
//! and measured on one machine (tests, cold-start harness). Implements the paths the
//! `lambda_runtime` crate uses: `GET /2018-06-01/runtime/invocation/next` (long poll),
//! `POST .../invocation/{id}/response`, `POST .../invocation/{id}/error`, `POST .../init/error`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

/// What the function answered.
#[derive(Debug, Clone, PartialEq)]
pub enum Invocation {
    /// `POST .../response` body.
    Response(Value),
    /// `POST .../error` body.
    Error(Value),
}

/// Why an invocation got no answer.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeApiError {
    /// No answer within the timeout.
    #[error("the function did not answer in time")]
    Timeout,
    /// The server stopped.
    #[error("the runtime API server stopped")]
    Stopped,
}

type Pending = Arc<Mutex<HashMap<String, oneshot::Sender<Invocation>>>>;

#[derive(Clone)]
struct Shared {
    queue: Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<(String, Value)>>>,
    pending: Pending,
    init_error: Arc<Mutex<Option<InitError>>>,
    /// `GET .../next` requests received.
    next_calls: Arc<std::sync::atomic::AtomicUsize>,
}

/// What a function reported to `POST .../init/error`.
#[derive(Debug, Clone, PartialEq)]
pub struct InitError {
    /// The `Lambda-Runtime-Function-Error-Type` header, if any.
    pub error_type: Option<String>,
    /// The body.
    pub body: Value,
}

/// A running Runtime API server.
pub struct RuntimeApi {
    addr: SocketAddr,
    sender: mpsc::UnboundedSender<(String, Value)>,
    shared: Shared,
    next_id: std::sync::atomic::AtomicU64,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn next(State(s): State<Shared>) -> Response {
    s.next_calls
        .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let item = s.queue.lock().await.recv().await;
    let Some((id, event)) = item else {
        return StatusCode::GONE.into_response();
    };
    let deadline = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() + 30_000);
    let mut headers = HeaderMap::new();
    let pairs = [
        ("lambda-runtime-aws-request-id", id.clone()),
        ("lambda-runtime-deadline-ms", deadline.to_string()),
        (
            "lambda-runtime-invoked-function-arn",
            "arn:aws:lambda:us-east-1:000000000000:function:local".to_owned(),
        ),
        (
            "lambda-runtime-trace-id",
            format!("Root=1-00000000-{id:0>24}"),
        ),
    ];
    for (k, v) in pairs {
        if let Ok(v) = HeaderValue::from_str(&v) {
            headers.insert(k, v);
        }
    }
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    (StatusCode::OK, headers, event.to_string()).into_response()
}

fn finish(s: &Shared, id: &str, answer: Invocation) -> StatusCode {
    let tx = s.pending.lock().ok().and_then(|mut p| p.remove(id));
    match tx {
        Some(tx) => {
            let _ = tx.send(answer);
            StatusCode::ACCEPTED
        }
        None => StatusCode::BAD_REQUEST,
    }
}

fn json_of(body: &Bytes) -> Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()))
}

async fn response(State(s): State<Shared>, Path(id): Path<String>, body: Bytes) -> StatusCode {
    finish(&s, &id, Invocation::Response(json_of(&body)))
}

async fn error(State(s): State<Shared>, Path(id): Path<String>, body: Bytes) -> StatusCode {
    finish(&s, &id, Invocation::Error(json_of(&body)))
}

async fn init_error(State(s): State<Shared>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let error_type = headers
        .get("lambda-runtime-function-error-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if let Ok(mut e) = s.init_error.lock() {
        *e = Some(InitError {
            error_type,
            body: json_of(&body),
        });
    }
    StatusCode::ACCEPTED
}

impl RuntimeApi {
    /// Starts a server on 127.0.0.1 on a free port.
    pub async fn start() -> std::io::Result<Self> {
        let (sender, receiver) = mpsc::unbounded_channel();
        let shared = Shared {
            queue: Arc::new(tokio::sync::Mutex::new(receiver)),
            pending: Arc::default(),
            init_error: Arc::default(),
            next_calls: Arc::default(),
        };
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(response),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self {
            addr,
            sender,
            shared,
            next_id: Default::default(),
            server,
        })
    }

    /// The address to put in `AWS_LAMBDA_RUNTIME_API`.
    pub fn address(&self) -> SocketAddr {
        self.addr
    }

    /// Queues `event` for the function and waits for its answer.
    pub async fn invoke(
        &self,
        event: Value,
        timeout: Duration,
    ) -> Result<Invocation, RuntimeApiError> {
        let id = format!(
            "req-{}",
            self.next_id
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
        );
        let (tx, rx) = oneshot::channel();
        if let Ok(mut p) = self.shared.pending.lock() {
            p.insert(id.clone(), tx);
        }
        self.sender
            .send((id, event))
            .map_err(|_| RuntimeApiError::Stopped)?;
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(_)) => Err(RuntimeApiError::Stopped),
            Err(_) => Err(RuntimeApiError::Timeout),
        }
    }

    /// What the function reported to `init/error`, if anything.
    pub fn init_error(&self) -> Option<InitError> {
        self.shared.init_error.lock().ok().and_then(|e| e.clone())
    }

    /// How many times a function asked for its next event.
    pub fn next_calls(&self) -> usize {
        self.shared
            .next_calls
            .load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// The environment a Lambda function process needs to run against `api`.
pub fn lambda_env(api: &RuntimeApi, function_name: &str) -> Vec<(String, String)> {
    [
        ("AWS_LAMBDA_RUNTIME_API", api.address().to_string()),
        ("AWS_LAMBDA_FUNCTION_NAME", function_name.to_owned()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128".to_owned()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_owned()),
        ("AWS_LAMBDA_LOG_STREAM_NAME", "local".to_owned()),
        (
            "AWS_LAMBDA_LOG_GROUP_NAME",
            format!("/aws/lambda/{function_name}"),
        ),
        ("AWS_REGION", "us-east-1".to_owned()),
        ("AWS_ACCESS_KEY_ID", "AKIDLOCALTEST".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "local-test-secret".to_owned()),
        ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}
