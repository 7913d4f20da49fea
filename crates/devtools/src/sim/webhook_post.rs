//! The voice webhook as Twilio calls it: a signed form POST for one call, and the TwiML read back
//! (the `<Stream url>` and the `token` `<Parameter>` of `…/voice`, the `<ConversationRelay url>` of
//! `…/relay`). Used by `verify` (the webhook row), by the `replay-webhook` attack and by the local
//! gateway's tests.

use std::time::Duration;

use crate::domain::{compute_signature, CallSid, Secret};
use crate::sim::Identity;

/// How long the voice webhook may take to answer.
pub const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(15);
/// Largest webhook answer read (TwiML is a few hundred bytes).
pub const WEBHOOK_MAX_BYTES: usize = 64 * 1024;

/// What the voice webhook answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookAnswer {
    /// HTTP status.
    pub status: u16,
    /// `<Stream url="...">` of the TwiML, if it has one.
    pub stream_url: Option<String>,
    /// `<Parameter name="token" value="...">` of the TwiML, if it has one.
    pub token: Option<Secret>,
    /// `<ConversationRelay url="...">` of the TwiML, if it has one: the socket's URL with the call's
    /// `callSid` and `callToken` in its query (so a secret, like `token`).
    pub relay_url: Option<Secret>,
}

/// The attribute list of every `<name ...>` element of `xml` (the text up to its `>`, quotes
/// respected).
fn elements<'a>(xml: &'a str, name: &str) -> Vec<&'a str> {
    let open = format!("<{name}");
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(i) = rest.find(&open) {
        let after = &rest[i + open.len()..];
        rest = after;
        if !after.starts_with(|c: char| c.is_whitespace() || c == '/' || c == '>') {
            continue; // `<StreamX`, not `<Stream`
        }
        let mut quote = None;
        let end = after.char_indices().find(|&(_, c)| match quote {
            Some(q) if c == q => {
                quote = None;
                false
            }
            Some(_) => false,
            None if c == '"' || c == '\'' => {
                quote = Some(c);
                false
            }
            None => c == '>',
        });
        match end {
            Some((j, _)) => {
                out.push(&after[..j]);
                rest = &after[j..];
            }
            None => break,
        }
    }
    out
}

/// The value of attribute `name` in an element's attribute text, unescaped.
fn attribute(attrs: &str, name: &str) -> Option<String> {
    let mut rest = attrs;
    loop {
        let eq = rest.find('=')?;
        let key = rest[..eq].trim_end();
        let key = key
            .rsplit(|c: char| c.is_whitespace())
            .next()
            .unwrap_or(key);
        let value = rest[eq + 1..].trim_start();
        let quote = value.chars().next().filter(|c| *c == '"' || *c == '\'')?;
        let body = &value[1..];
        let end = body.find(quote)?;
        if key == name {
            return Some(unescape(&body[..end]));
        }
        rest = &body[end + 1..];
    }
}

