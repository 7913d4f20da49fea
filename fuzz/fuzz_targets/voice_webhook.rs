//! The voice webhook's form parsing and signature decision. Input: line 1 is the
//! `X-Twilio-Signature` header (`-` for none), optionally followed by `|` and an
//! `X-Twilio-Webhooks-Signature-Settings` header, line 2 the URL Twilio posted to, the rest the form
//! body. Never a panic; an accepted request carries a well-formed CallSid of a configured account.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stream_gate_domain::signature::webhook_urls;
use stream_gate_domain::webhook_decision::{precheck_webhook, verify_webhook, WebhookForm};
use stream_gate_domain::Presented;
use stream_gate_fuzz::{credentials, split_lines};

fuzz_target!(|data: &[u8]| {
    let parts = split_lines(data, 3);
    let [signature, url, body] = parts.as_slice() else {
        return;
    };
    let (signature, settings) = match signature.split_once('|') {
        Some((signature, settings)) => (signature, Presented::One(settings)),
        None => (signature.as_str(), Presented::Absent),
    };
    let signature = (signature != "-").then_some(signature);
    let Ok(form) = WebhookForm::parse(body.as_bytes()) else {
        return;
    };
    let Ok(claim) = precheck_webhook(&form, signature, settings) else {
        return;
    };
    let urls = webhook_urls(url);
    if let Ok(call) = verify_webhook(credentials(), &form, &claim, &urls) {
        assert!(credentials().account_sids().any(|a| a == claim.account()));
        assert_eq!(form.field("CallSid"), Some(call.as_str()));
    }
});
