//! `stream-gate new-credentials` through the real binary: the document the deploy guide puts into
//! the secret (accounts from stdin or flags, a fresh call-token key, mode 0600, never overwritten
//! unless told, nothing secret printed, refused before anything is written when the gate would
//! refuse it), and the guide's next step: `local` on that file and `verify --credentials -` with
//! the document on standard input, as `aws secretsmanager get-secret-value … | stream-gate verify`
//! gives it.

use std::io::{BufRead as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::Value;
use stream_gate_domain::Credentials;
use stream_gate_lambda::config::VARIABLES;

const BIN: &str = env!("CARGO_BIN_EXE_stream-gate");
const SID_A: &str = "AC0123456789abcdef0123456789abcdef";
const SID_B: &str = "ACfedcba9876543210fedcba9876543210";
const TOKEN_A: &str = "a1b2c3d4e5f60718293a4b5c6d7e8f90";
const TOKEN_B: &str = "0f9e8d7c6b5a49382716f5e4d3c2b1a0";

/// A scratch directory, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("sg-newcreds-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch dir");
        Scratch(dir)
    }

    fn file(&self) -> PathBuf {
        self.0.join("creds.json")
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs the binary with `stdin`: (exit code, stdout + stderr).
fn run(args: &[&str], stdin: &str) -> (i32, String) {
    let mut cmd = Command::new(BIN);
    for v in VARIABLES.iter().copied() {
        cmd.env_remove(v);
    }
    let mut child = cmd
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut input = child.stdin.take().expect("stdin");
    input.write_all(stdin.as_bytes()).expect("write stdin");
    drop(input);
    let out = child.wait_with_output().expect("wait");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

fn new_credentials(out: &Path, extra: &[&str], stdin: &str) -> (i32, String) {
    let path = out.to_string_lossy();
    let mut args = vec!["new-credentials", "--out", &path];
    args.extend_from_slice(extra);
    run(&args, stdin)
}

fn document(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).expect("read")).expect("json")
}

fn key_of(doc: &Value) -> String {
    doc["callTokenKeys"][0].as_str().expect("key").to_owned()
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).expect("meta").permissions().mode() & 0o777
}

/// Nothing secret in what the command printed.
fn assert_no_secret(text: &str, doc: &Value) {
    for secret in [TOKEN_A, TOKEN_B, &key_of(doc)] {
        assert!(!text.contains(secret), "a secret was printed:\n{text}");
    }
}

#[test]
fn pairs_on_stdin_give_a_private_document_the_gate_accepts() {
    let s = Scratch::new("pairs");
    let (code, out) = new_credentials(
        &s.file(),
        &[],
        &format!("{SID_A} {TOKEN_A}\n\n{SID_B}\t{TOKEN_B}\r\n"),
    );
    assert_eq!(code, 0, "{out}");
    #[cfg(unix)]
    assert_eq!(mode(&s.file()), 0o600);
    let doc = document(&s.file());
    assert_no_secret(&out, &doc);
    assert!(out.contains(SID_A) && out.contains(SID_B), "{out}");
    let text = std::fs::read_to_string(s.file()).expect("read");
    let creds = Credentials::from_json(&text).expect("the gate's parser accepts it");
    let sids: Vec<String> = creds.account_sids().map(|a| a.as_str().into()).collect();
    assert_eq!(sids, [SID_A, SID_B]);
    assert_eq!(doc["twilioAccounts"][0]["authTokens"][0], TOKEN_A);
    assert_eq!(doc["twilioAccounts"][1]["authTokens"][0], TOKEN_B);
    assert_eq!(doc["streamTokens"], serde_json::json!([]));
    let key = URL_SAFE_NO_PAD.decode(key_of(&doc)).expect("base64url");
    assert_eq!(key.len(), 32);
    assert_ne!(key, vec![0u8; 32]);
}

#[test]
fn account_sids_as_flags_take_one_token_per_line() {
    let s = Scratch::new("flags");
    let (code, out) = new_credentials(
        &s.file(),
        &["--account-sid", SID_B, "--account-sid", SID_A],
        &format!("{TOKEN_B}\n{TOKEN_A}\n"),
    );
    assert_eq!(code, 0, "{out}");
    let doc = document(&s.file());
    assert_eq!(doc["twilioAccounts"][0]["accountSid"], SID_B);
    assert_eq!(doc["twilioAccounts"][1]["authTokens"][0], TOKEN_A);
    // A token file instead of stdin.
    let tokens = s.0.join("tokens");
    std::fs::write(&tokens, format!("{TOKEN_A}\n")).expect("tokens");
    let second = s.0.join("second.json");
    let (code, out) = new_credentials(
        &second,
        &[
            "--account-sid",
            SID_A,
            "--auth-tokens",
            &tokens.to_string_lossy(),
        ],
        "",
    );
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        document(&second)["twilioAccounts"][0]["authTokens"][0],
        TOKEN_A
    );
}

