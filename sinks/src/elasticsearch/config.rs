//! [`ElasticConfig`]: the checked keys of a `To = elasticsearch` pipe (see the table in
//! [`super`]), read without I/O but the `ApiKeyFile` and `PasswordFile` files.

use base64::Engine as _;
use broker_core::config::{ConfigError, Keys, PipeSettings};
use reqwest::header::HeaderValue;
use reqwest::Url;

use super::KEYS;
use crate::util::http::client::{self, ClientSettings};
use crate::util::http::secret::{self, Secret};
use crate::util::http::Secrets;

/// The index (a data stream) when `Index` is not set.
pub const DEFAULT_INDEX: &str = "logs-procustodibus-default";
/// Events per request when `Batch` is not set.
pub const DEFAULT_BATCH: usize = 1000;
/// The largest `Batch`.
pub const MAX_BATCH: usize = 10_000;
/// The largest request body when `MaxBytes` is not set (10M).
pub const DEFAULT_MAX_BYTES: usize = 10 << 20;
/// The range of `MaxBytes`: 1K to 100M (Elasticsearch refuses bodies over 100 MB by default).
pub const MAX_BYTES_RANGE: std::ops::RangeInclusive<usize> = 1024..=(100 << 20);

/// An elasticsearch pipe's checked settings.
#[derive(Clone, Debug)]
pub struct ElasticConfig {
    /// The `_bulk` URL of each receiver (`https://host:9200/INDEX/_bulk?pipeline=P`), in the
    /// order of the `Url` keys: tried in turn when one fails.
    pub bulk_urls: Vec<Url>,
    /// The index or data stream.
    pub index: String,
    /// The `Authorization` header (`ApiKey ...` or `Basic ...`), marked sensitive, if any.
    pub authorization: Option<HeaderValue>,
    /// Events per request.
    pub batch: usize,
    /// The largest request body, in bytes.
    pub max_bytes: usize,
    /// `Timeout`, `CA` and `Proxy`.
    pub client: ClientSettings,
    /// The texts never to show: the API key or password (in every form), the URLs' paths and
    /// queries, a proxy's password.
    pub secrets: Secrets,
}

impl ElasticConfig {
    /// Reads and checks a pipe's keys (no I/O but the secret files).
    pub fn from_settings(settings: &PipeSettings) -> Result<Self, ConfigError> {
        let keys = settings.keys(KEYS);
        let index = match keys.text("Index")? {
            None => DEFAULT_INDEX.to_string(),
            Some(index) => check_index(&index).map_err(|e| keys.error("Index", e))?,
        };
        let pipeline = keys.text("Pipeline")?;
        let mut secrets = Secrets::new();
        let mut bulk_urls = Vec::new();
        for occurrence in keys.each("Url") {
            for text in occurrence.value.split(',').map(str::trim) {
                let url = client::parse_url(text).map_err(|e| occurrence.error(e))?;
                secrets.add_url(&url);
                bulk_urls.push(bulk_url(&url, &index, pipeline.as_deref()));
            }
        }
        if bulk_urls.is_empty() {
            return Err(keys.error(
                "Url",
                "is required: the https:// URL of Elasticsearch or OpenSearch",
            ));
        }
        let authorization = authorization(&keys, &mut secrets)?;
        let batch = keys
            .number("Batch", 1..=MAX_BATCH, "events")?
            .unwrap_or(DEFAULT_BATCH);
        let max_bytes = keys.size("MaxBytes", MAX_BYTES_RANGE, DEFAULT_MAX_BYTES)?;
        let client = ClientSettings::from_keys(&keys)?;
        if let Some(password) = client.proxy_password() {
            secrets.add(&password);
        }
        Ok(ElasticConfig {
            bulk_urls,
            index,
            authorization,
            batch,
            max_bytes,
            client,
            secrets,
        })
    }
}

/// `ApiKey`/`ApiKeyFile` (`Authorization: ApiKey KEY`), or `User` with `Password`/`PasswordFile`
/// (basic), or neither; each secret is added to `secrets`.
fn authorization(keys: &Keys, secrets: &mut Secrets) -> Result<Option<HeaderValue>, ConfigError> {
    let api_key = Secret::read(keys, &secret::API_KEY, &secret::API_KEY_FILE)?;
    let user = keys.text("User")?;
    let password = Secret::read(keys, &secret::PASSWORD, &secret::PASSWORD_FILE)?;
    let value = match (api_key, user, password) {
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
            return Err(keys.error("ApiKey", "set ApiKey or User and Password, not both"))
        }
        (Some(key), None, None) => {
            secrets.add_secret(&key);
            format!("ApiKey {}", key.expose())
        }
        (None, Some(user), Some(password)) => {
            secrets.add_secret(&password);
            let pair = format!("{user}:{}", password.expose());
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(pair)
            )
        }
        (None, Some(_), None) => return Err(keys.error("User", "needs Password (or PasswordFile)")),
        (None, None, Some(_)) => return Err(keys.error("Password", "needs User")),
        (None, None, None) => return Ok(None),
    };
    secrets.add_credential(&value);
    let mut header = HeaderValue::from_str(&value).map_err(|_| {
        keys.error(
            "ApiKey",
            "the credentials are not a valid HTTP header value (printable ASCII)",
        )
    })?;
    header.set_sensitive(true);
    Ok(Some(header))
}

/// The `_bulk` URL of a receiver for `index`: the URL's path (a proxy's prefix, if any), then
/// `/INDEX/_bulk`, and `pipeline` in the query.
fn bulk_url(base: &Url, index: &str, pipeline: Option<&str>) -> Url {
    let mut url = base.clone();
    let path = format!("{}/{index}/_bulk", base.path().trim_end_matches('/'));
    url.set_path(&path);
    url.set_query(None);
    if let Some(pipeline) = pipeline {
        url.query_pairs_mut().append_pair("pipeline", pipeline);
    }
    url
}

/// Checks an index or data stream name as Elasticsearch does: lower case, at most 255 bytes, not
/// `.` or `..`, not starting with `-`, `_` or `+`, none of `\ / * ? " < > | , #`, space or colon.
/// (Date math such as `<logs-{now/d}>` is not supported.)
fn check_index(index: &str) -> Result<String, String> {
    let bad = |c: char| {
        c.is_ascii_uppercase() || c.is_control() || c.is_whitespace() || "\\/*?\"<>|,#:".contains(c)
    };
    if index.len() > 255 {
        Err("longer than 255 bytes".to_string())
    } else if index == "." || index == ".." || index.starts_with(['-', '_', '+']) {
        Err(format!(
            "{index:?} is not an index name (it may not be . or .. nor start with -, _ or +)"
        ))
    } else if let Some(c) = index.chars().find(|c| bad(*c)) {
        Err(format!(
            "{index:?} is not an index name: {c:?} is not allowed (lower case; no space, \\ / * ? \" < > | , # :)"
        ))
    } else {
        Ok(index.to_string())
    }
}
