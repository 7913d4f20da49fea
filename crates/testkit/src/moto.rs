//! A moto server (AWS API emulator: the tests use its Secrets Manager and Kinesis) on a free
//! loopback port.

use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

/// A moto server on a free loopback port, killed on drop.
pub struct Moto {
    pub endpoint: String,
    _child: Child,
}

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
    for _ in 0..5 {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("free port");
        let child = Command::new(&exe)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn moto_server");
        let endpoint = format!("http://127.0.0.1:{port}");
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return Moto {
                    endpoint,
                    _child: child,
                };
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    panic!("moto_server did not start");
}
