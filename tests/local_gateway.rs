//! End-to-end tests of the local gateway over real loopback sockets: the legitimate call and every
//! attack (with and without call state), the demo, and the application behind the gate.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use stream_gate_devtools::demo::{self, DemoOptions};
use stream_gate_devtools::record_server::{EchoOptions, EchoServer};
use stream_gate_devtools::sim::attacks::{self, CallSetup};
use stream_gate_devtools::sim::{audio, client};
use stream_gate_domain::Secret;

mod support;
use support::*;

/// What the demo's table shows for each scenario against a gateway with call state: what was
/// observed, and the reason code.
const EXPECTED_ROWS: &[(&str, &str, &str)] = &[
    // connected + start + 30 media + stop, every one accepted by the router.
    ("legit-call", "admitted, 33/33 accepted, client stop", "-"),
    ("no-signature", "refused 403", "signature_missing"),
    ("bad-signature", "refused 403", "signature_mismatch"),
    ("foreign-stream-token", "refused 403", "account_mismatch"),
    ("foreign-start", "closed 1008", "start_account_mismatch"),
    ("other-call-token", "closed 1008", "call_token_invalid"),
    ("expired-token", "closed 1008", "call_token_expired"),
    ("missing-token", "closed 1008", "call_token_missing"),
    ("malformed-json", "closed 1008", "frame_not_json"),
    ("binary-frame", "closed 1003", "frame_not_text"),
    ("oversized-frame", "closed 1009", "frame_too_large"),
    ("event-flood", "not closed, 0 frames echoed", "-"),
    // Call state: media without a start is dropped for the grace, then closed; the second
    // connection with a used token is closed and the first streams on; the replayed webhook gets
    // the token it got the first time.
    ("media-before-start", "closed 1008", "media_before_start"),
    (
        "reuse-call-token",
        "closed 1008; first untouched",
        "call_token_reused",
    ),
    ("replay-webhook", "the same call token twice", "-"),
];

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
    for (scenario, observed, reason) in EXPECTED_ROWS {
        assert_eq!(got[scenario], (*observed, *reason), "{scenario}");
    }
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
    // The ConversationRelay table, below its heading: the session, every attack, the answers.
    let (_, relay) = stdout
        .split_once("ConversationRelay (<Connect><ConversationRelay>)")
        .unwrap_or_else(|| panic!("no ConversationRelay table:\n{stdout}"));
    let relay_names = demo::relay_scenario_names();
    for name in relay_names
        .iter()
        .chain(&["legit-call-answers", "attack-records"])
    {
        let row = relay
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no ConversationRelay row for {name}:\n{stdout}"));
        assert!(row.trim_end().ends_with("| yes"), "{row}");
    }
    let total = demo::scenario_names().len() + relay_names.len() + 4;
    assert_eq!(total, 33);
    assert!(
        stdout.contains(&format!("all {total} scenarios behaved as expected")),
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

/// A ConversationRelay session over real sockets: the handshake signed over the URL with its
/// `callSid` and `callToken` query, then `setup`, `prompt`, `dtmf` accepted; the same signed URL
/// replayed opens a socket whose `setup` closes (`call_token_reused`); a `setup` naming another
/// call and a Media Streams frame on a relay socket close with their codes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conversation_relay_session_is_gated_over_real_sockets() {
    use futures_util::SinkExt as _;
    use stream_gate_devtools::sim::identity::{fresh_call_sid, fresh_stream_sid};
    use stream_gate_domain::{fixtures, CallSid, SessionSid};
    use tokio_tungstenite::tungstenite::Message;

    let f = start().await;
    let now = stream_gate_lambda::clock::unix_now();
    let open = |call: CallSid| {
        let token = f.me.call_token(&call, now, 300).expect("token");
        let query = format!("?callSid={call}&callToken={}", token.expose());
        let url = format!("{}{query}", f.gateway.ws_url());
        let signed = format!("{}{query}", f.gateway.public_url());
        let auth_token = &f.me.auth_token;
        async move { open_signed(&url, &signed, auth_token).await }
    };
    let session = SessionSid::parse("VX00112233445566778899aabbccddeeff").expect("vx");
    let setup =
        |call: &CallSid| Message::Text(fixtures::relay_setup(&session, &f.me.account, call).into());

    let call = fresh_call_sid();
    let mut first = open(call).await;
    for m in [
        setup(&call),
        Message::Text(fixtures::relay_prompt("What are your hours?", true).into()),
        Message::Text(fixtures::relay_dtmf('5').into()),
    ] {
        first.send(m).await.expect("send");
    }
    tokio::time::sleep(Duration::from_millis(200)).await;

    // The handshake replayed, word for word: admitted (its token is valid), closed at `setup`.
    let mut replay = open(call).await;
    replay.send(setup(&call)).await.expect("send");
    assert_eq!(
        close_of(&mut replay).await,
        Some((1008, "call_token_reused".to_owned()))
    );

    let other = fresh_call_sid();
    let mut foreign = open(other).await;
    foreign.send(setup(&call)).await.expect("send");
    assert_eq!(
        close_of(&mut foreign).await,
        Some((1008, "setup_call_sid_mismatch".to_owned()))
    );

    let mut mixed = open(fresh_call_sid()).await;
    let stream = fresh_stream_sid();
    mixed
        .send(Message::Text(
            fixtures::media(&stream, 2, 1, &[0xFF; 160]).into(),
        ))
        .await
        .expect("send");
    assert_eq!(
        close_of(&mut mixed).await,
        Some((1008, "protocol_mismatch".to_owned()))
    );

    first
        .send(Message::Text(
            fixtures::relay_prompt("Thank you", true).into(),
        ))
        .await
        .expect("the first session is still open");
    tokio::time::sleep(Duration::from_millis(200)).await;
    first.close(None).await.expect("client close");
    assert!(f.gateway.settle(Duration::from_secs(5)).await);
    let records = f.gateway.records();
    let verified: Vec<_> = records
        .iter()
        .filter(|r| r.close_reason.is_none())
        .collect();
    assert_eq!(verified.len(), 1, "{records:?}");
    assert_eq!((verified[0].frames, verified[0].accepted), (4, 4));
    f.gateway.shutdown().await;
}

