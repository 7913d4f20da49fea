//! Verify's judgements and diagnoses, from made-up socket reports.

use super::diagnosis::{explain, probe_urls};
use super::*;
use crate::demo::Judgement;
use crate::domain::CloseReason;
use crate::sim::attacks::Expected;
use crate::sim::{Attack, ReplayReport, SimReport};

fn report(admitted: bool) -> SimReport {
    SimReport {
        admitted,
        refused_status: (!admitted).then_some(403),
        frames_sent: 4,
        frames_received: 0,
        answers: Default::default(),
        server_close: None,
        closed_by_client: admitted,
        elapsed: Duration::from_millis(30),
    }
}

fn closed(code: u16, text: &str) -> SimReport {
    SimReport {
        server_close: Some((code, text.into(), Duration::from_millis(12))),
        closed_by_client: false,
        ..report(true)
    }
}

const CLOSED: Expected = Expected::Closed(1008, CloseReason::CallTokenInvalid);

#[test]
fn a_close_counts_whatever_its_code_and_a_visible_reason_must_match() {
    // API Gateway: its own code, no reason.
    let (j, f) = judge(CLOSED, &closed(1001, ""));
    assert_eq!(
        (j.ok, j.observed.as_str(), j.reason.as_str(), f),
        (true, "closed 1001", "-", None)
    );
    assert_eq!(j.time_ms, 12);
    // Local gateway: the reason is visible and right.
    let (j, _) = judge(CLOSED, &closed(1008, "call_token_invalid"));
    assert_eq!((j.ok, j.reason.as_str()), (true, "call_token_invalid"));
    // A visible reason that differs.
    let (j, f) = judge(CLOSED, &closed(1008, "call_token_expired"));
    assert!(!j.ok);
    assert_eq!(f, Some(Finding::WrongReason(CloseReason::CallTokenExpired)));
    // Text that is not a reason code is not a reason.
    assert!(judge(CLOSED, &closed(1001, "Going away")).0.ok);
}

#[test]
fn a_missing_close_is_diagnosed() {
    let (j, f) = judge(CLOSED, &report(true));
    assert_eq!((j.ok, j.observed.as_str()), (false, "not closed"));
    assert_eq!(f, Some(Finding::CloseMissing));
    assert!(explain(&Finding::CloseMissing, Scenario::Legit).starts_with("close did not happen"));
}

#[test]
fn refusals_are_401_or_403_and_a_refused_legitimate_call_is_found() {
    let refused = Expected::Refused(crate::domain::DenyReason::SignatureMissing);
    assert!(judge(refused, &report(false)).0.ok);
    let mut r401 = report(false);
    r401.refused_status = Some(401);
    assert!(judge(refused, &r401).0.ok);
    let mut r500 = report(false);
    r500.refused_status = Some(500);
    assert_eq!(judge(refused, &r500).1, Some(Finding::Status(500)));
    assert_eq!(
        judge(Expected::Admitted, &report(false)).1,
        Some(Finding::Refused(403))
    );
    assert_eq!(judge(refused, &report(true)).1, Some(Finding::Admitted));
}

#[test]
fn an_admitted_call_must_stay_open_and_silent() {
    assert_eq!(
        judge(Expected::Admitted, &report(true)),
        (
            Judgement {
                ok: true,
                observed: "admitted, 4 sent, client stop".into(),
                reason: "-".into(),
                time_ms: 30
            },
            None
        )
    );
    let (j, f) = judge(Expected::Admitted, &closed(1008, "call_token_invalid"));
    assert!(!j.ok);
    assert_eq!(
        f,
        Some(Finding::Closed(Some(CloseReason::CallTokenInvalid)))
    );
    let mut echoed = report(true);
    echoed.frames_received = 2;
    assert_eq!(
        judge(Expected::Ignored, &echoed).1,
        Some(Finding::Echoed(2))
    );
    // The application's answers (an echo of the caller's audio) are not the gate's writing.
    echoed.answers.media = 1;
    let (j, f) = judge(Expected::Admitted, &echoed);
    assert_eq!((j.ok, f), (false, Some(Finding::Echoed(1))));
    echoed.answers.media = 2;
    let (j, f) = judge(Expected::Admitted, &echoed);
    assert_eq!((j.ok, f), (true, None));
}

