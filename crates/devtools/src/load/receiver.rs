//! The load test's own HTTP sink: the gateway under load POSTs every record here (`local --sink
//! http://…`), and this counts what arrives, by type, checking each is a Record v1.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;
use serde::Deserialize;

/// Records received, by type.
#[derive(Debug, Default)]
pub struct Received {
    /// `start` records.
    pub start: AtomicU64,
    /// `media` records.
    pub media: AtomicU64,
    /// `stop` records.
    pub stop: AtomicU64,
    /// `disconnect` records.
    pub disconnect: AtomicU64,
    /// `mark` and `dtmf` (the load's calls send none).
    pub other: AtomicU64,
    /// Bodies that are not a Record v1 (must be zero).
    pub malformed: AtomicU64,
}

impl Received {
    /// Every record that arrived, whatever its type.
    pub fn total(&self) -> u64 {
        [
            &self.start,
            &self.media,
            &self.stop,
            &self.disconnect,
            &self.other,
        ]
        .iter()
        .map(|c| c.load(Ordering::Relaxed))
        .sum()
    }
}

#[derive(Deserialize)]
struct Envelope<'a> {
    v: u64,
    #[serde(rename = "type")]
    kind: &'a str,
    #[serde(rename = "connectionId")]
    _connection_id: &'a str,
}

async fn record(State(received): State<Arc<Received>>, body: Bytes) -> StatusCode {
    let counter = match serde_json::from_slice::<Envelope<'_>>(&body) {
        Ok(e) if e.v == 1 => match e.kind {
            "start" => &received.start,
            "media" => &received.media,
            "stop" => &received.stop,
            "disconnect" => &received.disconnect,
            _ => &received.other,
        },
        _ => {
            received.malformed.fetch_add(1, Ordering::Relaxed);
            return StatusCode::BAD_REQUEST;
        }
    };
    counter.fetch_add(1, Ordering::Relaxed);
    StatusCode::NO_CONTENT
}

/// A receiver listening on a free loopback port until the returned task is dropped or aborted.
pub async fn start() -> std::io::Result<(SocketAddr, Arc<Received>, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
    let addr = listener.local_addr()?;
    let received = Arc::new(Received::default());
    let app = Router::new()
        .route("/records", post(record))
        // A record is one frame (at most 64 KiB) and its envelope.
        .layer(DefaultBodyLimit::max(128 * 1024))
        .with_state(received.clone());
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((addr, received, task))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    async fn post(addr: SocketAddr, body: &str) -> String {
        let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let req = format!(
            "POST /records HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        s.write_all(req.as_bytes()).await.expect("write");
        let mut out = String::new();
        s.read_to_string(&mut out).await.expect("read");
        out
    }

    #[tokio::test]
    async fn counts_records_by_type_and_refuses_what_is_not_one() {
        let (addr, received, task) = start().await.expect("start");
        let media = r#"{"v":1,"type":"media","connectionId":"c1","twilio":{}}"#;
        assert!(post(addr, media).await.starts_with("HTTP/1.1 204"));
        assert!(post(addr, media).await.starts_with("HTTP/1.1 204"));
        let disconnect = r#"{"v":1,"type":"disconnect","connectionId":"c1"}"#;
        assert!(post(addr, disconnect).await.starts_with("HTTP/1.1 204"));
        assert!(post(addr, r#"{"v":2,"type":"media","connectionId":"c1"}"#)
            .await
            .starts_with("HTTP/1.1 400"));
        assert!(post(addr, "nope").await.starts_with("HTTP/1.1 400"));
        assert_eq!(received.media.load(Ordering::Relaxed), 2);
        assert_eq!(received.disconnect.load(Ordering::Relaxed), 1);
        assert_eq!(received.total(), 3);
        assert_eq!(received.malformed.load(Ordering::Relaxed), 2);
        task.abort();
    }
}
