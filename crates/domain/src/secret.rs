//! Secret text that never shows itself: redacted `Debug`/`Display`, wiped from memory on drop.

use std::fmt;
use zeroize::{ZeroizeOnDrop, Zeroizing};

/// A secret string (auth token, stream token, call token, key material as text).
///
/// There is deliberately no `Display`, and `Debug` prints `Secret(***)`, so a secret cannot reach
/// a log line or an error message by formatting.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    /// Wraps a string; the original allocation moves in and is wiped when the secret is dropped.
    pub fn new(value: String) -> Self {
        Self(Zeroizing::new(value))
    }

    /// The secret text, for the code that has to use it (HMAC keys, comparisons, TwiML).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

// Its only field is a `Zeroizing<String>`, which wipes the text when the secret is dropped.
impl ZeroizeOnDrop for Secret {}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self::new(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let s = Secret::new("hunter2-very-secret".into());
        assert_eq!(format!("{s:?}"), "Secret(***)");
        assert_eq!(s.expose(), "hunter2-very-secret");
    }
}
