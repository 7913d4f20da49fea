//! `stream-gate sim` from its flags to the console run: the credentials document read, the audio
//! made, the scenarios named, then each one played and judged by the [`ConsoleCourse`].

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::attacks::{attacks_of, Attack, GateState, Scenario, WebhookTarget};
use super::console::ConsoleCourse;
use super::runner::run_course;
use super::{audio, Identity};
use crate::domain::{Protocol, Secret};
use crate::local::devcreds;
use crate::local::webhook_route::webhook_url_for;

/// The flags of `stream-gate sim`, as given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flags {
    /// The `ws://` URL to connect to.
    pub url: String,
    /// `--credentials`.
    pub credentials: Option<PathBuf>,
    /// `--account`: which account of the document places the call.
    pub account: usize,
    /// `--signed-url`.
    pub signed_url: Option<String>,
    /// `--wav`.
    pub wav: Option<PathBuf>,
    /// `--record`.
    pub record: Option<PathBuf>,
    /// `--frames` of generated tone when no WAV is given.
    pub frames: usize,
    /// `--fast`: media frames back to back.
    pub fast: bool,
    /// `--attack`.
    pub attack: Option<String>,
    /// `--protocol` (`media-streams` or `conversation-relay`).
    pub protocol: String,
    /// `--call-state` (`on` or `off`).
    pub call_state: String,
    /// `--webhook-url`.
    pub webhook_url: Option<String>,
    /// `--start-grace-ms`.
    pub start_grace_ms: u64,
}

/// Everything a run needs, read and checked.
pub struct Prepared {
    flags: Flags,
    me: Identity,
    other: Option<Identity>,
    frames: Vec<[u8; audio::FRAME_BYTES]>,
    scenarios: Vec<Scenario>,
    state: GateState,
}

/// The document `sim` reads, in the order `local` reads its own: `--credentials`, else
/// `STREAM_GATE_SECRET_FILE` (`env`), else `.stream-gate/dev-credentials.json`.
pub fn credentials_path(flag: Option<PathBuf>, env: Option<OsString>) -> PathBuf {
    flag.or_else(|| env.filter(|v| !v.is_empty()).map(PathBuf::from))
        .unwrap_or_else(|| devcreds::default_path(Path::new(".")))
}

/// The scenarios `--attack` names for `protocol`: none is the legitimate call (or session), `all`
/// every attack of the protocol.
pub fn scenarios(attack: Option<&str>, protocol: Protocol) -> Result<Vec<Scenario>, String> {
    match attack {
        None => Ok(Scenario::of(protocol).take(1).collect()),
        Some("all") => Ok(attacks_of(protocol)
            .iter()
            .copied()
            .map(Scenario::Attack)
            .collect()),
        Some(n) => Attack::parse_for(protocol, n)
            .map(|a| vec![Scenario::Attack(a)])
            .map_err(|e| e.to_string()),
    }
}

/// Checks the flags and reads what they name; `secret_file` is `STREAM_GATE_SECRET_FILE`. Says on
/// standard error which document places the call: a call signed with another file's tokens is
/// refused, and the refusal alone would not say why. The error is the message to print.
pub fn prepare(flags: Flags, secret_file: Option<OsString>) -> Result<Prepared, String> {
    if !flags.url.starts_with("ws://") {
        return Err("only ws:// URLs are supported by this build (no TLS client); to test a tunnel, connect to the local ws:// URL and pass --signed-url wss://...".into());
    }
    let path = credentials_path(flags.credentials.clone(), secret_file);
    eprintln!("stream-gate sim: credentials from {}", path.display());
    let document = std::fs::read_to_string(&path)
        .map(Secret::new)
        .map_err(|e| format!("cannot read {}: {}", path.display(), e.kind()))?;
    let me =
        Identity::from_document(document.expose(), flags.account).map_err(|e| e.to_string())?;
    // Another account of the document (for the cross-account attacks), when there is one.
    let other = Identity::from_document(document.expose(), usize::from(flags.account == 0)).ok();
    let frames = match &flags.wav {
        Some(p) => std::fs::read(p)
            .map_err(|e| e.kind().to_string())
            .and_then(|b| audio::wav_to_frames(&b).map_err(|e| e.to_string()))
            .map_err(|e| format!("{}: {e}", p.display()))?,
        None => audio::tone(440.0, flags.frames),
    };
    if flags.record.is_some() && flags.attack.is_some() {
        return Err("--record records the legitimate call: leave out --attack".into());
    }
    let protocol: Protocol = flags
        .protocol
        .parse()
        .map_err(|e| format!("--protocol: {e}"))?;
    if flags.record.is_some() && protocol != Protocol::MediaStreams {
        return Err(
            "--record records a Media Streams call's audio: ConversationRelay sends text".into(),
        );
    }
    let scenarios = scenarios(flags.attack.as_deref(), protocol)?;
    let state: GateState = flags
        .call_state
        .parse()
        .map_err(|e| format!("--call-state: {e}"))?;
    Ok(Prepared {
        flags,
        me,
        other,
        frames,
        scenarios,
        state,
    })
}

