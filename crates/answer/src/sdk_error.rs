//! One AWS SDK error to one short code, for every adapter (Secrets Manager, DynamoDB, the
//! Management API, Kinesis): what their errors, logs and metrics say when a call fails.
//!
//! The code is the service's error code (`ThrottlingException`, `ResourceNotFoundException`, ...),
//! else `http_<status>` for a service answer without one, else the kind of failure (`timeout`,
//! `dispatch_failure`, `response_error`, `construction_failure`, `sdk_error`). Never a message
//! body or an error's text, which can quote a request (a record, a secret id).

use aws_sdk_apigatewaymanagement::config::http::HttpResponse;
use aws_sdk_apigatewaymanagement::error::{ProvideErrorMetadata, SdkError};

/// The code of an AWS SDK error (module docs). Every SDK crate's `SdkError` is this one type.
pub fn sdk_error_code<E: ProvideErrorMetadata>(error: &SdkError<E, HttpResponse>) -> String {
    match error {
        SdkError::ServiceError(s) => s
            .err()
            .code()
            .map(str::to_owned)
            .unwrap_or_else(|| format!("http_{}", s.raw().status().as_u16())),
        SdkError::TimeoutError(_) => "timeout".into(),
        SdkError::DispatchFailure(_) => "dispatch_failure".into(),
        SdkError::ResponseError(_) => "response_error".into(),
        SdkError::ConstructionFailure(_) => "construction_failure".into(),
        // `SdkError` is non-exhaustive: a kind added later still gets a code.
        _ => "sdk_error".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_apigatewaymanagement::error::{ConnectorError, ErrorMetadata};
    use aws_sdk_apigatewaymanagement::operation::post_to_connection::PostToConnectionError;

    fn response(status: u16) -> HttpResponse {
        let raw = http::Response::builder()
            .status(status)
            .body("secret body".into())
            .expect("a response");
        HttpResponse::try_from(raw).expect("an SDK response")
    }

    fn service(code: Option<&str>, status: u16) -> SdkError<PostToConnectionError, HttpResponse> {
        let mut meta = ErrorMetadata::builder().message("quoting the request: secret");
        if let Some(code) = code {
            meta = meta.code(code);
        }
        SdkError::service_error(
            PostToConnectionError::generic(meta.build()),
            response(status),
        )
    }

    #[test]
    fn a_service_error_is_its_code_else_its_status() {
        let throttled = service(Some("ProvisionedThroughputExceededException"), 400);
        assert_eq!(
            sdk_error_code(&throttled),
            "ProvisionedThroughputExceededException"
        );
        assert_eq!(sdk_error_code(&service(None, 503)), "http_503");
        assert_eq!(sdk_error_code(&service(None, 403)), "http_403");
    }

    #[test]
    fn other_failures_are_their_kind_and_never_their_text() {
        type E = SdkError<PostToConnectionError, HttpResponse>;
        let io = ConnectorError::io("connection refused: secret".into());
        let cases: [(E, &str); 4] = [
            (SdkError::timeout_error("secret"), "timeout"),
            (SdkError::dispatch_failure(io), "dispatch_failure"),
            (
                SdkError::response_error("secret", response(200)),
                "response_error",
            ),
            (
                SdkError::construction_failure("secret"),
                "construction_failure",
            ),
        ];
        for (error, code) in cases {
            assert_eq!(sdk_error_code(&error), code);
        }
    }
}
