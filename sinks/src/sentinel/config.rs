//! The keys of a `sentinel` pipe, checked without I/O (the `ClientSecretFile` is read, so
//! `--check-config` checks it).

use broker_core::config::{ConfigError, Keys, PipeSettings};
use reqwest::Url;

use super::KEYS;
use crate::util::guid::is_guid;
use crate::util::http::client::{origin, parse_url};
use crate::util::http::secret::{CLIENT_SECRET, CLIENT_SECRET_FILE};
use crate::util::http::{ClientSettings, Secret};

/// The Microsoft Entra authority of the public cloud.
pub const PUBLIC_AUTHORITY: &str = "https://login.microsoftonline.com";
/// The OAuth scope of the Logs Ingestion API in the public cloud.
pub const PUBLIC_SCOPE: &str = "https://monitor.azure.com//.default";
/// The version of the Logs Ingestion API the sink speaks.
pub const API_VERSION: &str = "2023-01-01";
/// Rows per request when `Batch` is not set.
pub const DEFAULT_BATCH: usize = 1000;

/// A checked `sentinel` pipe.
#[derive(Clone, Debug)]
pub struct SentinelConfig {
    /// The data collection endpoint (or the DCR's logs ingestion endpoint).
    pub endpoint: Url,
    /// The DCR's immutable id (`dcr-...`).
    pub dcr: String,
    /// The DCR's input stream (`Custom-...`).
    pub stream: String,
    /// The Microsoft Entra tenant (a GUID or a domain).
    pub tenant_id: String,
    /// The application (client) id.
    pub client_id: String,
    /// The application's client secret.
    pub client_secret: Secret,
    /// Where tokens come from (`https://login.microsoftonline.com`).
    pub authority: Url,
    /// The OAuth scope asked for.
    pub scope: String,
    /// At most this many rows per request.
    pub batch: usize,
    /// `Timeout`, `Proxy`, `CA`.
    pub client: ClientSettings,
}

impl SentinelConfig {
    /// Reads and checks a pipe's keys.
    pub fn from_settings(settings: &PipeSettings) -> Result<Self, ConfigError> {
        let keys = settings.keys(KEYS);
        let endpoint = url(&keys, "Endpoint", None)?;
        if endpoint.query().is_some() {
            return Err(keys.error("Endpoint", "has a query: give the endpoint alone"));
        }
        let dcr = checked(
            &keys,
            "Dcr",
            is_dcr_id,
            "is not a DCR immutable id (dcr- and letters or digits)",
        )?;
        let stream = checked(
            &keys,
            "Stream",
            is_stream,
            "is not a stream name (Custom-... or Microsoft-..., letters, digits, _ and -)",
        )?;
        let tenant_id = checked(
            &keys,
            "TenantId",
            is_tenant,
            "is not a tenant id (a GUID or a domain such as contoso.onmicrosoft.com)",
        )?;
        let client_id = checked(
            &keys,
            "ClientId",
            is_guid,
            "is not an application (client) id: a GUID",
        )?;
        let client_secret = Secret::required(&keys, &CLIENT_SECRET, &CLIENT_SECRET_FILE)?;
        let authority = url(&keys, "AuthorityHost", Some(PUBLIC_AUTHORITY))?;
        if authority.query().is_some() {
            return Err(keys.error(
                "AuthorityHost",
                "has a query: give the authority host alone",
            ));
        }
        let scope = keys
            .text("Scope")?
            .unwrap_or_else(|| PUBLIC_SCOPE.to_string());
        if scope.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(keys.error("Scope", "must be one scope without spaces"));
        }
        let batch = keys
            .number("Batch", 1..=100_000, "rows")?
            .unwrap_or(DEFAULT_BATCH);
        let client = ClientSettings::from_keys(&keys)?;
        Ok(SentinelConfig {
            endpoint,
            dcr,
            stream,
            tenant_id,
            client_id,
            client_secret,
            authority,
            scope,
            batch,
            client,
        })
    }

    /// `{Endpoint}/dataCollectionRules/{Dcr}/streams/{Stream}?api-version=2023-01-01`.
    pub fn ingestion_url(&self) -> String {
        format!(
            "{}/dataCollectionRules/{}/streams/{}?api-version={API_VERSION}",
            self.endpoint.as_str().trim_end_matches('/'),
            self.dcr,
            self.stream
        )
    }

    /// `{AuthorityHost}/{TenantId}/oauth2/v2.0/token`.
    pub fn token_url(&self) -> String {
        format!(
            "{}/{}/oauth2/v2.0/token",
            self.authority.as_str().trim_end_matches('/'),
            self.tenant_id
        )
    }

    /// The endpoint's origin, how messages name the ingestion endpoint.
    pub fn endpoint_origin(&self) -> String {
        origin(&self.endpoint)
    }

    /// The authority's origin, how messages name the token endpoint.
    pub fn authority_origin(&self) -> String {
        origin(&self.authority)
    }
}

/// A URL key through [`parse_url`], `default` when it is missing (an error if `None`).
fn url(keys: &Keys, key: &str, default: Option<&str>) -> Result<Url, ConfigError> {
    match (keys.value(key), default) {
        (None, Some(text)) => parse_url(text).map_err(|e| keys.error(key, e)),
        (None, None) => Err(keys.error(key, "is required: give the https:// URL")),
        (Some(""), _) => Err(keys.error(key, "must not be empty: give the https:// URL")),
        (Some(text), _) => parse_url(text).map_err(|e| keys.error(key, e)),
    }
}

/// A required text key that `valid` accepts; `what` says what it should be (the value is not
/// quoted: a misplaced secret must not reach the message).
fn checked(
    keys: &Keys,
    key: &str,
    valid: fn(&str) -> bool,
    what: &str,
) -> Result<String, ConfigError> {
    let text = keys.required_text(key)?;
    if valid(&text) {
        Ok(text)
    } else {
        Err(keys.error(key, what))
    }
}

/// `dcr-` and letters or digits.
fn is_dcr_id(text: &str) -> bool {
    text.strip_prefix("dcr-")
        .is_some_and(|rest| !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// `Custom-...` or `Microsoft-...`: letters, digits, `_` and `-`.
fn is_stream(text: &str) -> bool {
    let rest = text
        .strip_prefix("Custom-")
        .or_else(|| text.strip_prefix("Microsoft-"));
    rest.is_some_and(|rest| {
        !rest.is_empty()
            && rest
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    })
}

/// A GUID or a domain name (letters, digits, `-`, dots between labels).
fn is_tenant(text: &str) -> bool {
    is_guid(text)
        || (text.contains('.')
            && text.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            }))
}
