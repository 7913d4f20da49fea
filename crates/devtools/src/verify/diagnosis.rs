//! What a failure most likely means: each finding explained once, the refused legitimate
//! handshake probed over the URL variants, the voice webhook's answer read.

use std::time::Duration;

use super::judge::Finding;
use super::{VerifyOptions, CLOSE_MISSING, SIGNATURE_MISMATCH, STATELESS};
use crate::domain::signature::{handshake_urls, webhook_urls};
use crate::domain::{AccountSid, CloseReason, Credentials, Secret};
use crate::sim::attacks::{self, Expected, Scenario};
use crate::sim::identity::{Identity, IdentityError};
use crate::sim::webhook_post::WebhookAnswer;
use crate::sim::{client, Script};

/// Diagnoses in order of first appearance, each with the scenarios it concerns.
#[derive(Default)]
pub(super) struct Diagnoses(Vec<(String, Vec<String>)>);

impl Diagnoses {
    pub(super) fn add(&mut self, message: String, scenario: &str) {
        match self.0.iter_mut().find(|(m, _)| *m == message) {
            Some((_, s)) => s.push(scenario.to_owned()),
            None => self.0.push((message, vec![scenario.to_owned()])),
        }
    }

    pub(super) fn render(self) -> Vec<String> {
        self.0
            .into_iter()
            .map(|(m, s)| format!("{} ({})", m, s.join(", ")))
            .collect()
    }
}

/// The message for a finding on `scenario` (the refused legitimate call has its own, with probes).
pub(super) fn explain(finding: &Finding, scenario: Scenario) -> String {
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
        Finding::Closed(r) if scenario.is_legit() => format!(
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
pub(super) fn stand_in_account(document: &str) -> Result<Identity, IdentityError> {
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
pub(super) fn probe_urls(signed: &str, connect: &str) -> Vec<String> {
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

/// Why the legitimate handshake, signed over `signed`, was refused with `status`: the
/// [`probe_urls`] tried, each signed with the same auth token, and what the gate answered.
pub(super) async fn refusal_diagnosis(
    me: &Identity,
    opts: &VerifyOptions,
    signed: &str,
    status: u16,
) -> String {
    let mut probes = Vec::new();
    for u in probe_urls(signed, &opts.url) {
        let admitted = admitted_when_signed_over(me, &opts.url, &u).await;
        probes.push((u, admitted));
    }
    signature_diagnosis(signed, status, &probes)
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

/// What a webhook answer without a usable TwiML most likely means.
pub(super) fn webhook_diagnosis(
    a: &WebhookAnswer,
    webhook: &str,
    account: &AccountSid,
) -> Option<String> {
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
