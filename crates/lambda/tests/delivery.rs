//! The delivery sinks, the router binary delivering, and the connection poster against real
//! counterparts on loopback: Kinesis (moto server) through the real AWS SDK, HTTP servers that
//! accept, fail and never answer, a file written by concurrent deliveries, and the `@connections`
//! stand-in of the testkit.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use serde_json::Value;
use stream_gate_domain::call_state::StartedCall;
use stream_gate_domain::fixtures;
use stream_gate_domain::outbound::Outbound;
use stream_gate_domain::{AccountSid, CallSid, StreamSid};
use stream_gate_lambda::adapters::delivery::{Connection, DELIVERY_ATTEMPT_BUDGET};
use stream_gate_lambda::adapters::{
    deliver_with_retry, ConnectionPoster, DeliveryRecord, DeliverySink, FileSink, HttpSink,
    KinesisSink, KinesisStream, PostOutcome, SinkTarget,
};
use stream_gate_testkit::moto::moto;
use stream_gate_testkit::ManagementEndpoint;

mod support;
use support::kinesis::{kinesis_with_stream, read_stream, sdk};
use tokio::time::Instant;

const AC: &str = "ACdeadbeefdeadbeefdeadbeefdeadbeef";
const CA: &str = "CAffeeddccbbaa99887766554433221100";
const MZ: &str = "MZ00112233445566778899aabbccddeeff";

fn record(connection_id: &str, seq: u64) -> DeliveryRecord {
    let (ac, ca, mz) = (
        AccountSid::parse(AC).expect("ac"),
        CallSid::parse(CA).expect("ca"),
        StreamSid::parse(MZ).expect("mz"),
    );
    let connection = Connection {
        protocol: stream_gate_domain::Protocol::MediaStreams,
        connection_id,
        management_endpoint: "https://abc123.execute-api.us-east-1.amazonaws.com/prod",
        received_at_ms: 1_795_881_600_000 + seq * 20,
    };
    let frame = fixtures::media(&mz, seq, seq, &[(seq % 256) as u8; 160]);
    let recorded = StartedCall::new(ac, ca, mz, 1_795_881_600);
    fixtures::delivered(
        &frame,
        &stream_gate_domain::connection_context::ConnectionContext::MediaStreams { account: ac },
        Some(recorded),
        &connection,
    )
}

fn deadline() -> Instant {
    Instant::now() + Duration::from_millis(4500)
}

// ---- Kinesis (moto) ----

#[tokio::test]
async fn kinesis_sink_puts_each_record_keyed_by_connection() {
    let m = moto().await;
    let sdk = sdk(&m.endpoint).await;
    let admin = kinesis_with_stream(&sdk, "calls", 2).await;
    let arn = admin
        .describe_stream_summary()
        .stream_name("calls")
        .send()
        .await
        .expect("describe")
        .stream_description_summary
        .expect("summary")
        .stream_arn;

    // One connection through a sink naming the stream, the other through one with its ARN, as
    // `STREAM_GATE_SINK` would build them.
    let by_name = SinkTarget::Kinesis(KinesisStream::Name("calls".into())).build(&sdk);
    let by_arn = match format!("kinesis:{arn}").parse::<SinkTarget>() {
        Ok(target @ SinkTarget::Kinesis(KinesisStream::Arn(_))) => target.build(&sdk),
        other => panic!("{other:?}"),
    };
    let mut sent = Vec::new();
    for seq in 1..=5 {
        for (sink, connection) in [
            (&by_name, "Xk2TmdKPIAMCJqw="),
            (&by_arn, "Yz9AbcDEfGHijkl="),
        ] {
            let r = record(connection, seq);
            assert!(deliver_with_retry(sink.as_ref(), &r, deadline()).await);
            sent.push(r);
        }
    }

    let got = read_stream(&admin, "calls").await;
    assert_eq!(got.len(), sent.len());
    for connection in ["Xk2TmdKPIAMCJqw=", "Yz9AbcDEfGHijkl="] {
        let mine: Vec<&(String, String, String)> =
            got.iter().filter(|(_, key, _)| key == connection).collect();
        let expected: Vec<&str> = sent
            .iter()
            .filter(|r| r.partition_key() == connection)
            .map(DeliveryRecord::json)
            .collect();
        // The payload is the record, byte for byte, in the order put.
        assert_eq!(
            mine.iter().map(|(_, _, d)| d.as_str()).collect::<Vec<_>>(),
            expected
        );
        // Partition key = connectionId: one shard per connection.
        assert!(mine.iter().all(|(shard, _, _)| *shard == mine[0].0));
        for (_, key, data) in &mine {
            let v: Value = serde_json::from_str(data).expect("record JSON");
            assert_eq!(v["connectionId"], key.as_str());
        }
    }
}

