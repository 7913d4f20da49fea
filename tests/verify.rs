//! `stream-gate verify` against `stream-gate local` started as its own process on loopback: a
//! healthy gateway, a gateway whose closes fail (its router's `DeleteConnection` goes to a
//! stand-in that answers 403, as a router without the `ManageConnections` permission gets), a
//! gateway that verifies another public URL, a gateway without call state (verified as such, and
//! diagnosed when it is taken for a stateful one), and a voice webhook that answers (or refuses)
//! the signed request — a stand-in, or the local gateway's own.

use std::io::{BufRead as _, Read as _, Write as _};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use stream_gate_devtools::local::devcreds;
use stream_gate_devtools::verify::{CLOSE_MISSING, SIGNATURE_MISMATCH, STATELESS};
use stream_gate_domain::signature::webhook_urls;
use stream_gate_domain::webhook_decision::{precheck_webhook, twiml, verify_webhook, WebhookForm};
use stream_gate_domain::{compute_signature, mint_call_token, Credentials, Secret};
use stream_gate_testkit::ManagementEndpoint;

const BIN: &str = env!("CARGO_BIN_EXE_stream-gate");

/// The gate's variables, removed from every child so the developer's environment cannot leak in.
use stream_gate_lambda::config::VARIABLES;

/// A scratch directory with a fresh credentials document; removed on drop.
struct Scratch {
    dir: PathBuf,
    creds: PathBuf,
    doc: Secret,
}

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir =
            std::env::temp_dir().join(format!("stream-gate-verify-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let creds = dir.join("credentials.json");
        let doc = devcreds::generate();
        devcreds::write_private(&creds, &doc).expect("credentials");
        Scratch { dir, creds, doc }
    }

    fn creds(&self) -> String {
        self.creds.to_string_lossy().into_owned()
    }

    /// Every secret of the document: none may ever be printed.
    fn secrets(&self) -> Vec<String> {
        let v: Value = serde_json::from_str(self.doc.expose()).expect("json");
        let mut out: Vec<String> = Vec::new();
        for a in v["twilioAccounts"].as_array().into_iter().flatten() {
            for t in a["authTokens"].as_array().into_iter().flatten() {
                out.extend(t.as_str().map(str::to_owned));
            }
        }
        for t in v["streamTokens"].as_array().into_iter().flatten() {
            out.extend(t["token"].as_str().map(str::to_owned));
        }
        for k in v["callTokenKeys"].as_array().into_iter().flatten() {
            out.extend(k.as_str().map(str::to_owned));
        }
        assert!(out.len() >= 5, "{out:?}");
        out
    }

    fn auth_token(&self) -> String {
        let v: Value = serde_json::from_str(self.doc.expose()).expect("json");
        v["twilioAccounts"][0]["authTokens"][0]
            .as_str()
            .expect("token")
            .to_owned()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `stream-gate local` as its own process; killed on drop.
struct Local {
    child: Child,
    url: String,
}

impl Drop for Local {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `local` on a free loopback port with the scratch credentials, `args` and exactly `env`
/// of the gate's variables, and waits for its banner.
fn local(s: &Scratch, args: &[&str], env: &[(&str, &str)]) -> Local {
    local_on(s, &s.creds, args, env)
}

fn local_on(s: &Scratch, creds: &Path, args: &[&str], env: &[(&str, &str)]) -> Local {
    // Port 0: the gateway binds a free port itself and its banner names it (no probe socket to
    // race another test for the port).
    let mut cmd = Command::new(BIN);
    cmd.args(["local", "--listen", "127.0.0.1:0", "--credentials"])
        .arg(creds)
        .args(args)
        .current_dir(&s.dir);
    for v in VARIABLES.iter().copied() {
        cmd.env_remove(v);
    }
    let mut child = cmd
        .envs(env.iter().copied())
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
    let mut banner = String::new();
    let mut url = None;
    loop {
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(line) if line.starts_with("try a simulated call") => break,
            Ok(line) => {
                if let Some((_, u)) = line.split_once("WebSocket:") {
                    url = Some(u.trim().to_owned());
                }
                banner.push_str(&line);
            }
            Err(_) => panic!("local did not start: {banner}"),
        }
    }
    let url = url.unwrap_or_else(|| panic!("no WebSocket URL in the banner: {banner}"));
    // Keep draining its output (the JSON log) so the gateway never blocks on a full pipe.
    std::thread::spawn(move || while rx.recv().is_ok() {});
    Local { child, url }
}

/// Runs `stream-gate verify URL --credentials ... args`: (exit code, stdout + stderr).
fn verify(s: &Scratch, url: &str, args: &[&str]) -> (i32, String) {
    let mut cmd = Command::new(BIN);
    for v in VARIABLES.iter().copied() {
        cmd.env_remove(v);
    }
    let out = cmd
        .args(["verify", url, "--credentials", &s.creds(), "--seconds", "1"])
        .args(args)
        .output()
        .expect("run verify");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for secret in s.secrets() {
        assert!(!text.contains(&secret), "a secret was printed:\n{text}");
    }
    (out.status.code().unwrap_or(-1), text)
}

/// The table row of `scenario`.
fn row<'a>(out: &'a str, scenario: &str) -> &'a str {
    out.lines()
        .find(|l| l.starts_with(&format!("{scenario} ")))
        .unwrap_or_else(|| panic!("no row for {scenario}:\n{out}"))
}

