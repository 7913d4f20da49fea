//! Configuration from the environment (docs/design.md §3), parsed in one place: every `STREAM_GATE_*`
//! variable has one parser, one default and one error type naming it. Each binary reads only the
//! struct it needs. A bad value stops the function at init, so a misconfigured deployment refuses
//! everything instead of running on a guess.

use std::path::PathBuf;
use std::time::Duration;

use crate::adapters::SinkTarget;
use crate::domain::relay_twiml::RelayAttributes;
use crate::domain::{AuthMode, CallTokenPolicy, Protocols};

/// The defaults, each in one place.
pub mod defaults {
    /// `STREAM_GATE_SECRET_TTL_SECS`: how long a fetched credentials document is trusted.
    pub const SECRET_TTL_SECS: u64 = 300;
    /// `STREAM_GATE_SECRET_MAX_STALE_SECS`: how long the last good document outlives failing
    /// refreshes (SECURITY.md).
    pub const SECRET_MAX_STALE_SECS: u64 = 3600;
    /// `STREAM_GATE_CALL_TOKEN_TTL_SECS`: the stream starts seconds after the webhook answers.
    pub const CALL_TOKEN_TTL_SECS: u64 = 300;
    /// `STREAM_GATE_START_GRACE_MS`: frames of one connection run concurrently, so the first media
    /// frame may be judged before the start's write lands.
    pub const START_GRACE_MS: u64 = crate::domain::call_state::DEFAULT_START_GRACE_MS;
    /// `STREAM_GATE_ISSUED_RETENTION_DAYS`: how long the voice webhook keeps its record of the
    /// call token it issued for a CallSid, so that a replayed webhook within it gets that token
    /// (expired) and never a fresh one. 400 days: a full calendar year, leap years included, with
    /// a month to spare, for a few hundred bytes per call (docs/deploy.md).
    pub const ISSUED_RETENTION_DAYS: u64 = 400;
}

/// Every `STREAM_GATE_*` variable a binary reads. Tools that start the gate in a child process
/// remove these from its environment, so a developer's shell cannot configure it by accident.
pub const VARIABLES: &[&str] = &[
    "STREAM_GATE_AUTH_MODE",
    "STREAM_GATE_CALL_STATE",
    "STREAM_GATE_CALL_TABLE",
    "STREAM_GATE_CALL_TOKEN",
    "STREAM_GATE_CALL_TOKEN_TTL_SECS",
    "STREAM_GATE_ISSUED_RETENTION_DAYS",
    "STREAM_GATE_MANAGEMENT_ENDPOINT",
    "STREAM_GATE_PROTOCOLS",
    "STREAM_GATE_PUBLIC_URL",
    "STREAM_GATE_RELAY_ATTRIBUTES",
    "STREAM_GATE_SECRET_FILE",
    "STREAM_GATE_SECRET_ID",
    "STREAM_GATE_SECRET_MAX_STALE_SECS",
    "STREAM_GATE_SECRET_TTL_SECS",
    "STREAM_GATE_SINK",
    "STREAM_GATE_START_GRACE_MS",
    "STREAM_GATE_STREAM_URL",
    "STREAM_GATE_WEBHOOK_URL",
];

/// Which adapters a build has, so which values its configuration accepts: the Lambda binaries
/// (`sam build`, `cargo lambda build`) only what runs in AWS; a build with the `dev-adapters`
/// feature (the dev tools, the tests) also the local ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Build {
    /// `STREAM_GATE_SINK` `kinesis:` or `none`; `STREAM_GATE_CALL_STATE` `dynamodb` or `off`.
    Lambda,
    /// Also the sinks `http://` (loopback) and `file:`, and the call state `memory`.
    Dev,
}

impl Build {
    /// This build: [`Build::Dev`] with the `dev-adapters` feature, else [`Build::Lambda`].
    pub const THIS: Build = if cfg!(feature = "dev-adapters") {
        Build::Dev
    } else {
        Build::Lambda
    };
}

/// Why `STREAM_GATE_CALL_STATE=memory` is refused by a Lambda binary's build.
const MEMORY_IN_LAMBDA: &str = "this build has only dynamodb and off: memory is the local \
     gateway's call state (stream-gate local), not in the Lambda binaries";

