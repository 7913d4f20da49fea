//! `stream-gate load`: the local gateway under load, in its own process. Legitimate calls stream
//! in real time (one `media` frame every 20 ms, as Twilio sends) while a second client opens
//! unsigned or wrongly signed handshakes at a fixed rate. Reports what the gateway saw (frames,
//! refusals, arrival-to-verdict latency from `GET /_local/stats`) and its resident memory, sampled
//! from `/proc` once a second. The gateway keeps call state in memory (its default: every frame
//! after `start` is checked against the recorded start) unless `call_state` is `off`; a frame
//! the router drops for want of a recorded start counts as lost.
//!
//! With `deliver` (the default of `stream-gate load`), the gateway also delivers every record to an
//! HTTP sink in this process ([`receiver`]), as an application behind the gate would receive them:
//! every accepted frame but `connected`, and one `disconnect` per call, must arrive. The router
//! answers a frame only after the sink's 2xx, so the arrival-to-verdict latency then includes the
//! delivery.

pub mod receiver;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Error as WsError;

use crate::domain::compute_signature;
use crate::local::records::StatsSnapshot;
use crate::sim::attacks::{self, CallSetup};
use crate::sim::{audio, client, Identity};

/// What to run.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// The `stream-gate` executable (started as `stream-gate local`).
    pub exe: PathBuf,
    /// The credentials document the gateway loads and the calls sign with.
    pub credentials: PathBuf,
    /// Concurrent legitimate calls.
    pub calls: usize,
    /// How long each call streams.
    pub seconds: u64,
    /// Bad handshakes per second, for the whole run.
    pub bad_per_second: u64,
    /// The gateway's call state (`memory` or `off`), passed as `local --call-state`.
    pub call_state: String,
    /// Deliver every record to an HTTP sink in this process (`local --sink http://…`).
    pub deliver: bool,
}

/// What was measured. Rates are over the streaming window.
#[derive(Debug, Clone, Serialize)]
pub struct LoadReport {
    /// Concurrent calls.
    pub calls: usize,
    /// Seconds each call streamed.
    pub seconds: u64,
    /// The gateway's call state (`memory` or `off`).
    pub call_state: String,
    /// Calls that streamed to the end and were never closed by the gateway.
    pub calls_completed: usize,
    /// Calls that failed to connect or were closed early (must be zero).
    pub calls_failed: usize,
    /// Frames the calls sent (connected, start, media, stop).
    pub frames_sent: u64,
    /// Frames the gateway's router accepted (must equal `frames_sent`).
    pub frames_accepted: u64,
    /// Frames the router closed a connection for (must be zero).
    pub frames_closed: u64,
    /// Frames the router dropped: call state found no recorded start (must be zero).
    pub frames_dropped: u64,
    /// Where records went: `http` (this process's sink) or `none`.
    pub sink: String,
    /// Records the sink must receive: every accepted frame but `connected`, and one `disconnect`
    /// per call (zero without a sink).
    pub records_expected: u64,
    /// Distinct records the sink received (must equal `records_expected`).
    pub records_delivered: u64,
    /// Records that arrived a second time (a retry after a 2xx that came too late; allowed,
    /// docs/records.md "Rarely twice").
    pub records_repeated: u64,
    /// Of those, `media` records.
    pub records_media: u64,
    /// Bodies the sink received that were not a Record v1 (must be zero).
    pub records_malformed: u64,
    /// Accepted frames per second.
    pub frames_per_second: f64,
    /// Bad handshakes attempted.
    pub bad_attempted: u64,
    /// Bad handshakes refused with 403 (must equal `bad_attempted`).
    pub bad_refused: u64,
    /// Bad handshakes admitted (must be zero).
    pub bad_admitted: u64,
    /// Bad handshakes that ended in a transport error instead of a refusal.
    pub bad_errors: u64,
    /// Refusals per second.
    pub refusals_per_second: f64,
    /// Median arrival-to-verdict time of a frame in the gateway, µs; with a sink, the verdict
    /// comes after the sink's 2xx, so this is arrival to delivered.
    pub latency_p50_us: u64,
    /// 99th percentile, µs.
    pub latency_p99_us: u64,
    /// Largest, µs.
    pub latency_max_us: u64,
    /// Gateway resident memory once a second, KiB.
    pub rss_kib: Vec<u64>,
    /// Gateway peak resident memory (VmHWM), KiB.
    pub peak_rss_kib: u64,
    /// Every check held.
    pub passed: bool,
    /// The checks that failed.
    pub failures: Vec<String>,
}

