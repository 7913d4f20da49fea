//! Answering the caller: an application posts Twilio's outbound messages (Media Streams `media`,
//! `mark`, `clear`; ConversationRelay `text`, `play`, `sendDigits`, `language`, `end`) to the
//! connection with `PostToConnection` on the `@connections` endpoint its records name
//! (`managementEndpoint`). Only a `SocketMessage` (an `Outbound` or a `RelayOutbound`, each valid by
//! construction) can be posted, so nothing Twilio would reject (Media Streams warning 31951,
//! ConversationRelay error 64107) is ever written to the socket.
//!
//! IAM: `execute-api:ManageConnections` on
//! `arn:{partition}:execute-api:{region}:{account}:{api_id}/{stage}/POST/@connections/{connection_id}`
//! (`stream_gate_lambda::iam::POST_TO_CONNECTION`, which the template's policies are checked against).

use crate::management_client::ManagementClients;
use crate::sdk_error::sdk_error_code;

use aws_sdk_apigatewaymanagement::error::SdkError;
use aws_sdk_apigatewaymanagement::operation::post_to_connection::PostToConnectionError;
use aws_sdk_apigatewaymanagement::primitives::Blob;

use stream_gate_domain::socket_message::SocketMessage;

/// What happened to a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PostOutcome {
    /// API Gateway took it for the connection.
    Sent,
    /// The connection is gone (410): the call ended; stop answering it.
    Gone,
}

/// Why a post failed: the service error code (`ForbiddenException`, `LimitExceededException`,
/// `PayloadTooLargeException`, ...) or the transport failure kind; never the message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("post failed: {code}")]
pub struct PostError {
    /// The code.
    pub code: String,
}

/// Posts outbound messages through the AWS SDK's Management API client, built once per endpoint
/// and reused. One request per call (no SDK retries: a repeated `media` would play twice), each
/// bounded (1 s per attempt, 1.5 s in all).
pub struct ConnectionPoster {
    clients: ManagementClients,
}

impl ConnectionPoster {
    /// A poster signing with the credentials and region of `base`.
    pub fn new(base: impl Into<crate::sdk::LazySdk>) -> Self {
        Self {
            clients: ManagementClients::new(base),
        }
    }

    /// Sends `message` to `connection_id` at the `@connections` `endpoint` (a record's
    /// `managementEndpoint`, `https://{api}.execute-api.{region}.amazonaws.com/{stage}`).
    pub async fn post(
        &self,
        endpoint: &str,
        connection_id: &str,
        message: &impl SocketMessage,
    ) -> Result<PostOutcome, PostError> {
        let client = self
            .clients
            .client_for(endpoint.trim_end_matches('/'))
            .await;
        match client
            .post_to_connection()
            .connection_id(connection_id)
            .data(Blob::new(message.to_json()))
            .send()
            .await
        {
            Ok(_) => Ok(PostOutcome::Sent),
            Err(SdkError::ServiceError(e))
                if matches!(e.err(), PostToConnectionError::GoneException(_))
                    || e.raw().status().as_u16() == 410 =>
            {
                Ok(PostOutcome::Gone)
            }
            Err(e) => Err(PostError {
                code: sdk_error_code(&e),
            }),
        }
    }
}
