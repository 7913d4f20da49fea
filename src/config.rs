//! Configuration from the environment (DESIGN.md §3). A bad value stops the function at init, so
//! a misconfigured deployment refuses everything instead of running on a guess.

use std::path::PathBuf;
use std::time::Duration;

use crate::domain::{AuthMode, CallTokenPolicy};

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

/// Everything the authorizer and router read from the environment.
#[derive(Debug, Clone)]
pub struct GateConfig {
    /// Credentials document location.
    pub secret: SecretLocation,
    /// How long a fetched document is trusted before refresh.
    pub secret_ttl: Duration,
    /// How long the last good document is kept while refreshes fail; past it, deny everything.
    pub secret_max_stale: Duration,
    /// Which credential `$connect` requires.
    pub auth_mode: AuthMode,
    /// Whether `start` needs a per-call token.
    pub call_token: CallTokenPolicy,
    /// The exact wss URL Twilio signs (custom domains); default `wss://{domainName}/{stage}`.
    pub public_url: Option<String>,
    /// `@connections` endpoint override; default `https://{domainName}/{stage}`.
    pub management_endpoint: Option<String>,
}

/// A variable that is set to something unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{variable}: {problem}")]
pub struct ConfigError {
    /// The environment variable.
    pub variable: &'static str,
    /// What is wrong with it.
    pub problem: String,
}

impl GateConfig {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads configuration through `get` (tests pass a map instead of the environment).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let nonempty = |k: &str| get(k).filter(|v| !v.trim().is_empty());
        let secret = match (
            nonempty("STREAM_GATE_SECRET_FILE"),
            nonempty("STREAM_GATE_SECRET_ID"),
        ) {
            (Some(path), _) => SecretLocation::File(PathBuf::from(path)),
            (None, Some(id)) => SecretLocation::SecretsManager(id),
            (None, None) => SecretLocation::None,
        };
        let secs = |var: &'static str, default: u64| -> Result<Duration, ConfigError> {
            match nonempty(var) {
                None => Ok(Duration::from_secs(default)),
                Some(v) => v
                    .trim()
                    .parse::<u64>()
                    .ok()
                    .filter(|n| (1..=86_400 * 7).contains(n))
                    .map(Duration::from_secs)
                    .ok_or(ConfigError {
                        variable: var,
                        problem: "expected whole seconds from 1 to 604800".into(),
                    }),
            }
        };
        let parsed =
            |var: &'static str| -> Result<Option<String>, ConfigError> { Ok(nonempty(var)) };
        let auth_mode = match nonempty("STREAM_GATE_AUTH_MODE") {
            None => AuthMode::default(),
            Some(v) => v.parse().map_err(|problem| ConfigError {
                variable: "STREAM_GATE_AUTH_MODE",
                problem,
            })?,
        };
        let call_token = match nonempty("STREAM_GATE_CALL_TOKEN") {
            None => CallTokenPolicy::default(),
            Some(v) => v.parse().map_err(|problem| ConfigError {
                variable: "STREAM_GATE_CALL_TOKEN",
                problem,
            })?,
        };
        let public_url = parsed("STREAM_GATE_PUBLIC_URL")?;
        if let Some(u) = &public_url {
            if !u.starts_with("wss://") && !u.starts_with("ws://") {
                return Err(ConfigError {
                    variable: "STREAM_GATE_PUBLIC_URL",
                    problem: "must start with wss://".into(),
                });
            }
        }
        let management_endpoint = parsed("STREAM_GATE_MANAGEMENT_ENDPOINT")?;
        if let Some(u) = &management_endpoint {
            if !u.starts_with("https://") && !u.starts_with("http://") {
                return Err(ConfigError {
                    variable: "STREAM_GATE_MANAGEMENT_ENDPOINT",
                    problem: "must start with https:// or http://".into(),
                });
            }
        }
        Ok(Self {
            secret,
            secret_ttl: secs("STREAM_GATE_SECRET_TTL_SECS", 300)?,
            secret_max_stale: secs("STREAM_GATE_SECRET_MAX_STALE_SECS", 3600)?,
            auth_mode,
            call_token,
            public_url,
            management_endpoint,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn cfg(pairs: &[(&str, &str)]) -> Result<GateConfig, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        GateConfig::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_are_the_secure_ones() {
        let c = cfg(&[]).expect("defaults");
        assert_eq!(c.secret, SecretLocation::None);
        assert_eq!(c.secret_ttl, Duration::from_secs(300));
        assert_eq!(c.auth_mode, AuthMode::Either);
        assert_eq!(c.call_token, CallTokenPolicy::Required);
    }

    #[test]
    fn file_wins_over_secret_id() {
        let c = cfg(&[
            ("STREAM_GATE_SECRET_FILE", "/x"),
            ("STREAM_GATE_SECRET_ID", "arn"),
        ])
        .expect("ok");
        assert_eq!(c.secret, SecretLocation::File("/x".into()));
    }

    #[test]
    fn bad_values_name_the_variable() {
        for (k, v) in [
            ("STREAM_GATE_AUTH_MODE", "all"),
            ("STREAM_GATE_CALL_TOKEN", "yes"),
            ("STREAM_GATE_SECRET_TTL_SECS", "0"),
            ("STREAM_GATE_SECRET_TTL_SECS", "5m"),
            ("STREAM_GATE_PUBLIC_URL", "https://x/prod"),
            ("STREAM_GATE_MANAGEMENT_ENDPOINT", "ftp://x"),
        ] {
            assert_eq!(cfg(&[(k, v)]).err().map(|e| e.variable), Some(k), "{k}={v}");
        }
    }
}