/// The real `router` binary, run through the Lambda Runtime API with the `events/` documents and
/// `STREAM_GATE_SINK=kinesis:<stream>`, against moto's Kinesis through the SDK's configured
/// endpoint (`AWS_ENDPOINT_URL_KINESIS`): one record per accepted frame but `connected`, and one for
/// `$disconnect`, keyed by the connection id, in the order the frames came, without the call token.
#[tokio::test]
async fn router_binary_delivers_each_accepted_frame_to_kinesis() {
    let m = moto().await;
    let sdk = sdk(&m.endpoint).await;
    let admin = kinesis_with_stream(&sdk, "calls", 1).await;
    let mgmt = ManagementEndpoint::start(StatusCode::NO_CONTENT).await;
    let creds = stream_gate_testkit::repo_file("events/credentials.test.json");
    let creds = creds.display().to_string();
    let f = stream_gate_testkit::Function::start(
        env!("CARGO_BIN_EXE_router"),
        &[
            ("STREAM_GATE_SECRET_FILE", &creds),
            ("STREAM_GATE_MANAGEMENT_ENDPOINT", &mgmt.url),
            ("STREAM_GATE_SINK", "kinesis:calls"),
            ("AWS_ENDPOINT_URL_KINESIS", &m.endpoint),
            ("STREAM_GATE_CALL_STATE", "off"),
        ],
    )
    .await;
    for name in [
        "connect.json",
        "default-connected.json",
        "default-start.json",
        "default-media.json",
        "default-stop.json",
        "disconnect.json",
    ] {
        let r = f.respond(stream_gate_testkit::event(name)).await;
        assert_eq!(r["statusCode"], 200, "{name}: {:?}", f.output().await);
    }
    assert!(mgmt.seen().is_empty(), "nothing closed: {:?}", mgmt.seen());

    let got = read_stream(&admin, "calls").await;
    let types: Vec<String> = got
        .iter()
        .map(|(_, key, data)| {
            assert_eq!(key, "Xk2TmdKPIAMCJqw=", "partition key = connectionId");
            let v: Value = serde_json::from_str(data).expect("record JSON");
            assert_eq!(v["connectionId"], key.as_str());
            assert_eq!(v["accountSid"], AC);
            v["type"].as_str().unwrap_or_default().to_owned()
        })
        .collect();
    assert_eq!(types, ["start", "media", "stop", "disconnect"]);
    let start: Value = serde_json::from_str(&got[0].2).expect("start");
    assert!(
        start["twilio"]["start"]["customParameters"]
            .get("token")
            .is_none(),
        "the call token never leaves the gate"
    );
    let out = f.output().await.join("\n");
    assert!(!out.contains("delivery_failed"), "{out}");
}

#[tokio::test]
async fn kinesis_failures_carry_the_service_code() {
    let m = moto().await;
    let sdk_config = sdk(&m.endpoint).await;
    let missing = KinesisSink::new(&sdk_config, KinesisStream::Name("no-such-stream".into()));
    let err = missing
        .deliver(&record("Xk2TmdKPIAMCJqw=", 1))
        .await
        .expect_err("no stream");
    assert_eq!(err.code, "ResourceNotFoundException");
    assert!(!deliver_with_retry(&missing, &record("Xk2TmdKPIAMCJqw=", 1), deadline()).await);

    let unreachable = KinesisSink::new(
        &sdk(DEAD_ENDPOINT).await,
        KinesisStream::Name("calls".into()),
    );
    let err = unreachable
        .deliver(&record("Xk2TmdKPIAMCJqw=", 1))
        .await
        .expect_err("nothing listens");
    assert_eq!(err.code, "dispatch_failure");
}

