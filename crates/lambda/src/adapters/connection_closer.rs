//! Closing a connection: `DeleteConnection` on the API Gateway Management API (`@connections`).
//! 410 Gone means the peer already left, which is as good as closed.

use super::management_client::ManagementClients;
use super::sdk_error::sdk_error_code;

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
    clients: ManagementClients,
}

impl ManagementApiCloser {
    /// A closer signing with the credentials and region of `base`.
    pub fn new(base: impl Into<super::LazySdk>) -> Self {
        Self {
            clients: ManagementClients::new(base),
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
            let client = self.clients.client_for(endpoint).await;
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
                Err(e) => Err(CloseError {
                    code: sdk_error_code(&e),
                }),
            }
        })
    }
}
