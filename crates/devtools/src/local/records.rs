//! Connection records and gateway-wide counters: what happened on each connection (for the demo,
//! the tests and the console) and the totals `GET /_local/stats` reports (for the load test).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

use super::ConnectionRecord;

/// Connection records kept (oldest dropped first).
pub const MAX_RECORDS: usize = 4096;

#[derive(Default)]
struct Inner {
    records: VecDeque<ConnectionRecord>,
    /// Position of each kept record, as a sequence number (`seq - dropped` indexes `records`).
    by_id: HashMap<String, u64>,
    dropped: u64,
}

/// The most recent [`MAX_RECORDS`] connection records, found by id in O(1): every frame updates
/// its connection's record, so a linear search would cost as much as the frame itself under load.
#[derive(Default)]
pub struct Records(Mutex<Inner>);

impl Records {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts the record of a new connection.
    pub fn push(&self, connection_id: &str) {
        let mut inner = self.lock();
        if inner.records.len() >= MAX_RECORDS {
            if let Some(old) = inner.records.pop_front() {
                inner.by_id.remove(&old.connection_id);
            }
            inner.dropped += 1;
        }
        let seq = inner.dropped + inner.records.len() as u64;
        inner.by_id.insert(connection_id.to_owned(), seq);
        inner.records.push_back(ConnectionRecord {
            connection_id: connection_id.to_owned(),
            ..ConnectionRecord::default()
        });
    }

    /// Applies `f` to the record of `id`, if it is still kept.
    pub fn update(&self, id: &str, f: impl FnOnce(&mut ConnectionRecord)) {
        let mut inner = self.lock();
        let Some(seq) = inner.by_id.get(id).copied() else {
            return;
        };
        let at = (seq - inner.dropped) as usize;
        if let Some(record) = inner.records.get_mut(at) {
            f(record);
        }
    }

    /// Every kept record, oldest first.
    pub fn snapshot(&self) -> Vec<ConnectionRecord> {
        self.lock().records.iter().cloned().collect()
    }
}

/// Gateway-wide totals since start.
pub struct GatewayStats {
    /// Handshakes admitted (authorizer allowed and `$connect` answered 2xx).
    pub admitted: AtomicU64,
    /// Handshakes refused (authorizer deny or `$connect` refusal).
    pub refused: AtomicU64,
    /// Text frames passed to `$default`.
    pub frames: AtomicU64,
    /// Frames the router accepted.
    pub accepted: AtomicU64,
    /// Frames the router closed the connection for.
    pub closed: AtomicU64,
    /// Frames the router dropped (call state: no start recorded yet within the grace, or the
    /// store could not say).
    pub dropped: AtomicU64,
    /// Voice webhook requests served (`POST /voice`, any answer).
    pub webhooks: AtomicU64,
    /// Time from a frame's arrival to the router's verdict, in microseconds.
    latency_us: Mutex<Histogram<u64>>,
}

impl Default for GatewayStats {
    fn default() -> Self {
        Self {
            admitted: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            frames: AtomicU64::new(0),
            accepted: AtomicU64::new(0),
            closed: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            webhooks: AtomicU64::new(0),
            // 1 µs to 60 s at 3 significant digits; `saturating_record` clamps anything beyond.
            latency_us: Mutex::new(
                Histogram::new_with_bounds(1, 60_000_000, 3).expect("constant, valid bounds"),
            ),
        }
    }
}

/// A point-in-time copy of [`GatewayStats`], as `GET /_local/stats` answers it.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct StatsSnapshot {
    /// Handshakes admitted.
    pub admitted: u64,
    /// Handshakes refused.
    pub refused: u64,
    /// Frames passed to `$default`.
    pub frames: u64,
    /// Frames accepted.
    pub accepted: u64,
    /// Frames that closed their connection.
    pub closed: u64,
    /// Frames dropped (neither accepted nor closed).
    #[serde(default)]
    pub dropped: u64,
    /// Voice webhook requests served.
    #[serde(default)]
    pub webhooks: u64,
    /// Median frame latency (arrival to verdict), µs.
    pub latency_p50_us: u64,
    /// 99th percentile frame latency, µs.
    pub latency_p99_us: u64,
    /// Largest frame latency, µs.
    pub latency_max_us: u64,
}

impl GatewayStats {
    /// Records one frame's arrival-to-verdict time.
    pub fn frame_latency(&self, took: Duration) {
        let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX).max(1);
        if let Ok(mut h) = self.latency_us.lock() {
            h.saturating_record(us);
        }
    }

    /// The totals now.
    pub fn snapshot(&self) -> StatsSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let (p50, p99, max) = self
            .latency_us
            .lock()
            .map(|h| (h.value_at_quantile(0.5), h.value_at_quantile(0.99), h.max()))
            .unwrap_or_default();
        StatsSnapshot {
            admitted: get(&self.admitted),
            refused: get(&self.refused),
            frames: get(&self.frames),
            accepted: get(&self.accepted),
            closed: get(&self.closed),
            dropped: get(&self.dropped),
            webhooks: get(&self.webhooks),
            latency_p50_us: p50,
            latency_p99_us: p99,
            latency_max_us: max,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_records_by_id_after_the_oldest_are_dropped() {
        let r = Records::default();
        for i in 0..MAX_RECORDS + 10 {
            r.push(&format!("c{i}"));
        }
        r.update("c5", |rec| rec.frames = 1);
        r.update(&format!("c{}", MAX_RECORDS + 9), |rec| rec.frames = 7);
        r.update("c20", |rec| rec.frames = 3);
        let all = r.snapshot();
        assert_eq!(all.len(), MAX_RECORDS);
        assert_eq!(all[0].connection_id, "c10");
        assert!(all.iter().all(|rec| rec.connection_id != "c5"));
        assert_eq!(all[10].frames, 3);
        assert_eq!(all[MAX_RECORDS - 1].frames, 7);
    }

    #[test]
    fn latency_percentiles() {
        let s = GatewayStats::default();
        for us in 1..=100u64 {
            s.frame_latency(Duration::from_micros(us));
        }
        let snap = s.snapshot();
        assert_eq!(
            (
                snap.latency_p50_us,
                snap.latency_p99_us,
                snap.latency_max_us
            ),
            (50, 99, 100)
        );
    }
}
