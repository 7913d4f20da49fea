//! What a row's socket showed, judged with a deployment's visibility: refusals are any 401/403,
//! closes count when they come, reasons only when visible.

use std::time::Duration;

use crate::demo::{judge_replay, Judgement};
use crate::domain::CloseReason;
use crate::sim::attacks::{Expected, GateState, Scenario};
use crate::sim::{ReplayReport, ReplayVerdict, SimReport};

/// The wording of an expectation against a deployment (weaker than `demo`'s: see the module doc).
pub fn describe(expected: Expected, deadline: Duration, frames: usize) -> String {
    match expected {
        Expected::Admitted => format!("admitted, {frames} frames, not closed"),
        Expected::Refused(r) => format!("refused 401/403 ({})", r.code()),
        Expected::Closed(_, r) => format!("closed within {} s ({})", deadline.as_secs(), r.code()),
        Expected::Ignored => "not closed, 0 frames echoed".into(),
        Expected::SameCallToken | Expected::NewCallToken => crate::demo::describe(expected),
    }
}

/// [`describe`] for `scenario` against a gate in `state`, with the demo's [`crate::demo::scenario_note`].
pub(super) fn describe_row(
    scenario: Scenario,
    state: GateState,
    deadline: Duration,
    frames: usize,
) -> String {
    describe(scenario.expected_under(state), deadline, frames)
        + &crate::demo::scenario_note(scenario, state)
}

/// What a row's failure points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// A signed handshake was refused (401/403) where it should have been admitted.
    Refused(u16),
    /// A handshake answered another HTTP status.
    Status(u16),
    /// An offending frame was not closed within the deadline.
    CloseMissing,
    /// Closed for another visible reason.
    WrongReason(CloseReason),
    /// Closed where it should not have been (the reason when visible).
    Closed(Option<CloseReason>),
    /// A handshake that must be refused was admitted.
    Admitted,
    /// The gate wrote frames to the socket.
    Echoed(usize),
    /// The connection ended without a close frame.
    Dropped,
    /// `reuse-call-token`: the first connection, the token's rightful user, did not stream on
    /// undisturbed (what it showed, in words, and the reason when visible).
    HolderDisturbed(String),
    /// `replay-webhook`: the replay got another token than the request (a stateless webhook).
    NewToken,
    /// `replay-webhook`: the replay got the same token, where a stateless webhook was expected.
    SameToken,
    /// `replay-webhook`: an answer without a token (status, 0 for none; what it was).
    NoToken(u16, String),
}

/// A close reason code the client can see (the local gateway writes it; API Gateway does not).
fn visible_reason(text: &str) -> Option<CloseReason> {
    CloseReason::ALL.iter().copied().find(|r| r.code() == text)
}

fn judgement(ok: bool, observed: String, reason: &str, time_ms: u128) -> Judgement {
    Judgement {
        ok,
        observed,
        reason: reason.into(),
        time_ms,
    }
}

/// Judges what the socket showed against `expected`, with a deployment's visibility: refusals are
/// any 401/403, closes count when they come, reasons only when visible.
pub fn judge(expected: Expected, report: &SimReport) -> (Judgement, Option<Finding>) {
    if !report.admitted {
        return judge_refused(expected, report);
    }
    if let Some((code, text, at)) = &report.server_close {
        return judge_server_close(expected, *code, text, at.as_millis());
    }
    if !report.closed_by_client {
        return judge_dropped(expected, report.elapsed.as_millis());
    }
    judge_open(expected, report)
}

/// The handshake was not admitted.
fn judge_refused(expected: Expected, report: &SimReport) -> (Judgement, Option<Finding>) {
    let status = report.refused_status.unwrap_or(0);
    let refused = matches!(status, 401 | 403);
    let ok = refused && matches!(expected, Expected::Refused(_));
    let finding = match (ok, refused) {
        (true, _) => None,
        (false, true) => Some(Finding::Refused(status)),
        (false, false) => Some(Finding::Status(status)),
    };
    let total = report.elapsed.as_millis();
    (
        judgement(ok, format!("refused {status}"), "-", total),
        finding,
    )
}

