//! The connection against a hostile Runtime API on a loopback socket: what lambda_runtime (hyper)
//! tolerates is read, what is unbounded is refused with a typed error, and nothing panics, grows
//! without bound or waits for ever.

use std::io::{BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use super::tests::{ok, read_request, serve, GET};
use super::*;

/// A server that reads one request, then hands the connection to `then`.
fn serve_one(then: impl FnOnce(TcpStream) + Send + 'static) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = listener.local_addr().expect("addr").to_string();
    thread::spawn(move || {
        if let Ok((stream, _)) = listener.accept() {
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            if read_request(&mut reader) {
                then(stream);
            }
        }
    });
    address
}

/// Writes `parts` in turn, stopping at the first error (the client gave up).
fn write_all(stream: &mut TcpStream, parts: impl IntoIterator<Item = Vec<u8>>) {
    for part in parts {
        if stream.write_all(&part).is_err() {
            return;
        }
    }
}

/// The error of one exchange with a server that answers `answer`.
fn refused(answer: Vec<u8>) -> io::Error {
    let (address, _) = serve(vec![answer], 1, 64 * 1024);
    let mut c = Connection::new(&address);
    let e = c.exchange(GET, Wait::Answer).expect_err("must be refused");
    assert!(c.buf.iter().all(|&b| b == 0), "what it read is wiped");
    e
}

/// One exchange with a server that answers `answer`: the response and its body.
fn read(answer: Vec<u8>) -> (Response, Vec<u8>) {
    let (address, _) = serve(vec![answer], 1, 64 * 1024);
    let mut c = Connection::new(&address);
    let r = c.exchange(GET, Wait::LongPoll).expect("read");
    (r, c.body().to_vec())
}

fn chunked(chunks: &[u8]) -> Vec<u8> {
    let mut answer = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    answer.extend_from_slice(chunks);
    answer
}

#[test]
fn unused_headers_are_skipped_whatever_their_bytes() {
    let mut answer = b"HTTP/1.1 200 OK\r\nX-Binary: \xff\xfe\x80 caf\xc3\xa9\r\n".to_vec();
    answer.extend_from_slice(b"Lambda-Runtime-Trace-Id: Root=\xc3\xa9\r\n");
    answer.extend_from_slice(b"Lambda-Runtime-Client-Context: \xff\r\n");
    answer.extend_from_slice(&ok("{}", "Lambda-Runtime-Aws-Request-Id: r-1\r\n")[17..]);
    let (r, body) = read(answer);
    assert_eq!((r.status, r.request_id.as_deref()), (200, Some("r-1")));
    assert_eq!(body, b"{}");
}

#[test]
fn read_headers_that_are_not_visible_ascii_are_no_value_and_the_first_counts() {
    let extra = "Lambda-Runtime-Aws-Request-Id: first\r\nLambda-Runtime-Aws-Request-Id: second\r\n";
    let mut answer = b"HTTP/1.1 200 OK\r\nLambda-Runtime-Invocation-Id: a\x80b\r\n".to_vec();
    answer.extend_from_slice(b"Lambda-Runtime-Deadline-Ms: 1\xff\r\n");
    answer.extend_from_slice(&ok("{}", extra)[17..]);
    let (r, _) = read(answer);
    assert_eq!(r.request_id.as_deref(), Some("first"));
    assert_eq!((r.invocation_id, r.deadline_ms), (None, None));
    // lambda_runtime's `HeaderValue::to_str`: space and tab inside are visible.
    assert_eq!(visible_ascii(b"a b\tc"), Some("a b\tc"));
    for bad in [&b"\xc3\xa9"[..], b"a\x7f", b"a\x00"] {
        assert_eq!(visible_ascii(bad), None, "{bad:?}");
    }
}

#[test]
fn two_hundred_unused_headers_are_skipped() {
    let mut extra: String = (0..200).map(|i| format!("X-Filler-{i}: {i}\r\n")).collect();
    extra.push_str("Lambda-Runtime-Aws-Request-Id: after-200\r\n");
    let (r, body) = read(ok(r#"{"n":1}"#, &extra));
    assert_eq!(r.request_id.as_deref(), Some("after-200"));
    assert_eq!(body, br#"{"n":1}"#);
}

/// `HTTP/1.1 200 OK\n`, `a:\n` headers and `Content-Length: 0\n\n`, `len` bytes in all.
fn head_of_minimal_headers(len: usize) -> Vec<u8> {
    let (start, end) = (&b"HTTP/1.1 200 OK\n"[..], &b"Content-Length: 0\n\n"[..]);
    let room = len - start.len() - end.len();
    let mut head = start.to_vec();
    head.extend(b"a:\n".repeat(room / 3));
    // The remainder as a longer value in the first header.
    head.splice(start.len() + 2..start.len() + 2, b"x".repeat(room % 3));
    head.extend_from_slice(end);
    head
}

#[test]
fn the_most_headers_that_fit_the_head_bound_are_read_and_a_byte_more_is_refused() {
    let head = head_of_minimal_headers(MAX_HEAD);
    assert_eq!(head.len(), MAX_HEAD);
    let (r, body) = read(head);
    assert_eq!((r.status, body.len()), (200, 0));
    let e = refused(head_of_minimal_headers(MAX_HEAD + 1));
    assert_eq!(e.to_string(), "response head too large");
}

#[test]
fn chunk_extensions_and_trailers_are_skipped() {
    // 30 KiB of extensions and 20 KiB of trailers, more than hyper's 16 KiB of each.
    let ext = "e".repeat(10 * 1024);
    let mut body = String::new();
    for piece in ["{\"a\"", ":1", "}"] {
        body.push_str(&format!("{:x};x={ext}\r\n{piece}\r\n", piece.len()));
    }
    body.push_str("0;last\r\n");
    body.push_str(&format!("X-T: {}\r\nX-U: v\r\n\r\n", "t".repeat(20 * 1024)));
    let (_, read_body) = read(chunked(body.as_bytes()));
    assert_eq!(read_body, br#"{"a":1}"#);
}

/// A chunked answer: `prefix`, then `unit` repeated until it is past `MAX_BODY` on the wire.
fn flood(prefix: &[u8], unit: &[u8]) -> Vec<u8> {
    let mut body = prefix.to_vec();
    body.extend(unit.repeat(MAX_BODY / unit.len() + 2));
    chunked(&body)
}

#[test]
fn extension_trailer_and_size_line_floods_count_toward_the_body_bound() {
    let ext = format!("1;{}\r\nx\r\n", "e".repeat(1000));
    for (answer, what) in [
        (
            flood(b"", ext.as_bytes()),
            "1-byte chunks with 1 KB extensions",
        ),
        (flood(b"0\r\n", b"X-T: y\r\n"), "endless trailers"),
        (
            flood(b"1;", b"aaaaaaaaaaaaaaaa"),
            "a chunk-size line without end",
        ),
        (flood(b"", b"0000001\r\nx\r\n"), "padded chunk-size lines"),
    ] {
        let e = refused(answer);
        assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{what}");
        assert_eq!(e.to_string(), "response body too large", "{what}");
    }
}

#[test]
fn a_body_over_the_bound_in_chunks_is_refused_and_one_under_it_is_read() {
    let chunk = |size: usize| {
        let mut c = format!("{size:x}\r\n").into_bytes();
        c.extend(b"z".repeat(size));
        c.extend_from_slice(b"\r\n");
        c
    };
    // Lambda's largest payload, 6 MiB, in 1 KiB chunks (0.7 % of framing).
    let mut under = chunk(1024).repeat(6 * 1024);
    under.extend_from_slice(b"0\r\n\r\n");
    let (_, body) = read(chunked(&under));
    assert_eq!(body.len(), 6 * 1024 * 1024);
    // 64 KiB chunks, one more than the bound holds.
    let over = chunk(64 * 1024).repeat(MAX_BODY / (64 * 1024) + 1);
    assert_eq!(
        refused(chunked(&over)).to_string(),
        "response body too large"
    );
}

#[test]
fn bad_chunk_size_lines_are_refused() {
    for line in [
        &b"00000000000000001\r\nx\r\n0\r\n\r\n"[..],
        b"1\rx\r\n",
        b"1\n\r\nx",
        b"-1\r\n",
    ] {
        let e = refused(chunked(line));
        assert_eq!(e.to_string(), "bad chunk size", "{line:?}");
    }
}

#[test]
fn released_responses_are_wiped_and_what_follows_them_kept_alone() {
    let token = "v1.1795000000.c2VjcmV0LW1hYy1uZXZlci1zdGF5cw";
    let first = ok(&format!(r#"{{"token":"{token}"}}"#), "");
    let second = ok("{}", "");
    let (address, _) = serve(vec![[first, second.clone()].concat()], 1, 4096);
    let mut c = Connection::new(&address);
    c.exchange(GET, Wait::LongPoll).expect("first");
    // Both responses may have arrived in one read: wait for the second one to be whole.
    while c.filled < c.end + second.len() {
        c.fill().expect("second");
    }
    c.release();
    assert_eq!(&c.buf[..c.filled], &second[..]);
    assert!(c.buf[c.filled..].iter().all(|&b| b == 0), "no copy left");

    let body = format!(
        "5\r\n{{\"t\":\r\n{:x}\r\n\"{token}\"}}\r\n0\r\n\r\n",
        token.len() + 3
    );
    let (address, _) = serve(vec![chunked(body.as_bytes())], 1, 4096);
    let mut c = Connection::new(&address);
    c.exchange(GET, Wait::LongPoll).expect("chunked");
    assert_eq!(c.body(), format!(r#"{{"t":"{token}"}}"#).as_bytes());
    c.release();
    assert!(c.body().is_empty());
    assert!(c.buf.iter().all(|&b| b == 0), "de-chunked and wiped");
}

const SHORT: Duration = Duration::from_millis(200);

#[test]
fn an_answer_that_stalls_times_out_but_the_long_poll_waits_for_its_event() {
    let late = |stream: TcpStream| {
        let mut stream = stream;
        thread::sleep(3 * SHORT);
        write_all(&mut stream, [ok("{}", "")]);
    };
    let mut c = Connection::with_limits(&serve_one(late), SHORT, SHORT);
    let e = c.exchange(GET, Wait::Answer).expect_err("stalled");
    assert_eq!(e.kind(), io::ErrorKind::TimedOut);
    assert_eq!(e.to_string(), "Runtime API stalled: read timed out");

    let mut c = Connection::with_limits(&serve_one(late), SHORT, SHORT);
    c.exchange(GET, Wait::LongPoll)
        .expect("the event, however late");
    assert_eq!(c.body(), b"{}");
}

#[test]
fn a_head_that_stops_halfway_times_out_even_on_the_long_poll() {
    let address = serve_one(|mut stream| {
        write_all(&mut stream, [b"HTTP/1.1 200 OK\r\nX-A: b".to_vec()]);
        thread::sleep(Duration::from_secs(3));
    });
    let started = Instant::now();
    let e = Connection::with_limits(&address, SHORT, SHORT)
        .exchange(GET, Wait::LongPoll)
        .expect_err("stalled");
    assert_eq!(e.kind(), io::ErrorKind::TimedOut);
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[test]
fn a_head_dripped_byte_by_byte_for_ever_is_cut_off() {
    let address = serve_one(|mut stream| {
        let drip = b"HTTP/1.1 200 OK\r\n"
            .iter()
            .chain(b"X-Slow: ".iter())
            .chain(std::iter::repeat_n(&b'a', 500));
        for &b in drip {
            if stream.write_all(&[b]).is_err() {
                return;
            }
            thread::sleep(Duration::from_millis(10));
        }
    });
    let started = Instant::now();
    let e = Connection::with_limits(&address, SHORT, 2 * SHORT)
        .exchange(GET, Wait::LongPoll)
        .expect_err("cut off");
    assert_eq!(e.kind(), io::ErrorKind::TimedOut);
    assert_eq!(e.to_string(), "response too slow");
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[test]
fn only_an_empty_line_makes_the_head_worth_parsing_again() {
    for end in [&b"a\n\n"[..], b"a\r\n\r\n", b"\n\r\n", b"a\r\n\n"] {
        assert!(ends_head(end), "{end:?}");
    }
    for not_yet in [&b"a\r\n"[..], b"a\r\n\r", b"\n\r", b""] {
        assert!(!ends_head(not_yet), "{not_yet:?}");
    }
}
