//! The simulator's socket side: a handshake as Twilio makes it, then a script of frames, while a
//! reader task watches for frames and the server's close.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use futures_util::future::BoxFuture;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt as _, StreamExt as _};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};

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
    /// Keep what comes back (`sim --record`, the demo's echo): every `media` payload in arrival
    /// order, matched with the frame it echoes; before `stop`, wait for the echoes. `None`: only
    /// count and judge what comes back (a long call then holds no audio).
    pub echo: Option<EchoWait>,
}

/// How long to wait for the echoes before `stop`: until every `media` frame sent has come back,
/// or nothing has come back for `quiet`, and never longer than `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EchoWait {
    /// Give up after this long without an answer.
    pub quiet: Duration,
    /// Never wait longer than this.
    pub max: Duration,
}

impl Default for EchoWait {
    fn default() -> Self {
        Self {
            quiet: Duration::from_millis(500),
            max: Duration::from_secs(5),
        }
    }
}

/// What the server wrote back, judged as Twilio judges it: on a Media Stream only `media`, `mark`
/// and `clear` for the stream's own `streamSid`, in exactly Twilio's shape; on a ConversationRelay
/// session (once the client sent `setup`) only the five messages an application may send, each by
/// its rule (`text`, `play`, `sendDigits`, `language`, `end`; the domain's `RelayOutbound::parse`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Answers {
    /// Valid `media` messages.
    pub media: usize,
    /// Valid `mark` messages.
    pub marks: usize,
    /// Valid `clear` messages.
    pub clears: usize,
    /// Valid ConversationRelay messages.
    pub relay: usize,
    /// Frames Twilio would refuse (warning 31951; binary frames 31950).
    pub invalid: usize,
    /// The first refused frame's reason code.
    pub first_invalid: Option<&'static str>,
    /// With [`Script::echo`]: the audio that came back.
    pub echo: Option<Box<EchoReport>>,
    /// With [`Script::echo`] on a ConversationRelay session: the turns answered.
    pub relay_turns: Option<RelayTurns>,
}

/// A ConversationRelay session's turns that ask for an answer (each complete `prompt`, each `dtmf`)
/// against the application's answers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RelayTurns {
    /// Complete prompts and digits sent.
    pub asked: usize,
    /// Valid messages that came back.
    pub answered: usize,
    /// How long the client waited for them after its last message.
    pub waited: Duration,
}

impl Answers {
    /// `media` answers that echo a frame this client sent (0 without [`Script::echo`]).
    pub fn echoed(&self) -> usize {
        self.echo.as_ref().map_or(0, |e| e.echoed)
    }

    /// Answers Twilio accepts (`media`, `mark`, `clear` for the stream, or a ConversationRelay
    /// session's messages): an application's, through PostToConnection; the gate itself never
    /// writes to the socket.
    pub fn legal(&self) -> usize {
        self.media + self.marks + self.clears + self.relay
    }
}

/// The audio that came back, against the audio sent.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct EchoReport {
    /// `media` frames sent.
    pub sent: usize,
    /// `media` answers carrying the payload of a frame sent (each frame matched once).
    pub echoed: usize,
    /// Every answer so far carried the payload of the next frame sent, in order.
    pub in_order: bool,
    /// Round trip (frame sent → its echo arrived): median.
    pub rtt_p50: Option<Duration>,
    /// Round trip: largest.
    pub rtt_max: Option<Duration>,
    /// How long the client waited for the echoes before `stop`.
    pub waited: Duration,
    /// The mu-law audio of every `media` answer, in arrival order.
    pub audio: Vec<u8>,
}

impl std::fmt::Debug for EchoReport {
    /// Counts and times; not the audio.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EchoReport")
            .field("sent", &self.sent)
            .field("echoed", &self.echoed)
            .field("in_order", &self.in_order)
            .field("rtt_p50", &self.rtt_p50)
            .field("rtt_max", &self.rtt_max)
            .field("waited", &self.waited)
            .field("audio_bytes", &self.audio.len())
            .finish()
    }
}

/// One answer Twilio accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// `media`: the base64 payload as sent, and its bytes.
    Media(String, Vec<u8>),
    /// `mark`.
    Mark,
    /// `clear`.
    Clear,
}

