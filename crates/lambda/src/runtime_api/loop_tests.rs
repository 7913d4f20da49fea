//! The loop against a scripted Runtime API on a loopback socket: each `/next` gets the next
//! scripted event, every request is recorded, and `/next` answers 410 when the script is done,
//! which ends the loop.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::thread;

use serde::Deserialize;

use super::*;

/// A recorded request: its request line, headers (lower-case names) and body.
#[derive(Debug, Clone)]
struct Recorded {
    line: String,
    headers: Vec<(String, String)>,
    body: String,
}

impl Recorded {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One scripted event: its request id and document.
type Event = (String, String);

fn runtime_api(events: Vec<Event>) -> (String, Arc<Mutex<Vec<Recorded>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = listener.local_addr().expect("addr").to_string();
    let log = Arc::new(Mutex::new(Vec::new()));
    let recorded = log.clone();
    thread::spawn(move || {
        let Ok((stream, _)) = listener.accept() else {
            return;
        };
        let mut writer = stream.try_clone().expect("clone");
        let mut reader = BufReader::new(stream);
        let mut events = events.into_iter();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let mut headers = Vec::new();
            loop {
                let mut h = String::new();
                let _ = reader.read_line(&mut h);
                let Some((n, v)) = h.trim_end().split_once(':') else {
                    break;
                };
                headers.push((n.to_ascii_lowercase(), v.trim().to_owned()));
            }
            let length = headers
                .iter()
                .find(|(n, _)| n == "content-length")
                .and_then(|(_, v)| v.parse().ok())
                .unwrap_or(0);
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            let line = line.trim_end().to_owned();
            let answer = if line.starts_with("GET ")
                && line.ends_with("/2018-06-01/runtime/invocation/next HTTP/1.1")
            {
                match events.next() {
                    Some((id, doc)) => format!(
                        "HTTP/1.1 200 OK\r\nLambda-Runtime-Aws-Request-Id: {id}\r\n\
                         Lambda-Runtime-Deadline-Ms: 1795881630000\r\n\
                         Lambda-Runtime-Invocation-Id: inv-{id}\r\n\
                         Content-Length: {}\r\n\r\n{doc}",
                        doc.len()
                    ),
                    None => "HTTP/1.1 410 Gone\r\nContent-Length: 0\r\n\r\n".to_owned(),
                }
            } else if line.contains("/refuse-me/") {
                "HTTP/1.1 413 Payload Too Large\r\nContent-Length: 0\r\n\r\n".to_owned()
            } else {
                "HTTP/1.1 202 Accepted\r\nContent-Length: 16\r\n\r\n{\"status\":\"OK\"}\n"
                    .to_owned()
            };
            recorded.lock().expect("log").push(Recorded {
                line,
                headers,
                body: String::from_utf8_lossy(&body).into_owned(),
            });
            if writer.write_all(answer.as_bytes()).is_err() {
                return;
            }
        }
    });
    (address, log)
}

