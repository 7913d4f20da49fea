//! The per-instance credentials cache: at most one fetch per TTL, the last good document kept when
//! a refresh fails (for a bounded grace period), and nothing at all (deny everything) when no good
//! document exists. Concurrent callers wait for one fetch instead of starting their own.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

use super::credential_source::DocumentSource;
use crate::domain::Credentials;

/// After a failed fetch, wait at least this long before the next one (but never longer than the
/// TTL), so an outage neither hammers the store nor leaves a fresh instance denying for a full TTL.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(10);

struct State {
    good: Option<(Arc<Credentials>, Instant)>,
    next_fetch: Option<Instant>,
}

/// Caches the parsed credentials document of one source.
pub struct CredentialCache {
    source: Box<dyn DocumentSource>,
    ttl: Duration,
    max_stale: Duration,
    fetch_timeout: Duration,
    state: Mutex<State>,
}

impl CredentialCache {
    /// A cache over `source` that trusts a document for `ttl` and keeps serving the last good one
    /// for up to `max_stale` after its fetch while refreshes fail.
    pub fn new(source: Box<dyn DocumentSource>, ttl: Duration, max_stale: Duration) -> Self {
        Self {
            source,
            ttl,
            max_stale: max_stale.max(ttl),
            fetch_timeout: Duration::from_secs(3),
            state: Mutex::new(State {
                good: None,
                next_fetch: None,
            }),
        }
    }

    /// A cache that never has credentials (no source configured): every decision denies.
    pub fn empty() -> Self {
        struct Nothing;
        impl DocumentSource for Nothing {
            fn fetch(
                &self,
            ) -> futures_util::future::BoxFuture<
                '_,
                Result<crate::domain::Secret, super::SourceError>,
            > {
                Box::pin(async {
                    Err(super::SourceError {
                        code: "no_credentials_configured".into(),
                    })
                })
            }
        }
        Self::new(
            Box::new(Nothing),
            Duration::from_secs(300),
            Duration::from_secs(300),
        )
    }

    /// Bounds one fetch (a slow store must not hold an invocation past its Lambda timeout).
    pub fn with_fetch_timeout(mut self, timeout: Duration) -> Self {
        self.fetch_timeout = timeout;
        self
    }

    /// The current credentials, fetching if due. `None` means deny/close.
    pub async fn get(&self) -> Option<Arc<Credentials>> {
        self.get_at(Instant::now()).await
    }

    /// As [`get`](Self::get), at a given instant (tests drive time).
    pub async fn get_at(&self, now: Instant) -> Option<Arc<Credentials>> {
        let state = self.state.lock().await;
        self.serve(state, now, None).await
    }

    /// As [`get`](Self::get), never waiting past `until` (the invocation's budget): a fetch cut
    /// short there counts as a failed fetch (code `deadline`), so the last good document still
    /// serves; with none, the answer is `None` and the caller denies or closes.
    pub async fn get_until(&self, until: Instant) -> Option<Arc<Credentials>> {
        let now = Instant::now();
        match tokio::time::timeout_at(until, self.state.lock()).await {
            Ok(state) => self.serve(state, now, Some(until)).await,
            Err(_) => {
                tracing::error!(event = "credentials_fetch_failed", code = "deadline");
                None
            }
        }
    }

    async fn serve(
        &self,
        mut state: tokio::sync::MutexGuard<'_, State>,
        now: Instant,
        until: Option<Instant>,
    ) -> Option<Arc<Credentials>> {
        if state.next_fetch.is_none_or(|due| now >= due) {
            let started = Instant::now();
            let limit = until.map_or(self.fetch_timeout, |u| {
                u.saturating_duration_since(started).min(self.fetch_timeout)
            });
            let fetched = tokio::time::timeout(limit, self.source.fetch()).await;
            // The retry interval counts from the end of a failed fetch: counted from its start, a
            // fetch that ran into its timeout would already be due again, and every invocation
            // would wait for the slow store in turn.
            let retry_at = now + started.elapsed() + RETRY_AFTER_FAILURE.min(self.ttl);
            match fetched {
                Ok(Ok(doc)) => match Credentials::from_json(doc.expose()) {
                    Ok(creds) => {
                        tracing::info!(
                            event = "credentials_loaded",
                            accounts = creds.account_sids().count()
                        );
                        state.good = Some((Arc::new(creds), now));
                        state.next_fetch = Some(now + self.ttl);
                    }
                    Err(e) => {
                        // The error names a field and a rule, never a value.
                        tracing::error!(event = "credentials_refused", field = %e.field, problem = e.problem,
                            keeping_last_good = state.good.is_some());
                        state.next_fetch = Some(retry_at);
                    }
                },
                Ok(Err(e)) => {
                    tracing::error!(event = "credentials_fetch_failed", code = %e.code, keeping_last_good = state.good.is_some());
                    state.next_fetch = Some(retry_at);
                }
                Err(_) => {
                    // Cut by the invocation's budget rather than the fetch's own timeout.
                    let code = if limit < self.fetch_timeout {
                        "deadline"
                    } else {
                        "timeout"
                    };
                    tracing::error!(
                        event = "credentials_fetch_failed",
                        code,
                        keeping_last_good = state.good.is_some()
                    );
                    state.next_fetch = Some(retry_at);
                }
            }
        }
        match &state.good {
            Some((creds, fetched)) if now.saturating_duration_since(*fetched) <= self.max_stale => {
                Some(creds.clone())
            }
            Some(_) => {
                tracing::error!(
                    event = "credentials_expired",
                    max_stale_secs = self.max_stale.as_secs()
                );
                None
            }
            None => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::SourceError;
    use crate::domain::Secret;
    use futures_util::future::BoxFuture;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex as StdMutex;

    const GOOD: &str = r#"{"twilioAccounts":[{"accountSid":"AC0123456789abcdef0123456789abcdef","authTokens":["t"]}]}"#;
    const GOOD2: &str = r#"{"twilioAccounts":[{"accountSid":"AC0123456789abcdef0123456789abcdef","authTokens":["t"]},{"accountSid":"ACffffffffffffffffffffffffffffffff","authTokens":["u"]}]}"#;

    /// Returns scripted answers in order; counts fetches.
    struct Scripted {
        answers: StdMutex<Vec<Result<&'static str, &'static str>>>,
        calls: Arc<AtomicUsize>,
    }
    impl DocumentSource for Scripted {
        fn fetch(&self) -> BoxFuture<'_, Result<Secret, SourceError>> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            let next = match self.answers.lock() {
                Ok(mut a) if a.len() > 1 => a.remove(0),
                Ok(a) => a[0],
                Err(_) => Err("poisoned"),
            };
            Box::pin(async move {
                next.map(|doc| Secret::new(doc.into()))
                    .map_err(|code| SourceError { code: code.into() })
            })
        }
    }

