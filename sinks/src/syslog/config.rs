//! A syslog pipe's settings, read and checked from its `[Pipe.NAME]` keys without any I/O.
//!
//! | key | default |
//! | --- | --- |
//! | `Socket` | `localhost` (port 514, or 6514 for TLS); `/dev/log` for `Protocol = unix` |
//! | `Protocol` | from `Socket`: `udp` for `host:port`, `unix` for a path |
//! | `Format` | `legacy` |
//! | `Framing` | `octet` on TCP and TLS; on a local stream socket `nul` (legacy) or `octet` |
//! | `Facility`, `Priority`, `Tag` | `local0`, `info`, `procustodibus` |
//! | `Hostname` | the system's short host name |
//! | `MaxSize` | 65507 over UDP; no limit otherwise (`64K`, `1M`: at most 256M) |
//! | `Rate` | UDP only: datagrams per second, 2000 (`0`: no pacing; at most 1000000) |
//! | `Window` | RELP only: 1024 unanswered messages at most (1 to 65536) |
//! | `CA`, `Cert`, `Key`, `ServerName` | TLS and RELP over TLS only: the system roots, no client certificate, the host |

use std::fmt;
use std::path::PathBuf;

use broker_core::config::{ConfigError, Keys, PipeSettings};

use super::address::{host_port, Socket, DEFAULT_HOST};
use super::format::{check_hostname, check_tag, system_hostname, Format, MessageSettings};
use super::framing::Framing;
use super::names::{Facility, Priority};
use super::transport::relp::{DEFAULT_WINDOW, MAX_WINDOW, RELP_PORT};
use crate::util::tls::{self, TlsSettings};

/// The syslog port over UDP and TCP.
pub const SYSLOG_PORT: u16 = 514;
/// The syslog port over TLS (RFC 5425).
pub const SYSLOG_TLS_PORT: u16 = 6514;
/// The largest UDP payload an IPv4 datagram can carry, the default `MaxSize` over UDP.
pub const UDP_MAX_SIZE: usize = 65507;
/// The default `Socket` of `Protocol = unix`.
pub const DEFAULT_LOCAL_SOCKET: &str = "/dev/log";

broker_core::keyword_enum! {
    /// How messages travel (the `Protocol` key).
    pub enum Protocol {
        /// One datagram per message to `host:port`.
        Udp = "udp",
        /// A TCP connection to `host:port`, messages in frames.
        Tcp = "tcp",
        /// A TLS connection to `host:port` (RFC 5425), messages in frames.
        Tls = "tls",
        /// A local socket: datagram if it is one, else stream.
        Unix = "unix",
        /// RELP over TCP to `host:port`: every message acknowledged by the receiver.
        Relp = "relp",
        /// RELP over TLS to `host:port`.
        RelpTls = "relp-tls",
    }
}

impl Protocol {
    /// Whether this is RELP, over TCP or TLS.
    pub fn is_relp(self) -> bool {
        matches!(self, Protocol::Relp | Protocol::RelpTls)
    }

    /// Whether the connection is TLS (the TLS keys apply).
    pub fn is_tls(self) -> bool {
        matches!(self, Protocol::Tls | Protocol::RelpTls)
    }
}

/// Where messages go and how: a protocol with its address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// UDP to a host and port.
    Udp {
        /// Host name or IP address (IPv6 without brackets).
        host: String,
        /// UDP port.
        port: u16,
    },
    /// TCP to a host and port.
    Tcp {
        /// Host name or IP address (IPv6 without brackets).
        host: String,
        /// TCP port.
        port: u16,
    },
    /// TLS to a host and port.
    Tls {
        /// Host name or IP address (IPv6 without brackets).
        host: String,
        /// TCP port.
        port: u16,
    },
    /// A local (unix) socket.
    Local(PathBuf),
    /// RELP to a host and port, over TCP or TLS.
    Relp {
        /// Host name or IP address (IPv6 without brackets).
        host: String,
        /// TCP port.
        port: u16,
        /// Whether the connection is TLS (`relp-tls`).
        tls: bool,
    },
}

impl Endpoint {
    /// The protocol of this endpoint.
    pub fn protocol(&self) -> Protocol {
        match self {
            Endpoint::Udp { .. } => Protocol::Udp,
            Endpoint::Tcp { .. } => Protocol::Tcp,
            Endpoint::Tls { .. } => Protocol::Tls,
            Endpoint::Local(_) => Protocol::Unix,
            Endpoint::Relp { tls: false, .. } => Protocol::Relp,
            Endpoint::Relp { tls: true, .. } => Protocol::RelpTls,
        }
    }
}

