//! `STREAM_GATE_CALL_STATE=memory` (`dev-adapters`): the call-state store in-process, for the
//! local gateway and the tests. Never in the Lambda binaries, which refuse `memory` at init.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use futures_util::future::BoxFuture;

use super::call_state_store::{
    CallStateStore, SessionEndMark, StartClaim, StoreError, CLAIM_MARGIN_SECS,
};
use crate::domain::call_state::{CallTokenId, StartedCall};
use crate::domain::{AccountSid, CallSid};

/// `STREAM_GATE_CALL_STATE=memory`: in-process and bounded; for the local gateway and tests. One
/// process is one "instance", so it closes the gaps only for what that process sees.
///
/// Bounded means fail closed: when a kind of record is full after dropping what has expired
/// (starts, claims past their token's expiry, issued-token records past their `keep_until`), the
/// store refuses to record and the gate answers `call_state_unavailable`. It never evicts a live
/// record to make room: forgetting a CallSid's issued token early would let a replay of its
/// webhook mint a fresh one.
pub struct MemoryStore {
    max_entries: usize,
    inner: Mutex<Memory>,
}

#[derive(Default)]
struct Memory {
    connections: HashMap<String, StartedCall>,
    claims: HashMap<CallTokenId, String>,
    issued: HashMap<(AccountSid, CallSid), (u64, u64)>,
    /// Calls whose ConversationRelay session's end was posted (a mark on an `issued` record: it
    /// goes with it).
    ended: HashSet<(AccountSid, CallSid)>,
}

impl MemoryStore {
    /// A store holding at most `max_entries` records of each kind; when full (after dropping
    /// expired ones) it refuses to record, which the gate treats as unavailable (fail closed).
    pub fn new(max_entries: usize) -> Self {
        Self {
            max_entries,
            inner: Mutex::new(Memory::default()),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut Memory) -> T) -> T {
        let mut guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard)
    }
}

impl Memory {
    fn prune(&mut self, now: u64) {
        self.connections.retain(|_, s| s.is_live(now));
        self.claims
            .retain(|t, _| now <= t.expires_at.saturating_add(CLAIM_MARGIN_SECS));
        self.issued.retain(|_, (_, keep_until)| now <= *keep_until);
        let issued = &self.issued;
        self.ended.retain(|call| issued.contains_key(call));
    }
}

