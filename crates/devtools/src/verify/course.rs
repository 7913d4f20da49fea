//! Verify's course: the voice webhook's row, the legitimate call's inputs, then every scenario
//! against the deployment, each judged from the socket alone.

use std::time::{Duration, Instant};

use super::diagnosis::{explain, webhook_diagnosis, Diagnoses};
use super::judge::{describe_row, judge, judge_token_reuse, judge_webhook_replay, Finding};
use super::{VerifyOptions, QUIET};
use crate::demo::Row;
use crate::domain::{AuthMode, CallSid, Secret};
use crate::sim::attacks::{
    self, Attack, CallSetup, Expected, Plan, Scenario, ScenarioError, WebhookTarget,
};
use crate::sim::identity::Identity;
use crate::sim::runner::{Course, Turn};
use crate::sim::webhook_post::{call_webhook, WebhookAnswer};
use crate::sim::{audio, client, Observed};
use stream_gate_lambda::clock::unix_now;

/// Posts the webhook for `call` and tabulates its answer; returns the row and the answer, if any.
pub(super) async fn webhook_row(
    webhook: &str,
    me: &Identity,
    call: &CallSid,
    diagnoses: &mut Diagnoses,
) -> (Row, Option<WebhookAnswer>) {
    let scenario = "voice-webhook";
    let started = Instant::now();
    let (ok, observed, answer) = match call_webhook(webhook, me, call).await {
        Ok(a) => {
            let observed = match (&a.stream_url, &a.token) {
                (Some(_), Some(_)) => format!("HTTP {}, TwiML with a token", a.status),
                (Some(_), None) => format!("HTTP {}, TwiML without a token", a.status),
                _ => format!("HTTP {}, no TwiML", a.status),
            };
            if let Some(d) = webhook_diagnosis(&a, webhook, &me.account) {
                diagnoses.add(d, scenario);
            }
            (
                a.stream_url.is_some() && a.token.is_some(),
                observed,
                Some(a),
            )
        }
        Err(e) => {
            diagnoses.add(e, scenario);
            (false, "no answer".into(), None)
        }
    };
    let row = Row {
        scenario: scenario.into(),
        expected: "HTTP 200, TwiML <Stream> with a token".into(),
        observed,
        reason: "-".into(),
        time_ms: started.elapsed().as_millis(),
        ok,
    };
    (row, answer)
}

/// The legitimate call's token and the URL to sign: from the voice webhook's TwiML when one is
/// given (its row pushed to `rows`), else minted from the document and `opts`' URLs.
pub(super) async fn legit_call_inputs(
    opts: &VerifyOptions,
    me: &Identity,
    call: &CallSid,
    rows: &mut Vec<Row>,
    notes: &mut Vec<String>,
    diagnoses: &mut Diagnoses,
) -> (Option<Secret>, String) {
    let (mut token, mut twiml_url) = (None, None);
    if let Some(webhook) = &opts.webhook_url {
        let (row, answer) = webhook_row(webhook, me, call, diagnoses).await;
        rows.push(row);
        if let Some(a) = answer {
            (token, twiml_url) = (a.token, a.stream_url);
        }
        if token.is_none() {
            notes.push(
                "the webhook gave no call token: the legitimate call uses one minted from the \
                 credentials document"
                    .into(),
            );
        }
    }
    if token.is_none() {
        token = me.call_token(call, unix_now(), 300);
    }
    let signed_url = opts
        .signed_url
        .clone()
        .or_else(|| twiml_url.clone())
        .unwrap_or_else(|| opts.url.clone());
    if let Some(t) = twiml_url.as_ref().filter(|t| **t != opts.url) {
        if opts.signed_url.is_none() {
            notes.push(format!(
                "the webhook's TwiML streams to {t}: verify connected to {} and signed {t}, as \
                 Twilio would",
                opts.url
            ));
        }
    }
    (token, signed_url)
}

/// Verify's course: every scenario against the deployment, each judged from the socket alone,
/// with what it finds diagnosed.
pub(super) struct VerifyCourse<'v> {
    pub(super) opts: &'v VerifyOptions,
    pub(super) me: &'v Identity,
    pub(super) other: &'v Identity,
    pub(super) signed_url: &'v str,
    /// The legitimate call's SID, and the call token the webhook (or the document) gave it.
    pub(super) call: CallSid,
    pub(super) token: Option<Secret>,
    pub(super) legit_audio: Vec<[u8; audio::FRAME_BYTES]>,
    pub(super) short_audio: Vec<[u8; audio::FRAME_BYTES]>,
    pub(super) frames: usize,
    pub(super) rows: Vec<Row>,
    pub(super) skipped: Vec<String>,
    pub(super) diagnoses: Diagnoses,
    /// The status that refused the legitimate call's handshake, if one did.
    pub(super) legit_refused: Option<u16>,
}

