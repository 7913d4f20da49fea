//! Reading a Record v1 (docs/records.md) as a consumer: only what the echo needs, checked.
//!
//! Records come from the gate, but a consumer still reads them defensively: a record it cannot
//! read is skipped with a reason code, never a panic.

use serde::Deserialize;
use serde_json::value::RawValue;
use stream_gate_domain::sid::StreamSid;

/// Longest record the echo reads (a record is one frame of at most 64 KiB plus its envelope).
pub const MAX_RECORD_BYTES: usize = 96 * 1024;

/// Why a record was skipped. A short code, never the record's content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// Longer than [`MAX_RECORD_BYTES`].
    #[error("record_too_large")]
    TooLarge,
    /// Not JSON, or a required field missing or of the wrong type.
    #[error("record_malformed")]
    Malformed,
    /// `v` is not 1.
    #[error("record_version_unknown")]
    VersionUnknown,
    /// A `session_end` record: the end of a ConversationRelay session, posted by Twilio after the
    /// socket closed. It has no connection, so nothing to answer: not an error, and not logged.
    #[error("record_without_connection")]
    SessionEnd,
}

impl ReadError {
    /// The stable code used in logs.
    pub const fn code(self) -> &'static str {
        match self {
            Self::TooLarge => "record_too_large",
            Self::Malformed => "record_malformed",
            Self::VersionUnknown => "record_version_unknown",
            Self::SessionEnd => "record_without_connection",
        }
    }
}

/// One record, as far as the echo cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundRecord {
    /// `type`: `start`, `media`, `mark`, `dtmf`, `stop`, `disconnect` (or a later type).
    pub kind: String,
    /// `connectionId`: where to answer, and the unit of ordering.
    pub connection_id: String,
    /// `managementEndpoint`: the `@connections` endpoint of the connection's stage.
    pub management_endpoint: String,
    /// `streamSid`, when the record carries a valid one.
    pub stream_sid: Option<StreamSid>,
    /// Twilio's `sequenceNumber`, as a number (`None` for `disconnect`, or when it does not fit).
    pub sequence_number: Option<u64>,
    /// For `media` records: the frame's track and base64 payload.
    pub media: Option<InboundMedia>,
    /// `receivedAt` (Unix ms; 0 when absent): the order of ConversationRelay records, which have no
    /// sequence number.
    pub received_at: u64,
    /// For ConversationRelay `prompt` and `dtmf` records: what the caller said or pressed.
    pub relay: Option<InboundRelay>,
}

/// What the caller said or pressed on a ConversationRelay session.
#[derive(Clone, PartialEq, Eq)]
pub enum InboundRelay {
    /// A `prompt`: the words, and whether the utterance is complete (`last`).
    Prompt {
        /// `voicePrompt`.
        text: String,
        /// `last` (absent: `false`).
        last: bool,
    },
    /// A `dtmf`: the key.
    Dtmf {
        /// `digit`.
        digit: String,
    },
}

impl std::fmt::Debug for InboundRelay {
    /// The kind and sizes; not the caller's words.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Prompt { text, last } => f
                .debug_struct("Prompt")
                .field("text_chars", &text.chars().count())
                .field("last", last)
                .finish(),
            Self::Dtmf { .. } => f.write_str("Dtmf"),
        }
    }
}

/// The audio of a `media` record.
#[derive(Clone, PartialEq, Eq)]
pub struct InboundMedia {
    /// `inbound` (the caller) or `outbound` (what was played to the caller).
    pub track: String,
    /// Base64 of 8 kHz mu-law, as Twilio sent it.
    pub payload: String,
}

impl std::fmt::Debug for InboundMedia {
    /// The track and the payload's size; not the audio.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InboundMedia")
            .field("track", &self.track)
            .field("payload_chars", &self.payload.len())
            .finish()
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Wire<'a> {
    v: u64,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    connection_id: Option<String>,
    #[serde(default)]
    management_endpoint: Option<String>,
    #[serde(default)]
    stream_sid: Option<String>,
    #[serde(default)]
    sequence_number: Option<String>,
    #[serde(default)]
    received_at: u64,
    #[serde(default)]
    protocol: Option<String>,
    #[serde(default, borrow)]
    twilio: Option<&'a RawValue>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RelayPromptWire {
    voice_prompt: String,
    #[serde(default)]
    last: bool,
}

#[derive(Deserialize)]
struct RelayDtmfWire {
    digit: String,
}

