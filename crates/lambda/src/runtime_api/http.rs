//! One keep-alive HTTP/1.1 connection to the Lambda Runtime API, blocking.
//!
//! The Runtime API is a loopback HTTP server in the execution environment. Blocking reads and
//! writes on one socket make an invocation four system calls (a write and a read per request,
//! the process asleep in the read between events), where an event loop adds readiness polls.
//! Responses are parsed with `httparse` (hyper's parser); bodies come with `Content-Length` or
//! `Transfer-Encoding: chunked`, and every size is bounded.

use std::io::{self, Read, Write};
use std::net::TcpStream;

/// The largest response head accepted (request line and headers).
pub const MAX_HEAD: usize = 64 * 1024;
/// The largest body accepted: Lambda's 6 MB invocation payload, with room to spare.
pub const MAX_BODY: usize = 8 * 1024 * 1024;
const MAX_HEADERS: usize = 64;
const READ_CHUNK: usize = 16 * 1024;

/// The headers of a Runtime API response this crate reads (lower-case names).
const WANTED: [&str; 3] = [
    "lambda-runtime-aws-request-id",
    "lambda-runtime-deadline-ms",
    "lambda-runtime-invocation-id",
];

/// A response of the Runtime API.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Response {
    /// The HTTP status code.
    pub status: u16,
    /// `Lambda-Runtime-Aws-Request-Id`.
    pub request_id: Option<String>,
    /// `Lambda-Runtime-Deadline-Ms`.
    pub deadline_ms: Option<String>,
    /// `Lambda-Runtime-Invocation-Id`.
    pub invocation_id: Option<String>,
    /// The body, de-chunked.
    pub body: Vec<u8>,
}

/// A keep-alive connection; reconnects when the server closed it.
#[derive(Debug)]
pub struct Connection {
    address: String,
    stream: Option<TcpStream>,
    /// Read buffer, zeroed once when it grows (not on every read): `buf[..filled]` is what was
    /// read and not yet consumed.
    buf: Vec<u8>,
    filled: usize,
}

impl Connection {
    /// A connection to `address` (`host:port`), opened on first use.
    pub fn new(address: &str) -> Self {
        Connection {
            address: address.to_owned(),
            stream: None,
            buf: vec![0; READ_CHUNK],
            filled: 0,
        }
    }

    /// The `host:port` this connection goes to (for the `Host` header).
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Sends one complete request (head and body in `request`) and reads its response. A
    /// kept-alive connection that the server had closed is reopened once, and the request sent
    /// again, when no byte of a response had arrived on it.
    pub fn exchange(&mut self, request: &[u8]) -> io::Result<Response> {
        let reused = self.stream.is_some();
        match self.try_exchange(request) {
            Err((e, false)) if reused && is_stale(&e) => {
                self.try_exchange(request).map_err(|(e, _)| e)
            }
            other => other.map_err(|(e, _)| e),
        }
    }

    /// An exchange; an error comes with whether any byte of the response had arrived.
    fn try_exchange(&mut self, request: &[u8]) -> Result<Response, (io::Error, bool)> {
        let result = self.send(request).and_then(|()| self.read_response());
        result.map_err(|e| {
            let got_bytes = self.filled > 0;
            // Whatever was half read belongs to a broken exchange.
            self.stream = None;
            self.filled = 0;
            (e, got_bytes)
        })
    }

    fn send(&mut self, request: &[u8]) -> io::Result<()> {
        if self.stream.is_none() {
            let stream = TcpStream::connect(&self.address)?;
            stream.set_nodelay(true)?;
            self.stream = Some(stream);
            self.filled = 0;
        }
        match self.stream.as_mut() {
            Some(s) => s.write_all(request),
            None => Err(io::ErrorKind::NotConnected.into()),
        }
    }

    /// Reads at least one more byte into `buf`, growing it when full (callers bound what they
    /// wait for by `MAX_HEAD` and `MAX_BODY`); EOF is an error.
    fn fill(&mut self) -> io::Result<()> {
        let stream = self
            .stream
            .as_mut()
            .ok_or(io::Error::from(io::ErrorKind::NotConnected))?;
        if self.filled == self.buf.len() {
            self.buf.resize(self.buf.len() * 2, 0);
        }
        let n = stream.read(&mut self.buf[self.filled..])?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        self.filled += n;
        Ok(())
    }

    /// Drops the first `end` bytes read (one whole response).
    fn consume(&mut self, end: usize) {
        self.buf.copy_within(end..self.filled, 0);
        self.filled -= end;
        // A large event grew the buffer: give the memory back once it is read.
        if self.filled == 0 && self.buf.len() > 4 * READ_CHUNK {
            self.buf = vec![0; READ_CHUNK];
        }
    }

