//! `stream-gate local` as its own process: it runs on the Lambda functions' variables, and never on
//! throwaway credentials when a deployment's secret is configured.

use std::time::Duration;

use stream_gate_devtools::local::devcreds;

/// `stream-gate local` as its own process; killed on drop.
struct LocalProcess {
    child: std::process::Child,
    banner: String,
    /// The address it bound (from the banner's WebSocket URL), empty when it did not start.
    addr: String,
}

impl Drop for LocalProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The gate's variables, removed from every child so the developer's environment cannot leak in.
use stream_gate_lambda::config::VARIABLES;

/// Starts `local` on a port of its choosing in `dir` with exactly `env` of the gate's variables;
/// returns once its banner is printed (or the process ended: then `banner` holds what it said).
fn local_process(dir: &std::path::Path, env: &[(&str, &str)]) -> LocalProcess {
    use std::io::BufRead as _;
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_stream-gate"));
    cmd.args(["local", "--listen", "127.0.0.1:0"])
        .current_dir(dir);
    for v in VARIABLES.iter().copied() {
        cmd.env_remove(v);
    }
    let mut child = cmd
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn local");
    let (tx, rx) = std::sync::mpsc::channel();
    for stream in [
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
    ]
    .into_iter()
    .flatten()
    {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stream)
                .lines()
                .map_while(Result::ok)
            {
                let _ = tx.send(line);
            }
        });
    }
    drop(tx);
    let mut banner = String::new();
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(30)) {
        banner.push_str(&line);
        banner.push('\n');
        if line.starts_with("try a simulated call") {
            break;
        }
    }
    let addr = banner
        .lines()
        .find_map(|l| l.split_once("WebSocket:"))
        .and_then(|(_, url)| url.trim().strip_prefix("ws://"))
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_default()
        .to_owned();
    LocalProcess {
        child,
        banner,
        addr,
    }
}

/// A fresh, empty directory for one test to run `local` in.
fn scratch_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("stream-gate-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    dir
}

/// `stream-gate sim` against `ws://{addr}/dev` with the credentials `creds`, signed over `signed`.
fn sim(addr: &str, creds: &str, signed: &str, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_stream-gate"))
        .args(["sim", &format!("ws://{addr}/dev")])
        .args(args)
        .args(["--credentials", creds, "--signed-url", signed])
        .output()
        .expect("sim")
}

#[test]
fn local_runs_on_the_lambda_variables() {
    let dir = scratch_dir("local-env");
    let creds = dir.join("configured").join("credentials.json");
    devcreds::write_private(&creds, &devcreds::generate()).expect("creds");
    let creds_s = creds.to_string_lossy().into_owned();
    let public = "wss://gate.example.test/prod";
    let local = local_process(
        &dir,
        &[
            ("STREAM_GATE_SECRET_FILE", &creds_s),
            ("STREAM_GATE_PUBLIC_URL", public),
            ("STREAM_GATE_AUTH_MODE", "signature"),
            ("STREAM_GATE_CALL_TOKEN", "optional"),
        ],
    );
    let b = &local.banner;
    let addr = local.addr.clone();
    assert!(
        addr.starts_with("127.0.0.1:") && !addr.ends_with(":0"),
        "{b}"
    );
    assert!(b.contains(&format!("URL Twilio signs {public}\n")), "{b}");
    // The webhook is served on the gateway's port and verifies the public host's /voice.
    assert!(
        b.contains(&format!(
            "voice webhook:   POST http://{addr}/voice (signatures over https://gate.example.test/voice)\n"
        )),
        "{b}"
    );
    assert!(b.contains("call state:      memory\n"), "{b}");
    assert!(b.contains(&format!("credentials:     {creds_s}\n")), "{b}");
    assert!(b.contains("from environment STREAM_GATE_SECRET_FILE, STREAM_GATE_PUBLIC_URL, STREAM_GATE_AUTH_MODE, STREAM_GATE_CALL_TOKEN"), "{b}");
    assert!(
        !dir.join(devcreds::STATE_DIR).exists(),
        "no development credentials were created"
    );
    // The gate verifies signatures over the configured public URL: a call signed over it is
    // admitted and streams to the end; one signed over the loopback URL is refused.
    let ok = sim(&addr, &creds_s, public, &["--fast", "--frames", "5"]);
    let out = String::from_utf8_lossy(&ok.stdout);
    assert!(ok.status.success(), "{out}");
    assert!(out.contains("handshake admitted: true"), "{out}");
    let loopback = format!("ws://{addr}/dev");
    let refused = sim(&addr, &creds_s, &loopback, &["--fast", "--frames", "5"]);
    let out = String::from_utf8_lossy(&refused.stdout);
    assert!(out.contains("refused with HTTP 403"), "{out}");
    // The webhook, posted locally and signed over the public URL as behind a tunnel, replayed.
    let replay = sim(&addr, &creds_s, public, &["--attack", "replay-webhook"]);
    let out = String::from_utf8_lossy(&replay.stdout);
    assert!(replay.status.success(), "{out}");
    assert!(out.contains("call tokens:        the same"), "{out}");
    drop(local);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn local_never_runs_on_throwaway_credentials() {
    // A deployment's Secrets Manager id is not silently replaced by development credentials.
    let dir = scratch_dir("local-secret-id");
    let local = local_process(
        &dir,
        &[(
            "STREAM_GATE_SECRET_ID",
            "arn:aws:secretsmanager:us-east-1:1:secret:x",
        )],
    );
    assert!(
        local.banner.contains("STREAM_GATE_SECRET_ID is set"),
        "{}",
        local.banner
    );
    assert!(!local.banner.contains("arn:aws"), "{}", local.banner);
    assert!(!dir.join(devcreds::STATE_DIR).exists());
    drop(local);
    let _ = std::fs::remove_dir_all(&dir);
}
