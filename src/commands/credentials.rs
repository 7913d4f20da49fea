//! `stream-gate new-credentials`: the credentials document a deployment's secret holds, written
//! fresh — the Twilio accounts given, a new call-token key from the operating system's CSPRNG —
//! into a new owner-only file. Auth tokens come from a file or standard input, never from argv;
//! nothing secret is printed; the document is checked with the gate's own parser before it is
//! written, so what lands in the file is a document the gate accepts.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use serde_json::json;

use stream_gate_devtools::local::devcreds;
use stream_gate_domain::{AccountSid, Credentials, Secret};

/// Options of `stream-gate new-credentials`.
#[derive(Args, Debug)]
pub struct NewCredentialsArgs {
    /// The file to create (mode 0600). An existing file is refused unless `--force` is given.
    #[arg(long)]
    pub out: PathBuf,
    /// Replace an existing file (the new one is written beside it and renamed over it, 0600).
    #[arg(long)]
    pub force: bool,
    /// A Twilio account SID (repeatable, in order). With it, the input holds one auth token per
    /// line, the same number and order; without it, each input line is `ACCOUNT_SID AUTH_TOKEN`.
    #[arg(long = "account-sid")]
    pub account_sids: Vec<String>,
    /// Where the auth tokens are read: a file, or `-` (the default) for standard input.
    #[arg(long, default_value = "-")]
    pub auth_tokens: PathBuf,
}

/// One account of the new document: its SID and its auth token.
struct Account {
    sid: AccountSid,
    auth_token: Secret,
}

fn fail(message: &str) -> ExitCode {
    eprintln!("stream-gate new-credentials: {message}");
    ExitCode::from(2)
}

/// Runs `stream-gate new-credentials`: exit 0 when the file is written, 2 otherwise (nothing is
/// written then).
pub fn main(args: NewCredentialsArgs) -> ExitCode {
    let result = stream_gate_devtools::signing_tools::read_secret(&args.auth_tokens)
        .and_then(|input| accounts(&args.account_sids, &input))
        .and_then(|accounts| build(&accounts))
        .and_then(|document| write(&args.out, &document, args.force).map(|()| document));
    let document = match result {
        Ok(d) => d,
        Err(e) => return fail(&e),
    };
    // Only what is not secret: the path, the account SIDs, how many keys.
    let sids: Vec<String> = match Credentials::from_json(document.expose()) {
        Ok(c) => c.account_sids().map(|s| s.as_str().to_owned()).collect(),
        Err(e) => return fail(&e.to_string()),
    };
    println!(
        "wrote {} (mode 0600): {} account(s) {}, one new call-token key, no stream tokens",
        args.out.display(),
        sids.len(),
        sids.join(", ")
    );
    println!(
        "next: aws secretsmanager put-secret-value --secret-id \"$SECRET_ARN\" --secret-string file://{}",
        args.out.display()
    );
    ExitCode::SUCCESS
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
        stream_gate_devtools::random::alphanumeric(12)
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
