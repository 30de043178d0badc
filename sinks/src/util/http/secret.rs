//! [`Secret`]: a token, password, API key or client secret, read from a key (`Token = ...`) or
//! from a file a key names (`TokenFile = /etc/procustodibus/broker/splunk-token`), so that
//! broker.conf can stay world-readable while the file is readable by the daemon only.
//!
//! A pipe sets exactly one of the pair. The file is read when the sink is built, so
//! `--check-config` checks it; it holds the secret alone (surrounding whitespace and the final
//! newline are dropped). Errors name the key and the file, never the content, and
//! [`Secret`]'s `Debug` and `Display` show `***`.

use std::fmt;
use std::path::Path;

use broker_core::config::{ConfigError, Keys};
use broker_core::registry::SinkKey;
use reqwest::header::HeaderValue;

/// The largest secret file: a secret is a line, not a document.
pub const MAX_SECRET_FILE: u64 = 64 * 1024;

/// `Token`: a bearer or API token.
pub const TOKEN: SinkKey = SinkKey::one("Token", "the token (or TokenFile; never logged)");
/// `TokenFile`: the file that holds the token.
pub const TOKEN_FILE: SinkKey = SinkKey::one(
    "TokenFile",
    "file holding the token alone (instead of Token; checked by --check-config)",
);
/// `Password`: a password (with a user key of the sink's own).
pub const PASSWORD: SinkKey = SinkKey::one("Password", "the password (or PasswordFile)");
/// `PasswordFile`: the file that holds the password.
pub const PASSWORD_FILE: SinkKey = SinkKey::one(
    "PasswordFile",
    "file holding the password alone (instead of Password)",
);
/// `ApiKey`: an API key.
pub const API_KEY: SinkKey = SinkKey::one("ApiKey", "the API key (or ApiKeyFile)");
/// `ApiKeyFile`: the file that holds the API key.
pub const API_KEY_FILE: SinkKey = SinkKey::one(
    "ApiKeyFile",
    "file holding the API key alone (instead of ApiKey)",
);
/// `ClientSecret`: an OAuth client secret.
pub const CLIENT_SECRET: SinkKey = SinkKey::one(
    "ClientSecret",
    "the OAuth client secret (or ClientSecretFile)",
);
/// `ClientSecretFile`: the file that holds the client secret.
pub const CLIENT_SECRET_FILE: SinkKey = SinkKey::one(
    "ClientSecretFile",
    "file holding the client secret alone (instead of ClientSecret)",
);

/// A secret value: shown as `***` by `Debug` and `Display`; [`Secret::expose`] gives the text.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret text.
    pub fn new(text: String) -> Secret {
        Secret(text)
    }

    /// The secret text, to put in a request (never in a message).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Reads a pipe's secret from `key` or `file_key` (exactly one may be set): `None` when
    /// neither is. The file is read now; see the module docs.
    pub fn read(
        keys: &Keys,
        key: &SinkKey,
        file_key: &SinkKey,
    ) -> Result<Option<Secret>, ConfigError> {
        let (name, file_name) = (key.shown(), file_key.shown());
        match (keys.has(&name), keys.has(&file_name)) {
            (true, true) => {
                Err(keys.error(&file_name, format!("set {name} or {file_name}, not both")))
            }
            (true, false) => Ok(keys.text(&name)?.map(Secret)),
            (false, true) => {
                let path = keys.required_path(&file_name, "the file that holds the secret")?;
                read_file(&path)
                    .map(Some)
                    .map_err(|e| keys.error(&file_name, e))
            }
            (false, false) => Ok(None),
        }
    }

    /// Like [`Secret::read`], and an error naming both keys when neither is set.
    pub fn required(keys: &Keys, key: &SinkKey, file_key: &SinkKey) -> Result<Secret, ConfigError> {
        Self::read(keys, key, file_key)?.ok_or_else(|| {
            let (name, file_name) = (key.shown(), file_key.shown());
            keys.error(&name, format!("is required (or {file_name})"))
        })
    }
}

/// `SCHEME SECRET` (`Bearer ...`, `Splunk ...`, `ApiKey ...`) as a sensitive `Authorization`
/// value. Check it when the sink is built: the error (a secret a header cannot carry) never
/// quotes the secret.
pub fn authorization(scheme: &str, secret: &Secret) -> Result<HeaderValue, String> {
    sensitive(&format!("{scheme} {}", secret.expose()))
}

/// `Basic base64(user:password)` as a sensitive `Authorization` value.
pub fn basic_authorization(user: &str, password: &Secret) -> Result<HeaderValue, String> {
    use base64::Engine as _;
    let pair = format!("{user}:{}", password.expose());
    sensitive(&format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    ))
}

/// A header value marked sensitive (kept out of reqwest's debug output).
fn sensitive(text: &str) -> Result<HeaderValue, String> {
    let mut value = HeaderValue::from_str(text).map_err(|_| {
        "holds a character an HTTP header cannot carry (printable ASCII only)".to_string()
    })?;
    value.set_sensitive(true);
    Ok(value)
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(super::mask::MASK)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(super::mask::MASK)
    }
}

