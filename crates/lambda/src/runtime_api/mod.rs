//! The router's Lambda Runtime API loop: next event, handler, answer, one invocation at a time.
//!
//! Every media frame is a router invocation, 50 per second per call, and what an invocation costs
//! around the ~1 µs verdict is the runtime. Under `lambda_runtime` a media frame took 135,000
//! instructions and 8 system calls, the handler 11,000 of them (a pooled hyper client with a
//! connection task, tower layers, the `serde_path_to_error` deserializer, an environment variable
//! set per event, two readiness polls per request); none of it is configurable. Under this loop:
//! 44,000 and 4 (BENCHMARKS.md "Round three"). This loop does
//! what the router needs of the Runtime API and nothing else: blocking HTTP/1.1 on one
//! keep-alive socket ([`http`]), the event read straight into the handler's type, the handler's
//! future run to completion on the binary's current-thread Tokio runtime (the AWS SDK calls it
//! makes need one), and the answer posted. The authorizer and the voice webhook, which run once
//! per call, keep `lambda_runtime`.
//!
//! Failures: an event that is not the handler's type is reported to `/invocation/{id}/error`
//! (with the JSON position only: the document is never echoed, it may carry a call token); a
//! handler that panics likewise; a Runtime API that cannot be reached, stalls (see
//! [`http1_client::Wait`]), answers out of protocol or answers `/next` with anything but 200 ends the
//! process with an error, and Lambda starts a new one. A function that cannot start reports why
//! to `/init/error` ([`report_init_error`], [`exit_init_failed`]) and exits. Not supported,
//! since the router needs none of them: response streaming, X-Ray's `_X_AMZN_TRACE_ID` (the
//! template enables no tracing), SnapStart hooks, concurrent invocations per instance.
//!
//! What the Runtime API may send, next to `lambda_runtime` 1.x (hyper), which the other two
//! functions run on:
//!
//! - headers this loop does not read are skipped whatever their bytes or number (hyper stops at
//!   100); the head is bounded at 64 KiB ([`http1_client::MAX_HEAD`]);
//! - `Lambda-Runtime-Aws-Request-Id`: any visible ASCII (`0x21..=0x7E`), as lambda_runtime reads
//!   it (`HeaderValue::to_str`; a space inside fails its request URI), percent-encoded into the
//!   answer's path when it is not all unreserved characters (`path_id`: it then addresses its own
//!   invocation and nothing else, where lambda_runtime would send `/`, `?`, `#` or `%` as they
//!   are). Missing, empty or anything else ends the loop ([`LoopError::NoRequestId`]), as
//!   lambda_runtime ends (or panics) on it; so do `.` and `..`, which no path segment can carry;
//! - `Lambda-Runtime-Invocation-Id`: echoed when it is visible ASCII, dropped otherwise, as
//!   lambda_runtime does; `Lambda-Runtime-Deadline-Ms`: 0 (the default budget) when missing or
//!   unreadable, where lambda_runtime ends;
//! - the body: `Content-Length`, chunked (extensions and trailers skipped) or until close, at
//!   most 8 MiB *on the wire*, chunk framing included ([`http1_client::MAX_BODY`]; hyper allows 16 KiB of
//!   extensions and of trailers besides the data);
//! - time: no limit while `/next` waits for an event; any other wait, 10 s without a byte or a
//!   response still arriving 10 s after its second read, ends the exchange ([`http1_client::Wait`]).
//!
//! The bytes of every response, the event among them, are wiped from the read buffer as soon as
//! the event is read into the handler's type, and whenever the connection is dropped.

pub mod http1_client;
mod init;

use std::future::Future;
use std::io::Write as _;
use std::panic::AssertUnwindSafe;

use serde::de::DeserializeOwned;
use serde::Serialize;

use self::http1_client::{Connection, Response, Wait};
pub use self::init::{exit_init_failed, report_init_error};

const NEXT: &str = "/2018-06-01/runtime/invocation/next";
const INVOCATION: &str = "/2018-06-01/runtime/invocation/";

