//! The whole `$connect` decision over arbitrary handshakes of either protocol. Input: line 1 is the
//! signed wss URL; each further line `h:` is one `X-Twilio-Signature`, `s:` one settings header,
//! `q:` one `token`, `c:` one `callSid`, `t:` one `callToken` (none = absent; two lines = repeated,
//! except that a header sent twice with the same value is one value, as the authorizer reads it); a
//! line `o` says the query holds another parameter.
//!
//! Whatever the input: no panic; nothing is admitted without credentials; a stack that does not list
//! a protocol admits none of its handshakes; an admitted ConversationRelay handshake names the
//! `callSid` it presented and a configured account, whatever the auth mode; and its token no longer
//! admits it a day later.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stream_gate_domain::{
    decide_handshake, Admitted, AuthMode, Handshake, Presented, Protocol, Protocols,
};
use stream_gate_fuzz::{credentials, split_lines, NOW};

/// A header as the authorizer reads it: the same value twice is one value.
fn header<'a>(values: &[&'a str]) -> Presented<'a> {
    match values {
        [] => Presented::Absent,
        [one] => Presented::One(one),
        [first, rest @ ..] if rest.iter().all(|r| r == first) => Presented::One(first),
        _ => Presented::Repeated,
    }
}

/// A query parameter as the authorizer reads it: any second value, even the same, is a repeat.
fn query<'a>(values: &[&'a str]) -> Presented<'a> {
    match values {
        [] => Presented::Absent,
        [one] => Presented::One(one),
        _ => Presented::Repeated,
    }
}

const MODES: [AuthMode; 4] = [
    AuthMode::Signature,
    AuthMode::Token,
    AuthMode::Either,
    AuthMode::Both,
];

fuzz_target!(|data: &[u8]| {
    let lines = split_lines(data, 64);
    let Some((url, rest)) = lines.split_first() else {
        return;
    };
    let values = |prefix: &str| -> Vec<&str> {
        rest.iter().filter_map(|l| l.strip_prefix(prefix)).collect()
    };
    let (signatures, settings, tokens) = (values("h:"), values("s:"), values("q:"));
    let (call_sids, call_tokens) = (values("c:"), values("t:"));
    let h = Handshake {
        signature: header(&signatures),
        signature_settings: header(&settings),
        stream_token: query(&tokens),
        call_sid: query(&call_sids),
        call_token: query(&call_tokens),
        other_params: rest.iter().any(|l| l == "o"),
        signed_url: url,
    };
    for mode in MODES {
        for protocols in [
            Protocols::BOTH,
            Protocols::only(Protocol::MediaStreams),
            Protocols::only(Protocol::ConversationRelay),
        ] {
            assert!(decide_handshake(&h, None, mode, protocols, NOW).is_err());
            if let Ok(admitted) = decide_handshake(&h, Some(credentials()), mode, protocols, NOW) {
                assert!(
                    protocols.admits(admitted.protocol()),
                    "admitted a protocol not listed"
                );
            }
        }
    }
    let relay = |mode| decide_handshake(&h, Some(credentials()), mode, Protocols::BOTH, NOW);
    if let Ok(Admitted::ConversationRelay(proof)) = relay(AuthMode::Signature) {
        assert_eq!(call_sids, [proof.call_sid().as_str()]);
        assert!(credentials()
            .account_sids()
            .any(|a| a == proof.account_sid()));
        for mode in MODES {
            assert_eq!(relay(mode), Ok(Admitted::ConversationRelay(proof)));
        }
        let later = proof.token_expires_at() + 86_400;
        let replay = decide_handshake(
            &h,
            Some(credentials()),
            AuthMode::Signature,
            Protocols::BOTH,
            later,
        );
        assert!(replay.is_err(), "a token admitted past its expiry");
    }
});
