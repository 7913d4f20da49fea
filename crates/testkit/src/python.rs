//! The project's pinned Python tools (`.venv`, installed by `scripts/setup` from
//! tools/requirements.txt) as test oracles: JSON in on stdin, JSON out on stdout. The interpreter is
//! `$STREAM_GATE_PYTHON`, else `.venv/bin/python`; without it the calling test fails, never skips.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::Value;

/// The interpreter.
pub fn python() -> PathBuf {
    let python = match std::env::var_os("STREAM_GATE_PYTHON") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => crate::repo_file(".venv/bin/python"),
    };
    assert!(
        python.is_file(),
        "no Python at {}: run scripts/setup (installs the pinned tools into .venv)",
        python.display()
    );
    python
}

/// Runs Python with `args`, `input` as JSON on stdin, and parses its stdout as JSON. Fails the
/// test when it cannot run or exits non-zero (its stderr is shown: the tools never echo their
/// input, which may hold secrets).
pub fn run_json(args: &[&str], input: &Value) -> Value {
    let mut child = Command::new(python())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run Python (scripts/setup)");
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(input.to_string().as_bytes())
            .expect("write to Python");
    }
    let out = child.wait_with_output().expect("Python's output");
    assert!(
        out.status.success(),
        "Python failed ({:?}): {} — run scripts/setup",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("Python printed JSON")
}
