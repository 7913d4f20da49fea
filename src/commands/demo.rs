//! `stream-gate demo`: prints the scenario table; exit 1 when any row differs from the expected.

use std::process::ExitCode;

use clap::Args;

use stream_gate_devtools::demo::{self, DemoOptions};
use stream_gate_lambda::config::CallStateMode;

/// Options of `stream-gate demo`.
#[derive(Args, Debug)]
pub struct DemoArgs {
    /// The gateway's call state: `memory` (closes the stateless gaps) or `off` (stateless: the
    /// table then expects those attacks to succeed, and says so).
    #[arg(long, default_value = "memory")]
    pub call_state: String,
}

/// Runs the demo (its own runtime; no logging, so the table stays readable).
pub fn main(args: DemoArgs) -> ExitCode {
    let call_state = match args.call_state.as_str() {
        "memory" => CallStateMode::Memory,
        "off" => CallStateMode::Off,
        other => {
            eprintln!("stream-gate demo: --call-state: {other:?} is not memory or off");
            return ExitCode::from(2);
        }
    };
    let rt = match super::runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("stream-gate demo: {e}");
            return ExitCode::from(2);
        }
    };
    let state = if call_state == CallStateMode::Off {
        "off"
    } else {
        "memory"
    };
    println!("stream-gate demo: local gateway on loopback, fresh development credentials, call state {state}, one call and every attack of each protocol\n");
    let opts = DemoOptions {
        call_state,
        ..DemoOptions::default()
    };
    match rt.block_on(demo::run(&opts)) {
        Ok((tables, deletes)) => {
            println!("Media Streams (<Connect><Stream>)\n");
            print!("{}", demo::render(&tables.media));
            println!("\nConversationRelay (<Connect><ConversationRelay>)\n");
            print!("{}", demo::render(&tables.relay));
            println!("\nrouter closes sent through the Management API client (DELETE @connections): {deletes}");
            let total = tables.rows().count();
            let failed = tables.rows().filter(|r| !r.ok).count();
            if failed == 0 {
                println!("all {total} scenarios behaved as expected");
                ExitCode::SUCCESS
            } else {
                println!("{failed} of {total} scenarios did NOT behave as expected");
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("stream-gate demo: {e}");
            ExitCode::from(2)
        }
    }
}
