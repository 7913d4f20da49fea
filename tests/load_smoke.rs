//! `stream-gate load`, scaled down for CI: a real gateway process, real WebSockets, real-time calls
//! and a stream of bad handshakes, with call state and an HTTP sink (the defaults) and without
//! either. The full run (200 calls x 60 s, 1,000 bad handshakes/s) is documented in BENCHMARKS.md.

use std::process::Command;

use serde_json::Value;

/// One load run at a time: each is a real-time run that keeps a gateway, a sink and a load
/// generator busy (debug builds), and two side by side on 2 cores would measure each other.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Runs a short load (20 calls x 4 s, `bad_per_second`) with `extra` arguments; returns the JSON
/// report.
fn short_load(name: &str, bad_per_second: u64, extra: &[&str]) -> Value {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let dir = std::env::temp_dir().join(format!("stream-gate-load-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let json = dir.join("report.json");
    let out = Command::new(env!("CARGO_BIN_EXE_stream-gate"))
        .current_dir(&dir)
        .env_remove("STREAM_GATE_CALL_STATE")
        .args([
            "load",
            "--calls",
            "20",
            "--seconds",
            "4",
            "--bad-per-second",
            &bad_per_second.to_string(),
        ])
        .args(extra)
        .arg("--json")
        .arg(&json)
        .output()
        .expect("run stream-gate load");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("report")).expect("json");
    let _ = std::fs::remove_dir_all(&dir);
    r
}

/// What every run must show, with or without call state.
fn nothing_lost_nothing_admitted(r: &Value, bad_per_second: u64) {
    // 20 calls x (connected + start + 200 media + stop).
    assert_eq!(r["frames_sent"], 20 * 203);
    assert_eq!(r["frames_accepted"], r["frames_sent"]);
    assert_eq!(r["calls_completed"], 20);
    assert_eq!(r["bad_admitted"], 0);
    // At least three quarters of the schedule's 4 s.
    let rate = r["bad_attempted"].as_u64().unwrap_or(0) as f64 / 4.0;
    assert!(rate >= 0.75 * bad_per_second as f64, "{r}");
    assert_eq!(r["bad_refused"], r["bad_attempted"]);
    assert!(r["latency_p99_us"].as_u64().unwrap_or(0) > 0);
    assert!(r["peak_rss_kib"].as_u64().unwrap_or(0) > 0);
    assert_eq!(r["frames_closed"], 0);
    assert_eq!(r["frames_dropped"], 0, "{r}");
}

/// With the HTTP sink (the default): every record of every call arrived, and nothing else.
fn everything_delivered(r: &Value) {
    assert_eq!(r["sink"], "http");
    // Per call: start, 200 media, stop and disconnect (`connected` has no record).
    assert_eq!(r["records_expected"], 20 * 203);
    assert_eq!(r["records_delivered"], r["records_expected"], "{r}");
    assert_eq!(r["records_media"], 20 * 200);
    assert_eq!(r["records_malformed"], 0);
}

#[test]
fn a_short_load_run_loses_nothing_and_admits_nothing() {
    // The defaults: call state in memory, every frame after `start` checked against it, and every
    // record POSTed to the load's own HTTP sink. Fewer bad handshakes than the stateless run: one
    // POST per frame already doubles the CPU of a run (BENCHMARKS.md), and the debug gateway
    // would otherwise measure the machine rather than the gate.
    let r = short_load("memory", 50, &[]);
    assert_eq!(r["call_state"], "memory");
    nothing_lost_nothing_admitted(&r, 50);
    everything_delivered(&r);
}

#[test]
fn a_short_stateless_load_run_too() {
    let r = short_load("off", 200, &["--call-state", "off", "--sink", "none"]);
    assert_eq!(r["call_state"], "off");
    nothing_lost_nothing_admitted(&r, 200);
    assert_eq!(r["sink"], "none");
    assert_eq!(r["records_delivered"], 0);
}