/// The secret in the file at `path`, trimmed; the error names the file, never its content.
pub fn read_file(path: &Path) -> Result<Secret, String> {
    let shown = path.display();
    let meta = std::fs::metadata(path)
        .map_err(|e| format!("cannot read {shown}: {}", crate::util::io_error::reason(&e)))?;
    if !meta.is_file() {
        return Err(format!("{shown} is not a regular file"));
    }
    if meta.len() > MAX_SECRET_FILE {
        return Err(format!(
            "{shown} is larger than 64K: it should hold the secret alone"
        ));
    }
    let bytes = std::fs::read(path)
        .map_err(|e| format!("cannot read {shown}: {}", crate::util::io_error::reason(&e)))?;
    let text = String::from_utf8(bytes).map_err(|_| format!("{shown} is not UTF-8 text"))?;
    let text = text.trim();
    if text.is_empty() {
        return Err(format!("{shown} is empty"));
    }
    if text.contains(['\n', '\r']) {
        return Err(format!(
            "{shown} holds more than one line: it should hold the secret alone"
        ));
    }
    Ok(Secret(text.to_string()))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use broker_core::config::PipeSettings;

    use super::*;

    const KEYS: &[SinkKey] = &[TOKEN, TOKEN_FILE];

    fn read(pairs: &[(&str, &str)]) -> Result<Option<Secret>, String> {
        let settings = PipeSettings::new("P", "/b.conf", pairs);
        Secret::read(&settings.keys(KEYS), &TOKEN, &TOKEN_FILE).map_err(|e| e.to_string())
    }

    #[test]
    fn from_the_key_or_the_file_never_shown() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        std::fs::write(&file, "  s3cret-from-file\n").unwrap();
        let path = file.to_str().unwrap();
        let secret = read(&[("TokenFile", path)]).unwrap().unwrap();
        assert_eq!(secret.expose(), "s3cret-from-file");
        assert_eq!(format!("{secret} {secret:?}"), "*** ***");
        let secret = read(&[("token", "s3cret")]).unwrap().unwrap();
        assert_eq!(secret.expose(), "s3cret");
        assert_eq!(read(&[]).unwrap(), None);
        let settings = PipeSettings::new("P", "/b.conf", &[]);
        let e = Secret::required(&settings.keys(KEYS), &TOKEN, &TOKEN_FILE).unwrap_err();
        assert_eq!(
            e.to_string(),
            "/b.conf: pipe P: Token: is required (or TokenFile)"
        );
    }

    #[test]
    fn errors_name_the_file_never_the_content() {
        let dir = tempfile::tempdir().unwrap();
        let at = |name: &str, content: &[u8]| {
            let path = dir.path().join(name);
            std::fs::write(&path, content).unwrap();
            path.to_str().unwrap().to_string()
        };
        let two_lines = at("two", b"s3cret\nmore-s3cret\n");
        let empty = at("empty", b" \n");
        let binary = at("binary", b"s3cret\xff");
        let big = at("big", &vec![b's'; 70_000]);
        let unreadable = at("unreadable", b"s3cret");
        std::fs::set_permissions(&unreadable, std::fs::Permissions::from_mode(0o000)).unwrap();
        let dir_path = dir.path().to_str().unwrap().to_string();
        let cases = [
            (
                two_lines.clone(),
                format!("{two_lines} holds more than one line"),
            ),
            (empty.clone(), format!("{empty} is empty")),
            (binary.clone(), format!("{binary} is not UTF-8 text")),
            (big.clone(), format!("{big} is larger than 64K")),
            (
                "/no/such/token".to_string(),
                "cannot read /no/such/token: no such file".to_string(),
            ),
            (
                dir_path.clone(),
                format!("{dir_path} is not a regular file"),
            ),
        ];
        for (path, expected) in cases {
            let e = read(&[("TokenFile", &path)]).unwrap_err();
            assert!(e.starts_with("/b.conf: pipe P: TokenFile: "), "{e}");
            assert!(e.contains(&expected), "{e:?} should contain {expected:?}");
            assert!(!e.contains("s3cret"), "{e}");
        }
        // Root reads any file; others get `permission denied`, naming the file.
        if let Err(e) = read(&[("TokenFile", &unreadable)]) {
            assert!(
                e.contains(&format!("cannot read {unreadable}: permission denied")),
                "{e}"
            );
        }
        let e = read(&[("Token", "s3cret"), ("TokenFile", "/x")]).unwrap_err();
        assert_eq!(
            e,
            "/b.conf: pipe P: TokenFile: set Token or TokenFile, not both"
        );
        let e = read(&[("TokenFile", "")]).unwrap_err();
        assert!(e.contains("TokenFile: empty: give the path"), "{e}");
        let e = read(&[("Token", "")]).unwrap_err();
        assert!(e.contains("Token: must not be empty"), "{e}");
    }

    #[test]
    fn authorization_values_are_sensitive_and_checked() {
        let token = Secret::new("t0ken".to_string());
        let value = authorization("Splunk", &token).unwrap();
        assert_eq!(value, "Splunk t0ken");
        assert!(value.is_sensitive());
        let value = basic_authorization("admin", &Secret::new("pa55".to_string())).unwrap();
        assert_eq!(value, "Basic YWRtaW46cGE1NQ==");
        assert!(value.is_sensitive());
        let e = authorization("Bearer", &Secret::new("s3cret\u{7f}".to_string())).unwrap_err();
        assert!(!e.contains("s3cret"), "{e}");
    }
}