/// Judges one text frame from the server as Twilio does: `{"event":"media","streamSid":..,
/// "media":{"payload":<base64>}}`, `{"event":"mark","streamSid":..,"mark":{"name":..}}` or
/// `{"event":"clear","streamSid":..}`, nothing more, for `stream` (`None`: no `start` sent yet, so
/// nothing is legal). The reason code on refusal.
pub fn judge_answer(text: &str, stream: Option<&str>) -> Result<Answer, &'static str> {
    use serde_json::Value;
    let Ok(Value::Object(msg)) = serde_json::from_str::<Value>(text) else {
        return Err("answer_not_json");
    };
    let event = msg.get("event").and_then(Value::as_str);
    let keys = |allowed: &[&str]| msg.keys().all(|k| allowed.contains(&k.as_str()));
    match (msg.get("streamSid").and_then(Value::as_str), stream) {
        (Some(got), Some(want)) if got == want => {}
        _ => return Err("answer_stream_mismatch"),
    }
    let only = |v: Option<&Value>, key: &str| -> Option<String> {
        let Some(Value::Object(o)) = v else {
            return None;
        };
        if o.len() != 1 {
            return None;
        }
        o.get(key).and_then(Value::as_str).map(str::to_owned)
    };
    match event {
        Some("media") if keys(&["event", "streamSid", "media"]) => {
            let payload = only(msg.get("media"), "payload").ok_or("answer_shape")?;
            let bytes = STANDARD
                .decode(payload.as_bytes())
                .map_err(|_| "answer_payload_invalid")?;
            if bytes.is_empty() {
                return Err("answer_payload_invalid");
            }
            Ok(Answer::Media(payload, bytes))
        }
        Some("mark") if keys(&["event", "streamSid", "mark"]) => {
            only(msg.get("mark"), "name").ok_or("answer_shape")?;
            Ok(Answer::Mark)
        }
        Some("clear") if keys(&["event", "streamSid"]) => Ok(Answer::Clear),
        Some("media" | "mark" | "clear") => Err("answer_shape"),
        _ => Err("answer_event_unknown"),
    }
}

/// What the reader and the writer share: the stream (from the `start` sent), the frames sent (with
/// [`Script::echo`]) and what came back.
#[derive(Default)]
struct Tracker {
    stream: Option<String>,
    /// A `setup` was sent: the socket is a ConversationRelay session.
    relay: bool,
    /// ConversationRelay turns sent that ask for an answer.
    relay_asked: usize,
    keep_audio: bool,
    /// Payloads sent, with their send time, and whether an answer matched them.
    sent: Vec<(String, Instant, bool)>,
    answers: Answers,
    in_order: bool,
    rtts: Vec<Duration>,
    last_answer: Option<Instant>,
    audio: Vec<u8>,
}

impl Tracker {
    fn answered(&mut self, text: &str, now: Instant) {
        if self.relay {
            match crate::domain::RelayOutbound::parse(text) {
                Ok(_) => {
                    self.answers.relay += 1;
                    self.last_answer = Some(now);
                }
                Err(e) => self.invalid(e.code()),
            }
            return;
        }
        match judge_answer(text, self.stream.as_deref()) {
            Ok(Answer::Media(payload, bytes)) => {
                self.answers.media += 1;
                self.last_answer = Some(now);
                if !self.keep_audio {
                    return;
                }
                self.audio.extend_from_slice(&bytes);
                let position = self.answers.media - 1;
                let next_in_order = self
                    .sent
                    .get(position)
                    .filter(|(p, _, used)| !used && *p == payload)
                    .map(|_| position);
                if next_in_order.is_none() {
                    self.in_order = false;
                }
                // Out of order: the first frame sent with this payload not yet answered.
                let matched = next_in_order.or_else(|| {
                    self.sent
                        .iter()
                        .position(|(p, _, used)| !used && *p == payload)
                });
                if let Some(i) = matched {
                    if let Some(entry) = self.sent.get_mut(i) {
                        entry.2 = true;
                        self.rtts.push(now.saturating_duration_since(entry.1));
                    }
                }
            }
            Ok(Answer::Mark) => self.answers.marks += 1,
            Ok(Answer::Clear) => self.answers.clears += 1,
            Err(code) => self.invalid(code),
        }
    }

    fn invalid(&mut self, code: &'static str) {
        self.answers.invalid += 1;
        self.answers.first_invalid.get_or_insert(code);
    }

