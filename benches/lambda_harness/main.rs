//! Cold-start, latency, memory and CPU harness: runs the real release Lambda binaries under a
//! loopback Lambda Runtime API (`stream_gate_testkit::fake_runtime_api`) and reports time to first
//! answer, per-event latency percentiles and peak RSS (credentials from a file, or from Secrets
//! Manager on moto with `--secrets-manager`), or, with `--cpu`, CPU time and system calls per
//! warm invocation next to a Node.js handler and a minimal runtime loop (BENCHMARKS.md).
//!
//! ```text
//! cargo build --release --bin authorizer --bin router --bin voice-webhook
//! cargo build --release -p stream-gate-benches --example lambda_harness --example minimal_runtime
//! target/release/examples/lambda_harness --runs 20 --events-count 10000
//! target/release/examples/lambda_harness --runs 20 --events-count 0 --secrets-manager
//! target/release/examples/lambda_harness --cpu 10000 --rounds 3 --syscalls 2000
//! ```
//!
//! Per-event latency is the full round trip through the Runtime API: the binary's long-poll GET,
//! the handler, its POST of the answer, and this process's channel hop. It therefore includes two
//! loopback HTTP requests and is an upper bound on handler time.

mod cpu;
mod function;
mod moto_aws;

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Parser;
use serde_json::Value;
use stream_gate_domain::{fixtures, StreamSid};

use function::{describe, ms, percentile, us, Function, Launch};

#[derive(Parser)]
#[command(
    about = "Cold start, latency, peak RSS and CPU per invocation of the real Lambda binaries"
)]
pub(crate) struct Args {
    /// Directory holding the release binaries (`authorizer`, `router`, `voice-webhook`,
    /// `examples/minimal_runtime`).
    #[arg(long, default_value = "target/release")]
    bin_dir: PathBuf,
    /// Directory of the event documents (and `credentials.test.json`).
    #[arg(long, default_value = "events")]
    events: PathBuf,
    /// Cold starts per binary (a fresh process each).
    #[arg(long, default_value_t = 10)]
    runs: usize,
    /// Events fed to one warm process per binary (media frames for the router).
    #[arg(long, default_value_t = 10_000)]
    events_count: usize,
    /// Cold starts with the credentials in Secrets Manager (a moto server on loopback, started
    /// here) instead of a file: the path a real first call takes.
    #[arg(long)]
    secrets_manager: bool,
    /// Instead of cold starts: CPU time per warm invocation over this many invocations, for each
    /// binary, a Node.js handler and the minimal runtime loop.
    #[arg(long, value_name = "INVOCATIONS")]
    cpu: Option<u64>,
    /// With --cpu: invocations per run of the router variants that deliver to moto (each waits on
    /// the emulator, so fewer; their CPU per invocation is ten times the others').
    #[arg(long, value_name = "INVOCATIONS", default_value_t = 2_000)]
    cpu_aws: u64,
    /// With --cpu: measure each function this many times, interleaved; the table shows medians.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// With --cpu: also count system calls per warm invocation over this many invocations
    /// (`strace -f -c` attached after the warm-up; a separate process, so it slows nothing above).
    #[arg(long, value_name = "INVOCATIONS")]
    syscalls: Option<u64>,
    /// The Node.js executable for the Node handler (benches/node/router.mjs).
    #[arg(long, default_value = "node")]
    node: PathBuf,
    /// With --cpu: also measure this router binary (say, one built from an earlier commit) as
    /// "router baseline", interleaved with the others: a before/after from one run.
    #[arg(long, value_name = "PATH")]
    baseline_router: Option<PathBuf>,
    /// With --cpu: measure only the subjects of these names (comma-separated, as the table names
    /// them: `router`, `router baseline`, `node router.mjs`, `minimal runtime loop`, ...).
    #[arg(long, value_delimiter = ',', value_name = "NAMES")]
    only: Vec<String>,
}

