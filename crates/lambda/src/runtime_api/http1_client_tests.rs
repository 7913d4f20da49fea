//! The connection against real loopback sockets: a server thread answers each request with
//! canned bytes, written in small pieces so every partial-read path runs.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;

use super::*;

pub(super) const GET: &[u8] = b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n";

/// Reads one request head (the tests send no bodies) from `reader`; false at EOF.
pub(super) fn read_request(reader: &mut BufReader<TcpStream>) -> bool {
    let mut line = String::new();
    loop {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return false,
            Ok(_) if line == "\r\n" => return true,
            Ok(_) => {}
        }
    }
}

/// A server that answers the requests of each connection with the next of `answers`, writing
/// `piece` bytes at a time; after `per_connection` answers it closes the connection.
/// Returns its address and a count of accepted connections.
pub(super) fn serve(
    answers: Vec<Vec<u8>>,
    per_connection: usize,
    piece: usize,
) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = listener.local_addr().expect("addr").to_string();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    thread::spawn(move || {
        let mut answers = answers.into_iter();
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            count.fetch_add(1, Ordering::SeqCst);
            let _ = stream.set_nodelay(true);
            let mut writer = stream.try_clone().expect("clone");
            let mut reader = BufReader::new(stream);
            for _ in 0..per_connection {
                if !read_request(&mut reader) {
                    break;
                }
                let Some(answer) = answers.next() else { return };
                for chunk in answer.chunks(piece.max(1)) {
                    if writer
                        .write_all(chunk)
                        .and_then(|()| writer.flush())
                        .is_err()
                    {
                        break;
                    }
                }
            }
        }
    });
    (address, accepted)
}

