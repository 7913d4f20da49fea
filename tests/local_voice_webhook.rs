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