    fn read_response(&mut self) -> io::Result<Response> {
        let (head_len, mut response, framing, close) = loop {
            if let Some(head) = parse_head(&self.buf[..self.filled])? {
                break head;
            }
            if self.filled > MAX_HEAD {
                return Err(invalid("response head too large"));
            }
            self.fill()?;
        };
        let end = match framing {
            Framing::Length(length) => {
                if length > MAX_BODY {
                    return Err(invalid("response body too large"));
                }
                while self.filled < head_len + length {
                    self.fill()?;
                }
                response.body = self.buf[head_len..head_len + length].to_vec();
                head_len + length
            }
            Framing::Chunked => self.read_chunked(head_len, &mut response.body)?,
            Framing::UntilClose => {
                loop {
                    if self.filled - head_len > MAX_BODY {
                        return Err(invalid("response body too large"));
                    }
                    match self.fill() {
                        Ok(()) => {}
                        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break,
                        Err(e) => return Err(e),
                    }
                }
                response.body = self.buf[head_len..self.filled].to_vec();
                self.filled
            }
        };
        self.consume(end);
        if close {
            self.stream = None;
            self.filled = 0;
        }
        Ok(response)
    }

    /// De-chunks the body that starts at `pos`; returns where the message ends.
    fn read_chunked(&mut self, mut pos: usize, body: &mut Vec<u8>) -> io::Result<usize> {
        loop {
            let (consumed, size) = loop {
                match httparse::parse_chunk_size(&self.buf[pos..self.filled]) {
                    Ok(httparse::Status::Complete(c)) => break c,
                    Ok(httparse::Status::Partial) if self.filled - pos <= MAX_HEAD => {
                        self.fill()?
                    }
                    _ => return Err(invalid("bad chunk size")),
                }
            };
            let size = usize::try_from(size).map_err(|_| invalid("chunk too large"))?;
            if size > MAX_BODY - body.len() {
                return Err(invalid("response body too large"));
            }
            pos += consumed;
            if size == 0 {
                // Trailers, if any, then the empty line.
                loop {
                    let rest = &self.buf[pos..self.filled];
                    match rest.windows(2).position(|w| w == b"\r\n") {
                        Some(0) => return Ok(pos + 2),
                        Some(i) => pos += i + 2,
                        None if rest.len() <= MAX_HEAD => self.fill()?,
                        None => return Err(invalid("trailers too large")),
                    }
                }
            }
            while self.filled < pos + size + 2 {
                self.fill()?;
            }
            if &self.buf[pos + size..pos + size + 2] != b"\r\n" {
                return Err(invalid("chunk not followed by CRLF"));
            }
            body.extend_from_slice(&self.buf[pos..pos + size]);
            pos += size + 2;
        }
    }
}

/// How the body of a response is delimited.
enum Framing {
    Length(usize),
    Chunked,
    /// No length on a response the server closes the connection after.
    UntilClose,
}

/// Parses the head in `buf`: `None` while incomplete; else its length, the response without a
/// body, the framing and whether the server closes the connection after it.
fn parse_head(buf: &[u8]) -> io::Result<Option<(usize, Response, Framing, bool)>> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Response::new(&mut headers);
    let head_len = match parsed.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err(invalid("malformed response head")),
    };
    let mut response = Response {
        status: parsed.code.unwrap_or(0),
        ..Response::default()
    };
    let (mut length, mut chunked, mut close) = (None, false, false);
    for h in parsed.headers.iter() {
        let value = std::str::from_utf8(h.value).map_err(|_| invalid("header not UTF-8"))?;
        let name = h.name;
        if name.eq_ignore_ascii_case("content-length") {
            let n: usize = value.trim().parse().map_err(|_| invalid("bad length"))?;
            if length.is_some_and(|l| l != n) {
                return Err(invalid("conflicting lengths"));
            }
            length = Some(n);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.trim().eq_ignore_ascii_case("chunked");
            if !chunked {
                return Err(invalid("unsupported transfer encoding"));
            }
        } else if name.eq_ignore_ascii_case("connection") {
            close = value.trim().eq_ignore_ascii_case("close");
        } else if let Some(i) = WANTED.iter().position(|w| name.eq_ignore_ascii_case(w)) {
            let slot = match i {
                0 => &mut response.request_id,
                1 => &mut response.deadline_ms,
                _ => &mut response.invocation_id,
            };
            *slot = Some(value.trim().to_owned());
        }
    }
    let framing = match (chunked, length, close) {
        (true, _, _) => Framing::Chunked,
        (false, Some(n), _) => Framing::Length(n),
        (false, None, true) => Framing::UntilClose,
        // No length on a keep-alive response: only a body-less one can be delimited.
        (false, None, false) => Framing::Length(0),
    };
    Ok(Some((head_len, response, framing, close)))
}

fn invalid(what: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

/// Errors that mean the kept-alive connection was closed under us.
fn is_stale(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::UnexpectedEof
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::NotConnected
    )
}

#[cfg(test)]
#[path = "http_tests.rs"]
mod tests;