/// Admitted, then closed by the server with `code` and close text `text`, `at_ms` in.
fn judge_server_close(
    expected: Expected,
    code: u16,
    text: &str,
    at_ms: u128,
) -> (Judgement, Option<Finding>) {
    let seen = visible_reason(text);
    let reason = seen.map_or("-", CloseReason::code);
    let (ok, finding) = match expected {
        Expected::Closed(_, want) => match seen {
            Some(r) if r != want => (false, Some(Finding::WrongReason(r))),
            _ => (true, None),
        },
        Expected::Refused(_) => (false, Some(Finding::Admitted)),
        Expected::Admitted
        | Expected::Ignored
        | Expected::SameCallToken
        | Expected::NewCallToken => (false, Some(Finding::Closed(seen))),
    };
    (
        judgement(ok, format!("closed {code}"), reason, at_ms),
        finding,
    )
}

/// Admitted; the socket ended (or failed) without a close frame.
fn judge_dropped(expected: Expected, total: u128) -> (Judgement, Option<Finding>) {
    let ok = matches!(expected, Expected::Closed(..));
    let finding = match expected {
        Expected::Closed(..) => None,
        Expected::Refused(_) => Some(Finding::Admitted),
        _ => Some(Finding::Dropped),
    };
    (
        judgement(ok, "ended without a close frame".into(), "-", total),
        finding,
    )
}

/// Admitted and still open when the client closed it.
fn judge_open(expected: Expected, report: &SimReport) -> (Judgement, Option<Finding>) {
    let total = report.elapsed.as_millis();
    // Twilio's own answers (`media`, `mark`, `clear` for the call's stream) come from an
    // application behind the gate through PostToConnection (the `echo` example plays the caller's
    // audio back); anything else on the socket was written by something that must not write.
    let echoed = report.frames_received - report.answers.legal().min(report.frames_received);
    match expected {
        Expected::Closed(..) => (
            judgement(false, "not closed".into(), "-", total),
            Some(Finding::CloseMissing),
        ),
        Expected::Refused(_) => (
            judgement(false, "admitted".into(), "-", total),
            Some(Finding::Admitted),
        ),
        Expected::Admitted => (
            judgement(
                echoed == 0,
                format!("admitted, {} sent, client stop", report.frames_sent),
                "-",
                total,
            ),
            (echoed > 0).then_some(Finding::Echoed(echoed)),
        ),
        Expected::Ignored => (
            judgement(
                echoed == 0,
                format!("not closed, {echoed} frames echoed"),
                "-",
                total,
            ),
            (echoed > 0).then_some(Finding::Echoed(echoed)),
        ),
        // A socket where webhook answers were expected: not a scenario this module builds.
        Expected::SameCallToken | Expected::NewCallToken => (
            judgement(false, "a socket, not the webhook".into(), "-", total),
            None,
        ),
    }
}

/// Judges `replay-webhook` against a deployment: the two answers' tokens, compared.
pub fn judge_webhook_replay(
    expected: Expected,
    report: &ReplayReport,
) -> (Judgement, Option<Finding>) {
    let j = judge_replay(expected, report);
    let finding = match (j.ok, report.verdict()) {
        (true, _) => None,
        (false, ReplayVerdict::NewToken) => Some(Finding::NewToken),
        (false, ReplayVerdict::SameToken) => Some(Finding::SameToken),
        (false, ReplayVerdict::NoToken(status, what)) => Some(Finding::NoToken(status, what)),
    };
    (j, finding)
}

/// Judges `reuse-call-token`: the second connection as `expected`, and the first, the token's
/// rightful user, as a legitimate call that must stream on undisturbed.
pub fn judge_token_reuse(
    expected: Expected,
    first: &SimReport,
    second: &SimReport,
) -> (Judgement, Option<Finding>) {
    let (mut j, finding) = judge(expected, second);
    let (holder, _) = judge(Expected::Admitted, first);
    if holder.ok {
        j.observed.push_str("; first untouched");
        return (j, finding);
    }
    j.ok = false;
    let what = if holder.reason == "-" {
        holder.observed
    } else {
        format!("{} {}", holder.observed, holder.reason)
    };
    j.observed.push_str(&format!("; first {what}"));
    (j, finding.or(Some(Finding::HolderDisturbed(what))))
}