/// Why the loop stopped.
#[derive(Debug, thiserror::Error)]
pub enum LoopError {
    /// `AWS_LAMBDA_RUNTIME_API` is not set: not in a Lambda execution environment.
    #[error("AWS_LAMBDA_RUNTIME_API is not set")]
    NoRuntimeApi,
    /// `AWS_LAMBDA_RUNTIME_API` is not an `http` URI or `host:port`.
    #[error("AWS_LAMBDA_RUNTIME_API is not host:port or an http:// URI")]
    BadAddress,
    /// The Runtime API could not be reached or answered out of protocol.
    #[error("Lambda Runtime API: {0}")]
    Io(#[from] std::io::Error),
    /// `/next` answered with a status other than 200.
    #[error("Lambda Runtime API: /next answered {0}")]
    NextStatus(u16),
    /// `/next` answered without a usable request id.
    #[error("Lambda Runtime API: an event without a valid request id")]
    NoRequestId,
    /// `/init/error` answered with a status other than 202.
    #[error("Lambda Runtime API: /init/error answered {0}")]
    InitErrorStatus(u16),
}

/// One event as the Runtime API delivered it.
#[derive(Debug)]
pub struct Invocation<E> {
    /// `Lambda-Runtime-Aws-Request-Id`.
    pub request_id: String,
    /// `Lambda-Runtime-Deadline-Ms`: when the invocation times out, Unix milliseconds (0 if absent).
    pub deadline_ms: u64,
    /// The event document, read into the handler's type.
    pub event: E,
}

/// Runs the invocation loop against `AWS_LAMBDA_RUNTIME_API` until the Runtime API fails.
pub fn run<E, R, F, Fut>(rt: &tokio::runtime::Runtime, handler: F) -> Result<(), LoopError>
where
    E: DeserializeOwned,
    R: Serialize,
    F: FnMut(Invocation<E>) -> Fut,
    Fut: Future<Output = R>,
{
    let address = std::env::var("AWS_LAMBDA_RUNTIME_API").map_err(|_| LoopError::NoRuntimeApi)?;
    run_against(&address, rt, handler)
}

/// [`run`] against the Runtime API at `address`, read as lambda_runtime reads
/// `AWS_LAMBDA_RUNTIME_API`: a URI, `host:port` in Lambda, `http://host:port/prefix` under
/// cargo-lambda's emulator; requests go to its path plus `/2018-06-01/...`.
pub fn run_against<E, R, F, Fut>(
    address: &str,
    rt: &tokio::runtime::Runtime,
    mut handler: F,
) -> Result<(), LoopError>
where
    E: DeserializeOwned,
    R: Serialize,
    F: FnMut(Invocation<E>) -> Fut,
    Fut: Future<Output = R>,
{
    let mut api = RuntimeApi::new(address)?;
    loop {
        let next = api.next()?;
        let event = serde_json::from_slice::<E>(api.connection.body());
        // The raw event can hold a call token: wiped before the handler runs.
        api.connection.release();
        let outcome = match event {
            Ok(event) => {
                let invocation = Invocation {
                    request_id: next.request_id.clone(),
                    deadline_ms: next.deadline_ms,
                    event,
                };
                let run = AssertUnwindSafe(|| rt.block_on(handler(invocation)));
                match std::panic::catch_unwind(run) {
                    Ok(answer) => serde_json::to_vec(&answer)
                        .map_err(|_| Failure::new("Runtime.SerializeError", "answer not JSON")),
                    Err(_) => Err(Failure::new("Runtime.HandlerPanic", "the handler panicked")),
                }
            }
            Err(e) => Err(Failure::unreadable::<E>(&e)),
        };
        match outcome {
            Ok(body) => api.respond(&next, &body)?,
            Err(failure) => {
                tracing::error!(
                    event = "invocation_error",
                    error_type = failure.error_type,
                    error_message = %failure.error_message,
                    request_id = %next.request_id
                );
                api.fail(&next, &failure)?
            }
        }
    }
}

/// What `/error` is told (`errorType`, `errorMessage`): never the event's content.
#[derive(Debug, Serialize)]
struct Failure {
    #[serde(rename = "errorType")]
    error_type: &'static str,
    #[serde(rename = "errorMessage")]
    error_message: String,
}

impl Failure {
    fn new(error_type: &'static str, message: &str) -> Self {
        Failure {
            error_type,
            error_message: message.to_owned(),
        }
    }

    /// serde_json's message can quote the document ("invalid type: string \"...\""), so only
    /// its category and position are kept.
    fn unreadable<E>(e: &serde_json::Error) -> Self {
        let kind = match e.classify() {
            serde_json::error::Category::Io => "unreadable",
            serde_json::error::Category::Syntax => "not JSON",
            serde_json::error::Category::Data => "not the expected shape",
            serde_json::error::Category::Eof => "truncated",
        };
        Failure {
            error_type: "Runtime.UnmarshalError",
            error_message: format!(
                "the event is {kind} for {} (line {}, column {})",
                std::any::type_name::<E>(),
                e.line(),
                e.column()
            ),
        }
    }
}

/// An event from `/next` (its body is in the connection's buffer), with the ids its answer must
/// carry.
#[derive(Debug)]
struct Next {
    request_id: String,
    /// The request id percent-encoded for the answer's path, when it needs it ([`path_id`]).
    encoded_id: Option<String>,
    invocation_id: Option<String>,
    deadline_ms: u64,
}

/// The Runtime API's three calls over one connection, with a reused request buffer.
struct RuntimeApi {
    connection: Connection,
    /// The path prefix of `AWS_LAMBDA_RUNTIME_API`, without a trailing `/` ("" when none).
    prefix: String,
    request: Vec<u8>,
}

impl RuntimeApi {
    fn from_env() -> Result<Self, LoopError> {
        let address =
            std::env::var("AWS_LAMBDA_RUNTIME_API").map_err(|_| LoopError::NoRuntimeApi)?;
        Self::new(&address)
    }

