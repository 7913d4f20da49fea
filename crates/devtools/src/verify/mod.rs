//! `stream-gate verify`: proves a deployment from the outside. Places one legitimate call exactly as
//! Twilio would (signed handshake for a configured account, `start` with a call token — minted from
//! the credentials document, or answered by the voice webhook in its TwiML — paced `media`, `stop`),
//! then every attack of `sim`, and tabulates them as `demo` does. Beyond the table it says what a
//! failure most likely means.
//!
//! A client sees less of a real API Gateway than of the local gateway: a Deny is a bare 401/403 (the
//! reason is only in the authorizer's log), and a `DeleteConnection` reaches the client as a close
//! with a code of API Gateway's choosing (1001, 1005, ...) and no reason. So an attack meant to be
//! closed passes when the socket is closed within the close deadline (5 s), and fails on a reason
//! only when a reason code is visible and differs (the local gateway writes it).
//!
//! The attacks only call state stops (`media-before-start`, `reuse-call-token`,
//! `replay-webhook`) are expected to be stopped unless `--call-state off` says the deployment runs
//! stateless; then they are expected to succeed, and a note says which gaps that leaves open.
//! `replay-webhook` needs the webhook (`--webhook-url`) and is skipped without it.
//!
//! With `--protocol conversation-relay` it places one ConversationRelay session instead (the call's
//! token in the signed URL's query, then `setup`, prompts, a digit, an interrupt; the token from the
//! `…/relay` webhook's `<ConversationRelay url>` when `--webhook-url` names it, else minted from the
//! document) and every ConversationRelay attack of `sim`.

use std::time::Duration;

use crate::demo::Row;
use crate::domain::{AccountSid, AuthMode, Protocol, Secret};
use crate::sim::attacks::{GateState, Scenario};
use crate::sim::audio;
use crate::sim::identity::{fresh_call_sid, Identity, IdentityError};
use crate::sim::runner::run_course;
pub use crate::sim::webhook_post::{call_webhook, parse_twiml, WebhookAnswer};
use course::{legit_call_inputs, VerifyCourse};
use diagnosis::{refusal_diagnosis, stand_in_account, Diagnoses};
pub use judge::{describe, judge, judge_token_reuse, judge_webhook_replay, Finding};

/// How long after an offending frame the socket must be closed.
pub const CLOSE_DEADLINE: Duration = Duration::from_secs(5);
/// How long an admitted call, or the flood of unknown events, waits for a close that must not come.
const QUIET: Duration = Duration::from_secs(2);

/// The diagnosis of a close that never came.
pub const CLOSE_MISSING: &str = "close did not happen — check the router's ManageConnections \
    permission on DELETE and the `close_failed` logs";
/// The diagnosis of an attack only call state stops, left open.
pub const STATELESS: &str = "not stopped — the gate keeps no call state (the stack's CallState \
    parameter, STREAM_GATE_CALL_STATE=dynamodb on the router) or its closes fail; pass \
    --call-state off to verify a stateless gate as such";
/// The diagnosis of a refused legitimate handshake.
pub const SIGNATURE_MISMATCH: &str =
    "signature mismatch — check STREAM_GATE_PUBLIC_URL against the URL in your TwiML";

/// What to verify.
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    /// The WebSocket URL to connect to (`wss://<api>/<stage>`, or `ws://` for a local gateway).
    pub url: String,
    /// The URL Twilio signs when it differs from `url` (the URL in the TwiML: a custom domain, a
    /// tunnel). Default: the webhook's `<Stream url>` when `webhook_url` is given, else `url`.
    pub signed_url: Option<String>,
    /// The voice webhook to obtain the call token from (`https://.../voice`; `https://.../relay`
    /// for ConversationRelay).
    pub webhook_url: Option<String>,
    /// The protocol of the calls placed: Media Streams, or ConversationRelay (the stack's
    /// `Protocols` must list it).
    pub protocol: Protocol,
    /// The credentials document (the same one as in the deployment's secret).
    pub document: Secret,
    /// Which account of the document places the calls (0 = first).
    pub account: usize,
    /// Seconds of audio the legitimate call streams (one `media` frame every 20 ms).
    pub seconds: u64,
    /// The deployment's auth mode: `signature` (the stack's default) or `either`.
    pub auth_mode: AuthMode,
    /// How long after an offending frame a close must come.
    pub close_deadline: Duration,
    /// Whether the deployment keeps call state (the stack's `CallState`: `dynamodb` by default).
    pub call_state: GateState,
    /// The deployment's start grace (`STREAM_GATE_START_GRACE_MS`, default 2 s).
    pub start_grace: Duration,
}

/// Why verify could not run at all.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The credentials document cannot drive the calls.
    #[error("{0}")]
    Identity(#[from] IdentityError),
    /// An option is unusable.
    #[error("{0}")]
    Options(String),
}

/// What verify found.
#[derive(Debug, Clone)]
pub struct VerifyReport {
    /// The account the calls were placed for.
    pub account: AccountSid,
    /// The URL the legitimate handshake was signed over.
    pub signed_url: String,
    /// One row per scenario (the webhook first when there is one).
    pub rows: Vec<Row>,
    /// Rows that could not be run with this document or auth mode (they count as passed).
    pub skipped: Vec<String>,
    /// What the failures most likely mean, each once.
    pub diagnoses: Vec<String>,
    /// Facts worth knowing that are not failures.
    pub notes: Vec<String>,
}

