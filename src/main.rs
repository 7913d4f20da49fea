//! `stream-gate`: local gateway, Twilio call simulator, demo, signature and token tools.

use clap::{Parser, Subcommand};

/// Command line of stream-gate.
#[derive(Parser)]
#[command(name = "stream-gate", version, about = "Admit only your own Twilio Media Streams to an API Gateway WebSocket API")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match cli.command {}
}
