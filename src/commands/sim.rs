//! `stream-gate sim`: one simulated Twilio call (or hostile client) against a URL.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use stream_gate_devtools::local::devcreds;
use stream_gate_devtools::local::webhook::webhook_url_for;
use stream_gate_devtools::sim::attacks::{Attack, GateState, Scenario, WebhookTarget, ATTACKS};
use stream_gate_devtools::sim::console::ConsoleCourse;
use stream_gate_devtools::sim::runner::run_course;
use stream_gate_devtools::sim::{audio, Identity};

/// Options of `stream-gate sim`.
#[derive(Args, Debug)]
pub struct SimArgs {
    /// `ws://` URL to connect to (e.g. `ws://127.0.0.1:8080/dev`).
    pub url: String,
    /// Credentials document holding the account's auth token and call-token key: the one `local`
    /// was started with [default: `STREAM_GATE_SECRET_FILE`, else `.stream-gate/dev-credentials.json`,
    /// as `local`].
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

/// The document `sim` reads, in the order `local` reads its own: `--credentials`, else
/// `STREAM_GATE_SECRET_FILE`, else `.stream-gate/dev-credentials.json`.
fn credentials_path(flag: Option<PathBuf>, env: Option<std::ffi::OsString>) -> PathBuf {
    flag.or_else(|| env.filter(|v| !v.is_empty()).map(PathBuf::from))
        .unwrap_or_else(|| devcreds::default_path(std::path::Path::new(".")))
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
    let path = credentials_path(
        args.credentials.clone(),
        std::env::var_os("STREAM_GATE_SECRET_FILE"),
    );
    // Which document places the call: a call signed with another file's tokens is refused, and
    // the refusal alone would not say why.
    eprintln!("stream-gate sim: credentials from {}", path.display());
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
    let mut course = ConsoleCourse {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sim_reads_the_document_local_reads() {
        let flag = Some(PathBuf::from("flag.json"));
        let env = Some(std::ffi::OsString::from("env.json"));
        assert_eq!(
            credentials_path(flag, env.clone()),
            PathBuf::from("flag.json")
        );
        assert_eq!(credentials_path(None, env), PathBuf::from("env.json"));
        let dev = devcreds::default_path(std::path::Path::new("."));
        assert_eq!(credentials_path(None, Some("".into())), dev);
        assert_eq!(credentials_path(None, None), dev);
    }
}