fn ok(out: &str, scenario: &str) -> bool {
    row(out, scenario).trim_end().ends_with("| yes")
}

#[test]
fn a_healthy_gateway_passes_every_row() {
    let s = Scratch::new("healthy");
    let gate = local(&s, &[], &[]);
    let (code, out) = verify(&s, &gate.url, &["--auth-mode", "either"]);
    assert_eq!(code, 0, "{out}");
    for scenario in stream_gate_devtools::demo::scenario_names() {
        assert!(ok(&out, scenario), "{}\n{out}", row(&out, scenario));
    }
    assert!(
        out.contains("all 15 scenarios behaved as expected (1 skipped)"),
        "{out}"
    );
    assert!(!out.contains("diagnosis"), "{out}");
    // Call state: closed with the reason, the first connection untouched.
    assert!(
        row(&out, "media-before-start").contains("| media_before_start "),
        "{out}"
    );
    let reuse = row(&out, "reuse-call-token");
    assert!(
        reuse.contains("| closed 1008; first untouched ") && reuse.contains("| call_token_reused "),
        "{out}"
    );
    // Without the webhook the replay has nothing to post to: skipped, and said so.
    assert!(row(&out, "replay-webhook").contains("| skipped "), "{out}");
    assert!(
        out.contains("skipped: replay-webhook: it posts to the voice webhook: pass --webhook-url"),
        "{out}"
    );
    // The local gateway writes the close reason: verify shows it.
    assert!(
        row(&out, "expired-token").contains("| call_token_expired "),
        "{out}"
    );
    // The legitimate call's signature (the same on every call: replayable) is never printed.
    let sig = compute_signature(&s.auth_token(), &gate.url, &[]);
    assert!(!out.contains(&sig), "{out}");

    // In signature mode (the stack's default) the stream-token attack proves nothing: skipped,
    // said so, and not a failure. With the gateway's own voice webhook, the call token comes from
    // its TwiML and the replayed webhook gets the same token.
    let hook = gate
        .url
        .replace("ws://", "http://")
        .replace("/dev", "/voice");
    let (code, out) = verify(&s, &gate.url, &["--webhook-url", &hook]);
    assert_eq!(code, 0, "{out}");
    assert!(
        row(&out, "foreign-stream-token").contains("| skipped "),
        "{out}"
    );
    assert!(out.contains("skipped: foreign-stream-token"), "{out}");
    assert!(
        row(&out, "voice-webhook").contains("HTTP 200, TwiML with a token"),
        "{out}"
    );
    assert!(
        row(&out, "replay-webhook").contains("| the same call token twice "),
        "{out}"
    );
    assert!(ok(&out, "replay-webhook"), "{out}");
    assert!(
        out.contains("all 16 scenarios behaved as expected (1 skipped)"),
        "{out}"
    );
}

