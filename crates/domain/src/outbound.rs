//! The messages an application may send back to the caller on a bidirectional stream: Twilio's
//! `media`, `mark` and `clear`, and nothing else.
//!
//! Anything else on the socket (other events, extra fields, bad base64, a wrong `streamSid`) makes
//! Twilio log warning 31951, so these values can only be made valid: the constructors check the
//! payload and the size, and [`Outbound::to_json`] writes exactly the fields Twilio documents, in
//! its order. [`Outbound::parse`] turns an application's JSON into one, refusing what Twilio would.

use std::borrow::Cow;
use std::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::base64check;
use super::sid::StreamSid;

/// API Gateway's WebSocket frame limit: an outbound message must fit in one frame.
pub const MAX_OUTBOUND_BYTES: usize = 32 * 1024;

/// The bytes of a `media` message around its payload:
/// `{"event":"media","streamSid":"MZ…","media":{"payload":""}}`.
const MEDIA_OVERHEAD: usize =
    r#"{"event":"media","streamSid":"","media":{"payload":""}}"#.len() + 34;

/// Longest `media.payload` (base64 characters, a multiple of 4) that keeps the message in one frame.
pub const MAX_MEDIA_PAYLOAD_CHARS: usize = (MAX_OUTBOUND_BYTES - MEDIA_OVERHEAD) / 4 * 4;

/// Most mu-law bytes one `media` message can carry (about 3 s at 8000 bytes per second).
pub const MAX_MEDIA_AUDIO_BYTES: usize = MAX_MEDIA_PAYLOAD_CHARS / 4 * 3;

/// Why a message was refused. A short code, never the message's content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OutboundError {
    /// `media.payload` is not canonical standard base64 (padded), or is empty.
    #[error("payload_not_base64")]
    PayloadNotBase64,
    /// The message would not fit in one 32 KB API Gateway frame.
    #[error("message_too_large")]
    TooLarge,
    /// A `mark` with an empty name.
    #[error("mark_name_empty")]
    MarkNameEmpty,
    /// `streamSid` is not a stream SID.
    #[error("stream_sid_invalid")]
    StreamSidInvalid,
    /// `event` is not `media`, `mark` or `clear`.
    #[error("event_not_outbound")]
    EventNotOutbound,
    /// Not JSON, a field missing, of the wrong type, repeated, or not one Twilio documents.
    #[error("message_malformed")]
    Malformed,
}

impl OutboundError {
    /// The stable code used in logs.
    pub const fn code(self) -> &'static str {
        match self {
            Self::PayloadNotBase64 => "payload_not_base64",
            Self::TooLarge => "message_too_large",
            Self::MarkNameEmpty => "mark_name_empty",
            Self::StreamSidInvalid => "stream_sid_invalid",
            Self::EventNotOutbound => "event_not_outbound",
            Self::Malformed => "message_malformed",
        }
    }
}

/// One message to Twilio, valid by construction.
#[derive(Clone, PartialEq, Eq)]
pub struct Outbound {
    stream_sid: StreamSid,
    body: Body,
}

#[derive(Clone, PartialEq, Eq)]
enum Body {
    Media { payload: String },
    Mark { name: String },
    Clear,
}

impl fmt::Debug for Outbound {
    /// Event, stream and sizes; not the audio.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Outbound");
        d.field("event", &self.event())
            .field("stream_sid", &self.stream_sid);
        match &self.body {
            Body::Media { payload } => d.field("payload_chars", &payload.len()),
            Body::Mark { name } => d.field("name", name),
            Body::Clear => &mut d,
        };
        d.finish()
    }
}

impl Outbound {
    /// `media`: play `payload` (base64 of 8 kHz mu-law, no file header) to the caller.
    pub fn media(stream_sid: StreamSid, payload: impl Into<String>) -> Result<Self, OutboundError> {
        let payload = payload.into();
        if payload.len() > MAX_MEDIA_PAYLOAD_CHARS {
            return Err(OutboundError::TooLarge);
        }
        base64check::decoded_len(payload.as_bytes()).ok_or(OutboundError::PayloadNotBase64)?;
        Ok(Self {
            stream_sid,
            body: Body::Media { payload },
        })
    }

    /// `media` from raw mu-law bytes (encoded here), at most [`MAX_MEDIA_AUDIO_BYTES`].
    pub fn media_from_mulaw(stream_sid: StreamSid, audio: &[u8]) -> Result<Self, OutboundError> {
        if audio.len() > MAX_MEDIA_AUDIO_BYTES {
            return Err(OutboundError::TooLarge);
        }
        Self::media(stream_sid, STANDARD.encode(audio))
    }

