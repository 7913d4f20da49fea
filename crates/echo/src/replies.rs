//! What the echo answers, and sending it.
//!
//! [`echo_replies`] is pure: a batch of records in, the outbound `media` messages out, each
//! connection's in Twilio's `sequenceNumber` order (records of one connection can arrive out of
//! order: the router runs one invocation per frame, concurrently). [`send_replies`] posts them,
//! one connection's messages in order and connections side by side.

use std::collections::HashMap;
use std::future::Future;

use futures_util::future::join_all;
use stream_gate_answer::{ConnectionPoster, PostError, PostOutcome};
use stream_gate_domain::outbound::Outbound;

use crate::inbound::InboundRecord;

/// One message to post.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The connection to answer.
    pub connection_id: String,
    /// Its `@connections` endpoint.
    pub management_endpoint: String,
    /// The inbound frame's `sequenceNumber` this answers.
    pub sequence_number: u64,
    /// The message: `media` with the caller's own audio.
    pub message: Outbound,
}

/// The replies to a batch: for every `media` record of the caller's track (`inbound`) that names
/// its stream and carries a sequence number and a valid payload, the same audio back, ordered by
/// sequence number within each connection. Connections keep the order in which they first appear.
/// Everything else (`start`, `mark`, `stop`, the `outbound` track, which is the echo itself) gets
/// no answer.
pub fn echo_replies(records: impl IntoIterator<Item = InboundRecord>) -> Vec<Reply> {
    let mut order: Vec<String> = Vec::new();
    let mut by_connection: HashMap<String, Vec<Reply>> = HashMap::new();
    for r in records {
        let (Some(media), Some(stream_sid), Some(sequence_number)) =
            (r.media, r.stream_sid, r.sequence_number)
        else {
            continue;
        };
        if media.track != "inbound" {
            continue;
        }
        let Ok(message) = Outbound::media(stream_sid, media.payload) else {
            tracing::warn!(reason = "payload_not_echoable", "echo: media skipped");
            continue;
        };
        let replies = by_connection
            .entry(r.connection_id.clone())
            .or_insert_with(|| {
                order.push(r.connection_id.clone());
                Vec::new()
            });
        replies.push(Reply {
            connection_id: r.connection_id,
            management_endpoint: r.management_endpoint,
            sequence_number,
            message,
        });
    }
    order
        .into_iter()
        .flat_map(|c| {
            let mut replies = by_connection.remove(&c).unwrap_or_default();
            // Stable: a sequence number seen twice (a redelivered record) keeps arrival order.
            replies.sort_by_key(|r| r.sequence_number);
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
        message: &Outbound,
    ) -> impl Future<Output = Result<PostOutcome, PostError>> + Send;
}

impl Answer for ConnectionPoster {
    fn post(
        &self,
        endpoint: &str,
        connection_id: &str,
        message: &Outbound,
    ) -> impl Future<Output = Result<PostOutcome, PostError>> + Send {
        ConnectionPoster::post(self, endpoint, connection_id, message)
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
        }
    }

    fn summary(replies: &[Reply]) -> Vec<(String, u64)> {
        replies
            .iter()
            .map(|r| (r.connection_id.clone(), r.sequence_number))
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
            message: &Outbound,
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