impl VerifyCourse<'_> {
    fn described(&self, scenario: Scenario) -> String {
        let o = self.opts;
        describe_row(scenario, o.call_state, o.close_deadline, self.frames + 3)
    }

    fn setup(&self, scenario: Scenario) -> CallSetup<'_> {
        let legit = scenario.is_legit();
        let linger = match scenario.expected_under(self.opts.call_state) {
            Expected::Closed(..) => self.opts.close_deadline,
            Expected::Ignored => QUIET,
            Expected::Admitted
            | Expected::Refused(_)
            | Expected::SameCallToken
            | Expected::NewCallToken => Duration::from_secs(1),
        };
        CallSetup {
            url: &self.opts.url,
            signed_url: self.signed_url,
            me: self.me,
            other: Some(self.other),
            audio: if legit {
                &self.legit_audio
            } else {
                &self.short_audio
            },
            pacing: if legit {
                Duration::from_millis(20)
            } else {
                Duration::ZERO
            },
            linger,
            start_grace: self.opts.start_grace,
            webhook: self.opts.webhook_url.as_deref().map(|u| WebhookTarget {
                url: u,
                signed_url: u,
            }),
        }
    }
}

impl Course for VerifyCourse<'_> {
    type Error = std::convert::Infallible;

    fn turn(&self, scenario: Scenario) -> Turn<'_, Self::Error> {
        let setup = self.setup(scenario);
        let built = match scenario {
            Scenario::Legit => {
                let (h, s) = attacks::legit_with(&setup, self.call, self.token.as_ref());
                Ok(Plan::Socket(h, s))
            }
            // The session's call token is minted from the document, as the stack's webhook mints it.
            Scenario::RelayLegit => attacks::relay_legit(&setup).map(|(h, s)| Plan::Socket(h, s)),
            // In signature mode a stream token is never looked at: nothing to prove.
            Scenario::Attack(Attack::ForeignStreamToken)
                if self.opts.auth_mode == AuthMode::Signature =>
            {
                return Turn::Skip(
                    "auth mode signature ignores ?token= (pass --auth-mode either for a gate in \
                     either mode)"
                        .into(),
                );
            }
            Scenario::Attack(a) => attacks::attack(a, &setup),
        };
        match built {
            Ok(plan) => Turn::Play(plan),
            Err(ScenarioError::Needs(_, what)) => {
                Turn::Skip(format!("the credentials document lacks {what}"))
            }
            Err(ScenarioError::NoWebhook(_)) => Turn::Skip(
                "it posts to the voice webhook: pass --webhook-url (the stack's \
                 VoiceWebhookUrl)"
                    .into(),
            ),
            Err(e @ (ScenarioError::NoCallTokenKey | ScenarioError::OtherProtocol(_))) => {
                Turn::Skip(e.to_string())
            }
        }
    }

    fn skipped(&mut self, scenario: Scenario, why: String) {
        let name = scenario.name();
        self.skipped.push(format!("{name}: {why}"));
        self.rows.push(Row {
            scenario: name.into(),
            expected: self.described(scenario),
            observed: "skipped".into(),
            reason: "-".into(),
            time_ms: 0,
            ok: true,
        });
    }

    async fn observed(
        &mut self,
        scenario: Scenario,
        observed: Result<Observed, client::SimError>,
    ) -> Result<(), Self::Error> {
        let name = scenario.name();
        let described = self.described(scenario);
        let observed = match observed {
            Ok(o) => o,
            Err(e) => {
                self.diagnoses.add(format!("cannot connect: {e}"), name);
                self.rows.push(Row {
                    scenario: name.into(),
                    expected: described,
                    observed: "connection failed".into(),
                    reason: "-".into(),
                    time_ms: 0,
                    ok: false,
                });
                return Ok(());
            }
        };
        let expected = scenario.expected_under(self.opts.call_state);
        let (judgement, finding) = match &observed {
            Observed::Socket(report) => judge(expected, report),
            Observed::TokenReuse { first, second } => judge_token_reuse(expected, first, second),
            Observed::WebhookReplay(report) => judge_webhook_replay(expected, report),
        };
        match (&finding, scenario.is_legit()) {
            (Some(Finding::Refused(status)), true) => self.legit_refused = Some(*status),
            (Some(f), _) => self.diagnoses.add(explain(f, scenario), name),
            (None, _) => {}
        }
        self.rows.push(judgement.into_row(name, described));
        Ok(())
    }
}
