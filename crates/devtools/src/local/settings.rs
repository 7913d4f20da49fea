//! What `stream-gate local` runs with: its flags over the Lambda functions' variables
//! (`STREAM_GATE_SECRET_FILE`, `STREAM_GATE_PUBLIC_URL`, `STREAM_GATE_AUTH_MODE`,
//! `STREAM_GATE_CALL_TOKEN`, `STREAM_GATE_CALL_STATE`, `STREAM_GATE_WEBHOOK_URL`,
//! `STREAM_GATE_MANAGEMENT_ENDPOINT`, `STREAM_GATE_SINK`), parsed by the functions' own
//! configuration parser (`stream_gate_lambda::config`), so a value the functions would refuse is
//! refused here too. A flag wins over its variable.

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::domain::{AuthMode, CallTokenPolicy};
use stream_gate_lambda::adapters::SinkTarget;
use stream_gate_lambda::config::{
    AuthorizerConfig, CallStateMode, ConfigError, RouterConfig, SecretLocation, WebhookConfig,
};

/// The variables `local` reads (and the flag that overrides each, if any).
pub const VARIABLES: &[(&str, Option<&str>)] = &[
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

/// The flags of `stream-gate local`, as given (`None`: not given).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flags {
    /// `--listen`: the loopback address to listen on.
    pub listen: SocketAddr,
    /// `--stage`: the WebSocket endpoint is `/{stage}`.
    pub stage: String,
    /// `--public-url`: the exact URL in the TwiML, as Twilio signs it.
    pub public_url: Option<String>,
    /// `--credentials`: the credentials document.
    pub credentials: Option<PathBuf>,
    /// `--auth-mode`.
    pub auth_mode: Option<String>,
    /// `--call-token`.
    pub call_token: Option<String>,
    /// `--sink`.
    pub sink: Option<String>,
    /// `--call-state`.
    pub call_state: Option<String>,
    /// `--webhook-url`.
    pub webhook_url: Option<String>,
}

impl Flags {
    /// The flag standing for `var`, when it was given.
    fn for_variable(&self, var: &str) -> Option<String> {
        match var {
            "STREAM_GATE_SECRET_FILE" => self
                .credentials
                .as_ref()
                .map(|p| p.to_string_lossy().into_owned()),
            "STREAM_GATE_PUBLIC_URL" => self.public_url.clone(),
            "STREAM_GATE_AUTH_MODE" => self.auth_mode.clone(),
            "STREAM_GATE_CALL_TOKEN" => self.call_token.clone(),
            "STREAM_GATE_SINK" => self.sink.clone(),
            "STREAM_GATE_CALL_STATE" => self.call_state.clone(),
            "STREAM_GATE_WEBHOOK_URL" => self.webhook_url.clone(),
            _ => None,
        }
    }

    /// Whether the flag standing for `var` was given.
    fn given(&self, var: &str) -> bool {
        self.for_variable(var).is_some()
    }
}

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

/// Where each value comes from: a flag, else a variable `local` honours, else the local default.
struct Sources<'a, E> {
    flags: &'a Flags,
    env: E,
}

impl<E: Fn(&str) -> Option<String>> Sources<'_, E> {
    /// The flag, else the variable when `local` honours it and it is not blank. The other
    /// variables (TTLs, region) keep local defaults.
    fn given_or_set(&self, var: &str) -> Option<String> {
        self.flags.for_variable(var).or_else(|| {
            VARIABLES
                .iter()
                .any(|(v, _)| *v == var)
                .then(|| (self.env)(var))
                .flatten()
                .filter(|v| !v.trim().is_empty())
        })
    }

    /// What the functions' parser reads for `var`. The functions require
    /// STREAM_GATE_CALL_STATE; the local gateway's default is `memory`, which closes the stateless
    /// gaps within its one process. The functions default to `signature` (the template's); the
    /// local gateway's documented default is `either`, so the simulator's stream-token calls work
    /// too.
    fn lookup(&self, var: &str) -> Option<String> {
        self.given_or_set(var).or_else(|| match var {
            "STREAM_GATE_CALL_STATE" => Some("memory".into()),
            "STREAM_GATE_AUTH_MODE" => Some("either".into()),
            _ => None,
        })
    }

    /// A bad value, named by the flag when it came from one, else by the variable.
    fn named(&self, e: ConfigError) -> String {
        let from_flag = VARIABLES
            .iter()
            .find(|(v, _)| *v == e.variable && self.flags.given(v))
            .and_then(|(_, f)| *f);
        format!("{}: {}", from_flag.unwrap_or(e.variable), e.problem)
    }

    /// The variables used: set, and not overridden by a flag.
    fn used_variables(&self) -> Vec<&'static str> {
        VARIABLES
            .iter()
            .map(|(v, _)| *v)
            .filter(|v| !self.flags.given(v) && (self.env)(v).is_some_and(|x| !x.trim().is_empty()))
            .collect()
    }
}

/// The credentials file `local` reads: never throwaway credentials when a deployment's secret is
/// configured.
fn credentials_file(secret: SecretLocation) -> Result<Option<PathBuf>, String> {
    match secret {
        SecretLocation::File(path) => Ok(Some(path)),
        SecretLocation::None => Ok(None),
        SecretLocation::SecretsManager(_) => Err("STREAM_GATE_SECRET_ID is set, but the local \
             gateway reads its credentials from a file only: pass --credentials FILE or set \
             STREAM_GATE_SECRET_FILE (or unset STREAM_GATE_SECRET_ID to use development \
             credentials)"
            .into()),
    }
}

impl Settings {
    /// Flags first, then `env` (the process environment in `stream-gate local`), parsed by the
    /// Lambda functions' own configuration parser.
    pub fn resolve(flags: &Flags, env: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        if let Some(u) = &flags.public_url {
            if !u.starts_with("wss://") && !u.starts_with("ws://") {
                return Err("--public-url must start with wss:// or ws://".into());
            }
        }
        let sources = Sources { flags, env };
        let lookup = |var: &str| sources.lookup(var);
        let named = |e: ConfigError| sources.named(e);
        let authorizer = AuthorizerConfig::from_lookup(lookup).map_err(named)?;
        let router = RouterConfig::from_lookup(lookup).map_err(named)?;
        // The webhook's own parser; its stream URL is the gateway's public URL.
        let stream_url = authorizer
            .public_url
            .clone()
            .unwrap_or_else(|| format!("ws://{}/{}", flags.listen, flags.stage));
        let webhook = WebhookConfig::from_lookup(|var| match var {
            "STREAM_GATE_STREAM_URL" => Some(stream_url.clone()),
            other => lookup(other),
        })
        .map_err(named)?;
        Ok(Self {
            credentials: credentials_file(authorizer.credentials.secret)?,
            from_env: sources.used_variables(),
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn args() -> Flags {
        Flags {
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