impl fmt::Display for Endpoint {
    /// `host:port` (`[::1]:514`) or the socket's path.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Udp { host, port }
            | Endpoint::Tcp { host, port }
            | Endpoint::Tls { host, port }
            | Endpoint::Relp { host, port, .. } => f.write_str(&host_port(host, *port)),
            Endpoint::Local(path) => write!(f, "{}", path.display()),
        }
    }
}

/// Every setting of a syslog pipe, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyslogConfig {
    /// Where messages go.
    pub endpoint: Endpoint,
    /// How each message is laid out.
    pub format: Format,
    /// `Framing` as given; see [`SyslogConfig::stream_framing`] for what a stream uses.
    pub framing: Option<Framing>,
    /// `MaxSize` as given; see [`SyslogConfig::max_size`] for the limit in force.
    pub max_size: Option<usize>,
    /// `Rate`: UDP datagrams per second at most (0: no pacing).
    pub rate: u32,
    /// Facility, priority, tag, host name and process id.
    pub message: MessageSettings,
    /// The TLS keys (only with `Protocol = tls` or `relp-tls`).
    pub tls: TlsSettings,
    /// `Window`: RELP messages unanswered at most (RELP only).
    pub window: usize,
}

/// UDP datagrams per second by default: a burst faster than the receiver reads overflows its
/// receive buffer, and UDP loses what does not fit.
pub const DEFAULT_RATE: u32 = 2000;

/// The largest `Rate`.
pub const MAX_RATE: u32 = 1_000_000;

/// The largest `MaxSize`: far above what any syslog receiver takes in one message.
pub const MAX_MAX_SIZE: usize = 256 << 20;

impl SyslogConfig {
    /// Reads and checks a pipe's keys (all optional). Errors name the file, line, pipe and key.
    pub fn from_settings(settings: &PipeSettings) -> Result<Self, ConfigError> {
        let keys = settings.keys(super::KEYS);
        let endpoint = endpoint(&keys, keys.parse("Protocol")?)?;
        let protocol = endpoint.protocol();
        let format: Format = keys.parse_or("Format", Format::Legacy)?;
        if protocol.is_relp() && keys.has("Framing") {
            return Err(keys.error(
                "Framing",
                format!("does not apply to Protocol = {protocol}: RELP frames each message itself"),
            ));
        }
        if protocol == Protocol::Udp && keys.has("Framing") {
            return Err(keys.error(
                "Framing",
                "applies to streams only (tcp, tls or a local stream socket); over udp each \
                 message is one datagram",
            ));
        }
        Ok(SyslogConfig {
            endpoint,
            format,
            framing: keys.parse("Framing")?,
            max_size: keys.optional_size("MaxSize", 1..=MAX_MAX_SIZE)?,
            rate: keys
                .number("Rate", 0..=MAX_RATE, "datagrams per second")?
                .unwrap_or(DEFAULT_RATE),
            message: message_settings(&keys, format)?,
            tls: tls_settings(&keys, protocol)?,
            window: relp_window(&keys, protocol)?,
        })
    }

    /// The framing on a stream: `Framing` if given, else `octet` over TCP and TLS (RFC 5425),
    /// and on a local stream socket `nul` for the legacy format, `octet` for the RFC formats.
    pub fn stream_framing(&self) -> Framing {
        match (self.framing, self.endpoint.protocol()) {
            (Some(framing), _) => framing,
            (None, Protocol::Unix) => Framing::local_stream_default(self.format),
            (None, _) => Framing::Octet,
        }
    }

    /// The largest message sent, in bytes: `MaxSize` if given, else 65507 over UDP (what an
    /// IPv4 datagram carries) and no limit otherwise.
    pub fn max_size(&self) -> Option<usize> {
        match (self.max_size, self.endpoint.protocol()) {
            (Some(max), _) => Some(max),
            (None, Protocol::Udp) => Some(UDP_MAX_SIZE),
            (None, _) => None,
        }
    }
}

