//! Shared set-up of the fuzz targets: the test credentials document (the same one `events/` is
//! signed with) and the line-oriented input formats that `seeds.py` derives from `events/`.

use std::sync::OnceLock;

use stream_gate_domain::{AccountSid, Credentials};

/// A fixed "now" before the call tokens of `events/` expire (they expire in 2100).
pub const NOW: u64 = 1_795_881_600;

/// The account `events/` is signed for.
pub const EXPECTED_ACCOUNT: &str = "ACdeadbeefdeadbeefdeadbeefdeadbeef";

/// `events/credentials.test.json`, parsed once.
pub fn credentials() -> &'static Credentials {
    static CREDS: OnceLock<Credentials> = OnceLock::new();
    CREDS.get_or_init(|| {
        Credentials::from_json(include_str!("../../events/credentials.test.json"))
            .expect("events/credentials.test.json is a valid document")
    })
}

/// The expected account of a connection, as the authorizer context would carry it.
pub fn expected_account() -> AccountSid {
    AccountSid::parse(EXPECTED_ACCOUNT).expect("a valid SID")
}

/// Splits an input into its first `n - 1` lines and the rest (lossy UTF-8: the targets take text).
pub fn split_lines(data: &[u8], n: usize) -> Vec<String> {
    String::from_utf8_lossy(data)
        .splitn(n, '\n')
        .map(str::to_owned)
        .collect()
}
