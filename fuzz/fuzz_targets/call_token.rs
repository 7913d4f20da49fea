//! Call-token verification over arbitrary tokens, SIDs and clocks. Input: line 1 the token, line 2
//! the account SID, line 3 the call SID, line 4 "now" in decimal. Never a panic; a token verifies
//! only for an unexpired expiry, and a freshly minted token verifies for its own call.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stream_gate_domain::{mint_call_token, verify_call_token, AccountSid, CallSid};
use stream_gate_fuzz::{credentials, split_lines};

fuzz_target!(|data: &[u8]| {
    let parts = split_lines(data, 4);
    let [token, account, call, now] = parts.as_slice() else {
        return;
    };
    let (Ok(account), Ok(call)) = (AccountSid::parse(account), CallSid::parse(call)) else {
        return;
    };
    let now: u64 = now.trim().parse().unwrap_or(0);
    if let Ok(verified) = verify_call_token(credentials(), token, &account, &call, now) {
        // 30 s of clock skew are allowed.
        assert!(verified.expires_at.saturating_add(30) >= now);
    }
    if let Some(minted) = mint_call_token(credentials(), &account, &call, now, 300) {
        assert!(verify_call_token(credentials(), minted.expose(), &account, &call, now).is_ok());
    }
});
