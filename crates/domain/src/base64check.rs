//! Validates standard, padded, canonical base64 without decoding it: the media hot path only needs
//! to know that a payload is well formed and how large it is, not its bytes.

const INVALID: u8 = 0xff;

const TABLE: [u8; 256] = {
    let mut t = [INVALID; 256];
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut i = 0;
    while i < 64 {
        t[alphabet[i] as usize] = i as u8;
        i += 1;
    }
    t
};

/// The decoded length of `s` if it is non-empty canonical base64 (standard alphabet, `=` padding,
/// zero unused bits, as `base64::engine::general_purpose::STANDARD` demands), else `None`.
pub fn decoded_len(s: &[u8]) -> Option<usize> {
    if s.is_empty() || !s.len().is_multiple_of(4) {
        return None;
    }
    let pad = match s {
        [.., b'=', b'='] => 2,
        [.., b'='] => 1,
        _ => 0,
    };
    let data = &s[..s.len() - pad];
    // OR all table values: any INVALID entry sets the high bit.
    let mut acc = 0u8;
    for &b in data {
        acc |= TABLE[b as usize];
    }
    if acc & 0x80 != 0 {
        return None;
    }
    // The last data character of a padded group carries bits that must be zero.
    let last = TABLE[data[data.len() - 1] as usize];
    let unused_mask = match pad {
        1 => 0b11,
        2 => 0b1111,
        _ => 0,
    };
    if last & unused_mask != 0 {
        return None;
    }
    Some(s.len() / 4 * 3 - pad)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine as _;
    use proptest::prelude::*;

    #[test]
    fn examples() {
        assert_eq!(decoded_len(b"AAAA"), Some(3));
        assert_eq!(decoded_len(b"AAA="), Some(2));
        assert_eq!(decoded_len(b"AA=="), Some(1));
        assert_eq!(decoded_len(b"AB=="), None); // non-zero unused bits
        assert_eq!(decoded_len(b"AAE="), Some(2));
        assert_eq!(decoded_len(b"AAB="), None); // one `=`: two unused bits, not zero
        assert_eq!(decoded_len(b"AAAAAAC="), None);
        assert_eq!(decoded_len(b"AAAAAQ=="), Some(4));
        assert_eq!(decoded_len(b"A==="), None);
        assert_eq!(decoded_len(b"===="), None);
        assert_eq!(decoded_len(b""), None);
        assert_eq!(decoded_len(b"AAA"), None);
        assert_eq!(decoded_len(b"AA-_"), None); // base64url alphabet is not Twilio's
        assert_eq!(decoded_len(b"AA=A"), None);
    }

    proptest! {
        #[test]
        fn agrees_with_the_base64_crate_on_any_input(s in proptest::collection::vec(any::<u8>(), 0..40)) {
            let ours = decoded_len(&s);
            let theirs = STANDARD.decode(&s).ok().filter(|d| !d.is_empty()).map(|d| d.len());
            prop_assert_eq!(ours, theirs);
        }

        #[test]
        fn accepts_every_encoding(bytes in proptest::collection::vec(any::<u8>(), 1..400)) {
            prop_assert_eq!(decoded_len(STANDARD.encode(&bytes).as_bytes()), Some(bytes.len()));
        }

        #[test]
        fn agrees_on_near_base64(s in "[A-Za-z0-9+/=]{0,24}") {
            let ours = decoded_len(s.as_bytes());
            let theirs = STANDARD.decode(&s).ok().filter(|d| !d.is_empty()).map(|d| d.len());
            prop_assert_eq!(ours, theirs);
        }
    }
}
