//! The real `stream-gate` binary's signature and token tools, with Twilio's published vectors.

use std::io::Write;
use std::process::{Command, Stdio};

use stream_gate_domain::{verify_call_token, AccountSid, CallSid, Credentials};

const BIN: &str = env!("CARGO_BIN_EXE_stream-gate");
const URL: &str = "wss://abc123.execute-api.us-east-1.amazonaws.com/prod";

fn run(args: &[&str], stdin: &str) -> (i32, String, String) {
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("wait");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn sign_reproduces_twilio_vectors_with_the_token_on_stdin() {
    assert_eq!(
        run(&["sign", "--url", URL, "--auth-token-file", "-"], "12345\n"),
        (0, "dYX5bz/sDh2O2Tg6KtHAZLFqkbU=\n".into(), String::new())
    );
    let args = [
        "sign",
        "--url",
        "https://mycompany.com/myapp.php?foo=1&bar=2",
        "--auth-token-file",
        "-",
        "--param",
        "CallSid=CA1234567890ABCDE",
        "--param",
        "Caller=+14158675309",
        "--param",
        "Digits=1234",
        "--param",
        "From=+14158675309",
        "--param",
        "To=+18005551212",
    ];
    assert_eq!(run(&args, "12345").1, "RSOYDt4T1cUTdK1PDd93/VVr8B8=\n");
}

#[test]
fn check_signature_names_the_variant_or_lists_them() {
    let (code, out, _) = run(
        &[
            "check-signature",
            "--url",
            &format!("{URL}/"),
            "--signature",
            "dYX5bz/sDh2O2Tg6KtHAZLFqkbU=",
            "--auth-token-file",
            "-",
        ],
        "12345",
    );
    assert_eq!(code, 0);
    assert!(out.contains(&format!("over {URL}\n")), "{out}");
    let (code, out, _) = run(
        &[
            "check-signature",
            "--url",
            "wss://example.com/other",
            "--signature",
            "dYX5bz/sDh2O2Tg6KtHAZLFqkbU=",
            "--auth-token-file",
            "-",
        ],
        "12345",
    );
    assert_eq!(code, 1);
    // A handshake: exactly the authorizer's variants (as given, with/without a trailing `/`).
    for v in ["wss://example.com/other\n", "wss://example.com/other/\n"] {
        assert!(out.contains(v), "{out}");
    }
    assert!(!out.contains(":443"), "the authorizer tries no port: {out}");
    assert!(!out.contains("12345"), "the token is never printed");
}

#[test]
fn check_signature_tries_the_default_port_only_for_a_webhook() {
    // Signed over the URL with `:443`: a voice webhook (form parameters) accepts it, the
    // WebSocket authorizer (no parameters) does not, and check-signature says the same.
    let with_port = "wss://abc123.execute-api.us-east-1.amazonaws.com:443/prod";
    let (_, sig, _) = run(
        &["sign", "--url", with_port, "--auth-token-file", "-"],
        "12345",
    );
    let (code, out, _) = run(
        &[
            "check-signature",
            "--url",
            URL,
            "--signature",
            sig.trim(),
            "--auth-token-file",
            "-",
        ],
        "12345",
    );
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("no match"), "{out}");

    let hook = "https://example.com/voice";
    let (_, sig, _) = run(
        &[
            "sign",
            "--url",
            "https://example.com:443/voice",
            "--param",
            "CallSid=CA1234567890ABCDE",
            "--auth-token-file",
            "-",
        ],
        "12345",
    );
    let (code, out, _) = run(
        &[
            "check-signature",
            "--url",
            hook,
            "--param",
            "CallSid=CA1234567890ABCDE",
            "--signature",
            sig.trim(),
            "--auth-token-file",
            "-",
        ],
        "12345",
    );
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("over https://example.com:443/voice\n"),
        "{out}"
    );
}

#[test]
fn check_signature_against_a_credentials_document_names_the_credential() {
    let creds = concat!(env!("CARGO_MANIFEST_DIR"), "/events/credentials.test.json");
    let (code, out, _) = run(
        &[
            "check-signature",
            "--url",
            URL,
            "--signature",
            "GpO6QAZTtQNIoTo8/7EsgOHeb8A=",
            "--credentials",
            creds,
        ],
        "",
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("twilioAccounts[0].authTokens[0]"), "{out}");
    assert!(!out.contains("test-only-auth-token"), "{out}");
}

#[test]
fn mint_call_token_mints_what_the_router_accepts() {
    let creds = concat!(env!("CARGO_MANIFEST_DIR"), "/events/credentials.test.json");
    let (ac, ca) = (
        "ACdeadbeefdeadbeefdeadbeefdeadbeef",
        "CA0123456789abcdef0123456789abcdef",
    );
    let (code, out, _) = run(
        &[
            "mint-call-token",
            "--credentials",
            creds,
            "--account-sid",
            ac,
            "--call-sid",
            ca,
            "--ttl-secs",
            "60",
        ],
        "",
    );
    assert_eq!(code, 0);
    let doc = std::fs::read_to_string(creds).expect("creds");
    let c = Credentials::from_json(&doc).expect("valid");
    let now = stream_gate_lambda::clock::unix_now();
    let v = verify_call_token(
        &c,
        out.trim(),
        &AccountSid::parse(ac).expect("ac"),
        &CallSid::parse(ca).expect("ca"),
        now,
    )
    .expect("valid token");
    assert!(v.expires_at >= now + 55 && v.expires_at <= now + 61);
    let (code, _, err) = run(
        &[
            "mint-call-token",
            "--credentials",
            creds,
            "--account-sid",
            "ACXX",
            "--call-sid",
            ca,
        ],
        "",
    );
    assert_eq!(code, 2);
    assert!(err.contains("--account-sid"), "{err}");
}
