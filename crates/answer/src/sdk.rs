//! The AWS SDK configuration and clients, made on first use.
//!
//! Why lazily: loading the SDK configuration builds its HTTPS client, which reads every file of the
//! system's certificate store (145 on Debian) and the `~/.aws` profile files. Done at init, every
//! cold start paid for it before its first answer, even the authorizer with a credentials file and
//! the router of a call that never closes a connection (BENCHMARKS.md, issue 14). Now the first
//! Secrets Manager fetch, close, post, delivery or call-state request pays for it, once.

use std::sync::Arc;
use std::time::Duration;

use aws_config::SdkConfig;
use tokio::sync::OnceCell;

/// The configuration every client of a process shares: loaded from the environment on the first
/// [`LazySdk::get`], or given ready-made (tests, the local gateway). Clones share one load.
#[derive(Clone, Default)]
pub struct LazySdk(Arc<OnceCell<SdkConfig>>);

impl LazySdk {
    /// A configuration loaded from the environment on first use ([`load_sdk_config`]).
    pub fn from_env() -> Self {
        Self::default()
    }

    /// The configuration, loading it on the first call.
    pub async fn get(&self) -> &SdkConfig {
        self.0.get_or_init(load_sdk_config).await
    }

    /// Whether it has been loaded (or was given ready-made).
    pub fn is_loaded(&self) -> bool {
        self.0.initialized()
    }
}

impl From<SdkConfig> for LazySdk {
    fn from(config: SdkConfig) -> Self {
        Self(Arc::new(OnceCell::new_with(Some(config))))
    }
}

impl From<&SdkConfig> for LazySdk {
    fn from(config: &SdkConfig) -> Self {
        config.clone().into()
    }
}

/// The AWS SDK configuration of a Lambda binary, from its environment. Bounded timeouts and two
/// attempts: a slow service must never hold an invocation past its Lambda timeout.
pub async fn load_sdk_config() -> SdkConfig {
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

/// How a [`LazyClient`] makes its client: from the shared configuration, with the service's own
/// settings (timeouts, retries).
type MakeClient<C> = fn(&SdkConfig) -> C;

/// A service client made from a [`LazySdk`] on first use, or given ready-made.
pub struct LazyClient<C> {
    make: Option<(LazySdk, MakeClient<C>)>,
    client: OnceCell<C>,
}

impl<C> LazyClient<C> {
    /// A client `make` builds from `sdk` on the first [`LazyClient::get`].
    pub fn new(sdk: LazySdk, make: MakeClient<C>) -> Self {
        Self {
            make: Some((sdk, make)),
            client: OnceCell::new(),
        }
    }

    /// A client that is already made (tests point one at an emulator).
    pub fn ready(client: C) -> Self {
        Self {
            make: None,
            client: OnceCell::new_with(Some(client)),
        }
    }

    /// The client, made on the first call.
    pub async fn get(&self) -> &C {
        self.client
            .get_or_init(|| async {
                match &self.make {
                    Some((sdk, make)) => make(sdk.get().await),
                    // `ready` sets the cell at construction, so only `new` can reach here.
                    None => unreachable!("a ready LazyClient is always initialised"),
                }
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn region_of(sdk: &SdkConfig) -> Option<String> {
        sdk.region().map(|r| r.to_string())
    }

    #[tokio::test]
    async fn a_ready_configuration_is_never_loaded_again() {
        let given = SdkConfig::builder()
            .region(aws_config::Region::new("eu-west-3"))
            .build();
        let sdk = LazySdk::from(&given);
        assert!(sdk.is_loaded());
        assert_eq!(region_of(sdk.get().await).as_deref(), Some("eu-west-3"));
    }

    #[tokio::test]
    async fn nothing_is_loaded_or_made_before_first_use() {
        let sdk = LazySdk::from_env();
        let client = LazyClient::new(sdk.clone(), region_of);
        assert!(!sdk.is_loaded());
        assert!(client.client.get().is_none());
        let shared = LazySdk::from(
            SdkConfig::builder()
                .region(aws_config::Region::new("ap-south-2"))
                .build(),
        );
        let made = LazyClient::new(shared, region_of);
        assert_eq!(made.get().await.as_deref(), Some("ap-south-2"));
        assert!(made.client.get().is_some());
    }

    #[tokio::test]
    async fn a_ready_client_is_returned_as_given() {
        let client = LazyClient::ready(7u8);
        assert_eq!(*client.get().await, 7);
    }
}
