//! A moto server (AWS API emulator: the tests use its Secrets Manager, DynamoDB and Kinesis) on a
//! loopback port that moto itself picks.
//!
//! Why `-p 0` and the banner rather than "find a free port, then start moto on it": between the
//! probe closing its socket and moto binding the port, another test's server (or an outgoing
//! connection's source port) can take it, and the readiness probe then reaches someone else's
//! server. A test that later loses that server sees `dispatch_failure` on its first call. moto
//! binding port 0 and printing the port it got leaves no window.

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A moto server on a loopback port, killed on drop.
pub struct Moto {
    pub endpoint: String,
    child: Child,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How long moto may take to print its banner (Python start-up on a loaded 2-core machine).
const START_TIMEOUT: Duration = Duration::from_secs(60);

pub async fn moto() -> Moto {
    let exe = std::env::var("STREAM_GATE_MOTO_SERVER").unwrap_or_else(|_| {
        crate::repo_file(".venv/bin/moto_server")
            .to_string_lossy()
            .into_owned()
    });
    assert!(
        std::path::Path::new(&exe).exists(),
        "moto_server not found at {exe}: run scripts/test (or scripts/setup), which installs the pinned tools into .venv"
    );
    let mut child = Command::new(&exe)
        .args(["-H", "127.0.0.1", "-p", "0"])
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn moto_server");
    let stderr = child.stderr.take().expect("moto stderr");
    let (tx, rx) = tokio::sync::oneshot::channel();
    // One thread reads the banner, then keeps draining: werkzeug logs every request to stderr,
    // and a full pipe would stall the server.
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if let Some(port) = banner_port(&line) {
                if let Some(tx) = tx.take() {
                    let _ = tx.send(port);
                }
            }
        }
    });
    let mut moto = Moto {
        endpoint: String::new(),
        child,
    };
    match tokio::time::timeout(START_TIMEOUT, rx).await {
        Ok(Ok(port)) => {
            moto.endpoint = format!("http://127.0.0.1:{port}");
            moto
        }
        Ok(Err(_)) => panic!("moto_server ended before it printed the port it listens on"),
        Err(_) => panic!("moto_server printed no port within {START_TIMEOUT:?}"),
    }
}

/// The port in werkzeug's ` * Running on http://127.0.0.1:PORT` line.
fn banner_port(line: &str) -> Option<u16> {
    let rest = line.split("Running on http://127.0.0.1:").nth(1)?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok().filter(|p| *p != 0)
}

#[cfg(test)]
mod tests {
    use super::banner_port;

    #[test]
    fn reads_the_port_from_werkzeugs_banner() {
        assert_eq!(
            banner_port(" * Running on http://127.0.0.1:37127"),
            Some(37127)
        );
        assert_eq!(
            banner_port("\u{1b}[33m * Running on http://127.0.0.1:5000\u{1b}[0m"),
            Some(5000)
        );
        assert_eq!(banner_port("Press CTRL+C to quit"), None);
        assert_eq!(banner_port(" * Running on http://127.0.0.1:0"), None);
    }
}
