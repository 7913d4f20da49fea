//! The WebSocket side of the local gateway: `$connect` (authorizer, then router), one `$default`
//! invocation per text frame (concurrently, as in Lambda), `$disconnect` when the socket ends.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use tokio::sync::{mpsc, Semaphore};

use super::events::{self, authorizer_event, websocket_event, ConnectionInfo};
use super::{
    Command, LiveConnection, Shared, API_GATEWAY_FRAME_BYTES, MAX_IN_FLIGHT, READ_LIMIT_BYTES,
};
use crate::domain::CloseReason;
use stream_gate_lambda::entrypoints::authorizer;
use stream_gate_lambda::entrypoints::router::{self, RouterOutcome};

/// Close code for a binary frame (unsupported data).
pub const CLOSE_UNSUPPORTED: u16 = 1003;
/// Close code for a frame over the limit (message too big).
pub const CLOSE_TOO_BIG: u16 = 1009;
/// Close code of `DeleteConnection` (policy violation).
pub const CLOSE_POLICY: u16 = 1008;
/// Reason text of a `DeleteConnection` the router did not ask for.
pub const DELETED: &str = "connection_deleted";

fn forbidden() -> Response {
    (
        StatusCode::FORBIDDEN,
        [("content-type", "application/json")],
        r#"{"message":"Forbidden"}"#,
    )
        .into_response()
}

