//! The voice webhook's ConversationRelay answer (docs/conversation-relay.md, "The voice webhook"):
//! `<Connect action="…/relay/ended"><ConversationRelay url="wss://…?callSid=…&callToken=…" …>`,
//! with the stack's configured `<ConversationRelay>` attributes and the usual `<Parameter>`s.
//!
//! The attributes come from configuration ([`RelayAttributes::parse`], at start): only names
//! Twilio documents for `<ConversationRelay>`, each once, each value short and free of control
//! characters, all XML-escaped when written. `url` is the gate's own (the handshake's query is
//! what the authorizer checks) and `action` belongs to `<Connect>`, so neither may be configured.

use crate::sid::CallSid;
use crate::webhook_decision::{push_parameters, xml_escape};

/// The `<ConversationRelay>` attributes Twilio documents, besides `url`.
pub static DOCUMENTED_ATTRIBUTES: [&str; 19] = [
    "welcomeGreeting",
    "welcomeGreetingInterruptible",
    "language",
    "ttsLanguage",
    "ttsProvider",
    "voice",
    "transcriptionLanguage",
    "transcriptionProvider",
    "speechModel",
    "interruptible",
    "interruptSensitivity",
    "dtmfDetection",
    "reportInputDuringAgentSpeech",
    "preemptible",
    "hints",
    "debug",
    "partialPrompts",
    "elevenlabsTextNormalization",
    "intelligenceService",
];

/// Longest attribute value accepted (a welcome greeting is a sentence or two).
pub const MAX_ATTRIBUTE_CHARS: usize = 1024;

/// Why a configured attribute set was refused: a short code naming the attribute, never its value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RelayAttributeError {
    /// Not a JSON object whose values are all strings.
    #[error("expected a JSON object of strings")]
    NotAnObjectOfStrings,
    /// A name Twilio does not document for `<ConversationRelay>` (or `url`, which the gate writes).
    #[error("{0:?} is not a documented <ConversationRelay> attribute")]
    Unknown(String),
    /// A name given twice.
    #[error("{0:?} is given twice")]
    Repeated(String),
    /// A value that is empty, longer than [`MAX_ATTRIBUTE_CHARS`] or holds a control character.
    #[error("the value of {0:?} is empty, too long or holds a control character")]
    BadValue(String),
}

/// The configured `<ConversationRelay>` attributes, valid by construction, in name order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RelayAttributes(Vec<(&'static str, String)>);

impl RelayAttributes {
    /// Reads `{"name": "value", …}` (`STREAM_GATE_RELAY_ATTRIBUTES`). An unknown name is
    /// named in the error (names are not secret, values are not quoted).
    pub fn parse(json: &str) -> Result<Self, RelayAttributeError> {
        use crate::strict_json::{parse, StrictJsonError};
        let value = parse(json, &DOCUMENTED_ATTRIBUTES).map_err(|e| match e {
            StrictJsonError::DuplicateKey(path) => RelayAttributeError::Repeated(path),
            StrictJsonError::Invalid => RelayAttributeError::NotAnObjectOfStrings,
        })?;
        let serde_json::Value::Object(map) = value else {
            return Err(RelayAttributeError::NotAnObjectOfStrings);
        };
        let mut out: Vec<(&'static str, String)> = Vec::with_capacity(map.len());
        for (name, value) in map {
            let serde_json::Value::String(value) = value else {
                return Err(RelayAttributeError::NotAnObjectOfStrings);
            };
            let Some(known) = DOCUMENTED_ATTRIBUTES.iter().find(|n| **n == name) else {
                return Err(RelayAttributeError::Unknown(name));
            };
            let chars = value.chars().count();
            if chars == 0 || chars > MAX_ATTRIBUTE_CHARS || value.chars().any(char::is_control) {
                return Err(RelayAttributeError::BadValue(name));
            }
            out.push((known, value));
        }
        // Name order whatever order serde_json's map keeps (it depends on a cargo feature).
        out.sort_by_key(|(name, _)| *name);
        Ok(Self(out))
    }

    /// The attributes, in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &str)> {
        self.0.iter().map(|(n, v)| (*n, v.as_str()))
    }
}

