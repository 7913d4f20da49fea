//! Unknown events on a verified call are ignored (Twilio may add events), but they are still
//! frames a peer chose to send, up to 50 a second: one log line each would be a log flood and a
//! cost. They are logged at most once per connection per interval on this instance; the ones in
//! between are counted and reported with the next line (and at `$disconnect`), as the
//! `UnknownEvent` metric's value.

use std::collections::HashMap;
use std::sync::Mutex;

/// At most one log line per connection per this many milliseconds.
pub const UNKNOWN_EVENT_LOG_INTERVAL_MS: u64 = 60_000;

/// Connections tracked at once; when full, the map is cleared (the worst case is one extra line
/// per connection, never an unbounded map).
pub const UNKNOWN_EVENT_CONNECTIONS: usize = 10_000;

#[derive(Debug, Clone, Copy)]
struct Seen {
    logged_at_ms: u64,
    since: u64,
}

/// Per-connection throttle of the unknown-event log line.
#[derive(Debug, Default)]
pub struct UnknownEvents {
    inner: Mutex<HashMap<String, Seen>>,
}

impl UnknownEvents {
    /// One unknown event on `connection_id` at `now_ms`: `Some(n)` when a line is due now, `n`
    /// being the unknown events it reports (this one and those not reported since the last
    /// line); `None` when it is only counted.
    pub fn observe(&self, connection_id: &str, now_ms: u64) -> Option<u64> {
        let mut map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(seen) = map.get_mut(connection_id) {
            seen.since += 1;
            if now_ms.saturating_sub(seen.logged_at_ms) < UNKNOWN_EVENT_LOG_INTERVAL_MS {
                return None;
            }
            let n = seen.since;
            *seen = Seen {
                logged_at_ms: now_ms,
                since: 0,
            };
            return Some(n);
        }
        if map.len() >= UNKNOWN_EVENT_CONNECTIONS {
            map.clear();
        }
        map.insert(
            connection_id.to_owned(),
            Seen {
                logged_at_ms: now_ms,
                since: 0,
            },
        );
        Some(1)
    }

    /// Forgets `connection_id` (`$disconnect`), returning the unknown events counted but not yet
    /// reported.
    pub fn forget(&self, connection_id: &str) -> u64 {
        let mut map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(connection_id).map_or(0, |s| s.since)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_connection_per_interval_with_the_count_in_between() {
        let u = UnknownEvents::default();
        assert_eq!(u.observe("a", 1_000), Some(1));
        assert_eq!(u.observe("b", 1_000), Some(1), "per connection");
        for t in 1_001..1_051 {
            assert_eq!(u.observe("a", t), None);
        }
        assert_eq!(u.observe("a", 60_999), None);
        assert_eq!(
            u.observe("a", 61_000),
            Some(52),
            "50 + the one at 60 999 + this one"
        );
        assert_eq!(u.observe("a", 61_001), None);
        assert_eq!(u.forget("a"), 1);
        assert_eq!(u.forget("a"), 0);
        assert_eq!(u.observe("a", 61_002), Some(1), "forgotten: logged again");
    }

    #[test]
    fn the_map_is_bounded() {
        let u = UnknownEvents::default();
        for i in 0..UNKNOWN_EVENT_CONNECTIONS + 5 {
            assert_eq!(u.observe(&i.to_string(), 1), Some(1));
        }
        let len = u.inner.lock().map(|m| m.len()).unwrap_or(usize::MAX);
        assert!(len <= UNKNOWN_EVENT_CONNECTIONS, "{len}");
    }
}
