//! Twilio's official Python helper library (`twilio` on PyPI, pinned in tools/requirements.txt) as
//! an oracle: `tools/twilio_oracle.py` computes signatures with `RequestValidator`. The interpreter
//! is `$STREAM_GATE_PYTHON`, else `.venv/bin/python` (what `scripts/setup` installs); without it
//! the calling test fails, never skips.

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
    let script = crate::repo_file("tools/twilio_oracle.py");
    let results = crate::python::run_json(&[&script.to_string_lossy()], &case);
    results[0]["signature"]
        .as_str()
        .expect("the oracle signed the case")
        .to_owned()
}
