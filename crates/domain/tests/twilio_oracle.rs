//! Shared-key signatures checked against Twilio's own helper library (twilio-python 9.13.0, pinned
//! in `tools/requirements.txt`), through `tools/twilio_oracle.py`.
//!
//! The oracle computes every signature Twilio would send; the domain must then admit exactly the
//! requests it should, on both surfaces (the `$connect` handshake and the voice webhook), and refuse
//! the others with the exact reason code.
//!
//! The interpreter is `$STREAM_GATE_PYTHON`, else `.venv/bin/python` at the workspace root (what
//! `scripts/setup` installs). Without it, or without the `twilio` package, this test fails: it
//! never skips silently. Assertion messages name cases and reason codes, never a secret or a
//! signature.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::{json, Value};
use stream_gate_domain::signature::webhook_urls;
use stream_gate_domain::webhook_decision::{precheck_webhook, verify_webhook, WebhookForm};
use stream_gate_domain::{
    decide_connect, handshake_urls, AuthMode, ConnectRequest, Credentials, Presented,
    SignatureSettings,
};

const AC1: &str = "AC0123456789abcdef0123456789abcdef";
const AC2: &str = "ACfedcba9876543210fedcba9876543210";
const CALL: &str = "CA00112233445566778899aabbccddeeff";
const HANDSHAKE_URL: &str = "wss://abc.execute-api.us-east-1.amazonaws.com/prod/stream";
const WEBHOOK_URL: &str = "https://hooks.example.com/voice?tenant=a";

const AUTH_TOKEN: &str = "auth-token-of-account-one-0123456789";
/// Rotation: two keys of one account, told apart by id.
const OLD: (&str, &str) = ("webhooks_sharedkey_old0001", "old-shared-secret-value-0001");
const NEW: (&str, &str) = ("webhooks_sharedkey_new0002", "new-shared-secret-value-0002");
/// A secret that is valid base64: Twilio uses its text, not its decoded bytes.
const B64: (&str, &str) = ("webhooks_sharedkey_b64", "c2VjcmV0IGtleSBieXRlcw==");
/// A secret beyond ASCII: its UTF-8 bytes are the key.
const UTF8: (&str, &str) = ("webhooks_sharedkey_utf8", "sëcrët-ключ-秘密");
/// The key of another account.
const TWO: (&str, &str) = ("webhooks_sharedkey_two", "second-account-shared-secret");

const SHA1: &str = "HMAC_SHA1";
const SHA256: &str = "HMAC_SHA256";

fn credentials() -> Credentials {
    let key = |(id, secret): (&str, &str)| json!({"id": id, "secret": secret});
    let document = json!({
        "twilioAccounts": [
            {"accountSid": AC1, "authTokens": [AUTH_TOKEN],
             "sharedKeys": [key(OLD), key(NEW), key(B64), key(UTF8)]},
            {"accountSid": AC2, "authTokens": ["auth-token-of-account-two"],
             "sharedKeys": [key(TWO)]},
        ]
    });
    match Credentials::from_json(&document.to_string()) {
        Ok(c) => c,
        Err(e) => panic!("test credentials refused: {e}"),
    }
}

