//! `stream-gate verify`: one legitimate call and every attack against a deployment, as a table,
//! with a diagnosis of what failed. Exit 0 only when every row is as expected.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use stream_gate_devtools::sim::GateState;
use stream_gate_devtools::verify::{self, VerifyOptions};
use stream_gate_domain::{AuthMode, Protocol};

/// Options of `stream-gate verify`.
#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// The deployment's WebSocket URL (the stack's `WebSocketUrl`,
    /// `wss://<api>.execute-api.<region>.amazonaws.com/<stage>`), or a local gateway's `ws://` URL.
    pub url: String,
    /// The credentials document held by the deployment's secret (or `-` for standard input).
    #[arg(long)]
    pub credentials: PathBuf,
    /// The voice webhook (the stack's `VoiceWebhookUrl`; its `RelayWebhookUrl` with `--protocol
    /// conversation-relay`): the call token, and the URL Twilio signs, come from its TwiML instead
    /// of the credentials document.
    #[arg(long)]
    pub webhook_url: Option<String>,
    /// The protocol of the calls: `media-streams`, or `conversation-relay` (a ConversationRelay
    /// session and its attacks; the stack's `Protocols` must list it).
    #[arg(long, default_value = "media-streams")]
    pub protocol: String,
    /// The URL Twilio signs, when it differs from URL (the `<Stream url>` of your TwiML: a
    /// custom domain, a tunnel).
    #[arg(long)]
    pub signed_url: Option<String>,
    /// Which account of the document places the calls (0 = first).
    #[arg(long, default_value_t = 0)]
    pub account: usize,
    /// Seconds of audio the legitimate call streams (a `media` frame every 20 ms).
    #[arg(long, default_value_t = 3)]
    pub seconds: u64,
    /// The deployment's auth mode (stack parameter `AuthMode`): `signature` or `either`.
    #[arg(long, default_value = "signature")]
    pub auth_mode: String,
    /// Seconds within which an offending frame must be closed.
    #[arg(long, default_value_t = verify::CLOSE_DEADLINE.as_secs())]
    pub close_timeout: u64,
    /// Whether the deployment keeps call state (the stack's `CallState`): `on` (`dynamodb`, the
    /// stack's default) or `off`. With `off`, `media-before-start` and `reuse-call-token` are
    /// expected to be admitted and `replay-webhook` to get a new token: the gaps of a stateless
    /// gate, shown as such.
    #[arg(long, default_value = "on")]
    pub call_state: String,
    /// The deployment's start grace in milliseconds (`STREAM_GATE_START_GRACE_MS`):
    /// `media-before-start` streams this long and 2 s more.
    #[arg(long, default_value_t = stream_gate_lambda::config::defaults::START_GRACE_MS)]
    pub start_grace_ms: u64,
}

fn fail(message: &str) -> ExitCode {
    eprintln!("stream-gate verify: {message}");
    ExitCode::from(2)
}

/// Runs `stream-gate verify`: exit 0 when every row is as expected, 1 when one is not, 2 when it
/// cannot run.
pub fn main(args: VerifyArgs) -> ExitCode {
    let mode_name = args.auth_mode.clone();
    let auth_mode: AuthMode = match args.auth_mode.parse() {
        Ok(m) => m,
        Err(e) => return fail(&format!("--auth-mode: {e}")),
    };
    if args.close_timeout == 0 {
        return fail("--close-timeout must be at least 1 second");
    }
    let call_state: GateState = match args.call_state.parse() {
        Ok(s) => s,
        Err(e) => return fail(&format!("--call-state: {e}")),
    };
    let protocol: Protocol = match args.protocol.parse() {
        Ok(p) => p,
        Err(e) => return fail(&format!("--protocol: {e}")),
    };
    let document = match stream_gate_devtools::signing_tools::read_secret(&args.credentials) {
        Ok(d) => d,
        Err(e) => return fail(&e),
    };
    let opts = VerifyOptions {
        url: args.url,
        signed_url: args.signed_url,
        webhook_url: args.webhook_url,
        protocol,
        document,
        account: args.account,
        seconds: args.seconds,
        auth_mode,
        close_deadline: Duration::from_secs(args.close_timeout),
        call_state,
        start_grace: Duration::from_millis(args.start_grace_ms),
    };
    let rt = match super::runtime() {
        Ok(rt) => rt,
        Err(e) => return fail(&e),
    };
    println!(
        "stream-gate verify: {} — one {} call as Twilio places it, then every attack (auth mode {}, call state {})\n",
        opts.url,
        opts.protocol,
        mode_name,
        call_state.name()
    );
    let report = match rt.block_on(verify::run(&opts)) {
        Ok(r) => r,
        Err(e) => return fail(&e.to_string()),
    };
    print!("{}", report.render());
    if report.failed() == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