/// `STREAM_GATE_CALL_STATE` (docs/design.md §5). Required: the binaries refuse to start without it, so
/// the stateless gate is never the result of a forgotten variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallStateMode {
    /// `off`, set explicitly: stateless, with the gaps SECURITY.md lists.
    Off,
    /// `memory`: in-process (the local gateway, tests; `dev-adapters` only).
    #[cfg(feature = "dev-adapters")]
    Memory,
    /// `dynamodb`: the table named by `STREAM_GATE_CALL_TABLE` (the SAM template's default).
    DynamoDb {
        /// The table.
        table: String,
    },
}

/// A variable that is set to something unusable (shared with the `echo` Lambda).
pub use stream_gate_answer::ConfigError;

/// Where the credentials document comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretLocation {
    /// `STREAM_GATE_SECRET_FILE` (wins when set).
    File(PathBuf),
    /// `STREAM_GATE_SECRET_ID`.
    SecretsManager(String),
    /// Neither set: every decision denies.
    None,
}

/// How the credentials document is found and cached (every binary).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialsConfig {
    /// Credentials document location.
    pub secret: SecretLocation,
    /// How long a fetched document is trusted before refresh.
    pub ttl: Duration,
    /// How long the last good document is kept while refreshes fail; past it, deny everything.
    pub max_stale: Duration,
}

/// The `$connect` authorizer's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizerConfig {
    /// Credentials.
    pub credentials: CredentialsConfig,
    /// Which credential `$connect` requires.
    pub auth_mode: AuthMode,
    /// The exact wss URL Twilio signs (custom domains); default `wss://{domainName}/{stage}`.
    pub public_url: Option<String>,
    /// `STREAM_GATE_PROTOCOLS`: which Twilio WebSocket protocols `$connect` admits (default
    /// `media-streams` only).
    pub protocols: Protocols,
}

/// The router's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouterConfig {
    /// Credentials (call-token keys for `start`).
    pub credentials: CredentialsConfig,
    /// Whether `start` needs a per-call token.
    pub call_token: CallTokenPolicy,
    /// `@connections` endpoint override; default derived from the event.
    pub management_endpoint: Option<String>,
    /// `AWS_REGION` (set by Lambda), read once: the execute-api host of a custom-domain event.
    pub region: Option<String>,
    /// Per-connection call state.
    pub call_state: CallStateMode,
    /// How long after `connectedAt` a frame may precede the recorded start (dropped, not closed).
    pub start_grace: Duration,
    /// `STREAM_GATE_SINK`: where every accepted frame of a verified call is delivered.
    pub sink: SinkTarget,
}

/// The voice webhook's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookConfig {
    /// Credentials (auth tokens and call-token keys).
    pub credentials: CredentialsConfig,
    /// `STREAM_GATE_STREAM_URL`: the wss URL put in `<Stream url>` (required).
    pub stream_url: String,
    /// `STREAM_GATE_WEBHOOK_URL`: the exact https URL Twilio posts to; default
    /// `https://{requestContext.domainName}{rawPath}` (never the client-controlled `Host`).
    pub webhook_url: Option<String>,
    /// Call token lifetime.
    pub call_token_ttl: Duration,
    /// Per-call state: a repeated webhook for a CallSid answers the same token.
    pub call_state: CallStateMode,
    /// `STREAM_GATE_ISSUED_RETENTION_DAYS`: how long the record of a CallSid's token is kept;
    /// within it (and until the store deletes it) a replay gets the first token, never a new one.
    pub issued_retention: Duration,
    /// `STREAM_GATE_PROTOCOLS`: a POST to `…/relay` is answered only when it lists
    /// `conversation-relay` (as the authorizer admits its handshakes only then).
    pub protocols: Protocols,
    /// `STREAM_GATE_RELAY_ATTRIBUTES`: the `<ConversationRelay>` attributes of the `/relay` answer,
    /// a JSON object of strings, only Twilio's documented names (default: none).
    pub relay_attributes: RelayAttributes,
    /// `STREAM_GATE_SINK`: where the `session_end` record of a ConversationRelay session goes
    /// (the router's sink: one stream holds a session's records).
    pub sink: SinkTarget,
}

/// Reads variables through a lookup function (the process environment, or a map in tests), as
/// `build` reads them.
struct Env<F> {
    get: F,
    build: Build,
}

impl<F: Fn(&str) -> Option<String>> Env<F> {
    /// A set, non-blank value.
    fn value(&self, var: &str) -> Option<String> {
        (self.get)(var).filter(|v| !v.trim().is_empty())
    }

