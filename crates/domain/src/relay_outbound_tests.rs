use super::*;
use proptest::prelude::*;

use RelayOutboundError as E;

#[test]
fn each_constructor_writes_exactly_twilios_fields() {
    let cases = [
        (
            RelayOutbound::text("Hello", false),
            r#"{"type":"text","token":"Hello","last":false}"#,
        ),
        (
            RelayOutbound::text("world.", true),
            r#"{"type":"text","token":"world.","last":true}"#,
        ),
        (
            RelayOutbound::play("https://example.com/a.mp3"),
            r#"{"type":"play","source":"https://example.com/a.mp3"}"#,
        ),
        (
            RelayOutbound::send_digits("9www4085551212#*"),
            r#"{"type":"sendDigits","digits":"9www4085551212#*"}"#,
        ),
        (
            RelayOutbound::language(Some("sv-SE".into()), None),
            r#"{"type":"language","ttsLanguage":"sv-SE"}"#,
        ),
        (
            RelayOutbound::language(None, Some("en-US".into())),
            r#"{"type":"language","transcriptionLanguage":"en-US"}"#,
        ),
        (
            RelayOutbound::language(Some("sv-SE".into()), Some("en-US".into())),
            r#"{"type":"language","ttsLanguage":"sv-SE","transcriptionLanguage":"en-US"}"#,
        ),
        (RelayOutbound::end(None), r#"{"type":"end"}"#),
        (
            RelayOutbound::end(Some(r#"{"reasonCode":"live-agent-handoff"}"#.into())),
            r#"{"type":"end","handoffData":"{\"reasonCode\":\"live-agent-handoff\"}"}"#,
        ),
    ];
    for (message, json) in cases {
        let message = message.expect(json);
        assert_eq!(message.to_json(), json);
        assert_eq!(RelayOutbound::parse(json), Ok(message), "{json}");
    }
}

#[test]
fn kind_is_the_type_twilio_reads() {
    let kinds = [
        (RelayOutbound::text("a", true), "text"),
        (RelayOutbound::play("https://h/a.wav"), "play"),
        (RelayOutbound::send_digits("1"), "sendDigits"),
        (RelayOutbound::language(Some("en".into()), None), "language"),
        (RelayOutbound::end(None), "end"),
    ];
    for (message, kind) in kinds {
        let message = message.expect(kind);
        assert_eq!(message.kind(), kind);
        assert!(message
            .to_json()
            .starts_with(&format!(r#"{{"type":"{kind}""#)));
    }
}

#[test]
fn twilios_own_examples_parse_and_are_written_back_unchanged() {
    for json in [
        r#"{"type":"text","token":"Hello","last":false,"lang":"en-US","interruptible":true,"preemptible":false}"#,
        r#"{"type":"play","source":"https://api.twilio.com/cowbell.mp3","loop":1,"preemptible":false,"interruptible":true}"#,
        r#"{"type":"sendDigits","digits":"9www4085551212"}"#,
        r#"{"type":"language","ttsLanguage":"sv-SE","transcriptionLanguage":"en-US"}"#,
        r#"{"type":"end","handoffData":"{\"reasonCode\":\"live-agent-handoff\",\"reason\":\"The caller wants to talk to a real person\"}"}"#,
    ] {
        let message = RelayOutbound::parse(json).expect(json);
        assert_eq!(message.to_json(), json);
    }
}

#[test]
fn a_text_without_last_is_not_the_last_token() {
    let message = RelayOutbound::parse(r#"{"type":"text","token":"Hi"}"#).expect("text");
    assert_eq!(message, RelayOutbound::text("Hi", false).expect("text"));
}

#[test]
fn text_needs_a_token() {
    assert_eq!(RelayOutbound::text("", true), Err(E::TokenEmpty));
    for json in [
        r#"{"type":"text","token":"","last":true}"#,
        r#"{"type":"text","last":true}"#,
        r#"{"type":"text","token":null,"last":true}"#,
        r#"{"type":"text","token":5,"last":true}"#,
    ] {
        let want = if json.contains(r#""token":"""#) {
            E::TokenEmpty
        } else {
            E::Malformed
        };
        assert_eq!(RelayOutbound::parse(json), Err(want), "{json}");
    }
}

#[test]
fn play_needs_an_https_url_with_a_host() {
    for good in ["https://h", "https://h/a.mp3", "https://h:8443/a?x=1#t"] {
        assert!(RelayOutbound::play(good).is_ok(), "{good}");
    }
    for bad in [
        "",
        "http://example.com/a.mp3",
        "HTTPS://example.com/a.mp3",
        "ftp://example.com/a.mp3",
        "https://",
        "https:///a.mp3",
        "https://?a",
        "https://#a",
        "https://h/a b.mp3",
        "https://h/a.mp3\n",
        "https://h/\u{7f}",
        " https://h/a.mp3",
    ] {
        assert_eq!(RelayOutbound::play(bad), Err(E::SourceInvalid), "{bad:?}");
    }
}

#[test]
fn digits_are_0_to_9_w_hash_and_star() {
    assert!(RelayOutbound::send_digits("0123456789w#*").is_ok());
    for bad in ["", "W", "1a", "1 2", "+1", "١", "1,2"] {
        assert_eq!(
            RelayOutbound::send_digits(bad),
            Err(E::DigitsInvalid),
            "{bad:?}"
        );
    }
}

#[test]
fn language_names_at_least_one_well_formed_tag() {
    assert_eq!(RelayOutbound::language(None, None), Err(E::LanguageMissing));
    assert_eq!(
        RelayOutbound::parse(r#"{"type":"language"}"#),
        Err(E::LanguageMissing)
    );
    let longest = "a".repeat(35);
    for good in ["en", "en-US", "zh-Hant-TW", "es-419", longest.as_str()] {
        assert!(
            RelayOutbound::language(Some(good.into()), None).is_ok(),
            "{good}"
        );
        assert!(
            RelayOutbound::language(None, Some(good.into())).is_ok(),
            "{good}"
        );
    }
    let too_long = "a".repeat(36);
    for bad in [
        "",
        "-en",
        "en-",
        "en_US",
        "en US",
        "en-US\n",
        too_long.as_str(),
    ] {
        let b = || Some(bad.to_owned());
        let g = || Some("en-US".to_owned());
        assert_eq!(
            RelayOutbound::language(b(), None),
            Err(E::LanguageInvalid),
            "{bad:?}"
        );
        assert_eq!(
            RelayOutbound::language(None, b()),
            Err(E::LanguageInvalid),
            "{bad:?}"
        );
        assert_eq!(
            RelayOutbound::language(g(), b()),
            Err(E::LanguageInvalid),
            "{bad:?}"
        );
        assert_eq!(
            RelayOutbound::language(b(), g()),
            Err(E::LanguageInvalid),
            "{bad:?}"
        );
        let text = format!(
            r#"{{"type":"text","token":"a","lang":{}}}"#,
            json_string(bad)
        );
        assert_eq!(
            RelayOutbound::parse(&text),
            Err(E::LanguageInvalid),
            "{bad:?}"
        );
    }
}

fn json_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

#[test]
fn a_message_fits_one_api_gateway_frame() {
    let overhead = r#"{"type":"text","token":"","last":false}"#.len();
    let fits = "a".repeat(MAX_OUTBOUND_BYTES - overhead);
    let message = RelayOutbound::text(fits.clone(), false).expect("fits");
    assert_eq!(message.to_json().len(), MAX_OUTBOUND_BYTES);
    assert_eq!(RelayOutbound::parse(&message.to_json()), Ok(message));
    assert_eq!(RelayOutbound::text(fits + "a", false), Err(E::TooLarge));
    // Escaping counts: a quote is written as two bytes.
    let quotes = "\"".repeat((MAX_OUTBOUND_BYTES - overhead) / 2 + 1);
    assert_eq!(RelayOutbound::text(quotes, false), Err(E::TooLarge));
    assert_eq!(
        RelayOutbound::end(Some("x".repeat(MAX_OUTBOUND_BYTES))),
        Err(E::TooLarge)
    );
    // parse refuses an oversized text before reading it.
    let huge = format!(
        r#"{{"type":"end","handoffData":"{}"}}"#,
        "x".repeat(MAX_OUTBOUND_BYTES)
    );
    assert_eq!(RelayOutbound::parse(&huge), Err(E::TooLarge));
}

#[test]
fn parse_refuses_what_twilio_would_not_process() {
    let cases = [
        ("", E::Malformed),
        ("not json", E::Malformed),
        ("[]", E::Malformed),
        (r#"{"token":"a","last":true}"#, E::Malformed),
        (r#"{"type":5}"#, E::Malformed),
        (r#"{"type":null}"#, E::Malformed),
        (
            r#"{"type":"media","media":{"payload":"AAAA"}}"#,
            E::TypeNotOutbound,
        ),
        (
            r#"{"type":"prompt","voicePrompt":"hi"}"#,
            E::TypeNotOutbound,
        ),
        (r#"{"type":"setup"}"#, E::TypeNotOutbound),
        (r#"{"type":"Text","token":"a"}"#, E::TypeNotOutbound),
        (r#"{"type":"text","token":"a","extra":1}"#, E::Malformed),
        (r#"{"type":"text","token":"a","token":"b"}"#, E::Malformed),
        (r#"{"type":"text","type":"text","token":"a"}"#, E::Malformed),
        (r#"{"type":"text","token":"a","last":"true"}"#, E::Malformed),
        (
            r#"{"type":"text","token":"a","interruptible":1}"#,
            E::Malformed,
        ),
        (
            r#"{"type":"play","source":"https://h/a","loop":-1}"#,
            E::Malformed,
        ),
        (
            r#"{"type":"play","source":"https://h/a","loop":4294967296}"#,
            E::Malformed,
        ),
        (r#"{"type":"play"}"#, E::Malformed),
        (r#"{"type":"play","source":"http://h/a"}"#, E::SourceInvalid),
        (r#"{"type":"sendDigits"}"#, E::Malformed),
        (r#"{"type":"sendDigits","digits":"12x"}"#, E::DigitsInvalid),
        (r#"{"type":"language","ttsLanguage":5}"#, E::Malformed),
        (r#"{"type":"end","handoffData":{"a":1}}"#, E::Malformed),
        (r#"{"event":"media"}"#, E::Malformed),
    ];
    for (json, want) in cases {
        assert_eq!(RelayOutbound::parse(json), Err(want), "{json}");
    }
}

#[test]
fn every_error_code_is_its_display_and_unique() {
    let all = [
        E::TokenEmpty,
        E::SourceInvalid,
        E::DigitsInvalid,
        E::LanguageMissing,
        E::LanguageInvalid,
        E::TooLarge,
        E::TypeNotOutbound,
        E::Malformed,
    ];
    let mut seen = std::collections::HashSet::new();
    for e in all {
        assert_eq!(e.to_string(), e.code());
        assert!(seen.insert(e.code()), "{}", e.code());
    }
}

proptest! {
    #[test]
    fn parse_never_panics_and_what_it_accepts_is_written_back_as_accepted(text in "\\PC{0,200}") {
        if let Ok(message) = RelayOutbound::parse(&text) {
            let json = message.to_json();
            prop_assert!(json.len() <= MAX_OUTBOUND_BYTES);
            prop_assert_eq!(RelayOutbound::parse(&json), Ok(message));
        }
    }

    #[test]
    fn any_nonempty_token_makes_a_text_that_round_trips(token in "\\PC{1,100}", last: bool) {
        let message = RelayOutbound::text(token.clone(), last).expect("text");
        let v: serde_json::Value = serde_json::from_str(&message.to_json()).expect("json");
        prop_assert_eq!(&v["token"], &serde_json::Value::String(token));
        prop_assert_eq!(&v["last"], &serde_json::Value::Bool(last));
        prop_assert_eq!(RelayOutbound::parse(&message.to_json()), Ok(message));
    }

    #[test]
    fn digits_of_the_alphabet_are_accepted(digits in "[0-9w#*]{1,64}") {
        prop_assert!(RelayOutbound::send_digits(digits).is_ok());
    }
}
