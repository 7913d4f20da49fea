//! The `$connect` decision over arbitrary handshakes. Input: line 1 is the signed wss URL; each
//! further line `h:<value>` is one `X-Twilio-Signature` header, `q:<value>` one `token` query
//! parameter, `s:<value>` one `X-Twilio-Webhooks-Signature-Settings` header (none = absent, two
//! different = repeated). Every mode decides without a panic, and the
//! modes agree with each other: what `both` admits, `signature` and `token` admit; what `either`
//! admits, one of them admits.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stream_gate_domain::{decide_connect, AuthMode, ConnectRequest, Presented};
use stream_gate_fuzz::{credentials, split_lines};

fn presented<'a>(values: &[&'a str]) -> Presented<'a> {
    match values {
        [] => Presented::Absent,
        [one] => Presented::One(one),
        [first, rest @ ..] if rest.iter().all(|r| r == first) => Presented::One(first),
        _ => Presented::Repeated,
    }
}

fuzz_target!(|data: &[u8]| {
    let lines = split_lines(data, 64);
    let Some((url, rest)) = lines.split_first() else {
        return;
    };
    let signatures: Vec<&str> = rest.iter().filter_map(|l| l.strip_prefix("h:")).collect();
    let tokens: Vec<&str> = rest.iter().filter_map(|l| l.strip_prefix("q:")).collect();
    let settings: Vec<&str> = rest.iter().filter_map(|l| l.strip_prefix("s:")).collect();
    let req = ConnectRequest {
        signature: presented(&signatures),
        stream_token: presented(&tokens),
        signature_settings: presented(&settings),
        signed_url: url,
    };
    let decide = |mode| decide_connect(&req, Some(credentials()), mode).map(|v| v.account_sid());
    let (sig, tok, either, both) = (
        decide(AuthMode::Signature),
        decide(AuthMode::Token),
        decide(AuthMode::Either),
        decide(AuthMode::Both),
    );
    if let Ok(account) = both {
        assert_eq!(sig, Ok(account));
        assert_eq!(tok, Ok(account));
    }
    if let Ok(account) = either {
        assert!(sig == Ok(account) || tok == Ok(account));
    }
    for mode in [
        AuthMode::Signature,
        AuthMode::Token,
        AuthMode::Either,
        AuthMode::Both,
    ] {
        assert!(
            decide_connect(&req, None, mode).is_err(),
            "admitted without credentials"
        );
    }
});
