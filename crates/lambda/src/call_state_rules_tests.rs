//! The call-state step's waiting and bookkeeping, called directly against a scripted memory store:
//! how long a frame waits for a start still being written, how often it reads the store, which
//! clock it is judged with, the expiry a start is recorded with, and what `$disconnect` reads.
//! Time is tokio's paused clock where only the waiting matters (the waits are exact and instant),
//! and the real clock where the grace has to run out during the wait.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio::time::{timeout, Instant};

use super::*;
use crate::adapters::{CallStateStore, CredentialCache, MemoryStore, RecordingCloser, StoreError};
use crate::config::RouterConfig;
use crate::domain::call_state::DEFAULT_START_GRACE_MS as GRACE_MS;
use crate::domain::call_state::{CONNECTION_LIMIT_SECS, RECORD_MARGIN_SECS};
use crate::domain::connection_context::ConnectionContext;
use crate::domain::fixtures;
use crate::domain::pipeline::parse;
use crate::domain::{AccountSid, CallSid, CallTokenPolicy, Protocol, StreamSid};

const CONNECTION: &str = "Xk2TmdKPIAMCJqw=";

fn account() -> AccountSid {
    AccountSid::parse("ACdeadbeefdeadbeefdeadbeefdeadbeef").expect("account")
}

fn call() -> CallSid {
    CallSid::parse("CAffeeddccbbaa99887766554433221100").expect("call")
}

fn budget() -> Budget {
    Budget::for_deadline(Instant::now() + Duration::from_secs(5))
}

fn stream() -> StreamSid {
    StreamSid::parse("MZ00112233445566778899aabbccddeeff").expect("stream")
}

/// The memory store with its `started` reads counted; the first `hidden` reads do not see the
/// start yet (its write still in flight, as when `start` and the first `media` race).
struct Scripted {
    inner: MemoryStore,
    hidden: usize,
    reads: AtomicUsize,
}

impl Scripted {
    fn hiding(hidden: usize) -> Arc<Self> {
        Arc::new(Self {
            inner: MemoryStore::new(100),
            hidden,
            reads: AtomicUsize::new(0),
        })
    }

    fn reads(&self) -> usize {
        self.reads.load(Ordering::SeqCst)
    }

    /// Records a start verified at `at` (Unix seconds) for `CONNECTION`, outside any router.
    async fn record(&self, at: u64) -> StartedCall {
        let started = StartedCall::new(account(), call(), stream(), at);
        let claim = self
            .inner
            .record_start(CONNECTION, &started, None, at)
            .await;
        assert_eq!(claim, Ok(crate::adapters::StartClaim::Recorded));
        started
    }
}

impl CallStateStore for Scripted {
    fn record_start<'a>(
        &'a self,
        connection_id: &'a str,
        stream: &'a StartedCall,
        token: Option<&'a CallTokenId>,
        now: u64,
    ) -> BoxFuture<'a, Result<crate::adapters::StartClaim, StoreError>> {
        self.inner.record_start(connection_id, stream, token, now)
    }

    fn started<'a>(
        &'a self,
        connection_id: &'a str,
        now: u64,
    ) -> BoxFuture<'a, Result<Option<StartedCall>, StoreError>> {
        if self.reads.fetch_add(1, Ordering::SeqCst) < self.hidden {
            return Box::pin(async { Ok(None) });
        }
        self.inner.started(connection_id, now)
    }

    fn forget<'a>(&'a self, connection_id: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        self.inner.forget(connection_id)
    }

    fn issue_call_token<'a>(
        &'a self,
        account: &'a AccountSid,
        call: &'a CallSid,
        expires_at: u64,
        keep_until: u64,
        now: u64,
    ) -> BoxFuture<'a, Result<u64, StoreError>> {
        self.inner
            .issue_call_token(account, call, expires_at, keep_until, now)
    }

    fn end_session<'a>(
        &'a self,
        account: &'a AccountSid,
        call: &'a CallSid,
        now: u64,
    ) -> BoxFuture<'a, Result<crate::adapters::SessionEndMark, StoreError>> {
        self.inner.end_session(account, call, now)
    }
}

/// A router instance with call state in `store` and the default start grace (`GRACE_MS`). Each
/// call is a fresh instance: nothing in its cache of verified starts.
fn router(store: Arc<Scripted>) -> RouterState {
    let state = RouterState::new(
        RouterConfig::from_lookup(|k| (k == "STREAM_GATE_CALL_STATE").then(|| "memory".into()))
            .expect("config"),
        Arc::new(CredentialCache::empty()),
        Arc::new(RecordingCloser::default()),
        CallState::Store(store),
    );
    assert_eq!(state.config.start_grace, Duration::from_millis(GRACE_MS));
    state
}

/// The call-state step for a `media` frame of `CONNECTION`, bounded so that a step that never
/// ends fails the test instead of hanging it.
async fn media(state: &RouterState, connected_at_ms: Option<u64>) -> StateStep {
    let frame = fixtures::media(&stream(), 2, 1, b"abc");
    let budget = budget();
    let judged = judged(&frame);
    let step = apply(state, CONNECTION, &judged, connected_at_ms, &budget);
    timeout(Duration::from_secs(10), step)
        .await
        .expect("the step ends (it waits at most 4 x 15 ms)")
}

/// `text` as the verdict accepts it for `account()` (call tokens off).
fn judged(text: &str) -> Judged<'_> {
    let context = ConnectionContext::MediaStreams { account: account() };
    parse(text, Protocol::MediaStreams)
        .and_then(|p| p.judge(&context, CallTokenPolicy::Off, None, 0))
        .expect("accepted")
}

