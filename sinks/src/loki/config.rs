//! The keys of a Loki pipe, read and checked without I/O (but the `PasswordFile` or `TokenFile`,
//! read when the sink is built so that `--check-config` checks it).

use broker_core::config::{ConfigError, Keys, PipeSettings};
use reqwest::header::HeaderValue;
use reqwest::Url;

use super::KEYS;
use crate::util::http::client::{self, ClientSettings};
use crate::util::http::secret::{
    authorization, basic_authorization, PASSWORD, PASSWORD_FILE, TOKEN, TOKEN_FILE,
};
use crate::util::http::{Secret, Secrets};

/// The path of Loki's push API, appended to the `Url` unless its path already ends with it.
pub const PUSH_PATH: &str = "/loki/api/v1/push";
/// The value of the `job` label of every stream.
pub const JOB: &str = "procustodibus-broker";
/// Events per request when `Batch` is not set.
pub const DEFAULT_BATCH: usize = 1000;
/// The most events `Batch` allows per request.
pub const MAX_BATCH: usize = 10_000;
/// The labels the sink sets itself, which no `Label` may set.
pub const OWN_LABELS: [&str; 2] = ["job", "type"];

/// How the sink proves who it is to Loki (or the gateway before it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Auth {
    /// No credentials (a Loki on this host or a private network).
    None,
    /// `User` and `Password`: HTTP basic authentication (Grafana Cloud, an nginx gateway).
    Basic {
        /// The user name (not a secret).
        user: String,
        /// The password.
        password: Secret,
    },
    /// `Token`: `Authorization: Bearer TOKEN`.
    Bearer(Secret),
}

/// The checked keys of a Loki pipe.
#[derive(Clone, Debug)]
pub struct LokiConfig {
    /// Where the pushes go: the `Url` with the push path.
    pub url: Url,
    /// `TenantId`: the `X-Scope-OrgID` header of a multi-tenant Loki.
    pub tenant: Option<String>,
    /// The credentials.
    pub auth: Auth,
    /// The `Authorization` header they make, marked sensitive.
    pub authorization: Option<HeaderValue>,
    /// The `Label` keys, in file order: added to `job` and `type` on every stream.
    pub labels: Vec<(String, String)>,
    /// Events per request.
    pub batch: usize,
    /// `Timeout`, `Proxy`, `CA`.
    pub client: ClientSettings,
}

impl LokiConfig {
    /// Reads and checks a pipe's keys; see the module docs.
    pub fn from_settings(settings: &PipeSettings) -> Result<Self, ConfigError> {
        let keys = settings.keys(KEYS);
        let base = client::read_url(&keys, "Url")?;
        let url = push_url(base);
        let tenant = keys.text("TenantId")?;
        if let Some(tenant) = &tenant {
            if tenant.chars().any(|c| c.is_control() || !c.is_ascii()) {
                return Err(keys.error("TenantId", "must be printable ASCII (an X-Scope-OrgID)"));
            }
        }
        let auth = read_auth(&keys)?;
        let authorization = match &auth {
            Auth::None => None,
            Auth::Basic { user, password } => {
                Some(basic_authorization(user, password).map_err(|e| keys.error("Password", e))?)
            }
            Auth::Bearer(token) => {
                Some(authorization("Bearer", token).map_err(|e| keys.error("Token", e))?)
            }
        };
        let labels = read_labels(&keys)?;
        let batch = keys
            .number("Batch", 1..=MAX_BATCH, "events")?
            .unwrap_or(DEFAULT_BATCH);
        let client = ClientSettings::from_keys(&keys)?;
        Ok(LokiConfig {
            url,
            tenant,
            auth,
            authorization,
            labels,
            batch,
            client,
        })
    }

    /// The URL's scheme, host and port: how messages name Loki without the URL's path or query.
    pub fn origin(&self) -> String {
        client::origin(&self.url)
    }

