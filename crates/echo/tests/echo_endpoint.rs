//! The real `echo` binary answers only the endpoint it is configured with
//! (`STREAM_GATE_MANAGEMENT_ENDPOINT`), whatever a record's `managementEndpoint` says, and does not
//! start without one.
//!
//! Each batch is a Kinesis event built with `aws_lambda_events`' own types, as the event source
//! mapping delivers it, fed to the binary under the loopback Lambda Runtime API. Management API
//! stand-ins on loopback record every request they get: the configured one, and another that a
//! record names (if the echo posted where a record says, it would show up there).

use aws_lambda_events::event::kinesis::{KinesisEvent, KinesisEventRecord};
use http::StatusCode;
use serde_json::Value;
use stream_gate_testkit::fake_runtime_api::Invocation;
use stream_gate_testkit::{Function, ManagementEndpoint, Seen};

const ECHO: &str = env!("CARGO_BIN_EXE_echo");
const VARIABLE: &str = "STREAM_GATE_MANAGEMENT_ENDPOINT";
const DEPLOYED: &str = "https://abc123.execute-api.us-east-1.amazonaws.com/prod";
const MZ: &str = "MZ00112233445566778899aabbccddeeff";

/// An inbound `media` record v1 of `connection` naming `endpoint`.
fn media(connection: &str, endpoint: &str) -> String {
    serde_json::json!({
        "v": 1, "type": "media", "connectionId": connection, "managementEndpoint": endpoint,
        "accountSid": "AC0123456789abcdef0123456789abcdef", "streamSid": MZ,
        "sequenceNumber": "2", "receivedAt": 1_795_881_600_433_u64,
        "twilio": {"event": "media", "sequenceNumber": "2", "streamSid": MZ,
            "media": {"track": "inbound", "chunk": "1", "timestamp": "20", "payload": "AAAA"}}
    })
    .to_string()
}

/// A Kinesis event with one record per `(connection, endpoint)`, partition key = connection.
fn batch(records: &[(&str, &str)]) -> Value {
    let mut event = KinesisEvent::default();
    for (i, (connection, endpoint)) in records.iter().enumerate() {
        let mut r = KinesisEventRecord::default();
        r.event_source = Some("aws:kinesis".into());
        r.event_name = Some("aws:kinesis:record".into());
        r.aws_region = Some("us-east-1".into());
        r.kinesis.partition_key = (*connection).to_owned();
        r.kinesis.sequence_number =
            format!("4965654217812345678901234567890123456789012345678{i:04}");
        *r.kinesis.data = media(connection, endpoint).into_bytes();
        event.records.push(r);
    }
    serde_json::to_value(event).expect("event")
}

fn post(connection: &str) -> Seen {
    Seen {
        method: "POST".into(),
        path: format!("/prod/@connections/{connection}"),
        signed: true,
    }
}

fn json_lines(lines: &[String]) -> Vec<Value> {
    lines
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .collect()
}

/// The `endpoint_not_allowed` skip lines' connection ids, and the metric lines' counts.
fn refused(lines: &[String]) -> (Vec<String>, Vec<u64>) {
    let all = json_lines(lines);
    let skipped = all
        .iter()
        .filter(|v| v.get("_aws").is_none() && v["reason"] == "endpoint_not_allowed")
        .map(|v| {
            assert_eq!(v["level"], "WARN", "{v}");
            assert_eq!(v["message"], "echo: record skipped", "{v}");
            v["connection_id"].as_str().unwrap_or("(none)").to_owned()
        })
        .collect();
    let counted = all
        .iter()
        .filter(|v| v.get("_aws").is_some() && v["reason"] == "endpoint_not_allowed")
        .filter_map(|v| v["EchoRecordSkipped"].as_u64())
        .collect();
    (skipped, counted)
}