#[test]
fn a_stateless_gateway_is_diagnosed_and_verified_as_such() {
    let s = Scratch::new("stateless");
    let gate = local(&s, &["--call-state", "off"], &[]);
    let hook = gate
        .url
        .replace("ws://", "http://")
        .replace("/dev", "/voice");
    let args = ["--auth-mode", "either", "--webhook-url", hook.as_str()];
    // Taken for a stateful gate (the stack's default), its gaps are failures, with a diagnosis.
    let (code, out) = verify(
        &s,
        &gate.url,
        &[&args[..], &["--close-timeout", "1"]].concat(),
    );
    assert_eq!(code, 1, "{out}");
    for scenario in ["media-before-start", "reuse-call-token", "replay-webhook"] {
        assert!(row(&out, scenario).ends_with("| NO"), "{out}");
    }
    assert!(out.contains(STATELESS), "{out}");
    assert!(
        out.contains("the voice webhook answered a replayed request with a new call token"),
        "{out}"
    );
    assert!(
        out.contains("3 of 16 scenarios did NOT behave as expected"),
        "{out}"
    );
    // Verified as what it is, every row is as expected, and the gaps are said out loud.
    let (code, out) = verify(
        &s,
        &gate.url,
        &[&args[..], &["--call-state", "off"]].concat(),
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("call state off"), "{out}");
    assert!(
        out.contains("note: --call-state off: a stateless gate admits media before start"),
        "{out}"
    );
    for scenario in ["media-before-start", "reuse-call-token", "replay-webhook"] {
        assert!(
            row(&out, scenario).contains("(no call state: not stopped)"),
            "{out}"
        );
    }
    assert!(
        row(&out, "replay-webhook").contains("| a new call token for the replay "),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_whose_closes_fail_is_diagnosed() {
    let endpoint = ManagementEndpoint::start(reqwest::StatusCode::FORBIDDEN).await;
    let s = Scratch::new("closes-fail");
    let gate = local(
        &s,
        &[],
        &[("STREAM_GATE_MANAGEMENT_ENDPOINT", endpoint.url.as_str())],
    );
    let url = gate.url.clone();
    let (code, out) = {
        let s = &s;
        tokio::task::block_in_place(|| {
            verify(s, &url, &["--auth-mode", "either", "--close-timeout", "2"])
        })
    };
    assert_eq!(code, 1, "{out}");
    assert!(out.contains(CLOSE_MISSING), "{out}");
    for scenario in [
        "foreign-start",
        "other-call-token",
        "expired-token",
        "missing-token",
        "malformed-json",
        "media-before-start",
        "reuse-call-token",
    ] {
        let r = row(&out, scenario);
        assert!(r.contains("| not closed") && r.ends_with("| NO"), "{r}");
    }
    // The closes only call state asks for point at either cause.
    assert!(out.contains(STATELESS), "{out}");
    // What API Gateway closes itself, and what is never closed, are unaffected.
    for scenario in [
        "legit-call",
        "no-signature",
        "bad-signature",
        "foreign-stream-token",
        "binary-frame",
        "oversized-frame",
        "event-flood",
    ] {
        assert!(ok(&out, scenario), "{}", row(&out, scenario));
    }
    assert!(
        out.contains("7 of 15 scenarios did NOT behave as expected"),
        "{out}"
    );
    // The router did ask, through the SDK (signed), and was refused.
    let seen = endpoint.seen();
    assert!(seen.len() >= 7, "{seen:?}");
    assert!(
        seen.iter().all(|r| r.method == "DELETE" && r.signed),
        "{seen:?}"
    );
}

#[test]
fn a_wrong_public_url_is_diagnosed_as_a_signature_mismatch() {
    let s = Scratch::new("public-url");
    // The gate verifies another URL than the one verify signs (the loopback URL).
    let public = "wss://gate.example.test/dev";
    let gate = local(&s, &["--public-url", public], &[]);
    let (code, out) = verify(&s, &gate.url, &[]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains(SIGNATURE_MISMATCH), "{out}");
    assert!(row(&out, "legit-call").contains("| refused 403 "), "{out}");
    assert!(out.contains("URL variants tried"), "{out}");
    assert!(out.contains(&format!("{}/  refused", gate.url)), "{out}");
    assert!(out.contains("none was admitted"), "{out}");
    // Signing what the gate verifies (the URL in the TwiML) passes.
    let (code, out) = verify(&s, &gate.url, &["--signed-url", public]);
    assert_eq!(code, 0, "{out}");
    drop(gate);

    // The other way round: the gate verifies its own URL, the TwiML says another. The probes find
    // the URL the gate verifies.
    let gate = local(&s, &[], &[]);
    let (code, out) = verify(
        &s,
        &gate.url,
        &["--signed-url", "wss://wrong.example.test/dev"],
    );
    assert_eq!(code, 1, "{out}");
    assert!(out.contains(SIGNATURE_MISMATCH), "{out}");
    assert!(
        out.contains(&format!("the gate verifies signatures over {}:", gate.url)),
        "{out}"
    );
}

/// A voice webhook stand-in on loopback that checks the request as the `voice-webhook` function
/// does (the domain's own form, signature and token functions) and answers its TwiML, one token
/// per CallSid (as with call state); or answers `refuse` when set. Records the tokens it minted.
struct Webhook {
    url: String,
    minted: Arc<Mutex<Vec<String>>>,
}

fn webhook(document: &str, stream_url: &str, refuse: Option<u16>) -> Webhook {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/voice", listener.local_addr().expect("addr"));
    let creds = Credentials::from_json(document).expect("document");
    let minted = Arc::new(Mutex::new(Vec::new()));
    let (hook_url, stream_url, record) = (url.clone(), stream_url.to_owned(), minted.clone());
    std::thread::spawn(move || {
        let mut issued: std::collections::HashMap<String, String> = Default::default();
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            let (headers, body) = read_request(&mut conn);
            let answer = |status: u16, body: &str| {
                format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: text/xml\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                )
            };
            let response = match refuse {
                Some(status) => answer(status, ""),
                None => {
                    let signature = header(&headers, "x-twilio-signature");
                    let form = WebhookForm::parse(&body).expect("form");
                    let checked = precheck_webhook(
                        &form,
                        signature.as_deref(),
                        stream_gate_domain::Presented::Absent,
                    )
                    .and_then(|claim| {
                        verify_webhook(&creds, &form, &claim, &webhook_urls(&hook_url))
                            .map(|call| (claim.account(), call))
                    });
                    match checked {
                        Ok((account, call)) => {
                            let token =
                                issued.entry(call.as_str().to_owned()).or_insert_with(|| {
                                    let now = stream_gate_lambda::clock::unix_now();
                                    let token = mint_call_token(&creds, &account, &call, now, 300)
                                        .expect("keys");
                                    record.lock().expect("lock").push(token.expose().to_owned());
                                    token.expose().to_owned()
                                });
                            answer(200, &twiml(&stream_url, &[("token", token.as_str())]))
                        }
                        Err(_) => answer(403, ""),
                    }
                }
            };
            let _ = conn.write_all(response.as_bytes());
        }
    });
    Webhook { url, minted }
}

