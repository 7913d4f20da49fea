//! The messages an application may send to Twilio on a ConversationRelay socket: `text`, `play`,
//! `sendDigits`, `language` and `end`, and nothing else (docs/conversation-relay.md).
//!
//! Twilio treats anything else as an invalid message (error 64107) and ends the session after ten
//! in a row, so these values can only be made valid: each constructor checks Twilio's rule for its
//! type, and [`RelayOutbound::to_json`] writes exactly the fields Twilio documents.
//! [`RelayOutbound::parse`] turns an application's JSON into one, refusing what Twilio would.

use serde::{Deserialize, Serialize};

use super::outbound::MAX_OUTBOUND_BYTES;

/// Longest language tag accepted (BCP 47 tags in practice are far shorter).
const MAX_LANGUAGE_CHARS: usize = 35;

/// Why a message was refused. A short code, never the message's content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RelayOutboundError {
    /// `text.token` is empty.
    #[error("text_token_empty")]
    TokenEmpty,
    /// `play.source` is not an `https://` URL with a host.
    #[error("play_source_invalid")]
    SourceInvalid,
    /// `sendDigits.digits` is empty or holds something other than `0-9`, `w`, `#`, `*`.
    #[error("digits_invalid")]
    DigitsInvalid,
    /// `language` names neither a speech nor a transcription language.
    #[error("language_missing")]
    LanguageMissing,
    /// A language is not a tag such as `en-US` (letters, digits and `-`, at most 35).
    #[error("language_invalid")]
    LanguageInvalid,
    /// The message would not fit in one 32 KB API Gateway frame.
    #[error("message_too_large")]
    TooLarge,
    /// `type` is not one an application may send.
    #[error("type_not_outbound")]
    TypeNotOutbound,
    /// Not JSON, a field missing, of the wrong type, repeated, or not one Twilio documents.
    #[error("message_malformed")]
    Malformed,
}

impl RelayOutboundError {
    /// The stable code used in logs.
    pub const fn code(self) -> &'static str {
        match self {
            Self::TokenEmpty => "text_token_empty",
            Self::SourceInvalid => "play_source_invalid",
            Self::DigitsInvalid => "digits_invalid",
            Self::LanguageMissing => "language_missing",
            Self::LanguageInvalid => "language_invalid",
            Self::TooLarge => "message_too_large",
            Self::TypeNotOutbound => "type_not_outbound",
            Self::Malformed => "message_malformed",
        }
    }
}

/// One message to Twilio on a ConversationRelay socket, valid by construction: made only by the
/// constructors and [`RelayOutbound::parse`], each of which applies its type's rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayOutbound(Message);

/// The message, in Twilio's names; optional fields are left out when not set (Twilio's defaults
/// apply). Private: a value of it has not necessarily been checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase", deny_unknown_fields)]
enum Message {
    /// Text to speak: `token`, `last` (the end of this reply), optional `lang`, `interruptible`,
    /// `preemptible`.
    Text {
        /// The words, spoken as they stream in.
        token: String,
        /// Whether this is the last token of the reply (Twilio's default: `false`). Always written.
        #[serde(default)]
        last: bool,
        /// The language to speak it in.
        #[serde(skip_serializing_if = "Option::is_none")]
        lang: Option<String>,
        /// Whether the caller may interrupt it.
        #[serde(skip_serializing_if = "Option::is_none")]
        interruptible: Option<bool>,
        /// Whether a later message may cut it short.
        #[serde(skip_serializing_if = "Option::is_none")]
        preemptible: Option<bool>,
    },
    /// An audio file to play: `source` (https), optional `loop` (0 = 1,000 plays), `preemptible`,
    /// `interruptible`.
    Play {
        /// The audio's https URL.
        source: String,
        /// How many times to play it.
        #[serde(rename = "loop", skip_serializing_if = "Option::is_none")]
        loop_count: Option<u32>,
        /// Whether a later message may cut it short.
        #[serde(skip_serializing_if = "Option::is_none")]
        preemptible: Option<bool>,
        /// Whether the caller may interrupt it.
        #[serde(skip_serializing_if = "Option::is_none")]
        interruptible: Option<bool>,
    },
    /// Digits to send on the call: `0-9`, `w` (a half-second pause), `#`, `*`.
    SendDigits {
        /// The digits.
        digits: String,
    },
    /// Switch the speech and/or the transcription language.
    Language {
        /// The text-to-speech language.
        #[serde(rename = "ttsLanguage", skip_serializing_if = "Option::is_none")]
        tts_language: Option<String>,
        /// The speech-to-text language.
        #[serde(
            rename = "transcriptionLanguage",
            skip_serializing_if = "Option::is_none"
        )]
        transcription_language: Option<String>,
    },
    /// End the session; `handoffData` reaches the `<Connect action>` callback.
    End {
        /// Anything for the callback (Twilio passes the string on).
        #[serde(rename = "handoffData", skip_serializing_if = "Option::is_none")]
        handoff_data: Option<String>,
    },
}