/// What the ConversationRelay table shows for each scenario against a gateway with call state.
const EXPECTED_RELAY_ROWS: &[(&str, &str, &str)] = &[
    // setup, prompt, dtmf, interrupt, prompt: every one accepted by the router.
    ("legit-call", "admitted, 5/5 accepted, client stop", "-"),
    ("no-signature", "refused 403", "signature_missing"),
    ("bad-signature", "refused 403", "signature_mismatch"),
    // The query keeps the call token: a wrong or stale one never opens a session.
    ("other-call-token", "refused 403", "call_token_invalid"),
    ("expired-token", "refused 403", "call_token_expired"),
    ("foreign-setup", "closed 1008", "setup_account_mismatch"),
    ("other-call-setup", "closed 1008", "setup_call_sid_mismatch"),
    // Call state: prompts without a setup are dropped for the grace, then closed; a second setup
    // closes; a second session on one handshake URL closes at its setup and the first talks on.
    ("setup-missing", "closed 1008", "setup_missing"),
    ("second-setup", "closed 1008", "setup_repeated"),
    (
        "reuse-call-token",
        "closed 1008; first untouched",
        "call_token_reused",
    ),
    ("media-streams-frame", "closed 1008", "protocol_mismatch"),
    ("malformed-json", "closed 1008", "frame_not_json"),
    ("binary-frame", "closed 1003", "frame_not_text"),
    ("oversized-frame", "closed 1009", "frame_too_large"),
];

/// `sim --protocol conversation-relay`'s session and every ConversationRelay attack, as `demo`
/// plays them, against a gateway with call state and the echo behind it: each ends exactly as
/// expected, the echo answers each turn of the session with a message Twilio accepts, and no
/// attack delivers a record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_session_and_every_relay_attack_get_exactly_the_expected_outcome() {
    let echo = EchoServer::start(EchoOptions {
        listen: ([127, 0, 0, 1], 0).into(),
        on_call_end: None,
    })
    .await
    .expect("echo");
    let sink = echo.sink_url().parse().expect("sink");
    let f = start_with_sink(stream_gate_lambda::config::CallStateMode::Memory, sink).await;
    let opts = DemoOptions::default();
    let rows = demo::run_relay_scenarios(&f.gateway, Some(&echo), &f.me, &f.other, &opts)
        .await
        .expect("scenarios");
    assert!(rows.iter().all(|r| r.ok), "{}", demo::render(&rows));
    let got: HashMap<&str, (&str, &str)> = rows
        .iter()
        .map(|r| {
            (
                r.scenario.as_str(),
                (r.observed.as_str(), r.reason.as_str()),
            )
        })
        .collect();
    for (scenario, observed, reason) in EXPECTED_RELAY_ROWS {
        assert_eq!(got[scenario], (*observed, *reason), "{scenario}");
    }
    assert_eq!(rows.len(), EXPECTED_RELAY_ROWS.len() + 2);
    assert_eq!(got["legit-call-answers"], ("3 of 3 turns answered", "-"));
    let attacks = rows
        .iter()
        .find(|r| r.scenario == "attack-records")
        .expect("row");
    assert!(
        attacks
            .observed
            .starts_with("0 records from 8 hostile sockets; "),
        "{attacks:?}"
    );
    // Every record the echo got belongs to a session whose setup was verified.
    let all = echo.all_records();
    assert!(
        all.iter().all(|(_, n)| n.setup == 1 && n.start == 0),
        "{all:?}"
    );
    assert_eq!(echo.refused(), 0);
    // The prompts of `setup-missing` inside the grace were dropped, never accepted.
    let early = f
        .gateway
        .records()
        .into_iter()
        .find(|r| r.close_reason == Some("setup_missing"))
        .expect("record");
    assert_eq!(early.accepted, 0, "{early:?}");
    assert!(early.dropped >= 10, "{early:?}");
    f.gateway.shutdown().await;
    echo.shutdown().await;
}
