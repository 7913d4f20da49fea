//! The invocation's time budget. Lambda gives every invocation a deadline
//! (`Lambda-Runtime-Deadline-Ms`); an invocation still running then is killed and its answer lost,
//! with whatever close or delivery it was doing. So the router spends only the deadline less a
//! margin for posting its answer, and cuts every wait to what is left of that: the credentials
//! refresh, each call-state read and write, each close attempt and each delivery.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

/// Kept back from the deadline for posting the answer to the Runtime API (a loopback HTTP request,
/// well under a millisecond) and for the log lines that say what ran out.
pub const ANSWER_MARGIN: Duration = Duration::from_millis(200);

/// The code logs and metrics use when the budget ran out before an operation completed.
pub const DEADLINE: &str = "deadline";

/// What is left of one invocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    until: Instant,
}

/// The budget ran out before the operation completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the invocation's deadline came first")]
pub struct OutOfTime;

impl Budget {
    /// The budget of an invocation whose Lambda deadline is `deadline`: up to [`ANSWER_MARGIN`]
    /// before it (or nothing, when the deadline is that close already).
    pub fn for_deadline(deadline: Instant) -> Self {
        let now = Instant::now();
        let until = deadline
            .checked_sub(ANSWER_MARGIN)
            .filter(|u| *u > now)
            .unwrap_or(now);
        Self { until }
    }

    /// The instant the budget ends.
    pub fn until(&self) -> Instant {
        self.until
    }

    /// What is left now.
    pub fn left(&self) -> Duration {
        self.until.saturating_duration_since(Instant::now())
    }

    /// Runs `operation`, cut at the end of the budget.
    pub async fn run<F: Future>(&self, operation: F) -> Result<F::Output, OutOfTime> {
        tokio::time::timeout_at(self.until, operation)
            .await
            .map_err(|_| OutOfTime)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_budget_ends_a_margin_before_the_deadline() {
        let now = Instant::now();
        let b = Budget::for_deadline(now + Duration::from_secs(5));
        assert_eq!(b.until(), now + Duration::from_secs(5) - ANSWER_MARGIN);
        assert_eq!(b.left(), Duration::from_secs(5) - ANSWER_MARGIN);
        let late = Budget::for_deadline(now + ANSWER_MARGIN);
        assert_eq!(
            late.left(),
            Duration::ZERO,
            "no time left: nothing may start"
        );
        let past = Budget::for_deadline(now);
        assert_eq!(past.until(), now);
    }

    #[tokio::test(start_paused = true)]
    async fn run_cuts_a_hanging_operation_at_the_budget() {
        let start = Instant::now();
        let b = Budget::for_deadline(start + Duration::from_secs(1));
        assert_eq!(b.run(std::future::pending::<()>()).await, Err(OutOfTime));
        assert_eq!(start.elapsed(), Duration::from_secs(1) - ANSWER_MARGIN);
        assert_eq!(b.run(async { 7 }).await, Ok(7));
    }
}
