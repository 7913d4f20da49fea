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

use std::time::{Duration, Instant};

use crate::demo::{Judgement, Row};
use crate::domain::signature::{handshake_urls, webhook_urls};
use crate::domain::{
    compute_signature, AccountSid, AuthMode, CallSid, CloseReason, Credentials, Secret,
};
use crate::sim::attacks::{self, Attack, CallSetup, Expected, Scenario, ScenarioError};
use crate::sim::identity::{fresh_call_sid, Identity, IdentityError};
use crate::sim::{audio, client, Handshake, Script, SimReport};
use stream_gate_lambda::clock::unix_now;

/// How long after an offending frame the socket must be closed.
pub const CLOSE_DEADLINE: Duration = Duration::from_secs(5);
/// How long an admitted call, or the flood of unknown events, waits for a close that must not come.
const QUIET: Duration = Duration::from_secs(2);
/// How long the voice webhook may take to answer.
const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(15);
/// Largest webhook answer read (TwiML is a few hundred bytes).
const WEBHOOK_MAX_BYTES: usize = 64 * 1024;

/// The diagnosis of a close that never came.
pub const CLOSE_MISSING: &str = "close did not happen — check the router's ManageConnections \
    permission on DELETE and the `close_failed` logs";
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
    }
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
            Expected::Admitted | Expected::Ignored => (false, Some(Finding::Closed(seen))),
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
    let echoed = report.frames_received;
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
    }
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
    match finding {
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
            "the gate wrote {n} frames to the socket: nothing but the application's media, mark \
             and clear may be written (Twilio warning 31951)"
        ),
        Finding::Dropped => "the connection ended without a close frame".into(),
    }
}

/// What the voice webhook answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookAnswer {
    /// HTTP status.
    pub status: u16,
    /// `<Stream url="...">` of the TwiML, if it has one.
    pub stream_url: Option<String>,
    /// `<Parameter name="token" value="...">` of the TwiML, if it has one.
    pub token: Option<Secret>,
}

/// The attribute list of every `<name ...>` element of `xml` (the text up to its `>`, quotes
/// respected).
fn elements<'a>(xml: &'a str, name: &str) -> Vec<&'a str> {
    let open = format!("<{name}");
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(i) = rest.find(&open) {
        let after = &rest[i + open.len()..];
        rest = after;
        if !after.starts_with(|c: char| c.is_whitespace() || c == '/' || c == '>') {
            continue; // `<StreamX`, not `<Stream`
        }
        let mut quote = None;
        let end = after.char_indices().find(|&(_, c)| match quote {
            Some(q) if c == q => {
                quote = None;
                false
            }
            Some(_) => false,
            None if c == '"' || c == '\'' => {
                quote = Some(c);
                false
            }
            None => c == '>',
        });
        match end {
            Some((j, _)) => {
                out.push(&after[..j]);
                rest = &after[j..];
            }
            None => break,
        }
    }
    out
}

/// The value of attribute `name` in an element's attribute text, unescaped.
fn attribute(attrs: &str, name: &str) -> Option<String> {
    let mut rest = attrs;
    loop {
        let eq = rest.find('=')?;
        let key = rest[..eq].trim_end();
        let key = key
            .rsplit(|c: char| c.is_whitespace())
            .next()
            .unwrap_or(key);
        let value = rest[eq + 1..].trim_start();
        let quote = value.chars().next().filter(|c| *c == '"' || *c == '\'')?;
        let body = &value[1..];
        let end = body.find(quote)?;
        if key == name {
            return Some(unescape(&body[..end]));
        }
        rest = &body[end + 1..];
    }
}

