//! `stream-gate sign`, `check-signature`, `mint-call-token`: the tools users reach for when Twilio
//! says "signature mismatch". Secrets are read from a file or standard input, never from argv.

use std::io::Read;
use std::path::Path;

use stream_gate_domain::signature::{
    compute_signature, handshake_urls, verify_signature, webhook_urls,
};
use stream_gate_domain::{mint_call_token, AccountSid, CallSid, Credentials, Secret};

/// Reads a secret from `path`, or from standard input when `path` is `-`; one trailing newline
/// is dropped.
pub fn read_secret(path: &Path) -> Result<Secret, String> {
    let mut text = String::new();
    if path == Path::new("-") {
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| format!("cannot read standard input: {}", e.kind()))?;
    } else {
        text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {}", path.display(), e.kind()))?;
    }
    let trimmed = text
        .strip_suffix('\n')
        .map(|t| t.strip_suffix('\r').unwrap_or(t))
        .unwrap_or(&text);
    Ok(Secret::new(trimmed.to_owned()))
}

/// Parses `name=value` form parameters.
pub fn parse_params(params: &[String]) -> Result<Vec<(String, String)>, String> {
    params
        .iter()
        .map(|p| {
            p.split_once('=')
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .ok_or(format!("--param {p:?} is not name=value"))
        })
        .collect()
}

/// `stream-gate sign`: the signature of `url` + `params` under `auth_token`.
pub fn sign(auth_token: &Secret, url: &str, params: &[(String, String)]) -> String {
    let p: Vec<(&str, &str)> = params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    compute_signature(auth_token.expose(), url, &p)
}

/// Which URL variant (and configured credential) matched, or the variants tried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckResult {
    /// A variant matched.
    Match {
        /// The URL that was signed.
        url: String,
        /// `twilioAccounts[i].authTokens[j]` when checked against a credentials document.
        credential: Option<String>,
    },
    /// Nothing matched; these URLs were tried.
    NoMatch(Vec<String>),
}

/// The URLs a signature is checked over: exactly the set the gate itself tries, so that a match
/// here is never a request the gate would refuse. Without form parameters (a WebSocket handshake)
/// the authorizer's set: as given, with/without a trailing `/`. With parameters (a voice webhook)
/// the webhook's set, which adds the scheme's default port.
pub fn checked_urls(url: &str, params: &[(String, String)]) -> Vec<String> {
    if params.is_empty() {
        handshake_urls(url)
    } else {
        webhook_urls(url)
    }
}

/// `stream-gate check-signature` against one auth token.
pub fn check_with_token(
    auth_token: &Secret,
    url: &str,
    params: &[(String, String)],
    signature: &str,
) -> CheckResult {
    // Reuse the domain's constant-time verifier with a one-account document built in memory.
    let doc = serde_json::json!({"twilioAccounts": [{"accountSid": "AC00000000000000000000000000000000", "authTokens": [auth_token.expose()]}]});
    match Credentials::from_json(&doc.to_string()) {
        Ok(creds) => check_with_credentials(&creds, url, params, signature, false),
        Err(_) => CheckResult::NoMatch(checked_urls(url, params)),
    }
}

/// `stream-gate check-signature` against every account of a credentials document.
pub fn check_with_credentials(
    creds: &Credentials,
    url: &str,
    params: &[(String, String)],
    signature: &str,
    name_credential: bool,
) -> CheckResult {
    let urls = checked_urls(url, params);
    let p: Vec<(&str, &str)> = params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    match verify_signature(creds, None, signature, &urls, &p) {
        Ok(m) => CheckResult::Match {
            url: urls[m.url_index].clone(),
            credential: name_credential.then(|| {
                format!(
                    "twilioAccounts[{}].authTokens[{}] ({})",
                    m.account_index, m.token_index, m.account_sid
                )
            }),
        },
        Err(_) => CheckResult::NoMatch(urls),
    }
}

