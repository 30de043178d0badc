//! `--test`: check DNS, API health, setup and queue access, print one line per check, and exit
//! with the sum of the failed checks (4 DNS, 8 health, 16 setup or queue access).

use std::process::ExitCode;

use broker_core::api::{setup_from_file, ApiClient, ApiSource};
use broker_core::config::{BrokerConfig, ConfigError};

/// Exit status part for a failed DNS lookup.
pub const DNS_FAILED: u8 = 4;
/// Exit status part for an unhealthy or unreachable API.
pub const HEALTH_FAILED: u8 = 8;
/// Exit status part for failed setup or queue access.
pub const ACCESS_FAILED: u8 = 16;

const TROUBLESHOOT: &str =
    "Issues encountered; see https://docs.procustodibus.com/guide/integrations/brokers/#troubleshoot to fix";

/// Runs every check and prints the report.
pub async fn run(config: &BrokerConfig) -> ExitCode {
    let mut status = 0u8;
    let (host, port) = host_and_port(&config.api);
    match tokio::net::lookup_host((host.as_str(), port)).await {
        Ok(mut addrs) => match addrs.next() {
            Some(addr) => println!("... {} is pro custodibus ip address ...", addr.ip()),
            None => {
                println!("!!! cannot lookup ip address for {host} (no address) !!!");
                status += DNS_FAILED;
            }
        },
        Err(e) => {
            println!("!!! cannot lookup ip address for {host} ({e}) !!!");
            status += DNS_FAILED;
        }
    }
    let client = match ApiClient::new(&config.api, &config.broker, config.timeout) {
        Ok(client) => client,
        Err(e) => {
            println!("!!! unhealthy pro custodibus api: server unavailable ({e}) !!!");
            println!("{TROUBLESHOOT}");
            return ExitCode::from(status + HEALTH_FAILED + ACCESS_FAILED);
        }
    };
    match client.health().await {
        Ok(entries) if !entries.is_empty() && entries.iter().all(|e| e.healthy) => {
            println!("... healthy pro custodibus api ...")
        }
        Ok(entries) => {
            for entry in entries.iter().filter(|e| !e.healthy) {
                println!("!!! unhealthy pro custodibus api: {} !!!", entry.error);
            }
            if entries.is_empty() {
                println!("!!! unhealthy pro custodibus api: server unavailable (empty health answer) !!!");
            }
            status += HEALTH_FAILED;
        }
        Err(e) => {
            println!("!!! unhealthy pro custodibus api: server unavailable ({e}) !!!");
            status += HEALTH_FAILED;
        }
    }
    status += check_access(config, client).await;
    if status == 0 {
        println!("All systems go :)");
    } else {
        println!("{TROUBLESHOOT}");
    }
    ExitCode::from(status)
}

/// Setup (if a setup file exists) and hello; prints the lines and returns the status part.
async fn check_access(config: &BrokerConfig, client: ApiClient) -> u8 {
    let credentials = match setup_from_file(config, &client).await {
        Ok(Some(credentials)) => credentials,
        Ok(None) => match config.load_credentials() {
            Ok(Some(credentials)) => credentials,
            Ok(None) => match &config.inline_setup {
                Some(setup) => match broker_core::api::run_setup(config, &client, setup).await {
                    Ok(credentials) => credentials,
                    Err(e) => {
                        println!("!!! cannot set up access to api ({e}) !!!");
                        return ACCESS_FAILED;
                    }
                },
                None => {
                    let e = ConfigError::other(format!(
                        "no credentials file at {} and no setup file at {}",
                        config.credentials_path.display(),
                        config.setup_path.display()
                    ));
                    println!("!!! cannot set up access to api ({e}) !!!");
                    return ACCESS_FAILED;
                }
            },
            Err(e) => {
                println!("!!! cannot access queues on api ({e}) !!!");
                return ACCESS_FAILED;
            }
        },
        Err(e) => {
            println!("!!! cannot set up access to api ({e}) !!!");
            return ACCESS_FAILED;
        }
    };
    let source = ApiSource::new(client, credentials);
    match source.hello().await {
        Ok(name) => {
            println!("... can access queues on api for {name} ...");
            0
        }
        Err(e) => {
            println!("!!! cannot access queues on api ({e}) !!!");
            ACCESS_FAILED
        }
    }
}

/// The host and port of an `http(s)://host[:port]/...` URL (IPv6 hosts in brackets).
pub fn host_and_port(url: &str) -> (String, u16) {
    let (scheme, rest) = url.split_once("://").unwrap_or(("https", url));
    let default_port = if scheme.eq_ignore_ascii_case("http") {
        80
    } else {
        443
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
    if let Some(v6) = authority.strip_prefix('[') {
        if let Some((host, after)) = v6.split_once(']') {
            let port = after.strip_prefix(':').and_then(|p| p.parse().ok());
            return (host.to_string(), port.unwrap_or(default_port));
        }
    }
    match authority.rsplit_once(':') {
        Some((host, port)) => (host.to_string(), port.parse().unwrap_or(default_port)),
        None => (authority.to_string(), default_port),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        assert_eq!(
            host_and_port("https://api.custodib.us"),
            ("api.custodib.us".into(), 443)
        );
        assert_eq!(
            host_and_port("http://127.0.0.1:8080/x"),
            ("127.0.0.1".into(), 8080)
        );
        assert_eq!(host_and_port("http://[::1]:81"), ("::1".into(), 81));
    }
}
