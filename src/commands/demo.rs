//! `stream-gate demo`: prints the scenario table; exit 1 when any row differs from the expected.

use std::process::ExitCode;

use stream_gate_devtools::demo::{self, DemoOptions};

/// Runs the demo (its own runtime; no logging, so the table stays readable).
pub fn main() -> ExitCode {
    let rt = match super::runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("stream-gate demo: {e}");
            return ExitCode::from(2);
        }
    };
    println!("stream-gate demo: local gateway on loopback, fresh development credentials, one call and every attack\n");
    match rt.block_on(demo::run(&DemoOptions::default())) {
        Ok((rows, deletes)) => {
            print!("{}", demo::render(&rows));
            println!("\nrouter closes sent through the Management API client (DELETE @connections): {deletes}");
            let failed = rows.iter().filter(|r| !r.ok).count();
            if failed == 0 {
                println!("all {} scenarios behaved as expected", rows.len());
                ExitCode::SUCCESS
            } else {
                println!(
                    "{failed} of {} scenarios did NOT behave as expected",
                    rows.len()
                );
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("stream-gate demo: {e}");
            ExitCode::from(2)
        }
    }
}