pub(super) fn ok(body: &str, extra: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n{extra}\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[test]
fn a_response_in_one_byte_pieces_is_read_whole_with_the_runtime_headers() {
    let answer = ok(
        r#"{"a":1}"#,
        "Lambda-Runtime-Aws-Request-Id: 8f5e-1\r\nlambda-runtime-deadline-ms: 1795881630000\r\n\
         Lambda-Runtime-Invocation-Id: inv-7\r\nLambda-Runtime-Trace-Id: Root=1-x\r\n",
    );
    let (address, _) = serve(vec![answer], 1, 1);
    let mut c = Connection::new(&address);
    let r = c.exchange(GET, Wait::LongPoll).expect("response");
    assert_eq!(r.status, 200);
    assert_eq!(r.request_id.as_deref(), Some("8f5e-1"));
    assert_eq!(r.deadline_ms, Some(1_795_881_630_000));
    assert_eq!(r.invocation_id.as_deref(), Some("inv-7"));
    assert_eq!(c.body(), br#"{"a":1}"#);
}

#[test]
fn a_chunked_body_with_trailers_is_joined() {
    let answer = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
                   4\r\n{\"a\"\r\n3;ext=1\r\n:12\r\n1\r\n}\r\n0\r\nX-Trailer: t\r\n\r\n"
        .to_vec();
    let (address, _) = serve(vec![answer.clone(), answer], 2, 3);
    let mut c = Connection::new(&address);
    c.exchange(GET, Wait::Answer).expect("first");
    assert_eq!(c.body(), br#"{"a":12}"#);
    // The trailers were consumed: the second response on the connection reads cleanly.
    c.exchange(GET, Wait::Answer).expect("second");
    assert_eq!(c.body(), br#"{"a":12}"#);
}

#[test]
fn one_connection_serves_many_exchanges() {
    let answers = (0..5).map(|i| ok(&i.to_string(), "")).collect();
    let (address, accepted) = serve(answers, 5, 64);
    let mut c = Connection::new(&address);
    for i in 0..5 {
        c.exchange(GET, Wait::Answer).expect("response");
        assert_eq!(c.body(), i.to_string().as_bytes());
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
}

#[test]
fn a_connection_the_server_closed_is_reopened_and_the_request_sent_again() {
    // One answer per connection, as if the server closed every idle connection.
    let answers = (0..3).map(|i| ok(&i.to_string(), "")).collect();
    let (address, accepted) = serve(answers, 1, 64);
    let mut c = Connection::new(&address);
    for i in 0..3 {
        c.exchange(GET, Wait::Answer).expect("response");
        assert_eq!(c.body(), i.to_string().as_bytes());
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 3);
}

#[test]
fn connection_close_without_a_length_reads_to_the_end() {
    let answer = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nall of it".to_vec();
    let (address, _) = serve(vec![answer], 1, 4);
    let mut c = Connection::new(&address);
    c.exchange(GET, Wait::Answer).expect("response");
    assert_eq!(c.body(), b"all of it");
    c.release();
    assert!(
        c.stream.is_none(),
        "the server closes it: so does the client"
    );
}

fn refused(answer: &[u8]) -> io::Error {
    let (address, _) = serve(vec![answer.to_vec()], 1, 4096);
    let mut c = Connection::new(&address);
    let e = c.exchange(GET, Wait::Answer).expect_err("must be refused");
    assert!(
        c.stream.is_none() && c.filled == 0,
        "dropped after an error"
    );
    assert!(c.buf.iter().all(|&b| b == 0), "and what it read wiped");
    e
}

#[test]
fn hostile_responses_are_refused_without_reading_them() {
    let too_long = format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n",
        MAX_BODY + 1
    );
    for (answer, why) in [
        (too_long.into_bytes(), "response body too large"),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n".to_vec(),
            "conflicting lengths",
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n".to_vec(),
            "bad length",
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n".to_vec(),
            "unsupported transfer encoding",
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n".to_vec(),
            "bad chunk size",
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nFFFFFFFF\r\n".to_vec(),
            "response body too large",
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabXY".to_vec(),
            "chunk not followed by CRLF",
        ),
        (
            b"NOT HTTP AT ALL\r\n\r\n".to_vec(),
            "malformed response head",
        ),
    ] {
        let e = refused(&answer);
        assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{why}");
        assert_eq!(e.to_string(), why);
    }
}

#[test]
fn an_endless_head_is_refused_at_its_bound() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = listener.local_addr().expect("addr").to_string();
    thread::spawn(move || {
        if let Ok((mut s, _)) = listener.accept() {
            let mut request = [0u8; GET.len()];
            let _ = s.read_exact(&mut request);
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\n");
            let header = [b'a'; 1024];
            // Twice the bound, then hold the connection open: the client must stop by itself.
            for _ in 0..(2 * MAX_HEAD / 1024) {
                if s.write_all(&header).is_err() {
                    return;
                }
            }
            thread::sleep(std::time::Duration::from_secs(5));
        }
    });
    let e = Connection::new(&address)
        .exchange(GET, Wait::LongPoll)
        .expect_err("refused");
    assert_eq!(e.to_string(), "response head too large");
}

#[test]
fn a_server_that_answers_nothing_is_an_end_of_file() {
    let (address, _) = serve(Vec::new(), 1, 1);
    let e = Connection::new(&address)
        .exchange(GET, Wait::Answer)
        .expect_err("no answer");
    assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
}

#[test]
fn a_body_larger_than_the_read_buffer_is_read_whole_and_the_next_one_too() {
    let large = "x".repeat(5 * READ_CHUNK + 7);
    let answers = vec![ok(&large, ""), ok("small", ""), ok(&large, "")];
    let (address, accepted) = serve(answers, 3, 1500);
    let mut c = Connection::new(&address);
    c.exchange(GET, Wait::LongPoll).expect("large");
    assert_eq!(c.body(), large.as_bytes());
    c.exchange(GET, Wait::LongPoll).expect("small");
    assert_eq!(c.body(), b"small");
    assert_eq!(c.buf.len(), READ_CHUNK, "the grown buffer was given back");
    c.exchange(GET, Wait::LongPoll).expect("large again");
    assert_eq!(c.body(), large.as_bytes());
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
}