    fn new(address: &str) -> Result<Self, LoopError> {
        let uri: ::http::Uri = address.parse().map_err(|_| LoopError::BadAddress)?;
        let authority = match (uri.scheme_str(), uri.authority()) {
            (None | Some("http"), Some(a)) => a.as_str(),
            _ => return Err(LoopError::BadAddress),
        };
        Ok(RuntimeApi {
            connection: Connection::new(authority),
            prefix: uri.path().trim_end_matches('/').to_owned(),
            request: Vec::with_capacity(1024),
        })
    }

    fn next(&mut self) -> Result<Next, LoopError> {
        self.request.clear();
        write!(
            self.request,
            "GET {}{NEXT} HTTP/1.1\r\nHost: {}\r\nUser-Agent: stream-gate\r\n\r\n",
            self.prefix,
            self.connection.address()
        )?;
        let response = self.connection.exchange(&self.request, Wait::LongPoll)?;
        if response.status != 200 {
            return Err(LoopError::NextStatus(response.status));
        }
        let Response {
            request_id,
            deadline_ms,
            invocation_id,
            ..
        } = response;
        let request_id = request_id
            .filter(|id| is_request_id(id))
            .ok_or(LoopError::NoRequestId)?;
        Ok(Next {
            encoded_id: path_id(&request_id),
            request_id,
            // Visible ASCII already (`http1_client::Response`): safe in a header line.
            invocation_id,
            deadline_ms: deadline_ms.unwrap_or(0),
        })
    }

    fn respond(&mut self, next: &Next, body: &[u8]) -> Result<(), LoopError> {
        self.post(next, "response", None, body)
    }

    fn fail(&mut self, next: &Next, failure: &Failure) -> Result<(), LoopError> {
        let body = serde_json::to_vec(failure).map_err(std::io::Error::other)?;
        self.post(next, "error", Some(failure.error_type), &body)
    }

    fn post(
        &mut self,
        next: &Next,
        what: &str,
        error_type: Option<&str>,
        body: &[u8],
    ) -> Result<(), LoopError> {
        self.request.clear();
        write!(
            self.request,
            "POST {}{INVOCATION}{}/{what} HTTP/1.1\r\nHost: {}\r\n\
             User-Agent: stream-gate\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
            self.prefix,
            next.encoded_id.as_deref().unwrap_or(&next.request_id),
            self.connection.address(),
            body.len()
        )?;
        if let Some(id) = &next.invocation_id {
            write!(self.request, "Lambda-Runtime-Invocation-Id: {id}\r\n")?;
        }
        if let Some(t) = error_type {
            write!(self.request, "Lambda-Runtime-Function-Error-Type: {t}\r\n")?;
        }
        self.request.extend_from_slice(b"\r\n");
        self.request.extend_from_slice(body);
        let response = self.connection.exchange(&self.request, Wait::Answer)?;
        // 202 Accepted; anything else (the invocation timed out, an answer too large) is the
        // Runtime API's verdict on this invocation only: say so, and take the next event.
        if response.status != 202 {
            tracing::warn!(
                event = "runtime_api_refused",
                what,
                status = response.status,
                request_id = %next.request_id
            );
        }
        Ok(())
    }
}

/// A request id lambda_runtime would answer: visible ASCII, `0x21..=0x7E` (its
/// `HeaderValue::to_str`, less the space and tab its request URI then refuses), and not empty,
/// `.` or `..`, which no path segment can carry (a dot segment would address another resource).
fn is_request_id(id: &str) -> bool {
    !matches!(id, "" | "." | "..") && id.bytes().all(|b| (0x21..=0x7e).contains(&b))
}

/// The request id as one path segment, `None` when it is one as it is (Lambda's ids are UUIDs).
///
/// lambda_runtime puts the id into the path unchanged and parses the result as a URI: `/`, `?`,
/// `#` and `%` in an id then change the request (another path, a query, a dropped fragment), and
/// `<`, `>` or a backquote make the URI invalid, which ends its loop. Here every byte outside
/// RFC 3986's unreserved set (`A-Z a-z 0-9 - . _ ~`) is percent-encoded instead, so any visible
/// ASCII id addresses its own invocation and nothing else, and the request line cannot break.
fn path_id(id: &str) -> Option<String> {
    let unreserved = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~');
    if id.bytes().all(unreserved) {
        return None;
    }
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut encoded = String::with_capacity(3 * id.len());
    for b in id.bytes() {
        if unreserved(b) {
            encoded.push(char::from(b));
        } else {
            encoded.push('%');
            encoded.push(char::from(HEX[usize::from(b >> 4)]));
            encoded.push(char::from(HEX[usize::from(b & 0xf)]));
        }
    }
    Some(encoded)
}

#[cfg(test)]
#[path = "loop_tests.rs"]
mod tests;