    /// `mark`: Twilio answers with a `mark` of the same name once the media sent before it played.
    pub fn mark(stream_sid: StreamSid, name: impl Into<String>) -> Result<Self, OutboundError> {
        let name = name.into();
        if name.is_empty() {
            return Err(OutboundError::MarkNameEmpty);
        }
        // Escaping can grow a name up to six-fold: measure the message itself.
        if name.len() > MAX_OUTBOUND_BYTES {
            return Err(OutboundError::TooLarge);
        }
        let message = Self {
            stream_sid,
            body: Body::Mark { name },
        };
        if message.to_json().len() > MAX_OUTBOUND_BYTES {
            return Err(OutboundError::TooLarge);
        }
        Ok(message)
    }

    /// `clear`: drop the media buffered for the caller (barge-in).
    pub fn clear(stream_sid: StreamSid) -> Self {
        Self {
            stream_sid,
            body: Body::Clear,
        }
    }

    /// The stream the message is for.
    pub fn stream_sid(&self) -> &StreamSid {
        &self.stream_sid
    }

    /// The event name: `media`, `mark` or `clear`.
    pub fn event(&self) -> &'static str {
        match self.body {
            Body::Media { .. } => "media",
            Body::Mark { .. } => "mark",
            Body::Clear => "clear",
        }
    }

    /// The message as Twilio expects it, and nothing more:
    /// `{"event":"media","streamSid":"MZ…","media":{"payload":"…"}}`,
    /// `{"event":"mark","streamSid":"MZ…","mark":{"name":"…"}}` or
    /// `{"event":"clear","streamSid":"MZ…"}`.
    pub fn to_json(&self) -> String {
        let stream_sid = &self.stream_sid;
        let written = match &self.body {
            Body::Media { payload } => serde_json::to_string(&MediaOut {
                event: "media",
                stream_sid,
                media: PayloadOut { payload },
            }),
            Body::Mark { name } => serde_json::to_string(&MarkOut {
                event: "mark",
                stream_sid,
                mark: NameOut { name },
            }),
            Body::Clear => serde_json::to_string(&ClearOut {
                event: "clear",
                stream_sid,
            }),
        };
        // Structs of strings always serialise.
        written.unwrap_or_default()
    }

    /// Reads a message an application wrote, refusing anything Twilio would: unknown events,
    /// missing, repeated or extra fields (at any level), a `streamSid` that is not one, bad base64,
    /// more than one frame.
    pub fn parse(text: &str) -> Result<Self, OutboundError> {
        if text.len() > MAX_OUTBOUND_BYTES {
            return Err(OutboundError::TooLarge);
        }
        let wire: Wire<'_> = serde_json::from_str(text).map_err(|_| OutboundError::Malformed)?;
        let stream_sid =
            StreamSid::parse(&wire.stream_sid).map_err(|_| OutboundError::StreamSidInvalid)?;
        match (wire.event.as_ref(), wire.media, wire.mark) {
            ("media", Some(media), None) => {
                let media: WireMedia<'_> =
                    serde_json::from_str(media.get()).map_err(|_| OutboundError::Malformed)?;
                Self::media(stream_sid, media.payload.into_owned())
            }
            ("mark", None, Some(mark)) => {
                let mark: WireMark<'_> =
                    serde_json::from_str(mark.get()).map_err(|_| OutboundError::Malformed)?;
                Self::mark(stream_sid, mark.name.into_owned())
            }
            ("clear", None, None) => Ok(Self::clear(stream_sid)),
            ("media" | "mark" | "clear", _, _) => Err(OutboundError::Malformed),
            _ => Err(OutboundError::EventNotOutbound),
        }
    }
}

#[derive(Serialize)]
struct MediaOut<'a> {
    event: &'static str,
    #[serde(rename = "streamSid")]
    stream_sid: &'a StreamSid,
    media: PayloadOut<'a>,
}

#[derive(Serialize)]
struct PayloadOut<'a> {
    payload: &'a str,
}

#[derive(Serialize)]
struct MarkOut<'a> {
    event: &'static str,
    #[serde(rename = "streamSid")]
    stream_sid: &'a StreamSid,
    mark: NameOut<'a>,
}

#[derive(Serialize)]
struct NameOut<'a> {
    name: &'a str,
}

#[derive(Serialize)]
struct ClearOut<'a> {
    event: &'static str,
    #[serde(rename = "streamSid")]
    stream_sid: &'a StreamSid,
}

