//! The simulator's socket side: a handshake as Twilio makes it, then a script of frames, while a
//! reader task watches for frames and the server's close.

use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use futures_util::{SinkExt as _, StreamExt as _};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::Connector;

use crate::domain::Secret;

/// The handshake to make.
pub struct Handshake {
    /// `ws://` URL to connect to (query string included).
    pub url: String,
    /// `X-Twilio-Signature` value, if any.
    pub signature: Option<Secret>,
    /// `User-Agent` (Twilio's is `Twilio.TmeWs/1.0`).
    pub user_agent: String,
}

/// One step of a script: a frame to send, or a pause.
pub enum Outgoing {
    /// A text frame.
    Text(String),
    /// A `media` text frame (paced).
    Media(String),
    /// A binary frame.
    Binary(Vec<u8>),
    /// Send nothing for this long (cut short when the server closes).
    Pause(Duration),
    /// Send nothing until this completes (cut short when the server closes): a script that waits
    /// for another connection's turn.
    Wait(BoxFuture<'static, ()>),
}

impl std::fmt::Debug for Outgoing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outgoing::Text(t) => f.debug_tuple("Text").field(t).finish(),
            Outgoing::Media(t) => f.debug_tuple("Media").field(t).finish(),
            Outgoing::Binary(b) => write!(f, "Binary({} bytes)", b.len()),
            Outgoing::Pause(d) => f.debug_tuple("Pause").field(d).finish(),
            Outgoing::Wait(_) => f.write_str("Wait"),
        }
    }
}

/// Waits for `step` unless the server closes first; `true` when it closed.
async fn closed_during(
    step: impl std::future::Future<Output = ()>,
    closed: &mut watch::Receiver<bool>,
) -> bool {
    if *closed.borrow() {
        return true;
    }
    tokio::select! {
        () = step => false,
        _ = closed.wait_for(|c| *c) => true,
    }
}

/// What to send after the handshake.
pub struct Script<'a> {
    /// The frames, in order, produced as they are sent (a 60 s call is 3,000 of them).
    pub frames: Box<dyn Iterator<Item = Outgoing> + Send + 'a>,
    /// Cadence of `media` frames (one every 20 ms, as Twilio sends them; zero with `--fast`).
    pub pacing: Duration,
    /// How long to wait for a server close after the last frame before closing ourselves.
    pub linger: Duration,
}

/// What the simulator observed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimReport {
    /// The upgrade succeeded (101).
    pub admitted: bool,
    /// HTTP status of a refused handshake.
    pub refused_status: Option<u16>,
    /// Frames written before the socket ended.
    pub frames_sent: usize,
    /// Frames received from the server (Twilio would warn 31951 on anything unexpected).
    pub frames_received: usize,
    /// The server's close: code, reason text, and when (since the handshake).
    pub server_close: Option<(u16, String, Duration)>,
    /// We closed first (after the script).
    pub closed_by_client: bool,
    /// Total time.
    pub elapsed: Duration,
}

/// Why the simulator could not even try.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// Bad URL or header.
    #[error("invalid request: {0}")]
    Request(String),
    /// TCP/TLS/WebSocket failure other than an HTTP refusal.
    #[error("connection failed: {0}")]
    Connect(String),
}

fn ws_config() -> WebSocketConfig {
    let mut c = WebSocketConfig::default();
    c.max_frame_size = Some(1 << 20);
    c.max_message_size = Some(1 << 20);
    c
}

/// `message` with the query string of `url` (which may carry a stream token) blanked out.
fn redact(message: String, url: &str) -> String {
    match url.split_once('?') {
        Some((_, query)) if !query.is_empty() => message.replace(query, "<redacted>"),
        _ => message,
    }
}

