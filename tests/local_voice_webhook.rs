//! The local gateway's voice webhook over a real socket: served as the HTTP API serves it, and
//! sharing the router's call state.

use std::time::Duration;

use stream_gate_devtools::sim::attacks::{self, CallSetup};
use stream_gate_devtools::sim::{audio, client};
use stream_gate_domain::Secret;

mod support;
use support::*;

/// A call of `f.me` to `url`, signed over the gateway's public URL, frames back to back.
fn call_setup<'a>(
    f: &'a Fixture,
    url: &'a str,
    audio: &'a [[u8; audio::FRAME_BYTES]],
) -> CallSetup<'a> {
    CallSetup {
        url,
        signed_url: f.gateway.public_url(),
        me: &f.me,
        other: None,
        audio,
        pacing: Duration::ZERO,
        linger: Duration::from_millis(300),
        start_grace: f.gateway.start_grace(),
        webhook: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_voice_webhook_is_served_and_shares_the_call_state_with_the_router() {
    use stream_gate_devtools::sim::webhook_post::call_webhook;
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
    let setup = call_setup(&f, &url, &audio);
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

/// `POST /relay` as Twilio calls it for a ConversationRelay number: TwiML whose
/// `<ConversationRelay url>` is the gateway's public URL with the call's `callSid` and `callToken`
/// (the one token of the CallSid, the same as `/voice` answers and a replay gets); that URL,
/// signed as Twilio signs it, opens one session, and a second socket on it closes at `setup`;
/// `/relay/ended` is signature-checked and puts one `session_end` record in the gateway's sink,
/// however often it is replayed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_webhook_is_served_and_its_url_opens_one_session() {
    use futures_util::SinkExt as _;
    use stream_gate_devtools::sim::identity::fresh_call_sid;
    use stream_gate_devtools::sim::webhook_post::call_webhook;
    use stream_gate_domain::{fixtures, SessionSid};
    use tokio_tungstenite::tungstenite::Message;

    let dir = std::env::temp_dir().join(format!("sg-local-relay-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join("records.jsonl");
    let f = start_with_sink(
        stream_gate_lambda::config::CallStateMode::Memory,
        stream_gate_lambda::adapters::SinkTarget::File(file.clone()),
    )
    .await;
    let hook = f.gateway.local_relay_webhook_url();
    assert_eq!(hook, format!("http://{}/relay", f.gateway.addr()));
    let call = fresh_call_sid();
    let first = call_webhook(&hook, &f.me, &call).await.expect("answer");
    assert_eq!((first.status, first.stream_url.as_deref()), (200, None));
    let relay_url = first.relay_url.expect("a <ConversationRelay url>");
    let prefix = format!("{}?callSid={call}&callToken=", f.gateway.public_url());
    let token = relay_url
        .expose()
        .strip_prefix(&prefix)
        .expect("the public URL with the call's query")
        .to_owned();
    // Replayed, and the same call on `/voice`: the one token of the CallSid.
    let again = call_webhook(&hook, &f.me, &call).await.expect("answer");
    assert!(again.relay_url.as_ref().map(Secret::expose) == Some(relay_url.expose()));
    let voice = call_webhook(&f.gateway.local_webhook_url(), &f.me, &call)
        .await
        .expect("answer");
    assert!(voice.token.as_ref().map(Secret::expose) == Some(token.as_str()));

    // The URL as Twilio connects to it: signed over itself, query included.
    let open = || open_signed(relay_url.expose(), relay_url.expose(), &f.me.auth_token);
    let session = SessionSid::parse("VX00112233445566778899aabbccddeeff").expect("vx");
    let setup = Message::Text(fixtures::relay_setup(&session, &f.me.account, &call).into());
    let mut live = open().await;
    live.send(setup.clone()).await.expect("send");
    live.send(Message::Text(fixtures::relay_prompt("Hello", true).into()))
        .await
        .expect("send");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut second = open().await;
    second.send(setup).await.expect("send");
    assert_eq!(
        close_of(&mut second).await,
        Some((1008, "call_token_reused".to_owned()))
    );
    live.close(None).await.expect("client close");
    assert!(f.gateway.settle(Duration::from_secs(5)).await);
    let records = f.gateway.records();
    let verified: Vec<_> = records
        .iter()
        .filter(|r| r.close_reason.is_none())
        .collect();
    assert_eq!(verified.len(), 1, "{records:?}");
    assert_eq!((verified[0].frames, verified[0].accepted), (2, 2));

    // The session's end, signed as Twilio signs the `<Connect action>` POST: 200, one record
    // however often it is posted; unsigned: 403.
    let ended = format!("http://{}/relay/ended", f.gateway.addr());
    for _ in 0..2 {
        let answer = call_webhook(&ended, &f.me, &call).await.expect("answer");
        assert_eq!(
            (answer.status, answer.stream_url, answer.relay_url),
            (200, None, None)
        );
    }
    let lines = std::fs::read_to_string(&file).expect("records");
    let ends: Vec<serde_json::Value> = lines
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("record"))
        .filter(|r| r["type"] == "session_end")
        .collect();
    assert_eq!(ends.len(), 1, "{lines}");
    assert_eq!(ends[0]["callSid"], call.as_str());
    assert_eq!(ends[0]["accountSid"], f.me.account.as_str());
    let unsigned = reqwest::Client::new()
        .post(&ended)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("AccountSid={}&CallSid={call}", f.me.account))
        .send()
        .await
        .expect("http");
    assert_eq!(unsigned.status().as_u16(), 403);
    assert_eq!(f.gateway.shared().stats.snapshot().webhooks, 6);
    f.gateway.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}
