//! `stream-gate echo`: the record server (an HTTP record sink) of the example application behind
//! the local gateway. It receives the gateway's
//! HTTP sink (`stream-gate local --sink http://127.0.0.1:PORT/records`: one Record v1 per POST),
//! answers 202 at once, and plays each caller's inbound audio back to them with the same logic as
//! the `echo` Lambda ([`stream_gate_echo::echo_replies`] and [`stream_gate_echo::send_replies`])
//! through the real Management API client ([`ConnectionPoster`]) at the record's
//! `managementEndpoint`.
//!
//! Records of one connection can arrive out of order (the gateway runs up to 8 `$default`
//! invocations of a connection at once, as Lambda does). Each connection has a worker that
//! releases records in Twilio's `sequenceNumber` order, starting at 1 (`start`): a record after a
//! gap is held until the gap fills or for [`HOLD`] (a frame the gate dropped never comes), then the
//! gap is skipped. A record older than the last one released (later than [`HOLD`]) is still
//! echoed, at once, and counted as late. The `disconnect` record releases everything held and ends
//! the call with a [`CallSummary`].
//!
//! Bounded everywhere: a request body of at most [`MAX_RECORD_BYTES`], at most [`MAX_CALLS`] calls
//! at once, [`QUEUE`] records queued and [`MAX_HELD`] held per call, a call idle for [`IDLE`]
//! forgotten. A record it cannot use is answered 4xx with a reason code (`record_too_large`,
//! `record_malformed`, `record_version_unknown`, `endpoint_not_loopback`); more calls or records
//! than it holds, 503 `echo_busy`. The audio and the records are never logged.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;
use tokio::sync::{mpsc, oneshot};

pub use stream_gate_echo::inbound::MAX_RECORD_BYTES;
use stream_gate_echo::{echo_replies, send_replies, InboundRecord};
use stream_gate_lambda::adapters::ConnectionPoster;

/// The path the gateway's HTTP sink posts to: `--sink http://{addr}/records`.
pub const RECORDS_PATH: &str = "/records";
/// How long a record after a gap waits for the missing ones.
pub const HOLD: Duration = Duration::from_millis(250);
/// A call without a record for this long is forgotten (its summary says `idle`).
pub const IDLE: Duration = Duration::from_secs(60);
/// Calls answered at once.
pub const MAX_CALLS: usize = 1024;
/// Records queued per call before the echo answers 503.
pub const QUEUE: usize = 4096;
/// Records held per call waiting for a gap; beyond it the gap is skipped.
pub const MAX_HELD: usize = 3000;
/// Connections whose record counts are kept (for the demo; oldest forgotten first).
pub const MAX_COUNTED: usize = 4096;
/// Longest connection id accepted (API Gateway's are 16 characters).
const MAX_CONNECTION_ID: usize = 128;

/// Called at the end of each call.
pub type CallEndHook = Box<dyn Fn(&CallSummary) + Send + Sync>;

/// How to run the echo.
pub struct EchoOptions {
    /// Listen address (loopback only).
    pub listen: SocketAddr,
    /// Called at the end of each call (its `disconnect` record, or [`IDLE`]).
    pub on_call_end: Option<CallEndHook>,
}

/// How a call's echo ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallEnd {
    /// Its `disconnect` record arrived.
    Disconnect,
    /// No record for [`IDLE`].
    Idle,
}

/// What the echo did for one call (no audio, no tokens: ids and counts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallSummary {
    /// The connection.
    pub connection_id: String,
    /// Its stream, when a record named one.
    pub stream_sid: Option<String>,
    /// Records received.
    pub records: u64,
    /// `media` frames posted back.
    pub echoed: usize,
    /// Replies not posted because the connection was gone (410).
    pub gone: usize,
    /// Replies that failed.
    pub failed: usize,
    /// Records that arrived after later ones had been released (echoed out of order).
    pub late: u64,
    /// Gaps in the sequence skipped after [`HOLD`] (frames the gate dropped or never delivered).
    pub gaps: u64,
    /// How the call ended.
    pub ended: CallEnd,
}

