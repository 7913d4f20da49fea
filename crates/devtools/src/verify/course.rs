//! Verify's course: the voice webhook's row, the legitimate call's inputs, then every scenario
//! against the deployment, each judged from the socket alone.

use std::time::{Duration, Instant};

use super::diagnosis::{explain, webhook_diagnosis, Diagnoses};
use super::judge::{describe_row, judge, judge_token_reuse, judge_webhook_replay, Finding};
use super::{VerifyOptions, QUIET};
use crate::demo::Row;
use crate::domain::{AuthMode, CallSid, Protocol, Secret};
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
        Ok(a) if a.relay_url.is_some() => {
            // A `…/relay` URL given to a Media Streams run: not the TwiML it needs.
            diagnoses.add(
                "the webhook answered <ConversationRelay>: pass its …/voice URL, or \
                 --protocol conversation-relay"
                    .into(),
                scenario,
            );
            let observed = format!("HTTP {}, TwiML <ConversationRelay>", a.status);
            (false, observed, Some(a))
        }
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
        let (row, answer) = match opts.protocol {
            Protocol::MediaStreams => webhook_row(webhook, me, call, diagnoses).await,
            Protocol::ConversationRelay => relay_webhook_row(webhook, me, call, diagnoses).await,
        };
        rows.push(row);
        match answer {
            Some(a) if opts.protocol == Protocol::ConversationRelay => {
                (twiml_url, token) = a
                    .relay_url
                    .as_ref()
                    .and_then(|u| relay_url_parts(u, call))
                    .unzip();
            }
            Some(a) => (token, twiml_url) = (a.token, a.stream_url),
            None => {}
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

/// Posts the ConversationRelay webhook (`…/relay`) for `call` and tabulates its answer: TwiML whose
/// `<ConversationRelay url>` carries this call and a call token in its query.
pub(super) async fn relay_webhook_row(
    webhook: &str,
    me: &Identity,
    call: &CallSid,
    diagnoses: &mut Diagnoses,
) -> (Row, Option<WebhookAnswer>) {
    let scenario = "relay-webhook";
    let started = Instant::now();
    let (ok, observed, answer) = match call_webhook(webhook, me, call).await {
        Ok(a) => {
            let parts = a.relay_url.as_ref().and_then(|u| relay_url_parts(u, call));
            let observed = match (&a.relay_url, &parts) {
                (Some(_), Some(_)) => format!("HTTP {}, TwiML with the call's token", a.status),
                (Some(_), None) => format!("HTTP {}, TwiML without the call's token", a.status),
                _ => format!("HTTP {}, no <ConversationRelay> TwiML", a.status),
            };
            if parts.is_none() {
                diagnoses.add(relay_webhook_diagnosis(&a, &me.account), scenario);
            }
            (parts.is_some(), observed, Some(a))
        }
        Err(e) => {
            diagnoses.add(e, scenario);
            (false, "no answer".into(), None)
        }
    };
    let row = Row {
        scenario: scenario.into(),
        expected: "HTTP 200, TwiML <ConversationRelay> with the call's token".into(),
        observed,
        reason: "-".into(),
        time_ms: started.elapsed().as_millis(),
        ok,
    };
    (row, answer)
}

/// The URL without its query, and the call token, of a `<ConversationRelay url>` whose query is
/// exactly `callSid={call}&callToken=…` (as the gate's webhook writes it).
fn relay_url_parts(url: &Secret, call: &CallSid) -> Option<(String, Secret)> {
    let (base, query) = url.expose().split_once('?')?;
    let token = query
        .strip_prefix(&format!("callSid={call}&callToken="))
        .filter(|t| !t.is_empty() && !t.contains('&'))?;
    Some((base.to_owned(), Secret::new(token.to_owned())))
}

/// What a `/relay` answer without the call's token most likely means.
fn relay_webhook_diagnosis(a: &WebhookAnswer, account: &crate::domain::AccountSid) -> String {
    let hint = match (a.status, &a.relay_url) {
        (200, Some(_)) => "its <ConversationRelay url> does not carry this call's callSid and \
                           callToken"
            .to_owned(),
        (200, None) => "its body has no <ConversationRelay url=...> (a …/voice URL?)".to_owned(),
        (404, _) => "the stack does not answer ConversationRelay: list conversation-relay in its \
                     Protocols parameter"
            .to_owned(),
        (403, _) => format!(
            "it refused the request: check STREAM_GATE_WEBHOOK_URL and that {account} is in the \
             deployed secret"
        ),
        (s, _) if s >= 500 => "check the voice-webhook function's log".into(),
        _ => "check the URL".into(),
    };
    format!("the relay webhook answered HTTP {} — {hint}", a.status)
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
        let frames = match o.protocol {
            Protocol::MediaStreams => self.frames + 3,
            Protocol::ConversationRelay => attacks::RELAY_TURNS,
        };
        describe_row(scenario, o.call_state, o.close_deadline, frames)
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
            // The webhook's token for the call, else one minted from the document as the stack's
            // webhook mints it.
            Scenario::RelayLegit => self
                .token
                .clone()
                .or_else(|| self.me.call_token(&self.call, unix_now(), 300))
                .map(|token| {
                    let (h, s) = attacks::relay_legit_with(&setup, self.call, token);
                    Plan::Socket(h, s)
                })
                .ok_or(ScenarioError::NoCallTokenKey),
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
