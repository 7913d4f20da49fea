//! `stream-gate local`: runs the development gateway until Ctrl-C.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use stream_gate_devtools::local::{devcreds, Gateway, GatewayOptions};
use stream_gate_devtools::sim::identity::fresh_call_sid;
use stream_gate_devtools::sim::Identity;
use stream_gate_domain::{AuthMode, CallTokenPolicy};
use stream_gate_lambda::adapters::{FileSource, SinkTarget};
use stream_gate_lambda::config::{
    AuthorizerConfig, CallStateMode, ConfigError, RouterConfig, SecretLocation, WebhookConfig,
};

/// Options of `stream-gate local`. Unset options fall back on the Lambda functions' variables
/// (`STREAM_GATE_SECRET_FILE`, `STREAM_GATE_PUBLIC_URL`, `STREAM_GATE_AUTH_MODE`,
/// `STREAM_GATE_CALL_TOKEN`, `STREAM_GATE_CALL_STATE`, `STREAM_GATE_WEBHOOK_URL`,
/// `STREAM_GATE_MANAGEMENT_ENDPOINT`); a flag wins over its variable.
#[derive(Args, Debug)]
pub struct LocalArgs {
    /// Loopback address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Stage: the WebSocket endpoint is `/{stage}`.
    #[arg(long, default_value = "dev")]
    pub stage: String,
    /// The exact URL in the TwiML, as Twilio signs it (e.g. `wss://abcd.ngrok.app/dev` behind a
    /// tunnel). Default `STREAM_GATE_PUBLIC_URL`, else `ws://{listen}/{stage}`.
    #[arg(long)]
    pub public_url: Option<String>,
    /// Credentials document; default `STREAM_GATE_SECRET_FILE`, else
    /// `.stream-gate/dev-credentials.json` (created when absent).
    #[arg(long)]
    pub credentials: Option<PathBuf>,
    /// `signature`, `token`, `either` or `both` [default: `STREAM_GATE_AUTH_MODE`, else either].
    #[arg(long)]
    pub auth_mode: Option<String>,
    /// `required`, `optional` or `off` [default: `STREAM_GATE_CALL_TOKEN`, else required].
    #[arg(long)]
    pub call_token: Option<String>,
    /// Where accepted frames of verified calls are delivered: `http://127.0.0.1:PORT/PATH` (each
    /// record POSTed as JSON), `file:PATH` (JSON lines) or `none` [default: `STREAM_GATE_SINK`,
    /// else none]. Records: docs/records.md.
    #[arg(long)]
    pub sink: Option<String>,
    /// Per-connection call state: `memory` or `off` (or `dynamodb` with `STREAM_GATE_CALL_TABLE`)
    /// [default: `STREAM_GATE_CALL_STATE`, else memory].
    #[arg(long)]
    pub call_state: Option<String>,
    /// The URL Twilio posts the voice webhook to, as it signs it [default:
    /// `STREAM_GATE_WEBHOOK_URL`, else `http(s)://{host of the public URL}/voice`].
    #[arg(long)]
    pub webhook_url: Option<String>,
}

/// The variables `local` reads (and the flag that overrides each, if any).
const VARIABLES: &[(&str, Option<&str>)] = &[
    ("STREAM_GATE_SECRET_FILE", Some("--credentials")),
    ("STREAM_GATE_SECRET_ID", None),
    ("STREAM_GATE_PUBLIC_URL", Some("--public-url")),
    ("STREAM_GATE_AUTH_MODE", Some("--auth-mode")),
    ("STREAM_GATE_CALL_TOKEN", Some("--call-token")),
    ("STREAM_GATE_MANAGEMENT_ENDPOINT", None),
    ("STREAM_GATE_CALL_STATE", Some("--call-state")),
    ("STREAM_GATE_CALL_TABLE", None),
    ("STREAM_GATE_SINK", Some("--sink")),
    ("STREAM_GATE_WEBHOOK_URL", Some("--webhook-url")),
];

/// What `local` runs with, from its flags over the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The credentials document; `None`: the development one.
    pub credentials: Option<PathBuf>,
    /// The URL Twilio signs; `None`: `ws://{listen}/{stage}`.
    pub public_url: Option<String>,
    /// `$connect` auth mode.
    pub auth_mode: AuthMode,
    /// Call-token policy.
    pub call_token: CallTokenPolicy,
    /// `@connections` endpoint override; `None`: the gateway's own.
    pub management_endpoint: Option<String>,
    /// Where accepted frames of verified calls go (`--sink` / `STREAM_GATE_SINK`).
    pub sink: SinkTarget,
    /// Per-connection call state: `STREAM_GATE_CALL_STATE`, `memory` when unset (the Lambda
    /// binaries refuse to start without it; the local gateway closes the stateless gaps by default).
    pub call_state: CallStateMode,
    /// The URL the voice webhook verifies signatures over; `None`: derived from the public URL.
    pub webhook_url: Option<String>,
    /// The variables that were used (set, and not overridden by a flag).
    pub from_env: Vec<&'static str>,
}

