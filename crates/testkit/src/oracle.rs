//! Twilio's official Python helper library (`twilio` on PyPI, pinned in tools/requirements.txt) as
//! an oracle: `tools/twilio_oracle.py` computes signatures with `RequestValidator`. The interpreter
//! is `$STREAM_GATE_PYTHON`, else `.venv/bin/python` (what `scripts/setup` installs); without it
//! the calling test fails, never skips.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::Value;

fn python() -> PathBuf {
    let python = match std::env::var_os("STREAM_GATE_PYTHON") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => crate::repo_file(".venv/bin/python"),
    };
    assert!(
        python.is_file(),
        "no Python at {}: run scripts/setup (installs twilio==9.13.0 into .venv)",
        python.display()
    );
    python
}

/// The signature Twilio's library computes for `url` and form `params` under `secret` with
/// `algorithm` (`HMAC_SHA1` or `HMAC_SHA256`).
pub fn twilio_signature(
    secret: &str,
    url: &str,
    params: &[(&str, &str)],
    algorithm: &str,
) -> String {
    let case = serde_json::json!([{
        "secret": secret, "url": url, "algorithm": algorithm,
        "params": params.iter().map(|(k, v)| vec![*k, *v]).collect::<Vec<_>>(),
    }]);
    let mut child = Command::new(python())
        .arg(crate::repo_file("tools/twilio_oracle.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the oracle (scripts/setup)");
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(case.to_string().as_bytes())
            .expect("write to the oracle");
    }
    let out = child.wait_with_output().expect("oracle output");
    // The oracle never echoes its input, so its standard error is safe to show.
    assert!(
        out.status.success(),
        "the oracle failed ({:?}): {} — run scripts/setup",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    let results: Value = serde_json::from_slice(&out.stdout).expect("oracle JSON");
    results[0]["signature"]
        .as_str()
        .expect("the oracle signed the case")
        .to_owned()
}
