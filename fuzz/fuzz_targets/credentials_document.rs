//! Any bytes as the credentials document: a document or a typed refusal, never a panic. A refusal
//! names a field, and neither a refusal nor a parsed document's `Debug` carries a secret of it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use stream_gate_domain::Credentials;

/// The secret strings of a document: auth tokens, shared-key secrets, stream tokens and call-token
/// keys.
fn secrets(doc: &Value) -> Vec<String> {
    let strings = |v: Option<&Value>| -> Vec<String> {
        match v {
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(|i| {
                    i.as_str()
                        .or_else(|| i.get("token").and_then(Value::as_str))
                })
                .map(str::to_owned)
                .collect(),
            _ => Vec::new(),
        }
    };
    let mut out = strings(doc.get("streamTokens"));
    out.extend(strings(doc.get("callTokenKeys")));
    if let Some(Value::Array(accounts)) = doc.get("twilioAccounts") {
        for a in accounts {
            out.extend(strings(a.get("authTokens")));
            if let Some(Value::Array(keys)) = a.get("sharedKeys") {
                let secret = |k: &Value| k.get("secret").and_then(Value::as_str).map(str::to_owned);
                out.extend(keys.iter().filter_map(secret));
            }
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let shown = match Credentials::from_json(text) {
        Ok(creds) => format!("{creds:?}"),
        Err(e) => {
            assert!(!e.field.is_empty());
            e.to_string()
        }
    };
    let Ok(doc) = serde_json::from_str::<Value>(text) else {
        return;
    };
    // Account SIDs are public and shown; a "secret" that is part of one is shown by coincidence
    // (the fuzzer found `authTokens: ["efdeadbeef..."]` beside `ACdeadbeef...`).
    let sids: Vec<&str> = match doc.get("twilioAccounts") {
        Some(Value::Array(accounts)) => accounts
            .iter()
            .filter_map(|a| a.get("accountSid").and_then(Value::as_str))
            .collect(),
        _ => Vec::new(),
    };
    for secret in secrets(&doc) {
        // Short strings can occur in any text by chance (a field name, a count); real secrets
        // are at least 32 characters.
        if secret.len() >= 16 && !sids.iter().any(|s| s.contains(secret.as_str())) {
            assert!(!shown.contains(&secret), "a secret reached the output");
        }
    }
});
