//! What the echo answers, and sending it.
//!
//! [`echo_replies`] is pure: a batch of records in, the answers out: for Media Streams the caller's
//! own audio back as outbound `media`, for ConversationRelay a `text` "You said: …" for each
//! complete `prompt` and "You pressed …" for each `dtmf`. Each connection's answers come in the
//! order of its records (`sequenceNumber` for Media Streams, `receivedAt` for ConversationRelay,
//! whose messages have no sequence number): records of one connection can arrive out of order,
//! since the router runs one invocation per frame, concurrently. [`send_replies`] posts them,
//! one connection's messages in order and connections side by side.

use std::collections::HashMap;
use std::future::Future;

use futures_util::future::join_all;
use stream_gate_answer::{ConnectionPoster, PostError, PostOutcome};
use stream_gate_domain::outbound::Outbound;
use stream_gate_domain::relay_outbound::RelayOutbound;

use crate::inbound::{InboundRecord, InboundRelay};

/// One message to post.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The connection to answer.
    pub connection_id: String,
    /// Its `@connections` endpoint.
    pub management_endpoint: String,
    /// Where the record it answers stands in its connection: the `sequenceNumber` of a Media
    /// Streams frame, the `receivedAt` of a ConversationRelay message.
    pub position: u64,
    /// The message.
    pub message: ReplyMessage,
}

/// An answer: one of Twilio's own outbound messages for the connection's protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyMessage {
    /// Media Streams: `media` with the caller's own audio.
    Media(Outbound),
    /// ConversationRelay: a `text` for Twilio to speak.
    Relay(RelayOutbound),
}

impl ReplyMessage {
    /// The message as its JSON text frame.
    pub fn to_json(&self) -> String {
        match self {
            Self::Media(m) => m.to_json(),
            Self::Relay(m) => m.to_json(),
        }
    }
}

/// The answer to one record, with its position; `None` for a record that gets none.
fn answer(r: InboundRecord) -> Option<(u64, ReplyMessage)> {
    if let Some(relay) = r.relay {
        let text = match relay {
            // Partial prompts (`last: false`, only with `partialPrompts`) are the same words again.
            InboundRelay::Prompt { text, last: true } => format!("You said: {text}"),
            InboundRelay::Prompt { last: false, .. } => return None,
            InboundRelay::Dtmf { digit } => format!("You pressed {digit}."),
        };
        let Ok(message) = RelayOutbound::text(text, true) else {
            tracing::warn!(
                reason = "text_not_answerable",
                "echo: relay message skipped"
            );
            return None;
        };
        return Some((r.received_at, ReplyMessage::Relay(message)));
    }
    let (Some(media), Some(stream_sid), Some(sequence_number)) =
        (r.media, r.stream_sid, r.sequence_number)
    else {
        return None;
    };
    if media.track != "inbound" {
        return None;
    }
    let Ok(message) = Outbound::media(stream_sid, media.payload) else {
        tracing::warn!(reason = "payload_not_echoable", "echo: media skipped");
        return None;
    };
    Some((sequence_number, ReplyMessage::Media(message)))
}

/// The replies to a batch: for every `media` record of the caller's track (`inbound`) that names
/// its stream and carries a sequence number and a valid payload, the same audio back; for every
/// ConversationRelay `prompt` with `last: true`, `text` "You said: …", and for every `dtmf`
/// "You pressed …"; ordered by position within each connection. Connections keep the order in
/// which they first appear. Everything else (`start`, `mark`, `stop`, the `outbound` track, which
/// is the echo itself, `setup`, partial prompts, `interrupt`, `error`) gets no answer.
pub fn echo_replies(records: impl IntoIterator<Item = InboundRecord>) -> Vec<Reply> {
    let mut order: Vec<String> = Vec::new();
    let mut by_connection: HashMap<String, Vec<Reply>> = HashMap::new();
    for r in records {
        let (connection_id, management_endpoint) =
            (r.connection_id.clone(), r.management_endpoint.clone());
        let Some((position, message)) = answer(r) else {
            continue;
        };
        let replies = by_connection
            .entry(connection_id.clone())
            .or_insert_with(|| {
                order.push(connection_id.clone());
                Vec::new()
            });
        replies.push(Reply {
            connection_id,
            management_endpoint,
            position,
            message,
        });
    }
    order
        .into_iter()
        .flat_map(|c| {
            let mut replies = by_connection.remove(&c).unwrap_or_default();
            // Stable: a position seen twice (a redelivered record) keeps arrival order.
            replies.sort_by_key(|r| r.position);
            replies
        })
        .collect()
}

