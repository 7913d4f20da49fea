//! `sign`, `check-signature`, `mint-call-token`: the flags, mapped to
//! `stream_gate_devtools::signing_tools`, and the answer printed. Secrets are read from a file or
//! standard input, never from argv.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use stream_gate_devtools::signing_tools::{self, CheckAgainst, CheckResult};

/// Options of `stream-gate sign`.
#[derive(Args, Debug)]
pub struct SignArgs {
    /// The exact URL Twilio requests (for the WebSocket handshake: the wss URL in the TwiML).
    #[arg(long)]
    pub url: String,
    /// A form parameter `name=value` (repeatable; voice webhooks).
    #[arg(long = "param")]
    pub params: Vec<String>,
    /// File holding the auth token, or `-` for standard input.
    #[arg(long)]
    pub auth_token_file: PathBuf,
}

/// Options of `stream-gate check-signature`.
#[derive(Args, Debug)]
pub struct CheckSignatureArgs {
    /// The URL as configured.
    #[arg(long)]
    pub url: String,
    /// The X-Twilio-Signature value to check.
    #[arg(long)]
    pub signature: String,
    /// A form parameter `name=value` (repeatable). With parameters the URL is checked as the
    /// voice webhook checks it (also with the default port); without, as the `$connect`
    /// authorizer checks a handshake (as given, with/without a trailing `/`).
    #[arg(long = "param")]
    pub params: Vec<String>,
    /// File holding one auth token, or `-` for standard input.
    #[arg(
        long,
        conflicts_with = "credentials",
        required_unless_present = "credentials"
    )]
    pub auth_token_file: Option<PathBuf>,
    /// A credentials document: every account and auth token is tried.
    #[arg(long)]
    pub credentials: Option<PathBuf>,
}

/// Options of `stream-gate mint-call-token`.
#[derive(Args, Debug)]
pub struct MintCallTokenArgs {
    /// Credentials document (uses the first callTokenKeys entry).
    #[arg(long)]
    pub credentials: PathBuf,
    /// The call's account SID.
    #[arg(long)]
    pub account_sid: String,
    /// The call SID.
    #[arg(long)]
    pub call_sid: String,
    /// Lifetime in seconds.
    #[arg(long, default_value_t = stream_gate_domain::call_token::DEFAULT_TTL_SECS)]
    pub ttl_secs: u64,
}

fn fail(message: &str, code: u8) -> ExitCode {
    eprintln!("stream-gate: {message}");
    ExitCode::from(code)
}

/// `stream-gate sign`: prints the signature.
pub fn sign(args: SignArgs) -> ExitCode {
    match (
        signing_tools::read_secret(&args.auth_token_file),
        signing_tools::parse_params(&args.params),
    ) {
        (Ok(token), Ok(params)) => {
            println!("{}", signing_tools::sign(&token, &args.url, &params));
            ExitCode::SUCCESS
        }
        (Err(e), _) | (_, Err(e)) => fail(&e, 2),
    }
}

/// `stream-gate check-signature`: prints the URL variant (and credential) that matched, or the
/// variants tried (exit 1).
pub fn check_signature(args: CheckSignatureArgs) -> ExitCode {
    let params = match signing_tools::parse_params(&args.params) {
        Ok(p) => p,
        Err(e) => return fail(&e, 2),
    };
    let against = match (&args.auth_token_file, &args.credentials) {
        (Some(path), _) => CheckAgainst::AuthToken(path),
        (None, Some(path)) => CheckAgainst::Credentials(path),
        (None, None) => return fail("give --auth-token-file or --credentials", 2),
    };
    match signing_tools::check_signature(against, &args.url, &params, &args.signature) {
        Ok(CheckResult::Match { url, credential }) => {
            println!("match: the signature is over {url}");
            if let Some(c) = credential {
                println!("credential: {c}");
            }
            ExitCode::SUCCESS
        }
        Ok(CheckResult::NoMatch(tried)) => {
            println!("no match; URL variants tried:");
            for u in tried {
                println!("  {u}");
            }
            println!("check that the URL is exactly the one in the TwiML (scheme, host, stage, trailing /) and the auth token is the account's primary");
            ExitCode::from(1)
        }
        Err(e) => fail(&e, 2),
    }
}

/// `stream-gate mint-call-token`: prints the token.
pub fn mint_call_token(args: MintCallTokenArgs) -> ExitCode {
    let now = stream_gate_lambda::clock::unix_now();
    match signing_tools::mint(
        &args.credentials,
        &args.account_sid,
        &args.call_sid,
        args.ttl_secs,
        now,
    ) {
        Ok(t) => {
            println!("{}", t.expose());
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e, 2),
    }
}
