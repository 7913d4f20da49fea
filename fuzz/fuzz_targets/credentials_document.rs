//! Any bytes as the credentials document: a document or a typed refusal, never a panic.
//!
//! Neither output can carry a secret, proved by shape rather than by searching the output for each
//! secret (a search fails by coincidence: a 16-character shared-key secret may well be a piece of
//! `stream_tokens: 0` or of an error's field path). A refusal is a field path made of the schema's
//! field names and indices, plus a fixed rule; a parsed document's `Debug` is fixed words, counts
//! and the account SIDs (public identifiers). Nothing else of the input can appear in either.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stream_gate_domain::Credentials;

/// The schema's field names: the only names an error path may show.
const FIELD_NAMES: &[&str] = &[
    "twilioAccounts",
    "accountSid",
    "authTokens",
    "sharedKeys",
    "id",
    "secret",
    "streamTokens",
    "token",
    "callTokenKeys",
];

/// The words of `Credentials`' `Debug` output.
const DEBUG_WORDS: &[&str] = &[
    "Credentials",
    "accounts",
    "stream_tokens",
    "call_token_keys",
    "AccountSid",
];

/// `$`, or schema field names joined by `.`, any of them (or a leading `$`) followed by `[index]`s.
fn is_field_path(path: &str) -> bool {
    // Drop each `[digits]`; what is left must be `$` or names joined by dots.
    let mut names = String::new();
    let mut rest = path;
    while let Some(open) = rest.find('[') {
        names.push_str(&rest[..open]);
        let Some(close) = rest[open..].find(']') else {
            return false;
        };
        let index = &rest[open + 1..open + close];
        if index.is_empty() || !index.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
        rest = &rest[open + close + 1..];
    }
    names.push_str(rest);
    names == "$"
        || names
            .strip_prefix("$.")
            .unwrap_or(&names)
            .split('.')
            .all(|name| FIELD_NAMES.contains(&name))
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Credentials::from_json(text) {
        Ok(creds) => {
            let mut shown = format!("{creds:?}");
            for sid in creds.account_sids() {
                shown = shown.replace(sid.as_str(), " ");
            }
            for word in shown.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
                assert!(
                    word.is_empty()
                        || DEBUG_WORDS.contains(&word)
                        || word.bytes().all(|b| b.is_ascii_digit()),
                    "Debug shows more than fixed words, counts and account SIDs"
                );
            }
        }
        Err(e) => {
            assert!(
                is_field_path(&e.field),
                "a refusal's field is not a schema path"
            );
            // `problem` is a `&'static str`: by its type it cannot hold any of the input.
            assert_eq!(
                e.to_string(),
                format!("credentials document refused: {}: {}", e.field, e.problem)
            );
        }
    }
});