pub(crate) fn read_event(dir: &Path, name: &str) -> Result<Value, String> {
    let path = dir.join(name);
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// The environment every gate binary gets here: credentials from the test file, a Management API
/// endpoint that accepted frames never reach, the voice webhook's URLs of `voice-webhook.json`.
pub(crate) fn gate_env(args: &Args) -> Result<Vec<(String, String)>, String> {
    let creds = std::fs::canonicalize(args.events.join("credentials.test.json"))
        .map_err(|e| e.to_string())?;
    Ok([
        ("STREAM_GATE_SECRET_FILE", creds.display().to_string()),
        (
            "STREAM_GATE_MANAGEMENT_ENDPOINT",
            "http://127.0.0.1:9/prod".into(),
        ),
        (
            "STREAM_GATE_STREAM_URL",
            "wss://gate.example.com/prod".into(),
        ),
        (
            "STREAM_GATE_WEBHOOK_URL",
            "https://hooks.example.com/voice".into(),
        ),
        // Required by the router and the webhook; the stateless path is the one measured here
        // (a subject that measures call state sets `dynamodb` after it, which wins).
        ("STREAM_GATE_CALL_STATE", "off".into()),
        ("RUST_LOG", "info".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect())
}

/// `default-media.json` with `body` replaced by a fresh media frame (160-byte payload, 20 ms).
pub(crate) fn media_event(template: &Value, stream: &StreamSid, i: u64) -> Value {
    let audio: Vec<u8> = (0..160u64).map(|k| ((k * 37 + i) % 251) as u8).collect();
    let mut e = template.clone();
    e["body"] = Value::String(fixtures::media(stream, i + 2, i + 1, &audio));
    e
}

struct Plan {
    binary: &'static str,
    first: &'static str,
    first_answer: &'static str,
    documents: &'static [&'static str],
}

const PLANS: [Plan; 2] = [
    Plan {
        binary: "authorizer",
        first: "authorizer-signed.json",
        first_answer: "Allow",
        documents: &[
            "authorizer-signed.json",
            "authorizer-token.json",
            "authorizer-unauthenticated.json",
            "authorizer-bad-signature.json",
        ],
    },
    Plan {
        binary: "router",
        // The first event of a call that needs the credentials (call-token check): the worst case.
        first: "default-start.json",
        first_answer: "status 200",
        documents: &[
            "connect.json",
            "default-connected.json",
            "default-start.json",
            "default-media.json",
            "default-stop.json",
            "disconnect.json",
        ],
    },
];

async fn run(args: &Args, plan: &Plan, env: &[(String, String)]) -> Result<(), String> {
    let launch = Launch {
        name: plan.binary.to_owned(),
        program: args.bin_dir.join(plan.binary),
        args: Vec::new(),
        env: env.to_vec(),
    };
    let first = read_event(&args.events, plan.first)?;
    println!("## {} ({})", plan.binary, launch.program.display());
    cold_starts(args, plan, &launch, &first).await?;
    if args.events_count == 0 {
        println!();
        return Ok(());
    }

    let (f, _, _) = Function::cold_start(&launch, first.clone()).await?;
    for name in plan.documents {
        let (t, answer) = f.invoke(read_event(&args.events, name)?).await?;
        println!("  {name:<34} {:<14} {}", describe(&answer), us(t));
    }
    let (mut lat, what) = if plan.binary == "router" {
        (media_latencies(args, &f).await?, "media frames")
    } else {
        (
            connect_latencies(args, &f, &first).await?,
            "signed $connect events",
        )
    };
    lat.sort();
    println!(
        "{} {what} (round trip via Runtime API): p50 {}, p90 {}, p99 {}, max {}",
        lat.len(),
        us(percentile(&lat, 0.5)),
        us(percentile(&lat, 0.9)),
        us(percentile(&lat, 0.99)),
        us(percentile(&lat, 1.0)),
    );
    match f.peak_rss_kib() {
        Some(kib) => println!(
            "peak RSS (VmHWM) after them: {kib} KiB = {:.2} MiB",
            kib as f64 / 1024.0
        ),
        None => return Err("could not read VmHWM".into()),
    }
    println!();
    Ok(())
}

/// `args.runs` cold starts of the plan's binary, each answering its first event as planned.
async fn cold_starts(
    args: &Args,
    plan: &Plan,
    launch: &Launch,
    first: &Value,
) -> Result<(), String> {
    let mut cold = Vec::with_capacity(args.runs);
    let mut first_rss = 0;
    for _ in 0..args.runs.max(1) {
        let (f, t, answer) = Function::cold_start(launch, first.clone()).await?;
        if describe(&answer) != plan.first_answer {
            return Err(format!(
                "{}: first event {} answered {} (expected {})",
                plan.binary,
                plan.first,
                describe(&answer),
                plan.first_answer
            ));
        }
        first_rss = f.peak_rss_kib().unwrap_or(0);
        cold.push(t);
    }
    cold.sort();
    println!(
        "cold start (spawn -> first answer to {}), {} runs: median {}, min {}, max {}; peak RSS after it {} KiB",
        plan.first,
        cold.len(),
        ms(percentile(&cold, 0.5)),
        ms(cold[0]),
        ms(cold[cold.len() - 1]),
        first_rss
    );
    Ok(())
}

/// The router's round trip for `args.events_count` media frames of one stream.
async fn media_latencies(args: &Args, f: &Function) -> Result<Vec<Duration>, String> {
    let template = read_event(&args.events, "default-media.json")?;
    let stream =
        StreamSid::parse("MZ00112233445566778899aabbccddeeff").map_err(|e| e.to_string())?;
    let mut lat = Vec::with_capacity(args.events_count);
    for i in 0..args.events_count as u64 {
        let (t, answer) = f.invoke(media_event(&template, &stream, i)).await?;
        if describe(&answer) != "status 200" {
            return Err(format!("media frame {i} answered {}", describe(&answer)));
        }
        lat.push(t);
    }
    Ok(lat)
}

/// The authorizer's round trip for `args.events_count` signed `$connect` events.
async fn connect_latencies(
    args: &Args,
    f: &Function,
    first: &Value,
) -> Result<Vec<Duration>, String> {
    let mut lat = Vec::with_capacity(args.events_count);
    for i in 0..args.events_count {
        let (t, answer) = f.invoke(first.clone()).await?;
        if describe(&answer) != "Allow" {
            return Err(format!(
                "authorizer event {i} answered {}",
                describe(&answer)
            ));
        }
        lat.push(t);
    }
    Ok(lat)
}

async fn cold_and_latency(args: &Args) -> Result<(), String> {
    let mut env = gate_env(args)?;
    // Held until the end: the moto server and its secret.
    let _moto = if args.secrets_manager {
        let (moto, secret_env) = moto_aws::serve(&args.events).await?;
        env.retain(|(k, _)| k != "STREAM_GATE_SECRET_FILE");
        env.extend(secret_env);
        println!(
            "credentials: Secrets Manager on moto ({}); moto answers GetSecretValue to a plain \
             HTTP client in {} (median of 5)\n",
            moto.endpoint,
            ms(moto_aws::get_secret_latency(&moto)?)
        );
        Some(moto)
    } else {
        println!("credentials: events/credentials.test.json\n");
        None
    };
    for plan in &PLANS {
        run(args, plan, &env).await?;
    }
    Ok(())
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let outcome = match args.cpu {
        Some(n) => cpu::run(&args, n).await,
        None => cold_and_latency(&args).await,
    };
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lambda_harness: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
