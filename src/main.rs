//! `stream-gate`: local gateway, Twilio call simulator, demo, deployment check, signature and token
//! tools.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod commands;

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
    Sign(commands::tools::SignArgs),
    /// Say which URL variant a signature matches, or list the variants tried (exit 1).
    CheckSignature(commands::tools::CheckSignatureArgs),
    /// Mint a per-call token (what the voice webhook puts in the TwiML).
    MintCallToken(commands::tools::MintCallTokenArgs),
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

// A flat dispatch table: one subcommand, one call.
fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Sign(args) => commands::tools::sign(args),
        Command::CheckSignature(args) => commands::tools::check_signature(args),
        Command::MintCallToken(args) => commands::tools::mint_call_token(args),
        Command::NewCredentials(args) => commands::credentials::main(args),
        Command::Local(args) => commands::local::main(args),
        Command::Echo(args) => commands::echo::main(args),
        Command::Sim(args) => commands::sim::main(args),
        Command::Demo(args) => commands::demo::main(args),
        Command::Load(args) => commands::load::main(args),
        Command::Verify(args) => commands::verify::main(args),
    }
}
