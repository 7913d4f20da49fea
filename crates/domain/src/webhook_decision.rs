//! Twilio's voice webhook, as pure functions: the form body, the signature decision and the TwiML
//! answer. The entrypoint (`voice-webhook`) adds only HTTP and the credentials fetch.
//!
//! The decision is split in two so that an unsigned or malformed request is refused before any
//! credentials are fetched: [`precheck_webhook`] needs only the request, [`verify_webhook`] needs the
//! credentials document.

use std::fmt;

use crate::connect::Presented;
use crate::credentials::Credentials;
pub use crate::reason::WebhookRefusal;
use crate::sid::{AccountSid, CallSid};
use crate::signature::{
    verify_shared_key_signature, verify_signature, SettingsFailure, SignatureFailure,
    SignatureSettings,
};

/// Largest form body accepted; Twilio's voice webhook posts a few hundred bytes.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// A decoded `application/x-www-form-urlencoded` body, in the order posted (Twilio signs every
/// parameter, repeated names included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookForm {
    params: Vec<(String, String)>,
}

impl WebhookForm {
    /// Decodes a body of at most [`MAX_BODY_BYTES`]. Invalid percent-escapes and invalid UTF-8 are
    /// decoded lossily, as Twilio's own validators do; the signature then decides.
    pub fn parse(body: &[u8]) -> Result<Self, WebhookRefusal> {
        if body.len() > MAX_BODY_BYTES {
            return Err(WebhookRefusal::BodyTooLarge);
        }
        Ok(Self {
            params: form_urlencoded::parse(body).into_owned().collect(),
        })
    }

    /// The first value posted under `name`.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every parameter as borrowed pairs (what the signature covers).
    pub fn pairs(&self) -> Vec<(&str, &str)> {
        self.params
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }
}

/// What the request-only checks established: the posted account, the signature header and how
/// the request says it was signed (auth token, or the shared key of a settings header). Only
/// [`precheck_webhook`] builds one, and [`verify_webhook`] needs one.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct WebhookClaim<'a> {
    account: AccountSid,
    signature: &'a str,
    settings: Option<SignatureSettings<'a>>,
}

impl WebhookClaim<'_> {
    /// The posted `AccountSid` (well formed; not yet known to be configured).
    pub fn account(&self) -> AccountSid {
        self.account
    }

    /// The settings header, when the request says a shared key signed it.
    pub fn settings(&self) -> Option<SignatureSettings<'_>> {
        self.settings
    }
}

impl fmt::Debug for WebhookClaim<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The signature is replayable for this exact request: never shown.
        f.debug_struct("WebhookClaim")
            .field("account", &self.account)
            .field("signature", &"***")
            .field("settings", &self.settings)
            .finish()
    }
}

fn settings_refusal(f: SettingsFailure) -> WebhookRefusal {
    match f {
        SettingsFailure::Malformed => WebhookRefusal::SharedKeySettingsMalformed,
        SettingsFailure::AlgorithmMissing => WebhookRefusal::SharedKeyAlgorithmMissing,
        SettingsFailure::AlgorithmUnsupported => WebhookRefusal::SharedKeyAlgorithmUnsupported,
    }
}

/// The request-only checks: a signature header is present, the
/// `X-Twilio-Webhooks-Signature-Settings` header (if any) is sent once and well formed, and
/// `AccountSid` is well formed. Needs no credentials.
pub fn precheck_webhook<'a>(
    form: &WebhookForm,
    signature: Option<&'a str>,
    settings: Presented<'a>,
) -> Result<WebhookClaim<'a>, WebhookRefusal> {
    let signature = signature.ok_or(WebhookRefusal::SignatureMissing)?;
    let settings = match settings {
        Presented::Absent => None,
        Presented::Repeated => return Err(WebhookRefusal::SharedKeySettingsMalformed),
        Presented::One(header) => Some(SignatureSettings::parse(header).map_err(settings_refusal)?),
    };
    let account = form
        .field("AccountSid")
        .and_then(|a| AccountSid::parse(a).ok())
        .ok_or(WebhookRefusal::UnknownAccount)?;
    Ok(WebhookClaim {
        account,
        signature,
        settings,
    })
}

