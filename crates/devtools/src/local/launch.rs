//! `stream-gate local` from its flags to a running gateway: the settings resolved, the credentials
//! document found (or the development one created), the gateway started, its banner printed, and
//! the gateway shut down when the caller says so (Ctrl-C on the command line).

use std::future::Future;
use std::path::{Path, PathBuf};

use super::settings::{Flags, Settings};
use super::{devcreds, Gateway, GatewayOptions};
use crate::domain::Secret;
use crate::sim::identity::fresh_call_sid;
use crate::sim::Identity;
use stream_gate_lambda::adapters::{FileSource, SinkTarget};
use stream_gate_lambda::config::CallStateMode;

/// Everything `local` needs before it listens: checked, resolved and read.
pub struct Prepared {
    flags: Flags,
    settings: Settings,
    /// The credentials document's path.
    path: PathBuf,
    /// The document's first account (for the banner's TwiML).
    identity: Identity,
}

/// Checks the flags, resolves them over `env`, and reads the credentials document: the one
/// configured, else the development one in the current directory (created, with a line saying
/// so, when absent). The error is the message to print.
pub fn prepare(flags: Flags, env: impl Fn(&str) -> Option<String>) -> Result<Prepared, String> {
    if !flags.listen.ip().is_loopback() {
        return Err(
            "the local gateway listens on loopback only; put a tunnel in front of it".into(),
        );
    }
    let settings = Settings::resolve(&flags, env)?;
    let path = match &settings.credentials {
        Some(p) => p.clone(),
        None => development_credentials()?,
    };
    let document = std::fs::read_to_string(&path)
        .map(Secret::new)
        .map_err(|e| format!("cannot read {}: {}", path.display(), e.kind()))?;
    let identity = Identity::from_document(document.expose(), 0).map_err(|e| e.to_string())?;
    Ok(Prepared {
        flags,
        settings,
        path,
        identity,
    })
}

/// The development credentials of the current directory, created when absent.
fn development_credentials() -> Result<PathBuf, String> {
    let (path, created) = std::env::current_dir()
        .and_then(|d| devcreds::ensure(&d))
        .map_err(|e| format!("cannot create development credentials: {}", e.kind()))?;
    if created {
        println!(
            "created development credentials {} (mode 0600)",
            path.display()
        );
    }
    Ok(path)
}

/// Starts the gateway, prints its banner, logs as the functions do, and runs until `shutdown`
/// completes.
pub async fn serve(prepared: Prepared, shutdown: impl Future<Output = ()>) -> Result<(), String> {
    let Prepared {
        flags,
        settings,
        path,
        identity,
    } = prepared;
    let gateway = Gateway::start(GatewayOptions {
        listen: flags.listen,
        stage: flags.stage.clone(),
        public_url: settings.public_url.clone(),
        source: Box::new(FileSource::new(path.clone())),
        auth_mode: settings.auth_mode,
        call_token: settings.call_token,
        management_endpoint: settings.management_endpoint.clone(),
        call_state: settings.call_state.clone(),
        sink: settings.sink.clone(),
        webhook_url: settings.webhook_url.clone(),
    })
    .await
    .map_err(|e| format!("cannot listen on {}: {}", flags.listen, e.kind()))?;
    print_banner(&gateway, &identity, &path, &settings);
    stream_gate_lambda::logging::init_logging();
    shutdown.await;
    gateway.shutdown().await;
    Ok(())
}

/// What the gateway is, what it runs with, and how to call it: printed once it listens.
fn print_banner(gateway: &Gateway, identity: &Identity, path: &Path, settings: &Settings) {
    println!("stream-gate local gateway (API Gateway stand-in, loopback only)");
    println!("  WebSocket:       {}", gateway.ws_url());
    println!("  URL Twilio signs {}", gateway.public_url());
    println!("  Management API:  http://{}/{{stage}}/@connections/{{id}} (SigV4 header required, not verified)", gateway.addr());
    println!(
        "  voice webhook:   POST {} (signatures over {})",
        gateway.local_webhook_url(),
        gateway.webhook_url()
    );
    print_settings(gateway, settings);
    println!("  credentials:     {}", path.display());
    println!("  account:         {}", identity.account);
    println!();
    print_try_it(gateway, identity, path);
}

