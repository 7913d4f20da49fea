//! One keep-alive HTTP/1.1 connection to the Lambda Runtime API, blocking.
//!
//! The Runtime API is a loopback HTTP server in the execution environment. Blocking reads and
//! writes on one socket make an invocation four system calls (a write and a read per request,
//! the process asleep in the read between events), where an event loop adds readiness polls.
//! Response heads are parsed with `httparse` (hyper's parser); bodies come with `Content-Length`,
//! `Transfer-Encoding: chunked` or, on a closing connection, until the end.
//!
//! What is tolerated, as `lambda_runtime` (hyper) tolerates it or more: any number of headers
//! and any bytes in the headers this client does not read (hyper stops at 100 headers); chunk
//! extensions and trailers, which are skipped. What is bounded: the head at [`MAX_HEAD`]
//! (request line, headers, whatever their number); the body at [`MAX_BODY`] *as it is on the
//! wire*, so chunk-size lines, chunk extensions and trailers count toward it (hyper allows 16 KiB
//! of extensions and 16 KiB of trailers); memory at about twice the largest bound, the read
//! buffer doubling; time by [`STALL_LIMIT`] and [`RESPONSE_LIMIT`] (see [`Wait`]). Every line is
//! searched for once, so a server that drips a response byte by byte costs linear work, not
//! quadratic. Every byte read (the event can hold a call token) is wiped ([`zeroize`]) when its
//! response is released ([`Connection::release`], before the next exchange), when the buffer
//! grows, when the connection is dropped for an error or a `Connection: close`, and when the
//! [`Connection`] itself is dropped.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::ops::Range;
use std::time::{Duration, Instant};

use zeroize::Zeroize;

/// The largest response head accepted (status line and headers).
pub const MAX_HEAD: usize = 64 * 1024;
/// The largest body accepted on the wire: Lambda's 6 MB invocation payload, with room to spare
/// for chunked framing.
pub const MAX_BODY: usize = 8 * 1024 * 1024;
/// How long one read or write may wait for the socket, except the long poll's wait for the first
/// byte of an event ([`Wait::LongPoll`]).
pub const STALL_LIMIT: Duration = Duration::from_secs(10);
/// How long a response that needs more than one read may take, from its second read: a server
/// that drips bytes just faster than [`STALL_LIMIT`] is cut off here, so no response that has
/// begun takes more than `RESPONSE_LIMIT + STALL_LIMIT` (20 s).
pub const RESPONSE_LIMIT: Duration = Duration::from_secs(10);
/// Headers parsed without an allocation; a head with more gets a vector sized by its lines.
const HEADERS_ON_STACK: usize = 64;
const READ_CHUNK: usize = 16 * 1024;

/// How long an exchange may wait for its response.
///
/// The Runtime API is the execution environment's own loopback server, not reachable by
/// callers, and `lambda_runtime` sets no timeout on it at all. `/next` is a long poll: it answers
/// when an event comes, which may be hours later (the environment is frozen meanwhile; AWS's
/// Runtime API reference says not to set a timeout on it), so its wait for the *first* byte has
/// no limit (the socket's read timeout only wakes the read, which
/// goes back to waiting). Every other wait, a POST's answer and any response once it has begun,
/// is a stall after [`STALL_LIMIT`], and a response is cut off [`RESPONSE_LIMIT`] after its
/// second read: a hung or hostile server ends the exchange with `TimedOut` (and the loop, and the
/// process, which Lambda replaces) instead of holding the router for ever. Lambda freezes an
/// environment only while its runtime waits in `/next`, so a freeze never runs these clocks.
/// The hot path pays nothing for them: the timeouts are set once per connection, and the clock
/// is read only from a response's second read (an event arrives in one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// `/next`: any time until the first byte of the event.
    LongPoll,
    /// Anything else: the Runtime API answers at once.
    Answer,
}

/// A response of the Runtime API. Its body stays in the connection's buffer
/// ([`Connection::body`]) until [`Connection::release`].
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Response {
    /// The HTTP status code.
    pub status: u16,
    /// `Lambda-Runtime-Aws-Request-Id`, when it is visible ASCII (as `http`'s `to_str`).
    pub request_id: Option<String>,
    /// `Lambda-Runtime-Deadline-Ms`, when it is a number of milliseconds.
    pub deadline_ms: Option<u64>,
    /// `Lambda-Runtime-Invocation-Id`, when it is visible ASCII.
    pub invocation_id: Option<String>,
}

/// The time limits of a connection (the constants, shorter in tests).
#[derive(Debug, Clone, Copy)]
struct Limits {
    stall: Duration,
    response: Duration,
}