#[derive(Debug, Deserialize)]
struct Ping {
    n: u32,
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

fn events(list: &[(&str, &str)]) -> Vec<Event> {
    list.iter()
        .map(|(id, doc)| (id.to_string(), doc.to_string()))
        .collect()
}

/// Runs the loop over `events`; `handler` runs inside the handler's future, after it has
/// yielded once to the runtime, as the router's own work does.
fn run_script(events: Vec<Event>, handler: impl FnMut(Invocation<Ping>) -> u32) -> Vec<Recorded> {
    let (address, log) = runtime_api(events);
    let handler = std::cell::RefCell::new(handler);
    let handler = &handler;
    let ended = run_against(&address, &rt(), |inv: Invocation<Ping>| async move {
        tokio::task::yield_now().await;
        let answer = (handler.borrow_mut())(inv);
        serde_json::json!({ "statusCode": answer })
    });
    assert!(
        matches!(ended, Err(LoopError::NextStatus(410))),
        "{ended:?}"
    );
    let recorded = log.lock().expect("log").clone();
    recorded
}

#[test]
fn each_event_reaches_the_handler_and_its_answer_is_posted_with_the_ids() {
    let mut seen = Vec::new();
    let requests = run_script(
        events(&[("req-1", r#"{"n":1}"#), ("req-2", r#"{"n":2,"extra":[1]}"#)]),
        |inv| {
            seen.push((inv.request_id.clone(), inv.deadline_ms, inv.event.n));
            200 + inv.event.n
        },
    );
    assert_eq!(
        seen,
        [
            ("req-1".to_owned(), 1_795_881_630_000, 1),
            ("req-2".to_owned(), 1_795_881_630_000, 2)
        ]
    );
    let lines: Vec<&str> = requests.iter().map(|r| r.line.as_str()).collect();
    assert_eq!(
        lines,
        [
            "GET /2018-06-01/runtime/invocation/next HTTP/1.1",
            "POST /2018-06-01/runtime/invocation/req-1/response HTTP/1.1",
            "GET /2018-06-01/runtime/invocation/next HTTP/1.1",
            "POST /2018-06-01/runtime/invocation/req-2/response HTTP/1.1",
            "GET /2018-06-01/runtime/invocation/next HTTP/1.1",
        ]
    );
    assert_eq!(requests[1].body, r#"{"statusCode":201}"#);
    assert_eq!(requests[3].body, r#"{"statusCode":202}"#);
    assert_eq!(
        requests[1].header("lambda-runtime-invocation-id"),
        Some("inv-req-1")
    );
    assert_eq!(requests[1].header("content-type"), Some("application/json"));
}

#[test]
fn an_unreadable_event_is_an_invocation_error_that_never_quotes_it() {
    let secret = "v1.1795000000.c2VjcmV0LW1hYy1uZXZlci1sb2dnZWQ";
    let mut calls = 0;
    let requests = run_script(
        events(&[
            ("bad-1", &format!(r#"{{"n":"{secret}"}}"#)),
            ("bad-2", &format!("not json {secret}")),
            ("good-3", r#"{"n":3}"#),
        ]),
        |inv| {
            calls += 1;
            inv.event.n
        },
    );
    assert_eq!(calls, 1, "only the readable event reaches the handler");
    for (i, kind) in [(1, "not the expected shape"), (3, "not JSON")] {
        let r = &requests[i];
        assert!(r.line.contains("/error "), "{}", r.line);
        assert_eq!(
            r.header("lambda-runtime-function-error-type"),
            Some("Runtime.UnmarshalError")
        );
        let body: serde_json::Value = serde_json::from_str(&r.body).expect("JSON");
        assert_eq!(body["errorType"], "Runtime.UnmarshalError");
        let message = body["errorMessage"].as_str().expect("message");
        assert!(message.contains(kind), "{message}");
        assert!(!r.body.contains(secret), "{}", r.body);
    }
    assert!(requests[5].line.contains("/good-3/response "));
}

#[test]
fn a_panicking_handler_is_an_invocation_error_and_the_loop_goes_on() {
    let requests = run_script(
        events(&[("p-1", r#"{"n":0}"#), ("p-2", r#"{"n":7}"#)]),
        |inv| {
            assert!(inv.event.n != 0, "handler bug");
            inv.event.n
        },
    );
    assert!(requests[1].line.contains("/p-1/error "));
    assert!(requests[1].body.contains("Runtime.HandlerPanic"));
    assert!(requests[3].line.contains("/p-2/response "));
    assert_eq!(requests[3].body, r#"{"statusCode":7}"#);
}

#[test]
fn an_answer_the_runtime_api_refuses_does_not_stop_the_loop() {
    let requests = run_script(
        events(&[("refuse-me", r#"{"n":1}"#), ("after", r#"{"n":2}"#)]),
        |inv| inv.event.n,
    );
    assert!(requests[1].line.contains("/refuse-me/response "));
    assert!(requests[3].line.contains("/after/response "));
}

#[test]
fn a_request_id_lambda_runtime_would_not_answer_stops_the_loop() {
    for id in ["a b", "", ".", "..", "caf\u{e9}"] {
        let (address, log) = runtime_api(events(&[(id, r#"{"n":1}"#)]));
        let ended = run_against(&address, &rt(), |inv: Invocation<Ping>| async move {
            inv.event.n
        });
        assert!(
            matches!(ended, Err(LoopError::NoRequestId)),
            "{id:?}: {ended:?}"
        );
        assert_eq!(log.lock().expect("log").len(), 1, "{id:?}: nothing posted");
    }
}

#[test]
fn odd_request_ids_are_answered_with_their_path_percent_encoded() {
    let odd = [
        ("../x", "..%2Fx"),
        ("a%2e", "a%252e"),
        ("a?b#c", "a%3Fb%23c"),
        (r#"{"x":1}"#, "%7B%22x%22%3A1%7D"),
        ("<>`|^\\", "%3C%3E%60%7C%5E%5C"),
        (
            "8f5e3b2a-1c4d-4e5f-9a0b-1c2d3e4f5a6b",
            "8f5e3b2a-1c4d-4e5f-9a0b-1c2d3e4f5a6b",
        ),
    ];
    let script: Vec<(&str, &str)> = odd.iter().map(|(id, _)| (*id, r#"{"n":1}"#)).collect();
    let mut seen = Vec::new();
    let requests = run_script(events(&script), |inv| {
        seen.push(inv.request_id.clone());
        1
    });
    let raw: Vec<&str> = odd.iter().map(|(id, _)| *id).collect();
    assert_eq!(seen, raw, "the handler sees each id as it came");
    for (i, (id, encoded)) in odd.iter().enumerate() {
        let post = &requests[2 * i + 1];
        assert_eq!(
            post.line,
            format!("POST /2018-06-01/runtime/invocation/{encoded}/response HTTP/1.1"),
            "{id}"
        );
        // The invocation id is a header value: echoed as it came.
        let invocation = format!("inv-{id}");
        assert_eq!(
            post.header("lambda-runtime-invocation-id"),
            Some(invocation.as_str())
        );
    }
}

#[test]
fn request_ids_are_visible_ascii_and_encoded_only_when_they_need_it() {
    let all_visible: String = (0x21u8..=0x7e).map(char::from).collect();
    assert!(is_request_id(&all_visible));
    assert!(is_request_id("8f5e3b2a-1c4d-4e5f-9a0b-1c2d3e4f5a6b"));
    for bad in [
        "",
        ".",
        "..",
        "a b",
        "a\tb",
        "a\r\nX: y",
        "\u{e9}",
        "\u{7f}",
    ] {
        assert!(!is_request_id(bad), "{bad:?}");
    }
    assert_eq!(path_id("8f5e3b2a-1c4d-4e5f-9a0b-1c2d3e4f5a6b"), None);
    assert_eq!(path_id("A-z.0_9~"), None);
    let encoded = path_id(&all_visible).expect("encoded");
    assert!(encoded
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'%')));
    assert_eq!(path_id("/"), Some("%2F".to_owned()));
    assert_eq!(path_id("~%"), Some("~%25".to_owned()));
}

#[test]
fn an_init_error_is_posted_with_its_type_and_message() {
    let message = "STREAM_GATE_CALL_STATE: expected dynamodb, memory or off";
    for (given, sent) in [
        ("Runtime.ConfigError", "Runtime.ConfigError"),
        ("not a token", "Runtime.InitError"),
        ("", "Runtime.InitError"),
    ] {
        let (address, log) = runtime_api(Vec::new());
        let mut api = RuntimeApi::new(&format!("http://{address}/.rt")).expect("address");
        api.init_error(given, message).expect("202");
        let recorded = log.lock().expect("log").clone();
        assert_eq!(recorded.len(), 1);
        let r = &recorded[0];
        assert_eq!(r.line, "POST /.rt/2018-06-01/runtime/init/error HTTP/1.1");
        assert_eq!(r.header("lambda-runtime-function-error-type"), Some(sent));
        assert_eq!(r.header("content-type"), Some("application/json"));
        let body: serde_json::Value = serde_json::from_str(&r.body).expect("JSON");
        assert_eq!(
            body,
            serde_json::json!({"errorType": sent, "errorMessage": message})
        );
    }
}

#[test]
fn an_init_error_the_runtime_api_refuses_is_an_error() {
    let (address, _) = runtime_api(Vec::new());
    let mut api = RuntimeApi::new(&format!("http://{address}/refuse-me")).expect("address");
    let refused = api.init_error("Runtime.ConfigError", "X: y");
    assert!(
        matches!(refused, Err(LoopError::InitErrorStatus(413))),
        "{refused:?}"
    );
}

#[test]
fn an_init_error_without_a_runtime_api_is_an_error() {
    let ended = RuntimeApi::new("127.0.0.1:1").and_then(|mut api| api.init_error("T", "m"));
    assert!(matches!(ended, Err(LoopError::Io(_))), "{ended:?}");
}

#[test]
fn a_path_prefix_in_the_runtime_api_address_prefixes_every_request() {
    // As cargo-lambda's emulator sets it, and with a trailing `/`, which is dropped.
    for form in ["http://{}/.rt", "http://{}/.rt/"] {
        let (address, log) = runtime_api(events(&[("pre-1", r#"{"n":1}"#)]));
        let uri = form.replace("{}", &address);
        let ended = run_against(
            &uri,
            &rt(),
            |inv: Invocation<Ping>| async move { inv.event.n },
        );
        assert!(
            matches!(ended, Err(LoopError::NextStatus(410))),
            "{form}: {ended:?}"
        );
        let recorded = log.lock().expect("log").clone();
        let lines: Vec<&str> = recorded.iter().map(|r| r.line.as_str()).collect();
        assert_eq!(
            lines,
            [
                "GET /.rt/2018-06-01/runtime/invocation/next HTTP/1.1",
                "POST /.rt/2018-06-01/runtime/invocation/pre-1/response HTTP/1.1",
                "GET /.rt/2018-06-01/runtime/invocation/next HTTP/1.1",
            ],
            "{form}"
        );
        assert_eq!(recorded[0].header("host"), Some(address.as_str()), "{form}");
    }
}

#[test]
fn an_address_that_is_not_http_is_refused_before_any_request() {
    for address in [
        "https://127.0.0.1:9001",
        "ftp://127.0.0.1:9001/x",
        "127.0.0.1:9001/.rt",
        "a b",
    ] {
        let ended = run_against(address, &rt(), |inv: Invocation<Ping>| async move {
            inv.event.n
        });
        assert!(
            matches!(ended, Err(LoopError::BadAddress)),
            "{address}: {ended:?}"
        );
    }
}
