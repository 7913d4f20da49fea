//! The router's call-state step (docs/design.md §5): after a frame passed the stateless verdict, the
//! store says whether it belongs to a verified start, as a [`StateStep`] that the judged frame
//! turns into its one decision (`domain::pipeline`). With `STREAM_GATE_CALL_STATE=off` the step is
//! skipped and every stateless Accept stands (SECURITY.md lists what that leaves open).
//!
//! This is application logic with I/O (the store, the clock, the invocation budget); the rules
//! themselves are pure and live in the domain (`call_state::judge_against_start`).

use crate::adapters::{CallStateStore, StartClaim, StoreError};
use crate::budget::{Budget, OutOfTime, DEADLINE};
use crate::clock::unix_now_ms;
use crate::domain::call_state::{
    judge_against_start, CallTokenId, StartedCall, StateVerdict, Timing,
};
use crate::domain::pipeline::Judged;
pub use crate::domain::pipeline::{DropReason, StateStep};
use crate::domain::CloseReason;
use crate::metrics::{self, Metric};
use crate::state::{CallState, RouterState};

/// The call-state step for one judged frame: a `start` or `setup` is recorded (claiming its call
/// token),
/// any other frame is judged by its binding against the connection's recorded start. Every
/// store call is cut at the invocation's `budget` (an unfinished one counts as the store being
/// unavailable, code `deadline`).
pub async fn apply(
    state: &RouterState,
    connection_id: &str,
    judged: &Judged<'_>,
    connected_at_ms: Option<u64>,
    budget: &Budget,
) -> StateStep {
    let CallState::Store(store) = &state.call_state else {
        return StateStep::Accept(None);
    };
    let now_ms = unix_now_ms();
    if let Some((started, token)) = judged.start_claim(now_ms / 1000) {
        let claim = Claim {
            started,
            token,
            now: now_ms / 1000,
            repeated: judged.repeated_start(),
        };
        return record_start(state, store.as_ref(), connection_id, claim, budget).await;
    }
    let Some(binding) = judged.binding() else {
        return StateStep::Accept(None);
    };
    let timing = Timing {
        connected_at_ms,
        now_ms,
        grace_ms: u64::try_from(state.config.start_grace.as_millis()).unwrap_or(u64::MAX),
    };
    if binding.decided_without_store(timing) {
        return StateStep::Accept(None); // `connected` before the start: never delivered
    }
    let now = now_ms / 1000;
    let mut recorded = match lookup(state, store.as_ref(), connection_id, now, budget).await {
        Ok(r) => r,
        Err(code) => {
            unavailable(state, &code, now_ms);
            return StateStep::Drop(DropReason::CallStateUnavailable);
        }
    };
    // Twilio sends the first media frame right behind `start`, and API Gateway runs them as
    // concurrent invocations: a frame that finds no start within the grace waits a little for
    // the start's write (a few store reads, only at the beginning of a call) before it is dropped.
    let mut polls = 0;
    while recorded.is_none()
        && timing.within_grace()
        && polls < START_WAIT_POLLS
        && budget.left() > START_WAIT_INTERVAL
    {
        polls += 1;
        tokio::time::sleep(START_WAIT_INTERVAL).await;
        recorded = match lookup(state, store.as_ref(), connection_id, now, budget).await {
            Ok(r) => r,
            Err(code) => {
                unavailable(state, &code, unix_now_ms());
                return StateStep::Drop(DropReason::CallStateUnavailable);
            }
        };
    }
    let timing = Timing {
        now_ms: if polls > 0 { unix_now_ms() } else { now_ms },
        ..timing
    };
    match judge_against_start(&binding, recorded.as_ref(), timing) {
        StateVerdict::Accept => StateStep::Accept(recorded),
        StateVerdict::Drop => StateStep::Drop(DropReason::StartPending),
        StateVerdict::Close(reason) => StateStep::Close(reason),
    }
}

/// A verified start to record, with the call token it claims.
struct Claim {
    started: StartedCall,
    token: Option<CallTokenId>,
    now: u64,
    /// The close reason of a second start (`start_repeated`, `setup_repeated`).
    repeated: CloseReason,
}