#[tokio::test]
async fn a_start_is_recorded_until_the_connection_limit_counted_from_now() {
    let store = Scripted::hiding(0);
    let state = router(store.clone());
    let before = unix_now_ms() / 1000;
    let start = fixtures::start(&account(), &call(), &stream(), None);
    let step = apply(&state, CONNECTION, &judged(&start), None, &budget()).await;
    let after = unix_now_ms() / 1000;
    let StateStep::Accept(Some(started)) = step else {
        panic!("start not recorded: {step:?}");
    };
    let ttl = CONNECTION_LIMIT_SECS + RECORD_MARGIN_SECS;
    assert!(
        (before + ttl..=after + ttl).contains(&started.expires_at),
        "expires at {} for a start at {before}..={after}",
        started.expires_at
    );
    assert_eq!(
        store.inner.started(CONNECTION, after).await,
        Ok(Some(started))
    );
}

#[tokio::test(start_paused = true)]
async fn a_frame_whose_start_is_recorded_never_waits() {
    let store = Scripted::hiding(0);
    let started = store.record(unix_now_ms() / 1000).await;
    // Within the grace, and long after it.
    for connected_at in [unix_now_ms(), unix_now_ms() - 60_000] {
        let state = router(store.clone());
        let reads = store.reads();
        let t = Instant::now();
        assert_eq!(
            media(&state, Some(connected_at)).await,
            StateStep::Accept(Some(started))
        );
        assert_eq!(t.elapsed(), Duration::ZERO);
        assert_eq!(store.reads() - reads, 1);
    }
}

#[tokio::test(start_paused = true)]
async fn a_frame_within_the_grace_waits_for_a_start_still_being_written() {
    // The start becomes visible at the third read: after two waits of 15 ms.
    let store = Scripted::hiding(2);
    let started = store.record(unix_now_ms() / 1000).await;
    let state = router(store.clone());
    let t = Instant::now();
    assert_eq!(
        media(&state, Some(unix_now_ms())).await,
        StateStep::Accept(Some(started))
    );
    assert_eq!(store.reads(), 3);
    let waited = t.elapsed();
    assert!(
        waited >= 2 * START_WAIT_INTERVAL && waited < 3 * START_WAIT_INTERVAL,
        "{waited:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_frame_within_the_grace_gives_up_after_four_more_reads() {
    let store = Scripted::hiding(0);
    let state = router(store.clone());
    let t = Instant::now();
    assert_eq!(
        media(&state, Some(unix_now_ms())).await,
        StateStep::Drop(DropReason::StartPending)
    );
    assert_eq!(store.reads(), 1 + START_WAIT_POLLS as usize);
    let waited = t.elapsed();
    assert!(
        waited >= 4 * START_WAIT_INTERVAL && waited < 5 * START_WAIT_INTERVAL,
        "{waited:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_frame_past_the_grace_or_without_connected_at_is_closed_at_once() {
    for connected_at in [Some(unix_now_ms() - GRACE_MS - 1_000), None] {
        let store = Scripted::hiding(0);
        let state = router(store.clone());
        let t = Instant::now();
        assert_eq!(
            media(&state, connected_at).await,
            StateStep::Close(CloseReason::MediaBeforeStart),
            "{connected_at:?}"
        );
        assert_eq!(store.reads(), 1, "{connected_at:?}");
        assert_eq!(t.elapsed(), Duration::ZERO, "{connected_at:?}");
    }
}

#[tokio::test]
async fn a_frame_whose_grace_ends_while_it_waits_is_judged_by_the_clock_after_the_wait() {
    // Real time: the grace has 50 ms left when the step starts, and it waits 4 x 15 ms for a start
    // that never comes, so the grace is over when it is judged: closed, not dropped. (Had the step
    // started more than 50 ms late, it would not wait and close at once: the same verdict.)
    let store = Scripted::hiding(0);
    let state = router(store.clone());
    let connected_at = unix_now_ms() - GRACE_MS + 50;
    assert_eq!(
        media(&state, Some(connected_at)).await,
        StateStep::Close(CloseReason::MediaBeforeStart)
    );
}

#[tokio::test]
async fn a_disconnect_reads_the_start_only_for_its_record_and_only_a_live_one() {
    let now = unix_now_ms() / 1000;
    // A live start, not in this instance's cache: read from the store when a record is wanted.
    let store = Scripted::hiding(0);
    let started = store.record(now).await;
    assert_eq!(
        forget(&router(store.clone()), CONNECTION, true, &budget()).await,
        Some(Some(started))
    );
    assert_eq!(store.reads(), 1);
    assert_eq!(
        store.inner.started(CONNECTION, now).await,
        Ok(None),
        "forgotten"
    );

    // Without a sink: the store is not read at all (one delete, nothing else).
    let store = Scripted::hiding(0);
    store.record(now).await;
    assert_eq!(
        forget(&router(store.clone()), CONNECTION, false, &budget()).await,
        Some(None)
    );
    assert_eq!(store.reads(), 0);

    // A start whose record has expired counts as none.
    let store = Scripted::hiding(0);
    let ttl = CONNECTION_LIMIT_SECS + RECORD_MARGIN_SECS;
    store.record(now - ttl - 10).await;
    assert_eq!(
        forget(&router(store.clone()), CONNECTION, true, &budget()).await,
        Some(None)
    );
    assert_eq!(store.reads(), 1);
}
