//! Dependencies that are slow or never answer, for the invocation-deadline tests (with tokio's
//! paused clock, their waits cost no real time).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use stream_gate_domain::call_state::{CallTokenId, StartedCall};
use stream_gate_domain::{AccountSid, CallSid, Secret};
use stream_gate_lambda::adapters::{
    CallStateStore, CloseError, CloseOutcome, ConnectionCloser, DocumentSource, SessionEndMark,
    SourceError, StartClaim, StoreError,
};

/// A Management API that never answers; counts the attempts.
#[derive(Default)]
pub struct HangingCloser {
    pub attempts: AtomicUsize,
}

impl ConnectionCloser for HangingCloser {
    fn close<'a>(
        &'a self,
        _endpoint: &'a str,
        _connection_id: &'a str,
    ) -> BoxFuture<'a, Result<CloseOutcome, CloseError>> {
        self.attempts.fetch_add(1, Ordering::SeqCst);
        Box::pin(std::future::pending())
    }
}

/// A credentials store (Secrets Manager) that answers `document` after `delay`; counts fetches
/// (shared, so a test can read the count after the cache took the source).
pub struct SlowSource {
    pub document: String,
    pub delay: Duration,
    pub fetches: Arc<AtomicUsize>,
}

impl DocumentSource for SlowSource {
    fn fetch(&self) -> BoxFuture<'_, Result<Secret, SourceError>> {
        self.fetches.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move {
            tokio::time::sleep(self.delay).await;
            Ok(Secret::new(self.document.clone()))
        })
    }
}

/// A call-state store (DynamoDB) that answers each call of `inner` after `delay`; counts calls.
pub struct SlowStore {
    pub inner: Arc<dyn CallStateStore>,
    pub delay: Duration,
    pub calls: AtomicUsize,
}

impl SlowStore {
    async fn wait(&self) {
        self.calls.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(self.delay).await;
    }
}

impl CallStateStore for SlowStore {
    fn record_start<'a>(
        &'a self,
        connection_id: &'a str,
        stream: &'a StartedCall,
        token: Option<&'a CallTokenId>,
        now: u64,
    ) -> BoxFuture<'a, Result<StartClaim, StoreError>> {
        Box::pin(async move {
            self.wait().await;
            self.inner
                .record_start(connection_id, stream, token, now)
                .await
        })
    }

    fn started<'a>(
        &'a self,
        connection_id: &'a str,
        now: u64,
    ) -> BoxFuture<'a, Result<Option<StartedCall>, StoreError>> {
        Box::pin(async move {
            self.wait().await;
            self.inner.started(connection_id, now).await
        })
    }

    fn forget<'a>(&'a self, connection_id: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            self.wait().await;
            self.inner.forget(connection_id).await
        })
    }

    fn issue_call_token<'a>(
        &'a self,
        account: &'a AccountSid,
        call: &'a CallSid,
        expires_at: u64,
        keep_until: u64,
        now: u64,
    ) -> BoxFuture<'a, Result<u64, StoreError>> {
        Box::pin(async move {
            self.wait().await;
            self.inner
                .issue_call_token(account, call, expires_at, keep_until, now)
                .await
        })
    }

    fn end_session<'a>(
        &'a self,
        account: &'a AccountSid,
        call: &'a CallSid,
        now: u64,
    ) -> BoxFuture<'a, Result<SessionEndMark, StoreError>> {
        Box::pin(async move {
            self.wait().await;
            self.inner.end_session(account, call, now).await
        })
    }
}