/// `Socket` and `Protocol` together: the protocol from `Socket`'s form unless given, and the
/// default port of the protocol when `Socket` has none.
fn endpoint(keys: &Keys, protocol: Option<Protocol>) -> Result<Endpoint, ConfigError> {
    let socket = match keys.parse::<Socket>("Socket")? {
        Some(socket) => socket,
        None if protocol == Some(Protocol::Unix) => Socket::Local(DEFAULT_LOCAL_SOCKET.into()),
        None => Socket::Host {
            host: DEFAULT_HOST.to_string(),
            port: None,
        },
    };
    match (socket, protocol) {
        (Socket::Local(path), None | Some(Protocol::Unix)) => Ok(Endpoint::Local(path)),
        (Socket::Local(_), Some(protocol)) => Err(keys.error(
            "Socket",
            format!("Protocol = {protocol} needs host:port, not the path of a local socket"),
        )),
        (Socket::Host { .. }, Some(Protocol::Unix)) => Err(keys.error(
            "Socket",
            "Protocol = unix needs the path of a local socket, such as /dev/log",
        )),
        (Socket::Host { host, port }, None | Some(Protocol::Udp)) => Ok(Endpoint::Udp {
            host,
            port: port.unwrap_or(SYSLOG_PORT),
        }),
        (Socket::Host { host, port }, Some(Protocol::Tcp)) => Ok(Endpoint::Tcp {
            host,
            port: port.unwrap_or(SYSLOG_PORT),
        }),
        (Socket::Host { host, port }, Some(Protocol::Tls)) => Ok(Endpoint::Tls {
            host,
            port: port.unwrap_or(SYSLOG_TLS_PORT),
        }),
        (Socket::Host { host, port }, Some(protocol @ (Protocol::Relp | Protocol::RelpTls))) => {
            Ok(Endpoint::Relp {
                host,
                port: port.unwrap_or(RELP_PORT),
                tls: protocol == Protocol::RelpTls,
            })
        }
    }
}

/// `Window`: only with RELP; 1 to [`MAX_WINDOW`], default [`DEFAULT_WINDOW`].
fn relp_window(keys: &Keys, protocol: Protocol) -> Result<usize, ConfigError> {
    if !protocol.is_relp() && keys.has("Window") {
        return Err(keys.error(
            "Window",
            format!("applies only to Protocol = relp or relp-tls (this pipe uses {protocol})"),
        ));
    }
    Ok(keys
        .number("Window", 1..=MAX_WINDOW, "messages")?
        .unwrap_or(DEFAULT_WINDOW))
}

/// `Facility`, `Priority`, `Tag` (checked for `format`) and `Hostname`.
fn message_settings(keys: &Keys, format: Format) -> Result<MessageSettings, ConfigError> {
    let facility = keys.parse_or("Facility", Facility::LOCAL0)?;
    let priority = keys.parse_or("Priority", Priority::INFO)?;
    let tag = keys.value("Tag").unwrap_or("procustodibus").to_string();
    check_tag(&tag, format).map_err(|e| keys.error("Tag", e))?;
    let hostname = match keys.value("Hostname") {
        Some(name) => {
            check_hostname(name).map_err(|e| keys.error("Hostname", e))?;
            name.to_string()
        }
        None => system_hostname(),
    };
    Ok(MessageSettings {
        facility,
        priority,
        tag,
        hostname,
        procid: std::process::id(),
    })
}

