//! `stream-gate sim`: one simulated Twilio call (or hostile client) against a URL.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use stream_gate_devtools::demo::{describe_scenario, judge_observed};
use stream_gate_devtools::local::devcreds;
use stream_gate_devtools::local::webhook::webhook_url_for;
use stream_gate_devtools::sim::attacks::{
    Attack, CallSetup, GateState, Scenario, WebhookTarget, ATTACKS,
};
use stream_gate_devtools::sim::runner::{plan_of, run_course, Course, Turn};
use stream_gate_devtools::sim::{audio, Identity, Observed, ReplayVerdict, SimError, SimReport};

/// Options of `stream-gate sim`.
#[derive(Args, Debug)]
pub struct SimArgs {
    /// `ws://` URL to connect to (e.g. `ws://127.0.0.1:8080/dev`).
    pub url: String,
    /// Credentials document holding the account's auth token and call-token key.
    #[arg(long)]
    pub credentials: Option<PathBuf>,
    /// Which account of the document places the call (0 = first).
    #[arg(long, default_value_t = 0)]
    pub account: usize,
    /// The URL to sign, when it differs from the one connected to (the TwiML URL behind a tunnel).
    #[arg(long)]
    pub signed_url: Option<String>,
    /// 16-bit PCM WAV file to stream (converted to 8 kHz mu-law); default a 440 Hz tone.
    #[arg(long)]
    pub wav: Option<PathBuf>,
    /// Write the audio received back (outbound `media`, in arrival order) to this WAV file (8 kHz
    /// mono mu-law, the bytes as received); waits for the echoes before `stop`, and reports the
    /// round trip of each frame.
    #[arg(long)]
    pub record: Option<PathBuf>,
    /// Frames of generated tone (20 ms each) when no WAV is given.
    #[arg(long, default_value_t = 100)]
    pub frames: usize,
    /// Send media frames back to back instead of every 20 ms.
    #[arg(long)]
    pub fast: bool,
    /// Play a hostile client instead (`all` for every one).
    #[arg(long)]
    pub attack: Option<String>,
    /// Whether the gate keeps call state (`on`: `stream-gate local`'s default, the stack's
    /// `dynamodb`; `off`: stateless). Decides what `media-before-start`, `reuse-call-token` and
    /// `replay-webhook` are expected to do.
    #[arg(long, default_value = "on")]
    pub call_state: String,
    /// The voice webhook for `replay-webhook`; default the local gateway's, `http://{host}/voice`
    /// of the URL (signed over the one of `--signed-url`, as behind a tunnel).
    #[arg(long)]
    pub webhook_url: Option<String>,
    /// The gate's start grace in milliseconds (`STREAM_GATE_START_GRACE_MS`):
    /// `media-before-start` streams this long and 2 s more.
    #[arg(long, default_value_t = stream_gate_lambda::config::defaults::START_GRACE_MS)]
    pub start_grace_ms: u64,
}

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
        println!(
            "{label}answers:            {} media, {} mark, {} clear; {invalid}",
            a.media, a.marks, a.clears
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
                Ok(stream_gate_devtools::sim::webhook::WebhookAnswer { status, .. }) => {
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

fn fail(message: &str) -> ExitCode {
    eprintln!("stream-gate sim: {message}");
    ExitCode::from(2)
}

/// The scenarios `--attack` names: none is the legitimate call, `all` every attack.
fn scenarios(attack: Option<&str>) -> Result<Vec<Scenario>, String> {
    match attack {
        None => Ok(vec![Scenario::Legit]),
        Some("all") => Ok(ATTACKS.iter().copied().map(Scenario::Attack).collect()),
        Some(n) => n
            .parse::<Attack>()
            .map(|a| vec![Scenario::Attack(a)])
            .map_err(|e| e.to_string()),
    }
}

/// Runs the simulator; exit 0 when every scenario behaved as expected (as seen from the socket).
pub fn main(args: SimArgs) -> ExitCode {
    if !args.url.starts_with("ws://") {
        return fail("only ws:// URLs are supported by this build (no TLS client); to test a tunnel, connect to the local ws:// URL and pass --signed-url wss://...");
    }
    let path = args
        .credentials
        .clone()
        .unwrap_or_else(|| devcreds::default_path(std::path::Path::new(".")));
    let document = match std::fs::read_to_string(&path) {
        Ok(d) => stream_gate_domain::Secret::new(d),
        Err(e) => return fail(&format!("cannot read {}: {}", path.display(), e.kind())),
    };
    let me = match Identity::from_document(document.expose(), args.account) {
        Ok(i) => i,
        Err(e) => return fail(&e.to_string()),
    };
    // Another account of the document (for the cross-account attacks), when there is one.
    let other = Identity::from_document(document.expose(), usize::from(args.account == 0)).ok();
    let frames = match &args.wav {
        Some(p) => match std::fs::read(p)
            .map_err(|e| e.kind().to_string())
            .and_then(|b| audio::wav_to_frames(&b).map_err(|e| e.to_string()))
        {
            Ok(f) => f,
            Err(e) => return fail(&format!("{}: {e}", p.display())),
        },
        None => audio::tone(440.0, args.frames),
    };
    if args.record.is_some() && args.attack.is_some() {
        return fail("--record records the legitimate call: leave out --attack");
    }
    let scenarios = match scenarios(args.attack.as_deref()) {
        Ok(s) => s,
        Err(e) => return fail(&e),
    };
    let rt = match super::runtime() {
        Ok(rt) => rt,
        Err(e) => return fail(&e),
    };
    let state: GateState = match args.call_state.parse() {
        Ok(s) => s,
        Err(e) => return fail(&format!("--call-state: {e}")),
    };
    let signed_url = args.signed_url.clone().unwrap_or_else(|| args.url.clone());
    let (hook_url, hook_signed) = match &args.webhook_url {
        Some(u) => (Some(u.clone()), Some(u.clone())),
        None => (webhook_url_for(&args.url), webhook_url_for(&signed_url)),
    };
    let webhook = match (&hook_url, &hook_signed) {
        (Some(url), Some(signed_url)) => Some(WebhookTarget { url, signed_url }),
        _ => None,
    };
    let mut course = SimCourse {
        url: &args.url,
        signed_url: &signed_url,
        me: &me,
        other: other.as_ref(),
        audio: &frames,
        pacing: if args.fast {
            Duration::ZERO
        } else {
            Duration::from_millis(20)
        },
        start_grace: Duration::from_millis(args.start_grace_ms),
        webhook,
        record: args.record.as_deref(),
        state,
        all_ok: true,
    };
    if let Err(e) = rt.block_on(run_course(&mut course, scenarios, &me)) {
        return fail(&e);
    }
    if course.all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// The simulator's course: each scenario printed with what the socket saw, judged as expected or
/// not; with `record`, the legitimate call's echoed audio written to a WAV file.
struct SimCourse<'a> {
    url: &'a str,
    signed_url: &'a str,
    me: &'a Identity,
    other: Option<&'a Identity>,
    audio: &'a [[u8; audio::FRAME_BYTES]],
    pacing: Duration,
    start_grace: Duration,
    webhook: Option<WebhookTarget<'a>>,
    record: Option<&'a Path>,
    state: GateState,
    /// Whether every scenario so far behaved as expected.
    all_ok: bool,
}

impl Course for SimCourse<'_> {
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
        match plan_of(scenario, &setup, self.record.is_some()) {
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