/// The form Twilio posts for `account`, in the order posted (a repeated name and characters that
/// need escaping included).
fn form_params(account: &str) -> Vec<(String, String)> {
    [
        ("AccountSid", account),
        ("CallSid", CALL),
        ("From", "+15550100"),
        ("To", "+15550199"),
        ("CallStatus", "ringing"),
        ("CallerName", "Zoë & Co / 100%"),
        ("SipHeader", "b"),
        ("SipHeader", "a"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

#[derive(Clone, Copy)]
enum Surface {
    /// The `$connect` authorizer: the URL alone is signed.
    Handshake,
    /// The voice webhook: URL and form, posted for this account.
    Webhook { account: &'static str },
}

/// One request Twilio (or an attacker) might send, and what the gate must answer.
struct Case {
    name: &'static str,
    surface: Surface,
    /// The secret the oracle signs with, and the algorithm it is told to use.
    secret: &'static str,
    algorithm: Option<&'static str>,
    /// The URL variant that was signed.
    signed_url: String,
    /// `X-Twilio-Webhooks-Signature-Settings` as presented (None = absent).
    settings: Option<String>,
    /// `Ok(credential or "call")` or `Err(reason code)`.
    expect: Result<&'static str, &'static str>,
}

fn settings(key: (&str, &str), algorithm: &str) -> Option<String> {
    Some(format!("key={},algorithm={algorithm}", key.0))
}

fn cases() -> Vec<Case> {
    let hs = |name, key: (&'static str, &'static str), alg, header, expect| Case {
        name,
        surface: Surface::Handshake,
        secret: key.1,
        algorithm: Some(alg),
        signed_url: HANDSHAKE_URL.to_owned(),
        settings: header,
        expect,
    };
    let wh = |name, key: (&'static str, &'static str), alg, header, expect| Case {
        name,
        surface: Surface::Webhook { account: AC1 },
        secret: key.1,
        algorithm: Some(alg),
        signed_url: WEBHOOK_URL.to_owned(),
        settings: header,
        expect,
    };
    let mut cases = vec![
        // Admitted: each key of a rotation, each algorithm, on both surfaces.
        hs(
            "handshake sha256 new key",
            NEW,
            SHA256,
            settings(NEW, SHA256),
            Ok("twilioAccounts[0].sharedKeys[1]"),
        ),
        hs(
            "handshake sha1 new key",
            NEW,
            SHA1,
            settings(NEW, SHA1),
            Ok("twilioAccounts[0].sharedKeys[1]"),
        ),
        hs(
            "handshake sha256 old key",
            OLD,
            SHA256,
            settings(OLD, SHA256),
            Ok("twilioAccounts[0].sharedKeys[0]"),
        ),
        hs(
            "handshake sha1 old key",
            OLD,
            SHA1,
            settings(OLD, SHA1),
            Ok("twilioAccounts[0].sharedKeys[0]"),
        ),
        hs(
            "handshake base64-looking secret",
            B64,
            SHA256,
            settings(B64, SHA256),
            Ok("twilioAccounts[0].sharedKeys[2]"),
        ),
        hs(
            "handshake utf-8 secret",
            UTF8,
            SHA256,
            settings(UTF8, SHA256),
            Ok("twilioAccounts[0].sharedKeys[3]"),
        ),
        hs(
            "handshake second account",
            TWO,
            SHA1,
            settings(TWO, SHA1),
            Ok("twilioAccounts[1].sharedKeys[0]"),
        ),
        hs(
            "handshake settings reordered with spaces",
            NEW,
            SHA256,
            Some(format!("algorithm={SHA256} , key={}", NEW.0)),
            Ok("twilioAccounts[0].sharedKeys[1]"),
        ),
        wh(
            "webhook sha256 new key",
            NEW,
            SHA256,
            settings(NEW, SHA256),
            Ok("call"),
        ),
        wh(
            "webhook sha1 new key",
            NEW,
            SHA1,
            settings(NEW, SHA1),
            Ok("call"),
        ),
        wh(
            "webhook sha256 old key",
            OLD,
            SHA256,
            settings(OLD, SHA256),
            Ok("call"),
        ),
        wh(
            "webhook sha1 old key",
            OLD,
            SHA1,
            settings(OLD, SHA1),
            Ok("call"),
        ),
        wh(
            "webhook utf-8 secret",
            UTF8,
            SHA1,
            settings(UTF8, SHA1),
            Ok("call"),
        ),
        // Refused with the exact reason.
        hs(
            "handshake unknown key id",
            NEW,
            SHA256,
            Some(format!("key=webhooks_sharedkey_gone,algorithm={SHA256}")),
            Err("shared_key_unknown"),
        ),
        wh(
            "webhook unknown key id",
            NEW,
            SHA256,
            Some(format!("key=webhooks_sharedkey_gone,algorithm={SHA256}")),
            Err("shared_key_unknown"),
        ),
        hs(
            "handshake rotation: other id named",
            NEW,
            SHA256,
            settings(OLD, SHA256),
            Err("signature_mismatch"),
        ),
        wh(
            "webhook rotation: other id named",
            OLD,
            SHA1,
            settings(NEW, SHA1),
            Err("webhook_signature_mismatch"),
        ),
        hs(
            "handshake algorithm missing",
            NEW,
            SHA256,
            Some(format!("key={}", NEW.0)),
            Err("shared_key_algorithm_missing"),
        ),
        wh(
            "webhook algorithm missing",
            NEW,
            SHA1,
            Some(format!("key={}", NEW.0)),
            Err("shared_key_algorithm_missing"),
        ),
        hs(
            "handshake algorithm unsupported",
            NEW,
            SHA256,
            settings(NEW, "HMAC_SHA512"),
            Err("shared_key_algorithm_unsupported"),
        ),
        wh(
            "webhook algorithm unsupported",
            NEW,
            SHA256,
            settings(NEW, "HMAC_SHA512"),
            Err("shared_key_algorithm_unsupported"),
        ),
        hs(
            "handshake sha1 presented as sha256",
            NEW,
            SHA1,
            settings(NEW, SHA256),
            Err("signature_mismatch"),
        ),
        hs(
            "handshake sha256 presented as sha1",
            NEW,
            SHA256,
            settings(NEW, SHA1),
            Err("signature_mismatch"),
        ),
        wh(
            "webhook sha1 presented as sha256",
            NEW,
            SHA1,
            settings(NEW, SHA256),
            Err("webhook_signature_mismatch"),
        ),
        wh(
            "webhook sha256 presented as sha1",
            NEW,
            SHA256,
            settings(NEW, SHA1),
            Err("webhook_signature_mismatch"),
        ),
        hs(
            "handshake malformed settings",
            NEW,
            SHA256,
            Some(format!("key={};algorithm={SHA256}", NEW.0)),
            Err("shared_key_settings_malformed"),
        ),
        wh(
            "webhook malformed settings",
            NEW,
            SHA256,
            Some(format!("key={},algorithm={SHA256},extra=1", NEW.0)),
            Err("shared_key_settings_malformed"),
        ),
        // Signed with the auth token (Twilio's default) but presented with a shared-key header.
        hs(
            "handshake auth-token signature with settings",
            ("-", AUTH_TOKEN),
            SHA1,
            settings(NEW, SHA1),
            Err("signature_mismatch"),
        ),
        wh(
            "webhook auth-token signature with settings",
            ("-", AUTH_TOKEN),
            SHA1,
            settings(OLD, SHA1),
            Err("webhook_signature_mismatch"),
        ),
        // A shared key's signature without the header is judged (and refused) under the auth tokens.
        hs(
            "handshake shared-key sha1 without settings",
            NEW,
            SHA1,
            None,
            Err("signature_mismatch"),
        ),
        wh(
            "webhook shared-key sha1 without settings",
            NEW,
            SHA1,
            None,
            Err("webhook_signature_mismatch"),
        ),
        // Without the header, the auth token verifies exactly as before.
        hs(
            "handshake auth token, no settings",
            ("-", AUTH_TOKEN),
            SHA1,
            None,
            Ok("twilioAccounts[0].authTokens[0]"),
        ),
        wh(
            "webhook auth token, no settings",
            ("-", AUTH_TOKEN),
            SHA1,
            None,
            Ok("call"),
        ),
    ];
    // URL variants: the trailing slash on both surfaces; the default port on the webhook only.
    cases.push(Case {
        signed_url: format!("{HANDSHAKE_URL}/"),
        ..hs(
            "handshake trailing slash",
            NEW,
            SHA256,
            settings(NEW, SHA256),
            Ok("twilioAccounts[0].sharedKeys[1]"),
        )
    });
    cases.push(Case {
        signed_url: "wss://abc.execute-api.us-east-1.amazonaws.com:443/prod/stream".to_owned(),
        ..hs(
            "handshake default port is not a handshake URL",
            NEW,
            SHA256,
            settings(NEW, SHA256),
            Err("signature_mismatch"),
        )
    });
    cases.push(Case {
        signed_url: "https://hooks.example.com:443/voice?tenant=a".to_owned(),
        ..wh(
            "webhook default port",
            NEW,
            SHA256,
            settings(NEW, SHA256),
            Ok("call"),
        )
    });
    // The key of another account: fine for that account's calls, not for the posted one's.
    cases.push(Case {
        surface: Surface::Webhook { account: AC2 },
        ..wh(
            "webhook second account",
            TWO,
            SHA256,
            settings(TWO, SHA256),
            Ok("call"),
        )
    });
    cases.push(wh(
        "webhook key of another account than AccountSid",
        TWO,
        SHA256,
        settings(TWO, SHA256),
        Err("webhook_signature_mismatch"),
    ));
    cases
}

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn python() -> PathBuf {
    let (python, origin) = match std::env::var_os("STREAM_GATE_PYTHON") {
        Some(p) if !p.is_empty() => (PathBuf::from(p), "STREAM_GATE_PYTHON"),
        _ => (
            workspace_root().join(".venv/bin/python"),
            ".venv/bin/python",
        ),
    };
    assert!(
        python.is_file(),
        "no Python interpreter at {} ({origin}): run scripts/setup to install the pinned tools \
         (tools/requirements.txt, twilio==9.13.0) into .venv, or point STREAM_GATE_PYTHON at a \
         Python that has them",
        python.display()
    );
    python
}

/// Runs the oracle over `requests`; one result object per request.
fn oracle(requests: &[Value]) -> Vec<Value> {
    let python = python();
    let script = workspace_root().join("tools/twilio_oracle.py");
    let mut child = match Command::new(&python)
        .arg(&script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(e) => panic!(
            "cannot run {} ({}): run scripts/setup",
            python.display(),
            e.kind()
        ),
    };
    let input = Value::from(requests.to_vec()).to_string();
    if let Some(mut stdin) = child.stdin.take() {
        if let Err(e) = stdin.write_all(input.as_bytes()) {
            panic!("cannot write to the oracle: {}", e.kind());
        }
    }
    let output = match child.wait_with_output() {
        Ok(output) => output,
        Err(e) => panic!("the oracle did not finish: {}", e.kind()),
    };
    // The oracle never echoes its input, so its standard error is safe to show.
    let stderr = String::from_utf8_lossy(&output.stderr);
    match output.status.code() {
        Some(0) => {}
        Some(3) => panic!(
            "the twilio package is missing from {}: run scripts/setup (tools/requirements.txt pins \
             twilio==9.13.0). {stderr}",
            python.display()
        ),
        other => panic!("the oracle failed (exit {other:?}): {stderr}"),
    }
    let results: Vec<Value> = match serde_json::from_slice(&output.stdout) {
        Ok(results) => results,
        Err(_) => panic!("the oracle's output is not a JSON list"),
    };
    assert_eq!(
        results.len(),
        requests.len(),
        "one oracle result per request"
    );
    results
}

fn oracle_request(case: &Case) -> Value {
    let params = match case.surface {
        Surface::Handshake => Vec::new(),
        Surface::Webhook { account } => form_params(account),
    };
    let mut request = json!({
        "secret": case.secret,
        "url": case.signed_url,
        "params": params,
        "algorithm": case.algorithm,
    });
    if let Some(settings) = &case.settings {
        request["settings"] = Value::from(settings.as_str());
    }
    request
}

/// What the gate answers: the credential (handshake) or "call" (webhook), or the reason code.
fn decide(case: &Case, creds: &Credentials, signature: &str) -> Result<String, &'static str> {
    let settings = match &case.settings {
        Some(s) => Presented::One(s.as_str()),
        None => Presented::Absent,
    };
    match case.surface {
        Surface::Handshake => {
            let request = ConnectRequest {
                signature: Presented::One(signature),
                stream_token: Presented::Absent,
                signature_settings: settings,
                signed_url: HANDSHAKE_URL,
            };
            decide_connect(&request, Some(creds), AuthMode::Signature)
                .map(|v| {
                    assert_eq!(v.method().as_str(), "twilio-signature", "{}", case.name);
                    v.credential().to_string()
                })
                .map_err(|r| r.code())
        }
        Surface::Webhook { account } => {
            let body: String = form_urlencoded::Serializer::new(String::new())
                .extend_pairs(form_params(account))
                .finish();
            let form = WebhookForm::parse(body.as_bytes()).map_err(|r| r.code())?;
            let claim = precheck_webhook(&form, Some(signature), settings).map_err(|r| r.code())?;
            let call = verify_webhook(creds, &form, &claim, &webhook_urls(WEBHOOK_URL))
                .map_err(|r| r.code())?;
            assert_eq!(call.as_str(), CALL, "{}", case.name);
            Ok("call".to_owned())
        }
    }
}

#[test]
fn shared_key_signatures_agree_with_twilio_python() {
    let creds = credentials();
    let cases = cases();
    let requests: Vec<Value> = cases.iter().map(oracle_request).collect();
    let results = oracle(&requests);

    let mut wrong = Vec::new();
    for (case, result) in cases.iter().zip(&results) {
        let Some(signature) = result.get("signature").and_then(Value::as_str) else {
            wrong.push(format!("{}: the oracle produced no signature", case.name));
            continue;
        };
        let got = decide(case, &creds, signature);
        let got = got.as_ref().map(String::as_str).map_err(|code| *code);
        if got != case.expect {
            // Credentials are positions and codes are public: safe to show. Never the signature.
            wrong.push(format!(
                "{}: expected {:?}, got {got:?}",
                case.name, case.expect
            ));
        }
        // Where the gate accepts the settings header, it reads the algorithm the library reads.
        if let Some(header) = &case.settings {
            let theirs = result.get("settingsAlgorithm").and_then(Value::as_str);
            match SignatureSettings::parse(header) {
                Ok(ours) if theirs != Some(ours.algorithm().as_str()) => wrong.push(format!(
                    "{}: settings algorithm differs from twilio-python",
                    case.name
                )),
                // A header without `algorithm=`: twilio-python assumes HMAC_SHA1, the gate refuses
                // (shared_key_algorithm_missing) rather than guess. Pinned so a change is noticed.
                Err(_)
                    if case.expect == Err("shared_key_algorithm_missing")
                        && theirs != Some(SHA1) =>
                {
                    wrong.push(format!(
                        "{}: twilio-python no longer defaults to HMAC_SHA1",
                        case.name
                    ))
                }
                _ => {}
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} case(s) wrong:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

#[test]
fn the_oracle_agrees_with_the_published_vectors_and_refuses_what_the_gate_refuses() {
    let vector = |secret: &str, url: &str, params: Value, algorithm: Option<&str>| json!({"secret": secret, "url": url, "params": params, "algorithm": algorithm});
    let requests = [
        // docs/twilio.md's agreement vector.
        vector("s3cr3t", HANDSHAKE_URL, json!([]), Some(SHA256)),
        vector("s3cr3t", HANDSHAKE_URL, json!([]), Some(SHA1)),
        // docs/twilio.md's auth-token vectors (HMAC_SHA1 is the default).
        vector(
            "12345",
            "https://mycompany.com/myapp.php?foo=1&bar=2",
            json!([
                ["CallSid", "CA1234567890ABCDE"],
                ["Caller", "+14158675309"],
                ["Digits", "1234"],
                ["From", "+14158675309"],
                ["To", "+18005551212"]
            ]),
            None,
        ),
        vector(
            "12345",
            "wss://abc123.execute-api.us-east-1.amazonaws.com/prod",
            json!([]),
            None,
        ),
        // An algorithm the library does not know either.
        vector("s3cr3t", HANDSHAKE_URL, json!([]), Some("HMAC_SHA512")),
    ];
    let results = oracle(&requests);
    let signature = |i: usize| results[i].get("signature").and_then(Value::as_str);
    let ours = |secret, alg, url, params: &[(&str, &str)]| {
        stream_gate_domain::compute_shared_key_signature(secret, alg, url, params)
    };
    use stream_gate_domain::SignatureAlgorithm::{HmacSha1, HmacSha256};
    assert!(
        signature(0) == Some("XUOkZEJIS4o+uohL8WS/7WNm2OwG+J0rVVhBlRuNTjs=")
            && signature(0) == Some(ours("s3cr3t", HmacSha256, HANDSHAKE_URL, &[]).as_str()),
        "SHA256 agreement vector"
    );
    assert!(
        signature(1) == Some("yzOlNy041mSvdX2FsF/ELr7roBQ=")
            && signature(1) == Some(ours("s3cr3t", HmacSha1, HANDSHAKE_URL, &[]).as_str()),
        "SHA1 agreement vector"
    );
    assert!(
        signature(2) == Some("RSOYDt4T1cUTdK1PDd93/VVr8B8="),
        "auth-token form vector"
    );
    assert!(
        signature(3) == Some("dYX5bz/sDh2O2Tg6KtHAZLFqkbU="),
        "auth-token handshake vector"
    );
    assert_eq!(
        results[4].get("error").and_then(Value::as_str),
        Some("unsupported"),
        "twilio-python signs with HMAC_SHA512"
    );
    // The two URL sets the gate uses are what the cases above rely on.
    assert_eq!(handshake_urls(HANDSHAKE_URL).len(), 2);
    assert_eq!(webhook_urls(WEBHOOK_URL).len(), 2);
}