/// What `check-signature` checks against: one auth token or a credentials document, each a file
/// (or `-` for standard input).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckAgainst<'a> {
    /// A file holding one auth token.
    AuthToken(&'a Path),
    /// A credentials document: every account and auth token is tried, and the match is named.
    Credentials(&'a Path),
}

/// `stream-gate check-signature`: reads what to check against, then checks `signature` over the
/// URLs [`checked_urls`] gives. The error is the message to print (exit 2).
pub fn check_signature(
    against: CheckAgainst<'_>,
    url: &str,
    params: &[(String, String)],
    signature: &str,
) -> Result<CheckResult, String> {
    match against {
        CheckAgainst::AuthToken(path) => Ok(check_with_token(
            &read_secret(path)?,
            url,
            params,
            signature,
        )),
        CheckAgainst::Credentials(path) => {
            let doc = read_secret(path)?;
            let creds = Credentials::from_json(doc.expose()).map_err(|e| e.to_string())?;
            Ok(check_with_credentials(&creds, url, params, signature, true))
        }
    }
}

/// `stream-gate mint-call-token`.
pub fn mint(
    creds_path: &Path,
    account: &str,
    call: &str,
    ttl_secs: u64,
    now: u64,
) -> Result<Secret, String> {
    let account = AccountSid::parse(account).map_err(|e| format!("--account-sid: {e}"))?;
    let call = CallSid::parse(call).map_err(|e| format!("--call-sid: {e}"))?;
    let doc = read_secret(creds_path)?;
    let creds = Credentials::from_json(doc.expose()).map_err(|e| e.to_string())?;
    mint_call_token(&creds, &account, &call, now, ttl_secs)
        .ok_or_else(|| "the credentials document has no callTokenKeys".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_reports_the_variant() {
        let t = Secret::new("12345".into());
        let r = check_with_token(
            &t,
            "wss://abc123.execute-api.us-east-1.amazonaws.com/prod/",
            &[],
            "dYX5bz/sDh2O2Tg6KtHAZLFqkbU=",
        );
        assert_eq!(
            r,
            CheckResult::Match {
                url: "wss://abc123.execute-api.us-east-1.amazonaws.com/prod".into(),
                credential: None
            }
        );
        assert!(
            matches!(check_with_token(&t, "wss://other/prod", &[], "dYX5bz/sDh2O2Tg6KtHAZLFqkbU="), CheckResult::NoMatch(v) if v.len() == 2)
        );
    }

    #[test]
    fn a_handshake_is_checked_over_the_authorizers_urls_only() {
        let t = Secret::new("12345".into());
        // Signed over the URL with the default port: the authorizer (handshake_urls) refuses it, so
        // check-signature must not report a match.
        let with_port = "wss://abc123.execute-api.us-east-1.amazonaws.com:443/prod";
        let sig = compute_signature("12345", with_port, &[]);
        let url = "wss://abc123.execute-api.us-east-1.amazonaws.com/prod";
        assert_eq!(
            check_with_token(&t, url, &[], &sig),
            CheckResult::NoMatch(handshake_urls(url))
        );
        let creds = Credentials::from_json(
            r#"{"twilioAccounts":[{"accountSid":"AC00000000000000000000000000000000","authTokens":["12345"]}]}"#,
        )
        .expect("valid");
        let decided = stream_gate_domain::decide_connect(
            &stream_gate_domain::ConnectRequest {
                signature: stream_gate_domain::Presented::One(&sig),
                stream_token: stream_gate_domain::Presented::Absent,
                signature_settings: stream_gate_domain::Presented::Absent,
                signed_url: url,
            },
            Some(&creds),
            stream_gate_domain::AuthMode::Signature,
        );
        assert_eq!(
            decided.err(),
            Some(stream_gate_domain::DenyReason::SignatureMismatch),
            "the authorizer agrees"
        );
    }

    #[test]
    fn a_webhook_is_checked_over_the_webhooks_urls() {
        let t = Secret::new("12345".into());
        let params = vec![("CallSid".to_owned(), "CA1234567890ABCDE".to_owned())];
        let with_port = "https://mycompany.com:443/voice";
        let p: Vec<(&str, &str)> = vec![("CallSid", "CA1234567890ABCDE")];
        let sig = compute_signature("12345", with_port, &p);
        assert_eq!(
            check_with_token(&t, "https://mycompany.com/voice", &params, &sig),
            CheckResult::Match {
                url: with_port.into(),
                credential: None
            }
        );
        assert_eq!(
            checked_urls("https://mycompany.com/voice", &params),
            webhook_urls("https://mycompany.com/voice")
        );
    }

    #[test]
    fn check_signature_reads_what_it_checks_against_and_names_the_credential() {
        let dir = std::env::temp_dir().join(format!(
            "stream-gate-check-{}-{}",
            std::process::id(),
            crate::random::alphanumeric(8)
        ));
        std::fs::create_dir_all(&dir).expect("dir");
        let (token, doc) = (dir.join("token"), dir.join("credentials.json"));
        let written = std::fs::write(&token, "12345\n").and_then(|()| {
            std::fs::write(
                &doc,
                r#"{"twilioAccounts":[{"accountSid":"AC00000000000000000000000000000000","authTokens":["x","12345"]}]}"#,
            )
        });
        let url = "wss://abc123.execute-api.us-east-1.amazonaws.com/prod";
        let sig = compute_signature("12345", url, &[]);
        let by_token = check_signature(CheckAgainst::AuthToken(&token), url, &[], &sig);
        let by_doc = check_signature(CheckAgainst::Credentials(&doc), url, &[], &sig);
        let missing = check_signature(CheckAgainst::Credentials(&dir.join("none")), url, &[], &sig);
        let _ = std::fs::remove_dir_all(&dir);
        written.expect("write");
        assert_eq!(
            by_token,
            Ok(CheckResult::Match {
                url: url.into(),
                credential: None
            })
        );
        assert_eq!(
            by_doc,
            Ok(CheckResult::Match {
                url: url.into(),
                credential: Some(
                    "twilioAccounts[0].authTokens[1] (AC00000000000000000000000000000000)".into()
                )
            })
        );
        assert!(missing.is_err_and(|e| e.starts_with("cannot read ")));
    }
}
