//! The example application end to end through real processes, as the docs' three terminals run
//! it: `stream-gate echo --listen 127.0.0.1:0`, `stream-gate local --listen 127.0.0.1:0 --sink
//! http://<echo>/records`, then `stream-gate sim --wav in.wav --record out.wav`: the audio the
//! simulator hears back is the audio it sent, byte for byte, in order. Every process picks its own
//! port and announces it, so no test races another for a free port.

use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use stream_gate_devtools::local::devcreds;
use stream_gate_devtools::sim::audio;

const BIN: &str = env!("CARGO_BIN_EXE_stream-gate");

/// The gate's variables, removed from every child so the developer's environment cannot leak in.
use stream_gate_lambda::config::VARIABLES;

/// A child process of this test, killed on drop, with its output lines on a channel.
struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Running {
    fn spawn(args: &[&str], dir: &std::path::Path) -> Running {
        let mut cmd = Command::new(BIN);
        cmd.args(args).current_dir(dir);
        for v in VARIABLES.iter().copied() {
            cmd.env_remove(v);
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Running { child, lines }
    }

    /// Reads lines until one satisfies `want` (within `timeout`); returns it.
    fn until(&self, timeout: Duration, want: impl Fn(&str) -> bool) -> String {
        let deadline = std::time::Instant::now() + timeout;
        let mut seen = String::new();
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if want(&line) => return line,
                Ok(line) => {
                    seen.push_str(&line);
                    seen.push('\n');
                }
                Err(_) => panic!("no such line within {timeout:?}; saw:\n{seen}"),
            }
        }
    }
}

/// The word after `label` on a banner line.
fn after(line: &str, label: &str) -> String {
    line.split_once(label)
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("{label} not in {line:?}"))
        .to_owned()
}

/// A 16-bit PCM WAV at 8 kHz: a rising sweep, so that no two 20 ms frames are alike and any
/// reordering shows.
fn sweep_wav(seconds: f64) -> Vec<u8> {
    let n = (8000.0 * seconds) as usize;
    let samples: Vec<i16> = (0..n)
        .map(|i| {
            let t = i as f64 / 8000.0;
            let hz = 200.0 + 1500.0 * t;
            ((2.0 * std::f64::consts::PI * hz * t).sin() * 9000.0) as i16
        })
        .collect();
    let data: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
    let mut v = b"RIFF".to_vec();
    v.extend((36 + data.len() as u32).to_le_bytes());
    v.extend(b"WAVEfmt ");
    v.extend(16u32.to_le_bytes());
    v.extend(1u16.to_le_bytes());
    v.extend(1u16.to_le_bytes());
    v.extend(8000u32.to_le_bytes());
    v.extend(16_000u32.to_le_bytes());
    v.extend(2u16.to_le_bytes());
    v.extend(16u16.to_le_bytes());
    v.extend(b"data");
    v.extend((data.len() as u32).to_le_bytes());
    v.extend(data);
    v
}

/// The `data` chunk of a mu-law WAV as `sim --record` writes it, after checking its header.
fn recorded_audio(wav: &[u8]) -> Vec<u8> {
    let u32at = |i: usize| u32::from_le_bytes([wav[i], wav[i + 1], wav[i + 2], wav[i + 3]]);
    let u16at = |i: usize| u16::from_le_bytes([wav[i], wav[i + 1]]);
    assert_eq!(&wav[..4], b"RIFF");
    assert_eq!(u32at(4) as usize, wav.len() - 8, "RIFF size");
    assert_eq!(&wav[8..16], b"WAVEfmt ");
    // mu-law (7), mono, 8000 Hz, 8000 bytes/s, block 1, 8 bits.
    assert_eq!(
        (
            u16at(20),
            u16at(22),
            u32at(24),
            u32at(28),
            u16at(32),
            u16at(34)
        ),
        (7, 1, 8000, 8000, 1, 8)
    );
    assert_eq!(&wav[50..54], b"data");
    let len = u32at(54) as usize;
    assert_eq!(u32at(46) as usize, len, "fact: samples");
    wav[58..58 + len].to_vec()
}