/// Records a verified start and claims its call token, both or neither.
async fn record_start(
    state: &RouterState,
    store: &dyn CallStateStore,
    connection_id: &str,
    Claim {
        started,
        token,
        now,
        repeated,
    }: Claim,
    budget: &Budget,
) -> StateStep {
    if state.verified.get(connection_id, now).is_some() {
        return StateStep::Close(repeated);
    }
    let claim = budget
        .run(store.record_start(connection_id, &started, token.as_ref(), now))
        .await
        .unwrap_or_else(|OutOfTime| Err(StoreError::new(DEADLINE)));
    match claim {
        Ok(StartClaim::Recorded) => {
            state.verified.insert(connection_id, started, now);
            StateStep::Accept(Some(started))
        }
        Ok(StartClaim::StartRepeated) => StateStep::Close(repeated),
        Ok(StartClaim::CallTokenReused) => StateStep::Close(CloseReason::CallTokenReused),
        Err(e) => {
            unavailable(state, &e.code, unix_now_ms());
            StateStep::Close(CloseReason::CallStateUnavailable)
        }
    }
}

/// How often, and how many times, a frame with no recorded start re-reads it within the grace.
pub const START_WAIT_INTERVAL: std::time::Duration = std::time::Duration::from_millis(15);
/// See [`START_WAIT_INTERVAL`]: at most 60 ms of waiting per frame.
pub const START_WAIT_POLLS: u32 = 4;

/// The connection's live start: this instance's cache, else one (consistent) store read, whose
/// positive answer is cached.
async fn lookup(
    state: &RouterState,
    store: &dyn CallStateStore,
    connection_id: &str,
    now: u64,
    budget: &Budget,
) -> Result<Option<StartedCall>, String> {
    if let Some(r) = state.verified.get(connection_id, now) {
        return Ok(Some(r));
    }
    match budget.run(store.started(connection_id, now)).await {
        Ok(Ok(Some(r))) => {
            state.verified.insert(connection_id, r, now);
            Ok(Some(r))
        }
        Ok(Ok(None)) => Ok(None),
        Ok(Err(e)) => Err(e.code),
        Err(OutOfTime) => Err(DEADLINE.to_owned()),
    }
}

/// `$disconnect`: forget the connection here and in the store (token claims stay). Returns
/// whether the connection had a verified start (`None` without call state: unknown). The store is
/// read for that only when `want_start` (a sink will get the `disconnect` record): with no sink a
/// disconnect costs one `DeleteItem` and nothing else.
pub async fn forget(
    state: &RouterState,
    connection_id: &str,
    want_start: bool,
    budget: &Budget,
) -> Option<Option<StartedCall>> {
    let CallState::Store(store) = &state.call_state else {
        return None;
    };
    let now = unix_now_ms() / 1000;
    let known = match state.verified.get(connection_id, now) {
        Some(s) => Some(s),
        // A read that fails is an outage like any other (logged, counted); the connection then
        // gets no `disconnect` record, since nothing says it ever had a verified start.
        None if want_start => match budget.run(store.started(connection_id, now)).await {
            Ok(Ok(found)) => found,
            Ok(Err(e)) => {
                unavailable(state, &e.code, unix_now_ms());
                None
            }
            Err(OutOfTime) => {
                unavailable(state, DEADLINE, unix_now_ms());
                None
            }
        },
        None => None,
    };
    state.verified.remove(connection_id);
    match budget.run(store.forget(connection_id)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => unavailable(state, &e.code, unix_now_ms()),
        Err(OutOfTime) => unavailable(state, DEADLINE, unix_now_ms()),
    }
    Some(known)
}

fn unavailable(state: &RouterState, code: &str, now_ms: u64) {
    metrics::count(Metric::CallStateUnavailable, code);
    if let Some(suppressed) = state.store_errors.admit(now_ms) {
        tracing::error!(
            event = "call_state_unavailable",
            store_error = code,
            suppressed_since_last = suppressed
        );
    }
}

#[cfg(test)]
#[path = "call_state_rules_tests.rs"]
mod tests;