/// The decision: the claimed account is configured, and the signature is, with the form, over one
/// of `urls` (normally [`webhook_urls`](crate::signature::webhook_urls)):
/// - without a settings header, one of that account's auth tokens' signatures (as before);
/// - with one, the signature of the shared key it names, with the algorithm it names, and that key
///   belongs to the posted `AccountSid` (a key of another account is a mismatch).
///
/// Then `CallSid` is well formed. Returns the call to mint a token for.
pub fn verify_webhook(
    credentials: &Credentials,
    form: &WebhookForm,
    claim: &WebhookClaim<'_>,
    urls: &[String],
) -> Result<CallSid, WebhookRefusal> {
    let account = &claim.account;
    if !credentials.account_sids().any(|a| a == *account) {
        return Err(WebhookRefusal::UnknownAccount);
    }
    let pairs = form.pairs();
    match &claim.settings {
        None => {
            verify_signature(credentials, Some(account), claim.signature, urls, &pairs)
                .map_err(|_| WebhookRefusal::SignatureMismatch)?;
        }
        Some(settings) => {
            let m =
                verify_shared_key_signature(credentials, settings, claim.signature, urls, &pairs)
                    .map_err(|f| match f {
                    SignatureFailure::SharedKeyUnknown => WebhookRefusal::SharedKeyUnknown,
                    SignatureFailure::Malformed | SignatureFailure::Mismatch => {
                        WebhookRefusal::SignatureMismatch
                    }
                })?;
            if m.account_sid != *account {
                return Err(WebhookRefusal::SignatureMismatch);
            }
        }
    }
    // The call SID is checked after the signature: an unsigned request learns nothing from it.
    form.field("CallSid")
        .and_then(|c| CallSid::parse(c).ok())
        .ok_or(WebhookRefusal::CallSidInvalid)
}

/// Escapes a value for an XML attribute in double quotes; control characters XML 1.0 cannot carry
/// are dropped.
pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 && c != '\t' && c != '\n' && c != '\r' => {}
            c => out.push(c),
        }
    }
    out
}

/// The TwiML answer: connect the call to `stream_url` with `params` as `<Parameter>`s.
pub fn twiml(stream_url: &str, params: &[(&str, &str)]) -> String {
    let mut s = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Connect><Stream url=\"{}\">",
        xml_escape(stream_url)
    );
    push_parameters(&mut s, params);
    s.push_str("</Stream></Connect></Response>");
    s
}