    /// The texts never to show: the password or token (in every form), the Url's path and
    /// query, a proxy's password.
    pub fn secrets(&self) -> Secrets {
        let mut secrets = Secrets::new();
        match &self.auth {
            Auth::None => {}
            Auth::Basic { user, password } => {
                secrets.add_secret(password);
                secrets.add(&format!("{user}:{}", password.expose()));
            }
            Auth::Bearer(token) => secrets.add_secret(token),
        }
        secrets.add_url(&self.url);
        if let Some(password) = self.client.proxy_password() {
            secrets.add(&password);
        }
        secrets
    }
}

/// The push URL for a `Url`: the Url itself when its path already ends with [`PUSH_PATH`], else
/// its path (a gateway's prefix, or none) followed by [`PUSH_PATH`]. The query is kept.
pub fn push_url(mut url: Url) -> Url {
    let path = url.path().trim_end_matches('/');
    if !path.ends_with(PUSH_PATH) {
        let joined = format!("{path}{PUSH_PATH}");
        url.set_path(&joined);
    }
    url
}

/// `User` and `Password` (or `PasswordFile`), or `Token` (or `TokenFile`), or none.
fn read_auth(keys: &Keys) -> Result<Auth, ConfigError> {
    let user = keys.text("User")?;
    let password = Secret::read(keys, &PASSWORD, &PASSWORD_FILE)?;
    let token = Secret::read(keys, &TOKEN, &TOKEN_FILE)?;
    let token_key = if keys.has("Token") {
        "Token"
    } else {
        "TokenFile"
    };
    match (user, password, token) {
        (None, None, None) => Ok(Auth::None),
        (None, None, Some(token)) => Ok(Auth::Bearer(token)),
        (Some(user), Some(password), None) => {
            if user.contains(':') {
                return Err(keys.error("User", "must not hold a ':' (basic authentication)"));
            }
            Ok(Auth::Basic { user, password })
        }
        (Some(_), Some(_), Some(_)) | (Some(_), None, Some(_)) | (None, Some(_), Some(_)) => {
            Err(keys.error(token_key, "set Token or User and Password, not both"))
        }
        (Some(_), None, None) => Err(keys.error("User", "needs Password (or PasswordFile)")),
        (None, Some(_), None) => {
            let key = if keys.has("Password") {
                "Password"
            } else {
                "PasswordFile"
            };
            Err(keys.error(key, "needs User"))
        }
    }
}

/// Whether `name` is a Loki label name: `[a-zA-Z_][a-zA-Z0-9_]*`.
pub fn is_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Every `Label = name=value`, in file order; each error names its own line. A label may not
/// set `job` or `type` (the sink's own), nor repeat a name.
fn read_labels(keys: &Keys) -> Result<Vec<(String, String)>, ConfigError> {
    let mut labels: Vec<(String, String)> = Vec::new();
    for occurrence in keys.each("Label") {
        let Some((name, value)) = occurrence.value.split_once('=') else {
            return Err(occurrence.error(format!(
                "{:?} is not name=value (like env=prod)",
                occurrence.value
            )));
        };
        let (name, value) = (name.trim(), value.trim());
        if !is_label_name(name) {
            return Err(occurrence.error(format!(
                "{name:?} is not a label name (a letter or _, then letters, digits or _)"
            )));
        }
        if OWN_LABELS.contains(&name) {
            return Err(occurrence.error(format!(
                "{name} is the sink's own label (job=\"{JOB}\", type=<event type>): choose \
                 another name"
            )));
        }
        if labels.iter().any(|(n, _)| n == name) {
            return Err(occurrence.error(format!("label {name} is already set on an earlier line")));
        }
        if value.is_empty() {
            return Err(occurrence.error(format!(
                "label {name} has no value (Loki drops a label with an empty value)"
            )));
        }
        labels.push((name.to_string(), value.to_string()));
    }
    Ok(labels)
}