/// An application's message. `media` and `mark` stay raw until the event says which may be there,
/// so that `"mark": null` on a `clear` is an extra field, not an absent one.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire<'a> {
    #[serde(borrow)]
    event: Cow<'a, str>,
    #[serde(rename = "streamSid", borrow)]
    stream_sid: Cow<'a, str>,
    #[serde(borrow, default, deserialize_with = "present")]
    media: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    mark: Option<&'a RawValue>,
}

/// A member that is there, even as `null` (`Option`'s own `Deserialize` reads `null` as absent).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(d).map(Some)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireMedia<'a> {
    #[serde(borrow)]
    payload: Cow<'a, str>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireMark<'a> {
    #[serde(borrow)]
    name: Cow<'a, str>,
}

#[cfg(test)]
mod tests {
    use super::*;

    const MZ: &str = "MZ00112233445566778899aabbccddeeff";

    fn mz() -> StreamSid {
        StreamSid::parse(MZ).expect("mz")
    }

    #[test]
    fn serialises_exactly_as_twilio_documents() {
        let media = Outbound::media(mz(), "/w==").expect("media");
        assert_eq!(
            media.to_json(),
            format!(r#"{{"event":"media","streamSid":"{MZ}","media":{{"payload":"/w=="}}}}"#)
        );
        let mark = Outbound::mark(mz(), "my \"label\"").expect("mark");
        assert_eq!(
            mark.to_json(),
            format!(r#"{{"event":"mark","streamSid":"{MZ}","mark":{{"name":"my \"label\""}}}}"#)
        );
        assert_eq!(
            Outbound::clear(mz()).to_json(),
            format!(r#"{{"event":"clear","streamSid":"{MZ}"}}"#)
        );
        for m in [media, mark, Outbound::clear(mz())] {
            assert_eq!(Outbound::parse(&m.to_json()), Ok(m.clone()));
        }
    }

    #[test]
    fn media_payload_must_be_canonical_base64() {
        for bad in ["", "AAA", "AB==", "AA-_", "AAAA\n", "not base64!"] {
            assert_eq!(
                Outbound::media(mz(), bad),
                Err(OutboundError::PayloadNotBase64),
                "{bad:?}"
            );
        }
        let m = Outbound::media_from_mulaw(mz(), &[0xff; 160]).expect("media");
        assert_eq!(m.event(), "media");
        assert!(m.to_json().contains(&STANDARD.encode([0xff; 160])));
    }

    #[test]
    fn the_largest_media_message_fits_one_frame_and_one_more_chunk_does_not() {
        assert_eq!(MAX_MEDIA_PAYLOAD_CHARS % 4, 0);
        let biggest =
            Outbound::media_from_mulaw(mz(), &vec![0x7f; MAX_MEDIA_AUDIO_BYTES]).expect("fits");
        let len = biggest.to_json().len();
        assert!(len <= MAX_OUTBOUND_BYTES, "{len}");
        assert!(len + 4 > MAX_OUTBOUND_BYTES, "the bound is tight: {len}");
        assert_eq!(
            Outbound::media_from_mulaw(mz(), &vec![0x7f; MAX_MEDIA_AUDIO_BYTES + 1]),
            Err(OutboundError::TooLarge)
        );
        let too_long = "A".repeat(MAX_MEDIA_PAYLOAD_CHARS + 4);
        assert_eq!(
            Outbound::media(mz(), too_long),
            Err(OutboundError::TooLarge)
        );
    }

    #[test]
    fn mark_names_are_bounded_by_the_frame_after_escaping() {
        assert_eq!(Outbound::mark(mz(), ""), Err(OutboundError::MarkNameEmpty));
        // 10 000 control characters escape to 60 000 bytes.
        assert_eq!(
            Outbound::mark(mz(), "\u{1}".repeat(10_000)),
            Err(OutboundError::TooLarge)
        );
        assert!(Outbound::mark(mz(), "x".repeat(32_000)).is_ok());
        assert_eq!(
            Outbound::mark(mz(), "x".repeat(40_000)),
            Err(OutboundError::TooLarge)
        );
    }

    #[test]
    fn parse_refuses_what_twilio_would_warn_about() {
        let cases: Vec<(String, OutboundError)> = vec![
            ("not json".into(), OutboundError::Malformed),
            (
                format!(r#"{{"event":"media","streamSid":"{MZ}"}}"#),
                OutboundError::Malformed,
            ),
            (
                format!(r#"{{"event":"clear","streamSid":"{MZ}","extra":1}}"#),
                OutboundError::Malformed,
            ),
            (
                format!(r#"{{"event":"clear","streamSid":"{MZ}","mark":null}}"#),
                OutboundError::Malformed,
            ),
            (
                format!(r#"{{"event":"clear","event":"clear","streamSid":"{MZ}"}}"#),
                OutboundError::Malformed,
            ),
            (
                format!(
                    r#"{{"event":"media","streamSid":"{MZ}","media":{{"payload":"AAAA","track":"outbound"}}}}"#
                ),
                OutboundError::Malformed,
            ),
            (
                format!(
                    r#"{{"event":"media","streamSid":"{MZ}","media":{{"payload":"AAAA"}},"mark":{{"name":"x"}}}}"#
                ),
                OutboundError::Malformed,
            ),
            (
                format!(r#"{{"event":"media","streamSid":"{MZ}","media":{{"payload":"AAA"}}}}"#),
                OutboundError::PayloadNotBase64,
            ),
            (
                format!(r#"{{"event":"mark","streamSid":"{MZ}","mark":{{"name":""}}}}"#),
                OutboundError::MarkNameEmpty,
            ),
            (
                format!(r#"{{"event":"mark","streamSid":"{MZ}","mark":{{"name":5}}}}"#),
                OutboundError::Malformed,
            ),
            (
                format!(r#"{{"event":"stop","streamSid":"{MZ}"}}"#),
                OutboundError::EventNotOutbound,
            ),
            (
                r#"{"event":"clear","streamSid":"MZXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX"}"#.into(),
                OutboundError::StreamSidInvalid,
            ),
            (r#"{"event":"clear"}"#.into(), OutboundError::Malformed),
            (" ".repeat(MAX_OUTBOUND_BYTES + 1), OutboundError::TooLarge),
        ];
        for (text, want) in cases {
            assert_eq!(Outbound::parse(&text), Err(want), "{text}");
        }
        // Escapes are read as JSON means them, and written back canonically.
        let m = Outbound::parse(&format!(
            r#"{{"event":"\u006dark","streamSid":"{MZ}","mark":{{"name":"\u0041"}}}}"#
        ))
        .expect("mark");
        assert_eq!(m, Outbound::mark(mz(), "A").expect("mark"));
    }

    #[test]
    fn each_error_has_its_stable_code() {
        let cases = [
            (OutboundError::PayloadNotBase64, "payload_not_base64"),
            (OutboundError::TooLarge, "message_too_large"),
            (OutboundError::MarkNameEmpty, "mark_name_empty"),
            (OutboundError::StreamSidInvalid, "stream_sid_invalid"),
            (OutboundError::EventNotOutbound, "event_not_outbound"),
            (OutboundError::Malformed, "message_malformed"),
        ];
        for (error, code) in cases {
            assert_eq!(error.code(), code);
            assert_eq!(error.to_string(), code);
        }
    }

    #[test]
    fn a_message_of_exactly_one_frame_is_read() {
        let clear = format!(r#"{{"event":"clear","streamSid":"{MZ}"}}"#);
        let padded = format!("{clear:<MAX_OUTBOUND_BYTES$}");
        assert_eq!(padded.len(), MAX_OUTBOUND_BYTES);
        assert_eq!(Outbound::parse(&padded), Ok(Outbound::clear(mz())));
        let over = format!("{padded} ");
        assert_eq!(Outbound::parse(&over), Err(OutboundError::TooLarge));
    }

    #[test]
    fn a_mark_of_exactly_one_frame_is_accepted_and_one_byte_more_is_not() {
        let overhead = Outbound::mark(mz(), "x").expect("mark").to_json().len() - 1;
        let fits = "x".repeat(MAX_OUTBOUND_BYTES - overhead);
        let mark = Outbound::mark(mz(), fits.clone()).expect("exactly one frame");
        assert_eq!(mark.to_json().len(), MAX_OUTBOUND_BYTES);
        assert_eq!(
            Outbound::mark(mz(), format!("{fits}x")),
            Err(OutboundError::TooLarge)
        );
        // Escaping counts: one `"` in place of an `x` is written as two bytes.
        assert_eq!(
            Outbound::mark(mz(), format!("\"{}", &fits[1..])),
            Err(OutboundError::TooLarge)
        );
    }

    #[test]
    fn debug_shows_no_audio() {
        let m = Outbound::media_from_mulaw(mz(), &[0x55; 30]).expect("media");
        let debug = format!("{m:?}");
        assert!(!debug.contains("VVVV"), "{debug}");
        assert!(debug.contains("payload_chars: 40"), "{debug}");
    }
}
