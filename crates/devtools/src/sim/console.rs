//! The simulator's console: each scenario played by the [`runner`](super::runner), printed with
//! what the socket saw and judged as expected or not (`stream-gate sim`).

use std::path::Path;
use std::time::Duration;

use super::attacks::{CallSetup, GateState, Scenario, WebhookTarget};
use super::play::{Observed, ReplayVerdict};
use super::runner::{plan_of, Course, Turn};
use super::{audio, Identity, SimError, SimReport};
use crate::demo::{describe_scenario, judge_observed};

/// `stream-gate sim`'s course: each scenario printed with what the socket saw, judged as expected or
/// not; with `record`, the legitimate call's echoed audio written to a WAV file.
pub struct ConsoleCourse<'a> {
    /// URL to connect to.
    pub url: &'a str,
    /// URL to sign (the one in the TwiML).
    pub signed_url: &'a str,
    /// The calling account.
    pub me: &'a Identity,
    /// Another configured account (for the cross-account attacks).
    pub other: Option<&'a Identity>,
    /// mu-law frames of the legitimate call.
    pub audio: &'a [[u8; audio::FRAME_BYTES]],
    /// Pause between media frames.
    pub pacing: Duration,
    /// The gate's start grace.
    pub start_grace: Duration,
    /// The voice webhook, for `replay-webhook`.
    pub webhook: Option<WebhookTarget<'a>>,
    /// Where to write the audio the legitimate call hears back.
    pub record: Option<&'a Path>,
    /// The gate's call state, which decides what is expected.
    pub state: GateState,
    /// Whether every scenario so far behaved as expected (start with `true`).
    pub all_ok: bool,
}

impl Course for ConsoleCourse<'_> {
    type Error = String;

    fn turn(&self, scenario: Scenario) -> Turn<'_, String> {
        let setup = CallSetup {
            url: self.url,
            signed_url: self.signed_url,
            me: self.me,
            other: self.other,
            audio: self.audio,
            pacing: self.pacing,
            linger: Duration::from_millis(1000),
            start_grace: self.start_grace,
            webhook: self.webhook,
        };
        // A ConversationRelay session always waits for its answers: a few short text messages.
        let wait = self.record.is_some() || scenario == Scenario::RelayLegit;
        match plan_of(scenario, &setup, wait) {
            Ok(plan) => Turn::Play(plan),
            Err(e) => Turn::Stop(e.to_string()),
        }
    }

    async fn observed(
        &mut self,
        scenario: Scenario,
        observed: Result<Observed, SimError>,
    ) -> Result<(), String> {
        let observed = observed.map_err(|e| e.to_string())?;
        let j = judge_observed(scenario.expected_under(self.state), &observed, None);
        self.all_ok &= j.ok;
        println!("{scenario}:");
        print_observed(&observed);
        if let (Some(path), Observed::Socket(report)) = (self.record, &observed) {
            record_echo(path, report)?;
        }
        println!(
            "  expected:           {}",
            describe_scenario(scenario, self.state)
        );
        println!(
            "  observed:           {} (reason {}, {} ms) -> {}",
            j.observed,
            j.reason,
            j.time_ms,
            if j.ok {
                "as expected"
            } else {
                "NOT as expected"
            }
        );
        Ok(())
    }
}

/// Writes the audio the legitimate call heard back to `path` (8 kHz mu-law WAV).
fn record_echo(path: &Path, report: &SimReport) -> Result<(), String> {
    let heard = report
        .answers
        .echo
        .as_ref()
        .map_or(&[][..], |e| e.audio.as_slice());
    std::fs::write(path, audio::mulaw_wav(heard))
        .map_err(|e| format!("cannot write {}: {}", path.display(), e.kind()))?;
    println!(
        "  recorded:           {} ({} bytes of 8 kHz mu-law, {:.2} s)",
        path.display(),
        heard.len(),
        heard.len() as f64 / 8000.0
    );
    Ok(())
}

/// Prints what one socket saw, each line after `label`.
fn print_socket(label: &str, report: &SimReport) {
    println!("{label}handshake admitted: {}", report.admitted);
    if let Some(s) = report.refused_status {
        println!("{label}refused with HTTP {s}");
    }
    println!("{label}frames sent:        {}", report.frames_sent);
    println!("{label}frames received:    {}", report.frames_received);
    let a = &report.answers;
    if report.frames_received > 0 || a.echo.is_some() {
        let invalid = match a.first_invalid {
            Some(code) => format!("{} Twilio would refuse (first: {code})", a.invalid),
            None => "0 Twilio would refuse".to_owned(),
        };
        if a.relay > 0 || a.relay_turns.is_some() {
            println!(
                "{label}answers:            {} ConversationRelay messages; {invalid}",
                a.relay
            );
        } else {
            println!(
                "{label}answers:            {} media, {} mark, {} clear; {invalid}",
                a.media, a.marks, a.clears
            );
        }
    }
    if let Some(t) = &a.relay_turns {
        println!(
            "{label}turns answered:     {} of {} (waited {} ms after the last turn)",
            t.answered,
            t.asked,
            t.waited.as_millis()
        );
    }
    if let Some(e) = &a.echo {
        let ms = |d: Option<std::time::Duration>| {
            d.map_or("-".to_owned(), |d| {
                format!("{:.1} ms", d.as_secs_f64() * 1000.0)
            })
        };
        println!(
            "{label}echo:               {} of {} frames echoed back, {}, round trip p50 {} max {} (waited {} ms before stop)",
            e.echoed,
            e.sent,
            if e.in_order { "in order" } else { "NOT in order" },
            ms(e.rtt_p50),
            ms(e.rtt_max),
            e.waited.as_millis()
        );
    }
    match &report.server_close {
        Some((code, text, at)) => println!(
            "{label}server closed:      code {code}, reason {:?}, after {} ms",
            text,
            at.as_millis()
        ),
        None if report.admitted => {
            println!("{label}server closed:      no (client closed after its script)")
        }
        None => {}
    }
}

/// Prints what a scenario observed.
fn print_observed(observed: &Observed) {
    match observed {
        Observed::Socket(r) => print_socket("  ", r),
        Observed::TokenReuse { first, second } => {
            println!("  first connection (started with the token):");
            print_socket("    ", first);
            println!("  second connection (the same token):");
            print_socket("    ", second);
        }
        Observed::WebhookReplay(r) => {
            let status = |a: &Result<_, String>| match a {
                Ok(super::webhook_post::WebhookAnswer { status, .. }) => {
                    format!("HTTP {status}")
                }
                Err(e) => e.clone(),
            };
            println!("  webhook request:    {}", status(&r.first));
            if let Some(replay) = &r.replay {
                println!("  webhook replay:     {}", status(replay));
            }
            // The tokens are compared, never printed.
            let tokens = match r.verdict() {
                ReplayVerdict::SameToken => "the same".to_owned(),
                ReplayVerdict::NewToken => "different".to_owned(),
                ReplayVerdict::NoToken(_, what) => format!("not both answered ({what})"),
            };
            println!("  call tokens:        {tokens}");
        }
    }
}