/// A loopback port nothing listens on (9, discard, is never served here).
const DEAD_ENDPOINT: &str = "http://127.0.0.1:9";

// ---- HTTP ----

/// A POST the test server saw: its content type and body.
type Post = (Option<String>, String);

#[derive(Clone, Default)]
struct Received(Arc<Mutex<Vec<Post>>>);

/// A loopback HTTP server answering `status` to every POST, recording content type and body.
async fn http_server(status: StatusCode) -> (String, Received) {
    let received = Received::default();
    let r = received.clone();
    let app = axum::Router::new().route(
        "/records",
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let r = r.clone();
            async move {
                let content_type = headers
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                r.0.lock().expect("lock").push((content_type, body));
                status
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}/records"), received)
}

fn http_sink(url: &str) -> Arc<dyn DeliverySink> {
    let target: SinkTarget = url.parse().expect("sink url");
    target.build(aws_config::SdkConfig::builder().build())
}

#[tokio::test]
async fn http_sink_posts_each_record_as_json() {
    let (url, received) = http_server(StatusCode::NO_CONTENT).await;
    let sink = http_sink(&url);
    let records: Vec<DeliveryRecord> = (1..=20).map(|s| record("Xk2TmdKPIAMCJqw=", s)).collect();
    for r in &records {
        assert_eq!(sink.deliver(r).await, Ok(()));
    }
    let got = received.0.lock().expect("lock").clone();
    assert_eq!(got.len(), records.len());
    for ((content_type, body), r) in got.iter().zip(&records) {
        assert_eq!(content_type.as_deref(), Some("application/json"));
        assert_eq!(body, r.json());
    }
}

#[tokio::test]
async fn http_sink_500_is_a_failure_retried_once() {
    let (url, received) = http_server(StatusCode::INTERNAL_SERVER_ERROR).await;
    let sink = http_sink(&url);
    let r = record("Xk2TmdKPIAMCJqw=", 1);
    assert_eq!(
        sink.deliver(&r).await.map_err(|e| e.code),
        Err("http_500".to_owned())
    );
    assert!(!deliver_with_retry(sink.as_ref(), &r, deadline()).await);
    assert_eq!(
        received.0.lock().expect("lock").len(),
        3,
        "1 + (1 and its retry)"
    );
}

/// Accepts connections and never answers.
async fn silent_server() -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    (format!("http://{addr}/records"), task)
}

#[tokio::test]
async fn an_http_sink_that_never_answers_is_cut_at_its_timeout() {
    let (url, server) = silent_server().await;
    let sink = HttpSink::new(url.parse().expect("uri")).with_timeout(Duration::from_millis(300));
    let r = record("Xk2TmdKPIAMCJqw=", 1);
    let t0 = std::time::Instant::now();
    assert_eq!(
        sink.deliver(&r).await.map_err(|e| e.code),
        Err("timeout".to_owned())
    );
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_millis(900),
        "{took:?}"
    );

    // The default sink under the router's budget: two attempts cut at 1 s each, within the
    // deadline.
    let sink = http_sink(&url);
    let t0 = std::time::Instant::now();
    assert!(!deliver_with_retry(sink.as_ref(), &r, deadline()).await);
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_millis(2000) && took < Duration::from_millis(3000),
        "{took:?}"
    );
    // A deadline shorter than one attempt cuts the only attempt.
    let t0 = std::time::Instant::now();
    assert!(
        !deliver_with_retry(
            sink.as_ref(),
            &r,
            Instant::now() + Duration::from_millis(200)
        )
        .await
    );
    let took = t0.elapsed();
    assert!(took < Duration::from_millis(700), "{took:?}");
    assert!(took < DELIVERY_ATTEMPT_BUDGET);
    server.abort();
}

#[tokio::test]
async fn an_http_sink_with_nothing_listening_fails_fast() {
    let sink = http_sink(&format!("{DEAD_ENDPOINT}/records"));
    let err = sink
        .deliver(&record("Xk2TmdKPIAMCJqw=", 1))
        .await
        .expect_err("refused");
    assert_eq!(err.code, "http_connect_failed");
}

// ---- File ----