impl VerifyReport {
    /// Rows not as expected.
    pub fn failed(&self) -> usize {
        self.rows.iter().filter(|r| !r.ok).count()
    }

    /// The report as `stream-gate verify` prints it: the account and signed URL, the table, what
    /// was skipped, the notes, the diagnoses and the verdict.
    pub fn render(&self) -> String {
        let mut out = format!(
            "account {}, handshakes signed over {}\n\n",
            self.account, self.signed_url
        );
        out.push_str(&crate::demo::render(&self.rows));
        for s in &self.skipped {
            out.push_str(&format!("skipped: {s}\n"));
        }
        for n in &self.notes {
            out.push_str(&format!("note: {n}\n"));
        }
        if !self.diagnoses.is_empty() {
            out.push_str("\ndiagnosis:\n");
            for d in &self.diagnoses {
                out.push_str(&format!("  - {d}\n"));
            }
        }
        let failed = self.failed();
        if failed == 0 {
            let skipped = if self.skipped.is_empty() {
                String::new()
            } else {
                format!(" ({} skipped)", self.skipped.len())
            };
            out.push_str(&format!(
                "\nall {} scenarios behaved as expected{skipped}\n",
                self.rows.len()
            ));
        } else {
            out.push_str(&format!(
                "\n{failed} of {} scenarios did NOT behave as expected\n",
                self.rows.len()
            ));
        }
        out
    }
}

mod course;
mod diagnosis;
mod judge;
#[cfg(test)]
mod tests;

/// Refuses options no run could use.
fn check_options(opts: &VerifyOptions) -> Result<(), VerifyError> {
    let bad = |m: &str| Err(VerifyError::Options(m.into()));
    let ws = |u: &str| u.starts_with("wss://") || u.starts_with("ws://");
    if !ws(&opts.url) {
        return bad("the URL must start with wss:// (or ws:// for a local gateway)");
    }
    if opts.signed_url.as_deref().is_some_and(|u| !ws(u)) {
        return bad("--signed-url must start with wss:// or ws://");
    }
    if opts
        .webhook_url
        .as_deref()
        .is_some_and(|u| !u.starts_with("https://") && !u.starts_with("http://"))
    {
        return bad("--webhook-url must start with https:// (or http://)");
    }
    if !matches!(opts.auth_mode, AuthMode::Signature | AuthMode::Either) {
        return bad(
            "--auth-mode must be signature or either: Twilio sends no ?token=, so a gate in \
             token or both mode refuses every Twilio call",
        );
    }
    Ok(())
}

/// The calling account, and a second one for the cross-account attacks (the document's other
/// account, else a stand-in).
fn accounts(opts: &VerifyOptions) -> Result<(Identity, Identity), VerifyError> {
    let doc = opts.document.expose();
    let me = Identity::from_document(doc, opts.account)?;
    let other = match Identity::from_document(doc, usize::from(opts.account == 0)) {
        Ok(o) => o,
        Err(_) => stand_in_account(doc)?,
    };
    Ok((me, other))
}

/// The note a stateless gate gets.
const STATELESS_NOTE: &str = "--call-state off: a stateless gate admits media before start and a \
    reused call token, and its webhook mints a new token for a replayed request — the rows say \
    so; SECURITY.md lists these gaps, the stack's CallState=dynamodb closes them";

/// The note a stateless gate gets, for ConversationRelay.
const STATELESS_RELAY_NOTE: &str = "--call-state off: a stateless gate admits prompts without a \
    setup, a second setup and a second session on one call token — the rows say so; SECURITY.md \
    lists these gaps, the stack's CallState=dynamodb closes them";

/// Runs every scenario of the options' protocol against the deployment.
pub async fn run(opts: &VerifyOptions) -> Result<VerifyReport, VerifyError> {
    check_options(opts)?;
    let (me, other) = accounts(opts)?;
    let mut rows = Vec::new();
    let mut notes = Vec::new();
    let mut diagnoses = Diagnoses::default();
    let call = fresh_call_sid();
    let (token, signed_url) =
        legit_call_inputs(opts, &me, &call, &mut rows, &mut notes, &mut diagnoses).await;
    if opts.call_state == GateState::Stateless {
        notes.push(match opts.protocol {
            Protocol::MediaStreams => STATELESS_NOTE.into(),
            Protocol::ConversationRelay => STATELESS_RELAY_NOTE.into(),
        });
    }
    let frames = usize::try_from(opts.seconds.saturating_mul(50)).unwrap_or(usize::MAX);
    let mut course = VerifyCourse {
        opts,
        me: &me,
        other: &other,
        signed_url: &signed_url,
        call,
        token,
        legit_audio: audio::tone(440.0, frames),
        short_audio: audio::tone(440.0, 3),
        frames,
        rows,
        skipped: Vec::new(),
        diagnoses,
        legit_refused: None,
    };
    let Ok(()) = run_course(&mut course, Scenario::of(opts.protocol), &me).await;
    let VerifyCourse {
        rows,
        skipped,
        diagnoses,
        legit_refused,
        ..
    } = course;
    let mut diagnoses = diagnoses.render();
    if let Some(status) = legit_refused {
        diagnoses.insert(0, refusal_diagnosis(&me, opts, &signed_url, status).await);
    }
    Ok(VerifyReport {
        account: me.account,
        signed_url,
        rows,
        skipped,
        diagnoses,
        notes,
    })
}