struct Dir(PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Terminal 1: the application (`stream-gate echo`), and the sink URL its banner names.
fn start_echo(dir: &Path) -> (Running, String) {
    let echo = Running::spawn(&["echo", "--listen", "127.0.0.1:0"], dir);
    let sink = after(
        &echo.until(Duration::from_secs(30), |l| l.contains("records:")),
        "POST ",
    );
    assert!(
        sink.starts_with("http://127.0.0.1:") && sink.ends_with("/records"),
        "{sink}"
    );
    assert!(
        !sink.ends_with(":0/records"),
        "the banner names the bound port: {sink}"
    );
    (echo, sink)
}

/// Terminal 2: the gate, delivering to `sink`, and the WebSocket URL its banner names.
fn start_local(dir: &Path, creds: &str, sink: &str) -> (Running, String) {
    let local = Running::spawn(
        &[
            "local",
            "--listen",
            "127.0.0.1:0",
            "--credentials",
            creds,
            "--sink",
            sink,
        ],
        dir,
    );
    let ws = after(
        &local.until(Duration::from_secs(30), |l| l.contains("WebSocket:")),
        "WebSocket:",
    );
    assert!(
        ws.starts_with("ws://127.0.0.1:") && !ws.contains(":0/"),
        "{ws}"
    );
    local.until(Duration::from_secs(10), |l| {
        l.starts_with("try a simulated call")
    });
    (local, ws)
}

/// Terminal 3: `stream-gate sim` plays `input` to `ws` (back to back when `fast`) and records what
/// it hears into `out`; its report must say every frame came back.
fn call(name: &str, ws: &str, creds: &str, input: &Path, out: &Path, fast: bool) {
    let mut args = vec![
        "sim".to_owned(),
        ws.to_owned(),
        "--credentials".into(),
        creds.to_owned(),
        "--wav".into(),
        input.to_string_lossy().into_owned(),
        "--record".into(),
        out.to_string_lossy().into_owned(),
    ];
    if fast {
        args.push("--fast".into());
    }
    let dir = input
        .parent()
        .expect("the input is in the scratch directory");
    let run = Command::new(BIN)
        .args(&args)
        .current_dir(dir)
        .output()
        .expect("run sim");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "{name}: {stdout}");
    assert!(
        stdout.contains("50 of 50 frames echoed back, in order"),
        "{name}: {stdout}"
    );
    assert!(stdout.contains("0 Twilio would refuse"), "{name}: {stdout}");
}

#[test]
fn the_caller_hears_exactly_what_they_said_through_local_and_echo() {
    let dir =
        Dir(std::env::temp_dir().join(format!("stream-gate-echo-local-{}", std::process::id())));
    let _ = std::fs::remove_dir_all(&dir.0);
    let creds = dir.0.join("credentials.json");
    devcreds::write_private(&creds, &devcreds::generate()).expect("credentials");
    let creds = creds.to_string_lossy().into_owned();
    let (echo, sink) = start_echo(&dir.0);
    let (_local, ws) = start_local(&dir.0, &creds, &sink);

    // A call, paced as Twilio sends it, then one back to back (the gateway then judges up to 8
    // frames of the call at once, so records reach the echo out of order).
    let input = dir.0.join("in.wav");
    std::fs::write(&input, sweep_wav(1.0)).expect("write wav");
    let sent: Vec<u8> = audio::wav_to_frames(&sweep_wav(1.0))
        .expect("frames")
        .concat();
    assert_eq!(sent.len(), 50 * audio::FRAME_BYTES);
    for (name, fast) in [("paced", false), ("fast", true)] {
        let out = dir.0.join(format!("out-{name}.wav"));
        call(name, &ws, &creds, &input, &out, fast);
        let heard = recorded_audio(&std::fs::read(&out).expect("recording"));
        assert_eq!(heard.len(), sent.len(), "{name}: length");
        assert!(
            heard == sent,
            "{name}: the recorded audio differs from the audio sent"
        );
        // The echo's summary of the call, at its disconnect record.
        let summary = echo.until(Duration::from_secs(10), |l| l.starts_with("echo: call "));
        assert!(
            summary.contains(": 50 frames echoed from 53 records"),
            "{summary}"
        );
    }
}