/// Why the run could not even start.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The gateway process did not start or answer.
    #[error("gateway: {0}")]
    Gateway(String),
    /// The credentials document is unusable.
    #[error("credentials: {0}")]
    Credentials(String),
}

/// Stops the sink's server on drop.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Kills the gateway process on drop.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn proc_status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

async fn stats(addr: SocketAddr) -> Option<StatsSnapshot> {
    let mut s = TcpStream::connect(addr).await.ok()?;
    s.write_all(b"GET /_local/stats HTTP/1.0\r\nHost: gateway\r\n\r\n")
        .await
        .ok()?;
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf))
        .await
        .ok()?
        .ok()?;
    let text = String::from_utf8_lossy(&buf);
    let (_, body) = text.split_once("\r\n\r\n")?;
    serde_json::from_str(body).ok()
}

async fn start_gateway(
    opts: &LoadOptions,
    sink: Option<SocketAddr>,
) -> Result<(Child, SocketAddr), LoadError> {
    // Port 0: the gateway binds a free port itself and names it in its banner, so no other
    // process can take the port between a probe and the bind.
    let mut command = std::process::Command::new(&opts.exe);
    command
        .arg("local")
        .arg("--listen")
        .arg("127.0.0.1:0")
        .arg("--credentials")
        .arg(&opts.credentials)
        .arg("--call-state")
        .arg(&opts.call_state);
    if let Some(sink) = sink {
        command.arg("--sink").arg(format!("http://{sink}/records"));
    }
    // The gateway under load is configured by these flags alone, not by a Lambda configuration
    // the user has in the environment.
    for v in stream_gate_lambda::config::VARIABLES {
        command.env_remove(v);
    }
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| LoadError::Gateway(format!("cannot start: {}", e.kind())))?;
    let stdout = child.stdout.take();
    let child = Child(child);
    let (tx, rx) = tokio::sync::oneshot::channel();
    if let Some(stdout) = stdout {
        // Reads the banner's address, then keeps draining so the gateway never blocks on a
        // full pipe.
        std::thread::spawn(move || {
            use std::io::BufRead as _;
            let mut tx = Some(tx);
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                if let Some(addr) = banner_addr(&line) {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(addr);
                    }
                }
            }
        });
    }
    let addr = match tokio::time::timeout(Duration::from_secs(10), rx).await {
        Ok(Ok(addr)) => addr,
        _ => return Err(LoadError::Gateway("printed no address within 10 s".into())),
    };
    for _ in 0..100 {
        if stats(addr).await.is_some() {
            return Ok((child, addr));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(LoadError::Gateway("did not answer within 10 s".into()))
}

/// The address in the banner's `  WebSocket:       ws://127.0.0.1:PORT/dev` line.
fn banner_addr(line: &str) -> Option<SocketAddr> {
    let (_, url) = line.split_once("WebSocket:")?;
    url.trim()
        .strip_prefix("ws://")?
        .split('/')
        .next()?
        .parse()
        .ok()
}

struct CallOutcome {
    sent: u64,
    completed: bool,
}

/// One call as Twilio makes it — the simulator's own legitimate call (signed handshake,
/// connected, start with a call token, one media frame every 20 ms, stop), played by
/// [`client::run`] — then 300 ms for the gateway to act on the last frames before the client
/// closes. A call is completed when the gateway neither closed nor dropped it before that.
async fn call(
    url: String,
    identity: Arc<Identity>,
    audio: Arc<Vec<[u8; audio::FRAME_BYTES]>>,
    delay: Duration,
) -> CallOutcome {
    tokio::time::sleep(delay).await;
    let setup = CallSetup {
        url: &url,
        signed_url: &url,
        me: &identity,
        other: None,
        audio: &audio,
        pacing: Duration::from_millis(20),
        linger: Duration::from_millis(300),
        start_grace: Duration::ZERO, // a legitimate call starts at once
        webhook: None,
    };
    let (handshake, script) = attacks::legit(&setup);
    match client::run(&handshake, script).await {
        Ok(r) => CallOutcome {
            sent: r.frames_sent as u64,
            completed: r.admitted && r.closed_by_client,
        },
        Err(_) => CallOutcome {
            sent: 0,
            completed: false,
        },
    }
}

#[derive(Default)]
struct BadCounts {
    attempted: AtomicU64,
    refused: AtomicU64,
    admitted: AtomicU64,
    errors: AtomicU64,
}

/// One hostile handshake: unsigned, or signed with a token that is not configured. Each comes from
/// its own loopback source address (127.0.0.2-251) so that 1,000 connections a second do not run
/// out of ephemeral ports while old ones sit in TIME_WAIT.
async fn bad_handshake(gateway: SocketAddr, url: String, n: u64, counts: Arc<BadCounts>) {
    counts.attempted.fetch_add(1, Ordering::Relaxed);
    let attempt = async {
        let source = Ipv4Addr::new(127, 0, 0, 2 + (n % 250) as u8);
        let socket = TcpSocket::new_v4().ok()?;
        socket.bind(SocketAddr::from((source, 0))).ok()?;
        let tcp = socket.connect(gateway).await.ok()?;
        let mut request = url.as_str().into_client_request().ok()?;
        if n % 2 == 1 {
            let forged = compute_signature("not-a-configured-auth-token", &url, &[]);
            request
                .headers_mut()
                .insert("x-twilio-signature", HeaderValue::from_str(&forged).ok()?);
        }
        Some(tokio_tungstenite::client_async(request, tcp).await)
    };
    match tokio::time::timeout(Duration::from_secs(5), attempt).await {
        Ok(Some(Err(WsError::Http(resp)))) if resp.status() == 403 => {
            counts.refused.fetch_add(1, Ordering::Relaxed);
        }
        Ok(Some(Ok((mut ws, _)))) => {
            counts.admitted.fetch_add(1, Ordering::Relaxed);
            let _ = ws.close(None).await;
        }
        _ => {
            counts.errors.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Opens `per_second` bad handshakes a second until `stop` is set, in batches every 10 ms.
async fn bad_client(
    gateway: SocketAddr,
    url: String,
    per_second: u64,
    stop: Arc<AtomicBool>,
    counts: Arc<BadCounts>,
) {
    if per_second == 0 {
        return;
    }
    let in_flight = Arc::new(Semaphore::new(1024));
    let mut ticker = tokio::time::interval(Duration::from_millis(10));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let (mut n, started) = (0u64, Instant::now());
    while !stop.load(Ordering::SeqCst) {
        ticker.tick().await;
        // Catch up to the schedule, so the rate holds even when a tick comes late.
        let due = (started.elapsed().as_secs_f64() * per_second as f64) as u64;
        while n < due {
            let Ok(permit) = in_flight.clone().acquire_owned().await else {
                return;
            };
            let (url, counts) = (url.clone(), counts.clone());
            tokio::spawn(async move {
                bad_handshake(gateway, url, n, counts).await;
                drop(permit);
            });
            n += 1;
        }
    }
    // Let the last attempts finish.
    let _ = in_flight.acquire_many(1024).await;
}

/// The in-process HTTP sink: its address, what it received, and its server task (stopped on drop).
struct Sink {
    addr: SocketAddr,
    received: Arc<receiver::Received>,
    _task: AbortOnDrop,
}

impl Sink {
    async fn start() -> Result<Self, LoadError> {
        let (addr, received, task) = receiver::start()
            .await
            .map_err(|e| LoadError::Gateway(format!("sink: {}", e.kind())))?;
        Ok(Sink {
            addr,
            received,
            _task: AbortOnDrop(task),
        })
    }
}

/// Samples the gateway's resident memory once a second until `done` is set.
fn sample_memory(pid: u32, done: Arc<AtomicBool>) -> tokio::task::JoinHandle<Vec<u64>> {
    tokio::spawn(async move {
        let mut samples = Vec::new();
        while !done.load(Ordering::SeqCst) {
            samples.push(proc_status_kib(pid, "VmRSS:"));
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        samples
    })
}

/// Places `opts.calls` real-time calls, started spread over one second (real calls do not arrive
/// in the same millisecond), and waits for them all. One tone for all calls, borrowed by each
/// (60 s of it is 480 KB).
async fn place_calls(opts: &LoadOptions, url: &str, identity: Arc<Identity>) -> Vec<CallOutcome> {
    let frames = usize::try_from(opts.seconds * 50).unwrap_or(usize::MAX);
    let tone = Arc::new(audio::tone(440.0, frames));
    let calls: Vec<_> = (0..opts.calls)
        .map(|i| {
            let delay = Duration::from_millis((i as u64 * 1000) / opts.calls.max(1) as u64);
            tokio::spawn(call(url.to_owned(), identity.clone(), tone.clone(), delay))
        })
        .collect();
    let mut outcomes = Vec::new();
    for c in calls {
        outcomes.push(c.await.unwrap_or(CallOutcome {
            sent: 0,
            completed: false,
        }));
    }
    outcomes
}

/// The gateway's stats once it has finished the last invocations (every frame sent judged, every
/// record expected delivered), or after 5 s.
async fn settled_stats(
    addr: SocketAddr,
    frames_sent: u64,
    records_expected: u64,
    sink: Option<&Sink>,
) -> Option<StatsSnapshot> {
    let delivered = || sink.map_or(0, |s| s.received.total());
    let mut snapshot = stats(addr).await;
    for _ in 0..50 {
        match &snapshot {
            Some(s)
                if s.accepted + s.closed + s.dropped >= frames_sent
                    && delivered() >= records_expected =>
            {
                break
            }
            _ => {
                tokio::time::sleep(Duration::from_millis(100)).await;
                snapshot = stats(addr).await;
            }
        }
    }
    snapshot
}

/// What the run measured, before it is judged.
struct Measured {
    outcomes: Vec<CallOutcome>,
    window: f64,
    stats: StatsSnapshot,
    bad: Arc<BadCounts>,
    records_expected: u64,
    rss_kib: Vec<u64>,
    peak_rss_kib: u64,
}

/// Runs the load and reports. The gateway is stopped when this returns.
pub async fn run(opts: LoadOptions) -> Result<LoadReport, LoadError> {
    let document = std::fs::read_to_string(&opts.credentials)
        .map_err(|e| LoadError::Credentials(e.kind().to_string()))?;
    let identity = Arc::new(
        Identity::from_document(&document, 0).map_err(|e| LoadError::Credentials(e.to_string()))?,
    );
    let sink = if opts.deliver {
        Some(Sink::start().await?)
    } else {
        None
    };
    let (child, addr) = start_gateway(&opts, sink.as_ref().map(|s| s.addr)).await?;
    let pid = child.0.id();
    let url = format!("ws://{addr}/dev");

    let done = Arc::new(AtomicBool::new(false));
    let sampler = sample_memory(pid, done.clone());
    let bad = Arc::new(BadCounts::default());
    let bad_task = tokio::spawn(bad_client(
        addr,
        url.clone(),
        opts.bad_per_second,
        done.clone(),
        bad.clone(),
    ));
    let started = Instant::now();
    let outcomes = place_calls(&opts, &url, identity).await;
    let window = started.elapsed().as_secs_f64();
    done.store(true, Ordering::SeqCst);
    let _ = bad_task.await;
    let rss_kib = sampler.await.unwrap_or_default();
    let peak_rss_kib = proc_status_kib(pid, "VmHWM:");

    let frames_sent: u64 = outcomes.iter().map(|o| o.sent).sum();
    // Each call's frames but `connected`, and its `disconnect`.
    let records_expected = if sink.is_some() { frames_sent } else { 0 };
    let snapshot = settled_stats(addr, frames_sent, records_expected, sink.as_ref()).await;
    drop(child);
    let stats = snapshot.ok_or_else(|| LoadError::Gateway("stats unavailable".into()))?;
    let measured = Measured {
        outcomes,
        window,
        stats,
        bad,
        records_expected,
        rss_kib,
        peak_rss_kib,
    };
    Ok(report(&opts, measured, sink.as_ref()))
}

/// The report of what was measured, judged by [`check`].
fn report(opts: &LoadOptions, m: Measured, sink: Option<&Sink>) -> LoadReport {
    let (s, window) = (&m.stats, m.window);
    let count = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let received = |f: fn(&receiver::Received) -> u64| sink.map_or(0, |k| f(&k.received));
    let calls_completed = m.outcomes.iter().filter(|o| o.completed).count();
    let mut report = LoadReport {
        calls: opts.calls,
        seconds: opts.seconds,
        call_state: opts.call_state.clone(),
        calls_completed,
        calls_failed: opts.calls - calls_completed,
        frames_sent: m.outcomes.iter().map(|o| o.sent).sum(),
        frames_accepted: s.accepted,
        frames_closed: s.closed,
        frames_dropped: s.dropped,
        sink: if sink.is_some() { "http" } else { "none" }.to_owned(),
        records_expected: m.records_expected,
        records_delivered: received(receiver::Received::total),
        records_repeated: received(|r| r.repeated.load(Ordering::Relaxed)),
        records_media: received(|r| r.media.load(Ordering::Relaxed)),
        records_malformed: received(|r| r.malformed.load(Ordering::Relaxed)),
        frames_per_second: s.accepted as f64 / window,
        bad_attempted: count(&m.bad.attempted),
        bad_refused: count(&m.bad.refused),
        bad_admitted: count(&m.bad.admitted),
        bad_errors: count(&m.bad.errors),
        refusals_per_second: count(&m.bad.refused) as f64 / window,
        latency_p50_us: s.latency_p50_us,
        latency_p99_us: s.latency_p99_us,
        latency_max_us: s.latency_max_us,
        rss_kib: m.rss_kib,
        peak_rss_kib: m.peak_rss_kib,
        passed: false,
        failures: Vec::new(),
    };
    report.failures = check(&report);
    report.passed = report.failures.is_empty();
    report
}

/// The pass conditions: nothing legitimate lost or refused, nothing hostile admitted, memory flat.
fn check(r: &LoadReport) -> Vec<String> {
    let mut f = Vec::new();
    if r.calls_failed > 0 {
        f.push(format!("{} calls failed or were cut", r.calls_failed));
    }
    if r.frames_accepted != r.frames_sent || r.frames_closed > 0 || r.frames_dropped > 0 {
        f.push(format!(
            "frames: {} sent, {} accepted, {} closed, {} dropped",
            r.frames_sent, r.frames_accepted, r.frames_closed, r.frames_dropped
        ));
    }
    if r.records_delivered != r.records_expected || r.records_malformed > 0 {
        f.push(format!(
            "records: {} expected, {} delivered, {} malformed",
            r.records_expected, r.records_delivered, r.records_malformed
        ));
    }
    if r.bad_admitted > 0 || r.bad_refused != r.bad_attempted {
        f.push(format!(
            "bad handshakes: {} attempted, {} refused, {} admitted, {} errors",
            r.bad_attempted, r.bad_refused, r.bad_admitted, r.bad_errors
        ));
    }
    // Flat memory: after the first quarter (calls connecting, buffers growing), resident memory
    // grows by less than 20 % + 8 MiB.
    if r.rss_kib.len() >= 4 {
        let settled = r.rss_kib[r.rss_kib.len() / 4];
        let last = r.rss_kib.iter().rev().take(3).copied().max().unwrap_or(0);
        if last > settled + settled / 5 + 8 * 1024 {
            f.push(format!("memory grew from {settled} KiB to {last} KiB"));
        }
    }
    f
}

impl LoadReport {
    /// The report for people.
    pub fn render(&self) -> String {
        let rss_first = self.rss_kib.first().copied().unwrap_or(0);
        let rss_last = self.rss_kib.last().copied().unwrap_or(0);
        format!(
            "calls        {} x {} s, call state {}: {} completed, {} failed\n\
             frames       {} sent, {} accepted, {} closed, {} dropped: {:.0} frames/s\n\
             records      sink {}: {} expected, {} delivered ({} media), {} repeated, {} malformed\n\
             handshakes   {} bad: {} refused ({:.0}/s), {} admitted, {} errors\n\
             latency      frame arrival to verdict{}: p50 {} us, p99 {} us, max {} us\n\
             memory       gateway RSS {} KiB at start, {} KiB at end, peak {} KiB\n\
             result       {}\n",
            self.calls,
            self.seconds,
            self.call_state,
            self.calls_completed,
            self.calls_failed,
            self.frames_sent,
            self.frames_accepted,
            self.frames_closed,
            self.frames_dropped,
            self.frames_per_second,
            self.sink,
            self.records_expected,
            self.records_delivered,
            self.records_media,
            self.records_repeated,
            self.records_malformed,
            self.bad_attempted,
            self.bad_refused,
            self.refusals_per_second,
            self.bad_admitted,
            self.bad_errors,
            if self.sink == "none" {
                ""
            } else {
                " (after the sink's 2xx)"
            },
            self.latency_p50_us,
            self.latency_p99_us,
            self.latency_max_us,
            rss_first,
            rss_last,
            self.peak_rss_kib,
            if self.passed {
                "PASS".to_owned()
            } else {
                format!("FAIL: {}", self.failures.join("; "))
            }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::banner_addr;

    #[test]
    fn reads_the_gateways_address_from_its_banner() {
        assert_eq!(
            banner_addr("  WebSocket:       ws://127.0.0.1:40123/dev"),
            Some(([127, 0, 0, 1], 40123).into())
        );
        assert_eq!(
            banner_addr("  URL Twilio signs ws://127.0.0.1:40123/dev"),
            None
        );
        assert_eq!(
            banner_addr("  WebSocket:       wss://gate.example.com/prod"),
            None
        );
    }
}
