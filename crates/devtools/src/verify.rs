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

use std::time::{Duration, Instant};

use crate::demo::{judge_replay, Judgement, Row};
use crate::domain::signature::{handshake_urls, webhook_urls};
use crate::domain::{AccountSid, AuthMode, CallSid, CloseReason, Credentials, Secret};
use crate::sim::attacks::{
    self, Attack, CallSetup, Expected, GateState, Plan, Scenario, ScenarioError, WebhookTarget,
};
use crate::sim::identity::{fresh_call_sid, Identity, IdentityError};
use crate::sim::runner::{run_course, Course, Turn};
pub use crate::sim::webhook_post::{call_webhook, parse_twiml, WebhookAnswer};
use crate::sim::{audio, client, Observed, ReplayReport, ReplayVerdict, Script, SimReport};
use stream_gate_lambda::clock::unix_now;

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
    /// The voice webhook to obtain the call token from (`https://.../voice`).
    pub webhook_url: Option<String>,
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
}

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
fn describe_row(scenario: Scenario, state: GateState, deadline: Duration, frames: usize) -> String {
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

/// Judges what the socket showed against `expected`, with a deployment's visibility: refusals are
/// any 401/403, closes count when they come, reasons only when visible.
pub fn judge(expected: Expected, report: &SimReport) -> (Judgement, Option<Finding>) {
    let total = report.elapsed.as_millis();
    let judgement = |ok: bool, observed: String, reason: &str, time_ms: u128| Judgement {
        ok,
        observed,
        reason: reason.into(),
        time_ms,
    };
    if !report.admitted {
        let status = report.refused_status.unwrap_or(0);
        let refused = matches!(status, 401 | 403);
        let ok = refused && matches!(expected, Expected::Refused(_));
        let finding = match (ok, refused) {
            (true, _) => None,
            (false, true) => Some(Finding::Refused(status)),
            (false, false) => Some(Finding::Status(status)),
        };
        return (
            judgement(ok, format!("refused {status}"), "-", total),
            finding,
        );
    }
    if let Some((code, text, at)) = &report.server_close {
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
        return (
            judgement(ok, format!("closed {code}"), reason, at.as_millis()),
            finding,
        );
    }
    if !report.closed_by_client {
        // The socket ended (or failed) without a close frame.
        let ok = matches!(expected, Expected::Closed(..));
        let finding = match expected {
            Expected::Closed(..) => None,
            Expected::Refused(_) => Some(Finding::Admitted),
            _ => Some(Finding::Dropped),
        };
        return (
            judgement(ok, "ended without a close frame".into(), "-", total),
            finding,
        );
    }
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

/// Diagnoses in order of first appearance, each with the scenarios it concerns.
#[derive(Default)]
struct Diagnoses(Vec<(String, Vec<String>)>);

impl Diagnoses {
    fn add(&mut self, message: String, scenario: &str) {
        match self.0.iter_mut().find(|(m, _)| *m == message) {
            Some((_, s)) => s.push(scenario.to_owned()),
            None => self.0.push((message, vec![scenario.to_owned()])),
        }
    }

    fn render(self) -> Vec<String> {
        self.0
            .into_iter()
            .map(|(m, s)| format!("{} ({})", m, s.join(", ")))
            .collect()
    }
}

/// The message for a finding on `scenario` (the refused legitimate call has its own, with probes).
fn explain(finding: &Finding, scenario: Scenario) -> String {
    let stateful_only = matches!(scenario, Scenario::Attack(a) if a.needs_call_state());
    match finding {
        Finding::CloseMissing if stateful_only => STATELESS.into(),
        Finding::Closed(r) if stateful_only => format!(
            "the gate closed it (reason {}): it keeps call state — verify it without \
             --call-state off",
            r.map_or("not visible", CloseReason::code)
        ),
        Finding::CloseMissing => CLOSE_MISSING.into(),
        Finding::Refused(status) => format!(
            "signed handshakes were refused (HTTP {status}): their frames never reached the router"
        ),
        Finding::Status(0) => "the handshake failed without an HTTP answer".into(),
        Finding::Status(404) => "handshake answered HTTP 404: check the stage in the URL".into(),
        Finding::Status(429) => {
            "handshake answered HTTP 429: throttled — check the stage's throttling limits".into()
        }
        Finding::Status(s) if *s >= 500 => format!(
            "handshake answered HTTP {s}: the authorizer failed — check its log (unreadable \
             secret, invalid STREAM_GATE_* variable)"
        ),
        Finding::Status(s) => format!("handshake answered HTTP {s}"),
        Finding::WrongReason(r) => match scenario.expected() {
            Expected::Closed(_, want) => format!("closed for {r}, expected {want}"),
            _ => format!("closed for {r}"),
        },
        Finding::Closed(r) if scenario == Scenario::Legit => format!(
            "the gate closed the legitimate call (reason {}) — check that the deployed secret \
             holds this document's callTokenKeys and account, the CallTokenPolicy, and the \
             router's log",
            r.map_or("not visible", CloseReason::code)
        ),
        Finding::Closed(r) => format!(
            "the gate closed a connection that only sent unknown events (reason {}): Twilio may \
             add events, which must be ignored",
            r.map_or("not visible", CloseReason::code)
        ),
        Finding::Admitted => {
            "a handshake that must be refused was admitted — check the stack's AuthMode (pass \
             --auth-mode to match it) and that the authorizer is attached to $connect"
                .into()
        }
        Finding::Echoed(n) => format!(
            "{n} frames that Twilio would refuse were written to the socket: nothing but the \
             application's media, mark and clear for the call's stream may be written (Twilio \
             warning 31951)"
        ),
        Finding::Dropped => "the connection ended without a close frame".into(),
        Finding::HolderDisturbed(what) => format!(
            "the first connection, which started with the call token, was {what}: a second \
             connection presenting a used token must be closed, never the connection that used \
             it first (if the reason is call_token_reused, the second start was recorded first: \
             the router took longer than {} s to record the first)",
            attacks::REUSE_AFTER.as_secs()
        ),
        Finding::NewToken => "the voice webhook answered a replayed request with a new call \
            token: it keeps no call state (STREAM_GATE_CALL_STATE=dynamodb and \
            STREAM_GATE_CALL_TABLE on the voice-webhook function, the stack's CallState), so a \
            captured webhook request mints fresh tokens for that call"
            .into(),
        Finding::SameToken => "the voice webhook answered the replay with the same token: it \
            keeps call state — verify it without --call-state off"
            .into(),
        Finding::NoToken(_, what) => {
            format!("the voice webhook answered no call token to the replay test ({what})")
        }
    }
}

/// A second account for the cross-account attacks when the document has only one: a random
/// account SID (not configured anywhere) whose call tokens are minted with the document's keys.
fn stand_in_account(document: &str) -> Result<Identity, IdentityError> {
    let credentials =
        Credentials::from_json(document).map_err(|e| IdentityError::Invalid(e.to_string()))?;
    let account = AccountSid::parse(&format!("AC{}", crate::random::hex32()))
        .map_err(|_| IdentityError::Invalid("account SID".into()))?;
    Ok(Identity {
        credentials,
        account,
        auth_token: Secret::new(crate::random::hex32()),
        stream_token: None,
    })
}

/// The URLs a refused legitimate handshake is retried with, each signed with the same auth token:
/// the webhook's variants of the signed URL (trailing `/`, default port) and the connect URL's.
fn probe_urls(signed: &str, connect: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for u in webhook_urls(signed)
        .into_iter()
        .chain(handshake_urls(connect))
    {
        if u != signed && !out.contains(&u) {
            out.push(u);
        }
    }
    out
}

/// Signs a handshake over `signed` and reports whether the gate admitted it (then closes at once).
async fn admitted_when_signed_over(me: &Identity, url: &str, signed: &str) -> Option<bool> {
    let handshake = attacks::signed_handshake(me, url, signed, None);
    let script = Script {
        frames: Box::new(std::iter::empty()),
        pacing: Duration::ZERO,
        linger: Duration::ZERO,
        echo: None,
    };
    client::run(&handshake, script)
        .await
        .ok()
        .map(|r| r.admitted)
}

/// The signature diagnosis, with what the probes found.
fn signature_diagnosis(signed: &str, status: u16, probes: &[(String, Option<bool>)]) -> String {
    let variants = handshake_urls(signed).join(" or ");
    let mut m = format!(
        "{SIGNATURE_MISMATCH} (legit-call)\n      the legitimate handshake was signed over \
         {signed} (as Twilio signs the URL of the TwiML) and refused with HTTP {status};\n      \
         a gate whose STREAM_GATE_PUBLIC_URL is {variants} admits it.\n      URL variants \
         tried, each signed with the same auth token:"
    );
    let width = probes
        .iter()
        .map(|(u, _)| u.len())
        .chain([signed.len()])
        .max()
        .unwrap_or(0);
    m.push_str(&format!("\n        {signed:width$}  refused"));
    for (u, r) in probes {
        let what = match r {
            Some(true) => "ADMITTED",
            Some(false) => "refused",
            None => "no answer",
        };
        m.push_str(&format!("\n        {u:width$}  {what}"));
    }
    match probes.iter().find(|(_, r)| *r == Some(true)) {
        Some((u, _)) => m.push_str(&format!(
            "\n      the gate verifies signatures over {u}: put that URL in the TwiML, or set \
             STREAM_GATE_PUBLIC_URL (stack parameter PublicUrl) to {signed}"
        )),
        None => m.push_str(
            "\n      none was admitted: the gate verifies another URL (STREAM_GATE_PUBLIC_URL), \
             or the deployed secret does not hold this account's current auth token \
             (twilioAccounts[i].authTokens[0]) or is not loaded; the authorizer's log line names \
             the reason code",
        ),
    }
    m
}

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

/// What a webhook answer without a usable TwiML most likely means.
fn webhook_diagnosis(a: &WebhookAnswer, webhook: &str, account: &AccountSid) -> Option<String> {
    if a.stream_url.is_none() {
        let hint = match a.status {
            200 => "its body has no <Stream url=...>".to_owned(),
            403 => format!(
                "it refused the request: check STREAM_GATE_WEBHOOK_URL against the URL Twilio \
                 posts to ({webhook}, signed as given) and that {account} is in the deployed \
                 secret"
            ),
            405 => "it answers POST only".into(),
            s if s >= 500 => "check the voice-webhook function's log".into(),
            _ => "check the URL".into(),
        };
        return Some(format!(
            "the voice webhook answered HTTP {} without TwiML — {hint}",
            a.status
        ));
    }
    a.token.is_none().then(|| {
        "the TwiML has no <Parameter name=\"token\">: while call tokens are required, every call \
         is closed with call_token_missing"
            .into()
    })
}

/// Posts the webhook for `call` and tabulates its answer; returns the row and the answer, if any.
async fn webhook_row(
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
async fn legit_call_inputs(
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
struct VerifyCourse<'v> {
    opts: &'v VerifyOptions,
    me: &'v Identity,
    other: &'v Identity,
    signed_url: &'v str,
    /// The legitimate call's SID, and the call token the webhook (or the document) gave it.
    call: CallSid,
    token: Option<Secret>,
    legit_audio: Vec<[u8; audio::FRAME_BYTES]>,
    short_audio: Vec<[u8; audio::FRAME_BYTES]>,
    frames: usize,
    rows: Vec<Row>,
    skipped: Vec<String>,
    diagnoses: Diagnoses,
    /// The status that refused the legitimate call's handshake, if one did.
    legit_refused: Option<u16>,
}

impl VerifyCourse<'_> {
    fn described(&self, scenario: Scenario) -> String {
        let o = self.opts;
        describe_row(scenario, o.call_state, o.close_deadline, self.frames + 3)
    }

    fn setup(&self, scenario: Scenario) -> CallSetup<'_> {
        let legit = scenario == Scenario::Legit;
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
        match (&finding, scenario == Scenario::Legit) {
            (Some(Finding::Refused(status)), true) => self.legit_refused = Some(*status),
            (Some(f), _) => self.diagnoses.add(explain(f, scenario), name),
            (None, _) => {}
        }
        self.rows.push(judgement.into_row(name, described));
        Ok(())
    }
}

/// Runs every scenario against the deployment.
pub async fn run(opts: &VerifyOptions) -> Result<VerifyReport, VerifyError> {
    check_options(opts)?;
    let doc = opts.document.expose();
    let me = Identity::from_document(doc, opts.account)?;
    let other = match Identity::from_document(doc, usize::from(opts.account == 0)) {
        Ok(o) => o,
        Err(_) => stand_in_account(doc)?,
    };
    let mut rows = Vec::new();
    let skipped = Vec::new();
    let mut notes = Vec::new();
    let mut diagnoses = Diagnoses::default();

    let call = fresh_call_sid();
    let (token, signed_url) =
        legit_call_inputs(opts, &me, &call, &mut rows, &mut notes, &mut diagnoses).await;

    let frames = usize::try_from(opts.seconds.saturating_mul(50)).unwrap_or(usize::MAX);
    let legit_audio = audio::tone(440.0, frames);
    let short_audio = audio::tone(440.0, 3);
    let state = opts.call_state;
    if state == GateState::Stateless {
        notes.push(
            "--call-state off: a stateless gate admits media before start and a reused call \
             token, and its webhook mints a new token for a replayed request — the rows say so; \
             SECURITY.md lists these gaps, the stack's CallState=dynamodb closes them"
                .into(),
        );
    }
    let mut course = VerifyCourse {
        opts,
        me: &me,
        other: &other,
        signed_url: &signed_url,
        call,
        token,
        legit_audio,
        short_audio,
        frames,
        rows,
        skipped,
        diagnoses,
        legit_refused: None,
    };
    let Ok(()) = run_course(&mut course, Scenario::all(), &me).await;
    let VerifyCourse {
        rows,
        skipped,
        diagnoses,
        legit_refused,
        ..
    } = course;
    let mut diagnoses = diagnoses.render();
    if let Some(status) = legit_refused {
        let mut probes = Vec::new();
        for u in probe_urls(&signed_url, &opts.url) {
            let admitted = admitted_when_signed_over(&me, &opts.url, &u).await;
            probes.push((u, admitted));
        }
        diagnoses.insert(0, signature_diagnosis(&signed_url, status, &probes));
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

#[cfg(test)]
mod tests {
    use super::*;

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
        assert!(
            explain(&Finding::CloseMissing, Scenario::Legit).starts_with("close did not happen")
        );
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
}
