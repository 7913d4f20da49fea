//! Stream tokens (`?token=`): a shared secret per account for senders that keep query strings.
//!
//! Stored as SHA-256 digests; the presented token is hashed once and compared against every entry
//! in constant time with no early exit, so neither the position of a match nor the lengths of the
//! configured tokens show in the timing.

use subtle::{ConditionallySelectable, ConstantTimeEq};

use super::credentials::{
    token_digest, Credentials, MAX_STREAM_TOKEN_CHARS, MIN_STREAM_TOKEN_CHARS,
};
use super::sid::AccountSid;

/// A stream token that matched a configured entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamTokenMatch {
    /// The account the token belongs to.
    pub account_sid: AccountSid,
    /// Index of the entry in `streamTokens`.
    pub index: usize,
}

/// Why a presented stream token did not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamTokenFailure {
    /// Shorter or longer than any configured token can be (32 to 512 characters).
    Malformed,
    /// Matches no configured token.
    Unknown,
}

/// Checks a presented `?token=` value against every configured stream token.
pub fn verify_stream_token(
    credentials: &Credentials,
    presented: &str,
) -> Result<StreamTokenMatch, StreamTokenFailure> {
    // Bound the work, and name what cannot be a token: the length limits are public (docs/design.md),
    // not secret. Bytes first, so that counting characters is itself bounded.
    if presented.len() > MAX_STREAM_TOKEN_CHARS * 4
        || !(MIN_STREAM_TOKEN_CHARS..=MAX_STREAM_TOKEN_CHARS).contains(&presented.chars().count())
    {
        return Err(StreamTokenFailure::Malformed);
    }
    let digest = token_digest(presented);
    let mut found = subtle::Choice::from(0u8);
    let mut index = 0u32;
    for (i, entry) in credentials.stream_tokens.iter().enumerate() {
        let hit = entry.digest.ct_eq(&digest);
        index.conditional_assign(&(i as u32), hit & !found);
        found |= hit;
    }
    if !bool::from(found) {
        return Err(StreamTokenFailure::Unknown);
    }
    let index = index as usize;
    Ok(StreamTokenMatch {
        account_sid: credentials.stream_tokens[index].account_sid,
        index,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const T1: &str = "tok1-0123456789abcdef0123456789abcdef";
    const T2: &str = "tok2-0123456789abcdef0123456789abcdef-longer-one";

    fn creds() -> Credentials {
        Credentials::from_json(&format!(
            r#"{{"streamTokens":[{{"token":"{T1}","accountSid":"AC0123456789abcdef0123456789abcdef"}},
                                 {{"token":"{T2}","accountSid":"ACffffffffffffffffffffffffffffffff"}}]}}"#
        ))
        .expect("valid")
    }

    #[test]
    fn finds_each_token_and_its_account() {
        let c = creds();
        assert_eq!(verify_stream_token(&c, T1).map(|m| m.index), Ok(0));
        let m = verify_stream_token(&c, T2).expect("match");
        assert_eq!(
            (m.index, m.account_sid.as_str()),
            (1, "ACffffffffffffffffffffffffffffffff")
        );
    }

    #[test]
    fn rejects_with_the_exact_reason() {
        let c = creds();
        assert_eq!(
            verify_stream_token(&c, ""),
            Err(StreamTokenFailure::Malformed)
        );
        assert_eq!(
            verify_stream_token(&c, &"x".repeat(5000)),
            Err(StreamTokenFailure::Malformed)
        );
        assert_eq!(
            verify_stream_token(&c, &"x".repeat(31)),
            Err(StreamTokenFailure::Malformed)
        );
        // 513 two-byte characters: within the byte bound, over the character bound.
        assert_eq!(
            verify_stream_token(&c, &"é".repeat(513)),
            Err(StreamTokenFailure::Malformed)
        );
        assert_eq!(
            verify_stream_token(&c, &T1[..T1.len() - 1]),
            Err(StreamTokenFailure::Unknown)
        );
        assert_eq!(
            verify_stream_token(&c, &format!("{T1}x")),
            Err(StreamTokenFailure::Unknown)
        );
        assert_eq!(
            verify_stream_token(&c, &T1.to_uppercase()),
            Err(StreamTokenFailure::Unknown)
        );
    }

    #[test]
    fn tokens_of_32_and_512_characters_match() {
        let (short, long) = ("a".repeat(32), "z".repeat(512));
        let c = Credentials::from_json(&format!(
            r#"{{"streamTokens":[{{"token":"{short}","accountSid":"AC0123456789abcdef0123456789abcdef"}},
                                 {{"token":"{long}","accountSid":"ACffffffffffffffffffffffffffffffff"}}]}}"#
        ))
        .expect("valid");
        assert_eq!(verify_stream_token(&c, &short).map(|m| m.index), Ok(0));
        assert_eq!(verify_stream_token(&c, &long).map(|m| m.index), Ok(1));
        assert_eq!(
            verify_stream_token(&c, &"z".repeat(513)),
            Err(StreamTokenFailure::Malformed)
        );
    }

    #[test]
    fn length_is_counted_in_characters_not_bytes() {
        // Malformed means "not 32 to 512 characters" (docs/design.md, reason codes); a value within
        // those bounds is Unknown whatever its bytes, up to 512 four-byte characters.
        let c = creds();
        for presented in [
            "é".repeat(32),
            "é".repeat(512),
            "\u{1F600}".repeat(32),
            "\u{1F600}".repeat(512),
            "x".repeat(512),
        ] {
            assert_eq!(
                verify_stream_token(&c, &presented),
                Err(StreamTokenFailure::Unknown),
                "{} characters, {} bytes",
                presented.chars().count(),
                presented.len()
            );
        }
        for presented in [
            "\u{1F600}".repeat(31),
            "\u{1F600}".repeat(513),
            "x".repeat(513),
        ] {
            assert_eq!(
                verify_stream_token(&c, &presented),
                Err(StreamTokenFailure::Malformed),
                "{} characters, {} bytes",
                presented.chars().count(),
                presented.len()
            );
        }
    }
}
