//! The API Gateway Management API client of one `@connections` endpoint, built on first use and
//! reused while the endpoint stays the same (closes and posts of one router instance all go to
//! one stage).

use std::sync::Mutex;
use std::time::Duration;

use aws_sdk_apigatewaymanagement::Client;

use crate::sdk::LazySdk;

/// A client per endpoint, with bounded timeouts and one request per attempt: callers retry
/// themselves, once, and only when the invocation has time left (a close or an outbound `media`
/// must never run past the Lambda timeout, and a repeated `media` would play twice).
pub struct ManagementClients {
    base: LazySdk,
    client: Mutex<Option<(String, Client)>>,
}

impl ManagementClients {
    /// Clients signing with the credentials and region of `base` (loaded on the first call).
    pub fn new(base: impl Into<LazySdk>) -> Self {
        Self {
            base: base.into(),
            client: Mutex::new(None),
        }
    }

    /// The client of `endpoint` (`https://{domain}/{stage}`).
    pub async fn client_for(&self, endpoint: &str) -> Client {
        let base = self.base.get().await;
        let mut slot = self.client.lock().unwrap_or_else(|p| p.into_inner());
        match slot.as_ref() {
            Some((e, c)) if e == endpoint => c.clone(),
            _ => {
                // Within the router's 5 s Lambda timeout even after a credentials fetch that ran
                // into its own 3 s bound: 3 s + 1.5 s.
                let timeouts = aws_config::timeout::TimeoutConfig::builder()
                    .operation_attempt_timeout(Duration::from_millis(1000))
                    .operation_timeout(Duration::from_millis(1500))
                    .build();
                let conf = aws_sdk_apigatewaymanagement::config::Builder::from(base)
                    .endpoint_url(endpoint)
                    .timeout_config(timeouts)
                    .retry_config(aws_config::retry::RetryConfig::disabled())
                    .build();
                let client = Client::from_conf(conf);
                *slot = Some((endpoint.to_owned(), client.clone()));
                client
            }
        }
    }
}
