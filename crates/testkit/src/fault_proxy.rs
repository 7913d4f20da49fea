//! A fault-injecting HTTP proxy on loopback, in front of moto: passes requests through, or delays
//! them, or answers with an error of its own (throttling, 5xx, access denied, or a whole error
//! document such as DynamoDB's `TransactionCanceledException` with its cancellation reasons, which
//! moto never produces), and counts the `GetSecretValue` requests that reach it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// What the proxy does with the next requests.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Forward to moto.
    Pass,
    /// Hold the request this long, then forward it.
    Delay(Duration),
    /// Answer with this status and Secrets Manager error type (`__type` of the JSON 1.1 protocol).
    Error(u16, &'static str),
    /// Answer with this status and this JSON document (a whole error of the JSON protocols).
    Answer(u16, String),
}

#[derive(Clone)]
struct Shared {
    upstream: String,
    fault: Arc<Mutex<Fault>>,
    gets: Arc<AtomicUsize>,
    http: reqwest::Client,
}

/// The running proxy; stopped on drop.
pub struct FaultProxy {
    pub url: String,
    fault: Arc<Mutex<Fault>>,
    gets: Arc<AtomicUsize>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl FaultProxy {
    pub async fn start(upstream: &str) -> FaultProxy {
        let fault = Arc::new(Mutex::new(Fault::Pass));
        let gets = Arc::new(AtomicUsize::new(0));
        let shared = Shared {
            upstream: upstream.trim_end_matches('/').to_owned(),
            fault: fault.clone(),
            gets: gets.clone(),
            http: reqwest::Client::new(),
        };
        let app = axum::Router::new().fallback(forward).with_state(shared);
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FaultProxy {
            url,
            fault,
            gets,
            server,
        }
    }

    pub fn set(&self, fault: Fault) {
        *self.fault.lock().expect("lock") = fault;
    }

    /// `GetSecretValue` requests seen so far (retries included).
    pub fn gets(&self) -> usize {
        self.gets.load(Ordering::SeqCst)
    }
}

async fn forward(State(s): State<Shared>, req: Request) -> Response {
    let is_get = req
        .headers()
        .get("x-amz-target")
        .is_some_and(|v| v == "secretsmanager.GetSecretValue");
    if is_get {
        s.gets.fetch_add(1, Ordering::SeqCst);
    }
    let fault = s.fault.lock().expect("lock").clone();
    match fault {
        Fault::Error(status, kind) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
            let body = format!(r#"{{"__type":"{kind}","message":"injected by the fault proxy"}}"#);
            let mut r = (status, body).into_response();
            r.headers_mut().insert(
                "content-type",
                HeaderValue::from_static("application/x-amz-json-1.1"),
            );
            return r;
        }
        Fault::Answer(status, body) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
            let mut r = (status, body).into_response();
            r.headers_mut().insert(
                "content-type",
                HeaderValue::from_static("application/x-amz-json-1.0"),
            );
            return r;
        }
        Fault::Delay(d) => tokio::time::sleep(d).await,
        Fault::Pass => {}
    }
    let (parts, body) = req.into_parts();
    let Ok(bytes) = to_bytes(body, 1 << 20).await else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let mut out = s
        .http
        .request(parts.method, format!("{}{path}", s.upstream))
        .body(bytes);
    for (name, value) in &parts.headers {
        if name != "host" && name != "content-length" {
            out = out.header(name, value);
        }
    }
    match out.send().await {
        Ok(resp) => {
            let status = resp.status();
            let headers = resp.headers().clone();
            let body = resp.bytes().await.unwrap_or_default();
            let mut r = Response::new(Body::from(body));
            *r.status_mut() = status;
            for (name, value) in &headers {
                if name != "content-length" && name != "transfer-encoding" {
                    r.headers_mut().insert(name, value.clone());
                }
            }
            r
        }
        Err(_) => StatusCode::BAD_GATEWAY.into_response(),
    }
}
