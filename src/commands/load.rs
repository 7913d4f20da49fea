//! `stream-gate load`: arguments, and the report printed (and written as JSON).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use stream_gate_devtools::load::{run, LoadOptions};
use stream_gate_devtools::local::devcreds;

/// Arguments of `stream-gate load`.
#[derive(Args, Debug)]
pub struct LoadArgs {
    /// Concurrent legitimate calls, each streaming one media frame every 20 ms.
    #[arg(long, default_value_t = 200)]
    pub calls: usize,
    /// Seconds each call streams.
    #[arg(long, default_value_t = 60)]
    pub seconds: u64,
    /// Unsigned or wrongly signed handshakes per second, for the whole run.
    #[arg(long, default_value_t = 1000)]
    pub bad_per_second: u64,
    /// Credentials document (default: the development one, created if absent).
    #[arg(long)]
    pub credentials: Option<PathBuf>,
    /// Also write the report as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// The gateway's call state: `memory` (the local gateway's default: every frame after the
    /// start is checked against the recorded start) or `off` (stateless).
    #[arg(long, default_value = "memory")]
    pub call_state: String,
    /// Where the gateway delivers records: `http` (the default: an HTTP sink in this process,
    /// which must receive every record of every call) or `none` (the gate alone).
    #[arg(long, default_value = "http")]
    pub sink: String,
}

/// Runs `stream-gate load`; exit 1 when a check fails.
pub fn main(args: LoadArgs) -> ExitCode {
    let fail = |m: String| {
        eprintln!("stream-gate load: {m}");
        ExitCode::from(2)
    };
    let credentials = match args.credentials {
        Some(p) => p,
        None => match std::env::current_dir().and_then(|d| devcreds::ensure(&d)) {
            Ok((p, _)) => p,
            Err(e) => {
                return fail(format!(
                    "cannot create development credentials: {}",
                    e.kind()
                ))
            }
        },
    };
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => return fail(format!("cannot find own executable: {}", e.kind())),
    };
    if !matches!(args.call_state.as_str(), "memory" | "off") {
        return fail(format!(
            "--call-state: {:?} is not memory or off",
            args.call_state
        ));
    }
    let deliver = match args.sink.as_str() {
        "http" => true,
        "none" => false,
        other => return fail(format!("--sink: {other:?} is not http or none")),
    };
    let opts = LoadOptions {
        deliver,
        call_state: args.call_state.clone(),
        exe,
        credentials,
        calls: args.calls,
        seconds: args.seconds,
        bad_per_second: args.bad_per_second,
    };
    let rt = match super::runtime() {
        Ok(rt) => rt,
        Err(e) => return fail(e),
    };
    println!(
        "load: {} calls x {} s in real time, {} bad handshakes/s, gateway in its own process, call state {}, sink {}",
        opts.calls, opts.seconds, opts.bad_per_second, opts.call_state, args.sink
    );
    let report = match rt.block_on(run(opts)) {
        Ok(r) => r,
        Err(e) => return fail(e.to_string()),
    };
    print!("{}", report.render());
    if let Some(path) = args.json {
        let written = serde_json::to_string_pretty(&report)
            .map_err(|e| e.to_string())
            .and_then(|j| std::fs::write(&path, j + "\n").map_err(|e| e.kind().to_string()));
        if let Err(e) = written {
            return fail(format!("cannot write {}: {e}", path.display()));
        }
    }
    if report.passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
