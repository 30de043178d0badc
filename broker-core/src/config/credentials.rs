//! `broker-credentials.conf`: the broker's Ed25519 key pair, written by setup.

use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::{DateTime, Utc};
use ed25519_dalek::{SigningKey, VerifyingKey};

use super::error::ConfigError;
use super::ini::{canonical_key, IniSection};

/// The `[Broker.Credentials]` table: the broker's key pair. `Debug` never shows the private key.
#[derive(Clone)]
pub struct Credentials {
    signing_key: SigningKey,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("public_key", &self.public_key_base64())
            .field("private_key", &"<redacted>")
            .finish()
    }
}

impl Credentials {
    /// A fresh key pair from the operating system's random source.
    pub fn generate() -> Result<Self, String> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| format!("cannot get random bytes: {e}"))?;
        Ok(Self::from_seed(seed))
    }

    /// The key pair of a 32-byte Ed25519 seed.
    pub fn from_seed(seed: [u8; 32]) -> Self {
        Credentials {
            signing_key: SigningKey::from_bytes(&seed),
        }
    }

    /// The signing key.
    pub fn signing_key(&self) -> &SigningKey {
        &self.signing_key
    }

    /// The public key.
    pub fn public_key(&self) -> VerifyingKey {
        self.signing_key.verifying_key()
    }

    /// The public key in standard base64 with padding, as the API and the file want it.
    pub fn public_key_base64(&self) -> String {
        STANDARD.encode(self.public_key().as_bytes())
    }

    /// Reads the `[Broker.Credentials]` table; the public key, if given, must match the private.
    pub fn from_section(section: &IniSection, path: &Path) -> Result<Self, ConfigError> {
        let find = |name: &str| {
            section
                .entries
                .iter()
                .find(|e| canonical_key(&e.key) == name)
        };
        let private = find("privatekey").ok_or_else(|| {
            ConfigError::at(path, section.line, "[Broker.Credentials] has no PrivateKey")
        })?;
        let seed: [u8; 32] = STANDARD
            .decode(private.value.trim())
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| {
                ConfigError::at(
                    path,
                    private.line,
                    "PrivateKey is not the base64 of a 32-byte Ed25519 key",
                )
            })?;
        let credentials = Self::from_seed(seed);
        if let Some(public) = find("publickey") {
            if public.value.trim() != credentials.public_key_base64() {
                return Err(ConfigError::at(
                    path,
                    public.line,
                    "PublicKey does not match PrivateKey; run setup again with a new broker-setup.conf",
                ));
            }
        }
        Ok(credentials)
    }

    /// The file's text, as the existing broker writes it.
    pub fn file_text(&self, broker: &str, host: &str, now: DateTime<Utc>) -> String {
        format!(
            "# broker-credentials.conf generated {}\n# for broker {broker} on {host}\n[Broker.Credentials]\nPublicKey = {}\nPrivateKey = {}\n",
            now.format("%Y-%m-%dT%H:%M:%SZ"),
            self.public_key_base64(),
            STANDARD.encode(self.signing_key.to_bytes()),
        )
    }

    /// Writes the credentials file safely: a temporary file with mode 0600 beside it, flushed to
    /// disk, then renamed over `path`, then the directory flushed.
    pub fn write(&self, path: &Path, broker: &str, host: &str) -> Result<(), String> {
        let text = self.file_text(broker, host, Utc::now());
        let (dir, tmp) = temp_path(path);
        let result = (|| {
            let mut file = create_temp(&tmp)?;
            file.write_all(text.as_bytes())?;
            file.sync_all()?;
            fs::rename(&tmp, path)?;
            if let Ok(d) = fs::File::open(&dir) {
                d.sync_all()?;
            }
            Ok::<(), std::io::Error>(())
        })();
        result.map_err(|e| {
            let _ = fs::remove_file(&tmp);
            format!("cannot write credentials file {}: {e}", path.display())
        })
    }

    /// Checks that the credentials file could be written at `path` (by creating and removing its
    /// temporary file), so setup does not spend the one-time code when it cannot save the key.
    pub fn check_writable(path: &Path) -> Result<(), String> {
        let (_, tmp) = temp_path(path);
        let result = create_temp(&tmp).map(drop);
        let _ = fs::remove_file(&tmp);
        result.map_err(|e| format!("cannot write credentials file {}: {e}", path.display()))
    }
}

/// The directory of `path` and the temporary file written there before the rename.
fn temp_path(path: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "broker-credentials.conf".into());
    let tmp = dir.join(format!(".{name}.tmp"));
    (dir, tmp)
}

/// Creates the temporary file afresh with mode 0600.
fn create_temp(tmp: &Path) -> std::io::Result<fs::File> {
    let _ = fs::remove_file(tmp);
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(tmp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ini::parse_ini;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn writes_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("broker-credentials.conf");
        let c = Credentials::generate().unwrap();
        c.write(&path, "abc", "host.example").unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let text = fs::read_to_string(&path).unwrap();
        assert!(
            text.contains("# for broker abc on host.example\n[Broker.Credentials]\nPublicKey = ")
        );
        let s = parse_ini(&text, &path).unwrap();
        let back = Credentials::from_section(&s[0], &path).unwrap();
        assert_eq!(back.public_key_base64(), c.public_key_base64());
        assert!(!format!("{back:?}").contains(&STANDARD.encode(c.signing_key.to_bytes())));
    }

    #[test]
    fn rejects_bad_keys() {
        let p = Path::new("c.conf");
        let s = parse_ini("[Broker.Credentials]\nPrivateKey = nope\n", p).unwrap();
        let e = Credentials::from_section(&s[0], p).unwrap_err();
        assert_eq!(
            e.message,
            "c.conf line 2: PrivateKey is not the base64 of a 32-byte Ed25519 key"
        );
        let key = STANDARD.encode([7u8; 32]);
        let text = format!("[Broker.Credentials]\nPublicKey = {key}\nPrivateKey = {key}\n");
        let s = parse_ini(&text, p).unwrap();
        assert!(Credentials::from_section(&s[0], p)
            .unwrap_err()
            .message
            .contains("line 2: PublicKey does not match"));
    }
}