impl RelayOutbound {
    /// `text` with Twilio's defaults for the optional fields.
    pub fn text(token: impl Into<String>, last: bool) -> Result<Self, RelayOutboundError> {
        Message::Text {
            token: token.into(),
            last,
            lang: None,
            interruptible: None,
            preemptible: None,
        }
        .checked()
    }

    /// `play` of an https audio file, once.
    pub fn play(source: impl Into<String>) -> Result<Self, RelayOutboundError> {
        Message::Play {
            source: source.into(),
            loop_count: None,
            preemptible: None,
            interruptible: None,
        }
        .checked()
    }

    /// `sendDigits`.
    pub fn send_digits(digits: impl Into<String>) -> Result<Self, RelayOutboundError> {
        Message::SendDigits {
            digits: digits.into(),
        }
        .checked()
    }

    /// `language`: at least one of the two.
    pub fn language(
        tts_language: Option<String>,
        transcription_language: Option<String>,
    ) -> Result<Self, RelayOutboundError> {
        Message::Language {
            tts_language,
            transcription_language,
        }
        .checked()
    }

    /// `end`, with optional hand-off data for the `<Connect action>` callback.
    pub fn end(handoff_data: Option<String>) -> Result<Self, RelayOutboundError> {
        Message::End { handoff_data }.checked()
    }

    /// The message's `type`.
    pub fn kind(&self) -> &'static str {
        match self.0 {
            Message::Text { .. } => "text",
            Message::Play { .. } => "play",
            Message::SendDigits { .. } => "sendDigits",
            Message::Language { .. } => "language",
            Message::End { .. } => "end",
        }
    }

    /// The JSON Twilio receives: exactly the documented fields that are set.
    pub fn to_json(&self) -> String {
        self.0.to_json()
    }

    /// An application's JSON as a message, refused as Twilio would refuse it: an unknown `type`
    /// or field, a repeated field, a wrong type, or a broken rule of its type.
    pub fn parse(text: &str) -> Result<Self, RelayOutboundError> {
        if text.len() > MAX_OUTBOUND_BYTES {
            return Err(RelayOutboundError::TooLarge);
        }
        #[derive(Deserialize)]
        struct Tag<'a> {
            #[serde(rename = "type", borrow)]
            kind: Option<&'a str>,
        }
        let tag: Tag<'_> = serde_json::from_str::<Tag<'_>>(text)
            .ok()
            .filter(|t| t.kind.is_some())
            .ok_or(RelayOutboundError::Malformed)?;
        if !matches!(
            tag.kind,
            Some("text" | "play" | "sendDigits" | "language" | "end")
        ) {
            return Err(RelayOutboundError::TypeNotOutbound);
        }
        serde_json::from_str::<Message>(text)
            .map_err(|_| RelayOutboundError::Malformed)?
            .checked()
    }
}

impl Message {
    fn to_json(&self) -> String {
        // Serializing strings, bools and integers into a String cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Applies the rule of the message's type, and the frame limit.
    fn checked(self) -> Result<RelayOutbound, RelayOutboundError> {
        match &self {
            Self::Text { token, lang, .. } => {
                if token.is_empty() {
                    return Err(RelayOutboundError::TokenEmpty);
                }
                if let Some(lang) = lang {
                    language_tag(lang)?;
                }
            }
            Self::Play { source, .. } => {
                let host = source
                    .strip_prefix("https://")
                    .map(|rest| rest.split(['/', '?', '#']).next().unwrap_or(""));
                let clean = !source
                    .bytes()
                    .any(|b| b.is_ascii_whitespace() || b.is_ascii_control());
                if !clean || host.is_none_or(str::is_empty) {
                    return Err(RelayOutboundError::SourceInvalid);
                }
            }
            Self::SendDigits { digits } => {
                let ok = |b: u8| b.is_ascii_digit() || matches!(b, b'w' | b'#' | b'*');
                if digits.is_empty() || !digits.bytes().all(ok) {
                    return Err(RelayOutboundError::DigitsInvalid);
                }
            }
            Self::Language {
                tts_language,
                transcription_language,
            } => {
                if tts_language.is_none() && transcription_language.is_none() {
                    return Err(RelayOutboundError::LanguageMissing);
                }
                for lang in [tts_language, transcription_language].into_iter().flatten() {
                    language_tag(lang)?;
                }
            }
            Self::End { .. } => {}
        }
        if self.to_json().len() > MAX_OUTBOUND_BYTES {
            return Err(RelayOutboundError::TooLarge);
        }
        Ok(RelayOutbound(self))
    }
}

fn language_tag(tag: &str) -> Result<(), RelayOutboundError> {
    let ok = !tag.is_empty()
        && tag.len() <= MAX_LANGUAGE_CHARS
        && tag.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !tag.starts_with('-')
        && !tag.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(RelayOutboundError::LanguageInvalid)
    }
}

#[cfg(test)]
#[path = "relay_outbound_tests.rs"]
mod tests;