impl std::fmt::Display for CallSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "call {} ({}): {} frame{} echoed from {} record{}",
            self.connection_id,
            self.stream_sid.as_deref().unwrap_or("no stream"),
            self.echoed,
            if self.echoed == 1 { "" } else { "s" },
            self.records,
            if self.records == 1 { "" } else { "s" },
        )?;
        let extra: Vec<String> = [
            (self.gone, "gone"),
            (self.failed, "failed"),
            (self.late as usize, "late"),
            (self.gaps as usize, "gaps skipped"),
        ]
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("{n} {what}"))
        .collect();
        if !extra.is_empty() {
            write!(f, ", {}", extra.join(", "))?;
        }
        if self.ended == CallEnd::Idle {
            write!(f, " (no disconnect record: idle {} s)", IDLE.as_secs())?;
        }
        Ok(())
    }
}

/// Records received for one connection, by type.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordCounts {
    /// Every record.
    pub total: u64,
    /// `start`.
    pub start: u64,
    /// `media`.
    pub media: u64,
    /// `stop`.
    pub stop: u64,
    /// `disconnect`.
    pub disconnect: u64,
    /// ConversationRelay's `setup` (a session's start).
    pub setup: u64,
    /// `mark`, `dtmf`, ConversationRelay's `prompt` and the other types.
    pub other: u64,
}

#[derive(Default)]
struct Counted {
    by_connection: HashMap<String, RecordCounts>,
    order: std::collections::VecDeque<String>,
}

struct Inner {
    poster: ConnectionPoster,
    answering: AtomicBool,
    calls: Mutex<HashMap<String, (u64, mpsc::Sender<InboundRecord>)>>,
    generation: AtomicU64,
    counted: Mutex<Counted>,
    finished: Mutex<Vec<CallSummary>>,
    on_call_end: Option<CallEndHook>,
    refused: AtomicU64,
    /// `session_end` records received (they have no connection to count them under).
    session_ends: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Whether `endpoint` is an `http(s)://` URL on loopback: the echo answers only the local
/// gateway (it signs with dummy credentials, and a record must not make it post elsewhere). The
/// same loopback rule the `echo` Lambda applies to a configured `http://` endpoint.
pub use stream_gate_echo::endpoint::is_loopback_endpoint;

/// Checks a record beyond what [`InboundRecord::parse`] reads: a usable connection id and a
/// loopback endpoint. The reason code on refusal.
pub fn check_record(record: &InboundRecord) -> Result<(), &'static str> {
    let id = &record.connection_id;
    if id.is_empty() || id.len() > MAX_CONNECTION_ID || !id.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("record_malformed");
    }
    if !is_loopback_endpoint(&record.management_endpoint) {
        return Err("endpoint_not_loopback");
    }
    Ok(())
}

impl Inner {
    fn count(&self, record: &InboundRecord) {
        let mut c = lock(&self.counted);
        if !c.by_connection.contains_key(&record.connection_id) {
            if c.order.len() >= MAX_COUNTED {
                if let Some(old) = c.order.pop_front() {
                    c.by_connection.remove(&old);
                }
            }
            c.order.push_back(record.connection_id.clone());
        }
        let n = c
            .by_connection
            .entry(record.connection_id.clone())
            .or_default();
        n.total += 1;
        match record.kind.as_str() {
            "start" => n.start += 1,
            "media" => n.media += 1,
            "stop" => n.stop += 1,
            "disconnect" => n.disconnect += 1,
            "setup" => n.setup += 1,
            _ => n.other += 1,
        }
    }

    /// Queues `record` for its call's worker (started on the call's first record).
    fn dispatch(self: &Arc<Self>, mut record: InboundRecord) -> Result<(), ()> {
        let mut calls = lock(&self.calls);
        if let Some((_, tx)) = calls.get(&record.connection_id) {
            match tx.try_send(record) {
                Ok(()) => return Ok(()),
                Err(mpsc::error::TrySendError::Full(_)) => return Err(()),
                // The worker ended (idle) a moment ago: start another.
                Err(mpsc::error::TrySendError::Closed(back)) => {
                    record = back;
                    calls.remove(&record.connection_id);
                }
            }
        }
        if calls.len() >= MAX_CALLS {
            return Err(());
        }
        let (tx, rx) = mpsc::channel(QUEUE);
        let id = record.connection_id.clone();
        tx.try_send(record).map_err(|_| ())?;
        let generation = self.generation.fetch_add(1, Ordering::Relaxed);
        calls.insert(id.clone(), (generation, tx));
        tokio::spawn(run_call(self.clone(), id, generation, rx));
        Ok(())
    }

