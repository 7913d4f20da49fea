//! State built once per Lambda instance (or once per local gateway) and borrowed by every
//! invocation: each binary's configuration and credentials cache; for the router also the
//! connection closer, the call-state store with its per-instance cache of verified connections,
//! the delivery sink and the unknown-event counter; for the voice webhook the call-state store
//! that remembers the token issued per CallSid.

use std::sync::Arc;

use crate::adapters::{
    CallStateStore, ConnectionCloser, CredentialCache, DeliverySink, DocumentSource, DynamoDbStore,
    FileSource, LazySdk, ManagementApiCloser, NoSink, SecretsManagerSource, VerifiedCache,
};
use crate::config::{
    AuthorizerConfig, CallStateMode, ConfigError, CredentialsConfig, RouterConfig, SecretLocation,
    WebhookConfig,
};
use crate::logging::Throttled;
use crate::unknown_events::UnknownEvents;

/// Per-connection call state, or none (`off`, only when set explicitly: stateless, with the gaps
/// SECURITY.md lists).
#[derive(Clone)]
pub enum CallState {
    /// `STREAM_GATE_CALL_STATE=off`.
    Off,
    /// A store (`dynamodb`, or `memory` with the `dev-adapters` feature).
    Store(Arc<dyn CallStateStore>),
}

impl CallState {
    /// The store `mode` names. The DynamoDB client is made on its first request.
    pub fn from_mode(mode: &CallStateMode, sdk: &LazySdk) -> Self {
        match mode {
            CallStateMode::Off => Self::Off,
            #[cfg(feature = "dev-adapters")]
            CallStateMode::Memory => Self::Store(Arc::new(crate::adapters::MemoryStore::new(
                MEMORY_STORE_ENTRIES,
            ))),
            CallStateMode::DynamoDb { table } => {
                Self::Store(Arc::new(DynamoDbStore::new(sdk.clone(), table.clone())))
            }
        }
    }
}

/// Records the in-process store keeps of each kind (the local gateway's, tests').
#[cfg(feature = "dev-adapters")]
pub const MEMORY_STORE_ENTRIES: usize = 100_000;

/// Verified connections one router instance caches (one instance serves at most a few hundred).
pub const VERIFIED_CACHE_ENTRIES: usize = 10_000;

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
    /// Per-connection call state.
    pub call_state: CallState,
    /// Connections whose start this instance has seen verified.
    pub verified: VerifiedCache,
    /// Store errors are logged once per interval, not per frame.
    pub store_errors: Throttled,
    /// Where accepted frames of verified calls go (`STREAM_GATE_SINK`; `NoSink` = gate only).
    pub sink: Arc<dyn DeliverySink>,
    /// Unknown events are logged at most once per connection per minute.
    pub unknown_events: UnknownEvents,
}

impl RouterState {
    /// State from parts (the local gateway, tests).
    pub fn new(
        config: RouterConfig,
        credentials: Arc<CredentialCache>,
        closer: Arc<dyn ConnectionCloser>,
        call_state: CallState,
    ) -> Self {
        Self {
            config,
            credentials,
            closer,
            call_state,
            verified: VerifiedCache::new(VERIFIED_CACHE_ENTRIES),
            store_errors: Throttled::default(),
            sink: Arc::new(NoSink),
            unknown_events: UnknownEvents::default(),
        }
    }

    /// Whether accepted frames go anywhere (a sink other than `none`).
    pub fn delivers(&self) -> bool {
        self.sink.kind() != NoSink.kind()
    }

    /// The same state delivering to `sink` (a custom sink in your own router binary:
    /// examples/custom_sink.rs).
    pub fn with_sink(mut self, sink: Arc<dyn DeliverySink>) -> Self {
        self.sink = sink;
        self
    }

    /// State for a Lambda instance from the environment, delivering to `sink` whatever
    /// `STREAM_GATE_SINK` says.
    pub async fn from_env_with_sink(sink: Arc<dyn DeliverySink>) -> Result<Self, ConfigError> {
        Ok(Self::from_env().await?.with_sink(sink))
    }
}

/// The voice webhook's per-instance state.
pub struct WebhookState {
    /// Configuration read at init.
    pub config: WebhookConfig,
    /// The credentials cache.
    pub credentials: Arc<CredentialCache>,
    /// Per-call state (the webhook answers one token per CallSid, and delivers one `session_end`
    /// per call).
    pub call_state: CallState,
    /// Where the `session_end` record of a ConversationRelay session goes (`STREAM_GATE_SINK`).
    pub sink: Arc<dyn DeliverySink>,
}

/// The credentials cache for `config`: a file, Secrets Manager, or (neither configured) a cache
/// that never has credentials, so every decision denies. Nothing is fetched or loaded here: the
/// first decision that needs the document fetches it.
pub fn credential_cache(config: &CredentialsConfig, sdk: &LazySdk) -> CredentialCache {
    let source: Box<dyn DocumentSource> = match &config.secret {
        SecretLocation::File(path) => Box::new(FileSource::new(path.clone())),
        SecretLocation::SecretsManager(id) => {
            Box::new(SecretsManagerSource::lazy(sdk.clone(), id.clone()))
        }
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
        let credentials = Arc::new(credential_cache(&config.credentials, &LazySdk::from_env()));
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
        if config.call_state == CallStateMode::Off {
            warn_call_state_off();
        }
        let sdk = LazySdk::from_env();
        let credentials = Arc::new(credential_cache(&config.credentials, &sdk));
        let call_state = CallState::from_mode(&config.call_state, &sdk);
        let sink = config.sink.build(sdk.clone());
        Ok(Self::new(
            config,
            credentials,
            Arc::new(ManagementApiCloser::new(sdk)),
            call_state,
        )
        .with_sink(sink))
    }
}

/// `STREAM_GATE_CALL_STATE=off` is allowed only when chosen, and said once at start with the gaps
/// it leaves open (SECURITY.md, "What it does not stop").
fn warn_call_state_off() {
    tracing::warn!(
        event = "call_state_off",
        gaps = "frames of sockets with no verified start are judged by shape only and never \
            closed for it; a call token opens any number of connections; a stop or frame naming \
            another call is not tied to the start",
        "STREAM_GATE_CALL_STATE=off: the router runs stateless"
    );
}

impl WebhookState {
    /// State for a Lambda instance, from the environment.
    pub async fn from_env() -> Result<Self, ConfigError> {
        let config = WebhookConfig::from_env()?;
        if config.call_state == CallStateMode::Off {
            warn_stateless_webhook();
        }
        let sdk = LazySdk::from_env();
        let credentials = Arc::new(credential_cache(&config.credentials, &sdk));
        let call_state = CallState::from_mode(&config.call_state, &sdk);
        let sink = config.sink.build(sdk);
        Ok(Self {
            config,
            credentials,
            call_state,
            sink,
        })
    }
}

/// The one line a webhook started with `STREAM_GATE_CALL_STATE=off` logs: the gap it leaves open.
fn warn_stateless_webhook() {
    tracing::warn!(
        event = "call_state_off",
        "STREAM_GATE_CALL_STATE=off: the voice webhook keeps no record of the tokens it issued, so \
         a replayed webhook POST gets a fresh call token for its CallSid (SECURITY.md); set \
         dynamodb to answer every replay with the first token"
    );
}
