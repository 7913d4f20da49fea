//! What the local gateway shows the functions and the application as API Gateway would: the
//! event documents it builds (the Lambda types, round-tripped) and the Management API, driven
//! through the real SDK client.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use aws_lambda_events::apigw::{
    ApiGatewayCustomAuthorizerRequestTypeRequest, ApiGatewayWebsocketProxyRequest,
};
use futures_util::StreamExt as _;
use serde_json::Value;
use stream_gate_devtools::local::events::{self, ConnectionInfo};
use stream_gate_devtools::local::local_sdk_config;
use stream_gate_lambda::adapters::{CloseOutcome, ConnectionCloser, ManagementApiCloser};
use stream_gate_lambda::entrypoints::router;

mod support;
use support::*;

/// Opens a legitimate connection by hand (signed, no frames sent) and returns it with its id.
async fn connect_signed(
    f: &Fixture,
) -> (
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    String,
) {
    let url = f.gateway.ws_url();
    let sig = stream_gate_domain::compute_signature(f.me.auth_token.expose(), &url, &[]);
    let mut req = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
        url.as_str(),
    )
    .expect("request");
    req.headers_mut()
        .insert("x-twilio-signature", sig.parse().expect("header"));
    let (ws, _) = tokio_tungstenite::connect_async(req)
        .await
        .expect("admitted");
    let id = f.gateway.records()[0].connection_id.clone();
    (ws, id)
}

/// The real Management API client, with the local gateway's dummy credentials, at `endpoint`.
async fn management_client(endpoint: &str) -> aws_sdk_apigatewaymanagement::Client {
    aws_sdk_apigatewaymanagement::Client::from_conf(
        aws_sdk_apigatewaymanagement::config::Builder::from(&local_sdk_config().await)
            .endpoint_url(endpoint)
            .build(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn management_api_posts_reports_and_closes_through_the_sdk() {
    let f = start().await;
    let (mut ws, id) = connect_signed(&f).await;
    let endpoint = format!("http://{}/dev", f.gateway.addr());
    let sdk = management_client(&endpoint).await;

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
            read.connection_context()
                .map(|c| *c.account())
                .map(|a| a.to_string())
                .as_deref(),
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