    fn end_call(&self, id: &str, generation: u64, summary: CallSummary) {
        {
            let mut calls = lock(&self.calls);
            if calls.get(id).is_some_and(|(g, _)| *g == generation) {
                calls.remove(id);
            }
        }
        if let Some(f) = &self.on_call_end {
            f(&summary);
        }
        let mut finished = lock(&self.finished);
        if finished.len() >= MAX_COUNTED {
            finished.remove(0);
        }
        finished.push(summary);
    }
}

/// One call's reordering: releases records in `sequenceNumber` order.
struct Reorder {
    next: u64,
    held: BTreeMap<u64, InboundRecord>,
    held_since: Option<Instant>,
    late: u64,
    gaps: u64,
}

impl Reorder {
    fn new() -> Self {
        Self {
            // Twilio numbers a stream's messages from 1 (`start`).
            next: 1,
            held: BTreeMap::new(),
            held_since: None,
            late: 0,
            gaps: 0,
        }
    }

    /// Takes a record with a sequence number; returns what can be released now, in order.
    fn push(&mut self, seq: u64, record: InboundRecord, now: Instant) -> Vec<InboundRecord> {
        if seq < self.next {
            self.late += 1;
            return vec![record];
        }
        self.held.insert(seq, record);
        let mut out = self.release();
        if self.held.len() > MAX_HELD {
            out.extend(self.skip_gap());
        }
        self.held_since = match (self.held.is_empty(), self.held_since) {
            (true, _) => None,
            (false, None) => Some(now),
            (false, since) if out.is_empty() => since,
            // Progress was made: the hold starts again for what is still missing.
            (false, _) => Some(now),
        };
        out
    }

    fn release(&mut self) -> Vec<InboundRecord> {
        let mut out = Vec::new();
        while let Some(r) = self.held.remove(&self.next) {
            out.push(r);
            self.next += 1;
        }
        out
    }

    /// Gives up on the missing records before the first held one.
    fn skip_gap(&mut self) -> Vec<InboundRecord> {
        let Some(first) = self.held.keys().next().copied() else {
            return Vec::new();
        };
        self.gaps += 1;
        self.next = first;
        let out = self.release();
        self.held_since = None;
        out
    }

    /// When the hold of the first gap runs out.
    fn deadline(&self) -> Option<Instant> {
        self.held_since.map(|t| t + HOLD)
    }

    /// Everything held, in order (the call ended).
    fn drain(&mut self) -> Vec<InboundRecord> {
        self.held_since = None;
        std::mem::take(&mut self.held).into_values().collect()
    }
}

async fn run_call(
    inner: Arc<Inner>,
    id: String,
    generation: u64,
    mut rx: mpsc::Receiver<InboundRecord>,
) {
    let mut reorder = Reorder::new();
    let mut summary = CallSummary {
        connection_id: id.clone(),
        stream_sid: None,
        records: 0,
        echoed: 0,
        gone: 0,
        failed: 0,
        late: 0,
        gaps: 0,
        ended: CallEnd::Idle,
    };
    let answer = |batch: Vec<InboundRecord>| {
        let inner = inner.clone();
        async move {
            if batch.is_empty() {
                return stream_gate_echo::SendSummary::default();
            }
            send_replies(&inner.poster, echo_replies(batch)).await
        }
    };
    loop {
        let wait = match reorder.deadline() {
            Some(d) => d.saturating_duration_since(Instant::now()),
            None => IDLE,
        };
        let batch = match tokio::time::timeout(wait, rx.recv()).await {
            Ok(Some(record)) => {
                summary.records += 1;
                if summary.stream_sid.is_none() {
                    summary.stream_sid = record.stream_sid.as_ref().map(|s| s.as_str().to_owned());
                }
                if record.kind == "disconnect" {
                    summary.ended = CallEnd::Disconnect;
                    reorder.drain()
                } else {
                    match record.sequence_number {
                        Some(seq) => reorder.push(seq, record, Instant::now()),
                        // ConversationRelay messages have no sequence number: answered as they
                        // come (a few per turn, not 50 a second).
                        None => vec![record],
                    }
                }
            }
            Ok(None) => break,
            Err(_) if reorder.deadline().is_some() => reorder.skip_gap(),
            Err(_) => break,
        };
        let sent = answer(batch).await;
        summary.echoed += sent.sent;
        summary.gone += sent.gone;
        summary.failed += sent.failed;
        if summary.ended == CallEnd::Disconnect {
            break;
        }
    }
    summary.late = reorder.late;
    summary.gaps = reorder.gaps;
    inner.end_call(&id, generation, summary);
}

