//! CI regression check of the hot paths, in instructions (`scripts/test.d/30-bench-check`).
//!
//! Each hot path is counted against a reference workload on the same input, both under valgrind's
//! cachegrind, which counts executed instructions exactly: the same binary and input give the same
//! count on a busy or a quiet machine. So the bounds can be tight (1.5x the measured ratio) where a
//! timed ratio swung 0.98-2.4 between runs and needed a bound of 6. A media verdict that does twice
//! the work fails; so does a decode, a regex or an allocation per byte on any of these paths.
//! Instructions are not time (cache misses, branch mispredictions), which is why criterion's
//! timings (`benches/verdict.rs`) stay the measure of record in BENCHMARKS.md.
//!
//! ```text
//! cargo bench -p stream-gate-domain --bench instructions            # the check (needs valgrind)
//! target/release/deps/instructions-* --workload media --iterations 1000   # one workload, natively
//! ```
//!
//! Under `cargo test` (no `--bench` argument) each workload runs a few times natively and asserts
//! its verdict, nothing more.

use std::hint::black_box;
use std::process::{Command, ExitCode};

use sha2::{Digest, Sha256};
use stream_gate_domain::{
    decide_connect, fixtures, judge_frame, mint_call_token, AccountSid, AuthMode, CallSid,
    CallTokenPolicy, ConnectRequest, Credentials, Presented, StreamSid, Verdict,
};

const NOW: u64 = 1_795_881_600;
const DOCUMENT: &str = r#"{
  "twilioAccounts": [
    {"accountSid": "ACdeadbeefdeadbeefdeadbeefdeadbeef",
     "authTokens": ["bench-only-auth-token-primary-000", "bench-only-auth-token-secondary-00"]},
    {"accountSid": "ACbadbadbadbadbadbadbadbadbadbadba",
     "authTokens": ["bench-only-auth-token-primary-111", "bench-only-auth-token-secondary-11"]}
  ],
  "callTokenKeys": ["AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"]
}"#;

/// Everything the workloads read, built once (its cost is the same for every iteration count, so
/// it cancels out of the per-iteration count).
struct Fixtures {
    creds: Credentials,
    account: AccountSid,
    media: String,
    start: String,
    kib: [u8; 1024],
}

impl Fixtures {
    fn new() -> Self {
        let creds = Credentials::from_json(DOCUMENT).expect("bench document is valid");
        let account = AccountSid::parse("ACdeadbeefdeadbeefdeadbeefdeadbeef").expect("SID");
        let call = CallSid::parse("CA00112233445566778899aabbccddeeff").expect("SID");
        let stream = StreamSid::parse("MZ00112233445566778899aabbccddeeff").expect("SID");
        let audio: Vec<u8> = (0..160u32).map(|i| (i * 37 % 251) as u8).collect();
        let token = mint_call_token(&creds, &account, &call, NOW, 300).expect("key");
        Self {
            media: fixtures::media(&stream, 1234, 1233, &audio),
            start: fixtures::start(&account, &call, &stream, Some(token.expose())),
            creds,
            account,
            kib: [0x5a; 1024],
        }
    }

    fn judge(&self, frame: &str, creds: Option<&Credentials>) -> Verdict {
        judge_frame(
            frame.as_bytes(),
            &self.account,
            CallTokenPolicy::Required,
            creds,
            NOW,
        )
    }

    fn connect(&self) -> bool {
        let req = ConnectRequest {
            signature: Presented::One("AAAAAAAAAAAAAAAAAAAAAAAAAAA="),
            stream_token: Presented::Absent,
            signature_settings: Presented::Absent,
            signed_url: "wss://abc123.execute-api.us-east-1.amazonaws.com/prod",
        };
        decide_connect(black_box(&req), Some(&self.creds), AuthMode::Signature).is_ok()
    }

    /// Runs `workload` once; false if it did not do what it is counted for.
    fn run(&self, workload: &str) -> Option<bool> {
        let value_parse = |frame: &str| {
            serde_json::from_str::<serde_json::Value>(black_box(frame)).is_ok_and(|v| v.is_object())
        };
        Some(match workload {
            "media" => matches!(self.judge(black_box(&self.media), None), Verdict::Accept(_)),
            "media_reference" => value_parse(&self.media),
            "start" => matches!(
                self.judge(black_box(&self.start), Some(&self.creds)),
                Verdict::Accept(_)
            ),
            "start_reference" => value_parse(&self.start),
            // A well-formed signature that matches nothing: every account x token x URL variant.
            "connect" => !self.connect(),
            "connect_reference" => black_box(Sha256::digest(black_box(&self.kib[..]))).len() == 32,
            _ => return None,
        })
    }
}