/// The TwiML that connects `call` to the gate's ConversationRelay endpoint `stream_url`, with the
/// call token in the URL's query (where the authorizer reads it), `action_url` for the end of the
/// session, and `params` as `<Parameter>`s (they arrive in `setup.customParameters`).
pub fn relay_twiml(
    stream_url: &str,
    call: &CallSid,
    call_token: &str,
    action_url: &str,
    attributes: &RelayAttributes,
    params: &[(&str, &str)],
) -> String {
    let url = format!(
        "{stream_url}?callSid={call}&callToken={}",
        form_urlencoded::byte_serialize(call_token.as_bytes()).collect::<String>()
    );
    let mut s = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Connect action=\"{}\"><ConversationRelay url=\"{}\"",
        xml_escape(action_url),
        xml_escape(&url)
    );
    for (name, value) in attributes.iter() {
        s.push_str(&format!(" {name}=\"{}\"", xml_escape(value)));
    }
    s.push('>');
    push_parameters(&mut s, params);
    s.push_str("</ConversationRelay></Connect></Response>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const CA: &str = "CAffeeddccbbaa99887766554433221100";
    const TOKEN: &str = "v1.4102444800.pSZH3eosU1kCJgp4JojDwlVr-gZachD1ymlCozurunw";

    #[test]
    fn the_answer_carries_the_token_in_the_url_and_escapes_everything() {
        let attrs = RelayAttributes::parse(
            r#"{"welcomeGreeting":"Hi <there> & \"welcome\"","language":"en-US","dtmfDetection":"true"}"#,
        )
        .expect("valid");
        let twiml = relay_twiml(
            "wss://gate.example.com/prod",
            &CallSid::parse(CA).expect("ca"),
            TOKEN,
            "https://hooks.example.com/relay/ended?a=1&b=2",
            &attrs,
            &[("agent", "sales & support")],
        );
        assert_eq!(
            twiml,
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Connect action=\"https://hooks.example.com/relay/ended?a=1&amp;b=2\">\
                 <ConversationRelay url=\"wss://gate.example.com/prod?callSid={CA}&amp;callToken={TOKEN}\" \
                 dtmfDetection=\"true\" language=\"en-US\" welcomeGreeting=\"Hi &lt;there&gt; &amp; &quot;welcome&quot;\">\
                 <Parameter name=\"agent\" value=\"sales &amp; support\"/></ConversationRelay></Connect></Response>"
            )
        );
    }

    #[test]
    fn only_documented_attributes_once_with_plain_values() {
        assert_eq!(RelayAttributes::parse("{}"), Ok(RelayAttributes::default()));
        for name in DOCUMENTED_ATTRIBUTES {
            let json = format!(r#"{{"{name}":"x"}}"#);
            assert!(RelayAttributes::parse(&json).is_ok(), "{name}");
        }
        for (json, err) in [
            (
                r#"{"url":"wss://evil.example.com"}"#,
                RelayAttributeError::Unknown("url".into()),
            ),
            (
                r#"{"action":"https://x"}"#,
                RelayAttributeError::Unknown("action".into()),
            ),
            (
                r#"{"Language":"en-US"}"#,
                RelayAttributeError::Unknown("Language".into()),
            ),
            (
                r#"{"voice":""}"#,
                RelayAttributeError::BadValue("voice".into()),
            ),
            (
                r#"{"voice":"a\nb"}"#,
                RelayAttributeError::BadValue("voice".into()),
            ),
            (r#"{"voice":1}"#, RelayAttributeError::NotAnObjectOfStrings),
            (r#"["voice"]"#, RelayAttributeError::NotAnObjectOfStrings),
            ("not json", RelayAttributeError::NotAnObjectOfStrings),
        ] {
            assert_eq!(RelayAttributes::parse(json), Err(err), "{json}");
        }
        assert!(matches!(
            RelayAttributes::parse(r#"{"voice":"a","voice":"b"}"#),
            Err(RelayAttributeError::Repeated(_))
        ));
        let long = format!(
            r#"{{"welcomeGreeting":"{}"}}"#,
            "a".repeat(MAX_ATTRIBUTE_CHARS)
        );
        assert!(RelayAttributes::parse(&long).is_ok());
        let longer = format!(
            r#"{{"welcomeGreeting":"{}"}}"#,
            "a".repeat(MAX_ATTRIBUTE_CHARS + 1)
        );
        assert_eq!(
            RelayAttributes::parse(&longer),
            Err(RelayAttributeError::BadValue("welcomeGreeting".into()))
        );
        let secret_value = r#"{"nope":"do-not-print-me"}"#;
        let e = RelayAttributes::parse(secret_value).expect_err("unknown");
        assert!(!e.to_string().contains("do-not-print-me"));
    }
}