/// The value of header `name` (case-insensitive name) in a header block.
fn header(headers: &str, name: &str) -> Option<String> {
    headers.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().to_owned())
    })
}

/// Reads one HTTP request: (header block, body).
fn read_request(conn: &mut std::net::TcpStream) -> (String, Vec<u8>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = conn.read(&mut chunk).expect("read");
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let headers = String::from_utf8_lossy(&buf[..end]).into_owned();
            let len: usize = header(&headers, "content-length")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            let mut body = buf[end + 4..].to_vec();
            while body.len() < len {
                let n = conn.read(&mut chunk).expect("read body");
                if n == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..n]);
            }
            return (headers, body);
        }
        if n == 0 {
            return (String::from_utf8_lossy(&buf).into_owned(), Vec::new());
        }
    }
}

#[test]
fn the_call_token_and_the_signed_url_come_from_the_webhooks_twiml() {
    let s = Scratch::new("webhook");
    // The gate verifies the TwiML's public URL; verify connects to the loopback URL and, as
    // Twilio, signs the URL of the TwiML.
    let public = "wss://gate.example.test/dev";
    let gate = local(&s, &["--public-url", public], &[]);
    let hook = webhook(s.doc.expose(), public, None);
    let (code, out) = verify(
        &s,
        &gate.url,
        &["--auth-mode", "either", "--webhook-url", &hook.url],
    );
    assert_eq!(code, 0, "{out}");
    assert!(ok(&out, "voice-webhook"), "{out}");
    assert!(
        row(&out, "voice-webhook").contains("HTTP 200, TwiML with a token"),
        "{out}"
    );
    assert!(
        out.contains(&format!("handshakes signed over {public}")),
        "{out}"
    );
    let minted = hook.minted.lock().expect("lock").clone();
    assert_eq!(
        minted.len(),
        2,
        "one token for the legitimate call, one for the replayed call"
    );
    assert!(ok(&out, "replay-webhook"), "{out}");
    for token in &minted {
        assert!(!out.contains(token), "a call token is never printed");
    }
}