/// The banner's call state, sink, variables and close endpoint.
fn print_settings(gateway: &Gateway, settings: &Settings) {
    let state = match gateway.call_state() {
        CallStateMode::Off => "off (stateless: media before start, reused call tokens and replayed webhooks are not stopped)".to_owned(),
        CallStateMode::Memory => "memory".to_owned(),
        CallStateMode::DynamoDb { table } => format!("dynamodb, table {table}"),
    };
    println!("  call state:      {state}");
    match &settings.sink {
        SinkTarget::None => println!("  sink:            none (gate only; --sink http://127.0.0.1:PORT/records for `stream-gate echo`)"),
        SinkTarget::Http(uri) => println!("  sink:            POST {uri} (every record of a verified call)"),
        SinkTarget::File(path) => println!("  sink:            file {} (JSON lines)", path.display()),
        SinkTarget::Kinesis(_) => println!("  sink:            kinesis (with the gateway's dummy credentials: a local endpoint only)"),
    }
    if !settings.from_env.is_empty() {
        println!("  from environment {}", settings.from_env.join(", "));
    }
    if let Some(endpoint) = &settings.management_endpoint {
        println!(
            "  router closes:   DeleteConnection to {endpoint} (STREAM_GATE_MANAGEMENT_ENDPOINT)"
        );
    }
}

/// The banner's TwiML (with a call token minted for a fresh call) and simulator commands.
fn print_try_it(gateway: &Gateway, identity: &Identity, path: &Path) {
    let call = fresh_call_sid();
    let token = identity.call_token(&call, stream_gate_lambda::clock::unix_now(), 3600);
    println!("TwiML for a Twilio number (the call token below is minted for {call}; a real call");
    println!(
        "has its own CallSid: set the number's voice webhook to {} instead, which answers",
        gateway.webhook_url()
    );
    println!("this TwiML with a token for each call, or run --call-token off):");
    println!(
        "  <Response><Connect><Stream url=\"{}\"><Parameter name=\"token\" value=\"{}\"/></Stream></Connect></Response>",
        gateway.public_url(),
        token.as_ref().map_or("<no callTokenKeys>", |t| t.expose())
    );
    println!();
    println!("try a simulated call:");
    println!(
        "  stream-gate sim {} --credentials {}",
        gateway.ws_url(),
        path.display()
    );
    println!(
        "  stream-gate sim {} --credentials {} --attack all --fast",
        gateway.ws_url(),
        path.display()
    );
    println!();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(listen: [u8; 4]) -> Flags {
        Flags {
            listen: (listen, 8080).into(),
            stage: "dev".into(),
            public_url: None,
            credentials: None,
            auth_mode: None,
            call_token: None,
            sink: None,
            call_state: None,
            webhook_url: None,
        }
    }

    #[test]
    fn only_loopback_is_listened_on() {
        let e = prepare(flags([0, 0, 0, 0]), |_| None).err();
        assert_eq!(
            e.as_deref(),
            Some("the local gateway listens on loopback only; put a tunnel in front of it")
        );
    }

    #[test]
    fn a_bad_setting_or_an_unreadable_document_is_the_message() {
        let mut f = flags([127, 0, 0, 1]);
        f.auth_mode = Some("all".into());
        let e = prepare(f, |_| None).err().unwrap_or_default();
        assert!(e.starts_with("--auth-mode: "), "{e}");
        let mut f = flags([127, 0, 0, 1]);
        f.credentials = Some("/nonexistent/stream-gate/credentials.json".into());
        let e = prepare(f, |_| None).err().unwrap_or_default();
        assert_eq!(
            e,
            "cannot read /nonexistent/stream-gate/credentials.json: entity not found"
        );
    }

    #[test]
    fn the_configured_document_is_read_and_its_first_account_places_the_banners_call() {
        let dir = std::env::temp_dir().join(format!(
            "stream-gate-launch-{}-{}",
            std::process::id(),
            crate::random::alphanumeric(8)
        ));
        let path = dir.join("credentials.json");
        let document = devcreds::generate();
        devcreds::write_private(&path, &document).expect("write");
        let mut f = flags([127, 0, 0, 1]);
        f.credentials = Some(path.clone());
        let prepared = prepare(f, |_| None);
        let _ = std::fs::remove_dir_all(&dir);
        let prepared = prepared.expect("prepared");
        assert_eq!(prepared.path, path);
        let first = Identity::from_document(document.expose(), 0).expect("account 0");
        assert_eq!(prepared.identity.account, first.account);
    }
}
