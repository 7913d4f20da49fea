//! Development credentials: a fresh document with two synthetic accounts (so the "stream token of
//! another account" attack means something), random tokens and one call-token key, written with
//! mode 0600 into the project-local state directory.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand::distr::{Alphanumeric, SampleString};
use rand::RngCore;
use serde_json::json;

use crate::domain::Secret;

/// The state directory, relative to the current directory (gitignored).
pub const STATE_DIR: &str = ".stream-gate";
/// The development credentials file inside [`STATE_DIR`].
pub const FILE_NAME: &str = "dev-credentials.json";

fn hex(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A fresh call-token key for a deployment: 32 bytes straight from the operating system's CSPRNG
/// (`getrandom`), base64url without padding (the form `callTokenKeys` takes); the raw bytes are
/// wiped once encoded. An unavailable OS generator is an error, never a weaker fallback.
pub fn new_call_token_key() -> std::io::Result<Secret> {
    use rand::TryRngCore as _;
    let mut key = zeroize::Zeroizing::new([0u8; 32]);
    rand::rngs::OsRng
        .try_fill_bytes(&mut key[..])
        .map_err(std::io::Error::other)?;
    Ok(Secret::new(URL_SAFE_NO_PAD.encode(&key[..])))
}

/// A new credentials document: accounts A and B (an auth token each), a stream token per account,
/// one call-token key.
pub fn generate() -> Secret {
    let mut key = [0u8; 32];
    rand::rng().fill_bytes(&mut key);
    let (a, b) = (format!("AC{}", hex(16)), format!("AC{}", hex(16)));
    let token = || Alphanumeric.sample_string(&mut rand::rng(), 48);
    let doc = json!({
        "twilioAccounts": [
            {"accountSid": a, "authTokens": [hex(16)]},
            {"accountSid": b, "authTokens": [hex(16)]},
        ],
        "streamTokens": [
            {"token": token(), "accountSid": a},
            {"token": token(), "accountSid": b},
        ],
        "callTokenKeys": [URL_SAFE_NO_PAD.encode(key)],
    });
    Secret::new(format!("{doc:#}\n"))
}

/// Writes `document` to a new file at `path` (parents created), readable by its owner only.
pub fn write_private(path: &Path, document: &Secret) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        opts.mode(0o600);
    }
    opts.open(path)?.write_all(document.expose().as_bytes())
}

/// The development credentials path under `base` (the current directory).
pub fn default_path(base: &Path) -> PathBuf {
    base.join(STATE_DIR).join(FILE_NAME)
}

/// The development credentials under `base`, created when absent; the flag says "created now".
pub fn ensure(base: &Path) -> std::io::Result<(PathBuf, bool)> {
    let path = default_path(base);
    if path.exists() {
        return Ok((path, false));
    }
    write_private(&path, &generate())?;
    Ok((path, true))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Credentials;

    #[test]
    fn generated_documents_are_valid_and_distinct() {
        let a = generate();
        let b = generate();
        let creds = Credentials::from_json(a.expose()).expect("valid document");
        assert_eq!(creds.account_sids().count(), 2);
        assert!(creds.has_call_token_keys());
        assert_ne!(a.expose(), b.expose());
    }

    #[cfg(unix)]
    #[test]
    fn written_owner_only_and_never_overwritten() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = std::env::temp_dir().join(format!("sg-devcreds-{}", hex(8)));
        let (path, created) = ensure(&dir).expect("create");
        assert!(created);
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let before = std::fs::read_to_string(&path).expect("read");
        let (_, created_again) = ensure(&dir).expect("again");
        assert!(!created_again);
        assert_eq!(std::fs::read_to_string(&path).expect("read"), before);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
