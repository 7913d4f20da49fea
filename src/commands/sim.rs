//! `stream-gate sim`: one simulated Twilio call (or hostile client) against a URL.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use stream_gate_devtools::demo::{describe, judge};
use stream_gate_devtools::local::devcreds;
use stream_gate_devtools::sim::attacks::{self, Attack, CallSetup, Scenario, ATTACKS};
use stream_gate_devtools::sim::{audio, client, Identity};

/// Options of `stream-gate sim`.
#[derive(Args, Debug)]
pub struct SimArgs {
    /// `ws://` URL to connect to (e.g. `ws://127.0.0.1:8080/dev`).
    pub url: String,
    /// Credentials document holding the account's auth token and call-token key.
    #[arg(long)]
    pub credentials: Option<PathBuf>,
    /// Which account of the document places the call (0 = first).
    #[arg(long, default_value_t = 0)]
    pub account: usize,
    /// The URL to sign, when it differs from the one connected to (the TwiML URL behind a tunnel).
    #[arg(long)]
    pub signed_url: Option<String>,
    /// 16-bit PCM WAV file to stream (converted to 8 kHz mu-law); default a 440 Hz tone.
    #[arg(long)]
    pub wav: Option<PathBuf>,
    /// Frames of generated tone (20 ms each) when no WAV is given.
    #[arg(long, default_value_t = 100)]
    pub frames: usize,
    /// Send media frames back to back instead of every 20 ms.
    #[arg(long)]
    pub fast: bool,
    /// Play a hostile client instead (`all` for every one).
    #[arg(long)]
    pub attack: Option<String>,
}

fn fail(message: &str) -> ExitCode {
    eprintln!("stream-gate sim: {message}");
    ExitCode::from(2)
}

/// Runs the simulator; exit 0 when every scenario behaved as expected (as seen from the socket).
pub fn main(args: SimArgs) -> ExitCode {
    if !args.url.starts_with("ws://") {
        return fail("only ws:// URLs are supported by this build (no TLS client); to test a tunnel, connect to the local ws:// URL and pass --signed-url wss://...");
    }
    let path = args
        .credentials
        .clone()
        .unwrap_or_else(|| devcreds::default_path(std::path::Path::new(".")));
    let document = match std::fs::read_to_string(&path) {
        Ok(d) => stream_gate_domain::Secret::new(d),
        Err(e) => return fail(&format!("cannot read {}: {}", path.display(), e.kind())),
    };
    let me = match Identity::from_document(document.expose(), args.account) {
        Ok(i) => i,
        Err(e) => return fail(&e.to_string()),
    };
    // Another account of the document (for the cross-account attacks), when there is one.
    let other = Identity::from_document(document.expose(), usize::from(args.account == 0)).ok();
    let frames = match &args.wav {
        Some(p) => match std::fs::read(p)
            .map_err(|e| e.kind().to_string())
            .and_then(|b| audio::wav_to_frames(&b).map_err(|e| e.to_string()))
        {
            Ok(f) => f,
            Err(e) => return fail(&format!("{}: {e}", p.display())),
        },
        None => audio::tone(440.0, args.frames),
    };
    let scenarios: Vec<Scenario> = match args.attack.as_deref() {
        None => vec![Scenario::Legit],
        Some("all") => ATTACKS.iter().copied().map(Scenario::Attack).collect(),
        Some(n) => match n.parse::<Attack>() {
            Ok(a) => vec![Scenario::Attack(a)],
            Err(e) => return fail(&e.to_string()),
        },
    };
    let rt = match super::runtime() {
        Ok(rt) => rt,
        Err(e) => return fail(&e),
    };
    let signed_url = args.signed_url.clone().unwrap_or_else(|| args.url.clone());
    let mut all_ok = true;
    for scenario in scenarios {
        let setup = CallSetup {
            url: &args.url,
            signed_url: &signed_url,
            me: &me,
            other: other.as_ref(),
            audio: &frames,
            pacing: if args.fast {
                Duration::ZERO
            } else {
                Duration::from_millis(20)
            },
            linger: Duration::from_millis(1000),
        };
        let expected = scenario.expected();
        let built = match scenario {
            Scenario::Legit => Ok(attacks::legit(&setup)),
            Scenario::Attack(a) => attacks::attack(a, &setup),
        };
        let (handshake, script) = match built {
            Ok(b) => b,
            Err(e) => return fail(&e.to_string()),
        };
        let report = match rt.block_on(client::run(&handshake, script)) {
            Ok(r) => r,
            Err(e) => return fail(&e.to_string()),
        };
        let j = judge(expected, &report, None);
        all_ok &= j.ok;
        println!("{scenario}:");
        println!("  handshake admitted: {}", report.admitted);
        if let Some(s) = report.refused_status {
            println!("  refused with HTTP {s}");
        }
        println!("  frames sent:        {}", report.frames_sent);
        println!("  frames received:    {}", report.frames_received);
        match &report.server_close {
            Some((code, text, at)) => println!(
                "  server closed:      code {code}, reason {:?}, after {} ms",
                text,
                at.as_millis()
            ),
            None if report.admitted => {
                println!("  server closed:      no (client closed after its script)")
            }
            None => {}
        }
        println!("  expected:           {}", describe(expected));
        println!(
            "  observed:           {} (reason {}, {} ms) -> {}",
            j.observed,
            j.reason,
            j.time_ms,
            if j.ok {
                "as expected"
            } else {
                "NOT as expected"
            }
        );
    }
    if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
