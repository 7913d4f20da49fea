//! `stream-gate`: local gateway, Twilio call simulator, demo, deployment check, signature and token
//! tools.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod commands;
use commands::tools::{self, CheckResult};

/// Command line of stream-gate.
#[derive(Parser)]
#[command(
    name = "stream-gate",
    version,
    about = "Admit only your own Twilio Media Streams to an API Gateway WebSocket API"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the X-Twilio-Signature of a URL (and form parameters) under an auth token.
    Sign {
        /// The exact URL Twilio requests (for the WebSocket handshake: the wss URL in the TwiML).
        #[arg(long)]
        url: String,
        /// A form parameter `name=value` (repeatable; voice webhooks).
        #[arg(long = "param")]
        params: Vec<String>,
        /// File holding the auth token, or `-` for standard input.
        #[arg(long)]
        auth_token_file: PathBuf,
    },
    /// Say which URL variant a signature matches, or list the variants tried (exit 1).
    CheckSignature {
        /// The URL as configured.
        #[arg(long)]
        url: String,
        /// The X-Twilio-Signature value to check.
        #[arg(long)]
        signature: String,
        /// A form parameter `name=value` (repeatable). With parameters the URL is checked as the
        /// voice webhook checks it (also with the default port); without, as the `$connect`
        /// authorizer checks a handshake (as given, with/without a trailing `/`).
        #[arg(long = "param")]
        params: Vec<String>,
        /// File holding one auth token, or `-` for standard input.
        #[arg(
            long,
            conflicts_with = "credentials",
            required_unless_present = "credentials"
        )]
        auth_token_file: Option<PathBuf>,
        /// A credentials document: every account and auth token is tried.
        #[arg(long)]
        credentials: Option<PathBuf>,
    },
    /// Mint a per-call token (what the voice webhook puts in the TwiML).
    MintCallToken {
        /// Credentials document (uses the first callTokenKeys entry).
        #[arg(long)]
        credentials: PathBuf,
        /// The call's account SID.
        #[arg(long)]
        account_sid: String,
        /// The call SID.
        #[arg(long)]
        call_sid: String,
        /// Lifetime in seconds.
        #[arg(long, default_value_t = stream_gate_domain::call_token::DEFAULT_TTL_SECS)]
        ttl_secs: u64,
    },
    /// Write a fresh credentials document for a deployment's secret: your accounts' auth tokens
    /// (read from standard input or a file) and a new call-token key, into a new 0600 file.
    NewCredentials(commands::credentials::NewCredentialsArgs),
    /// Run the local development gateway (API Gateway stand-in on loopback) until Ctrl-C.
    Local(commands::local::LocalArgs),
    /// The example application: receive the local gateway's HTTP sink and play each caller's
    /// audio back to them through the Management API (`local --sink http://127.0.0.1:PORT/records`).
    Echo(commands::echo::EchoArgs),
    /// Place a simulated Twilio call (or play a hostile client) against a ws:// URL.
    Sim(commands::sim::SimArgs),
    /// Run the whole system on this machine: one legitimate call and every attack, as a table.
    Demo(commands::demo::DemoArgs),
    /// Load test: the local gateway (own process) under real-time calls and a flood of bad
    /// handshakes; reports frames/s, refusals/s, per-frame latency and memory (exit 1 on a failed check).
    Load(commands::load::LoadArgs),
    /// Prove a deployment: one call exactly as Twilio places it and every attack of `sim`, as
    /// the demo's table, with a diagnosis of what failed (exit 1 when a row is not as expected).
    Verify(commands::verify::VerifyArgs),
}

fn fail(message: &str, code: u8) -> ExitCode {
    eprintln!("stream-gate: {message}");
    ExitCode::from(code)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Sign {
            url,
            params,
            auth_token_file,
        } => {
            let (token, params) = match (
                tools::read_secret(&auth_token_file),
                tools::parse_params(&params),
            ) {
                (Ok(t), Ok(p)) => (t, p),
                (Err(e), _) | (_, Err(e)) => return fail(&e, 2),
            };
            println!("{}", tools::sign(&token, &url, &params));
            ExitCode::SUCCESS
        }
        Command::CheckSignature {
            url,
            signature,
            params,
            auth_token_file,
            credentials,
        } => {
            let params = match tools::parse_params(&params) {
                Ok(p) => p,
                Err(e) => return fail(&e, 2),
            };
            let result = match (auth_token_file, credentials) {
                (Some(path), _) => match tools::read_secret(&path) {
                    Ok(t) => tools::check_with_token(&t, &url, &params, &signature),
                    Err(e) => return fail(&e, 2),
                },
                (None, Some(path)) => {
                    let doc = match tools::read_secret(&path) {
                        Ok(d) => d,
                        Err(e) => return fail(&e, 2),
                    };
                    match stream_gate_domain::Credentials::from_json(doc.expose()) {
                        Ok(c) => tools::check_with_credentials(&c, &url, &params, &signature, true),
                        Err(e) => return fail(&e.to_string(), 2),
                    }
                }
                (None, None) => return fail("give --auth-token-file or --credentials", 2),
            };
            match result {
                CheckResult::Match { url, credential } => {
                    println!("match: the signature is over {url}");
                    if let Some(c) = credential {
                        println!("credential: {c}");
                    }
                    ExitCode::SUCCESS
                }
                CheckResult::NoMatch(tried) => {
                    println!("no match; URL variants tried:");
                    for u in tried {
                        println!("  {u}");
                    }
                    println!("check that the URL is exactly the one in the TwiML (scheme, host, stage, trailing /) and the auth token is the account's primary");
                    ExitCode::from(1)
                }
            }
        }
        Command::MintCallToken {
            credentials,
            account_sid,
            call_sid,
            ttl_secs,
        } => {
            match tools::mint(
                &credentials,
                &account_sid,
                &call_sid,
                ttl_secs,
                stream_gate_lambda::clock::unix_now(),
            ) {
                Ok(t) => {
                    println!("{}", t.expose());
                    ExitCode::SUCCESS
                }
                Err(e) => fail(&e, 2),
            }
        }
        Command::NewCredentials(args) => commands::credentials::main(args),
        Command::Local(args) => commands::local::main(args),
        Command::Echo(args) => commands::echo::main(args),
        Command::Sim(args) => commands::sim::main(args),
        Command::Demo(args) => commands::demo::main(args),
        Command::Load(args) => commands::load::main(args),
        Command::Verify(args) => commands::verify::main(args),
    }
}
