//! End-to-end tests of the local gateway over real loopback sockets: the legitimate call, every
//! attack (with and without call state), the voice webhook sharing the router's call state, the
//! Management API through the real SDK client, and the event documents it builds.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use aws_lambda_events::apigw::{
    ApiGatewayCustomAuthorizerRequestTypeRequest, ApiGatewayWebsocketProxyRequest,
};
use futures_util::StreamExt as _;
use serde_json::Value;
use stream_gate_devtools::demo::{self, DemoOptions};
use stream_gate_devtools::echo::{EchoOptions, EchoServer};
use stream_gate_devtools::local::events::{self, ConnectionInfo};
use stream_gate_devtools::local::{devcreds, local_sdk_config, Gateway, GatewayOptions};
use stream_gate_devtools::sim::attacks::{self, CallSetup};
use stream_gate_devtools::sim::{audio, client, Identity};
use stream_gate_domain::{AuthMode, CallTokenPolicy, Secret};
use stream_gate_lambda::adapters::{
    CloseOutcome, ConnectionCloser, ManagementApiCloser, StaticSource,
};
use stream_gate_lambda::entrypoints::router;

struct Fixture {
    gateway: Gateway,
    me: Identity,
    other: Identity,
}

async fn start() -> Fixture {
    start_with(stream_gate_lambda::config::CallStateMode::Memory).await
}

async fn start_with(call_state: stream_gate_lambda::config::CallStateMode) -> Fixture {
    start_with_sink(call_state, stream_gate_lambda::adapters::SinkTarget::None).await
}