impl Settings {
    /// Flags first, then `env` (the process environment in `main`), parsed by the Lambda
    /// functions' own configuration parser (`stream_gate_lambda::config`), so a value the
    /// functions would refuse is refused here too.
    pub fn resolve(args: &LocalArgs, env: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        if let Some(u) = &args.public_url {
            if !u.starts_with("wss://") && !u.starts_with("ws://") {
                return Err("--public-url must start with wss:// or ws://".into());
            }
        }
        let flag = |var: &str| match var {
            "STREAM_GATE_SECRET_FILE" => args
                .credentials
                .as_ref()
                .map(|p| p.to_string_lossy().into_owned()),
            "STREAM_GATE_PUBLIC_URL" => args.public_url.clone(),
            "STREAM_GATE_AUTH_MODE" => args.auth_mode.clone(),
            "STREAM_GATE_CALL_TOKEN" => args.call_token.clone(),
            "STREAM_GATE_SINK" => args.sink.clone(),
            "STREAM_GATE_CALL_STATE" => args.call_state.clone(),
            "STREAM_GATE_WEBHOOK_URL" => args.webhook_url.clone(),
            _ => None,
        };
        let given = |var: &str| flag(var).is_some();
        // Only the variables `local` honours; the others (TTLs, region) keep local defaults.
        let given_or_set = |var: &str| {
            flag(var).or_else(|| {
                VARIABLES
                    .iter()
                    .any(|(v, _)| *v == var)
                    .then(|| env(var))
                    .flatten()
                    .filter(|v| !v.trim().is_empty())
            })
        };
        // The functions require STREAM_GATE_CALL_STATE; the local gateway's default is `memory`,
        // which closes the stateless gaps within its one process.
        // The functions default to `signature` (the template's); the local gateway's documented
        // default is `either`, so the simulator's stream-token calls work too.
        let lookup = |var: &str| {
            given_or_set(var).or_else(|| match var {
                "STREAM_GATE_CALL_STATE" => Some("memory".into()),
                "STREAM_GATE_AUTH_MODE" => Some("either".into()),
                _ => None,
            })
        };
        // A bad value is named by the flag when it came from one, else by the variable.
        let named = |e: ConfigError| {
            let from_flag = VARIABLES
                .iter()
                .find(|(v, _)| *v == e.variable && given(v))
                .and_then(|(_, f)| *f);
            format!("{}: {}", from_flag.unwrap_or(e.variable), e.problem)
        };
        let authorizer = AuthorizerConfig::from_lookup(lookup).map_err(named)?;
        let router = RouterConfig::from_lookup(lookup).map_err(named)?;
        // The webhook's own parser; its stream URL is the gateway's public URL.
        let stream_url = authorizer
            .public_url
            .clone()
            .unwrap_or_else(|| format!("ws://{}/{}", args.listen, args.stage));
        let webhook = WebhookConfig::from_lookup(|var| match var {
            "STREAM_GATE_STREAM_URL" => Some(stream_url.clone()),
            other => lookup(other),
        })
        .map_err(named)?;
        let credentials = match authorizer.credentials.secret {
            SecretLocation::File(path) => Some(path),
            SecretLocation::None => None,
            // Never fall back on throwaway credentials when a deployment's secret is configured.
            SecretLocation::SecretsManager(_) => {
                return Err(
                    "STREAM_GATE_SECRET_ID is set, but the local gateway reads its \
                     credentials from a file only: pass --credentials FILE or set \
                     STREAM_GATE_SECRET_FILE (or unset STREAM_GATE_SECRET_ID to use development \
                     credentials)"
                        .into(),
                )
            }
        };
        let from_env = VARIABLES
            .iter()
            .map(|(v, _)| *v)
            .filter(|v| !given(v) && env(v).is_some_and(|x| !x.trim().is_empty()))
            .collect();
        Ok(Self {
            from_env,
            credentials,
            public_url: authorizer.public_url,
            auth_mode: authorizer.auth_mode,
            call_token: router.call_token,
            management_endpoint: router.management_endpoint,
            sink: router.sink,
            webhook_url: webhook.webhook_url,
            call_state: router.call_state,
        })
    }
}

fn fail(message: &str) -> ExitCode {
    eprintln!("stream-gate local: {message}");
    ExitCode::from(2)
}

