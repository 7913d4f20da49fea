//! `stream-gate local`: runs the development gateway until Ctrl-C.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use stream_gate_devtools::local::{devcreds, Gateway, GatewayOptions};
use stream_gate_devtools::sim::identity::fresh_call_sid;
use stream_gate_devtools::sim::Identity;
use stream_gate_domain::{AuthMode, CallTokenPolicy};
use stream_gate_lambda::adapters::FileSource;

/// Options of `stream-gate local`.
#[derive(Args, Debug)]
pub struct LocalArgs {
    /// Loopback address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Stage: the WebSocket endpoint is `/{stage}`.
    #[arg(long, default_value = "dev")]
    pub stage: String,
    /// The exact URL in the TwiML, as Twilio signs it (e.g. `wss://abcd.ngrok.app/dev` behind a
    /// tunnel). Default `ws://{listen}/{stage}`.
    #[arg(long)]
    pub public_url: Option<String>,
    /// Credentials document; default `.stream-gate/dev-credentials.json` (created when absent).
    #[arg(long)]
    pub credentials: Option<PathBuf>,
    /// `signature`, `token`, `either` or `both`.
    #[arg(long, default_value = "either")]
    pub auth_mode: String,
    /// `required`, `optional` or `off`.
    #[arg(long, default_value = "required")]
    pub call_token: String,
}

fn fail(message: &str) -> ExitCode {
    eprintln!("stream-gate local: {message}");
    ExitCode::from(2)
}

/// Runs the gateway.
pub fn main(args: LocalArgs) -> ExitCode {
    if !args.listen.ip().is_loopback() {
        return fail("the local gateway listens on loopback only; put a tunnel in front of it");
    }
    if let Some(u) = &args.public_url {
        if !u.starts_with("wss://") && !u.starts_with("ws://") {
            return fail("--public-url must start with wss:// or ws://");
        }
    }
    let auth_mode: AuthMode = match args.auth_mode.parse() {
        Ok(m) => m,
        Err(e) => return fail(&format!("--auth-mode: {e}")),
    };
    let call_token: CallTokenPolicy = match args.call_token.parse() {
        Ok(p) => p,
        Err(e) => return fail(&format!("--call-token: {e}")),
    };
    let path = match &args.credentials {
        Some(p) => p.clone(),
        None => match std::env::current_dir().and_then(|d| devcreds::ensure(&d)) {
            Ok((p, created)) => {
                if created {
                    println!(
                        "created development credentials {} (mode 0600)",
                        p.display()
                    );
                }
                p
            }
            Err(e) => {
                return fail(&format!(
                    "cannot create development credentials: {}",
                    e.kind()
                ))
            }
        },
    };
    let document = match std::fs::read_to_string(&path) {
        Ok(d) => stream_gate_domain::Secret::new(d),
        Err(e) => return fail(&format!("cannot read {}: {}", path.display(), e.kind())),
    };
    let identity = match Identity::from_document(document.expose(), 0) {
        Ok(i) => i,
        Err(e) => return fail(&e.to_string()),
    };
    let rt = match super::runtime() {
        Ok(rt) => rt,
        Err(e) => return fail(&e),
    };
    rt.block_on(async move {
        let gateway = match Gateway::start(GatewayOptions {
            listen: args.listen,
            stage: args.stage.clone(),
            public_url: args.public_url.clone(),
            source: Box::new(FileSource::new(path.clone())),
            auth_mode,
            call_token,
            management_endpoint: None,
        })
        .await
        {
            Ok(g) => g,
            Err(e) => return fail(&format!("cannot listen on {}: {}", args.listen, e.kind())),
        };
        print_banner(&gateway, &identity, &path);
        stream_gate_lambda::logging::init_logging();
        let _ = tokio::signal::ctrl_c().await;
        gateway.shutdown().await;
        ExitCode::SUCCESS
    })
}

fn print_banner(gateway: &Gateway, identity: &Identity, path: &std::path::Path) {
    let call = fresh_call_sid();
    let token = identity.call_token(&call, stream_gate_lambda::clock::unix_now(), 3600);
    println!("stream-gate local gateway (API Gateway stand-in, loopback only)");
    println!("  WebSocket:       {}", gateway.ws_url());
    println!("  URL Twilio signs {}", gateway.public_url());
    println!("  Management API:  http://{}/{{stage}}/@connections/{{id}} (SigV4 header required, not verified)", gateway.addr());
    println!("  credentials:     {}", path.display());
    println!("  account:         {}", identity.account);
    println!();
    println!("TwiML for a Twilio number (the call token below is minted for {call}; a real call");
    println!(
        "has its own CallSid, so mint per call in your voice webhook, or run --call-token off):"
    );
    println!(
        "  <Response><Connect><Stream url=\"{}\"><Parameter name=\"token\" value=\"{}\"/></Stream></Connect></Response>",
        gateway.public_url(),
        token.as_ref().map_or("<no callTokenKeys>", |t| t.expose())
    );
    println!();
    println!("try a simulated call:");
    println!(
        "  stream-gate sim {} --credentials {}",
        gateway.ws_url(),
        path.display()
    );
    println!(
        "  stream-gate sim {} --credentials {} --attack all --fast",
        gateway.ws_url(),
        path.display()
    );
    println!();
}