    fn seconds(&self, var: &'static str, default: u64, max: u64) -> Result<Duration, ConfigError> {
        match self.value(var) {
            None => Ok(Duration::from_secs(default)),
            Some(v) => v
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|n| (1..=max).contains(n))
                .map(Duration::from_secs)
                .ok_or_else(|| ConfigError {
                    variable: var,
                    problem: format!("expected whole seconds from 1 to {max}"),
                }),
        }
    }

    fn days(
        &self,
        var: &'static str,
        default: u64,
        range: std::ops::RangeInclusive<u64>,
    ) -> Result<Duration, ConfigError> {
        let days = match self.value(var) {
            None => default,
            Some(v) => v
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|n| range.contains(n))
                .ok_or_else(|| ConfigError {
                    variable: var,
                    problem: format!(
                        "expected whole days from {} to {}",
                        range.start(),
                        range.end()
                    ),
                })?,
        };
        Ok(Duration::from_secs(days.saturating_mul(86_400)))
    }

    fn parsed<T>(&self, var: &'static str) -> Result<T, ConfigError>
    where
        T: std::str::FromStr<Err = String> + Default,
    {
        match self.value(var) {
            None => Ok(T::default()),
            Some(v) => v.trim().parse().map_err(|problem| ConfigError {
                variable: var,
                problem,
            }),
        }
    }

    fn relay_attributes(&self) -> Result<RelayAttributes, ConfigError> {
        const VAR: &str = "STREAM_GATE_RELAY_ATTRIBUTES";
        match self.value(VAR) {
            None => Ok(RelayAttributes::default()),
            // The error names the attribute, never its value.
            Some(v) => RelayAttributes::parse(&v).map_err(|e| ConfigError {
                variable: VAR,
                problem: e.to_string(),
            }),
        }
    }

    fn sink(&self) -> Result<SinkTarget, ConfigError> {
        const VAR: &str = "STREAM_GATE_SINK";
        match self.value(VAR) {
            None => Ok(SinkTarget::default()),
            Some(v) => SinkTarget::parse_for(v.trim(), self.build).map_err(|problem| ConfigError {
                variable: VAR,
                problem,
            }),
        }
    }

    /// An optional URL that must start with one of `schemes`.
    fn url(
        &self,
        var: &'static str,
        schemes: &[&str],
        expected: &str,
    ) -> Result<Option<String>, ConfigError> {
        match self.value(var) {
            Some(u) if !schemes.iter().any(|s| u.starts_with(s)) => Err(ConfigError {
                variable: var,
                problem: format!("must start with {expected}"),
            }),
            other => Ok(other),
        }
    }

    fn call_state(&self) -> Result<CallStateMode, ConfigError> {
        let table = self.value("STREAM_GATE_CALL_TABLE");
        match self
            .value("STREAM_GATE_CALL_STATE")
            .as_deref()
            .map(str::trim)
        {
            // Unset is not `off`: the weaker choice is never a default (SECURITY.md).
            None => Err(ConfigError {
                variable: "STREAM_GATE_CALL_STATE",
                problem: match self.build {
                    Build::Lambda => "required: dynamodb or off",
                    Build::Dev => "required: dynamodb, memory or off",
                }
                .into(),
            }),
            Some("off") => Ok(CallStateMode::Off),
            Some("memory") => self.memory(),
            Some("dynamodb") => match table {
                Some(table) => Ok(CallStateMode::DynamoDb {
                    table: table.trim().to_owned(),
                }),
                None => Err(ConfigError {
                    variable: "STREAM_GATE_CALL_TABLE",
                    problem: "required when STREAM_GATE_CALL_STATE=dynamodb".into(),
                }),
            },
            Some(_) => Err(ConfigError {
                variable: "STREAM_GATE_CALL_STATE",
                problem: match self.build {
                    Build::Lambda => "expected dynamodb or off",
                    Build::Dev => "expected dynamodb, memory or off",
                }
                .into(),
            }),
        }
    }

    /// `STREAM_GATE_CALL_STATE=memory`: only in a build with the local adapters.
    fn memory(&self) -> Result<CallStateMode, ConfigError> {
        #[cfg(feature = "dev-adapters")]
        if self.build == Build::Dev {
            return Ok(CallStateMode::Memory);
        }
        Err(ConfigError {
            variable: "STREAM_GATE_CALL_STATE",
            problem: MEMORY_IN_LAMBDA.into(),
        })
    }

    fn milliseconds(
        &self,
        var: &'static str,
        default: u64,
        max: u64,
    ) -> Result<Duration, ConfigError> {
        match self.value(var) {
            None => Ok(Duration::from_millis(default)),
            Some(v) => v
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|n| *n <= max)
                .map(Duration::from_millis)
                .ok_or_else(|| ConfigError {
                    variable: var,
                    problem: format!("expected whole milliseconds from 0 to {max}"),
                }),
        }
    }

    fn credentials(&self) -> Result<CredentialsConfig, ConfigError> {
        let secret = match (
            self.value("STREAM_GATE_SECRET_FILE"),
            self.value("STREAM_GATE_SECRET_ID"),
        ) {
            (Some(path), _) => SecretLocation::File(PathBuf::from(path)),
            (None, Some(id)) => SecretLocation::SecretsManager(id),
            (None, None) => SecretLocation::None,
        };
        const WEEK: u64 = 7 * 86_400;
        Ok(CredentialsConfig {
            secret,
            ttl: self.seconds(
                "STREAM_GATE_SECRET_TTL_SECS",
                defaults::SECRET_TTL_SECS,
                WEEK,
            )?,
            max_stale: self.seconds(
                "STREAM_GATE_SECRET_MAX_STALE_SECS",
                defaults::SECRET_MAX_STALE_SECS,
                WEEK,
            )?,
        })
    }
}

