//! What reaches CloudWatch Logs under the template's `LoggingConfig` (JSON log format, system
//! level WARN, application level INFO), judged line by line the way Lambda's log-level filtering
//! does (Lambda Developer Guide, "Log-level filtering"): a function on a custom runtime must print
//! JSON objects with a `"level"` key; a line whose level is missing or invalid, or whose timestamp
//! is not a valid RFC 3339 time, is taken as INFO. Application lines below the function's
//! application level are dropped.
//!
//! The real router binary runs a call (connect, start, media, stop, disconnect) and an offending
//! frame whose close fails (the `close_failed` ERROR line and the `CloseFailed` metric line), and
//! every line it prints is checked: the decision lines carry a level Lambda accepts and a valid
//! timestamp, so they keep their own level; the Embedded Metric Format lines carry neither and are
//! INFO to Lambda — so the template's application level must stay at INFO or the metrics (and the
//! `CloseFailed` alarm) go dark. The bytes printed per media frame and per call are measured for the
//! CloudWatch Logs line of the cost table (docs/deploy.md).

use stream_gate_testkit as support;

use axum::http::StatusCode;
use serde_json::{json, Value};
use support::{event, repo_file, Function, ManagementEndpoint};

const ROUTER: &str = env!("CARGO_BIN_EXE_router");

/// Lambda's log levels, least severe first.
const LEVELS: [&str; 6] = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"];

fn rank(level: &str) -> usize {
    LEVELS
        .iter()
        .position(|l| *l == level)
        .unwrap_or_else(|| panic!("not a Lambda log level: {level}"))
}

/// `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`: an RFC 3339 date-time.
fn is_rfc3339(s: &str) -> bool {
    let b = s.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| b.get(r).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
    let at = |i: usize, c: u8| b.get(i) == Some(&c);
    if !(digits(0..4) && at(4, b'-') && digits(5..7) && at(7, b'-') && digits(8..10))
        || !(at(10, b'T') || at(10, b't'))
        || !(digits(11..13) && at(13, b':') && digits(14..16) && at(16, b':') && digits(17..19))
    {
        return false;
    }
    let mut i = 19;
    if at(i, b'.') {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return false;
        }
    }
    match b.get(i) {
        Some(b'Z' | b'z') => i + 1 == b.len(),
        Some(b'+' | b'-') => {
            b.len() == i + 6 && digits(i + 1..i + 3) && at(i + 3, b':') && digits(i + 4..i + 6)
        }
        _ => false,
    }
}

/// The level Lambda gives a line of application output.
fn lambda_level(line: &str) -> &'static str {
    let Ok(Value::Object(obj)) = serde_json::from_str::<Value>(line) else {
        return "INFO";
    };
    let timestamp_ok = obj
        .get("timestamp")
        .and_then(Value::as_str)
        .is_some_and(is_rfc3339);
    let level = obj
        .get("level")
        .and_then(Value::as_str)
        .map(str::to_ascii_uppercase);
    match level.and_then(|l| LEVELS.iter().find(|x| **x == l)) {
        Some(l) if timestamp_ok => l,
        _ => "INFO",
    }
}

/// `LoggingConfig.<key>` of every function in template.yaml: one value per function.
fn template_values(key: &str) -> Vec<String> {
    let text = std::fs::read_to_string(repo_file("template.yaml")).expect("template.yaml");
    text.lines()
        .filter_map(|l| l.trim().strip_prefix(&format!("{key}:")))
        .map(|v| v.trim().to_owned())
        .collect()
}

#[test]
fn the_rfc3339_check_and_lambdas_rule_hold_on_known_lines() {
    assert!(is_rfc3339("2026-12-05T12:53:16.123456Z"));
    assert!(is_rfc3339("2026-12-05T12:53:16+01:00"));
    assert!(!is_rfc3339("2026-12-05 12:53:16Z"));
    assert!(!is_rfc3339("1795881601000"));
    assert!(!is_rfc3339("2026-12-05T12:53:16."));
    let ts = "2026-12-05T12:53:16.1Z";
    assert_eq!(
        lambda_level(&json!({"level": "ERROR", "timestamp": ts}).to_string()),
        "ERROR"
    );
    assert_eq!(
        lambda_level(&json!({"level": "warn", "timestamp": ts}).to_string()),
        "WARN"
    );
    assert_eq!(lambda_level(&json!({"level": "ERROR"}).to_string()), "INFO");
    assert_eq!(
        lambda_level(&json!({"level": "LOUD", "timestamp": ts}).to_string()),
        "INFO"
    );
    assert_eq!(lambda_level(&json!({"_aws": {}}).to_string()), "INFO");
    assert_eq!(lambda_level("plain text"), "INFO");
}