/// A hot path, its reference, and the bound on their instruction ratio.
struct Check {
    name: &'static str,
    workload: &'static str,
    reference: &'static str,
    what_reference_is: &'static str,
    limit: f64,
}

/// Limits: 1.5x the ratios measured on 2026-11-29 (BENCHMARKS.md "Regression check in CI"):
/// media 0.98, start 1.85, connect 0.475. A path doing twice its work fails.
const CHECKS: [Check; 3] = [
    Check {
        name: "media verdict",
        workload: "media",
        reference: "media_reference",
        what_reference_is: "serde_json::Value parse of the same frame",
        limit: 1.47,
    },
    Check {
        name: "start verdict with call token",
        workload: "start",
        reference: "start_reference",
        what_reference_is: "serde_json::Value parse of the same frame",
        limit: 2.78,
    },
    Check {
        name: "$connect, signature, 2x2, no match",
        workload: "connect",
        reference: "connect_reference",
        what_reference_is: "SHA-256 of 1 KiB",
        limit: 0.71,
    },
];

/// Iteration counts of the two runs per workload; the difference cancels start-up and set-up.
const FEW: u64 = 200;
const MANY: u64 = 2_200;

/// Instructions cachegrind counted for `workload` run `iterations` times in a child process.
fn instructions(workload: &str, iterations: u64) -> Result<u64, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let out = Command::new("valgrind")
        .args([
            "--tool=cachegrind",
            "--cache-sim=no",
            "--cachegrind-out-file=/dev/null",
        ])
        .arg(exe)
        .args([
            "--workload",
            workload,
            "--iterations",
            &iterations.to_string(),
        ])
        .output()
        .map_err(|e| format!("valgrind: {e} (install valgrind: it counts the instructions)"))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        return Err(format!("{workload} under valgrind failed: {stderr}"));
    }
    // "==PID== I refs:      1,234,567" (valgrind 3.19) or "I   refs:" (3.21+).
    stderr
        .lines()
        .find_map(|l| {
            let (_, count) = l.split_once("refs:")?;
            l.contains(" I")
                .then(|| count.trim().replace(',', "").parse().ok())?
        })
        .ok_or_else(|| format!("no instruction count in valgrind's output: {stderr}"))
}

fn per_iteration(workload: &str) -> Result<f64, String> {
    let (few, many) = (instructions(workload, FEW)?, instructions(workload, MANY)?);
    Ok(many.saturating_sub(few) as f64 / (MANY - FEW) as f64)
}

/// Child mode: `--workload NAME --iterations N`.
fn run_workload(args: &[String]) -> ExitCode {
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
    };
    let (Some(workload), Some(Ok(n))) = (
        value("--workload"),
        value("--iterations").map(|n| n.parse::<u64>()),
    ) else {
        eprintln!("usage: instructions --workload NAME --iterations N");
        return ExitCode::from(2);
    };
    let f = Fixtures::new();
    for _ in 0..n {
        if f.run(workload) != Some(true) {
            eprintln!("workload {workload} did not do its work");
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}

fn check() -> Result<bool, String> {
    let mut ok = true;
    for c in &CHECKS {
        let (path, reference) = (per_iteration(c.workload)?, per_iteration(c.reference)?);
        let ratio = path / reference.max(1.0);
        let pass = ratio <= c.limit;
        ok &= pass;
        println!(
            "{:<6} {:<36} {:>8.0} instructions = {ratio:.3} x {} ({reference:.0}; limit {:.2})",
            if pass { "ok" } else { "FAILED" },
            c.name,
            path,
            c.what_reference_is,
            c.limit
        );
    }
    Ok(ok)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--workload") {
        return run_workload(&args);
    }
    if !args.iter().any(|a| a == "--bench") {
        // `cargo test`: every workload does what it is counted for.
        let f = Fixtures::new();
        for c in &CHECKS {
            for w in [c.workload, c.reference] {
                assert_eq!(f.run(w), Some(true), "workload {w}");
            }
        }
        return ExitCode::SUCCESS;
    }
    match check() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("instructions: a hot path exceeds its bound (BENCHMARKS.md)");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("instructions: {e}");
            ExitCode::FAILURE
        }
    }
}