impl AuthorizerConfig {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads configuration through `get`.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        Self::from_lookup_for(Build::THIS, get)
    }

    /// Reads configuration through `get` as `build` reads it.
    pub fn from_lookup_for(
        build: Build,
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let env = Env { get, build };
        Ok(Self {
            credentials: env.credentials()?,
            auth_mode: env.parsed("STREAM_GATE_AUTH_MODE")?,
            public_url: env.url("STREAM_GATE_PUBLIC_URL", &["wss://", "ws://"], "wss://")?,
            protocols: env.parsed("STREAM_GATE_PROTOCOLS")?,
        })
    }
}

impl RouterConfig {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads configuration through `get`.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        Self::from_lookup_for(Build::THIS, get)
    }

    /// Reads configuration through `get` as `build` reads it.
    pub fn from_lookup_for(
        build: Build,
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let env = Env { get, build };
        Ok(Self {
            credentials: env.credentials()?,
            call_token: env.parsed("STREAM_GATE_CALL_TOKEN")?,
            management_endpoint: env.url(
                "STREAM_GATE_MANAGEMENT_ENDPOINT",
                &["https://", "http://"],
                "https:// or http://",
            )?,
            region: env.value("AWS_REGION"),
            call_state: env.call_state()?,
            start_grace: env.milliseconds(
                "STREAM_GATE_START_GRACE_MS",
                defaults::START_GRACE_MS,
                60_000,
            )?,
            sink: env.sink()?,
        })
    }
}

impl WebhookConfig {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads configuration through `get`.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        Self::from_lookup_for(Build::THIS, get)
    }

    /// Reads configuration through `get` as `build` reads it.
    pub fn from_lookup_for(
        build: Build,
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let env = Env { get, build };
        // A webhook that cannot say where to connect is useless: refuse to start.
        let stream_url = env
            .url("STREAM_GATE_STREAM_URL", &["wss://", "ws://"], "wss://")?
            .ok_or(ConfigError {
                variable: "STREAM_GATE_STREAM_URL",
                problem: "required (the wss:// URL of the gate)".into(),
            })?;
        Ok(Self {
            credentials: env.credentials()?,
            stream_url,
            webhook_url: env.url(
                "STREAM_GATE_WEBHOOK_URL",
                &["https://", "http://"],
                "https://",
            )?,
            call_token_ttl: env.seconds(
                "STREAM_GATE_CALL_TOKEN_TTL_SECS",
                defaults::CALL_TOKEN_TTL_SECS,
                86_400,
            )?,
            issued_retention: env.days(
                "STREAM_GATE_ISSUED_RETENTION_DAYS",
                defaults::ISSUED_RETENTION_DAYS,
                MIN_RETENTION_DAYS..=MAX_RETENTION_DAYS,
            )?,
            call_state: env.call_state()?,
            protocols: env.parsed("STREAM_GATE_PROTOCOLS")?,
            relay_attributes: env.relay_attributes()?,
            sink: env.sink()?,
        })
    }
}