    /// Notes a frame about to be sent; returns whether it is a `stop`.
    fn sending(&mut self, frame: &Outgoing) -> bool {
        match frame {
            Outgoing::Media(text) if self.keep_audio => {
                let payload = serde_json::from_str::<serde_json::Value>(text)
                    .ok()
                    .and_then(|v| v.pointer("/media/payload")?.as_str().map(str::to_owned));
                if let Some(p) = payload {
                    self.sent.push((p, Instant::now(), false));
                }
                false
            }
            Outgoing::Text(text) => {
                let Ok(v) = serde_json::from_str::<serde_json::Value>(text) else {
                    return false;
                };
                match v.get("type").and_then(serde_json::Value::as_str) {
                    Some("setup") => self.relay = true,
                    Some("dtmf") => self.relay_asked += 1,
                    Some("prompt") if v.get("last") == Some(&serde_json::Value::Bool(true)) => {
                        self.relay_asked += 1;
                    }
                    _ => {}
                }
                match v.get("event").and_then(serde_json::Value::as_str) {
                    Some("start") => {
                        if let Some(s) = v.pointer("/start/streamSid").and_then(|s| s.as_str()) {
                            self.stream = Some(s.to_owned());
                        }
                        false
                    }
                    Some("stop") => true,
                    _ => false,
                }
            }
            _ => false,
        }
    }

    fn all_back(&self) -> bool {
        if self.relay {
            return self.answers.relay >= self.relay_asked;
        }
        self.answers.media >= self.sent.len()
    }

    fn finish(&mut self, waited: Duration) -> Answers {
        let mut answers = std::mem::take(&mut self.answers);
        if self.keep_audio && self.relay {
            answers.relay_turns = Some(RelayTurns {
                asked: self.relay_asked,
                answered: answers.relay,
                waited,
            });
        } else if self.keep_audio {
            self.rtts.sort_unstable();
            let echoed = self.sent.iter().filter(|(_, _, used)| *used).count();
            answers.echo = Some(Box::new(EchoReport {
                sent: self.sent.len(),
                echoed,
                in_order: self.in_order && echoed == answers.media,
                rtt_p50: self
                    .rtts
                    .get(self.rtts.len().saturating_sub(1) / 2)
                    .copied(),
                rtt_max: self.rtts.last().copied(),
                waited,
                audio: std::mem::take(&mut self.audio),
            }));
        }
        answers
    }
}

fn track(t: &Mutex<Tracker>) -> MutexGuard<'_, Tracker> {
    t.lock().unwrap_or_else(|p| p.into_inner())
}

