//! `--cpu`: CPU time (user and system) and system calls per warm invocation, for each Lambda
//! binary, a Node.js handler of the router's media checks (benches/node/router.mjs) and the
//! minimal runtime loop (benches/minimal_runtime.rs), all under the same Runtime API.
//!
//! Each subject is started, warmed with 500 invocations, then CPU time is read from
//! `/proc/PID/stat` before and after `n` more. Subjects are measured in interleaved rounds so a
//! change in the machine's load touches all of them; the table shows each subject's median round.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use stream_gate_domain::StreamSid;
use stream_gate_testkit::moto::Moto;

use crate::function::{describe, CpuTime, Function, Launch};
use crate::{gate_env, media_event, moto_aws, read_event, Args};

const WARM_UP: u64 = 500;

/// What a subject is fed.
#[derive(Clone, Copy, PartialEq)]
enum Feed {
    /// `$connect` then `start` of one call, then fresh `media` frames of it.
    Media,
    /// The same document every time.
    Document(&'static str),
}

struct Subject {
    launch: Launch,
    feed: Feed,
    /// The answer every measured invocation must get.
    expect: &'static str,
    /// Needs a fresh moto with the stream and table (delivery and call state).
    aws: bool,
    /// A gate binary: `$connect` and `start` of the call go first (the Node handler and the
    /// minimal loop only know `media`).
    gate: bool,
}

/// Per-invocation figures of one measured run.
#[derive(Clone, Copy)]
struct PerInvocation {
    user_us: f64,
    system_us: f64,
}

impl PerInvocation {
    fn total_us(&self) -> f64 {
        self.user_us + self.system_us
    }
}

/// A function that only knows `media` frames and the Runtime API (the baselines).
fn media_only(name: &str, program: PathBuf, args: Vec<String>) -> Subject {
    Subject {
        launch: Launch {
            name: name.to_owned(),
            program,
            args,
            env: Vec::new(),
        },
        feed: Feed::Media,
        expect: "status 200",
        gate: false,
        aws: false,
    }
}

// A flat table: one entry per subject measured.
fn subjects(args: &Args) -> Result<Vec<Subject>, String> {
    let env = gate_env(args)?;
    let bin = |name: &str| args.bin_dir.join(name);
    let gate = |name: &str, program: PathBuf, extra: &[(&str, &str)]| {
        let mut env = env.clone();
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        Launch {
            name: name.to_owned(),
            program,
            args: Vec::new(),
            env,
        }
    };
    let router_mjs = std::fs::canonicalize("benches/node/router.mjs")
        .map_err(|e| format!("benches/node/router.mjs: {e} (run from the repository root)"))?;
    let router = |name: &str, program: PathBuf| Subject {
        launch: gate(name, program, &[]),
        feed: Feed::Media,
        expect: "status 200",
        gate: true,
        aws: false,
    };
    let baseline = args
        .baseline_router
        .iter()
        .map(|path| router("router baseline", path.clone()));
    let all = std::iter::once(router("router", bin("router")))
        .chain(baseline)
        .chain([
            media_only(
                "node router.mjs",
                args.node.clone(),
                vec![router_mjs.display().to_string()],
            ),
            media_only(
                "minimal runtime loop",
                bin("examples/minimal_runtime"),
                Vec::new(),
            ),
            // One ConversationRelay `prompt` (a turn of the caller's speech), the same document
            // every time: what a relay invocation costs next to a `media` one.
            Subject {
                launch: gate("router (ConversationRelay prompt)", bin("router"), &[]),
                feed: Feed::Document("default-relay-prompt.json"),
                expect: "status 200",
                gate: false,
                aws: false,
            },
            Subject {
                launch: gate("authorizer", bin("authorizer"), &[]),
                feed: Feed::Document("authorizer-signed.json"),
                expect: "Allow",
                gate: false,
                aws: false,
            },
            Subject {
                launch: gate("voice-webhook", bin("voice-webhook"), &[]),
                feed: Feed::Document("voice-webhook.json"),
                expect: "status 200",
                gate: false,
                aws: false,
            },
            Subject {
                launch: gate(
                    "router + Kinesis delivery (moto)",
                    bin("router"),
                    &[("STREAM_GATE_SINK", "kinesis:calls")],
                ),
                feed: Feed::Media,
                expect: "status 200",
                gate: true,
                aws: true,
            },
            Subject {
                launch: gate(
                    "router + delivery + DynamoDB call state (moto)",
                    bin("router"),
                    &[
                        ("STREAM_GATE_SINK", "kinesis:calls"),
                        ("STREAM_GATE_CALL_STATE", "dynamodb"),
                        ("STREAM_GATE_CALL_TABLE", "calls"),
                    ],
                ),
                feed: Feed::Media,
                expect: "status 200",
                gate: true,
                aws: true,
            },
        ]);
    let wanted = |s: &Subject| args.only.is_empty() || args.only.contains(&s.launch.name);
    Ok(all.filter(wanted).collect())
}

/// A started, warmed subject and the invocations fed so far.
struct Running {
    f: Function,
    fed: u64,
    expect: &'static str,
    media: Value,
    document: Option<Value>,
    stream: StreamSid,
    _moto: Option<Moto>,
}

impl Running {
    async fn start(args: &Args, s: &Subject) -> Result<Self, String> {
        let mut launch = s.launch.clone();
        let moto = if s.aws {
            let (moto, env) = moto_aws::delivery_and_state().await?;
            launch.env.extend(env);
            Some(moto)
        } else {
            None
        };
        let stream =
            StreamSid::parse("MZ00112233445566778899aabbccddeeff").map_err(|e| e.to_string())?;
        let document = match s.feed {
            Feed::Document(name) => Some(read_event(&args.events, name)?),
            Feed::Media => None,
        };
        let first = match (&document, s.gate) {
            (Some(d), _) => d.clone(),
            (None, true) => read_event(&args.events, "connect.json")?,
            (None, false) => {
                media_event(&read_event(&args.events, "default-media.json")?, &stream, 0)
            }
        };
        let (f, _, answer) = Function::cold_start(&launch, first).await?;
        if matches!(
            answer,
            stream_gate_testkit::fake_runtime_api::Invocation::Error(_)
        ) {
            return Err(format!("{}: first event got a Lambda error", launch.name));
        }
        let mut r = Running {
            f,
            fed: 0,
            expect: s.expect,
            media: read_event(&args.events, "default-media.json")?,
            document,
            stream,
            _moto: moto,
        };
        if s.gate {
            let (_, answer) =
                r.f.invoke(read_event(&args.events, "default-start.json")?)
                    .await?;
            if describe(&answer) != "status 200" {
                return Err(format!(
                    "{}: start answered {}",
                    launch.name,
                    describe(&answer)
                ));
            }
        }
        r.feed_n(WARM_UP).await?;
        Ok(r)
    }

