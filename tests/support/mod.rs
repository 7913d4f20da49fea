//! Support shared by the root crate's test files (`mod support;` in each file that needs it): a
//! local gateway on a free loopback port with fresh development credentials, and how a server's
//! close frame reads.
// Each test file is its own crate and uses only a part of this module.
#![allow(dead_code)]

use std::time::Duration;

use futures_util::StreamExt as _;
use stream_gate_devtools::local::{devcreds, Gateway, GatewayOptions};
use stream_gate_devtools::sim::Identity;
use stream_gate_domain::{AuthMode, CallTokenPolicy, Secret};
use stream_gate_lambda::adapters::StaticSource;

/// A running gateway and two accounts of its credentials document.
pub struct Fixture {
    pub gateway: Gateway,
    pub me: Identity,
    pub other: Identity,
}

pub async fn start() -> Fixture {
    start_with(stream_gate_lambda::config::CallStateMode::Memory).await
}

pub async fn start_with(call_state: stream_gate_lambda::config::CallStateMode) -> Fixture {
    start_with_sink(call_state, stream_gate_lambda::adapters::SinkTarget::None).await
}

pub async fn start_with_sink(
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

/// A socket opened as Twilio opens it: to `url`, `X-Twilio-Signature` over `signed` under
/// `auth_token`; panics unless admitted.
pub async fn open_signed(
    url: &str,
    signed: &str,
    auth_token: &Secret,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
    let signature = stream_gate_domain::compute_signature(auth_token.expose(), signed, &[]);
    let mut req = url.into_client_request().expect("request");
    req.headers_mut()
        .insert("x-twilio-signature", signature.parse().expect("header"));
    tokio_tungstenite::connect_async(req)
        .await
        .expect("admitted")
        .0
}

/// Counts how a stream of server messages ends: the close frame's code and reason, if any.
pub async fn close_of(
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