/// Connects, plays `script`, and reports. `ws://` and `wss://` (TLS with the system's roots).
pub async fn run(handshake: &Handshake, script: Script<'_>) -> Result<SimReport, SimError> {
    let started = Instant::now();
    let mut request = handshake
        .url
        .as_str()
        .into_client_request()
        .map_err(|e| SimError::Request(redact(e.to_string(), &handshake.url)))?;
    let headers = request.headers_mut();
    headers.insert(
        "user-agent",
        HeaderValue::from_str(&handshake.user_agent)
            .map_err(|_| SimError::Request("user agent".into()))?,
    );
    if let Some(sig) = &handshake.signature {
        // The value is a secret: the error names the header, never the value.
        headers.insert(
            "x-twilio-signature",
            HeaderValue::from_str(sig.expose()).map_err(|_| {
                SimError::Request("X-Twilio-Signature is not a header value".into())
            })?,
        );
    }
    // wss:// through the tools' own TLS configuration (system roots); ws:// in the clear.
    let connector = if handshake.url.starts_with("wss://") {
        Some(Connector::Rustls(
            crate::tls::client_config().map_err(SimError::Connect)?,
        ))
    } else {
        None
    };
    let ws = match tokio_tungstenite::connect_async_tls_with_config(
        request,
        Some(ws_config()),
        true,
        connector,
    )
    .await
    {
        Ok((ws, _)) => ws,
        Err(WsError::Http(resp)) => {
            return Ok(SimReport {
                admitted: false,
                refused_status: Some(resp.status().as_u16()),
                frames_sent: 0,
                frames_received: 0,
                server_close: None,
                closed_by_client: false,
                elapsed: started.elapsed(),
            })
        }
        Err(e) => return Err(SimError::Connect(redact(e.to_string(), &handshake.url))),
    };
    let opened = Instant::now();
    let (mut sink, mut stream) = ws.split();
    let (closed_tx, mut closed_rx) = watch::channel(false);
    let reader = tokio::spawn(async move {
        let mut received = 0usize;
        let mut close = None;
        while let Some(msg) = stream.next().await {
            match msg {
                Ok(Message::Close(frame)) => {
                    let (code, text) = frame.map_or((1005, String::new()), |f| {
                        (u16::from(f.code), f.reason.to_string())
                    });
                    close.get_or_insert((code, text, opened.elapsed()));
                    let _ = closed_tx.send(true);
                }
                Ok(Message::Text(_) | Message::Binary(_)) => received += 1,
                Ok(_) => {}
                Err(_) => break,
            }
        }
        let _ = closed_tx.send(true);
        (received, close)
    });

    // `media` frames go out on a fixed cadence (a late tick delays the rest, never bunches them).
    let mut ticker = (!script.pacing.is_zero()).then(|| {
        let mut t = tokio::time::interval(script.pacing);
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        t
    });
    let mut sent = 0usize;
    for frame in script.frames {
        if *closed_rx.borrow() {
            break;
        }
        if let (Outgoing::Media(_), Some(t)) = (&frame, ticker.as_mut()) {
            t.tick().await;
            if *closed_rx.borrow() {
                break;
            }
        }
        let msg = match frame {
            Outgoing::Text(t) | Outgoing::Media(t) => Message::Text(t.into()),
            Outgoing::Binary(b) => Message::Binary(b.into()),
            Outgoing::Pause(d) => {
                if closed_during(tokio::time::sleep(d), &mut closed_rx).await {
                    break;
                }
                continue;
            }
            Outgoing::Wait(step) => {
                if closed_during(step, &mut closed_rx).await {
                    break;
                }
                continue;
            }
        };
        if sink.send(msg).await.is_err() {
            break;
        }
        sent += 1;
    }
    let server_closed_first = tokio::time::timeout(script.linger, closed_rx.wait_for(|c| *c))
        .await
        .is_ok();
    let mut closed_by_client = false;
    if !server_closed_first {
        closed_by_client = true;
        let _ = sink
            .send(Message::Close(Some(CloseFrame {
                code: CloseCode::Normal,
                reason: "".into(),
            })))
            .await;
    }
    let (received, close) = match tokio::time::timeout(Duration::from_secs(3), reader).await {
        Ok(Ok(r)) => r,
        _ => (0, None),
    };
    // When we closed first, the close we then receive is the server's echo, not its decision.
    let server_close = if closed_by_client { None } else { close };
    Ok(SimReport {
        admitted: true,
        refused_status: None,
        frames_sent: sent,
        frames_received: received,
        server_close,
        closed_by_client,
        elapsed: started.elapsed(),
    })
}