/// Waits (before `stop`) until every frame sent has come back, or `wait.quiet` without an answer,
/// or `wait.max`, or the server closes. How long it waited.
async fn await_echoes(
    tracker: &Mutex<Tracker>,
    wait: EchoWait,
    closed: &watch::Receiver<bool>,
) -> Duration {
    let started = Instant::now();
    loop {
        let now = Instant::now();
        let (done, last) = {
            let t = track(tracker);
            (t.all_back(), t.last_answer)
        };
        let quiet_since = last.map_or(started, |l| l.max(started));
        if done
            || *closed.borrow()
            || now.duration_since(started) >= wait.max
            || now.duration_since(quiet_since) >= wait.quiet
        {
            return now.duration_since(started);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
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
    /// What those frames were, judged as Twilio would.
    pub answers: Answers,
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
    let ws = match connect(handshake).await? {
        Ok(ws) => ws,
        Err(status) => {
            return Ok(SimReport {
                admitted: false,
                refused_status: Some(status),
                frames_sent: 0,
                frames_received: 0,
                answers: Answers::default(),
                server_close: None,
                closed_by_client: false,
                elapsed: started.elapsed(),
            })
        }
    };
    let opened = Instant::now();
    let (mut sink, stream) = ws.split();
    let (closed_tx, mut closed_rx) = watch::channel(false);
    let tracker = Arc::new(Mutex::new(Tracker {
        keep_audio: script.echo.is_some(),
        in_order: true,
        ..Tracker::default()
    }));
    let reader = tokio::spawn(read_answers(stream, tracker.clone(), closed_tx, opened));
    let linger = script.linger;
    let (sent, waited) = send_script(&mut sink, script, &tracker, &mut closed_rx).await;
    let server_closed_first = tokio::time::timeout(linger, closed_rx.wait_for(|c| *c))
        .await
        .is_ok();
    let closed_by_client = !server_closed_first;
    if closed_by_client {
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
    let answers = track(&tracker).finish(waited);
    Ok(SimReport {
        admitted: true,
        refused_status: None,
        frames_sent: sent,
        frames_received: received,
        answers,
        server_close,
        closed_by_client,
        elapsed: started.elapsed(),
    })
}

/// The simulator's side of a WebSocket.
type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;
/// How the server closed: code, reason text, and when after the socket opened.
type ServerClose = (u16, String, Duration);

/// Opens the socket as `handshake` says: the socket, or the HTTP status that refused it.
async fn connect(handshake: &Handshake) -> Result<Result<Socket, u16>, SimError> {
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
    match tokio_tungstenite::connect_async_tls_with_config(
        request,
        Some(ws_config()),
        true,
        connector,
    )
    .await
    {
        Ok((ws, _)) => Ok(Ok(ws)),
        Err(WsError::Http(resp)) => Ok(Err(resp.status().as_u16())),
        Err(e) => Err(SimError::Connect(redact(e.to_string(), &handshake.url))),
    }
}

/// Reads everything the server sends until the socket ends: the frames counted and tracked, the
/// first close kept with its time since `opened` (and signalled on `closed`).
async fn read_answers(
    mut stream: SplitStream<Socket>,
    tracker: Arc<Mutex<Tracker>>,
    closed: watch::Sender<bool>,
    opened: Instant,
) -> (usize, Option<ServerClose>) {
    let mut received = 0usize;
    let mut close = None;
    while let Some(msg) = stream.next().await {
        match msg {
            Ok(Message::Close(frame)) => {
                let (code, text) = frame.map_or((1005, String::new()), |f| {
                    (u16::from(f.code), f.reason.to_string())
                });
                close.get_or_insert((code, text, opened.elapsed()));
                let _ = closed.send(true);
            }
            Ok(Message::Text(text)) => {
                received += 1;
                track(&tracker).answered(text.as_str(), Instant::now());
            }
            Ok(Message::Binary(_)) => {
                received += 1;
                track(&tracker).invalid("answer_binary");
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
    let _ = closed.send(true);
    (received, close)
}

/// Sends the script's frames until it ends or the server closes: how many frames went out, and
/// how long the call waited for its echoes before `stop`.
async fn send_script(
    sink: &mut SplitSink<Socket, Message>,
    script: Script<'_>,
    tracker: &Mutex<Tracker>,
    closed_rx: &mut watch::Receiver<bool>,
) -> (usize, Duration) {
    // `media` frames go out on a fixed cadence (a late tick delays the rest, never bunches them).
    let mut ticker = (!script.pacing.is_zero()).then(|| {
        let mut t = tokio::time::interval(script.pacing);
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        t
    });
    let mut sent = 0usize;
    let mut waited = Duration::ZERO;
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
        let is_stop = track(tracker).sending(&frame);
        if let (true, Some(wait)) = (is_stop, script.echo) {
            // As a caller who stays on the line until they have heard themselves.
            waited = await_echoes(tracker, wait, closed_rx).await;
            if *closed_rx.borrow() {
                break;
            }
        }
        let msg = match frame {
            Outgoing::Text(t) | Outgoing::Media(t) => Message::Text(t.into()),
            Outgoing::Binary(b) => Message::Binary(b.into()),
            Outgoing::Pause(d) => {
                if closed_during(tokio::time::sleep(d), closed_rx).await {
                    break;
                }
                continue;
            }
            Outgoing::Wait(step) => {
                if closed_during(step, closed_rx).await {
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
    // A ConversationRelay session has no `stop`: the caller hangs up after the last turn, once
    // its answers have come (as a caller who waits to hear the agent out).
    let relay = track(tracker).relay;
    if let (true, Some(wait)) = (relay, script.echo) {
        if !*closed_rx.borrow() {
            waited = await_echoes(tracker, wait, closed_rx).await;
        }
    }
    (sent, waited)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MZ: &str = "MZ00112233445566778899aabbccddeeff";

    #[test]
    fn only_twilios_three_answers_for_the_stream_are_legal() {
        let ok = format!(r#"{{"event":"media","streamSid":"{MZ}","media":{{"payload":"//79"}}}}"#);
        assert_eq!(
            judge_answer(&ok, Some(MZ)),
            Ok(Answer::Media("//79".into(), vec![0xFF, 0xFE, 0xFD]))
        );
        let mark = format!(r#"{{"event":"mark","streamSid":"{MZ}","mark":{{"name":"x"}}}}"#);
        assert_eq!(judge_answer(&mark, Some(MZ)), Ok(Answer::Mark));
        let clear = format!(r#"{{"event":"clear","streamSid":"{MZ}"}}"#);
        assert_eq!(judge_answer(&clear, Some(MZ)), Ok(Answer::Clear));
        let other = "MZffeeddccbbaa99887766554433221100";
        for (bad, why) in [
            ("not json".to_owned(), "answer_not_json"),
            (ok.replace(MZ, other), "answer_stream_mismatch"),
            (
                ok.replace("media\",", "surprise\","),
                "answer_event_unknown",
            ),
            (
                ok.replace(
                    r#""payload":"//79""#,
                    r#""payload":"//79","track":"outbound""#,
                ),
                "answer_shape",
            ),
            (ok.replace("//79", "not base64!"), "answer_payload_invalid"),
            (ok.replace("//79", ""), "answer_payload_invalid"),
            (clear.replace('}', r#","extra":1}"#), "answer_shape"),
            (mark.replace(r#""x""#, "7"), "answer_shape"),
        ] {
            assert_eq!(judge_answer(&bad, Some(MZ)), Err(why), "{bad}");
        }
        // Before a start there is no stream to answer.
        assert_eq!(judge_answer(&ok, None), Err("answer_stream_mismatch"));
    }

    #[test]
    fn a_relay_session_takes_the_application_messages_and_counts_its_turns() {
        use crate::domain::fixtures;
        use crate::sim::identity::{fresh_call_sid, fresh_session_sid};
        let me = crate::domain::AccountSid::parse("AC00112233445566778899aabbccddeeff")
            .expect("account");
        let mut t = Tracker {
            keep_audio: true,
            in_order: true,
            ..Tracker::default()
        };
        for text in [
            fixtures::relay_setup(&fresh_session_sid(), &me, &fresh_call_sid()),
            fixtures::relay_prompt("Hi", false),
            fixtures::relay_prompt("Hi there", true),
            fixtures::relay_dtmf('5'),
            fixtures::relay_interrupt("Hi", 300),
        ] {
            assert!(!t.sending(&Outgoing::Text(text)));
        }
        assert!(t.relay);
        let now = Instant::now();
        t.answered(
            r#"{"type":"text","token":"You said: Hi there","last":true}"#,
            now,
        );
        assert!(!t.all_back(), "one turn of two answered");
        // A Media Streams answer is not a ConversationRelay message.
        let media =
            format!(r#"{{"event":"media","streamSid":"{MZ}","media":{{"payload":"//79"}}}}"#);
        t.answered(&media, now);
        t.answered(r#"{"type":"sendDigits","digits":"5x"}"#, now);
        t.answered(r#"{"type":"sendDigits","digits":"5"}"#, now);
        assert!(t.all_back());
        let a = t.finish(Duration::from_millis(3));
        assert_eq!((a.relay, a.invalid, a.legal()), (2, 2, 2));
        assert_eq!(a.first_invalid, Some("message_malformed"));
        assert_eq!(
            a.relay_turns,
            Some(RelayTurns {
                asked: 2,
                answered: 2,
                waited: Duration::from_millis(3)
            })
        );
        assert!(a.echo.is_none());
    }

    #[test]
    fn echoes_are_matched_in_order_with_their_round_trip() {
        let t0 = Instant::now();
        let mut t = Tracker {
            stream: Some(MZ.into()),
            keep_audio: true,
            in_order: true,
            ..Tracker::default()
        };
        for p in ["AAAA", "AQEB", "AAAA"] {
            t.sent.push((p.into(), t0, false));
        }
        let answer = |p: &str| {
            format!(r#"{{"event":"media","streamSid":"{MZ}","media":{{"payload":"{p}"}}}}"#)
        };
        let later = t0 + Duration::from_millis(8);
        t.answered(&answer("AAAA"), later);
        t.answered(&answer("AQEB"), later);
        assert!(!t.all_back());
        t.answered(&answer("AAAA"), later);
        assert!(t.all_back());
        let a = t.finish(Duration::ZERO);
        let e = a.echo.expect("echo");
        assert_eq!((e.sent, e.echoed, e.in_order), (3, 3, true));
        assert_eq!(e.audio, [0, 0, 0, 1, 1, 1, 0, 0, 0]);
        assert_eq!(e.rtt_max, Some(Duration::from_millis(8)));
        assert!(!format!("{e:?}").contains("[0, 0, 0"));

        let mut swapped = Tracker {
            stream: Some(MZ.into()),
            keep_audio: true,
            in_order: true,
            ..Tracker::default()
        };
        for p in ["AAAA", "AQEB"] {
            swapped.sent.push((p.into(), t0, false));
        }
        swapped.answered(&answer("AQEB"), later);
        swapped.answered(&answer("AAAA"), later);
        let e = swapped.finish(Duration::ZERO).echo.expect("echo");
        assert_eq!((e.echoed, e.in_order), (2, false));
    }
}
