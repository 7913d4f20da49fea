//! Closing a connection: `DeleteConnection` on the API Gateway Management API (`@connections`).
//! 410 Gone means the peer already left, which is as good as closed.

use std::sync::Mutex;
use std::time::Duration;

use aws_sdk_apigatewaymanagement::error::SdkError;
use aws_sdk_apigatewaymanagement::operation::delete_connection::DeleteConnectionError;
use futures_util::future::BoxFuture;

/// What happened to the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseOutcome {
    /// API Gateway closed it.
    Closed,
    /// It was already gone (410).
    AlreadyGone,
}

/// Why a close failed (logged; the caller never panics over it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("close failed: {code}")]
pub struct CloseError {
    /// Service error code or transport failure kind.
    pub code: String,
}

/// Closes connections of a WebSocket API.
pub trait ConnectionCloser: Send + Sync {
    /// Closes `connection_id` at the `@connections` `endpoint` (`https://{domain}/{stage}`).
    fn close<'a>(
        &'a self,
        endpoint: &'a str,
        connection_id: &'a str,
    ) -> BoxFuture<'a, Result<CloseOutcome, CloseError>>;
}

/// The real closer: the AWS SDK's Management API client, built once per endpoint and reused.
pub struct ManagementApiCloser {
    base: aws_config::SdkConfig,
    client: Mutex<Option<(String, aws_sdk_apigatewaymanagement::Client)>>,
}

impl ManagementApiCloser {
    /// A closer signing with the credentials and region of `base`.
    pub fn new(base: aws_config::SdkConfig) -> Self {
        Self {
            base,
            client: Mutex::new(None),
        }
    }

    fn client_for(&self, endpoint: &str) -> aws_sdk_apigatewaymanagement::Client {
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
                // One request per attempt: the router retries a failed close itself, once, and
                // only when the invocation has time left (entrypoints::router).
                let conf = aws_sdk_apigatewaymanagement::config::Builder::from(&self.base)
                    .endpoint_url(endpoint)
                    .timeout_config(timeouts)
                    .retry_config(aws_config::retry::RetryConfig::disabled())
                    .build();
                let client = aws_sdk_apigatewaymanagement::Client::from_conf(conf);
                *slot = Some((endpoint.to_owned(), client.clone()));
                client
            }
        }
    }
}

impl ConnectionCloser for ManagementApiCloser {
    fn close<'a>(
        &'a self,
        endpoint: &'a str,
        connection_id: &'a str,
    ) -> BoxFuture<'a, Result<CloseOutcome, CloseError>> {
        Box::pin(async move {
            let client = self.client_for(endpoint);
            match client
                .delete_connection()
                .connection_id(connection_id)
                .send()
                .await
            {
                Ok(_) => Ok(CloseOutcome::Closed),
                Err(SdkError::ServiceError(e))
                    if matches!(e.err(), DeleteConnectionError::GoneException(_)) =>
                {
                    Ok(CloseOutcome::AlreadyGone)
                }
                Err(SdkError::ServiceError(e)) if e.raw().status().as_u16() == 410 => {
                    Ok(CloseOutcome::AlreadyGone)
                }
                Err(e) => {
                    let code = match &e {
                        SdkError::ServiceError(s) => {
                            aws_sdk_apigatewaymanagement::error::ProvideErrorMetadata::code(s.err())
                                .map(str::to_owned)
                                .unwrap_or_else(|| format!("http_{}", s.raw().status().as_u16()))
                        }
                        SdkError::TimeoutError(_) => "timeout".into(),
                        SdkError::DispatchFailure(_) => "dispatch_failure".into(),
                        _ => "sdk_error".into(),
                    };
                    Err(CloseError { code })
                }
            }
        })
    }
}

/// An in-memory closer that records what it was asked to close (unit tests of the router).
#[derive(Default)]
pub struct RecordingCloser {
    closed: Mutex<Vec<(String, String)>>,
}

impl RecordingCloser {
    /// The (endpoint, connection id) pairs closed so far.
    pub fn closed(&self) -> Vec<(String, String)> {
        self.closed.lock().map(|c| c.clone()).unwrap_or_default()
    }
}

impl ConnectionCloser for RecordingCloser {
    fn close<'a>(
        &'a self,
        endpoint: &'a str,
        connection_id: &'a str,
    ) -> BoxFuture<'a, Result<CloseOutcome, CloseError>> {
        if let Ok(mut c) = self.closed.lock() {
            c.push((endpoint.to_owned(), connection_id.to_owned()));
        }
        Box::pin(async { Ok(CloseOutcome::Closed) })
    }
}