/// XML's five named entities and numeric character references.
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        let entity = tail.find(';').map(|j| (&tail[1..j], j));
        let decoded = entity.and_then(|(e, j)| {
            let c = match e {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                _ => e
                    .strip_prefix("#x")
                    .or_else(|| e.strip_prefix("#X"))
                    .and_then(|h| u32::from_str_radix(h, 16).ok())
                    .or_else(|| e.strip_prefix('#').and_then(|d| d.parse().ok()))
                    .and_then(char::from_u32),
            };
            c.map(|c| (c, j))
        });
        match decoded {
            Some((c, j)) => {
                out.push(c);
                rest = &tail[j + 1..];
            }
            None => {
                out.push('&');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The `<Stream url>` and the `token` `<Parameter>` of a TwiML answer.
pub fn parse_twiml(body: &str) -> (Option<String>, Option<Secret>) {
    let stream_url = elements(body, "Stream")
        .first()
        .and_then(|a| attribute(a, "url"));
    let token = elements(body, "Parameter")
        .into_iter()
        .find(|a| attribute(a, "name").as_deref() == Some("token"))
        .and_then(|a| attribute(a, "value"))
        .map(Secret::new);
    (stream_url, token)
}

/// Posts Twilio's voice webhook request for `call` of `me`, signed as Twilio signs it (the exact
/// URL plus the sorted form parameters), and reads the TwiML.
pub async fn call_webhook(
    url: &str,
    me: &Identity,
    call: &CallSid,
) -> Result<WebhookAnswer, String> {
    let params: Vec<(&str, &str)> = vec![
        ("AccountSid", me.account.as_str()),
        ("ApiVersion", "2010-04-01"),
        ("CallSid", call.as_str()),
        ("CallStatus", "ringing"),
        ("Called", "+15005550006"),
        ("Caller", "+15005550001"),
        ("Direction", "inbound"),
        ("From", "+15005550001"),
        ("To", "+15005550006"),
    ];
    let signature = compute_signature(me.auth_token.expose(), url, &params);
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params.iter())
        .finish();
    let headers = [
        ("Content-Type", "application/x-www-form-urlencoded"),
        ("User-Agent", "TwilioProxy/1.1"),
        ("X-Twilio-Signature", signature.as_str()),
    ];
    let response = crate::http::post(url, &headers, &body, WEBHOOK_TIMEOUT, WEBHOOK_MAX_BYTES)
        .await
        .map_err(|e| format!("cannot reach the voice webhook: {e}"))?;
    let (status, bytes) = (response.status, response.body);
    let text = String::from_utf8_lossy(&bytes);
    let (stream_url, token) = if status == 200 {
        parse_twiml(&text)
    } else {
        (None, None)
    };
    Ok(WebhookAnswer {
        status,
        stream_url,
        token,
    })
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
    let mut skipped = Vec::new();
    let mut notes = Vec::new();
    let mut diagnoses = Diagnoses::default();

    // The voice webhook, when given: its TwiML gives the call token and the URL Twilio signs.
    let call = fresh_call_sid();
    let (mut token, mut twiml_url) = (None, None);
    if let Some(webhook) = &opts.webhook_url {
        let (row, answer) = webhook_row(webhook, &me, &call, &mut diagnoses).await;
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
        token = me.call_token(&call, unix_now(), 300);
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

    let frames = usize::try_from(opts.seconds.saturating_mul(50)).unwrap_or(usize::MAX);
    let legit_audio = audio::tone(440.0, frames);
    let short_audio = audio::tone(440.0, 3);
    let mut legit_refused = None;
    for scenario in Scenario::all() {
        let name = scenario.name();
        let expected = scenario.expected();
        let legit = scenario == Scenario::Legit;
        let linger = match expected {
            Expected::Closed(..) => opts.close_deadline,
            Expected::Ignored => QUIET,
            Expected::Admitted | Expected::Refused(_) => Duration::from_secs(1),
        };
        let setup = CallSetup {
            url: &opts.url,
            signed_url: &signed_url,
            me: &me,
            other: Some(&other),
            audio: if legit { &legit_audio } else { &short_audio },
            pacing: if legit {
                Duration::from_millis(20)
            } else {
                Duration::ZERO
            },
            linger,
        };
        let described = describe(expected, opts.close_deadline, frames + 3);
        let skip = |why: String, rows: &mut Vec<Row>, skipped: &mut Vec<String>| {
            skipped.push(format!("{name}: {why}"));
            rows.push(Row {
                scenario: name.into(),
                expected: described.clone(),
                observed: "skipped".into(),
                reason: "-".into(),
                time_ms: 0,
                ok: true,
            });
        };
        let built = match scenario {
            Scenario::Legit => Ok(attacks::legit_with(&setup, call, token.as_ref())),
            // In signature mode a stream token is never looked at: nothing to prove.
            Scenario::Attack(Attack::ForeignStreamToken)
                if opts.auth_mode == AuthMode::Signature =>
            {
                skip(
                    "auth mode signature ignores ?token= (pass --auth-mode either for a gate in \
                     either mode)"
                        .into(),
                    &mut rows,
                    &mut skipped,
                );
                continue;
            }
            Scenario::Attack(a) => attacks::attack(a, &setup),
        };
        let (handshake, script): (Handshake, Script<'_>) = match built {
            Ok(b) => b,
            Err(ScenarioError::Needs(_, what)) => {
                skip(
                    format!("the credentials document lacks {what}"),
                    &mut rows,
                    &mut skipped,
                );
                continue;
            }
        };
        let report = match client::run(&handshake, script).await {
            Ok(r) => r,
            Err(e) => {
                diagnoses.add(format!("cannot connect: {e}"), name);
                rows.push(Row {
                    scenario: name.into(),
                    expected: described,
                    observed: "connection failed".into(),
                    reason: "-".into(),
                    time_ms: 0,
                    ok: false,
                });
                continue;
            }
        };
        let (judgement, finding) = judge(expected, &report);
        match (&finding, legit) {
            (Some(Finding::Refused(status)), true) => legit_refused = Some(*status),
            (Some(f), _) => diagnoses.add(explain(f, scenario), name),
            (None, _) => {}
        }
        rows.push(judgement.into_row(name, described));
    }
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
    }

    #[test]
    fn twiml_is_read_like_twilio_reads_it() {
        let twiml = stream_gate_domain::webhook::twiml(
            "wss://gate.example.com/prod?x=1&y=2",
            &[("other", "a\"b"), ("token", "v1.1795000000.abc<&>")],
        );
        let (url, token) = parse_twiml(&twiml);
        assert_eq!(url.as_deref(), Some("wss://gate.example.com/prod?x=1&y=2"));
        assert_eq!(
            token.as_ref().map(Secret::expose),
            Some("v1.1795000000.abc<&>")
        );
        let (url, token) = parse_twiml(
            "<Response><Connect><Stream name='s' url='wss://h/p'>\
             <Parameter value='t&#x41;&#66;' name='token' /></Stream></Connect></Response>",
        );
        assert_eq!(url.as_deref(), Some("wss://h/p"));
        assert_eq!(token.as_ref().map(Secret::expose), Some("tAB"));
        assert_eq!(parse_twiml("<html>Forbidden</html>"), (None, None));
        assert_eq!(
            parse_twiml("<Response><Say>hi</Say></Response>"),
            (None, None)
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
