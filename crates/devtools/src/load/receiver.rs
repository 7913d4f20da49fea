//! The load test's own HTTP sink: the gateway under load POSTs every record here (`local --sink
//! http://…`), and this counts what arrives, by type, checking each is a Record v1.
//!
//! Delivery is at most once with one retry, so a record whose first POST arrived but whose 2xx
//! came too late is delivered again (docs/records.md, "Rarely twice"). Records are therefore
//! counted once per identity (`connectionId`, `type`, `sequenceNumber`), and repeats separately.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashSet;
use std::hash::{Hash as _, Hasher as _};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

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
    /// Records that arrived again (same identity): not counted above.
    pub repeated: AtomicU64,
    /// The identities seen, hashed (16 bytes a record: 600,600 records are ~10 MiB with the set's
    /// overhead; a collision would only count a record as a repeat).
    seen: Mutex<HashSet<u128>>,
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
    connection_id: &'a str,
    #[serde(rename = "sequenceNumber", default)]
    sequence_number: Option<&'a str>,
}

impl Envelope<'_> {
    /// The record's identity: connection, type and sequence number (none for `disconnect`).
    fn identity(&self) -> u128 {
        let mut h = DefaultHasher::new();
        (self.connection_id, self.kind).hash(&mut h);
        let seq = self
            .sequence_number
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or(u64::MAX);
        (u128::from(h.finish()) << 64) | u128::from(seq)
    }
}

async fn record(State(received): State<Arc<Received>>, body: Bytes) -> StatusCode {
    let counter = match serde_json::from_slice::<Envelope<'_>>(&body) {
        Ok(e) if e.v == 1 => {
            let first = received
                .seen
                .lock()
                .map(|mut seen| seen.insert(e.identity()))
                .unwrap_or(true);
            if !first {
                received.repeated.fetch_add(1, Ordering::Relaxed);
                return StatusCode::NO_CONTENT;
            }
            match e.kind {
                "start" => &received.start,
                "media" => &received.media,
                "stop" => &received.stop,
                "disconnect" => &received.disconnect,
                _ => &received.other,
            }
        }
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
        let media =
            r#"{"v":1,"type":"media","connectionId":"c1","sequenceNumber":"2","twilio":{}}"#;
        assert!(post(addr, media).await.starts_with("HTTP/1.1 204"));
        let next = media.replace(r#""2""#, r#""3""#);
        assert!(post(addr, &next).await.starts_with("HTTP/1.1 204"));
        // The same record again (a retry whose first attempt arrived): a repeat, not a record.
        assert!(post(addr, &next).await.starts_with("HTTP/1.1 204"));
        let other = next.replace("c1", "c2");
        assert!(post(addr, &other).await.starts_with("HTTP/1.1 204"));
        let disconnect = r#"{"v":1,"type":"disconnect","connectionId":"c1"}"#;
        assert!(post(addr, disconnect).await.starts_with("HTTP/1.1 204"));
        assert!(post(addr, r#"{"v":2,"type":"media","connectionId":"c1"}"#)
            .await
            .starts_with("HTTP/1.1 400"));
        assert!(post(addr, "nope").await.starts_with("HTTP/1.1 400"));
        assert_eq!(received.media.load(Ordering::Relaxed), 3);
        assert_eq!(received.repeated.load(Ordering::Relaxed), 1);
        assert_eq!(received.disconnect.load(Ordering::Relaxed), 1);
        assert_eq!(received.total(), 4);
        assert_eq!(received.malformed.load(Ordering::Relaxed), 2);
        task.abort();
    }
}