#[tokio::test]
async fn file_sink_appends_whole_lines_under_concurrent_deliveries() {
    let dir = std::env::temp_dir().join(format!("stream-gate-file-sink-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("records.jsonl");
    let _ = std::fs::remove_file(&path);
    std::fs::write(&path, "").expect("pre-existing file");
    let sink: Arc<dyn DeliverySink> =
        SinkTarget::File(path.clone()).build(aws_config::SdkConfig::builder().build());
    let mut tasks = Vec::new();
    for seq in 1..=200u64 {
        let sink = sink.clone();
        tasks.push(tokio::spawn(async move {
            let r = record(if seq % 2 == 0 { "even" } else { "odd" }, seq);
            sink.deliver(&r).await.map(|()| r.into_json())
        }));
    }
    let mut sent = Vec::new();
    for t in tasks {
        sent.push(t.await.expect("task").expect("delivered"));
    }
    let text = std::fs::read_to_string(&path).expect("read");
    assert!(text.ends_with('\n'));
    let mut lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 200);
    for line in &lines {
        serde_json::from_str::<Value>(line).expect("each line is one record");
    }
    lines.sort_unstable();
    sent.sort_unstable();
    assert_eq!(lines, sent.iter().map(String::as_str).collect::<Vec<_>>());
    let _ = std::fs::remove_dir_all(&dir);
}

#[cfg(unix)]
#[tokio::test]
async fn file_sink_creates_a_private_file_and_reports_io_errors_by_kind() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = std::env::temp_dir().join(format!("stream-gate-file-mode-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("new.jsonl");
    let _ = std::fs::remove_file(&path);
    FileSink::new(&path)
        .deliver(&record("c", 1))
        .await
        .expect("delivered");
    let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let err = FileSink::new(dir.join("missing-dir/records.jsonl"))
        .deliver(&record("c", 1))
        .await
        .expect_err("no such directory");
    assert_eq!(err.code, "file_NotFound");
    let _ = std::fs::remove_dir_all(&dir);
}

// ---- Answering the caller ----

#[tokio::test]
async fn poster_sends_the_outbound_message_with_post_to_connection() {
    let ep = ManagementEndpoint::start(StatusCode::OK).await;
    let poster = ConnectionPoster::new(sdk(&ep.url).await);
    let mz = StreamSid::parse(MZ).expect("mz");
    let messages = [
        Outbound::media_from_mulaw(mz, &[0xff; 160]).expect("media"),
        Outbound::mark(mz, "greeting-done").expect("mark"),
        Outbound::clear(mz),
    ];
    for m in &messages {
        assert_eq!(
            poster.post(&ep.url, "Xk2TmdKPIAMCJqw=", m).await,
            Ok(PostOutcome::Sent)
        );
    }
    let seen = ep.seen();
    assert_eq!(seen.len(), 3);
    for s in &seen {
        assert_eq!(s.method, "POST");
        assert_eq!(s.path, "/prod/@connections/Xk2TmdKPIAMCJqw=");
        assert!(s.signed, "SigV4-signed");
    }
    let bodies = ep.bodies();
    let expected: Vec<String> = messages.iter().map(Outbound::to_json).collect();
    assert_eq!(bodies, expected, "exactly Twilio's message, nothing more");
}

#[tokio::test]
async fn poster_reports_a_gone_call_and_other_failures_by_code() {
    let mz = StreamSid::parse(MZ).expect("mz");
    let gone = ManagementEndpoint::start(StatusCode::GONE).await;
    let poster = ConnectionPoster::new(sdk(&gone.url).await);
    assert_eq!(
        poster
            .post(&gone.url, "Xk2TmdKPIAMCJqw=", &Outbound::clear(mz))
            .await,
        Ok(PostOutcome::Gone)
    );
    let forbidden = ManagementEndpoint::start(StatusCode::FORBIDDEN).await;
    let err = poster
        .post(&forbidden.url, "Xk2TmdKPIAMCJqw=", &Outbound::clear(mz))
        .await
        .expect_err("forbidden");
    assert_eq!(err.code, "http_403");
    let err = poster
        .post(
            &format!("{DEAD_ENDPOINT}/prod"),
            "Xk2TmdKPIAMCJqw=",
            &Outbound::clear(mz),
        )
        .await
        .expect_err("unreachable");
    assert_eq!(err.code, "dispatch_failure");
}
