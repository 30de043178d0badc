//! The syslog sink's `Socket` setting: where messages go.
//!
//! A value with a `/` in it is the path of a local (unix) socket, such as `/dev/log`. Anything
//! else is `host:port` (`localhost:514`, `192.0.2.1:514`, `[2001:db8::1]:514`) or a bare host
//! (`syslog.example.com`, `[::1]`) whose port is the protocol's default (514 for UDP and TCP,
//! 6514 for TLS). Parsing checks the form only; host names are resolved when the sink connects.

use std::fmt;
use std::net::Ipv6Addr;
use std::path::PathBuf;
use std::str::FromStr;

/// The default host of `Socket` (for UDP, TCP and TLS).
pub const DEFAULT_HOST: &str = "localhost";

/// Where a syslog sink sends its messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Socket {
    /// A local (unix domain) socket: datagram first, stream if the socket is a stream socket.
    Local(PathBuf),
    /// A host (name or IP address, IPv6 without brackets) and maybe a port, over the network.
    Host {
        /// The host name or IP address.
        host: String,
        /// The port, if the value gave one (else the protocol's default).
        port: Option<u16>,
    },
}

impl FromStr for Socket {
    type Err = String;

    /// Parses a `Socket` value; the error says what is wrong with it in a few words.
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let value = value.trim();
        if value.is_empty() {
            return Err("empty: give host:port or the path of a local socket".to_string());
        }
        if value.contains('/') {
            return Ok(Socket::Local(PathBuf::from(value)));
        }
        let (host, port) = if let Some(rest) = value.strip_prefix('[') {
            let Some((inside, after)) = rest.split_once(']') else {
                return Err(format!(
                    "{value:?} has an unclosed bracket (write [::1]:514)"
                ));
            };
            let address = inside.split('%').next().unwrap_or_default();
            if address.parse::<Ipv6Addr>().is_err() {
                return Err(format!("{inside:?} in brackets is not an IPv6 address"));
            }
            let port = match after {
                "" => None,
                _ => match after.strip_prefix(':') {
                    Some(port) => Some(parse_port(port)?),
                    None => return Err(format!("{value:?}: expected :PORT after the brackets")),
                },
            };
            (inside, port)
        } else if value.contains('[') || value.contains(']') {
            return Err(format!(
                "{value:?} has unbalanced brackets (write [::1]:514)"
            ));
        } else if value.matches(':').count() > 1 {
            return Err(format!(
                "{value:?}: put an IPv6 address in brackets, like [::1]:514"
            ));
        } else {
            match value.split_once(':') {
                Some((host, port)) => (host, Some(parse_port(port)?)),
                None => (value, None),
            }
        };
        check_host(host)?;
        Ok(Socket::Host {
            host: host.to_string(),
            port,
        })
    }
}

impl fmt::Display for Socket {
    /// The socket as a person would write it (`localhost:514`, `[::1]:514`, `/dev/log`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Socket::Local(path) => write!(f, "{}", path.display()),
            Socket::Host { host, port: None } if host.contains(':') => write!(f, "[{host}]"),
            Socket::Host { host, port: None } => write!(f, "{host}"),
            Socket::Host {
                host,
                port: Some(port),
            } => f.write_str(&host_port(host, *port)),
        }
    }
}

/// `host:port`, with an IPv6 address in brackets (`[::1]:514`).
pub fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// A port number from 1 to 65535, digits only.
fn parse_port(port: &str) -> Result<u16, String> {
    let bad = || format!("port {port:?} is not a number from 1 to 65535");
    if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    match port.parse::<u16>() {
        Ok(0) | Err(_) => Err(bad()),
        Ok(n) => Ok(n),
    }
}

/// A host name or address: letters, digits, `-`, `.` and `_` (or an IPv6 address from brackets).
fn check_host(host: &str) -> Result<(), String> {
    if host.is_empty() {
        return Err("missing host before the port (write localhost:514)".to_string());
    }
    if host.contains(':') {
        return Ok(()); // an IPv6 address, already checked
    }
    let valid = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_');
    if host.chars().all(valid) {
        Ok(())
    } else {
        Err(format!("{host:?} is not a host name or IP address"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(host: &str, port: Option<u16>) -> Socket {
        Socket::Host {
            host: host.to_string(),
            port,
        }
    }

    #[test]
    fn parses_good_forms() {
        let parse = |s: &str| s.parse::<Socket>().unwrap();
        assert_eq!(parse("localhost:514"), host("localhost", Some(514)));
        assert_eq!(parse(" 127.0.0.1:5140 "), host("127.0.0.1", Some(5140)));
        assert_eq!(
            parse("syslog.example.com"),
            host("syslog.example.com", None)
        );
        assert_eq!(parse("[::1]:514"), host("::1", Some(514)));
        assert_eq!(parse("[2001:db8::1]"), host("2001:db8::1", None));
        assert_eq!(
            parse("[fe80::1%eth0]:65535"),
            host("fe80::1%eth0", Some(65535))
        );
        assert_eq!(parse("/dev/log"), Socket::Local(PathBuf::from("/dev/log")));
        assert_eq!(
            parse("./run/log"),
            Socket::Local(PathBuf::from("./run/log"))
        );
    }

    #[test]
    fn displays_as_written() {
        for s in [
            "localhost:514",
            "[::1]:514",
            "/dev/log",
            "10.0.0.1:1",
            "[::1]",
            "h",
        ] {
            assert_eq!(s.parse::<Socket>().unwrap().to_string(), s);
        }
        assert_eq!(host_port("::1", 6514), "[::1]:6514");
        assert_eq!(host_port("example.com", 514), "example.com:514");
    }

    #[test]
    fn rejects_bad_forms() {
        let err = |s: &str| s.parse::<Socket>().unwrap_err();
        assert_eq!(
            err(""),
            "empty: give host:port or the path of a local socket"
        );
        assert_eq!(err("host:0"), "port \"0\" is not a number from 1 to 65535");
        assert_eq!(
            err("host:65536"),
            "port \"65536\" is not a number from 1 to 65535"
        );
        assert_eq!(err("host:"), "port \"\" is not a number from 1 to 65535");
        assert_eq!(
            err("host:+5"),
            "port \"+5\" is not a number from 1 to 65535"
        );
        assert_eq!(
            err("host:syslog"),
            "port \"syslog\" is not a number from 1 to 65535"
        );
        assert_eq!(
            err(":514"),
            "missing host before the port (write localhost:514)"
        );
        assert_eq!(
            err("[::1:514"),
            "\"[::1:514\" has an unclosed bracket (write [::1]:514)"
        );
        assert_eq!(
            err("::1]:514"),
            "\"::1]:514\" has unbalanced brackets (write [::1]:514)"
        );
        assert_eq!(
            err("::1"),
            "\"::1\": put an IPv6 address in brackets, like [::1]:514"
        );
        assert_eq!(
            err("[nope]:514"),
            "\"nope\" in brackets is not an IPv6 address"
        );
        assert_eq!(
            err("[::1]514"),
            "\"[::1]514\": expected :PORT after the brackets"
        );
        assert_eq!(
            err("my host:514"),
            "\"my host\" is not a host name or IP address"
        );
    }
}