impl CallStateStore for MemoryStore {
    fn record_start<'a>(
        &'a self,
        connection_id: &'a str,
        stream: &'a StartedCall,
        token: Option<&'a CallTokenId>,
        now: u64,
    ) -> BoxFuture<'a, Result<StartClaim, StoreError>> {
        let result = self.with(|m| {
            if m.connections
                .get(connection_id)
                .is_some_and(|s| s.is_live(now))
            {
                return Ok(StartClaim::StartRepeated);
            }
            if let Some(t) = token {
                if m.claims.get(t).is_some_and(|owner| owner != connection_id) {
                    return Ok(StartClaim::CallTokenReused);
                }
            }
            if m.connections.len() >= self.max_entries || m.claims.len() >= self.max_entries {
                m.prune(now);
                if m.connections.len() >= self.max_entries || m.claims.len() >= self.max_entries {
                    return Err(StoreError::new("memory_full"));
                }
            }
            m.connections.insert(connection_id.to_owned(), *stream);
            if let Some(t) = token {
                m.claims.insert(*t, connection_id.to_owned());
            }
            Ok(StartClaim::Recorded)
        });
        Box::pin(async move { result })
    }

    fn started<'a>(
        &'a self,
        connection_id: &'a str,
        now: u64,
    ) -> BoxFuture<'a, Result<Option<StartedCall>, StoreError>> {
        let found = self.with(|m| {
            m.connections
                .get(connection_id)
                .filter(|s| s.is_live(now))
                .copied()
        });
        Box::pin(async move { Ok(found) })
    }

    fn forget<'a>(&'a self, connection_id: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        self.with(|m| m.connections.remove(connection_id));
        Box::pin(async { Ok(()) })
    }

    fn issue_call_token<'a>(
        &'a self,
        account: &'a AccountSid,
        call: &'a CallSid,
        expires_at: u64,
        keep_until: u64,
        now: u64,
    ) -> BoxFuture<'a, Result<u64, StoreError>> {
        let result = self.with(|m| {
            // Whatever its age: a record past `keep_until` that pruning has not dropped yet is
            // still answered, as DynamoDB answers an item its TTL has not deleted yet.
            if let Some((exp, _)) = m.issued.get(&(*account, *call)) {
                return Ok(*exp);
            }
            if m.issued.len() >= self.max_entries {
                m.prune(now);
                if m.issued.len() >= self.max_entries {
                    return Err(StoreError::new("memory_full"));
                }
            }
            m.issued.insert((*account, *call), (expires_at, keep_until));
            Ok(expires_at)
        });
        Box::pin(async move { result })
    }

    fn end_session<'a>(
        &'a self,
        account: &'a AccountSid,
        call: &'a CallSid,
        _now: u64,
    ) -> BoxFuture<'a, Result<SessionEndMark, StoreError>> {
        let key = (*account, *call);
        let mark = self.with(|m| {
            if !m.issued.contains_key(&key) {
                SessionEndMark::NotIssued
            } else if m.ended.insert(key) {
                SessionEndMark::First
            } else {
                SessionEndMark::Repeated
            }
        });
        Box::pin(async move { Ok(mark) })
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

    fn token(exp: u64) -> CallTokenId {
        CallTokenId {
            account_sid: AccountSid::parse(AC).expect("ac"),
            call_sid: CallSid::parse(CA).expect("ca"),
            expires_at: exp,
        }
    }

    #[tokio::test]
    async fn memory_store_rules() {
        let m = MemoryStore::new(10);
        let now = 1_800_000_000;
        let s = stream(now);
        let t = token(now + 300);
        assert_eq!(
            m.record_start("c1", &s, Some(&t), now).await,
            Ok(StartClaim::Recorded)
        );
        assert_eq!(
            m.record_start("c1", &s, None, now).await,
            Ok(StartClaim::StartRepeated)
        );
        assert_eq!(
            m.record_start("c2", &s, Some(&t), now).await,
            Ok(StartClaim::CallTokenReused)
        );
        assert_eq!(m.started("c1", now).await, Ok(Some(s)));
        assert_eq!(m.started("c2", now).await, Ok(None));
        assert_eq!(m.started("c1", s.expires_at + 1).await, Ok(None), "expired");
        m.forget("c1").await.expect("forget");
        assert_eq!(m.started("c1", now).await, Ok(None));
        // The token stays claimed after the disconnect: one connection, ever.
        assert_eq!(
            m.record_start("c3", &s, Some(&t), now).await,
            Ok(StartClaim::CallTokenReused)
        );
        let (a, c) = (s.account_sid, s.call_sid);
        let keep = now + 86_400 * 400;
        assert_eq!(
            m.issue_call_token(&a, &c, now + 300, keep, now).await,
            Ok(now + 300)
        );
        assert_eq!(
            m.issue_call_token(&a, &c, now + 999, keep + 5, now + 5)
                .await,
            Ok(now + 300)
        );
        // Past `keep_until`, while the record is still there: still the first expiry.
        let late = keep + 1;
        assert_eq!(
            m.issue_call_token(&a, &c, late + 300, late + 9, late).await,
            Ok(now + 300)
        );
    }

    /// A full store never forgets a CallSid's issued token to make room: it refuses a new call
    /// (fail closed) until a record passes its `keep_until`, and only then mints for a new call.
    #[tokio::test]
    async fn a_full_store_refuses_to_issue_rather_than_forget_a_call() {
        let m = MemoryStore::new(2);
        let now = 1_800_000_000;
        let a = AccountSid::parse(AC).expect("ac");
        let call = |last: char| {
            let sid = format!("{}{last}", &CA[..CA.len() - 1]);
            CallSid::parse(&sid).expect("ca")
        };
        let (c1, c2, c3) = (call('1'), call('2'), call('3'));
        let keep = now + 1_000;
        assert_eq!(
            m.issue_call_token(&a, &c1, now + 300, keep, now).await,
            Ok(now + 300)
        );
        assert_eq!(
            m.issue_call_token(&a, &c2, now + 301, keep + 1, now).await,
            Ok(now + 301)
        );
        assert_eq!(
            m.issue_call_token(&a, &c3, now + 302, keep, now).await,
            Err(StoreError::new("memory_full"))
        );
        // At `keep_until` itself the record is still kept.
        assert_eq!(
            m.issue_call_token(&a, &c3, keep + 300, keep + 400, keep)
                .await,
            Err(StoreError::new("memory_full"))
        );
        // The full store still answers the calls it holds.
        assert_eq!(
            m.issue_call_token(&a, &c1, keep + 300, keep + 400, keep)
                .await,
            Ok(now + 300)
        );
        // One second later the first record is past its retention and makes room; the second is not.
        let later = keep + 1;
        assert_eq!(
            m.issue_call_token(&a, &c3, later + 300, later + 400, later)
                .await,
            Ok(later + 300)
        );
        assert_eq!(
            m.issue_call_token(&a, &c2, later + 9, later + 9, later)
                .await,
            Ok(now + 301)
        );
        // Once the second record is past its retention too, it makes room, and the first call,
        // forgotten, is a new call: a fresh expiry. That is the documented limit of the retention.
        let after = later + 1;
        assert_eq!(
            m.issue_call_token(&a, &c1, after + 300, after + 400, after)
                .await,
            Ok(after + 300)
        );
    }

    #[tokio::test]
    async fn memory_store_is_bounded_and_fails_closed_when_full() {
        let m = MemoryStore::new(2);
        let now = 1_800_000_000;
        let s = stream(now);
        assert_eq!(
            m.record_start("a", &s, None, now).await,
            Ok(StartClaim::Recorded)
        );
        assert_eq!(
            m.record_start("b", &s, None, now).await,
            Ok(StartClaim::Recorded)
        );
        assert_eq!(
            m.record_start("c", &s, None, now).await,
            Err(StoreError::new("memory_full"))
        );
        // Expired records make room.
        let later = s.expires_at + 1;
        assert_eq!(
            m.record_start("c", &stream(later), None, later).await,
            Ok(StartClaim::Recorded)
        );
    }
}