async fn start_with_sink(
    call_state: stream_gate_lambda::config::CallStateMode,
    sink: stream_gate_lambda::adapters::SinkTarget,
) -> Fixture {
    let doc = devcreds::generate();
    let me = Identity::from_document(doc.expose(), 0).expect("account 0");
    let other = Identity::from_document(doc.expose(), 1).expect("account 1");
    let gateway = Gateway::start(GatewayOptions {
        listen: ([127, 0, 0, 1], 0).into(),
        stage: "dev".into(),
        public_url: None,
        source: Box::new(StaticSource::new(Secret::new(doc.expose().to_owned()))),
        auth_mode: AuthMode::Either,
        call_token: CallTokenPolicy::Required,
        call_state,
        sink,
        management_endpoint: None,
        webhook_url: None,
    })
    .await
    .expect("gateway");
    Fixture { gateway, me, other }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legitimate_call_and_every_attack_get_exactly_the_expected_outcome() {
    let f = start().await;
    let opts = DemoOptions {
        legit_frames: 30,
        pacing: Duration::from_millis(2),
        ..DemoOptions::default()
    };
    let rows = demo::run_scenarios(&f.gateway, &f.me, &f.other, &opts)
        .await
        .expect("scenarios");
    let got: HashMap<&str, (&str, &str)> = rows
        .iter()
        .map(|r| {
            (
                r.scenario.as_str(),
                (r.observed.as_str(), r.reason.as_str()),
            )
        })
        .collect();
    // connected + start + 30 media + stop, every one accepted by the router.
    assert_eq!(
        got["legit-call"],
        ("admitted, 33/33 accepted, client stop", "-")
    );
    assert_eq!(got["no-signature"], ("refused 403", "signature_missing"));
    assert_eq!(got["bad-signature"], ("refused 403", "signature_mismatch"));
    assert_eq!(
        got["foreign-stream-token"],
        ("refused 403", "account_mismatch")
    );
    assert_eq!(
        got["foreign-start"],
        ("closed 1008", "start_account_mismatch")
    );
    assert_eq!(
        got["other-call-token"],
        ("closed 1008", "call_token_invalid")
    );
    assert_eq!(got["expired-token"], ("closed 1008", "call_token_expired"));
    assert_eq!(got["missing-token"], ("closed 1008", "call_token_missing"));
    assert_eq!(got["malformed-json"], ("closed 1008", "frame_not_json"));
    assert_eq!(got["binary-frame"], ("closed 1003", "frame_not_text"));
    assert_eq!(got["oversized-frame"], ("closed 1009", "frame_too_large"));
    assert_eq!(got["event-flood"], ("not closed, 0 frames echoed", "-"));
    // Call state: media without a start is dropped for the grace, then closed; the second
    // connection with a used token is closed and the first streams on; the replayed webhook gets
    // the token it got the first time.
    assert_eq!(
        got["media-before-start"],
        ("closed 1008", "media_before_start")
    );
    assert_eq!(
        got["reuse-call-token"],
        ("closed 1008; first untouched", "call_token_reused")
    );
    assert_eq!(got["replay-webhook"], ("the same call token twice", "-"));
    assert_eq!(rows.len(), 15);
    assert!(rows.iter().all(|r| r.ok), "{}", demo::render(&rows));
    // The close comes once the grace has run out, not before, and not long after.
    let media = rows
        .iter()
        .find(|r| r.scenario == "media-before-start")
        .expect("row");
    let grace = f.gateway.start_grace().as_millis();
    assert!(
        (grace..grace + 1500).contains(&media.time_ms),
        "closed after {} ms, grace {grace} ms",
        media.time_ms
    );
    // The dropped frames of the grace were counted as such, never as accepted.
    let records = f.gateway.records();
    let early = records
        .iter()
        .find(|r| r.close_reason == Some("media_before_start"))
        .expect("record");
    assert_eq!(early.accepted, 1, "only `connected` needs no start");
    assert!(early.dropped >= 50, "{early:?}");
    assert_eq!(f.gateway.shared().stats.snapshot().webhooks, 2);

    // The seven router-closed scenarios each sent a signed DELETE through the real SDK client
    // (some a few more, for frames that left before the close arrived: foreign-start's `stop` of
    // the other account, media-before-start's next media frames); the gateway's own closes
    // (1003, 1009) sent none.
    let m = &f.gateway.shared().management;
    let deletes = m.deletes.load(Ordering::Relaxed);
    assert!((7..=30).contains(&deletes), "{deletes} DELETE requests");
    assert_eq!(m.unsigned.load(Ordering::Relaxed), 0);
    // Every admitted connection ran $disconnect.
    assert!(f.gateway.settle(Duration::from_secs(5)).await);
    f.gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn management_api_posts_reports_and_closes_through_the_sdk() {
    let f = start().await;
    // Open a legitimate connection by hand and keep it open.
    let url = f.gateway.ws_url();
    let sig = stream_gate_domain::compute_signature(f.me.auth_token.expose(), &url, &[]);
    let mut req = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
        url.as_str(),
    )
    .expect("request");
    req.headers_mut()
        .insert("x-twilio-signature", sig.parse().expect("header"));
    let (mut ws, _) = tokio_tungstenite::connect_async(req)
        .await
        .expect("admitted");
    let id = f.gateway.records()[0].connection_id.clone();
    let endpoint = format!("http://{}/dev", f.gateway.addr());
    let sdk = aws_sdk_apigatewaymanagement::Client::from_conf(
        aws_sdk_apigatewaymanagement::config::Builder::from(&local_sdk_config().await)
            .endpoint_url(&endpoint)
            .build(),
    );

    // POST writes one text frame.
    sdk.post_to_connection()
        .connection_id(&id)
        .data(aws_sdk_apigatewaymanagement::primitives::Blob::new(
            br#"{"event":"mark"}"#.to_vec(),
        ))
        .send()
        .await
        .expect("post");
    let got = tokio::time::timeout(Duration::from_secs(2), ws.next())
        .await
        .expect("frame in time")
        .expect("frame")
        .expect("ok");
    assert_eq!(
        got.into_text().expect("text").as_str(),
        r#"{"event":"mark"}"#
    );

    // GET answers for a live connection.
    let info = sdk
        .get_connection()
        .connection_id(&id)
        .send()
        .await
        .expect("get");
    assert!(info.connected_at().is_some());

    // DELETE through the closer the router uses: the socket closes with 1008.
    let closer = ManagementApiCloser::new(local_sdk_config().await);
    assert_eq!(closer.close(&endpoint, &id).await, Ok(CloseOutcome::Closed));
    let mut close_code = None;
    while let Ok(Some(Ok(msg))) = tokio::time::timeout(Duration::from_secs(2), ws.next()).await {
        if let tokio_tungstenite::tungstenite::Message::Close(Some(frame)) = msg {
            close_code = Some(u16::from(frame.code));
            assert_eq!(frame.reason.as_str(), "connection_deleted");
        }
    }
    assert_eq!(close_code, Some(1008));

    // Unknown (or now gone) ids answer 410, which the closer treats as already closed.
    assert_eq!(
        closer.close(&endpoint, &id).await,
        Ok(CloseOutcome::AlreadyGone)
    );
    assert_eq!(
        closer.close(&endpoint, "nosuchconnection=").await,
        Ok(CloseOutcome::AlreadyGone)
    );
    let m = &f.gateway.shared().management;
    assert_eq!(m.deletes.load(Ordering::Relaxed), 3);
    assert_eq!(m.posts.load(Ordering::Relaxed), 1);
    assert_eq!(m.gets.load(Ordering::Relaxed), 1);

    // An unsigned request is refused before the connection is looked up.
    let resp = reqwest::Client::new()
        .delete(format!("{endpoint}/@connections/{id}"))
        .send()
        .await
        .expect("http");
    assert_eq!(resp.status().as_u16(), 403);
    assert_eq!(m.unsigned.load(Ordering::Relaxed), 1);
    f.gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paced_call_is_admitted_and_frames_may_be_handled_concurrently() {
    let f = start().await;
    let url = f.gateway.ws_url();
    let audio = audio::tone(440.0, 10);
    let setup = CallSetup {
        url: &url,
        signed_url: f.gateway.public_url(),
        me: &f.me,
        other: None,
        audio: &audio,
        pacing: Duration::from_millis(20),
        linger: Duration::from_millis(100),
        start_grace: f.gateway.start_grace(),
        webhook: None,
    };
    let (h, s) = attacks::legit(&setup);
    let report = client::run(&h, s).await.expect("run");
    assert!(report.admitted);
    assert_eq!(report.frames_sent, 13);
    assert_eq!(report.server_close, None);
    assert!(report.closed_by_client);
    assert!(f.gateway.settle(Duration::from_secs(5)).await);
    let rec = &f.gateway.records()[0];
    assert_eq!((rec.frames, rec.accepted, rec.close_reason), (13, 13, None));
    f.gateway.shutdown().await;
}

fn info() -> ConnectionInfo {
    ConnectionInfo {
        connection_id: "AbCdEfGhIjKlMnO=".into(),
        domain_name: "127.0.0.1:8080".into(),
        stage: "dev".into(),
        source_ip: "127.0.0.1".into(),
        connected_at: 1_795_881_600_000,
    }
}

#[test]
fn built_events_are_the_lambda_types_and_round_trip() {
    let headers = vec![
        ("host".to_owned(), "127.0.0.1:8080".to_owned()),
        ("x-twilio-signature".to_owned(), "c2lnbmF0dXJl".to_owned()),
        ("user-agent".to_owned(), "Twilio.TmeWs/1.0".to_owned()),
    ];
    let query = vec![("token".to_owned(), "abc".to_owned())];
    let doc = events::authorizer_document(&info(), &headers, &query);
    let auth: ApiGatewayCustomAuthorizerRequestTypeRequest =
        serde_json::from_value(doc.clone()).expect("authorizer type");
    assert_eq!(
        auth.method_arn.as_deref(),
        Some("arn:aws:execute-api:local:000000000000:local/dev/$connect")
    );
    assert_eq!(auth.request_context.stage.as_deref(), Some("dev"));
    assert_eq!(
        auth.request_context.other.get("connectionId"),
        Some(&Value::from("AbCdEfGhIjKlMnO="))
    );
    assert_eq!(
        auth.request_context.other.get("domainName"),
        Some(&Value::from("127.0.0.1:8080"))
    );
    assert_eq!(
        auth.headers.get("x-twilio-signature").map(|v| v.as_bytes()),
        Some(&b"c2lnbmF0dXJl"[..])
    );
    assert_eq!(auth.query_string_parameters.first("token"), Some("abc"));
    let again: ApiGatewayCustomAuthorizerRequestTypeRequest =
        serde_json::from_value(serde_json::to_value(&auth).expect("ser")).expect("round trip");
    assert_eq!(again.method_arn, auth.method_arn);
    assert_eq!(again.headers, auth.headers);

    let mut ctx = HashMap::new();
    ctx.insert(
        "accountSid".to_owned(),
        Value::from("AC0123456789abcdef0123456789abcdef"),
    );
    ctx.insert("authMethod".to_owned(), Value::from("twilio-signature"));
    for route in ["$connect", "$default", "$disconnect"] {
        let disconnect = (route == "$disconnect").then_some((1000u16, "client_close"));
        let body = (route == "$default").then_some(r#"{"event":"connected"}"#);
        let doc = events::websocket_document(&info(), route, &ctx, body, disconnect);
        let ev: ApiGatewayWebsocketProxyRequest =
            serde_json::from_value(doc.clone()).expect("websocket type");
        assert_eq!(ev.request_context.route_key.as_deref(), Some(route));
        assert_eq!(
            ev.request_context.connection_id.as_deref(),
            Some("AbCdEfGhIjKlMnO=")
        );
        assert_eq!(ev.body.as_deref(), body);
        // The router reads exactly this document, and reads it as it reads the AWS type.
        let read: router::RouterEvent = serde_json::from_value(doc.clone()).expect("router event");
        assert_eq!(read, router::RouterEvent::from(ev.clone()));
        assert_eq!(
            read.expected_account().map(|a| a.to_string()).as_deref(),
            Some("AC0123456789abcdef0123456789abcdef")
        );
        let again: ApiGatewayWebsocketProxyRequest =
            serde_json::from_value(serde_json::to_value(&ev).expect("ser")).expect("round trip");
        assert_eq!(
            again.request_context.route_key,
            ev.request_context.route_key
        );
        assert_eq!(router::RouterEvent::from(again), read);
    }
}

#[test]
fn demo_binary_prints_a_row_per_scenario_and_exits_zero() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_stream-gate"))
        .arg("demo")
        .current_dir(std::env::temp_dir())
        .output()
        .expect("run demo");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for name in demo::scenario_names() {
        let row = stdout
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no row for {name}:\n{stdout}"));
        assert!(row.trim_end().ends_with("| yes"), "{row}");
    }
    // And the rows of the application behind the gate: the call heard itself, no attack reached it.
    for name in ["legit-call-echo", "attack-records"] {
        let row = stdout
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no row for {name}:\n{stdout}"));
        assert!(row.trim_end().ends_with("| yes"), "{row}");
    }
    assert!(
        stdout.contains("all 17 scenarios behaved as expected"),
        "{stdout}"
    );
    assert!(stdout.contains("call state memory"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_the_gate_the_call_hears_itself_and_no_attack_reaches_the_application() {
    let echo = EchoServer::start(EchoOptions {
        listen: ([127, 0, 0, 1], 0).into(),
        on_call_end: None,
    })
    .await
    .expect("echo");
    let sink = echo.sink_url().parse().expect("sink");
    let f = start_with_sink(stream_gate_lambda::config::CallStateMode::Memory, sink).await;
    let opts = DemoOptions {
        legit_frames: 30,
        pacing: Duration::from_millis(2),
        ..DemoOptions::default()
    };
    let rows = demo::run_scenarios_with_echo(&f.gateway, Some(&echo), &f.me, &f.other, &opts)
        .await
        .expect("scenarios");
    assert!(rows.iter().all(|r| r.ok), "{}", demo::render(&rows));
    let row = |name: &str| {
        rows.iter()
            .find(|r| r.scenario == name)
            .unwrap_or_else(|| panic!("no row {name}"))
    };
    assert!(
        row("legit-call-echo")
            .observed
            .starts_with("30 of 30 frames echoed back, in order, round-trip p50 "),
        "{:?}",
        row("legit-call-echo")
    );
    // Refused handshakes, rejected starts, media without a start, the second user of a call
    // token: not one record reaches the application. The verified calls that then misbehave
    // deliver their own start (and what preceded the offending frame), never the offending frame.
    let attacks = row("attack-records");
    assert!(
        attacks
            .observed
            .starts_with("0 records from 9 hostile sockets; "),
        "{attacks:?}"
    );
    assert_eq!(attacks.reason, "-");
    let all = echo.all_records();
    assert!(all.iter().all(|(_, n)| n.other == 0), "{all:?}");
    // Every record the echo got belongs to a connection whose start was verified.
    assert!(
        all.iter().all(|(_, n)| n.start == 1),
        "a record without a verified start: {all:?}"
    );
    assert_eq!(echo.refused(), 0);
    f.gateway.shutdown().await;
    echo.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_call_state_the_gaps_are_expected_and_shown() {
    let f = start_with(stream_gate_lambda::config::CallStateMode::Off).await;
    let opts = DemoOptions {
        legit_frames: 10,
        pacing: Duration::from_millis(2),
        ..DemoOptions::default()
    };
    let rows = demo::run_scenarios(&f.gateway, &f.me, &f.other, &opts)
        .await
        .expect("scenarios");
    assert!(rows.iter().all(|r| r.ok), "{}", demo::render(&rows));
    let row = |name: &str| {
        rows.iter()
            .find(|r| r.scenario == name)
            .unwrap_or_else(|| panic!("no row {name}"))
    };
    // A stateless gate accepts media that no start announced ...
    let media = row("media-before-start");
    assert!(
        media.observed.starts_with("admitted, ")
            && media.observed.ends_with(" accepted, client stop"),
        "{media:?}"
    );
    assert!(
        media.expected.ends_with("(no call state: not stopped)"),
        "{media:?}"
    );
    // ... a second connection on a used call token ...
    let reuse = row("reuse-call-token");
    assert!(
        reuse.observed.starts_with("admitted, ") && reuse.observed.ends_with("; first untouched"),
        "{reuse:?}"
    );
    // ... and its webhook mints a new token for a replayed request.
    assert_eq!(
        row("replay-webhook").observed,
        "a new call token for the replay"
    );
    // Those three rows, and only those, say that the gate leaves them open.
    for r in &rows {
        let stateful_only = ["media-before-start", "reuse-call-token", "replay-webhook"];
        let marked = r.expected.ends_with(" (no call state: not stopped)");
        assert_eq!(
            marked,
            stateful_only.contains(&r.scenario.as_str()),
            "{r:?}"
        );
    }
    f.gateway.shutdown().await;
}

/// Counts how a stream of server messages ends: the close frame's code and reason, if any.
async fn close_of(
    ws: &mut tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
) -> Option<(u16, String)> {
    while let Ok(Some(Ok(msg))) = tokio::time::timeout(Duration::from_secs(3), ws.next()).await {
        if let tokio_tungstenite::tungstenite::Message::Close(Some(frame)) = msg {
            return Some((u16::from(frame.code), frame.reason.to_string()));
        }
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_voice_webhook_is_served_and_shares_the_call_state_with_the_router() {
    use stream_gate_devtools::sim::webhook::call_webhook;
    let f = start().await;
    let hook = f.gateway.local_webhook_url();
    assert_eq!(hook, format!("http://{}/voice", f.gateway.addr()));
    assert_eq!(
        f.gateway.webhook_url(),
        hook,
        "on loopback it verifies its own URL"
    );

    // Twilio's request, signed: TwiML streaming to the gateway's public URL, with a token.
    let call = stream_gate_devtools::sim::identity::fresh_call_sid();
    let first = call_webhook(&hook, &f.me, &call).await.expect("answer");
    assert_eq!(first.status, 200);
    assert_eq!(first.stream_url.as_deref(), Some(f.gateway.public_url()));
    let token = first.token.expect("a call token");
    // Replayed (later, in another second): the same token.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let again = call_webhook(&hook, &f.me, &call).await.expect("answer");
    assert!(
        again.token.as_ref().map(Secret::expose) == Some(token.expose()),
        "the same token for the same CallSid"
    );
    // Another call: another token.
    let other_call = stream_gate_devtools::sim::identity::fresh_call_sid();
    let other = call_webhook(&hook, &f.me, &other_call)
        .await
        .expect("answer");
    assert!(other.token.as_ref().map(Secret::expose) != Some(token.expose()));

    // The webhook's token opens the call ...
    let url = f.gateway.ws_url();
    let audio = audio::tone(440.0, 5);
    let setup = CallSetup {
        url: &url,
        signed_url: f.gateway.public_url(),
        me: &f.me,
        other: None,
        audio: &audio,
        pacing: Duration::ZERO,
        linger: Duration::from_millis(300),
        start_grace: f.gateway.start_grace(),
        webhook: None,
    };
    let (h, s) = attacks::legit_with(&setup, call, Some(&token));
    let report = client::run(&h, s).await.expect("run");
    assert!(
        report.admitted && report.server_close.is_none(),
        "{report:?}"
    );
    // ... once: the router claimed it in the store the webhook answered from.
    let (h, s) = attacks::legit_with(&setup, call, Some(&token));
    let report = client::run(&h, s).await.expect("run");
    assert_eq!(
        report.server_close.map(|(c, r, _)| (c, r)),
        Some((1008, "call_token_reused".to_owned()))
    );

    // What the function refuses, the gateway answers as the function does; Host and
    // X-Forwarded-Proto are the gateway's, whatever the client says.
    let http = reqwest::Client::new();
    let unsigned = http
        .post(&hook)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("host", "evil example")
        .header("x-forwarded-proto", "gopher://x y")
        .body(format!("AccountSid={}&CallSid={call}", f.me.account))
        .send()
        .await
        .expect("http");
    assert_eq!(unsigned.status().as_u16(), 403);
    let other_path = http
        .post(format!("http://{}/hooks", f.gateway.addr()))
        .send()
        .await
        .expect("http");
    assert_eq!(other_path.status().as_u16(), 404);
    assert_eq!(f.gateway.shared().stats.snapshot().webhooks, 4);
    f.gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reused_token_closes_the_second_connection_and_never_the_first() {
    use futures_util::SinkExt as _;
    use stream_gate_domain::fixtures;
    use tokio_tungstenite::tungstenite::Message;
    let f = start().await;
    let url = f.gateway.ws_url();
    let call = stream_gate_devtools::sim::identity::fresh_call_sid();
    let token =
        f.me.call_token(&call, stream_gate_lambda::clock::unix_now(), 300)
            .expect("token");
    let open = || async {
        let h = attacks::signed_handshake(&f.me, &url, f.gateway.public_url(), None);
        let mut req =
            tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
                h.url.as_str(),
            )
            .expect("request");
        let sig = h.signature.as_ref().map(Secret::expose).expect("signed");
        req.headers_mut()
            .insert("x-twilio-signature", sig.parse().expect("header"));
        tokio_tungstenite::connect_async(req)
            .await
            .expect("admitted")
            .0
    };
    let frame = [0xFFu8; audio::FRAME_BYTES];
    let start_on = |stream: &stream_gate_domain::StreamSid| {
        Message::Text(fixtures::start(&f.me.account, &call, stream, Some(token.expose())).into())
    };
    let s1 = stream_gate_devtools::sim::identity::fresh_stream_sid();
    let s2 = stream_gate_devtools::sim::identity::fresh_stream_sid();
    let mut first = open().await;
    first.send(start_on(&s1)).await.expect("send");
    first
        .send(Message::Text(fixtures::media(&s1, 2, 1, &frame).into()))
        .await
        .expect("send");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut second = open().await;
    second.send(start_on(&s2)).await.expect("send");
    assert_eq!(
        close_of(&mut second).await,
        Some((1008, "call_token_reused".to_owned()))
    );
    // The first streams on, every frame accepted, and is never closed by the gate.
    for seq in 3..13u64 {
        first
            .send(Message::Text(
                fixtures::media(&s1, seq, seq - 1, &frame).into(),
            ))
            .await
            .expect("the first is still open");
    }
    first
        .send(Message::Text(
            fixtures::stop(&f.me.account, &call, &s1, 13).into(),
        ))
        .await
        .expect("send");
    tokio::time::sleep(Duration::from_millis(300)).await;
    first.close(None).await.expect("client close");
    assert!(f.gateway.settle(Duration::from_secs(5)).await);
    let records = f.gateway.records();
    assert_eq!(records.len(), 2);
    assert_eq!(
        (
            records[0].accepted,
            records[0].close_reason,
            records[0].close_code
        ),
        (13, None, None),
        "{:?}",
        records[0]
    );
    assert_eq!(records[1].close_reason, Some("call_token_reused"));
    f.gateway.shutdown().await;
}

/// `stream-gate local` as its own process; killed on drop.
struct LocalProcess {
    child: std::process::Child,
    banner: String,
    /// The address it bound (from the banner's WebSocket URL), empty when it did not start.
    addr: String,
}

impl Drop for LocalProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The gate's variables, removed from every child so the developer's environment cannot leak in.
use stream_gate_lambda::config::VARIABLES;

/// Starts `local` on a port of its choosing in `dir` with exactly `env` of the gate's variables;
/// returns once its banner is printed (or the process ended: then `banner` holds what it said).
fn local_process(dir: &std::path::Path, env: &[(&str, &str)]) -> LocalProcess {
    use std::io::BufRead as _;
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_stream-gate"));
    cmd.args(["local", "--listen", "127.0.0.1:0"])
        .current_dir(dir);
    for v in VARIABLES.iter().copied() {
        cmd.env_remove(v);
    }
    let mut child = cmd
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn local");
    let (tx, rx) = std::sync::mpsc::channel();
    for stream in [
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
    ]
    .into_iter()
    .flatten()
    {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stream)
                .lines()
                .map_while(Result::ok)
            {
                let _ = tx.send(line);
            }
        });
    }
    drop(tx);
    let mut banner = String::new();
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(30)) {
        banner.push_str(&line);
        banner.push('\n');
        if line.starts_with("try a simulated call") {
            break;
        }
    }
    let addr = banner
        .lines()
        .find_map(|l| l.split_once("WebSocket:"))
        .and_then(|(_, url)| url.trim().strip_prefix("ws://"))
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_default()
        .to_owned();
    LocalProcess {
        child,
        banner,
        addr,
    }
}

#[test]
fn local_runs_on_the_lambda_variables_and_never_on_throwaway_credentials() {
    let dir = std::env::temp_dir().join(format!("stream-gate-local-env-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let creds = dir.join("configured").join("credentials.json");
    devcreds::write_private(&creds, &devcreds::generate()).expect("creds");
    let creds_s = creds.to_string_lossy().into_owned();
    let public = "wss://gate.example.test/prod";
    let local = local_process(
        &dir,
        &[
            ("STREAM_GATE_SECRET_FILE", &creds_s),
            ("STREAM_GATE_PUBLIC_URL", public),
            ("STREAM_GATE_AUTH_MODE", "signature"),
            ("STREAM_GATE_CALL_TOKEN", "optional"),
        ],
    );
    let b = &local.banner;
    let addr = local.addr.clone();
    assert!(
        addr.starts_with("127.0.0.1:") && !addr.ends_with(":0"),
        "{b}"
    );
    assert!(b.contains(&format!("URL Twilio signs {public}\n")), "{b}");
    // The webhook is served on the gateway's port and verifies the public host's /voice.
    assert!(
        b.contains(&format!(
            "voice webhook:   POST http://{addr}/voice (signatures over https://gate.example.test/voice)\n"
        )),
        "{b}"
    );
    assert!(b.contains("call state:      memory\n"), "{b}");
    assert!(b.contains(&format!("credentials:     {creds_s}\n")), "{b}");
    assert!(b.contains("from environment STREAM_GATE_SECRET_FILE, STREAM_GATE_PUBLIC_URL, STREAM_GATE_AUTH_MODE, STREAM_GATE_CALL_TOKEN"), "{b}");
    assert!(
        !dir.join(devcreds::STATE_DIR).exists(),
        "no development credentials were created"
    );
    // The gate verifies signatures over the configured public URL: a call signed over it is
    // admitted and streams to the end; one signed over the loopback URL is refused.
    let sim = |signed: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_stream-gate"))
            .args([
                "sim",
                &format!("ws://{addr}/dev"),
                "--fast",
                "--frames",
                "5",
            ])
            .args(["--credentials", &creds_s, "--signed-url", signed])
            .output()
            .expect("sim")
    };
    let ok = sim(public);
    let out = String::from_utf8_lossy(&ok.stdout);
    assert!(ok.status.success(), "{out}");
    assert!(out.contains("handshake admitted: true"), "{out}");
    let refused = sim(&format!("ws://{addr}/dev"));
    let out = String::from_utf8_lossy(&refused.stdout);
    assert!(out.contains("refused with HTTP 403"), "{out}");
    // The webhook, posted locally and signed over the public URL as behind a tunnel, replayed.
    let replay = std::process::Command::new(env!("CARGO_BIN_EXE_stream-gate"))
        .args([
            "sim",
            &format!("ws://{addr}/dev"),
            "--attack",
            "replay-webhook",
        ])
        .args(["--credentials", &creds_s, "--signed-url", public])
        .output()
        .expect("sim");
    let out = String::from_utf8_lossy(&replay.stdout);
    assert!(replay.status.success(), "{out}");
    assert!(out.contains("call tokens:        the same"), "{out}");
    drop(local);

    // A deployment's Secrets Manager id is not silently replaced by development credentials.
    let local = local_process(
        &dir,
        &[(
            "STREAM_GATE_SECRET_ID",
            "arn:aws:secretsmanager:us-east-1:1:secret:x",
        )],
    );
    assert!(
        local.banner.contains("STREAM_GATE_SECRET_ID is set"),
        "{}",
        local.banner
    );
    assert!(!local.banner.contains("arn:aws"), "{}", local.banner);
    assert!(!dir.join(devcreds::STATE_DIR).exists());
    drop(local);
    let _ = std::fs::remove_dir_all(&dir);
}