/// XML's five named entities and numeric character references.
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        let entity = tail.find(';').map(|j| (&tail[1..j], j));
        let decoded = entity.and_then(|(e, j)| {
            let c = match e {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                _ => e
                    .strip_prefix("#x")
                    .or_else(|| e.strip_prefix("#X"))
                    .and_then(|h| u32::from_str_radix(h, 16).ok())
                    .or_else(|| e.strip_prefix('#').and_then(|d| d.parse().ok()))
                    .and_then(char::from_u32),
            };
            c.map(|c| (c, j))
        });
        match decoded {
            Some((c, j)) => {
                out.push(c);
                rest = &tail[j + 1..];
            }
            None => {
                out.push('&');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The `<ConversationRelay url>` of a TwiML answer (`…/relay`'s).
pub fn parse_relay_twiml(body: &str) -> Option<Secret> {
    elements(body, "ConversationRelay")
        .first()
        .and_then(|a| attribute(a, "url"))
        .map(Secret::new)
}

/// The `<Stream url>` and the `token` `<Parameter>` of a TwiML answer.
pub fn parse_twiml(body: &str) -> (Option<String>, Option<Secret>) {
    let stream_url = elements(body, "Stream")
        .first()
        .and_then(|a| attribute(a, "url"));
    let token = elements(body, "Parameter")
        .into_iter()
        .find(|a| attribute(a, "name").as_deref() == Some("token"))
        .and_then(|a| attribute(a, "value"))
        .map(Secret::new);
    (stream_url, token)
}

/// Posts Twilio's voice webhook request for `call` of `me`, signed as Twilio signs it (the exact
/// URL plus the sorted form parameters), and reads the TwiML.
pub async fn call_webhook(
    url: &str,
    me: &Identity,
    call: &CallSid,
) -> Result<WebhookAnswer, String> {
    call_webhook_signed(url, url, me, call).await
}

/// [`call_webhook`], posted to `url` and signed over `signed_url` (the public URL Twilio posts to
/// when `url` is the local end of a tunnel). The same call gives the same request, byte for byte,
/// signature included: a second call is a replay.
pub async fn call_webhook_signed(
    url: &str,
    signed_url: &str,
    me: &Identity,
    call: &CallSid,
) -> Result<WebhookAnswer, String> {
    let params: Vec<(&str, &str)> = vec![
        ("AccountSid", me.account.as_str()),
        ("ApiVersion", "2010-04-01"),
        ("CallSid", call.as_str()),
        ("CallStatus", "ringing"),
        ("Called", "+15005550006"),
        ("Caller", "+15005550001"),
        ("Direction", "inbound"),
        ("From", "+15005550001"),
        ("To", "+15005550006"),
    ];
    let signature = compute_signature(me.auth_token.expose(), signed_url, &params);
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params.iter())
        .finish();
    let headers = [
        ("Content-Type", "application/x-www-form-urlencoded"),
        ("User-Agent", "TwilioProxy/1.1"),
        ("X-Twilio-Signature", signature.as_str()),
    ];
    let response =
        crate::http_client::post(url, &headers, &body, WEBHOOK_TIMEOUT, WEBHOOK_MAX_BYTES)
            .await
            .map_err(|e| format!("cannot reach the voice webhook: {e}"))?;
    let (status, bytes) = (response.status, response.body);
    let text = String::from_utf8_lossy(&bytes);
    let ((stream_url, token), relay_url) = if status == 200 {
        (parse_twiml(&text), parse_relay_twiml(&text))
    } else {
        ((None, None), None)
    };
    Ok(WebhookAnswer {
        status,
        stream_url,
        token,
        relay_url,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twiml_is_read_like_twilio_reads_it() {
        let twiml = stream_gate_domain::webhook_decision::twiml(
            "wss://gate.example.com/prod?x=1&y=2",
            &[("other", "a\"b"), ("token", "v1.1795000000.abc<&>")],
        );
        let (url, token) = parse_twiml(&twiml);
        assert_eq!(url.as_deref(), Some("wss://gate.example.com/prod?x=1&y=2"));
        assert_eq!(
            token.as_ref().map(Secret::expose),
            Some("v1.1795000000.abc<&>")
        );
        let (url, token) = parse_twiml(
            "<Response><Connect><Stream name='s' url='wss://h/p'>\
             <Parameter value='t&#x41;&#66;' name='token' /></Stream></Connect></Response>",
        );
        assert_eq!(url.as_deref(), Some("wss://h/p"));
        assert_eq!(token.as_ref().map(Secret::expose), Some("tAB"));
        assert_eq!(parse_twiml("<html>Forbidden</html>"), (None, None));
        assert_eq!(
            parse_twiml("<Response><Say>hi</Say></Response>"),
            (None, None)
        );
        assert!(parse_relay_twiml(&twiml).is_none());
    }

    #[test]
    fn the_relay_url_is_read_with_its_query_unescaped() {
        let call =
            stream_gate_domain::CallSid::parse("CA00112233445566778899aabbccddeeff").expect("call");
        let twiml = stream_gate_domain::relay_twiml::relay_twiml(
            "wss://gate.example.com/prod",
            &call,
            "v1.1795000000.abc",
            "https://gate.example.com/relay/ended",
            &Default::default(),
            &[("agent", "sales")],
        );
        assert_eq!(
            parse_relay_twiml(&twiml).as_ref().map(Secret::expose),
            Some(
                "wss://gate.example.com/prod?callSid=CA00112233445566778899aabbccddeeff\
                 &callToken=v1.1795000000.abc"
            )
        );
        assert_eq!(parse_twiml(&twiml), (None, None));
    }
}