#[test]
fn the_legitimate_call_uses_the_webhooks_token_not_one_of_its_own() {
    // The webhook (and the gate) hold a call-token key that verify's document does not: a token
    // minted by verify itself would be refused, the webhook's is accepted.
    let s = Scratch::new("webhook-key");
    let mut gate_doc: Value = serde_json::from_str(s.doc.expose()).expect("json");
    gate_doc["callTokenKeys"] = serde_json::json!(["AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"]);
    let gate_doc = gate_doc.to_string();
    let gate_creds = s.dir.join("gate.json");
    std::fs::write(&gate_creds, &gate_doc).expect("gate doc");
    let gate = local_on(&s, &gate_creds, &[], &[]);
    let hook = webhook(&gate_doc, &gate.url, None);
    let (_, out) = verify(&s, &gate.url, &["--webhook-url", &hook.url]);
    assert!(ok(&out, "voice-webhook"), "{out}");
    assert!(ok(&out, "legit-call"), "{out}");
    // Without the webhook verify mints its own token: the gate closes the call, and says why.
    let (code, out) = verify(&s, &gate.url, &[]);
    assert_eq!(code, 1, "{out}");
    assert!(!ok(&out, "legit-call"), "{out}");
    assert!(
        out.contains("the gate closed the legitimate call (reason call_token_invalid)"),
        "{out}"
    );
}

#[test]
fn a_webhook_without_twiml_is_reported_with_its_status() {
    let s = Scratch::new("webhook-403");
    let gate = local(&s, &[], &[]);
    let hook = webhook(s.doc.expose(), &gate.url, Some(403));
    let (code, out) = verify(&s, &gate.url, &["--webhook-url", &hook.url]);
    assert_eq!(code, 1, "{out}");
    assert!(
        row(&out, "voice-webhook").contains("HTTP 403, no TwiML"),
        "{out}"
    );
    assert!(
        out.contains("the voice webhook answered HTTP 403 without TwiML"),
        "{out}"
    );
    // The rest still runs, on a token minted from the document.
    assert!(ok(&out, "legit-call"), "{out}");
    assert!(
        out.contains("note: the webhook gave no call token"),
        "{out}"
    );
}

/// `verify --protocol conversation-relay` against a gateway that admits it: the `…/relay`
/// webhook's TwiML gives the session's call token and the URL to sign, the session and every
/// ConversationRelay attack pass; a `…/voice` URL given instead is diagnosed.
#[test]
fn a_conversation_relay_gateway_passes_every_relay_row() {
    let s = Scratch::new("relay");
    let gate = local(&s, &[], &[]);
    let relay = ["--protocol", "conversation-relay"];
    let (code, out) = verify(&s, &gate.url, &relay);
    assert_eq!(code, 0, "{out}");
    for scenario in stream_gate_devtools::demo::relay_scenario_names() {
        assert!(ok(&out, scenario), "{}\n{out}", row(&out, scenario));
    }
    assert!(
        row(&out, "legit-call").contains("| admitted, 5 frames, not closed "),
        "{out}"
    );
    assert!(
        row(&out, "setup-missing").contains("| setup_missing "),
        "{out}"
    );
    assert!(
        out.contains("all 14 scenarios behaved as expected"),
        "{out}"
    );

    let hook = gate
        .url
        .replace("ws://", "http://")
        .replace("/dev", "/relay");
    let mut with_hook = relay.to_vec();
    with_hook.extend(["--webhook-url", &hook]);
    let (code, out) = verify(&s, &gate.url, &with_hook);
    assert_eq!(code, 0, "{out}");
    assert!(
        row(&out, "relay-webhook").contains("HTTP 200, TwiML with the call's token"),
        "{out}"
    );
    assert!(
        out.contains("all 15 scenarios behaved as expected"),
        "{out}"
    );

    let voice = hook.replace("/relay", "/voice");
    let mut wrong = relay.to_vec();
    wrong.extend(["--webhook-url", &voice]);
    let (code, out) = verify(&s, &gate.url, &wrong);
    assert_eq!(code, 1, "{out}");
    assert!(
        row(&out, "relay-webhook").contains("no <ConversationRelay> TwiML"),
        "{out}"
    );
    assert!(out.contains("(a …/voice URL?)"), "{out}");
}