/// `GET /{stage}`: the WebSocket handshake. Headers and query are read before upgrading.
pub async fn upgrade(
    State(shared): State<Arc<Shared>>,
    Path(stage): Path<String>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    uri: Uri,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    if stage != shared.stage {
        return (StatusCode::NOT_FOUND, r#"{"message":"Not Found"}"#).into_response();
    }
    let ws = match ws {
        Ok(ws) => ws,
        Err(rejection) => return rejection.into_response(),
    };
    let info = connection_info(stage, peer, &headers);
    shared.records.push(&info.connection_id);
    let context = match connect(&shared, &info, &headers, &uri).await {
        Ok(context) => context,
        Err(refused) => return refused,
    };
    let rx = go_live(&shared, &info);
    let failed = shared.clone();
    let failed_info = info.clone();
    let failed_ctx = context.clone();
    ws.max_frame_size(READ_LIMIT_BYTES)
        .max_message_size(READ_LIMIT_BYTES)
        .on_failed_upgrade(move |_| {
            tokio::spawn(async move {
                finish(&failed, &failed_info, &failed_ctx, 1006, "upgrade_failed").await;
            });
        })
        .on_upgrade(move |socket| run(socket, shared, info, context, rx))
}

/// A new connection's identity, as API Gateway gives it: a fresh id, the `Host` the client
/// connected to, its address, the time.
fn connection_info(stage: String, peer: SocketAddr, headers: &HeaderMap) -> ConnectionInfo {
    let domain_name = headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1")
        .to_owned();
    ConnectionInfo {
        connection_id: format!("{}=", crate::random::alphanumeric(15)),
        domain_name,
        stage,
        source_ip: peer.ip().to_string(),
        connected_at: stream_gate_lambda::clock::unix_now_ms(),
    }
}

/// `$connect`: the authorizer, then the router. The authorizer's context when both admit the
/// connection, else the answer that refuses it.
async fn connect(
    shared: &Shared,
    info: &ConnectionInfo,
    headers: &HeaderMap,
    uri: &Uri,
) -> Result<HashMap<String, Value>, Response> {
    let id = &info.connection_id;
    // Header values are passed on as text; a non-UTF-8 value becomes a (malformed) lossy string.
    let header_list: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let query: Vec<(String, String)> = uri
        .query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default();
    let event = authorizer_event(info, &header_list, &query).map_err(|e| {
        tracing::error!(error = %e, "local gateway bug");
        (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
    })?;
    let (response, deny) = authorizer::decide(&shared.authorizer, event).await;
    if !events::is_allow(&response) {
        let code = deny.map(|d| d.code()).unwrap_or("deny");
        shared.record(id, |r| r.deny_reason = Some(code));
        shared.stats.refused.fetch_add(1, Ordering::Relaxed);
        return Err(forbidden());
    }
    let context = events::context_of(&response);
    let status = match websocket_event(info, "$connect", &context, None, None) {
        Ok(e) => router::handle(&shared.router, e).await.0.status_code,
        Err(_) => 500,
    };
    if !(200..300).contains(&status) {
        shared.record(id, |r| r.connect_status = Some(status));
        shared.stats.refused.fetch_add(1, Ordering::Relaxed);
        let code = u16::try_from(status)
            .ok()
            .and_then(|s| StatusCode::from_u16(s).ok())
            .unwrap_or(StatusCode::FORBIDDEN);
        return Err((code, r#"{"message":"Forbidden"}"#).into_response());
    }
    shared.record(id, |r| r.admitted = true);
    shared.stats.admitted.fetch_add(1, Ordering::Relaxed);
    Ok(context)
}

/// Registers an admitted connection with the Management API; its commands arrive on the receiver.
fn go_live(shared: &Shared, info: &ConnectionInfo) -> mpsc::UnboundedReceiver<Command> {
    let (tx, rx) = mpsc::unbounded_channel();
    shared
        .live
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(
            info.connection_id.clone(),
            LiveConnection {
                commands: tx,
                connected_at: info.connected_at,
                source_ip: info.source_ip.clone(),
            },
        );
    rx
}

/// Why the socket loop ended: the code and text for `$disconnect`.
struct End {
    code: u16,
    reason: String,
}

/// One admitted connection while its socket is open.
struct Connection {
    shared: Arc<Shared>,
    info: ConnectionInfo,
    context: Arc<HashMap<String, Value>>,
    /// `$default` invocations in flight.
    permits: Arc<Semaphore>,
    /// The close reason of the earliest offending frame (by arrival), written into the close
    /// frame. Frames are judged concurrently, so "first to finish" would not be deterministic.
    reason: Arc<Mutex<Option<(u64, CloseReason)>>>,
    /// Text frames received so far.
    index: u64,
}

async fn run(
    mut socket: WebSocket,
    shared: Arc<Shared>,
    info: ConnectionInfo,
    context: HashMap<String, Value>,
    mut commands: mpsc::UnboundedReceiver<Command>,
) {
    let mut c = Connection {
        shared,
        info,
        context: Arc::new(context),
        permits: Arc::new(Semaphore::new(MAX_IN_FLIGHT as usize)),
        reason: Arc::new(Mutex::new(None)),
        index: 0,
    };
    let end = loop {
        let ended = tokio::select! {
            msg = socket.recv() => c.on_message(&mut socket, msg).await,
            cmd = commands.recv() => c.on_command(&mut socket, cmd).await,
        };
        if let Some(end) = ended {
            break end;
        }
    };
    c.closed(socket, end).await;
}

impl Connection {
    /// What the client sent: a text frame becomes a `$default` invocation; the rest may end the
    /// connection.
    async fn on_message(
        &mut self,
        socket: &mut WebSocket,
        msg: Option<Result<Message, axum::Error>>,
    ) -> Option<End> {
        let id = &self.info.connection_id;
        let shared = &self.shared;
        match msg {
            None => Some(End {
                code: 1006,
                reason: "client_gone".into(),
            }),
            Some(Err(_)) => Some(End {
                code: 1006,
                reason: "socket_error".into(),
            }),
            Some(Ok(Message::Text(text))) => {
                let arrived = Instant::now();
                if text.len() > API_GATEWAY_FRAME_BYTES {
                    return Some(
                        gateway_close(
                            socket,
                            shared,
                            id,
                            CLOSE_TOO_BIG,
                            CloseReason::FrameTooLarge,
                        )
                        .await,
                    );
                }
                let Ok(permit) = self.permits.clone().acquire_owned().await else {
                    return Some(End {
                        code: 1011,
                        reason: "internal".into(),
                    });
                };
                shared.record(id, |r| r.frames += 1);
                shared.stats.frames.fetch_add(1, Ordering::Relaxed);
                self.index += 1;
                let index = self.index;
                let (shared, info, context, reason) = (
                    shared.clone(),
                    self.info.clone(),
                    self.context.clone(),
                    self.reason.clone(),
                );
                let body = text.to_string();
                tokio::spawn(async move {
                    frame(&shared, &info, &context, &body, index, &reason).await;
                    shared.stats.frame_latency(arrived.elapsed());
                    drop(permit);
                });
                None
            }
            Some(Ok(Message::Binary(_))) => Some(
                gateway_close(
                    socket,
                    shared,
                    id,
                    CLOSE_UNSUPPORTED,
                    CloseReason::FrameNotText,
                )
                .await,
            ),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => None,
            Some(Ok(Message::Close(frame))) => {
                let (code, text) =
                    frame.map_or((1005, String::new()), |f| (f.code, f.reason.to_string()));
                Some(End {
                    code,
                    reason: if text.is_empty() {
                        "client_close".into()
                    } else {
                        text
                    },
                })
            }
        }
    }

    /// A Management API command: write a frame, or close (`DeleteConnection`, or the gateway
    /// going away).
    async fn on_command(&mut self, socket: &mut WebSocket, cmd: Option<Command>) -> Option<End> {
        let id = &self.info.connection_id;
        match cmd {
            Some(Command::Send(text, reply)) => {
                let ok = socket.send(Message::Text(text.into())).await.is_ok();
                if ok {
                    self.shared.record(id, |r| r.written += 1);
                }
                let _ = reply.send(ok);
                None
            }
            Some(Command::Close) | None => {
                // The invocation that asked for the close is still in flight (it awaits the
                // DELETE answer): let it finish so its reason goes into the close frame.
                let _ = tokio::time::timeout(
                    Duration::from_secs(2),
                    self.permits.acquire_many(MAX_IN_FLIGHT),
                )
                .await;
                let code = self
                    .reason
                    .lock()
                    .ok()
                    .and_then(|r| r.map(|(_, why)| why.code()));
                let text = code.unwrap_or(DELETED);
                self.shared.record(id, |r| {
                    r.close_code = Some(CLOSE_POLICY);
                    if r.close_reason.is_none() {
                        r.close_reason = code;
                    }
                });
                let _ = socket
                    .send(Message::Close(Some(CloseFrame {
                        code: CLOSE_POLICY,
                        reason: text.into(),
                    })))
                    .await;
                Some(End {
                    code: CLOSE_POLICY,
                    reason: text.into(),
                })
            }
        }
    }

    /// The socket is gone: the in-flight invocations finish, then `$disconnect`.
    async fn closed(self, socket: WebSocket, end: End) {
        let id = &self.info.connection_id;
        let shared = &self.shared;
        shared
            .live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
        drop(socket);
        // In-flight invocations finish before `$disconnect`, as their events were sent first.
        let _ = tokio::time::timeout(
            Duration::from_secs(5),
            self.permits.acquire_many(MAX_IN_FLIGHT),
        )
        .await;
        if let Some((_, why)) = self.reason.lock().ok().and_then(|r| *r) {
            shared.record(id, |r| {
                r.close_reason.get_or_insert(why.code());
            });
        }
        finish(shared, &self.info, &self.context, end.code, &end.reason).await;
    }
}

/// A close decided by the gateway itself (binary frame, frame too large), as API Gateway does.
async fn gateway_close(
    socket: &mut WebSocket,
    shared: &Shared,
    id: &str,
    code: u16,
    reason: CloseReason,
) -> End {
    shared.record(id, |r| {
        r.close_code = Some(code);
        r.close_reason.get_or_insert(reason.code());
    });
    let _ = socket
        .send(Message::Close(Some(CloseFrame {
            code,
            reason: reason.code().into(),
        })))
        .await;
    End {
        code,
        reason: reason.code().into(),
    }
}

/// One `$default` invocation.
async fn frame(
    shared: &Shared,
    info: &ConnectionInfo,
    context: &HashMap<String, Value>,
    body: &str,
    index: u64,
    reason: &Mutex<Option<(u64, CloseReason)>>,
) {
    let event = match websocket_event(info, "$default", context, Some(body), None) {
        Ok(e) => e,
        Err(e) => {
            tracing::error!(error = %e, "local gateway bug");
            return;
        }
    };
    match router::handle(&shared.router, event).await.1 {
        RouterOutcome::Accepted(_) => {
            shared.stats.accepted.fetch_add(1, Ordering::Relaxed);
            shared.record(&info.connection_id, |r| r.accepted += 1);
        }
        RouterOutcome::Dropped(_) => {
            shared.stats.dropped.fetch_add(1, Ordering::Relaxed);
            shared.record(&info.connection_id, |r| r.dropped += 1);
        }
        RouterOutcome::Closed(why) => {
            shared.stats.closed.fetch_add(1, Ordering::Relaxed);
            if let Ok(mut slot) = reason.lock() {
                if slot.is_none_or(|(first, _)| index < first) {
                    *slot = Some((index, why));
                }
            }
        }
        _ => {}
    }
}

/// `$disconnect`, then the record is final.
async fn finish(
    shared: &Shared,
    info: &ConnectionInfo,
    context: &HashMap<String, Value>,
    code: u16,
    reason: &str,
) {
    shared
        .live
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(&info.connection_id);
    if let Ok(e) = websocket_event(info, "$disconnect", context, None, Some((code, reason))) {
        let _ = router::handle(&shared.router, e).await;
    }
    shared.record(&info.connection_id, |r| r.finished = true);
}