/// `CA`, `Cert`, `Key` and `ServerName`: only with `Protocol = tls` or `relp-tls`; `Cert` and
/// `Key` together.
fn tls_settings(keys: &Keys, protocol: Protocol) -> Result<TlsSettings, ConfigError> {
    if !protocol.is_tls() {
        if let Some(key) = tls::KEYS.iter().find(|k| keys.has(k.name)) {
            return Err(keys.error(
                key.name,
                format!("applies only to Protocol = tls or relp-tls (this pipe uses {protocol})"),
            ));
        }
        return Ok(TlsSettings::default());
    }
    TlsSettings::from_keys(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Result<SyslogConfig, String> {
        SyslogConfig::from_settings(&PipeSettings::new("P", "/etc/b.conf", pairs))
            .map_err(|e| e.message)
    }

    fn endpoint_of(pairs: &[(&str, &str)]) -> String {
        let c = config(pairs).unwrap();
        format!("{} {}", c.endpoint.protocol(), c.endpoint)
    }

    #[test]
    fn protocols_and_default_ports() {
        assert_eq!(endpoint_of(&[]), "udp localhost:514");
        assert_eq!(endpoint_of(&[("Socket", "/dev/log")]), "unix /dev/log");
        assert_eq!(endpoint_of(&[("Protocol", "unix")]), "unix /dev/log");
        assert_eq!(endpoint_of(&[("Protocol", "TCP")]), "tcp localhost:514");
        assert_eq!(endpoint_of(&[("Protocol", "tls")]), "tls localhost:6514");
        assert_eq!(
            endpoint_of(&[("Protocol", "tls"), ("Socket", "[::1]")]),
            "tls [::1]:6514"
        );
        assert_eq!(
            endpoint_of(&[("Protocol", "tcp"), ("Socket", "h:10514")]),
            "tcp h:10514"
        );
        assert_eq!(endpoint_of(&[("Socket", "h")]), "udp h:514");
        assert_eq!(
            endpoint_of(&[("protocol", "udp"), ("socket", "h:1")]),
            "udp h:1"
        );
    }

    #[test]
    fn protocol_and_socket_must_agree() {
        assert_eq!(
            config(&[("Protocol", "tcp"), ("Socket", "/dev/log")]).unwrap_err(),
            "/etc/b.conf: pipe P: Socket: Protocol = tcp needs host:port, not the path \
             of a local socket"
        );
        assert_eq!(
            config(&[("Protocol", "unix"), ("Socket", "h:514")]).unwrap_err(),
            "/etc/b.conf: pipe P: Socket: Protocol = unix needs the path of a local \
             socket, such as /dev/log"
        );
        assert_eq!(
            config(&[("Protocol", "quic")]).unwrap_err(),
            "/etc/b.conf: pipe P: Protocol: unknown protocol \"quic\" (expected one of: \
             udp, tcp, tls, unix, relp, relp-tls)"
        );
    }

    #[test]
    fn framing_defaults() {
        let framing = |pairs: &[(&str, &str)]| config(pairs).unwrap().stream_framing();
        assert_eq!(framing(&[("Protocol", "tcp")]), Framing::Octet);
        assert_eq!(framing(&[("Protocol", "tls")]), Framing::Octet);
        assert_eq!(framing(&[("Socket", "/dev/log")]), Framing::Nul);
        assert_eq!(
            framing(&[("Socket", "/dev/log"), ("Format", "rfc5424")]),
            Framing::Octet
        );
        assert_eq!(
            framing(&[("Socket", "/dev/log"), ("Format", "rfc3164")]),
            Framing::Octet
        );
        assert_eq!(
            framing(&[("Protocol", "tcp"), ("Framing", "LF")]),
            Framing::Lf
        );
        assert_eq!(
            config(&[("Framing", "lf")]).unwrap_err(),
            "/etc/b.conf: pipe P: Framing: applies to streams only (tcp, tls or a local \
             stream socket); over udp each message is one datagram"
        );
    }

    #[test]
    fn max_sizes() {
        let max = |pairs: &[(&str, &str)]| config(pairs).unwrap().max_size();
        assert_eq!(max(&[]), Some(65507));
        assert_eq!(max(&[("Protocol", "tcp")]), None);
        assert_eq!(max(&[("Socket", "/dev/log")]), None);
        assert_eq!(max(&[("MaxSize", "1024")]), Some(1024));
        assert_eq!(max(&[("Protocol", "tls"), ("MaxSize", "64k")]), Some(65536));
        assert_eq!(
            max(&[("Protocol", "tcp"), ("MaxSize", "1M")]),
            Some(1 << 20)
        );
        for bad in ["", "x", "-1", "1.5K", "1G", "99999999999999999999999"] {
            assert!(config(&[("MaxSize", bad)]).is_err(), "{bad}");
        }
        assert_eq!(
            config(&[("MaxSize", "0")]).unwrap_err(),
            "/etc/b.conf: pipe P: MaxSize: must be at least 1 byte"
        );
    }

    #[test]
    fn rate_and_max_size_have_limits() {
        assert_eq!(config(&[]).unwrap().rate, DEFAULT_RATE);
        assert_eq!(config(&[("Rate", "0")]).unwrap().rate, 0);
        assert_eq!(config(&[("Rate", "1000000")]).unwrap().rate, MAX_RATE);
        for bad in ["fast", "-1", "1000001"] {
            assert_eq!(
                config(&[("Rate", bad)]).unwrap_err(),
                format!(
                    "/etc/b.conf: pipe P: Rate: {bad:?} is not a number of datagrams per second \
                     from 0 to 1000000"
                )
            );
        }
        let max = |text: &str| config(&[("Protocol", "tcp"), ("MaxSize", text)]);
        assert_eq!(max("256M").unwrap().max_size(), Some(256 << 20));
        assert_eq!(
            max("257M").unwrap_err(),
            "/etc/b.conf: pipe P: MaxSize: must be at most 256M"
        );
    }

    #[test]
    fn message_settings_by_format() {
        let c = config(&[("Hostname", "web1"), ("Tag", "t")]).unwrap();
        assert_eq!(c.message.hostname, "web1");
        assert_eq!(c.message.procid, std::process::id());
        assert_eq!(c.format, Format::Legacy);
        let c = config(&[]).unwrap();
        assert_eq!(c.message.hostname, system_hostname());
        assert_eq!(c.message.tag, "procustodibus");
        assert!(config(&[("Tag", "my tag")]).is_ok());
        assert!(config(&[("Tag", "my tag"), ("Format", "rfc5424")]).is_err());
        assert!(config(&[("Tag", &"t".repeat(33)), ("Format", "rfc3164")]).is_err());
        assert_eq!(
            config(&[("Hostname", "a b")]).unwrap_err(),
            "/etc/b.conf: pipe P: Hostname: host name \"a b\" contains ' ' (printable \
             ASCII without spaces only)"
        );
        assert_eq!(
            config(&[("Format", "cef")]).unwrap_err(),
            "/etc/b.conf: pipe P: Format: unknown format \"cef\" (expected one of: \
             legacy, rfc3164, rfc5424)"
        );
    }

    #[test]
    fn tls_keys() {
        let c = config(&[
            ("Protocol", "tls"),
            ("CA", "/etc/ca.pem"),
            ("Cert", "/etc/c.pem"),
            ("Key", "/etc/k.pem"),
            ("ServerName", "logs.example.com"),
        ])
        .unwrap();
        assert_eq!(c.tls.ca, Some(PathBuf::from("/etc/ca.pem")));
        assert_eq!(c.tls.server_name.as_deref(), Some("logs.example.com"));
        assert_eq!(
            config(&[("CA", "/etc/ca.pem")]).unwrap_err(),
            "/etc/b.conf: pipe P: CA: applies only to Protocol = tls or relp-tls (this pipe \
             uses udp)"
        );
        assert_eq!(
            config(&[("Protocol", "tls"), ("Cert", "/c")]).unwrap_err(),
            "/etc/b.conf: pipe P: Cert: needs Key, the certificate's private key"
        );
        assert_eq!(
            config(&[("Protocol", "tls"), ("Key", "/k")]).unwrap_err(),
            "/etc/b.conf: pipe P: Key: needs Cert, the client certificate"
        );
        assert!(config(&[("Protocol", "tls"), ("ServerName", "a b")]).is_err());
        assert!(config(&[("Protocol", "tls"), ("ServerName", "10.0.0.1")]).is_ok());
        assert!(config(&[("Protocol", "tls"), ("CA", "")]).is_err());
    }

    #[test]
    fn relp_keys() {
        assert_eq!(endpoint_of(&[("Protocol", "relp")]), "relp localhost:2514");
        assert_eq!(
            endpoint_of(&[("Protocol", "RELP-TLS"), ("Socket", "h:6514")]),
            "relp-tls h:6514"
        );
        assert_eq!(config(&[("Protocol", "relp")]).unwrap().window, 1024);
        let c = config(&[
            ("Protocol", "relp-tls"),
            ("Window", "16"),
            ("CA", "/ca.pem"),
        ])
        .unwrap();
        assert_eq!((c.window, c.tls.ca), (16, Some(PathBuf::from("/ca.pem"))));
        assert_eq!(
            config(&[("Protocol", "relp"), ("Framing", "lf")]).unwrap_err(),
            "/etc/b.conf: pipe P: Framing: does not apply to Protocol = relp: RELP frames each \
             message itself"
        );
        assert_eq!(
            config(&[("Protocol", "tcp"), ("Window", "8")]).unwrap_err(),
            "/etc/b.conf: pipe P: Window: applies only to Protocol = relp or relp-tls (this \
             pipe uses tcp)"
        );
        for bad in ["0", "x", "-1", "65537"] {
            assert_eq!(
                config(&[("Protocol", "relp"), ("Window", bad)]).unwrap_err(),
                format!(
                    "/etc/b.conf: pipe P: Window: {bad:?} is not a number of messages from 1 \
                     to 65536"
                )
            );
        }
        assert!(config(&[("Protocol", "relp"), ("CA", "/ca.pem")]).is_err());
        assert!(config(&[("Protocol", "relp"), ("Socket", "/dev/log")]).is_err());
    }
}