/// Runs the gateway.
pub fn main(args: LocalArgs) -> ExitCode {
    if !args.listen.ip().is_loopback() {
        return fail("the local gateway listens on loopback only; put a tunnel in front of it");
    }
    let settings = match Settings::resolve(&args, |k| std::env::var(k).ok()) {
        Ok(s) => s,
        Err(e) => return fail(&e),
    };
    let path = match &settings.credentials {
        Some(p) => p.clone(),
        None => match std::env::current_dir().and_then(|d| devcreds::ensure(&d)) {
            Ok((p, created)) => {
                if created {
                    println!(
                        "created development credentials {} (mode 0600)",
                        p.display()
                    );
                }
                p
            }
            Err(e) => {
                return fail(&format!(
                    "cannot create development credentials: {}",
                    e.kind()
                ))
            }
        },
    };
    let document = match std::fs::read_to_string(&path) {
        Ok(d) => stream_gate_domain::Secret::new(d),
        Err(e) => return fail(&format!("cannot read {}: {}", path.display(), e.kind())),
    };
    let identity = match Identity::from_document(document.expose(), 0) {
        Ok(i) => i,
        Err(e) => return fail(&e.to_string()),
    };
    let rt = match super::runtime() {
        Ok(rt) => rt,
        Err(e) => return fail(&e),
    };
    rt.block_on(async move {
        let gateway = match Gateway::start(GatewayOptions {
            listen: args.listen,
            stage: args.stage.clone(),
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
        {
            Ok(g) => g,
            Err(e) => return fail(&format!("cannot listen on {}: {}", args.listen, e.kind())),
        };
        print_banner(&gateway, &identity, &path, &settings);
        stream_gate_lambda::logging::init_logging();
        let _ = tokio::signal::ctrl_c().await;
        gateway.shutdown().await;
        ExitCode::SUCCESS
    })
}

fn print_banner(
    gateway: &Gateway,
    identity: &Identity,
    path: &std::path::Path,
    settings: &Settings,
) {
    let call = fresh_call_sid();
    let token = identity.call_token(&call, stream_gate_lambda::clock::unix_now(), 3600);
    println!("stream-gate local gateway (API Gateway stand-in, loopback only)");
    println!("  WebSocket:       {}", gateway.ws_url());
    println!("  URL Twilio signs {}", gateway.public_url());
    println!("  Management API:  http://{}/{{stage}}/@connections/{{id}} (SigV4 header required, not verified)", gateway.addr());
    println!(
        "  voice webhook:   POST {} (signatures over {})",
        gateway.local_webhook_url(),
        gateway.webhook_url()
    );
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
    println!("  credentials:     {}", path.display());
    println!("  account:         {}", identity.account);
    println!();
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
    use std::collections::HashMap;

    fn args() -> LocalArgs {
        LocalArgs {
            listen: ([127, 0, 0, 1], 8080).into(),
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

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn defaults_without_flags_or_variables() {
        let s = Settings::resolve(&args(), env(&[])).expect("defaults");
        assert_eq!(
            s,
            Settings {
                credentials: None,
                public_url: None,
                auth_mode: AuthMode::Either,
                call_token: CallTokenPolicy::Required,
                management_endpoint: None,
                call_state: CallStateMode::Memory,
                sink: SinkTarget::None,
                webhook_url: None,
                from_env: vec![],
            }
        );
    }

    #[test]
    fn the_lambda_variables_are_honoured() {
        let s = Settings::resolve(
            &args(),
            env(&[
                ("STREAM_GATE_SECRET_FILE", "/etc/gate/creds.json"),
                ("STREAM_GATE_PUBLIC_URL", "wss://gate.example.com/prod"),
                ("STREAM_GATE_AUTH_MODE", "signature"),
                ("STREAM_GATE_CALL_TOKEN", "off"),
                ("STREAM_GATE_MANAGEMENT_ENDPOINT", "http://127.0.0.1:9/prod"),
                // Not read by `local`: a bad TTL does not stop it.
                ("STREAM_GATE_SECRET_TTL_SECS", "never"),
            ]),
        )
        .expect("valid");
        assert_eq!(s.credentials, Some(PathBuf::from("/etc/gate/creds.json")));
        assert_eq!(s.public_url.as_deref(), Some("wss://gate.example.com/prod"));
        assert_eq!(s.auth_mode, AuthMode::Signature);
        assert_eq!(s.call_token, CallTokenPolicy::Off);
        assert_eq!(
            s.management_endpoint.as_deref(),
            Some("http://127.0.0.1:9/prod")
        );
        assert_eq!(s.from_env.len(), 5);
    }

    #[test]
    fn flags_win_over_variables() {
        let mut a = args();
        a.credentials = Some("mine.json".into());
        a.public_url = Some("wss://abcd.ngrok.app/dev".into());
        a.auth_mode = Some("both".into());
        a.call_token = Some("optional".into());
        a.call_state = Some("off".into());
        a.webhook_url = Some("https://abcd.ngrok.app/voice".into());
        let s = Settings::resolve(
            &a,
            env(&[
                ("STREAM_GATE_SECRET_FILE", "/etc/gate/creds.json"),
                ("STREAM_GATE_PUBLIC_URL", "wss://gate.example.com/prod"),
                ("STREAM_GATE_AUTH_MODE", "signature"),
                ("STREAM_GATE_CALL_TOKEN", "nonsense"),
                ("STREAM_GATE_CALL_STATE", "memory"),
                ("STREAM_GATE_WEBHOOK_URL", "ftp://not-used"),
            ]),
        )
        .expect("flags win");
        assert_eq!(s.call_state, CallStateMode::Off);
        assert_eq!(
            s.webhook_url.as_deref(),
            Some("https://abcd.ngrok.app/voice")
        );
        assert_eq!(s.credentials, Some(PathBuf::from("mine.json")));
        assert_eq!(s.public_url.as_deref(), Some("wss://abcd.ngrok.app/dev"));
        assert_eq!(s.auth_mode, AuthMode::Both);
        assert_eq!(s.call_token, CallTokenPolicy::Optional);
        assert!(s.from_env.is_empty(), "{:?}", s.from_env);
    }

    #[test]
    fn a_secret_id_without_a_file_is_refused_not_replaced_by_development_credentials() {
        let e = Settings::resolve(
            &args(),
            env(&[("STREAM_GATE_SECRET_ID", "arn:aws:secretsmanager:x")]),
        )
        .err()
        .unwrap_or_default();
        assert!(e.contains("STREAM_GATE_SECRET_ID"), "{e}");
        assert!(!e.contains("arn:aws"), "the value is not echoed: {e}");
        // A file (variable or flag) wins over the id, as in the functions.
        let s = Settings::resolve(
            &args(),
            env(&[
                ("STREAM_GATE_SECRET_ID", "arn:aws:secretsmanager:x"),
                ("STREAM_GATE_SECRET_FILE", "c.json"),
            ]),
        )
        .expect("file wins");
        assert_eq!(s.credentials, Some(PathBuf::from("c.json")));
    }

    #[test]
    fn call_state_and_webhook_url_come_from_their_variables() {
        let s = Settings::resolve(
            &args(),
            env(&[
                ("STREAM_GATE_CALL_STATE", "off"),
                ("STREAM_GATE_WEBHOOK_URL", "https://hooks.example.com/voice"),
            ]),
        )
        .expect("valid");
        assert_eq!(s.call_state, CallStateMode::Off);
        assert_eq!(
            s.webhook_url.as_deref(),
            Some("https://hooks.example.com/voice")
        );
        let mut a = args();
        a.webhook_url = Some("wss://x/voice".into());
        let e = Settings::resolve(&a, env(&[]));
        assert!(
            e.as_ref()
                .err()
                .is_some_and(|e| e.starts_with("--webhook-url: ")),
            "{e:?}"
        );
        let mut a = args();
        a.call_state = Some("redis".into());
        let e = Settings::resolve(&a, env(&[]));
        assert!(
            e.as_ref()
                .err()
                .is_some_and(|e| e.starts_with("--call-state: ")),
            "{e:?}"
        );
    }

    #[test]
    fn bad_values_name_their_source() {
        let e = Settings::resolve(&args(), env(&[("STREAM_GATE_AUTH_MODE", "all")]));
        assert!(
            e.as_ref()
                .err()
                .is_some_and(|e| e.starts_with("STREAM_GATE_AUTH_MODE: ")),
            "{e:?}"
        );
        let mut a = args();
        a.auth_mode = Some("all".into());
        let e = Settings::resolve(&a, env(&[]));
        assert!(
            e.as_ref()
                .err()
                .is_some_and(|e| e.starts_with("--auth-mode: ")),
            "{e:?}"
        );
        let e = Settings::resolve(
            &args(),
            env(&[("STREAM_GATE_MANAGEMENT_ENDPOINT", "ftp://x")]),
        );
        assert!(
            e.as_ref()
                .err()
                .is_some_and(|e| e.starts_with("STREAM_GATE_MANAGEMENT_ENDPOINT: ")),
            "{e:?}"
        );
        let mut a = args();
        a.public_url = Some("https://x/dev".into());
        assert_eq!(
            Settings::resolve(&a, env(&[])),
            Err("--public-url must start with wss:// or ws://".into())
        );
        let e = Settings::resolve(&args(), env(&[("STREAM_GATE_PUBLIC_URL", "https://x/dev")]));
        assert!(
            e.as_ref()
                .err()
                .is_some_and(|e| e.starts_with("STREAM_GATE_PUBLIC_URL: ")),
            "{e:?}"
        );
    }
}