/// `POST /records`: one Record v1.
async fn post_record(
    State(inner): State<Arc<Inner>>,
    body: Result<Bytes, BytesRejection>,
) -> (StatusCode, &'static str) {
    let refuse = |status: StatusCode, code: &'static str| {
        inner.refused.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(reason = code, "echo: record refused");
        (status, code)
    };
    let body = match body {
        Ok(b) => b,
        Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return refuse(StatusCode::PAYLOAD_TOO_LARGE, "record_too_large")
        }
        Err(_) => return refuse(StatusCode::BAD_REQUEST, "record_unreadable"),
    };
    let record = match InboundRecord::parse(&body) {
        Ok(r) => r,
        // The end of a ConversationRelay session: no connection to answer, counted.
        Err(stream_gate_echo::ReadError::SessionEnd) => {
            inner.session_ends.fetch_add(1, Ordering::Relaxed);
            return (StatusCode::ACCEPTED, "counted");
        }
        Err(stream_gate_echo::ReadError::TooLarge) => {
            return refuse(StatusCode::PAYLOAD_TOO_LARGE, "record_too_large")
        }
        Err(e) => return refuse(StatusCode::BAD_REQUEST, e.code()),
    };
    if let Err(code) = check_record(&record) {
        return refuse(StatusCode::BAD_REQUEST, code);
    }
    inner.count(&record);
    if !inner.answering.load(Ordering::Relaxed) {
        return (StatusCode::ACCEPTED, "counted");
    }
    match inner.dispatch(record) {
        Ok(()) => (StatusCode::ACCEPTED, "accepted"),
        Err(()) => refuse(StatusCode::SERVICE_UNAVAILABLE, "echo_busy"),
    }
}