/// A keep-alive connection; reconnects when the server closed it.
#[derive(Debug)]
pub struct Connection {
    address: String,
    stream: Option<TcpStream>,
    limits: Limits,
    /// Read buffer: `buf[..filled]` is what was read and not yet released. Zeroed when it grows
    /// (not before every read), wiped as it is released.
    buf: Vec<u8>,
    filled: usize,
    /// The response last read: its (de-chunked) body and where it ends in `buf`.
    body: Range<usize>,
    end: usize,
    /// The server closes the connection after the response last read.
    closing: bool,
    /// The exchange in progress: what it waits for, its reads, its clock.
    wait: Wait,
    reads: u32,
    since: Option<Instant>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.buf.zeroize();
    }
}

impl Connection {
    /// A connection to `address` (`host:port`), opened on first use.
    pub fn new(address: &str) -> Self {
        Connection::with_limits(address, STALL_LIMIT, RESPONSE_LIMIT)
    }

    fn with_limits(address: &str, stall: Duration, response: Duration) -> Self {
        Connection {
            address: address.to_owned(),
            stream: None,
            limits: Limits { stall, response },
            buf: vec![0; READ_CHUNK],
            filled: 0,
            body: 0..0,
            end: 0,
            closing: false,
            wait: Wait::Answer,
            reads: 0,
            since: None,
        }
    }

    /// The `host:port` this connection goes to (for the `Host` header).
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The body of the response last read (empty after [`Connection::release`]).
    pub fn body(&self) -> &[u8] {
        &self.buf[self.body.clone()]
    }

    /// Wipes the response last read and drops it from the buffer (and the connection, if the
    /// server closes it). Every exchange starts with it; the loop calls it as soon as the event
    /// is read into the handler's type.
    pub fn release(&mut self) {
        if self.closing {
            return self.disconnect();
        }
        let (end, filled) = (self.end, self.filled);
        self.buf[..end].zeroize();
        if filled > end {
            // Bytes past the response (none from a server that waits for each request): moved to
            // the front, and their old place wiped.
            self.buf.copy_within(end..filled, 0);
            self.buf[filled - end..filled].zeroize();
        }
        self.filled = filled - end;
        self.end = 0;
        self.body = 0..0;
        // A large event grew the buffer: give the memory back once it is read (it is wiped).
        if self.filled == 0 && self.buf.len() > 4 * READ_CHUNK {
            self.buf = vec![0; READ_CHUNK];
        }
    }

    /// Wipes everything read and closes the socket.
    fn disconnect(&mut self) {
        self.buf[..self.filled].zeroize();
        self.stream = None;
        self.filled = 0;
        self.end = 0;
        self.body = 0..0;
        self.closing = false;
    }

    /// Sends one complete request (head and body in `request`) and reads its response, after
    /// releasing the previous one. A kept-alive connection that the server had closed is
    /// reopened once, and the request sent again, when no byte of a response had arrived on it.
    pub fn exchange(&mut self, request: &[u8], wait: Wait) -> io::Result<Response> {
        self.release();
        let reused = self.stream.is_some();
        match self.try_exchange(request, wait) {
            Err((e, false)) if reused && is_stale(&e) => {
                self.try_exchange(request, wait).map_err(|(e, _)| e)
            }
            other => other.map_err(|(e, _)| e),
        }
    }

    /// An exchange; an error comes with whether any byte of the response had arrived.
    fn try_exchange(&mut self, request: &[u8], wait: Wait) -> Result<Response, (io::Error, bool)> {
        (self.wait, self.reads, self.since) = (wait, 0, None);
        let result = self.send(request).and_then(|()| self.read_response());
        result.map_err(|e| {
            let got_bytes = self.filled > 0;
            // Whatever was half read belongs to a broken exchange.
            self.disconnect();
            (e, got_bytes)
        })
    }

    fn send(&mut self, request: &[u8]) -> io::Result<()> {
        if self.stream.is_none() {
            let stream = TcpStream::connect(&self.address)?;
            stream.set_nodelay(true)?;
            stream.set_read_timeout(Some(self.limits.stall))?;
            stream.set_write_timeout(Some(self.limits.stall))?;
            self.stream = Some(stream);
        }
        match self.stream.as_mut() {
            Some(s) => s
                .write_all(request)
                .map_err(|e| stalled_if_timeout(e, "Runtime API stalled: write timed out")),
            None => Err(io::ErrorKind::NotConnected.into()),
        }
    }