    fn cache(
        answers: Vec<Result<&'static str, &'static str>>,
    ) -> (CredentialCache, Arc<AtomicUsize>) {
        let calls = Arc::new(AtomicUsize::new(0));
        let src = Scripted {
            answers: StdMutex::new(answers),
            calls: calls.clone(),
        };
        (
            CredentialCache::new(
                Box::new(src),
                Duration::from_secs(300),
                Duration::from_secs(3600),
            ),
            calls,
        )
    }

    fn accounts(c: &Option<Arc<Credentials>>) -> Option<usize> {
        c.as_ref().map(|c| c.account_sids().count())
    }

    #[tokio::test]
    async fn one_fetch_per_ttl_then_rotation() {
        let (c, calls) = cache(vec![Ok(GOOD), Ok(GOOD2)]);
        let t0 = Instant::now();
        for s in [0, 1, 100, 299] {
            assert_eq!(
                accounts(&c.get_at(t0 + Duration::from_secs(s)).await),
                Some(1)
            );
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(
            accounts(&c.get_at(t0 + Duration::from_secs(300)).await),
            Some(2)
        );
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn failed_refresh_keeps_last_good_for_the_grace_period() {
        let (c, calls) = cache(vec![Ok(GOOD), Err("ThrottlingException")]);
        let t0 = Instant::now();
        assert!(c.get_at(t0).await.is_some());
        assert!(c.get_at(t0 + Duration::from_secs(301)).await.is_some());
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        // Retries no sooner than 10 s after a failure.
        assert!(c.get_at(t0 + Duration::from_secs(305)).await.is_some());
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        // Past max_stale (3600 s after the good fetch): deny.
        assert!(c.get_at(t0 + Duration::from_secs(3601)).await.is_none());
    }

    #[tokio::test]
    async fn invalid_document_is_never_used() {
        let (c, _) = cache(vec![Ok("{\"twilioAccounts\":5}")]);
        assert!(c.get_at(Instant::now()).await.is_none());
        let (c, _) = cache(vec![Ok(GOOD), Ok("not json")]);
        let t0 = Instant::now();
        assert_eq!(accounts(&c.get_at(t0).await), Some(1));
        assert_eq!(
            accounts(&c.get_at(t0 + Duration::from_secs(400)).await),
            Some(1)
        );
    }

    #[tokio::test]
    async fn empty_cache_denies() {
        assert!(CredentialCache::empty().get().await.is_none());
    }

    /// Never answers (a store that hangs).
    struct Hanging(Arc<AtomicUsize>);
    impl DocumentSource for Hanging {
        fn fetch(&self) -> BoxFuture<'_, Result<Secret, SourceError>> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Box::pin(std::future::pending())
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_hanging_store_costs_one_timeout_per_retry_interval() {
        let calls = Arc::new(AtomicUsize::new(0));
        let c = CredentialCache::new(
            Box::new(Hanging(calls.clone())),
            Duration::from_secs(300),
            Duration::from_secs(3600),
        );
        let t0 = Instant::now();
        assert!(c.get().await.is_none());
        assert_eq!(
            t0.elapsed(),
            Duration::from_secs(3),
            "cut at the fetch timeout"
        );
        // The retry interval counts from the end of the failed fetch, not its start.
        let t1 = Instant::now();
        assert!(c.get().await.is_none());
        assert_eq!(t1.elapsed(), Duration::ZERO, "no second wait");
        tokio::time::advance(Duration::from_secs(9)).await;
        assert!(c.get().await.is_none());
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(c.get().await.is_none());
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }
}
