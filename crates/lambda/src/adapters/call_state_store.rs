//! The call-state store (docs/design.md §5): what the router and the voice webhook remember across
//! invocations. One trait, [`CallStateStore`], with DynamoDB (`call_state_dynamodb`) in AWS, memory
//! (`call_state_memory`, with the `dev-adapters` feature: the local gateway, tests) and `off`
//! (`state::CallState::Off`: stateless, named so that a reviewer can grep for it); and the router's
//! per-instance [`VerifiedCache`].

use std::collections::HashMap;
use std::sync::Mutex;

use futures_util::future::BoxFuture;

use crate::domain::call_state::{CallTokenId, StartedCall};
use crate::domain::{AccountSid, CallSid};

/// Why the store could not answer. A short code for logs and metrics, never content.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("call state unavailable: {code}")]
pub struct StoreError {
    /// e.g. `ProvisionedThroughputExceededException`, `timeout`, `memory_full`.
    pub code: String,
}

impl StoreError {
    /// An error with `code`.
    pub fn new(code: impl Into<String>) -> Self {
        Self { code: code.into() }
    }
}

/// What recording a verified start did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartClaim {
    /// Recorded: the connection now has this start (and owns its call token).
    Recorded,
    /// The connection already has a live start.
    StartRepeated,
    /// The call token already opened another connection.
    CallTokenReused,
}

/// What marking a ConversationRelay session's end did (the voice webhook's `…/relay/ended`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionEndMark {
    /// The first end posted for a call this webhook answered: deliver its record.
    First,
    /// The call's end was already posted (Twilio's retry, or a replay): no second record.
    Repeated,
    /// No token was ever issued for the call here (or its record is gone past the retention):
    /// no record.
    NotIssued,
}

/// The store. Every "at most once" rule is one atomic conditional write; a read that decides
/// something another invocation wrote is strongly consistent.
pub trait CallStateStore: Send + Sync {
    /// Records `stream` as `connection_id`'s start and, when a call token verified, claims that
    /// token for this connection — both or neither.
    fn record_start<'a>(
        &'a self,
        connection_id: &'a str,
        stream: &'a StartedCall,
        token: Option<&'a CallTokenId>,
        now: u64,
    ) -> BoxFuture<'a, Result<StartClaim, StoreError>>;

    /// The connection's live start, if one is recorded.
    fn started<'a>(
        &'a self,
        connection_id: &'a str,
        now: u64,
    ) -> BoxFuture<'a, Result<Option<StartedCall>, StoreError>>;

    /// Forgets the connection (`$disconnect`). Token claims stay: a token opens one connection, ever.
    fn forget<'a>(&'a self, connection_id: &'a str) -> BoxFuture<'a, Result<(), StoreError>>;

    /// The voice webhook's one token per CallSid: records `expires_at` as the call's token expiry
    /// the first time, to be kept at least until `keep_until`, and afterwards answers the expiry
    /// first recorded, whatever its age (a retried or replayed webhook gets the same token, never
    /// a new one). The record is never overwritten: only the store's own clean-up after
    /// `keep_until` (DynamoDB's TTL, the memory store's pruning when full) removes it.
    fn issue_call_token<'a>(
        &'a self,
        account: &'a AccountSid,
        call: &'a CallSid,
        expires_at: u64,
        keep_until: u64,
        now: u64,
    ) -> BoxFuture<'a, Result<u64, StoreError>>;

    /// Marks the end of the call's ConversationRelay session on its issued-token record, once:
    /// [`SessionEndMark::First`] the first time, [`SessionEndMark::Repeated`] afterwards, and
    /// [`SessionEndMark::NotIssued`] when the webhook never issued a token for the call (nothing
    /// is written then). Twilio's signature has no timestamp: this is what keeps a replayed
    /// callback from delivering a second `session_end`.
    fn end_session<'a>(
        &'a self,
        account: &'a AccountSid,
        call: &'a CallSid,
        now: u64,
    ) -> BoxFuture<'a, Result<SessionEndMark, StoreError>>;
}

/// How long a token claim is kept after the token's expiry (cleanup only: an expired token is
/// refused anyway).
pub const CLAIM_MARGIN_SECS: u64 = 3_600;

/// The per-instance cache of verified connections: the store is read at most once per connection
/// per warm instance. Only positive answers are cached (a negative one would outlive the start
/// grace); entries go on `$disconnect` or expiry. Bounded: when full, expired entries are dropped,
/// then the oldest insertion.
pub struct VerifiedCache {
    max_entries: usize,
    inner: Mutex<(
        HashMap<String, StartedCall>,
        std::collections::VecDeque<String>,
    )>,
}

impl VerifiedCache {
    /// A cache of at most `max_entries` connections.
    pub fn new(max_entries: usize) -> Self {
        Self {
            max_entries: max_entries.max(1),
            inner: Mutex::new((HashMap::new(), std::collections::VecDeque::new())),
        }
    }

    /// The connection's live start, if cached.
    pub fn get(&self, connection_id: &str, now: u64) -> Option<StartedCall> {
        let guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        guard
            .0
            .get(connection_id)
            .filter(|s| s.is_live(now))
            .copied()
    }

    /// Caches a verified connection.
    pub fn insert(&self, connection_id: &str, stream: StartedCall, now: u64) {
        let mut guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let (map, order) = &mut *guard;
        if map.len() >= self.max_entries {
            map.retain(|_, s| s.is_live(now));
            order.retain(|id| map.contains_key(id));
            while map.len() >= self.max_entries {
                match order.pop_front() {
                    Some(oldest) => {
                        map.remove(&oldest);
                    }
                    None => break,
                }
            }
        }
        if map.insert(connection_id.to_owned(), stream).is_none() {
            order.push_back(connection_id.to_owned());
        }
    }

    /// Forgets a connection.
    pub fn remove(&self, connection_id: &str) {
        let mut guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        guard.0.remove(connection_id);
        guard.1.retain(|id| id != connection_id);
    }

    /// How many connections are cached.
    pub fn len(&self) -> usize {
        self.inner.lock().map(|g| g.0.len()).unwrap_or(0)
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AC: &str = "ACdeadbeefdeadbeefdeadbeefdeadbeef";
    const CA: &str = "CAffeeddccbbaa99887766554433221100";
    const MZ: &str = "MZ00112233445566778899aabbccddeeff";

    fn stream(now: u64) -> StartedCall {
        StartedCall::new(
            AccountSid::parse(AC).expect("ac"),
            CallSid::parse(CA).expect("ca"),
            crate::domain::StreamSid::parse(MZ).expect("mz"),
            now,
        )
    }

    #[test]
    fn verified_cache_is_bounded() {
        let now = 1_800_000_000;
        let c = VerifiedCache::new(2);
        c.insert("a", stream(now), now);
        c.insert("b", stream(now), now);
        c.insert("c", stream(now), now);
        assert_eq!(c.len(), 2);
        assert!(c.get("a", now).is_none(), "the oldest went first");
        assert!(c.get("c", now).is_some());
        c.remove("c");
        assert!(c.get("c", now).is_none());
        assert!(c.get("b", stream(now).expires_at + 1).is_none(), "expired");
    }
}
