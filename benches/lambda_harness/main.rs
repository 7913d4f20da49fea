//! Cold-start and memory harness: runs the real release `authorizer` and `router` binaries under a
//! loopback Lambda Runtime API (`stream_gate_testkit::runtime_api`), credentials from a file, and
//! reports time to first answer, per-event latency percentiles and peak RSS (BENCHMARKS.md).
//!
//! ```text
//! cargo build --release --bin authorizer --bin router
//! cargo run --release -p stream-gate-benches --example lambda_harness -- --runs 10 --events-count 10000
//! ```
//!
//! Per-event latency is the full round trip through the Runtime API: the binary's long-poll GET,
//! the handler, its POST of the answer, and this process's channel hop. It therefore includes two
//! loopback HTTP requests and is an upper bound on handler time.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use serde_json::Value;
use stream_gate_domain::{messages, StreamSid};
use stream_gate_testkit::runtime_api::{lambda_env, Invocation, RuntimeApi};

const TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Parser)]
#[command(about = "Cold start, latency and peak RSS of the real Lambda binaries")]
struct Args {
    /// Directory holding the release `authorizer` and `router` binaries.
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
}

fn read_event(dir: &Path, name: &str) -> Result<Value, String> {
    let path = dir.join(name);
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// A binary running against its own Runtime API; killed on drop.
struct Function {
    api: Arc<RuntimeApi>,
    child: Child,
}

impl Drop for Function {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Function {
    /// Spawns `bin` with `first` already queued; returns the process and spawn -> first answer.
    async fn cold_start(
        bin: &Path,
        creds: &Path,
        first: Value,
    ) -> Result<(Self, Duration, Invocation), String> {
        let api = Arc::new(RuntimeApi::start().await.map_err(|e| e.to_string())?);
        let name = bin
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("function")
            .to_owned();
        let queued = {
            let api = api.clone();
            tokio::spawn(async move { api.invoke(first, TIMEOUT).await })
        };
        let started = Instant::now();
        let child = Command::new(bin)
            .env_clear()
            .envs(lambda_env(&api, &name))
            .env("STREAM_GATE_SECRET_FILE", creds)
            // A closer target that is never reached by accepted frames; keeps the SDK off the network.
            .env("STREAM_GATE_MANAGEMENT_ENDPOINT", "http://127.0.0.1:9/prod")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("{}: {e}", bin.display()))?;
        let f = Self { api, child };
        let answer = queued
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("{name}: {e}"))?;
        let elapsed = started.elapsed();
        if let Some(e) = f.api.init_error() {
            return Err(format!("{name} reported an init error: {e}"));
        }
        Ok((f, elapsed, answer))
    }

    async fn invoke(&self, event: Value) -> Result<(Duration, Invocation), String> {
        let t = Instant::now();
        let answer = self
            .api
            .invoke(event, TIMEOUT)
            .await
            .map_err(|e| e.to_string())?;
        Ok((t.elapsed(), answer))
    }

    /// Peak resident set size (VmHWM) in KiB.
    fn peak_rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn us(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

fn describe(answer: &Invocation) -> String {
    match answer {
        Invocation::Response(v) => {
            let effect = v["policyDocument"]["Statement"][0]["Effect"].as_str();
            match (effect, v["statusCode"].as_u64()) {
                (Some(e), _) => e.to_owned(),
                (None, Some(code)) => format!("status {code}"),
                _ => "response".to_owned(),
            }
        }
        Invocation::Error(_) => "LAMBDA ERROR".to_owned(),
    }
}

/// `default-media.json` with `body` replaced by a fresh media frame (160-byte payload, 20 ms).
fn media_event(template: &Value, stream: &StreamSid, i: u64) -> Value {
    let audio: Vec<u8> = (0..160u64).map(|k| ((k * 37 + i) % 251) as u8).collect();
    let mut e = template.clone();
    e["body"] = Value::String(messages::media(stream, i + 2, i + 1, &audio));
    e
}

struct Plan {
    binary: &'static str,
    first: &'static str,
    documents: &'static [&'static str],
}

const PLANS: [Plan; 2] = [
    Plan {
        binary: "authorizer",
        first: "authorizer-signed.json",
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

async fn run(args: &Args, plan: &Plan) -> Result<(), String> {
    let bin = args.bin_dir.join(plan.binary);
    let creds = std::fs::canonicalize(args.events.join("credentials.test.json"))
        .map_err(|e| e.to_string())?;
    let first = read_event(&args.events, plan.first)?;
    println!("## {} ({})", plan.binary, bin.display());

    let mut cold = Vec::with_capacity(args.runs);
    let mut first_rss = 0;
    for _ in 0..args.runs.max(1) {
        let (f, t, answer) = Function::cold_start(&bin, &creds, first.clone()).await?;
        if matches!(answer, Invocation::Error(_)) {
            return Err(format!(
                "{}: first event {} got a Lambda error",
                plan.binary, plan.first
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

    let (f, _, _) = Function::cold_start(&bin, &creds, first.clone()).await?;
    for name in plan.documents {
        let (t, answer) = f.invoke(read_event(&args.events, name)?).await?;
        println!("  {name:<34} {:<14} {}", describe(&answer), us(t));
    }

    let mut lat = Vec::with_capacity(args.events_count);
    let what = if plan.binary == "router" {
        let template = read_event(&args.events, "default-media.json")?;
        let stream =
            StreamSid::parse("MZ00112233445566778899aabbccddeeff").map_err(|e| e.to_string())?;
        for i in 0..args.events_count as u64 {
            let (t, answer) = f.invoke(media_event(&template, &stream, i)).await?;
            if describe(&answer) != "status 200" {
                return Err(format!("media frame {i} answered {}", describe(&answer)));
            }
            lat.push(t);
        }
        "media frames"
    } else {
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
        "signed $connect events"
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

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    for plan in &PLANS {
        if let Err(e) = run(&args, plan).await {
            eprintln!("lambda_harness: {e}");
            return std::process::ExitCode::FAILURE;
        }
    }
    std::process::ExitCode::SUCCESS
}