/// Plays every scenario, printing each; `Ok(true)` when every one behaved as expected (as seen
/// from the socket).
pub async fn run(prepared: Prepared) -> Result<bool, String> {
    let Prepared {
        flags,
        me,
        other,
        frames,
        scenarios,
        state,
    } = prepared;
    let signed_url = flags
        .signed_url
        .clone()
        .unwrap_or_else(|| flags.url.clone());
    let (hook_url, hook_signed) = match &flags.webhook_url {
        Some(u) => (Some(u.clone()), Some(u.clone())),
        None => (webhook_url_for(&flags.url), webhook_url_for(&signed_url)),
    };
    let webhook = match (&hook_url, &hook_signed) {
        (Some(url), Some(signed_url)) => Some(WebhookTarget { url, signed_url }),
        _ => None,
    };
    let mut course = ConsoleCourse {
        url: &flags.url,
        signed_url: &signed_url,
        me: &me,
        other: other.as_ref(),
        audio: &frames,
        pacing: if flags.fast {
            Duration::ZERO
        } else {
            Duration::from_millis(20)
        },
        start_grace: Duration::from_millis(flags.start_grace_ms),
        webhook,
        record: flags.record.as_deref(),
        state,
        all_ok: true,
    };
    run_course(&mut course, scenarios, &me).await?;
    Ok(course.all_ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sim_reads_the_document_local_reads() {
        let flag = Some(PathBuf::from("flag.json"));
        let env = Some(OsString::from("env.json"));
        assert_eq!(
            credentials_path(flag, env.clone()),
            PathBuf::from("flag.json")
        );
        assert_eq!(credentials_path(None, env), PathBuf::from("env.json"));
        let dev = devcreds::default_path(Path::new("."));
        assert_eq!(credentials_path(None, Some("".into())), dev);
        assert_eq!(credentials_path(None, None), dev);
    }

    fn flags(url: &str) -> Flags {
        Flags {
            url: url.into(),
            credentials: None,
            account: 0,
            signed_url: None,
            wav: None,
            record: None,
            frames: 5,
            fast: true,
            attack: None,
            protocol: "media-streams".into(),
            call_state: "on".into(),
            webhook_url: None,
            start_grace_ms: 100,
        }
    }

    #[test]
    fn attack_names_the_scenarios_of_the_protocol() {
        use super::super::attacks::{ATTACKS, RELAY_ATTACKS};
        let (media, relay) = (Protocol::MediaStreams, Protocol::ConversationRelay);
        assert_eq!(scenarios(None, media), Ok(vec![Scenario::Legit]));
        assert_eq!(scenarios(None, relay), Ok(vec![Scenario::RelayLegit]));
        assert_eq!(
            scenarios(Some("all"), media).map(|s| s.len()),
            Ok(ATTACKS.len())
        );
        assert_eq!(
            scenarios(Some("all"), relay).map(|s| s.len()),
            Ok(RELAY_ATTACKS.len())
        );
        assert_eq!(
            scenarios(Some("binary-frame"), media),
            Ok(vec![Scenario::Attack(Attack::BinaryFrame)])
        );
        assert_eq!(
            scenarios(Some("binary-frame"), relay),
            Ok(vec![Scenario::Attack(Attack::RelayBinaryFrame)])
        );
        let e = scenarios(Some("legit-call"), media)
            .err()
            .unwrap_or_default();
        assert!(
            e.starts_with("unknown media-streams attack \"legit-call\""),
            "{e}"
        );
        let e = scenarios(Some("event-flood"), relay)
            .err()
            .unwrap_or_default();
        assert!(
            e.starts_with("unknown conversation-relay attack \"event-flood\"; known: no-signature"),
            "{e}"
        );
    }

    #[test]
    fn unusable_flags_are_refused_with_their_message() {
        let e = prepare(flags("wss://gate.example.test/prod"), None).err();
        assert!(e.is_some_and(|e| e.starts_with("only ws:// URLs")));
        let dir = std::env::temp_dir().join(format!(
            "stream-gate-sim-launch-{}-{}",
            std::process::id(),
            crate::random::alphanumeric(8)
        ));
        let path = dir.join("credentials.json");
        devcreds::write_private(&path, &devcreds::generate()).expect("write");
        let with = |edit: fn(&mut Flags)| {
            let mut f = flags("ws://127.0.0.1:9/dev");
            f.credentials = Some(path.clone());
            edit(&mut f);
            prepare(f, None).err()
        };
        let record_and_attack = with(|f| {
            f.record = Some("out.wav".into());
            f.attack = Some("all".into());
        });
        let bad_state = with(|f| f.call_state = "maybe".into());
        let bad_protocol = with(|f| f.protocol = "sip".into());
        let record_relay = with(|f| {
            f.record = Some("out.wav".into());
            f.protocol = "conversation-relay".into();
        });
        let fine = with(|_| {});
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(
            record_and_attack.as_deref(),
            Some("--record records the legitimate call: leave out --attack")
        );
        assert!(bad_state.is_some_and(|e| e.starts_with("--call-state: ")));
        assert!(bad_protocol.is_some_and(|e| e.starts_with("--protocol: ")));
        assert!(record_relay.is_some_and(|e| e.starts_with("--record records a Media Streams")));
        assert_eq!(fine, None);
    }
}