#[test]
fn a_reused_token_must_close_the_second_connection_and_spare_the_first() {
    let reused = Expected::Closed(1008, CloseReason::CallTokenReused);
    let (j, f) = judge_token_reuse(reused, &report(true), &closed(1008, "call_token_reused"));
    assert!(j.ok);
    assert_eq!(j.observed, "closed 1008; first untouched");
    assert_eq!(f, None);
    // The first closed instead (the second start won the race, or the gate closed both).
    let (j, f) = judge_token_reuse(
        reused,
        &closed(1008, "call_token_reused"),
        &closed(1008, "call_token_reused"),
    );
    assert!(!j.ok);
    assert_eq!(
        j.observed,
        "closed 1008; first closed 1008 call_token_reused"
    );
    assert!(
        matches!(f, Some(Finding::HolderDisturbed(ref w)) if w == "closed 1008 call_token_reused")
    );
    // Neither closed: a gate without call state.
    let (j, f) = judge_token_reuse(reused, &report(true), &report(true));
    assert_eq!(
        (j.ok, j.observed.as_str()),
        (false, "not closed; first untouched")
    );
    assert_eq!(f, Some(Finding::CloseMissing));
    assert_eq!(
        explain(
            &Finding::CloseMissing,
            Scenario::Attack(Attack::ReuseCallToken)
        ),
        STATELESS
    );
    // ... which is what is expected of a gate verified as stateless.
    assert!(
        judge_token_reuse(Expected::Admitted, &report(true), &report(true))
            .0
            .ok
    );
}

#[test]
fn a_replayed_webhook_is_judged_by_its_tokens_which_are_never_shown() {
    let answer = |token: Option<&str>| {
        Ok(WebhookAnswer {
            status: 200,
            stream_url: Some("wss://h/dev".into()),
            token: token.map(|t| Secret::new(t.to_owned())),
            relay_url: None,
        })
    };
    let replay = |a: Option<&str>, b: Option<&str>| ReplayReport {
        first: answer(a),
        replay: Some(answer(b)),
        elapsed: Duration::from_millis(1100),
    };
    let same = replay(Some("v1.9.secret-a"), Some("v1.9.secret-a"));
    let new = replay(Some("v1.9.secret-a"), Some("v1.10.secret-b"));
    let (j, f) = judge_webhook_replay(Expected::SameCallToken, &same);
    assert_eq!(
        (j.ok, j.observed.as_str(), f),
        (true, "the same call token twice", None)
    );
    let (j, f) = judge_webhook_replay(Expected::SameCallToken, &new);
    assert_eq!((j.ok, f), (false, Some(Finding::NewToken)));
    assert!(!j.observed.contains("secret"), "{}", j.observed);
    assert!(judge_webhook_replay(Expected::NewCallToken, &new).0.ok);
    assert_eq!(
        judge_webhook_replay(Expected::NewCallToken, &same).1,
        Some(Finding::SameToken)
    );
    let (j, f) = judge_webhook_replay(Expected::SameCallToken, &replay(Some("t"), None));
    assert!(!j.ok);
    assert_eq!(
        f,
        Some(Finding::NoToken(
            200,
            "replay: HTTP 200, TwiML without a token".into()
        ))
    );
}

#[test]
fn probes_cover_the_slash_the_port_and_the_connect_url() {
    assert_eq!(
        probe_urls(
            "wss://gate.example.com/prod",
            "wss://abc.execute-api.us-east-1.amazonaws.com/prod"
        ),
        vec![
            "wss://gate.example.com/prod/",
            "wss://gate.example.com:443/prod",
            "wss://gate.example.com:443/prod/",
            "wss://abc.execute-api.us-east-1.amazonaws.com/prod",
            "wss://abc.execute-api.us-east-1.amazonaws.com/prod/",
        ]
    );
}