#[derive(Deserialize)]
struct TwilioMedia {
    media: MediaWire,
}

#[derive(Deserialize)]
struct MediaWire {
    track: String,
    payload: String,
}

impl InboundRecord {
    /// Reads one record (a JSON object, as the gate writes it).
    pub fn parse(bytes: &[u8]) -> Result<Self, ReadError> {
        if bytes.len() > MAX_RECORD_BYTES {
            return Err(ReadError::TooLarge);
        }
        let wire: Wire<'_> = serde_json::from_slice(bytes).map_err(|_| ReadError::Malformed)?;
        if wire.v != 1 {
            return Err(ReadError::VersionUnknown);
        }
        if wire.kind == "session_end" {
            return Err(ReadError::SessionEnd);
        }
        let (Some(connection_id), Some(management_endpoint)) =
            (wire.connection_id, wire.management_endpoint)
        else {
            return Err(ReadError::Malformed);
        };
        let media = match (wire.kind.as_str(), wire.twilio) {
            ("media", Some(raw)) => {
                let t: TwilioMedia =
                    serde_json::from_str(raw.get()).map_err(|_| ReadError::Malformed)?;
                Some(InboundMedia {
                    track: t.media.track,
                    payload: t.media.payload,
                })
            }
            ("media", None) => return Err(ReadError::Malformed),
            _ => None,
        };
        let relay = match (wire.protocol.as_deref(), wire.kind.as_str(), wire.twilio) {
            (Some("conversation-relay"), "prompt", Some(raw)) => {
                let p: RelayPromptWire =
                    serde_json::from_str(raw.get()).map_err(|_| ReadError::Malformed)?;
                Some(InboundRelay::Prompt {
                    text: p.voice_prompt,
                    last: p.last,
                })
            }
            (Some("conversation-relay"), "dtmf", Some(raw)) => {
                let d: RelayDtmfWire =
                    serde_json::from_str(raw.get()).map_err(|_| ReadError::Malformed)?;
                Some(InboundRelay::Dtmf { digit: d.digit })
            }
            (Some("conversation-relay"), "prompt" | "dtmf", None) => {
                return Err(ReadError::Malformed)
            }
            _ => None,
        };
        Ok(Self {
            kind: wire.kind,
            connection_id,
            management_endpoint,
            stream_sid: wire
                .stream_sid
                .as_deref()
                .and_then(|s| StreamSid::parse(s).ok()),
            sequence_number: wire.sequence_number.as_deref().and_then(|s| s.parse().ok()),
            media,
            received_at: wire.received_at,
            relay,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stream_gate_domain::pipeline::CallSids;
    use stream_gate_domain::record::{Connection, DeliveryRecord};
    use stream_gate_domain::sid::AccountSid;

    const MZ: &str = "MZ00112233445566778899aabbccddeeff";
    const CONNECTION: Connection<'static> = Connection {
        protocol: stream_gate_domain::Protocol::MediaStreams,
        connection_id: "Xk2TmdKPIAMCJqw=",
        management_endpoint: "https://abc123.execute-api.us-east-1.amazonaws.com/prod",
        received_at_ms: 1_795_881_600_433,
    };

    fn account() -> AccountSid {
        AccountSid::parse("AC0123456789abcdef0123456789abcdef").expect("sid")
    }

    #[test]
    fn reads_what_the_gate_writes() {
        let frame = format!(
            r#"{{"event":"media","sequenceNumber":"12","media":{{"track":"inbound","chunk":"11","timestamp":"220","payload":"//79"}},"streamSid":"{MZ}"}}"#
        );
        let record = stream_gate_domain::fixtures::delivered(
            &frame,
            &stream_gate_domain::connection_context::ConnectionContext::MediaStreams {
                account: account(),
            },
            None,
            &CONNECTION,
        );
        let r = InboundRecord::parse(record.json().as_bytes()).expect("read");
        assert_eq!(r.kind, "media");
        assert_eq!(r.connection_id, "Xk2TmdKPIAMCJqw=");
        assert_eq!(
            r.management_endpoint,
            "https://abc123.execute-api.us-east-1.amazonaws.com/prod"
        );
        assert_eq!(r.stream_sid.as_ref().map(|s| s.as_str()), Some(MZ));
        assert_eq!(r.sequence_number, Some(12));
        let media = r.media.expect("media");
        assert_eq!(
            (media.track.as_str(), media.payload.as_str()),
            ("inbound", "//79")
        );
    }

    #[test]
    fn a_disconnect_has_no_sequence_number_and_no_media() {
        let record = DeliveryRecord::of_disconnect(&CallSids::account_only(account()), &CONNECTION)
            .expect("record");
        let r = InboundRecord::parse(record.json().as_bytes()).expect("read");
        assert_eq!(r.kind, "disconnect");
        assert_eq!((r.sequence_number, r.media), (None, None));
    }

    #[test]
    fn refuses_what_it_cannot_read() {
        let ok = r#"{"v":1,"type":"media","connectionId":"c","managementEndpoint":"e","twilio":{"media":{"track":"inbound","payload":"AA=="}}}"#;
        assert!(InboundRecord::parse(ok.as_bytes()).is_ok());
        for (bad, why) in [
            (
                ok.replace(r#""v":1"#, r#""v":2"#),
                ReadError::VersionUnknown,
            ),
            (
                ok.replace(r#""connectionId":"c","#, ""),
                ReadError::Malformed,
            ),
            (
                ok.replace(
                    r#","twilio":{"media":{"track":"inbound","payload":"AA=="}}"#,
                    "",
                ),
                ReadError::Malformed,
            ),
            (
                ok.replace(r#""payload":"AA==""#, r#""payload":7"#),
                ReadError::Malformed,
            ),
            ("not json".to_owned(), ReadError::Malformed),
            (
                ok.replace(r#","managementEndpoint":"e""#, ""),
                ReadError::Malformed,
            ),
            (
                r#"{"v":1,"type":"session_end","protocol":"conversation-relay","accountSid":"AC0123456789abcdef0123456789abcdef","callSid":"CAffeeddccbbaa99887766554433221100","receivedAt":1,"twilio":{"SessionStatus":"ended"}}"#.to_owned(),
                ReadError::SessionEnd,
            ),
            (" ".repeat(MAX_RECORD_BYTES + 1), ReadError::TooLarge),
        ] {
            assert_eq!(InboundRecord::parse(bad.as_bytes()), Err(why), "{why}");
        }
    }

    #[test]
    fn reads_a_relay_prompt_and_dtmf_as_the_gate_writes_them() {
        use stream_gate_domain::connection_context::ConnectionContext;
        let ac = account();
        let ca =
            stream_gate_domain::CallSid::parse("CAffeeddccbbaa99887766554433221100").expect("ca");
        let context = ConnectionContext::ConversationRelay {
            account: ac,
            call: ca,
            token_expires_at: 4_102_444_800,
        };
        let connection = Connection {
            protocol: stream_gate_domain::Protocol::ConversationRelay,
            ..CONNECTION
        };
        let read = |frame: &str| {
            let record =
                stream_gate_domain::fixtures::delivered(frame, &context, None, &connection);
            InboundRecord::parse(record.json().as_bytes()).expect("read")
        };
        let r = read(&stream_gate_domain::fixtures::relay_prompt(
            "Hello there",
            true,
        ));
        assert_eq!(r.kind, "prompt");
        assert_eq!(r.received_at, 1_795_881_600_433);
        assert_eq!(r.sequence_number, None);
        assert_eq!(
            r.relay,
            Some(InboundRelay::Prompt {
                text: "Hello there".into(),
                last: true
            })
        );
        let r = read(&stream_gate_domain::fixtures::relay_dtmf('#'));
        assert_eq!(r.relay, Some(InboundRelay::Dtmf { digit: "#".into() }));
        let r = read(&stream_gate_domain::fixtures::relay_error("bad"));
        assert_eq!((r.kind.as_str(), r.relay), ("error", None));
        let bad = r#"{"v":1,"type":"prompt","protocol":"conversation-relay","connectionId":"c","managementEndpoint":"e","twilio":{"type":"prompt"}}"#;
        assert_eq!(
            InboundRecord::parse(bad.as_bytes()),
            Err(ReadError::Malformed)
        );
        let prompt = InboundRelay::Prompt {
            text: "my card number".into(),
            last: true,
        };
        assert!(!format!("{prompt:?}").contains("card"));
    }

    #[test]
    fn debug_never_shows_the_audio() {
        let m = InboundMedia {
            track: "inbound".into(),
            payload: "c2VjcmV0IGF1ZGlv".into(),
        };
        assert!(!format!("{m:?}").contains("c2VjcmV0"));
    }
}
