//! `stream-gate new-credentials`: the flags mapped to `stream_gate_devtools::new_credentials`,
//! which writes a deployment's credentials document into a new owner-only file; nothing secret is
//! printed.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use stream_gate_devtools::new_credentials::{self, Request};

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

fn fail(message: &str) -> ExitCode {
    eprintln!("stream-gate new-credentials: {message}");
    ExitCode::from(2)
}

/// Runs `stream-gate new-credentials`: exit 0 when the file is written, 2 otherwise (nothing is
/// written then).
pub fn main(args: NewCredentialsArgs) -> ExitCode {
    let sids = match new_credentials::create(&Request {
        out: &args.out,
        force: args.force,
        account_sids: &args.account_sids,
        auth_tokens: &args.auth_tokens,
    }) {
        Ok(sids) => sids,
        Err(e) => return fail(&e),
    };
    // Only what is not secret: the path, the account SIDs, how many keys.
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