/// Where replies are posted: the Management API in production and locally, a recorder in tests.
pub trait Answer {
    /// Posts `message` to `connection_id` at `endpoint`.
    fn post(
        &self,
        endpoint: &str,
        connection_id: &str,
        message: &ReplyMessage,
    ) -> impl Future<Output = Result<PostOutcome, PostError>> + Send;
}

impl Answer for ConnectionPoster {
    async fn post(
        &self,
        endpoint: &str,
        connection_id: &str,
        message: &ReplyMessage,
    ) -> Result<PostOutcome, PostError> {
        match message {
            ReplyMessage::Media(m) => {
                ConnectionPoster::post(self, endpoint, connection_id, m).await
            }
            ReplyMessage::Relay(m) => {
                ConnectionPoster::post(self, endpoint, connection_id, m).await
            }
        }
    }
}

/// What happened to a batch of replies.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SendSummary {
    /// Posted.
    pub sent: usize,
    /// Not posted because the connection was gone (410): the call ended.
    pub gone: usize,
    /// Failed (logged with the error code). Not retried: audio played late is worse than a
    /// 20 ms gap, and a repeated `media` would play twice.
    pub failed: usize,
}

/// Posts `replies` (as [`echo_replies`] ordered them): each connection's in order, one at a time;
/// different connections concurrently. After a 410 the rest of that connection's replies are
/// dropped.
pub async fn send_replies(answer: &impl Answer, replies: Vec<Reply>) -> SendSummary {
    let mut groups: Vec<Vec<Reply>> = Vec::new();
    for r in replies {
        match groups.last_mut() {
            Some(g) if g[0].connection_id == r.connection_id => g.push(r),
            _ => groups.push(vec![r]),
        }
    }
    let results = join_all(groups.into_iter().map(|group| async move {
        let mut summary = SendSummary::default();
        let mut gone = false;
        for r in group {
            if gone {
                summary.gone += 1;
                continue;
            }
            match answer
                .post(&r.management_endpoint, &r.connection_id, &r.message)
                .await
            {
                Ok(PostOutcome::Sent) => summary.sent += 1,
                Ok(PostOutcome::Gone) => {
                    gone = true;
                    summary.gone += 1;
                }
                Err(e) => {
                    tracing::warn!(reason = "post_failed", code = %e.code, "echo: reply not sent");
                    summary.failed += 1;
                }
            }
        }
        summary
    }))
    .await;
    results
        .into_iter()
        .fold(SendSummary::default(), |a, s| SendSummary {
            sent: a.sent + s.sent,
            gone: a.gone + s.gone,
            failed: a.failed + s.failed,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inbound::InboundMedia;
    use std::sync::Mutex;
    use stream_gate_domain::sid::StreamSid;

    const MZ: &str = "MZ00112233445566778899aabbccddeeff";

    fn media(conn: &str, seq: u64, track: &str, payload: &str) -> InboundRecord {
        InboundRecord {
            kind: "media".into(),
            connection_id: conn.into(),
            management_endpoint: "http://127.0.0.1:1/local".into(),
            stream_sid: StreamSid::parse(MZ).ok(),
            sequence_number: Some(seq),
            media: Some(InboundMedia {
                track: track.into(),
                payload: payload.into(),
            }),
            received_at: 0,
            relay: None,
        }
    }

    fn relay(conn: &str, received_at: u64, kind: &str, said: InboundRelay) -> InboundRecord {
        InboundRecord {
            kind: kind.into(),
            connection_id: conn.into(),
            management_endpoint: "http://127.0.0.1:1/local".into(),
            stream_sid: None,
            sequence_number: None,
            media: None,
            received_at,
            relay: Some(said),
        }
    }

    fn prompt(text: &str, last: bool) -> InboundRelay {
        InboundRelay::Prompt {
            text: text.into(),
            last,
        }
    }

    #[test]
    fn answers_complete_prompts_and_key_presses_in_the_order_received() {
        let replies = echo_replies([
            relay("r", 30, "dtmf", InboundRelay::Dtmf { digit: "5".into() }),
            relay("r", 10, "prompt", prompt("What are", false)),
            relay("r", 20, "prompt", prompt("What are your hours?", true)),
        ]);
        let sent: Vec<(u64, String)> = replies
            .iter()
            .map(|r| (r.position, r.message.to_json()))
            .collect();
        assert_eq!(
            sent,
            [
                (
                    20,
                    r#"{"type":"text","token":"You said: What are your hours?","last":true}"#
                        .to_owned()
                ),
                (
                    30,
                    r#"{"type":"text","token":"You pressed 5.","last":true}"#.to_owned()
                ),
            ]
        );
        assert!(replies
            .iter()
            .all(|r| matches!(r.message, ReplyMessage::Relay(_))));
    }

    fn summary(replies: &[Reply]) -> Vec<(String, u64)> {
        replies
            .iter()
            .map(|r| (r.connection_id.clone(), r.position))
            .collect()
    }

    #[test]
    fn answers_inbound_media_in_sequence_order_per_connection() {
        let replies = echo_replies([
            media("b", 3, "inbound", "AAAA"),
            media("a", 5, "inbound", "AAAA"),
            media("b", 2, "inbound", "AAAA"),
            media("a", 4, "inbound", "AAAA"),
            media("a", 10, "inbound", "AAAA"),
            media("a", 9, "inbound", "AAAA"),
        ]);
        assert_eq!(
            summary(&replies),
            [("b", 2), ("b", 3), ("a", 4), ("a", 5), ("a", 9), ("a", 10)]
                .map(|(c, s)| (c.to_owned(), s))
        );
        assert_eq!(
            replies[0].message.to_json(),
            format!(r#"{{"event":"media","streamSid":"{MZ}","media":{{"payload":"AAAA"}}}}"#)
        );
    }

    #[test]
    fn answers_nothing_but_the_callers_audio() {
        let mut start = media("a", 1, "inbound", "AAAA");
        start.kind = "start".into();
        start.media = None;
        let mut no_stream = media("a", 6, "inbound", "AAAA");
        no_stream.stream_sid = None;
        let mut no_seq = media("a", 7, "inbound", "AAAA");
        no_seq.sequence_number = None;
        let replies = echo_replies([
            start,
            media("a", 2, "outbound", "AAAA"),
            media("a", 3, "inbound", "not base64!"),
            media("a", 4, "inbound", ""),
            media("a", 5, "inbound", "AAAA"),
            no_stream,
            no_seq,
        ]);
        assert_eq!(summary(&replies), [("a".to_owned(), 5)]);
    }

    /// Records what was posted; answers 410 for the connections it is told are gone.
    #[derive(Default)]
    struct Recorder {
        posted: Mutex<Vec<(String, String)>>,
        gone: Vec<&'static str>,
        failing: Vec<&'static str>,
    }

    impl Answer for Recorder {
        fn post(
            &self,
            _endpoint: &str,
            connection_id: &str,
            message: &ReplyMessage,
        ) -> impl Future<Output = Result<PostOutcome, PostError>> + Send {
            let result = if self.gone.contains(&connection_id) {
                Ok(PostOutcome::Gone)
            } else if self.failing.contains(&connection_id) {
                Err(PostError {
                    code: "LimitExceededException".into(),
                })
            } else {
                if let Ok(mut p) = self.posted.lock() {
                    p.push((connection_id.to_owned(), message.to_json()));
                }
                Ok(PostOutcome::Sent)
            };
            std::future::ready(result)
        }
    }

    #[tokio::test]
    async fn posts_in_order_and_stops_at_a_gone_connection() {
        let answer = Recorder {
            gone: vec!["gone"],
            failing: vec!["busy"],
            ..Recorder::default()
        };
        let replies = echo_replies([
            media("a", 2, "inbound", "AAEC"),
            media("gone", 1, "inbound", "AAAA"),
            media("a", 1, "inbound", "AAAA"),
            media("gone", 2, "inbound", "AAAA"),
            media("busy", 1, "inbound", "AAAA"),
        ]);
        let s = send_replies(&answer, replies).await;
        assert_eq!(
            s,
            SendSummary {
                sent: 2,
                gone: 2,
                failed: 1
            }
        );
        let posted = answer.posted.lock().map(|p| p.clone()).unwrap_or_default();
        let payloads: Vec<_> = posted
            .iter()
            .map(|(c, m)| (c.as_str(), m.contains("AAEC")))
            .collect();
        assert_eq!(payloads, [("a", false), ("a", true)]);
    }
}
