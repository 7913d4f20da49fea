//! `stream-gate local`: runs the development gateway until Ctrl-C. The settings (flags over the
//! Lambda functions' variables) and the gateway are `stream_gate_devtools::local`'s; this module
//! maps the flags to them.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use stream_gate_devtools::local::launch;
use stream_gate_devtools::local::settings::Flags;

/// Options of `stream-gate local`. Unset options fall back on the Lambda functions' variables
/// (`STREAM_GATE_SECRET_FILE`, `STREAM_GATE_PUBLIC_URL`, `STREAM_GATE_AUTH_MODE`,
/// `STREAM_GATE_CALL_TOKEN`, `STREAM_GATE_CALL_STATE`, `STREAM_GATE_WEBHOOK_URL`,
/// `STREAM_GATE_MANAGEMENT_ENDPOINT`); a flag wins over its variable.
#[derive(Args, Debug)]
pub struct LocalArgs {
    /// Loopback address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Stage: the WebSocket endpoint is `/{stage}`.
    #[arg(long, default_value = "dev")]
    pub stage: String,
    /// The exact URL in the TwiML, as Twilio signs it (e.g. `wss://abcd.ngrok.app/dev` behind a
    /// tunnel). Default `STREAM_GATE_PUBLIC_URL`, else `ws://{listen}/{stage}`.
    #[arg(long)]
    pub public_url: Option<String>,
    /// Credentials document; default `STREAM_GATE_SECRET_FILE`, else
    /// `.stream-gate/dev-credentials.json` (created when absent).
    #[arg(long)]
    pub credentials: Option<PathBuf>,
    /// `signature`, `token`, `either` or `both` [default: `STREAM_GATE_AUTH_MODE`, else either].
    #[arg(long)]
    pub auth_mode: Option<String>,
    /// `required`, `optional` or `off` [default: `STREAM_GATE_CALL_TOKEN`, else required].
    #[arg(long)]
    pub call_token: Option<String>,
    /// Where accepted frames of verified calls are delivered: `http://127.0.0.1:PORT/PATH` (each
    /// record POSTed as JSON), `file:PATH` (JSON lines) or `none` [default: `STREAM_GATE_SINK`,
    /// else none]. Records: docs/records.md.
    #[arg(long)]
    pub sink: Option<String>,
    /// Per-connection call state: `memory` or `off` (or `dynamodb` with `STREAM_GATE_CALL_TABLE`)
    /// [default: `STREAM_GATE_CALL_STATE`, else memory].
    #[arg(long)]
    pub call_state: Option<String>,
    /// The URL Twilio posts the voice webhook to, as it signs it [default:
    /// `STREAM_GATE_WEBHOOK_URL`, else `http(s)://{host of the public URL}/voice`].
    #[arg(long)]
    pub webhook_url: Option<String>,
}

impl From<LocalArgs> for Flags {
    fn from(a: LocalArgs) -> Self {
        Flags {
            listen: a.listen,
            stage: a.stage,
            public_url: a.public_url,
            credentials: a.credentials,
            auth_mode: a.auth_mode,
            call_token: a.call_token,
            sink: a.sink,
            call_state: a.call_state,
            webhook_url: a.webhook_url,
        }
    }
}

fn fail(message: &str) -> ExitCode {
    eprintln!("stream-gate local: {message}");
    ExitCode::from(2)
}

/// Runs the gateway.
pub fn main(args: LocalArgs) -> ExitCode {
    let prepared = match launch::prepare(args.into(), |k| std::env::var(k).ok()) {
        Ok(p) => p,
        Err(e) => return fail(&e),
    };
    let rt = match super::runtime() {
        Ok(rt) => rt,
        Err(e) => return fail(&e),
    };
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    match rt.block_on(launch::serve(prepared, ctrl_c)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}
