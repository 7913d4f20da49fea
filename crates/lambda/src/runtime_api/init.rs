//! A function that cannot start says why, through the Runtime API's `/runtime/init/error`, and
//! exits: the failure reaches Lambda with its reason (the Runtime API documents the path, the
//! `Lambda-Runtime-Function-Error-Type` header as `category.reason`, and a 202 answer; a 500 means
//! the runtime must exit), not only as a process that ended.
//!
//! Used by all three binaries before they serve anything (the authorizer and the voice webhook
//! before `lambda_runtime` starts), so one blocking request on its own connection, outside any
//! runtime, is all it needs.

use std::io::Write as _;

use serde::Serialize;

use super::http1_client::Wait;
use super::{LoopError, RuntimeApi};

const INIT_ERROR: &str = "/2018-06-01/runtime/init/error";
/// The error type sent when the caller's is not a header token.
const FALLBACK_TYPE: &str = "Runtime.InitError";

/// The body of `/init/error`, as the Runtime API documents it.
#[derive(Serialize)]
struct InitError<'a> {
    #[serde(rename = "errorType")]
    error_type: &'a str,
    #[serde(rename = "errorMessage")]
    error_message: &'a str,
}

/// Posts `{"errorType": error_type, "errorMessage": message}` to `/2018-06-01/runtime/init/error`
/// of `AWS_LAMBDA_RUNTIME_API`, with `Lambda-Runtime-Function-Error-Type: error_type` (an error
/// type that is not visible ASCII without spaces is sent as `Runtime.InitError`). `message` must
/// name what failed and why, never a value: it reaches the caller of the invocation and the logs.
/// Any status but 202 is [`LoopError::InitErrorStatus`].
pub fn report_init_error(error_type: &str, message: &str) -> Result<(), LoopError> {
    RuntimeApi::from_env()?.init_error(error_type, message)
}

/// Logs `message` at ERROR (`event = "init_error"`), reports it with [`report_init_error`] and
/// exits with status 1, whether or not the report reached the Runtime API: a function that
/// cannot start must not serve anything.
pub fn exit_init_failed(error_type: &str, message: &str) -> ! {
    tracing::error!(event = "init_error", error_type, error_message = message);
    if let Err(e) = report_init_error(error_type, message) {
        tracing::error!(event = "init_error_not_reported", error = %e);
    }
    std::process::exit(1)
}

impl RuntimeApi {
    pub(super) fn init_error(&mut self, error_type: &str, message: &str) -> Result<(), LoopError> {
        let is_token =
            !error_type.is_empty() && error_type.bytes().all(|b| (0x21..=0x7e).contains(&b));
        let error_type = if is_token { error_type } else { FALLBACK_TYPE };
        let body = serde_json::to_vec(&InitError {
            error_type,
            error_message: message,
        })
        .map_err(std::io::Error::other)?;
        self.request.clear();
        write!(
            self.request,
            "POST {}{INIT_ERROR} HTTP/1.1\r\nHost: {}\r\nUser-Agent: stream-gate\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\
             Lambda-Runtime-Function-Error-Type: {error_type}\r\n\r\n",
            self.prefix,
            self.connection.address(),
            body.len()
        )?;
        self.request.extend_from_slice(&body);
        let response = self.connection.exchange(&self.request, Wait::Answer)?;
        match response.status {
            202 => Ok(()),
            status => Err(LoopError::InitErrorStatus(status)),
        }
    }
}