    async fn feed_n(&mut self, n: u64) -> Result<(), String> {
        for _ in 0..n {
            let event = match &self.document {
                Some(d) => d.clone(),
                None => media_event(&self.media, &self.stream, self.fed),
            };
            let (_, answer) = self.f.invoke(event).await?;
            if describe(&answer) != self.expect {
                return Err(format!(
                    "{}: invocation {} answered {} (expected {})",
                    self.f.name,
                    self.fed,
                    describe(&answer),
                    self.expect
                ));
            }
            self.fed += 1;
        }
        Ok(())
    }
}

async fn measure(args: &Args, s: &Subject, n: u64) -> Result<PerInvocation, String> {
    let mut r = Running::start(args, s).await?;
    let before = r.f.cpu()?;
    r.feed_n(n).await?;
    let used: CpuTime = r.f.cpu()? - before;
    let per = |d: Duration| d.as_secs_f64() * 1e6 / n as f64;
    Ok(PerInvocation {
        user_us: per(used.user),
        system_us: per(used.system),
    })
}

/// System calls per invocation, by name, from `strace -f -c` attached to a warmed process.
async fn syscalls(args: &Args, s: &Subject, n: u64) -> Result<Vec<(String, f64)>, String> {
    let mut r = Running::start(args, s).await?;
    let out = std::env::temp_dir().join(format!("lambda_harness-strace-{}.txt", r.f.pid()));
    let mut strace = Command::new("strace")
        .args(["-f", "-c", "-o"])
        .arg(&out)
        .args(["-p", &r.f.pid().to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("strace: {e}"))?;
    // strace attaches to every thread before it counts; give it that time.
    tokio::time::sleep(Duration::from_millis(500)).await;
    r.feed_n(n).await?;
    // SIGINT detaches strace, which then writes its summary.
    let _ = Command::new("kill")
        .args(["-INT", &strace.id().to_string()])
        .status();
    let _ = strace.wait();
    let text = std::fs::read_to_string(&out).map_err(|e| format!("strace output: {e}"))?;
    let _ = std::fs::remove_file(&out);
    let mut counts = Vec::new();
    for line in text.lines() {
        let cols: Vec<&str> = line.split_whitespace().collect();
        // "% time  seconds  usecs/call  calls  [errors]  syscall"
        if cols.len() < 5 || cols[0].starts_with('%') || cols[0].starts_with('-') {
            continue;
        }
        let (Some(name), Ok(calls)) = (cols.last(), cols[3].parse::<u64>()) else {
            continue;
        };
        counts.push((name.to_string(), calls as f64 / n as f64));
    }
    if counts.is_empty() {
        return Err(format!("{}: strace counted nothing", s.launch.name));
    }
    counts.sort_by(|a, b| b.1.total_cmp(&a.1));
    Ok(counts)
}

pub async fn run(args: &Args, n: u64) -> Result<(), String> {
    let subjects = subjects(args)?;
    let mut results: Vec<Vec<PerInvocation>> = vec![Vec::new(); subjects.len()];
    for round in 0..args.rounds.max(1) {
        for (i, s) in subjects.iter().enumerate() {
            let r = measure(args, s, if s.aws { args.cpu_aws } else { n }).await?;
            eprintln!(
                "round {round}: {:<48} user {:>7.1} µs  system {:>7.1} µs",
                s.launch.name, r.user_us, r.system_us
            );
            results[i].push(r);
        }
    }
    let median = |runs: &[PerInvocation]| {
        let mut sorted = runs.to_vec();
        sorted.sort_by(|a, b| a.total_us().total_cmp(&b.total_us()));
        sorted[sorted.len() / 2]
    };
    let medians: Vec<PerInvocation> = results.iter().map(|r| median(r)).collect();
    let by_name = |name: &str| {
        subjects
            .iter()
            .position(|s| s.launch.name == name)
            .map(|i| medians[i].total_us())
    };
    let (node, floor) = (by_name("node router.mjs"), by_name("minimal runtime loop"));
    println!(
        "CPU per warm invocation, {n} invocations per run ({} for the variants on moto), median of {} \
         rounds (USER_HZ ticks of /proc/PID/stat)\n",
        args.cpu_aws,
        args.rounds.max(1)
    );
    println!("| function | user µs | system µs | total µs | Node ÷ this | this ÷ minimal loop |");
    println!("|---|---|---|---|---|---|");
    for (s, m) in subjects.iter().zip(&medians) {
        let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) if b > 0.0 => format!("{:.2}", a / b),
            _ => "-".into(),
        };
        println!(
            "| {} | {:.1} | {:.1} | {:.1} | {} | {} |",
            s.launch.name,
            m.user_us,
            m.system_us,
            m.total_us(),
            ratio(node, Some(m.total_us())),
            ratio(Some(m.total_us()), floor),
        );
    }
    if let Some(k) = args.syscalls {
        println!("\nSystem calls per warm invocation (strace -f -c over {k} invocations)\n");
        println!("| function | total | largest |");
        println!("|---|---|---|");
        for s in &subjects {
            let counts = syscalls(args, s, k).await?;
            let total: f64 = counts.iter().map(|(_, c)| c).sum();
            let top: Vec<String> = counts
                .iter()
                .filter(|(name, _)| name != "total")
                .take(6)
                .map(|(name, c)| format!("{name} {c:.1}"))
                .collect();
            // strace prints a "total" row; the sum above counted it once more.
            let total = counts
                .iter()
                .find(|(name, _)| name == "total")
                .map_or(total, |(_, t)| *t);
            println!("| {} | {total:.1} | {} |", s.launch.name, top.join(", "));
        }
    }
    Ok(())
}
