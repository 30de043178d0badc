//! Setup: trade the one-time code of `broker-setup.conf` for a registered key pair, saved in
//! `broker-credentials.conf`.
//!
//! When a setup file exists, setup runs first in every mode, replacing any credentials, and the
//! setup file is deleted only after the new credentials file is safely on disk.

use super::client::ApiClient;
use super::error::ApiError;
use crate::config::{BrokerConfig, ConfigError, Credentials, SetupConfig};

/// Why the broker has no usable credentials.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// A file is missing, unreadable or invalid.
    #[error("{0}")]
    Config(#[from] ConfigError),
    /// The API refused or did not answer the registration.
    #[error("cannot register the broker's key: {0}")]
    Api(#[from] ApiError),
    /// The credentials file could not be written, or the setup file not deleted.
    #[error("{0}")]
    Io(String),
}

/// The credentials to log in with: runs setup first if a setup file exists (or there are no
/// credentials but broker.conf has an inline `[Broker.Setup]`), else reads the credentials file.
/// When setup fails but a credentials file exists, logs the failure and goes on with it.
pub async fn prepare_credentials(
    config: &BrokerConfig,
    client: &ApiClient,
) -> Result<Credentials, SetupError> {
    match setup_from_file(config, client).await {
        Ok(Some(credentials)) => return Ok(credentials),
        Ok(None) => {}
        Err(e) => {
            if let Ok(Some(existing)) = config.load_credentials() {
                tracing::error!(
                    "setup failed ({e}); going on with the existing credentials in {}",
                    config.credentials_path.display()
                );
                return Ok(existing);
            }
            return Err(e);
        }
    }
    if let Some(credentials) = config.load_credentials()? {
        return Ok(credentials);
    }
    if let Some(setup) = &config.inline_setup {
        return run_setup(config, client, setup).await;
    }
    Err(SetupError::Config(ConfigError::other(format!(
        "no credentials file at {} and no setup file at {}: download broker-setup.conf from the broker's setup page",
        config.credentials_path.display(),
        config.setup_path.display()
    ))))
}

/// Runs setup with the setup file, if it exists, and deletes the file once the new credentials
/// are safely written. `Ok(None)`: there is no setup file.
pub async fn setup_from_file(
    config: &BrokerConfig,
    client: &ApiClient,
) -> Result<Option<Credentials>, SetupError> {
    if !config.setup_path.exists() {
        return Ok(None);
    }
    let setup = config.load_setup()?.ok_or_else(|| {
        ConfigError::file(&config.setup_path, "no [Broker.Setup] section with a Code")
    })?;
    let credentials = run_setup(config, client, &setup).await?;
    std::fs::remove_file(&config.setup_path).map_err(|e| {
        SetupError::Io(format!(
            "credentials saved to {}, but cannot delete the used setup file {}: {e}; delete it by hand",
            config.credentials_path.display(),
            config.setup_path.display()
        ))
    })?;
    tracing::info!("deleted used setup file {}", config.setup_path.display());
    Ok(Some(credentials))
}

/// Generates a key pair, registers its public key with `setup`'s code, and writes the
/// credentials file (mode 0600).
pub async fn run_setup(
    config: &BrokerConfig,
    client: &ApiClient,
    setup: &SetupConfig,
) -> Result<Credentials, SetupError> {
    // Spend the one-time code only when the key can be saved afterwards.
    Credentials::check_writable(&config.credentials_path).map_err(SetupError::Io)?;
    let credentials = Credentials::generate().map_err(SetupError::Io)?;
    let host = tokio::task::spawn_blocking(super::host::fqdn)
        .await
        .unwrap_or_else(|_| gethostname::gethostname().to_string_lossy().into_owned());
    tracing::info!("registering a new key for broker {}", config.broker);
    client
        .register_key(
            &setup.code,
            &credentials.public_key_base64(),
            &format!("on {host}"),
            setup.keep_others,
        )
        .await?;
    credentials
        .write(&config.credentials_path, &config.broker, &host)
        .map_err(SetupError::Io)?;
    tracing::info!("saved credentials to {}", config.credentials_path.display());
    Ok(credentials)
}