#[test]
fn an_existing_file_is_kept_unless_forced_and_every_key_is_new() {
    let s = Scratch::new("force");
    let input = format!("{SID_A} {TOKEN_A}\n");
    assert_eq!(new_credentials(&s.file(), &[], &input).0, 0);
    let first = std::fs::read_to_string(s.file()).expect("read");
    let (code, out) = new_credentials(&s.file(), &[], &input);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("exists; pass --force"), "{out}");
    assert_eq!(std::fs::read_to_string(s.file()).expect("read"), first);
    // A file someone else made readable: --force replaces it with an owner-only one.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let loose = std::fs::Permissions::from_mode(0o644);
        std::fs::set_permissions(s.file(), loose).expect("chmod");
    }
    let (code, out) = new_credentials(&s.file(), &["--force"], &input);
    assert_eq!(code, 0, "{out}");
    #[cfg(unix)]
    assert_eq!(mode(&s.file()), 0o600);
    let second: Value = document(&s.file());
    let first: Value = serde_json::from_str(&first).expect("json");
    assert_ne!(key_of(&first), key_of(&second), "a fresh key every time");
    let leftovers = std::fs::read_dir(&s.0).expect("dir").count();
    assert_eq!(leftovers, 1, "no temporary file left behind");
}

#[test]
fn bad_input_is_refused_before_anything_is_written_and_never_quoted() {
    let s = Scratch::new("bad");
    let long_token = "x".repeat(300);
    let cases: Vec<(Vec<&str>, String, &str)> = vec![
        (vec![], String::new(), "no auth token"),
        (
            vec![],
            format!("{TOKEN_A} {SID_A}\n"),
            "input line 1: a SID is 34",
        ),
        (vec![], format!("{SID_A}\n"), "input line 1: expected"),
        (
            vec![],
            format!("{SID_A} {TOKEN_A} extra\n"),
            "input line 1: expected",
        ),
        (
            vec!["--account-sid", SID_A, "--account-sid", SID_B],
            format!("{TOKEN_A}\n"),
            "2 --account-sid given but 1",
        ),
        (
            vec![],
            format!("{SID_A} {long_token}\n"),
            "twilioAccounts[0].authTokens[0]",
        ),
        (
            vec![],
            format!("{SID_A} {TOKEN_A}\n{SID_A} {TOKEN_B}\n"),
            "credentials document refused",
        ),
    ];
    for (flags, input, expected) in cases {
        let (code, out) = new_credentials(&s.file(), &flags, &input);
        assert_eq!(code, 2, "{input:?}: {out}");
        assert!(out.contains(expected), "{input:?}: {out}");
        for secret in [TOKEN_A, TOKEN_B, &long_token] {
            assert!(!out.contains(secret), "{out}");
        }
        assert!(
            !s.file().exists(),
            "{input:?}: a refused document was written"
        );
    }
}

/// Starts `local` on the document, on a free loopback port; returns the child and its URL.
fn local(dir: &Path, creds: &Path) -> (std::process::Child, String) {
    let mut cmd = Command::new(BIN);
    for v in VARIABLES.iter().copied() {
        cmd.env_remove(v);
    }
    let mut child = cmd
        .args([
            "local",
            "--listen",
            "127.0.0.1:0",
            "--auth-mode",
            "signature",
        ])
        .arg("--credentials")
        .arg(creds)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn local");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let mut url = None;
    loop {
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(line) if line.starts_with("try a simulated call") => break,
            Ok(line) => {
                if let Some((_, u)) = line.split_once("WebSocket:") {
                    url = Some(u.trim().to_owned());
                }
            }
            Err(_) => panic!("local did not start"),
        }
    }
    std::thread::spawn(move || while rx.recv().is_ok() {});
    (child, url.expect("the banner names the WebSocket URL"))
}

#[test]
fn verify_reads_the_new_document_from_standard_input() {
    let s = Scratch::new("verify");
    let (code, out) = new_credentials(&s.file(), &[], &format!("{SID_A} {TOKEN_A}\n"));
    assert_eq!(code, 0, "{out}");
    let (mut gate, url) = local(&s.0, &s.file());
    let text = std::fs::read_to_string(s.file()).expect("read");
    let (code, out) = run(
        &["verify", &url, "--credentials", "-", "--seconds", "1"],
        &text,
    );
    let _ = gate.kill();
    let _ = gate.wait();
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(&format!("account {SID_A}")), "{out}");
    assert!(
        out.contains("all 15 scenarios behaved as expected"),
        "{out}"
    );
    assert_no_secret(&out, &document(&s.file()));
}