#[test]
fn the_template_filters_platform_lines_and_keeps_info() {
    // Four functions (authorizer, router, webhook, echo), each with the same three settings.
    assert_eq!(template_values("LogFormat"), ["JSON"; 4]);
    assert_eq!(template_values("SystemLogLevel"), ["WARN"; 4]);
    assert_eq!(template_values("ApplicationLogLevel"), ["INFO"; 4]);
}

#[tokio::test]
async fn every_router_line_reaches_cloudwatch_at_its_level() {
    let mgmt = ManagementEndpoint::start(StatusCode::FORBIDDEN).await;
    let creds = repo_file("events/credentials.test.json")
        .display()
        .to_string();
    let f = Function::start(
        ROUTER,
        &[
            ("STREAM_GATE_CALL_STATE", "off"),
            ("STREAM_GATE_SECRET_FILE", &creds),
            ("STREAM_GATE_MANAGEMENT_ENDPOINT", &mgmt.url),
        ],
    )
    .await;
    let bytes = |lines: &[String]| lines.iter().map(|l| l.len() + 1).sum::<usize>();

    // A call: what it prints once, and what it prints per media frame.
    for name in [
        "connect.json",
        "default-connected.json",
        "default-start.json",
    ] {
        assert_eq!(f.respond(event(name)).await["statusCode"], 200, "{name}");
    }
    let before_media = f.output().await;
    const FRAMES: usize = 200;
    for _ in 0..FRAMES {
        assert_eq!(
            f.respond(event("default-media.json")).await["statusCode"],
            200
        );
    }
    let after_media = f.output().await;
    let media_bytes = bytes(&after_media[before_media.len()..]);
    for name in ["default-stop.json", "disconnect.json"] {
        assert_eq!(f.respond(event(name)).await["statusCode"], 200, "{name}");
    }
    let call = f.output().await;
    let per_call = bytes(&call) - media_bytes;

    // An offending frame whose close fails: close_failed at ERROR, and the CloseFailed metric.
    let mut bad = event("default-media.json");
    bad["body"] = json!("{not json");
    assert_eq!(f.respond(bad).await["statusCode"], 200);
    let lines = f.output().await;

    let threshold = rank(&template_values("ApplicationLogLevel")[0]);
    let mut metric_lines = 0;
    for line in &lines {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}"));
        let level = lambda_level(line);
        assert!(
            rank(level) >= threshold,
            "Lambda would drop this line at {level}: {line}"
        );
        if v.get("_aws").is_some() {
            // EMF: no level, no timestamp key; INFO to Lambda, so it needs INFO to pass.
            metric_lines += 1;
            assert_eq!(level, "INFO", "{line}");
            assert!(
                rank(level) < rank("WARN"),
                "an application level of WARN would drop it"
            );
        } else {
            let own = v["level"]
                .as_str()
                .unwrap_or_else(|| panic!("no level: {line}"));
            assert_eq!(level, own, "Lambda keeps the line's own level: {line}");
        }
    }
    assert!(metric_lines >= 1, "the CloseFailed metric line: {lines:?}");
    let failed = lines
        .iter()
        .find(|l| l.contains("\"close_failed\""))
        .expect("close_failed");
    assert_eq!(lambda_level(failed), "ERROR");

    // What the cost table quotes (docs/deploy.md, "CloudWatch Logs"): nothing per accepted
    // media frame at the default level, a few lines per call.
    assert_eq!(media_bytes, 0, "{:?}", &after_media[before_media.len()..]);
    assert!(
        per_call > 0 && per_call < 2_000,
        "{per_call} bytes per call: {call:?}"
    );
    println!(
        "router output: {media_bytes} bytes for {FRAMES} media frames, {per_call} bytes per call"
    );
}