/// The shortest retention: longer than the longest call token (`STREAM_GATE_CALL_TOKEN_TTL_SECS`
/// is at most one day, plus 30 s of clock skew), so a record can never go while the token it
/// names is still live, and a replay can never get a second live token.
pub const MIN_RETENTION_DAYS: u64 = 2;
/// The longest retention (100 years: "for ever" in practice; the TTL attribute stays far below
/// the largest number DynamoDB holds).
pub const MAX_RETENTION_DAYS: u64 = 36_500;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Protocol;
    use std::collections::HashMap;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    const STREAM: (&str, &str) = ("STREAM_GATE_STREAM_URL", "wss://h/prod");
    /// `STREAM_GATE_CALL_STATE` is required by the router and the webhook.
    const STATE: (&str, &str) = ("STREAM_GATE_CALL_STATE", "memory");

    #[test]
    fn variables_lists_exactly_what_the_parsers_read() {
        let read = std::cell::RefCell::new(std::collections::BTreeSet::new());
        let record = |k: &str| {
            read.borrow_mut().insert(k.to_owned());
            // The webhook needs a stream URL to get past its first check, and both the router
            // and the webhook a call state, to read the rest.
            match k {
                "STREAM_GATE_STREAM_URL" => Some("wss://h/prod".to_owned()),
                "STREAM_GATE_CALL_STATE" => Some("memory".to_owned()),
                _ => None,
            }
        };
        let _ = AuthorizerConfig::from_lookup(record);
        let _ = RouterConfig::from_lookup(record);
        let _ = WebhookConfig::from_lookup(record);
        let gate: Vec<String> = read
            .into_inner()
            .into_iter()
            .filter(|k| k.starts_with("STREAM_GATE_"))
            .collect();
        assert_eq!(gate, VARIABLES);
    }

    #[test]
    fn defaults_are_the_secure_ones() {
        let a = AuthorizerConfig::from_lookup(lookup(&[])).expect("defaults");
        assert_eq!(a.credentials.secret, SecretLocation::None);
        assert_eq!(a.credentials.ttl, Duration::from_secs(300));
        assert_eq!(a.credentials.max_stale, Duration::from_secs(3600));
        assert_eq!(a.auth_mode, AuthMode::Signature);
        assert_eq!(a.public_url, None);
        assert_eq!(a.protocols, Protocols::only(Protocol::MediaStreams));
        let r = RouterConfig::from_lookup(lookup(&[STATE])).expect("defaults");
        assert_eq!(r.call_token, CallTokenPolicy::Required);
        assert_eq!(r.management_endpoint, None);
        let w = WebhookConfig::from_lookup(lookup(&[STREAM, STATE])).expect("defaults");
        assert_eq!(w.call_token_ttl, Duration::from_secs(300));
        assert_eq!(w.webhook_url, None);
        assert_eq!(w.issued_retention, Duration::from_secs(400 * 86_400));
    }

    #[test]
    fn file_wins_over_secret_id() {
        let c = AuthorizerConfig::from_lookup(lookup(&[
            ("STREAM_GATE_SECRET_FILE", "/x"),
            ("STREAM_GATE_SECRET_ID", "arn"),
        ]))
        .expect("ok");
        assert_eq!(c.credentials.secret, SecretLocation::File("/x".into()));
        let c = RouterConfig::from_lookup(lookup(&[("STREAM_GATE_SECRET_ID", "arn"), STATE]));
        assert_eq!(
            c.map(|c| c.credentials.secret),
            Ok(SecretLocation::SecretsManager("arn".into()))
        );
    }

    #[test]
    fn values_are_read() {
        let a = AuthorizerConfig::from_lookup(lookup(&[
            ("STREAM_GATE_AUTH_MODE", "both"),
            ("STREAM_GATE_PUBLIC_URL", "wss://gate.example.com/media"),
            ("STREAM_GATE_SECRET_TTL_SECS", "60"),
            ("STREAM_GATE_SECRET_MAX_STALE_SECS", "604800"),
            ("STREAM_GATE_PROTOCOLS", "media-streams,conversation-relay"),
        ]))
        .expect("ok");
        assert_eq!(a.auth_mode, AuthMode::Both);
        assert_eq!(a.protocols, Protocols::BOTH);
        assert_eq!(
            a.public_url.as_deref(),
            Some("wss://gate.example.com/media")
        );
        assert_eq!(a.credentials.ttl, Duration::from_secs(60));
        assert_eq!(a.credentials.max_stale, Duration::from_secs(604_800));
        let r = RouterConfig::from_lookup(lookup(&[
            ("STREAM_GATE_CALL_TOKEN", "off"),
            ("STREAM_GATE_MANAGEMENT_ENDPOINT", "http://127.0.0.1:9/dev"),
            ("AWS_REGION", "cn-north-1"),
            STATE,
        ]))
        .expect("ok");
        assert_eq!(r.call_token, CallTokenPolicy::Off);
        assert_eq!(
            r.management_endpoint.as_deref(),
            Some("http://127.0.0.1:9/dev")
        );
        assert_eq!(r.region.as_deref(), Some("cn-north-1"));
        let w = WebhookConfig::from_lookup(lookup(&[
            STREAM,
            ("STREAM_GATE_WEBHOOK_URL", "https://h/voice"),
            ("STREAM_GATE_CALL_TOKEN_TTL_SECS", "86400"),
            ("STREAM_GATE_ISSUED_RETENTION_DAYS", "36500"),
            STATE,
        ]))
        .expect("ok");
        assert_eq!(w.stream_url, "wss://h/prod");
        assert_eq!(w.webhook_url.as_deref(), Some("https://h/voice"));
        assert_eq!(w.call_token_ttl, Duration::from_secs(86_400));
        assert_eq!(w.issued_retention, Duration::from_secs(36_500 * 86_400));
        let w = WebhookConfig::from_lookup(lookup(&[
            STREAM,
            STATE,
            ("STREAM_GATE_ISSUED_RETENTION_DAYS", " 2 "),
        ]));
        assert_eq!(
            w.map(|w| w.issued_retention),
            Ok(Duration::from_secs(2 * 86_400))
        );
    }

    #[test]
    fn bad_values_name_the_variable() {
        for (k, v) in [
            ("STREAM_GATE_AUTH_MODE", "all"),
            ("STREAM_GATE_SECRET_TTL_SECS", "0"),
            ("STREAM_GATE_SECRET_TTL_SECS", "5m"),
            ("STREAM_GATE_SECRET_TTL_SECS", "604801"),
            ("STREAM_GATE_SECRET_MAX_STALE_SECS", "-1"),
            ("STREAM_GATE_PUBLIC_URL", "https://x/prod"),
            ("STREAM_GATE_PROTOCOLS", "relay"),
            ("STREAM_GATE_PROTOCOLS", "media-streams,media-streams"),
        ] {
            let err = AuthorizerConfig::from_lookup(lookup(&[(k, v)])).err();
            assert_eq!(err.map(|e| e.variable), Some(k), "{k}={v}");
        }
        for (k, v) in [
            ("STREAM_GATE_CALL_TOKEN", "yes"),
            ("STREAM_GATE_MANAGEMENT_ENDPOINT", "ftp://x"),
        ] {
            let err = RouterConfig::from_lookup(lookup(&[STATE, (k, v)])).err();
            assert_eq!(err.map(|e| e.variable), Some(k), "{k}={v}");
        }
        for (k, v) in [
            ("STREAM_GATE_STREAM_URL", "https://h/prod"),
            ("STREAM_GATE_WEBHOOK_URL", "ftp://h/voice"),
            ("STREAM_GATE_CALL_TOKEN_TTL_SECS", "86401"),
            ("STREAM_GATE_CALL_TOKEN_TTL_SECS", "0"),
            ("STREAM_GATE_ISSUED_RETENTION_DAYS", "0"),
            ("STREAM_GATE_ISSUED_RETENTION_DAYS", "1"),
            ("STREAM_GATE_ISSUED_RETENTION_DAYS", "36501"),
            ("STREAM_GATE_ISSUED_RETENTION_DAYS", "1y"),
            ("STREAM_GATE_ISSUED_RETENTION_DAYS", "-400"),
            ("STREAM_GATE_PROTOCOLS", "relay"),
            (
                "STREAM_GATE_RELAY_ATTRIBUTES",
                r#"{"url":"wss://elsewhere.example.com"}"#,
            ),
            (
                "STREAM_GATE_RELAY_ATTRIBUTES",
                r#"{"voice":"secret-looking-value\n"}"#,
            ),
            ("STREAM_GATE_RELAY_ATTRIBUTES", "welcomeGreeting=Hi"),
        ] {
            let err = WebhookConfig::from_lookup(lookup(&[STREAM, STATE, (k, v)])).err();
            assert!(
                err.as_ref()
                    .is_some_and(|e| !e.to_string().contains("secret-looking-value")),
                "{k}: the value is never quoted"
            );
            assert_eq!(err.map(|e| e.variable), Some(k), "{k}={v}");
        }
        let w = WebhookConfig::from_lookup(lookup(&[
            STREAM,
            STATE,
            ("STREAM_GATE_PROTOCOLS", "media-streams,conversation-relay"),
            ("STREAM_GATE_RELAY_ATTRIBUTES", r#"{"language":"en-US"}"#),
        ]))
        .expect("valid");
        assert_eq!(w.protocols, Protocols::BOTH);
        assert_eq!(
            w.relay_attributes.iter().collect::<Vec<_>>(),
            [("language", "en-US")]
        );
        let w = WebhookConfig::from_lookup(lookup(&[STREAM, STATE])).expect("defaults");
        assert_eq!(w.protocols, Protocols::default());
        assert_eq!(w.relay_attributes, RelayAttributes::default());
    }

    #[test]
    fn call_state_and_grace() {
        let r = RouterConfig::from_lookup(lookup(&[("STREAM_GATE_CALL_STATE", "off")]))
            .expect("explicit off");
        assert_eq!(r.call_state, CallStateMode::Off);
        assert_eq!(r.start_grace, Duration::from_millis(2000));
        let r = RouterConfig::from_lookup(lookup(&[
            ("STREAM_GATE_CALL_STATE", "dynamodb"),
            ("STREAM_GATE_CALL_TABLE", "calls"),
            ("STREAM_GATE_START_GRACE_MS", "0"),
        ]))
        .expect("ok");
        assert_eq!(
            r.call_state,
            CallStateMode::DynamoDb {
                table: "calls".into()
            }
        );
        assert_eq!(r.start_grace, Duration::ZERO);
        let w = WebhookConfig::from_lookup(lookup(&[STREAM, ("STREAM_GATE_CALL_STATE", "memory")]));
        assert_eq!(w.map(|w| w.call_state), Ok(CallStateMode::Memory));
        for (pairs, var) in [
            (
                vec![("STREAM_GATE_CALL_STATE", "dynamodb")],
                "STREAM_GATE_CALL_TABLE",
            ),
            (
                vec![("STREAM_GATE_CALL_STATE", "redis")],
                "STREAM_GATE_CALL_STATE",
            ),
            (
                vec![STATE, ("STREAM_GATE_START_GRACE_MS", "60001")],
                "STREAM_GATE_START_GRACE_MS",
            ),
            (
                vec![STATE, ("STREAM_GATE_START_GRACE_MS", "2s")],
                "STREAM_GATE_START_GRACE_MS",
            ),
        ] {
            let err = RouterConfig::from_lookup(lookup(&pairs)).err();
            assert_eq!(err.map(|e| e.variable), Some(var), "{pairs:?}");
        }
    }

    #[test]
    fn the_sink() {
        let r = RouterConfig::from_lookup(lookup(&[STATE])).expect("defaults");
        assert_eq!(r.sink, SinkTarget::None);
        let r = RouterConfig::from_lookup(lookup(&[
            STATE,
            ("STREAM_GATE_SINK", "file:/tmp/records.jsonl"),
        ]));
        assert!(matches!(r.map(|r| r.sink), Ok(SinkTarget::File(_))));
        let err =
            RouterConfig::from_lookup(lookup(&[STATE, ("STREAM_GATE_SINK", "s3://bucket")])).err();
        assert_eq!(err.map(|e| e.variable), Some("STREAM_GATE_SINK"));
    }

    /// Issue #22 item 1: no call state is never a silent `off`. Both binaries that read it refuse
    /// to start, naming the variable and its values; blank counts as unset; `off` must be said.
    #[test]
    fn call_state_is_required() {
        let wanted = ConfigError {
            variable: "STREAM_GATE_CALL_STATE",
            problem: "required: dynamodb, memory or off".into(),
        };
        for pairs in [vec![], vec![("STREAM_GATE_CALL_STATE", " ")]] {
            let r = RouterConfig::from_lookup(lookup(&pairs));
            assert_eq!(r.err(), Some(wanted.clone()), "{pairs:?}");
            let mut pairs = pairs.clone();
            pairs.push(STREAM);
            let w = WebhookConfig::from_lookup(lookup(&pairs));
            assert_eq!(w.err(), Some(wanted.clone()), "{pairs:?}");
        }
        let w = WebhookConfig::from_lookup(lookup(&[STREAM, ("STREAM_GATE_CALL_STATE", "off")]));
        assert_eq!(w.map(|w| w.call_state), Ok(CallStateMode::Off));
    }

    /// The Lambda binaries are built without `dev-adapters`: given a local sink or the memory call
    /// state they refuse to start, naming the variable and what this build has (fail closed, never
    /// a silent `none`). scripts/test.d/10-dependencies runs the router built so.
    #[test]
    fn a_lambda_build_refuses_the_local_adapters() {
        let router =
            |build, pairs: &[(&str, &str)]| RouterConfig::from_lookup_for(build, lookup(pairs));
        let off = ("STREAM_GATE_CALL_STATE", "off");
        for sink in ["http://127.0.0.1:9000/records", "file:/tmp/records.jsonl"] {
            let pairs = [off, ("STREAM_GATE_SINK", sink)];
            let err = router(Build::Lambda, &pairs).expect_err(sink);
            assert_eq!(err.variable, "STREAM_GATE_SINK", "{sink}");
            assert!(
                err.problem
                    .contains("only kinesis:<stream name or ARN> and none"),
                "{sink}: {err}"
            );
            assert!(
                !err.problem.contains("127.0.0.1") && !err.problem.contains("/tmp"),
                "{err}"
            );
            assert!(router(Build::Dev, &pairs).is_ok(), "{sink}");
        }
        let err =
            router(Build::Lambda, &[off, ("STREAM_GATE_SINK", "sqs:queue")]).expect_err("sqs");
        assert_eq!(err.problem, "expected kinesis:<stream name or ARN> or none");
        for (sink, kind) in [("kinesis:calls", "kinesis"), ("none", "none")] {
            let r = router(Build::Lambda, &[off, ("STREAM_GATE_SINK", sink)]);
            assert_eq!(r.map(|r| r.sink.kind()), Ok(kind));
        }

        let memory = ConfigError {
            variable: "STREAM_GATE_CALL_STATE",
            problem: MEMORY_IN_LAMBDA.into(),
        };
        assert!(memory
            .problem
            .starts_with("this build has only dynamodb and off"));
        let state = ("STREAM_GATE_CALL_STATE", "memory");
        assert_eq!(router(Build::Lambda, &[state]).err(), Some(memory.clone()));
        let webhook = |build| WebhookConfig::from_lookup_for(build, lookup(&[STREAM, state]));
        assert_eq!(webhook(Build::Lambda).err(), Some(memory));
        assert_eq!(
            router(Build::Dev, &[state]).map(|r| r.call_state),
            Ok(CallStateMode::Memory)
        );
        assert_eq!(
            webhook(Build::Dev).map(|w| w.call_state),
            Ok(CallStateMode::Memory)
        );
        let dynamodb = [
            ("STREAM_GATE_CALL_STATE", "dynamodb"),
            ("STREAM_GATE_CALL_TABLE", "t"),
        ];
        assert!(router(Build::Lambda, &dynamodb).is_ok());
        assert!(router(Build::Lambda, &[off]).is_ok());
        for (pairs, problem) in [
            (vec![], "required: dynamodb or off"),
            (
                vec![("STREAM_GATE_CALL_STATE", "redis")],
                "expected dynamodb or off",
            ),
        ] {
            let err = router(Build::Lambda, &pairs).expect_err(problem);
            assert_eq!(
                (err.variable, err.problem.as_str()),
                ("STREAM_GATE_CALL_STATE", problem)
            );
        }
    }

    #[test]
    fn the_webhook_needs_its_stream_url() {
        let err = WebhookConfig::from_lookup(lookup(&[])).err();
        assert_eq!(err.map(|e| e.variable), Some("STREAM_GATE_STREAM_URL"));
    }

    #[test]
    fn blank_means_unset() {
        let a = AuthorizerConfig::from_lookup(lookup(&[
            ("STREAM_GATE_SECRET_FILE", "  "),
            ("STREAM_GATE_AUTH_MODE", ""),
        ]))
        .expect("ok");
        assert_eq!(a.credentials.secret, SecretLocation::None);
        assert_eq!(a.auth_mode, AuthMode::Signature);
    }
}
