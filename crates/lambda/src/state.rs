//! State built once per Lambda instance (or once per local gateway) and borrowed by every
//! invocation: each binary's configuration, the credentials cache and, for the router, the
//! connection closer.

use std::sync::Arc;
use std::time::Duration;

use crate::adapters::{
    ConnectionCloser, CredentialCache, DocumentSource, FileSource, ManagementApiCloser,
    SecretsManagerSource,
};
use crate::config::{
    AuthorizerConfig, ConfigError, CredentialsConfig, RouterConfig, SecretLocation, WebhookConfig,
};

/// The authorizer's per-instance state.
pub struct AuthorizerState {
    /// Configuration read at init.
    pub config: AuthorizerConfig,
    /// The credentials cache.
    pub credentials: Arc<CredentialCache>,
}

/// The router's per-instance state.
pub struct RouterState {
    /// Configuration read at init.
    pub config: RouterConfig,
    /// The credentials cache (call-token keys).
    pub credentials: Arc<CredentialCache>,
    /// Closes offending connections.
    pub closer: Arc<dyn ConnectionCloser>,
}

/// The voice webhook's per-instance state.
pub struct WebhookState {
    /// Configuration read at init.
    pub config: WebhookConfig,
    /// The credentials cache.
    pub credentials: Arc<CredentialCache>,
}

/// The AWS SDK configuration every client of a binary shares, loaded once at init. Bounded
/// timeouts and two attempts: a slow service must never hold an invocation past its Lambda timeout.
pub async fn sdk_config() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .operation_attempt_timeout(Duration::from_secs(2))
                .operation_timeout(Duration::from_secs(4))
                .build(),
        )
        .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(2))
        .load()
        .await
}

/// The credentials cache for `config`: a file, Secrets Manager, or (neither configured) a cache
/// that never has credentials, so every decision denies. Nothing is fetched here: the first
/// decision that needs the document fetches it.
pub fn credential_cache(
    config: &CredentialsConfig,
    sdk: &aws_config::SdkConfig,
) -> CredentialCache {
    let source: Box<dyn DocumentSource> = match &config.secret {
        SecretLocation::File(path) => Box::new(FileSource::new(path.clone())),
        SecretLocation::SecretsManager(id) => Box::new(SecretsManagerSource::new(
            aws_sdk_secretsmanager::Client::new(sdk),
            id.clone(),
        )),
        SecretLocation::None => {
            tracing::error!(
                event = "no_credentials_configured",
                "set STREAM_GATE_SECRET_ID or STREAM_GATE_SECRET_FILE; denying everything"
            );
            return CredentialCache::empty();
        }
    };
    CredentialCache::new(source, config.ttl, config.max_stale)
}

impl AuthorizerState {
    /// State for a Lambda instance, from the environment.
    pub async fn from_env() -> Result<Self, ConfigError> {
        let config = AuthorizerConfig::from_env()?;
        let credentials = Arc::new(credential_cache(&config.credentials, &sdk_config().await));
        Ok(Self {
            config,
            credentials,
        })
    }
}

impl RouterState {
    /// State for a Lambda instance, from the environment.
    pub async fn from_env() -> Result<Self, ConfigError> {
        let config = RouterConfig::from_env()?;
        let sdk = sdk_config().await;
        let credentials = Arc::new(credential_cache(&config.credentials, &sdk));
        Ok(Self {
            config,
            credentials,
            closer: Arc::new(ManagementApiCloser::new(sdk)),
        })
    }
}

impl WebhookState {
    /// State for a Lambda instance, from the environment.
    pub async fn from_env() -> Result<Self, ConfigError> {
        let config = WebhookConfig::from_env()?;
        let credentials = Arc::new(credential_cache(&config.credentials, &sdk_config().await));
        Ok(Self {
            config,
            credentials,
        })
    }
}
