//! `stream-gate new-credentials`: the credentials document a deployment's secret holds, written
//! fresh — the Twilio accounts given, a new call-token key from the operating system's CSPRNG —
//! into a new owner-only file. Auth tokens come from a file or standard input, never from argv;
//! nothing secret is returned; the document is checked with the gate's own parser before it is
//! written, so what lands in the file is a document the gate accepts.

use std::path::Path;

use serde_json::json;

use crate::domain::{AccountSid, Credentials, Secret};
use crate::local::devcreds;
use crate::signing_tools::read_secret;

/// What `new-credentials` is asked to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request<'a> {
    /// The file to create (mode 0600).
    pub out: &'a Path,
    /// Replace an existing file (the new one is written beside it and renamed over it, 0600).
    pub force: bool,
    /// The account SIDs, in order: with them, the input holds one auth token per line; without,
    /// each input line is `ACCOUNT_SID AUTH_TOKEN`.
    pub account_sids: &'a [String],
    /// Where the auth tokens are read: a file, or `-` for standard input.
    pub auth_tokens: &'a Path,
}

/// Reads the auth tokens, builds the document, checks it and writes it. Returns the account SIDs
/// written (nothing secret); the error is the message to print (nothing is written then).
pub fn create(request: &Request<'_>) -> Result<Vec<String>, String> {
    let input = read_secret(request.auth_tokens)?;
    let document = build(&accounts(request.account_sids, &input)?)?;
    write(request.out, &document, request.force)?;
    let credentials = Credentials::from_json(document.expose()).map_err(|e| e.to_string())?;
    Ok(credentials
        .account_sids()
        .map(|s| s.as_str().to_owned())
        .collect())
}

/// One account of the new document: its SID and its auth token.
struct Account {
    sid: AccountSid,
    auth_token: Secret,
}

/// The accounts of the input: with `sids`, one auth token per non-blank line in their order;
/// without, one `ACCOUNT_SID AUTH_TOKEN` pair per non-blank line. Errors name a line number and
/// never quote a line (it may hold a token).
fn accounts(sids: &[String], input: &Secret) -> Result<Vec<Account>, String> {
    let lines: Vec<(usize, &str)> = input
        .expose()
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty())
        .collect();
    if lines.is_empty() {
        return Err("no auth token in the input".to_owned());
    }
    if !sids.is_empty() {
        if sids.len() != lines.len() {
            return Err(format!(
                "{} --account-sid given but {} auth token line(s) in the input",
                sids.len(),
                lines.len()
            ));
        }
        return sids
            .iter()
            .zip(&lines)
            .map(|(sid, (_, token))| account(sid, token, "--account-sid"))
            .collect();
    }
    lines
        .iter()
        .map(
            |(n, line)| match line.split_whitespace().collect::<Vec<_>>()[..] {
                [sid, token] => account(sid, token, &format!("input line {n}")),
                _ => Err(format!(
                    "input line {n}: expected `ACCOUNT_SID AUTH_TOKEN` (or pass --account-sid)"
                )),
            },
        )
        .collect()
}

fn account(sid: &str, token: &str, place: &str) -> Result<Account, String> {
    let sid = AccountSid::parse(sid).map_err(|e| format!("{place}: {e}"))?;
    Ok(Account {
        sid,
        auth_token: Secret::new(token.to_owned()),
    })
}

/// The document, checked by the gate's own parser (which names a field, never a value).
fn build(accounts: &[Account]) -> Result<Secret, String> {
    let key = devcreds::new_call_token_key()
        .map_err(|e| format!("the operating system's random generator failed: {e}"))?;
    let listed: Vec<_> = accounts
        .iter()
        .map(|a| json!({"accountSid": a.sid.as_str(), "authTokens": [a.auth_token.expose()]}))
        .collect();
    let doc = json!({
        "twilioAccounts": listed,
        "streamTokens": [],
        "callTokenKeys": [key.expose()],
    });
    let document = Secret::new(format!("{doc:#}\n"));
    Credentials::from_json(document.expose()).map_err(|e| e.to_string())?;
    Ok(document)
}

/// Creates `path` with mode 0600; with `force`, writes a sibling and renames it over `path`.
fn write(path: &Path, document: &Secret, force: bool) -> Result<(), String> {
    let shown = path.display();
    if !force {
        return devcreds::write_private(path, document).map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => {
                format!("{shown} exists; pass --force to replace it")
            }
            k => format!("cannot create {shown}: {k}"),
        });
    }
    let name = path
        .file_name()
        .ok_or_else(|| format!("{shown} is not a file name"))?;
    let tmp = path.with_file_name(format!(
        ".{}.{}.tmp",
        name.to_string_lossy(),
        crate::random::alphanumeric(12)
    ));
    let written = devcreds::write_private(&tmp, document)
        .and_then(|()| std::fs::File::open(&tmp)?.sync_all())
        .and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(format!("cannot write {shown}: {}", e.kind()));
    }
    Ok(())
}
