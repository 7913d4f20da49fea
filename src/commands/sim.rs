//! `stream-gate sim`: one simulated Twilio call (or hostile client) against a URL. The flags are
//! mapped to `stream_gate_devtools::sim::launch`, which reads, plays and prints.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use stream_gate_devtools::sim::launch::{self, Flags};

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
    /// Play a hostile client instead (`all` for every one of the protocol).
    #[arg(long)]
    pub attack: Option<String>,
    /// The Twilio WebSocket protocol to speak: `media-streams` (`<Connect><Stream>`: audio frames)
    /// or `conversation-relay` (`<Connect><ConversationRelay>`: the call's token in the URL's
    /// query, then `setup`, prompts, a digit and an interrupt).
    #[arg(long, default_value = "media-streams")]
    pub protocol: String,
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

impl From<SimArgs> for Flags {
    fn from(a: SimArgs) -> Self {
        Flags {
            url: a.url,
            credentials: a.credentials,
            account: a.account,
            signed_url: a.signed_url,
            wav: a.wav,
            record: a.record,
            frames: a.frames,
            fast: a.fast,
            attack: a.attack,
            protocol: a.protocol,
            call_state: a.call_state,
            webhook_url: a.webhook_url,
            start_grace_ms: a.start_grace_ms,
        }
    }
}

fn fail(message: &str) -> ExitCode {
    eprintln!("stream-gate sim: {message}");
    ExitCode::from(2)
}

/// Runs the simulator; exit 0 when every scenario behaved as expected (as seen from the socket).
pub fn main(args: SimArgs) -> ExitCode {
    let prepared = match launch::prepare(args.into(), std::env::var_os("STREAM_GATE_SECRET_FILE")) {
        Ok(p) => p,
        Err(e) => return fail(&e),
    };
    let rt = match super::runtime() {
        Ok(rt) => rt,
        Err(e) => return fail(&e),
    };
    match rt.block_on(launch::run(prepared)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => fail(&e),
    }
}
