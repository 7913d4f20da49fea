//! The voice webhook's form parsing and signature decision. Input: line 1 is the
//! `X-Twilio-Signature` header (`-` for none), line 2 the URL Twilio posted to, the rest the form
//! body. Never a panic; an accepted request carries a well-formed CallSid of a configured account.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stream_gate_domain::signature::candidate_urls;
use stream_gate_domain::webhook::{precheck_webhook, verify_webhook, WebhookForm};
use stream_gate_fuzz::{credentials, split_lines};

fuzz_target!(|data: &[u8]| {
    let parts = split_lines(data, 3);
    let [signature, url, body] = parts.as_slice() else {
        return;
    };
    let signature = (signature != "-").then_some(signature.as_str());
    let Ok(form) = WebhookForm::parse(body.as_bytes()) else {
        return;
    };
    let Ok(account) = precheck_webhook(&form, signature) else {
        return;
    };
    let urls = candidate_urls(url);
    let header = signature.unwrap_or_default();
    if let Ok(call) = verify_webhook(credentials(), &form, &account, header, &urls) {
        assert!(credentials().account_sids().any(|a| a == account));
        assert_eq!(form.field("CallSid"), Some(call.as_str()));
    }
});