/// A running echo.
pub struct EchoServer {
    addr: SocketAddr,
    inner: Arc<Inner>,
    shutdown: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl EchoServer {
    /// Binds (loopback only) and starts serving. The Management API client signs with the local
    /// gateway's dummy credentials ([`crate::local::local_sdk_config`]).
    pub async fn start(opts: EchoOptions) -> std::io::Result<Self> {
        if !opts.listen.ip().is_loopback() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "the echo listens on loopback only (records carry call audio in the clear)",
            ));
        }
        let listener = tokio::net::TcpListener::bind(opts.listen).await?;
        let addr = listener.local_addr()?;
        let inner = Arc::new(Inner {
            poster: ConnectionPoster::new(crate::local::local_sdk_config().await),
            answering: AtomicBool::new(true),
            calls: Mutex::new(HashMap::new()),
            generation: AtomicU64::new(0),
            counted: Mutex::new(Counted::default()),
            finished: Mutex::new(Vec::new()),
            on_call_end: opts.on_call_end,
            refused: AtomicU64::new(0),
            session_ends: AtomicU64::new(0),
        });
        let app = Router::new()
            .route(RECORDS_PATH, post(post_record))
            .layer(DefaultBodyLimit::max(MAX_RECORD_BYTES))
            .with_state(inner.clone());
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
        });
        Ok(Self {
            addr,
            inner,
            shutdown: Some(tx),
            task,
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The URL to give `stream-gate local --sink`: `http://{addr}/records`.
    pub fn sink_url(&self) -> String {
        format!("http://{}{RECORDS_PATH}", self.addr)
    }

    /// Whether records are answered (default) or only counted.
    pub fn set_answering(&self, on: bool) {
        self.inner.answering.store(on, Ordering::Relaxed);
    }

    /// The records received for `connection_id` so far.
    pub fn records_for(&self, connection_id: &str) -> RecordCounts {
        lock(&self.inner.counted)
            .by_connection
            .get(connection_id)
            .cloned()
            .unwrap_or_default()
    }

    /// The records received so far, per connection (the most recent [`MAX_COUNTED`] connections).
    pub fn all_records(&self) -> Vec<(String, RecordCounts)> {
        let c = lock(&self.inner.counted);
        c.order
            .iter()
            .filter_map(|id| c.by_connection.get(id).map(|n| (id.clone(), n.clone())))
            .collect()
    }

    /// Requests refused (4xx or 503).
    pub fn refused(&self) -> u64 {
        self.inner.refused.load(Ordering::Relaxed)
    }

    /// `session_end` records received: ConversationRelay sessions whose end Twilio posted.
    pub fn session_ends(&self) -> u64 {
        self.inner.session_ends.load(Ordering::Relaxed)
    }

    /// Summaries of the calls that ended, oldest first.
    pub fn finished(&self) -> Vec<CallSummary> {
        lock(&self.inner.finished).clone()
    }

    /// Waits until the call of `connection_id` has ended (or `timeout` passes).
    pub async fn call_ended(&self, connection_id: &str, timeout: Duration) -> Option<CallSummary> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let found = lock(&self.inner.finished)
                .iter()
                .rev()
                .find(|s| s.connection_id == connection_id)
                .cloned();
            if found.is_some() || tokio::time::Instant::now() >= deadline {
                return found;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Runs until the server stops.
    pub async fn wait(mut self) {
        let _ = (&mut self.task).await;
    }

    /// Stops serving.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if tokio::time::timeout(Duration::from_secs(2), &mut self.task)
            .await
            .is_err()
        {
            self.task.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stream_gate_domain::sid::StreamSid;

    fn record(seq: u64) -> InboundRecord {
        InboundRecord {
            kind: "media".into(),
            connection_id: "c".into(),
            management_endpoint: "http://127.0.0.1:1/dev".into(),
            stream_sid: StreamSid::parse("MZ00112233445566778899aabbccddeeff").ok(),
            sequence_number: Some(seq),
            media: None,
            received_at: 0,
            relay: None,
        }
    }

    fn seqs(v: &[InboundRecord]) -> Vec<u64> {
        v.iter().filter_map(|r| r.sequence_number).collect()
    }

    #[test]
    fn releases_in_sequence_order() {
        let mut r = Reorder::new();
        let now = Instant::now();
        assert_eq!(seqs(&r.push(1, record(1), now)), [1]);
        assert!(r.push(3, record(3), now).is_empty());
        assert!(r.push(4, record(4), now).is_empty());
        assert!(r.deadline().is_some());
        assert_eq!(seqs(&r.push(2, record(2), now)), [2, 3, 4]);
        assert!(r.deadline().is_none());
        // A gap that never fills is skipped after the hold.
        assert!(r.push(6, record(6), now).is_empty());
        assert_eq!(seqs(&r.skip_gap()), [6]);
        assert_eq!(r.gaps, 1);
        // The missing one, too late: echoed at once, counted.
        assert_eq!(seqs(&r.push(5, record(5), now)), [5]);
        assert_eq!(r.late, 1);
        assert!(r.push(9, record(9), now).is_empty());
        assert_eq!(seqs(&r.drain()), [9]);
    }

    #[test]
    fn holds_a_bounded_number_of_records() {
        let mut r = Reorder::new();
        let now = Instant::now();
        let mut out = Vec::new();
        for seq in 2..(MAX_HELD as u64 + 3) {
            out.extend(r.push(seq, record(seq), now));
        }
        assert!(r.held.len() <= MAX_HELD);
        assert_eq!(out.len(), MAX_HELD + 1);
    }

    #[test]
    fn answers_only_the_local_gateway() {
        for ok in [
            "http://127.0.0.1:8080/dev",
            "http://localhost:1/dev",
            "http://[::1]:9/dev",
            "https://127.0.0.2/x",
        ] {
            assert!(is_loopback_endpoint(ok), "{ok}");
        }
        for bad in [
            "https://abc.execute-api.us-east-1.amazonaws.com/prod",
            "http://10.0.0.1/dev",
            "http://user@127.0.0.1/dev",
            "file:///etc/passwd",
            "",
            "127.0.0.1:8080",
        ] {
            assert!(!is_loopback_endpoint(bad), "{bad}");
        }
        let mut r = record(1);
        assert_eq!(check_record(&r), Ok(()));
        r.connection_id = "a b".into();
        assert_eq!(check_record(&r), Err("record_malformed"));
        r.connection_id = "c".into();
        r.management_endpoint = "https://example.com/prod".into();
        assert_eq!(check_record(&r), Err("endpoint_not_loopback"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn refuses_what_it_cannot_use_with_a_reason_and_takes_the_rest_at_once() {
        let echo = EchoServer::start(EchoOptions {
            listen: ([127, 0, 0, 1], 0).into(),
            on_call_end: None,
        })
        .await
        .expect("echo");
        assert_ne!(echo.addr().port(), 0);
        let post = |body: String| {
            let url = echo.sink_url();
            async move {
                crate::http_client::post(
                    &url,
                    &[("content-type", "application/json")],
                    &body,
                    Duration::from_secs(5),
                    1024,
                )
                .await
                .expect("answer")
            }
        };
        let record = |endpoint: &str| {
            format!(
                r#"{{"v":1,"type":"start","connectionId":"c1","managementEndpoint":"{endpoint}","sequenceNumber":"1","twilio":{{}}}}"#
            )
        };
        for (body, status, code) in [
            ("not json".to_owned(), 400, "record_malformed"),
            (
                record("http://127.0.0.1:1/dev").replace(r#""v":1"#, r#""v":2"#),
                400,
                "record_version_unknown",
            ),
            (
                record("https://abc.execute-api.us-east-1.amazonaws.com/prod"),
                400,
                "endpoint_not_loopback",
            ),
            (" ".repeat(MAX_RECORD_BYTES + 1), 413, "record_too_large"),
        ] {
            let r = post(body).await;
            assert_eq!(
                (r.status, String::from_utf8_lossy(&r.body).as_ref()),
                (status, code)
            );
        }
        assert_eq!(echo.refused(), 4);
        // A ConversationRelay session's end has no connection: counted, nothing to answer.
        let end = r#"{"v":1,"type":"session_end","protocol":"conversation-relay","callSid":"CAffeeddccbbaa99887766554433221100"}"#;
        let r = post(end.to_owned()).await;
        assert_eq!(
            (r.status, String::from_utf8_lossy(&r.body).as_ref()),
            (202, "counted")
        );
        assert_eq!((echo.session_ends(), echo.refused()), (1, 4));
        // A good record: 202 at once, counted; its call ends with the disconnect record.
        let r = post(record("http://127.0.0.1:1/dev")).await;
        assert_eq!(r.status, 202);
        let disconnect = r#"{"v":1,"type":"disconnect","connectionId":"c1","managementEndpoint":"http://127.0.0.1:1/dev"}"#;
        assert_eq!(post(disconnect.to_owned()).await.status, 202);
        let summary = echo
            .call_ended("c1", Duration::from_secs(5))
            .await
            .expect("summary");
        assert_eq!(
            (summary.records, summary.echoed, summary.ended),
            (2, 0, CallEnd::Disconnect)
        );
        let counts = echo.records_for("c1");
        assert_eq!((counts.total, counts.start, counts.disconnect), (2, 1, 1));
        echo.shutdown().await;
    }

    #[test]
    fn the_summary_is_one_line_without_audio() {
        let s = CallSummary {
            connection_id: "Xk2T".into(),
            stream_sid: Some("MZ00112233445566778899aabbccddeeff".into()),
            records: 53,
            echoed: 50,
            gone: 0,
            failed: 0,
            late: 1,
            gaps: 0,
            ended: CallEnd::Disconnect,
        };
        assert_eq!(
            s.to_string(),
            "call Xk2T (MZ00112233445566778899aabbccddeeff): 50 frames echoed from 53 records, 1 late"
        );
    }
}