#[tokio::test]
async fn posts_only_to_the_configured_endpoint_whatever_a_record_names() {
    let ours = ManagementEndpoint::start(StatusCode::OK).await;
    let elsewhere = ManagementEndpoint::start(StatusCode::OK).await;
    let f = Function::start(ECHO, &[(VARIABLE, ours.url.as_str())]).await;
    let host = ours.url.trim_end_matches("/prod");
    let (dev, longer, upper, slash) = (
        format!("{host}/dev"),
        format!("{host}/prod/x"),
        format!("{host}/PROD"),
        format!("{}/", ours.url),
    );
    let records = [
        // Another API (a live server: a post there would be recorded), another AWS API, plain
        // HTTP to an execute-api host, a lookalike host, another stage of ours, a path below
        // ours, our stage in upper case.
        ("elsewhere", elsewhere.url.as_str()),
        (
            "otherapi",
            "https://xyz789.execute-api.us-east-1.amazonaws.com/prod",
        ),
        (
            "plainhttp",
            "http://abc123.execute-api.us-east-1.amazonaws.com/prod",
        ),
        (
            "lookalike",
            "https://abc.execute-api.us-east-1.amazonaws.com.evil.example/prod",
        ),
        ("otherstage", dev.as_str()),
        ("below", longer.as_str()),
        ("upper", upper.as_str()),
        // Ours, with and without a trailing slash: the only two answered.
        ("slash", slash.as_str()),
        ("exact", ours.url.as_str()),
    ];
    assert_eq!(
        f.invoke(batch(&records)).await,
        Invocation::Response(Value::Null),
        "the batch succeeds"
    );

    assert!(elsewhere.seen().is_empty(), "{:?}", elsewhere.seen());
    let mut seen = ours.seen();
    seen.sort_by(|x, y| x.path.cmp(&y.path));
    assert_eq!(seen, vec![post("exact"), post("slash")], "nothing else");

    let lines = f.output().await;
    let (skipped, counted) = refused(&lines);
    let want: Vec<&str> = records[..7].iter().map(|(c, _)| *c).collect();
    assert_eq!(skipped, want, "{lines:?}");
    assert_eq!(counted, [7], "one metric line for the batch: {lines:?}");
    let out = lines.join("\n");
    assert!(
        !out.contains("evil.example") && !out.contains("xyz789") && !out.contains("\"AAAA\""),
        "a skip line never quotes the record: {out}"
    );
}

/// The attack the check exists for: a deployed echo (configured as the template does) fed records
/// that point it at a server of the writer's choosing. Nothing reaches that server.
#[tokio::test]
async fn a_record_cannot_point_a_deployed_echo_elsewhere() {
    let attacker = ManagementEndpoint::start(StatusCode::OK).await;
    let f = Function::start(ECHO, &[(VARIABLE, DEPLOYED)]).await;
    let slash = format!("{}/", attacker.url);
    let event = batch(&[("a", attacker.url.as_str()), ("b", slash.as_str())]);
    assert_eq!(f.invoke(event).await, Invocation::Response(Value::Null));
    assert!(attacker.seen().is_empty());
    let (skipped, counted) = refused(&f.output().await);
    assert_eq!((skipped, counted), (vec!["a".into(), "b".into()], vec![2]));
}

/// Unset, blank or unusable: the function exits at init, before asking for an event, with an
/// error naming the variable and never its value.
#[tokio::test]
async fn does_not_start_without_an_endpoint_it_may_answer() {
    for value in [
        None,
        Some(""),
        Some("http://10.0.0.1/prod"),
        Some("https://secret-looking-host.example"),
        Some("https://user@secret-looking-host.example/prod"),
    ] {
        let env: Vec<(&str, &str)> = value.map(|v| (VARIABLE, v)).into_iter().collect();
        let mut f = Function::start(ECHO, &env).await;
        for _ in 0..200 {
            if !f.is_running() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        assert!(!f.is_running(), "{value:?}: the echo exits at init");
        let out = f.output().await.join("\n");
        assert!(
            out.contains(VARIABLE),
            "{value:?}: names the variable: {out}"
        );
        assert!(
            !out.contains("secret-looking-host"),
            "never the value: {out}"
        );
    }
}
