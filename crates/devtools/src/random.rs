//! The tools' one source of random identifiers (connection ids, request ids, SIDs, temp names).

use rand::distr::{Alphanumeric, SampleString};
use rand::RngCore;

/// A random alphanumeric id of `len` characters.
pub fn alphanumeric(len: usize) -> String {
    Alphanumeric.sample_string(&mut rand::rng(), len)
}

/// 32 random lowercase hex digits (the body of a Twilio SID).
pub fn hex32() -> String {
    let mut b = [0u8; 16];
    rand::rng().fill_bytes(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}