    /// Reads at least one more byte into `buf`, growing it when full (callers bound what they
    /// wait for by `MAX_HEAD` and `MAX_BODY`); EOF is an error, and so is a stall (see [`Wait`]).
    fn fill(&mut self) -> io::Result<()> {
        if self.filled == self.buf.len() {
            self.grow();
        }
        let stream = self
            .stream
            .as_mut()
            .ok_or(io::Error::from(io::ErrorKind::NotConnected))?;
        let n = loop {
            match stream.read(&mut self.buf[self.filled..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // The long poll waiting for an event: the timeout only woke the read.
                Err(e) if is_timeout(&e) && self.wait == Wait::LongPoll && self.filled == 0 => {}
                Err(e) => return Err(stalled_if_timeout(e, "Runtime API stalled: read timed out")),
            }
        };
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        self.filled += n;
        self.reads += 1;
        if self.reads > 1 {
            let now = Instant::now();
            let since = *self.since.get_or_insert(now);
            if now.duration_since(since) > self.limits.response {
                return Err(io::Error::new(io::ErrorKind::TimedOut, "response too slow"));
            }
        }
        Ok(())
    }

    /// Doubles the buffer; the old one is wiped before it is freed.
    fn grow(&mut self) {
        let mut bigger = vec![0; self.buf.len() * 2];
        bigger[..self.filled].copy_from_slice(&self.buf[..self.filled]);
        self.buf[..self.filled].zeroize();
        self.buf = bigger;
    }

    fn read_response(&mut self) -> io::Result<Response> {
        let (head_len, response, framing, close) = self.read_head()?;
        let (body, end) = match framing {
            Framing::Length(length) => {
                if length > MAX_BODY {
                    return Err(invalid("response body too large"));
                }
                while self.filled < head_len + length {
                    self.fill()?;
                }
                (head_len..head_len + length, head_len + length)
            }
            Framing::Chunked => self.read_chunked(head_len)?,
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
                (head_len..self.filled, self.filled)
            }
        };
        self.body = body;
        self.end = end;
        self.closing = close;
        Ok(response)
    }

    /// Reads until the head is complete. The head is parsed again only once the bytes read hold
    /// an empty line, so a head that arrives byte by byte is not parsed once per byte.
    fn read_head(&mut self) -> io::Result<Head> {
        let mut searched: usize = 0;
        loop {
            let seen = &self.buf[searched.saturating_sub(3)..self.filled];
            if searched == 0 || ends_head(seen) {
                if let Some(head) = parse_head(&self.buf[..self.filled.min(MAX_HEAD)])? {
                    return Ok(head);
                }
            }
            if self.filled >= MAX_HEAD {
                return Err(invalid("response head too large"));
            }
            searched = self.filled;
            self.fill()?;
        }
    }

    /// Reads more of a chunked body that starts at `start`: its bytes on the wire, framing
    /// included, are bounded by `MAX_BODY`.
    fn fill_body(&mut self, start: usize) -> io::Result<()> {
        if self.filled - start > MAX_BODY {
            return Err(invalid("response body too large"));
        }
        self.fill()
    }

    /// The position of the first `byte` at or after `from`, reading as needed (each byte is
    /// searched once).
    fn find(&mut self, byte: u8, from: usize, start: usize) -> io::Result<usize> {
        let mut searched = from;
        loop {
            if let Some(i) = self.buf[searched..self.filled]
                .iter()
                .position(|&b| b == byte)
            {
                return Ok(searched + i);
            }
            searched = self.filled;
            self.fill_body(start)?;
        }
    }

    /// De-chunks the body that starts at `start` in place; returns the body's range and where the
    /// message ends.
    fn read_chunked(&mut self, start: usize) -> io::Result<(Range<usize>, usize)> {
        let (mut pos, mut out) = (start, start);
        loop {
            // httparse ends a chunk-size line (extensions included) at its first CR, which must
            // be followed by LF.
            let cr = self.find(b'\r', pos, start)?;
            while self.filled < cr + 2 {
                self.fill_body(start)?;
            }
            let size = match httparse::parse_chunk_size(&self.buf[pos..cr + 2]) {
                Ok(httparse::Status::Complete((n, size))) if n == cr + 2 - pos => size,
                _ => return Err(invalid("bad chunk size")),
            };
            let size = usize::try_from(size).map_err(|_| invalid("chunk too large"))?;
            if size > MAX_BODY - (out - start) {
                return Err(invalid("response body too large"));
            }
            pos = cr + 2;
            if size == 0 {
                return Ok((start..out, self.skip_trailers(pos, start)?));
            }
            while self.filled < pos + size + 2 {
                self.fill_body(start)?;
            }
            if &self.buf[pos + size..pos + size + 2] != b"\r\n" {
                return Err(invalid("chunk not followed by CRLF"));
            }
            // The data moves down over the chunk-size lines it followed (`out` <= `pos`).
            self.buf.copy_within(pos..pos + size, out);
            out += size;
            pos += size + 2;
        }
    }

