//! State built once per Lambda instance (or once per local gateway) and borrowed by every
//! invocation: configuration, the credentials cache and the connection closer.

use std::sync::Arc;

use crate::adapters::{
    ConnectionCloser, CredentialCache, DocumentSource, FileSource, ManagementApiCloser,
    SecretsManagerSource,
};
use crate::config::{GateConfig, SecretLocation};

/// Shared per-instance state of the authorizer and router.
pub struct GateState {
    /// Configuration read at init.
    pub config: GateConfig,
    /// The credentials cache.
    pub credentials: CredentialCache,
    /// Closes offending connections.
    pub closer: Arc<dyn ConnectionCloser>,
}

impl GateState {
    /// Builds state from parts (tests, local gateway).
    pub fn new(
        config: GateConfig,
        source: Option<Box<dyn DocumentSource>>,
        closer: Arc<dyn ConnectionCloser>,
    ) -> Self {
        let credentials = match source {
            Some(s) => CredentialCache::new(s, config.secret_ttl, config.secret_max_stale),
            None => CredentialCache::empty(),
        };
        Self {
            config,
            credentials,
            closer,
        }
    }

    /// Builds state for a Lambda instance from the environment: the SDK config is loaded once, the
    /// credentials are fetched lazily on first use (nothing at init that can wait).
    pub async fn from_env() -> Result<Self, crate::config::ConfigError> {
        let config = GateConfig::from_env()?;
        let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .timeout_config(
                aws_config::timeout::TimeoutConfig::builder()
                    .operation_attempt_timeout(std::time::Duration::from_secs(2))
                    .operation_timeout(std::time::Duration::from_secs(4))
                    .build(),
            )
            .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(2))
            .load()
            .await;
        let source: Option<Box<dyn DocumentSource>> = match &config.secret {
            SecretLocation::File(path) => Some(Box::new(FileSource::new(path.clone()))),
            SecretLocation::SecretsManager(id) => Some(Box::new(SecretsManagerSource::new(
                aws_sdk_secretsmanager::Client::new(&sdk),
                id.clone(),
            ))),
            SecretLocation::None => {
                tracing::error!(
                    event = "no_credentials_configured",
                    "set STREAM_GATE_SECRET_ID or STREAM_GATE_SECRET_FILE; denying everything"
                );
                None
            }
        };
        Ok(Self::new(
            config,
            source,
            Arc::new(ManagementApiCloser::new(sdk)),
        ))
    }
}

/// Installs the JSON log subscriber: one object per line, no ANSI, level from `RUST_LOG`
/// (default `info`).
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(false)
        .with_target(false)
        .with_ansi(false)
        .with_env_filter(filter)
        .try_init();
}
