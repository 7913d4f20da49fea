//! Twilio SIDs as newtypes that can only hold well-formed values.
//!
//! A SID is a two-letter prefix followed by 32 hexadecimal digits (Twilio's OpenAPI patterns
//! `^AC[0-9a-fA-F]{32}$` and friends). The placeholders in Twilio's docs (`ACXXXX...`) are not hex
//! and are rejected on purpose. Parsing never allocates on failure and never panics.

use std::fmt;

/// Why a string is not a SID of the wanted kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SidError {
    /// Not 34 bytes long.
    #[error("a SID is 34 characters")]
    Length,
    /// The first two characters are not the kind's prefix.
    #[error("wrong SID prefix")]
    Prefix,
    /// One of the 32 characters after the prefix is not an ASCII hex digit.
    #[error("a SID ends in 32 hexadecimal digits")]
    NotHex,
}

const SID_LEN: usize = 34;

/// Checks `s` against `^{prefix}[0-9a-fA-F]{32}$` byte by byte (Unicode look-alikes fail the
/// length or hex test, since every accepted byte is ASCII).
fn check(s: &str, prefix: &[u8; 2]) -> Result<(), SidError> {
    let b = s.as_bytes();
    if b.len() != SID_LEN {
        return Err(SidError::Length);
    }
    if &b[..2] != prefix {
        return Err(SidError::Prefix);
    }
    if !b[2..].iter().all(u8::is_ascii_hexdigit) {
        return Err(SidError::NotHex);
    }
    Ok(())
}

macro_rules! sid_type {
    ($(#[$doc:meta])* $name:ident, $prefix:literal, $bprefix:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name([u8; SID_LEN]);

        impl $name {
            /// The two-letter prefix of this kind of SID.
            pub const PREFIX: &'static str = $prefix;

            /// Parses a SID, refusing anything but the prefix and 32 hex digits.
            pub fn parse(s: &str) -> Result<Self, SidError> {
                check(s, $bprefix)?;
                let mut bytes = [0u8; SID_LEN];
                bytes.copy_from_slice(s.as_bytes());
                Ok(Self(bytes))
            }

            /// The SID as text.
            pub fn as_str(&self) -> &str {
                // Only ASCII bytes are ever stored (checked in `parse`), so this cannot fail.
                std::str::from_utf8(&self.0).unwrap_or_default()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = SidError;
            fn from_str(s: &str) -> Result<Self, SidError> {
                Self::parse(s)
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
    };
}

sid_type!(
    /// An account SID: `AC` and 32 hex digits.
    AccountSid,
    "AC",
    b"AC"
);
sid_type!(
    /// A call SID: `CA` and 32 hex digits.
    CallSid,
    "CA",
    b"CA"
);
sid_type!(
    /// A ConversationRelay session SID: `VX` and 32 hex digits.
    SessionSid,
    "VX",
    b"VX"
);

sid_type!(
    /// A Media Streams stream SID: `MZ` and 32 hex digits.
    StreamSid,
    "MZ",
    b"MZ"
);

#[cfg(test)]
mod tests {
    use super::*;

    const AC: &str = "AC0123456789abcdef0123456789abcdef";

    #[test]
    fn accepts_well_formed_sids_of_each_kind() {
        assert_eq!(
            AccountSid::parse(AC).map(|s| s.to_string()),
            Ok(AC.to_string())
        );
        assert!(CallSid::parse("CAffeeddccbbaa99887766554433221100").is_ok());
        assert!(StreamSid::parse("MZ00112233445566778899AABBCCDDEEFF").is_ok());
    }

    #[test]
    fn rejects_with_the_exact_reason() {
        assert_eq!(AccountSid::parse(""), Err(SidError::Length));
        assert_eq!(AccountSid::parse(&AC[..33]), Err(SidError::Length));
        assert_eq!(AccountSid::parse(&format!("{AC}0")), Err(SidError::Length));
        assert_eq!(CallSid::parse(AC), Err(SidError::Prefix));
        assert_eq!(
            AccountSid::parse("ac0123456789abcdef0123456789abcdef"),
            Err(SidError::Prefix)
        );
        // Twilio's documentation placeholder is not a SID.
        assert_eq!(
            AccountSid::parse("ACXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX"),
            Err(SidError::NotHex)
        );
        assert_eq!(
            AccountSid::parse("AC0123456789abcdef0123456789abcdeg"),
            Err(SidError::NotHex)
        );
    }

    #[test]
    fn rejects_unicode_look_alikes() {
        // Cyrillic 'А' (U+0410) in place of Latin 'A': different bytes, wrong length.
        assert_eq!(
            AccountSid::parse("\u{0410}C0123456789abcdef0123456789abcdef"),
            Err(SidError::Length)
        );
        // Full-width digit in the hex part.
        assert!(AccountSid::parse("AC0123456789abcdef0123456789abcde\u{FF10}").is_err());
    }

    #[test]
    fn debug_and_display_show_the_sid() {
        let sid = AccountSid::parse(AC).expect("valid");
        assert_eq!(format!("{sid:?}"), format!("AccountSid({AC})"));
    }
}