    /// Skips the trailer lines from `pos` to the empty line; returns where the message ends.
    fn skip_trailers(&mut self, mut pos: usize, start: usize) -> io::Result<usize> {
        loop {
            let lf = self.find(b'\n', pos, start)?;
            let line = &self.buf[pos..lf];
            if line.is_empty() || line == b"\r" {
                return Ok(lf + 1);
            }
            pos = lf + 1;
        }
    }
}

/// Whether `bytes` hold the empty line that ends a head (`\n\n`, with or without CRs).
fn ends_head(bytes: &[u8]) -> bool {
    bytes
        .windows(2)
        .enumerate()
        .any(|(i, w)| w == b"\n\n" || (w == b"\n\r" && bytes.get(i + 2) == Some(&b'\n')))
}

/// How the body of a response is delimited.
enum Framing {
    Length(usize),
    Chunked,
    /// No length on a response the server closes the connection after.
    UntilClose,
}

/// A parsed head: its length, the response without a body, the framing and whether the server
/// closes the connection after it.
type Head = (usize, Response, Framing, bool);

/// Parses the head in `buf`: `None` while incomplete. Up to [`HEADERS_ON_STACK`] headers take no
/// allocation; a head with more is parsed again with room for one header per line it holds
/// (bounded by `buf`, which is at most [`MAX_HEAD`] long).
fn parse_head(buf: &[u8]) -> io::Result<Option<Head>> {
    let mut on_stack = [httparse::EMPTY_HEADER; HEADERS_ON_STACK];
    let mut on_heap;
    let mut parsed = httparse::Response::new(&mut on_stack);
    let mut status = parsed.parse(buf);
    if matches!(status, Err(httparse::Error::TooManyHeaders)) {
        let lines = buf.iter().filter(|&&b| b == b'\n').count();
        on_heap = vec![httparse::EMPTY_HEADER; lines + 1];
        parsed = httparse::Response::new(&mut on_heap);
        status = parsed.parse(buf);
    }
    let head_len = match status {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err(invalid("malformed response head")),
    };
    let mut response = Response {
        status: parsed.code.unwrap_or(0),
        ..Response::default()
    };
    let (mut length, mut chunked, mut close) = (None, false, false);
    // The first of each Runtime API header counts, as `HeaderMap::get` in lambda_runtime.
    let mut seen = [false; 3];
    for h in parsed.headers.iter() {
        let (name, value) = (h.name, h.value.trim_ascii());
        if name.eq_ignore_ascii_case("content-length") {
            let n = std::str::from_utf8(value)
                .ok()
                .and_then(|v| v.parse::<usize>().ok())
                .ok_or_else(|| invalid("bad length"))?;
            if length.is_some_and(|l| l != n) {
                return Err(invalid("conflicting lengths"));
            }
            length = Some(n);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.eq_ignore_ascii_case(b"chunked");
            if !chunked {
                return Err(invalid("unsupported transfer encoding"));
            }
        } else if name.eq_ignore_ascii_case("connection") {
            close = value.eq_ignore_ascii_case(b"close");
        } else if name.eq_ignore_ascii_case("lambda-runtime-aws-request-id") {
            first(&mut response.request_id, &mut seen[0], value);
        } else if name.eq_ignore_ascii_case("lambda-runtime-invocation-id") {
            first(&mut response.invocation_id, &mut seen[1], value);
        } else if name.eq_ignore_ascii_case("lambda-runtime-deadline-ms") && !seen[2] {
            seen[2] = true;
            response.deadline_ms = visible_ascii(value).and_then(|v| v.parse().ok());
        }
        // Any other header is skipped, whatever its bytes.
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

/// Keeps `value` in `slot` when it is the first one (`seen`) and visible ASCII: lambda_runtime's
/// `HeaderValue::to_str` fails on anything else, and a value that fails is no value.
fn first(slot: &mut Option<String>, seen: &mut bool, value: &[u8]) {
    if !*seen {
        *seen = true;
        *slot = visible_ascii(value).map(str::to_owned);
    }
}

/// `value` as text when every byte is visible ASCII, space or tab: `http`'s
/// `HeaderValue::to_str`, which lambda_runtime reads the Runtime API's headers with.
fn visible_ascii(value: &[u8]) -> Option<&str> {
    if value
        .iter()
        .all(|&b| (0x20..0x7f).contains(&b) || b == b'\t')
    {
        std::str::from_utf8(value).ok()
    } else {
        None
    }
}

fn invalid(what: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

/// A socket timeout (`WouldBlock` on Unix, `TimedOut` on Windows).
fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// A socket timeout as `TimedOut` with `message`; any other error as it is.
fn stalled_if_timeout(e: io::Error, message: &'static str) -> io::Error {
    if is_timeout(&e) {
        io::Error::new(io::ErrorKind::TimedOut, message)
    } else {
        e
    }
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
#[path = "http1_client_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "hostile_tests.rs"]
mod hostile_tests;