/// Appends `params` as `<Parameter name="…" value="…"/>`s, XML-escaped (`<Stream>` and
/// `<ConversationRelay>` take the same element).
pub fn push_parameters(twiml: &mut String, params: &[(&str, &str)]) {
    for (name, value) in params {
        twiml.push_str(&format!(
            "<Parameter name=\"{}\" value=\"{}\"/>",
            xml_escape(name),
            xml_escape(value)
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signature::{
        compute_shared_key_signature, compute_signature, webhook_urls, SignatureAlgorithm,
    };
    use SignatureAlgorithm::{HmacSha1, HmacSha256};

    const ACCOUNT: &str = "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const OTHER: &str = "ACcccccccccccccccccccccccccccccccc";
    const CALL: &str = "CAbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
    const TOKEN: &str = "webhook-test-auth-token-0123456789";
    const URL: &str = "https://hooks.example.com/voice";
    const OLD_KEY: (&str, &str) = ("webhooks_sharedkey_old", "old-shared-secret-value");
    const NEW_KEY: (&str, &str) = ("webhooks_sharedkey_new", "new-shared-secret-value");
    const OTHER_KEY: (&str, &str) = ("webhooks_sharedkey_other", "other-shared-secret");

    fn credentials() -> Credentials {
        let doc = format!(
            r#"{{"twilioAccounts":[
                {{"accountSid":"{ACCOUNT}","authTokens":["{TOKEN}"],
                  "sharedKeys":[{{"id":"{}","secret":"{}"}},{{"id":"{}","secret":"{}"}}]}},
                {{"accountSid":"{OTHER}","authTokens":["other-token"],
                  "sharedKeys":[{{"id":"{}","secret":"{}"}}]}}]}}"#,
            OLD_KEY.0, OLD_KEY.1, NEW_KEY.0, NEW_KEY.1, OTHER_KEY.0, OTHER_KEY.1
        );
        Credentials::from_json(&doc).expect("test document is valid")
    }

    fn body(call: &str) -> String {
        format!("AccountSid={ACCOUNT}&CallSid={call}&From=%2B15550100")
    }

    fn decide(body: &str, signature: Option<&str>) -> Result<CallSid, WebhookRefusal> {
        decide_with(body, signature, Presented::Absent)
    }

    fn decide_with(
        body: &str,
        signature: Option<&str>,
        settings: Presented<'_>,
    ) -> Result<CallSid, WebhookRefusal> {
        let form = WebhookForm::parse(body.as_bytes())?;
        let claim = precheck_webhook(&form, signature, settings)?;
        verify_webhook(&credentials(), &form, &claim, &webhook_urls(URL))
    }

    fn sign_shared(key: (&str, &str), alg: SignatureAlgorithm, body: &str, url: &str) -> String {
        let form = WebhookForm::parse(body.as_bytes()).expect("small body");
        compute_shared_key_signature(key.1, alg, url, &form.pairs())
    }

    fn settings(key: (&str, &str), alg: SignatureAlgorithm) -> String {
        format!("key={},algorithm={}", key.0, alg.as_str())
    }

    #[test]
    fn shared_key_signatures_verify_by_key_id_and_algorithm() {
        let b = body(CALL);
        for (key, alg) in [
            (NEW_KEY, HmacSha256),
            (OLD_KEY, HmacSha1),
            (OLD_KEY, HmacSha256),
        ] {
            let header = settings(key, alg);
            for url in webhook_urls(URL) {
                let sig = sign_shared(key, alg, &b, &url);
                let call = decide_with(&b, Some(&sig), Presented::One(&header));
                assert_eq!(
                    call.map(|c| c.as_str().to_owned()).as_deref(),
                    Ok(CALL),
                    "{} {}",
                    key.0,
                    alg.as_str()
                );
            }
        }
    }

    #[test]
    fn shared_key_refusals() {
        use WebhookRefusal as R;
        let b = body(CALL);
        fn one(header: &str) -> Presented<'_> {
            Presented::One(header)
        }
        let sha256 = sign_shared(NEW_KEY, HmacSha256, &b, URL);
        let sha1 = sign_shared(NEW_KEY, HmacSha1, &b, URL);
        let by_token = sign(&b, URL);
        let decide = |sig: &str, header: &str| decide_with(&b, Some(sig), one(header));

        // The algorithm named must be the one used, both ways round.
        assert_eq!(
            decide(&sha1, &settings(NEW_KEY, HmacSha256)),
            Err(R::SignatureMismatch)
        );
        assert_eq!(
            decide(&sha256, &settings(NEW_KEY, HmacSha1)),
            Err(R::SignatureMismatch)
        );
        // The key named must be the one used (rotation: each id its own secret).
        assert_eq!(
            decide(&sha256, &settings(OLD_KEY, HmacSha256)),
            Err(R::SignatureMismatch)
        );
        // An auth-token signature with a settings header is judged under the shared key.
        assert_eq!(
            decide(&by_token, &settings(NEW_KEY, HmacSha1)),
            Err(R::SignatureMismatch)
        );
        // A shared-key signature without the header is judged under the auth tokens.
        assert_eq!(
            decide_with(&b, Some(&sha1), Presented::Absent),
            Err(R::SignatureMismatch)
        );
        assert_eq!(
            decide_with(&b, Some(&sha256), Presented::Absent),
            Err(R::SignatureMismatch)
        );
        // A valid signature by another account's key does not prove the posted account.
        let foreign = sign_shared(OTHER_KEY, HmacSha256, &b, URL);
        assert_eq!(
            decide(&foreign, &settings(OTHER_KEY, HmacSha256)),
            Err(R::SignatureMismatch)
        );
        let theirs = body(CALL).replace(ACCOUNT, OTHER);
        let sig = sign_shared(OTHER_KEY, HmacSha256, &theirs, URL);
        let header = settings(OTHER_KEY, HmacSha256);
        assert!(decide_with(&theirs, Some(&sig), one(&header)).is_ok());

        assert_eq!(
            decide(&sha256, "key=webhooks_sharedkey_gone,algorithm=HMAC_SHA256"),
            Err(R::SharedKeyUnknown)
        );
        assert_eq!(
            decide(&sha256, "key=webhooks_sharedkey_new"),
            Err(R::SharedKeyAlgorithmMissing)
        );
        assert_eq!(
            decide(&sha256, "key=webhooks_sharedkey_new,algorithm=HMAC_SHA512"),
            Err(R::SharedKeyAlgorithmUnsupported)
        );
        assert_eq!(
            decide(&sha256, "algorithm=HMAC_SHA256"),
            Err(R::SharedKeySettingsMalformed)
        );
        assert_eq!(
            decide(&sha256, "key=a,key=b,algorithm=HMAC_SHA256"),
            Err(R::SharedKeySettingsMalformed)
        );
        assert_eq!(
            decide_with(&b, Some(&sha256), Presented::Repeated),
            Err(R::SharedKeySettingsMalformed)
        );
        // Request-only refusals come before any credentials are needed; a missing signature first.
        let form = WebhookForm::parse(b.as_bytes()).expect("small body");
        assert_eq!(
            precheck_webhook(&form, None, one("nonsense")).err(),
            Some(R::SignatureMissing)
        );
        assert_eq!(
            precheck_webhook(&form, Some(&sha256), one("key=x,algorithm=MD5")).err(),
            Some(R::SharedKeyAlgorithmUnsupported)
        );
    }

    #[test]
    fn a_claim_never_shows_its_signature() {
        let b = body(CALL);
        let sig = sign_shared(NEW_KEY, HmacSha256, &b, URL);
        let header = settings(NEW_KEY, HmacSha256);
        let form = WebhookForm::parse(b.as_bytes()).expect("small body");
        let claim = precheck_webhook(&form, Some(&sig), Presented::One(&header)).expect("claim");
        assert_eq!(claim.account().as_str(), ACCOUNT);
        assert_eq!(claim.settings().map(|s| s.key_id()), Some(NEW_KEY.0));
        let shown = format!("{claim:?}");
        assert!(
            !shown.contains(&sig) && !shown.contains(NEW_KEY.1),
            "claim Debug leaks"
        );
        assert_eq!(
            shown,
            format!(
                "WebhookClaim {{ account: AccountSid({ACCOUNT}), signature: \"***\", settings: \
                 Some(SignatureSettings {{ key_id: \"{}\", algorithm: HmacSha256 }}) }}",
                NEW_KEY.0
            )
        );
    }

    fn sign(body: &str, url: &str) -> String {
        let form = WebhookForm::parse(body.as_bytes()).expect("small body");
        compute_signature(TOKEN, url, &form.pairs())
    }

    #[test]
    fn signed_webhook_yields_its_call() {
        let b = body(CALL);
        let call = decide(&b, Some(&sign(&b, URL))).map(|c| c.as_str().to_owned());
        assert_eq!(call.as_deref(), Ok(CALL));
        // Signed over the URL with a trailing slash or the default port: still a webhook URL.
        assert!(decide(&b, Some(&sign(&b, &format!("{URL}/")))).is_ok());
        let with_port = "https://hooks.example.com:443/voice";
        assert!(decide(&b, Some(&sign(&b, with_port))).is_ok());
    }

    #[test]
    fn refusals_in_order() {
        let b = body(CALL);
        let sig = sign(&b, URL);
        assert_eq!(decide(&b, None), Err(WebhookRefusal::SignatureMissing));
        assert_eq!(
            decide("CallSid=x", Some(&sig)),
            Err(WebhookRefusal::UnknownAccount)
        );
        let other = b.replace("ACaaaa", "ACcccc");
        assert_eq!(
            decide(&other, Some(&sign(&other, URL))),
            Err(WebhookRefusal::UnknownAccount)
        );
        let tampered = format!("{b}&Extra=1");
        assert_eq!(
            decide(&tampered, Some(&sig)),
            Err(WebhookRefusal::SignatureMismatch)
        );
        let bad_call = body("CAshort");
        assert_eq!(
            decide(&bad_call, Some(&sign(&bad_call, URL))),
            Err(WebhookRefusal::CallSidInvalid)
        );
        let huge = vec![b'a'; MAX_BODY_BYTES + 1];
        assert_eq!(WebhookForm::parse(&huge), Err(WebhookRefusal::BodyTooLarge));
    }

    #[test]
    fn a_body_of_exactly_64_kib_is_read() {
        let mut body = b"AccountSid=AC1&Pad=".to_vec();
        body.resize(64 * 1024, b'x');
        let form = WebhookForm::parse(&body).expect("64 KiB is the limit, not over it");
        assert_eq!(form.field("AccountSid"), Some("AC1"));
        assert_eq!(form.field("Pad").map(str::len), Some(64 * 1024 - 19));
        body.push(b'x');
        assert_eq!(WebhookForm::parse(&body), Err(WebhookRefusal::BodyTooLarge));
    }

    #[test]
    fn codes_are_distinct() {
        let mut codes: Vec<_> = WebhookRefusal::ALL.iter().map(|r| r.code()).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), WebhookRefusal::ALL.len());
        assert_eq!(
            WebhookRefusal::SharedKeyUnknown.to_string(),
            "shared_key_unknown"
        );
    }

    #[test]
    fn escapes_attribute_values() {
        assert_eq!(xml_escape(r#"a&b<c>"d'"#), "a&amp;b&lt;c&gt;&quot;d&apos;");
        let t = twiml("wss://x/y?a=1&b=2", &[("token", "v1.1\"<")]);
        assert!(t.contains("url=\"wss://x/y?a=1&amp;b=2\""));
        assert!(t.contains("value=\"v1.1&quot;&lt;\""));
    }

    #[test]
    fn drops_only_the_control_characters_xml_cannot_carry() {
        // Every C0 control but tab, line feed and carriage return is dropped; space and DEL stay.
        let all_c0: String = (0u8..0x20).map(char::from).collect();
        assert_eq!(xml_escape(&all_c0), "\t\n\r");
        assert_eq!(xml_escape("a\u{0}b\u{1f}c d\u{7f}e"), "abc d\u{7f}e");
        assert_eq!(xml_escape("\t\n\r"), "\t\n\r");
        assert_eq!(
            twiml("wss://x/y", &[("n\u{1}", "v\r\n")]),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Connect><Stream url=\"wss://x/y\">\
             <Parameter name=\"n\" value=\"v\r\n\"/></Stream></Connect></Response>"
        );
    }
}
