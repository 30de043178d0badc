//! Tests of the syslog sink: settings validation, and real receivers on loopback, unix sockets
//! and TLS. Message formats and framing are tested without sockets in [`formats`].

mod formats;
mod local;
mod props;
mod relp;
mod stream;
mod tcp;
mod tls;
mod udp;

use std::path::{Path, PathBuf};
use std::time::Duration;

use broker_core::{EventType, SinkErrorKind};
use tokio::io::AsyncReadExt;
use tokio::net::{UdpSocket, UnixDatagram, UnixListener};

use super::*;
use format::MessageSettings;
use framing::Framing;

const WAIT: Duration = Duration::from_secs(5);

/// Awaits `io` for at most [`WAIT`]; panics if it takes longer or fails.
async fn within<T>(io: impl std::future::Future<Output = std::io::Result<T>>) -> T {
    tokio::time::timeout(WAIT, io).await.unwrap().unwrap()
}

fn event(json: &str) -> Event {
    Event::from_json(EventType::Alerts, json).unwrap()
}

fn events() -> Vec<Event> {
    vec![
        event(r#"{"id": "e1", "x": "é"}"#),
        event(r#"{"id": "e2", "n": 1.50}"#),
        event(r#"{"type": "t", "id": 3}"#),
    ]
}

/// The bytes each of [`events`] must arrive as in a datagram or NUL frame, for
/// `local0`/`info`/`procustodibus` in the legacy format.
fn expected() -> Vec<Vec<u8>> {
    vec![
        b"<134>procustodibus: {\"id\":\"e1\",\"x\":\"\\u00e9\"}\0".to_vec(),
        b"<134>procustodibus: {\"id\":\"e2\",\"n\":1.50}\0".to_vec(),
        b"<134>procustodibus: {\"type\":\"t\",\"id\":3}\0".to_vec(),
    ]
}

/// An event whose message is `size` bytes or a little more.
fn big_event(id: &str, size: usize) -> Event {
    event(&format!(r#"{{"id":"{id}","pad":"{}"}}"#, "x".repeat(size)))
}

/// The size of `event`'s legacy datagram for `local0`/`info`/`procustodibus`, NUL included.
fn legacy_datagram_size(event: &Event) -> usize {
    "<134>procustodibus: ".len() + event.line().len() + 1
}

/// A sink built from these keys (they must be valid).
fn sink_with(pairs: &[(&str, &str)]) -> SyslogSink {
    let settings = PipeSettings::new("P", "/etc/b.conf", pairs);
    SyslogSink::from_settings(&settings).unwrap()
}

fn sink_to(socket: &str) -> SyslogSink {
    sink_with(&[("Socket", socket)])
}

fn at_line(pairs: &[(&str, &str)]) -> PipeSettings {
    let mut settings = PipeSettings::new("MyPipe", "/etc/b.conf", pairs);
    settings.line = 3;
    for (i, s) in settings.settings.iter_mut().enumerate() {
        s.line = 4 + i;
    }
    settings
}

#[test]
fn defaults() {
    let sink = SyslogSink::from_settings(&PipeSettings::new("P", "/etc/b.conf", &[])).unwrap();
    assert_eq!(sink.endpoint().to_string(), "localhost:514");
    assert_eq!(sink.endpoint().protocol(), config::Protocol::Udp);
    let message = &sink.config().message;
    let default = MessageSettings::default();
    assert_eq!(
        (message.facility, message.priority, &message.tag),
        (default.facility, default.priority, &default.tag)
    );
    assert_eq!(message.facility.code(), 16);
    assert_eq!(message.priority.code(), 6);
    assert_eq!(message.tag, "procustodibus");
    assert_eq!(message.hostname, format::system_hostname());
    assert_eq!(message.procid, std::process::id());
    assert_eq!(sink.config().format, format::Format::Legacy);
    assert_eq!(sink.config().max_size(), Some(65507));
}

#[test]
fn settings_are_read_case_insensitively() {
    let settings = at_line(&[
        ("socket", "/dev/log"),
        ("FACILITY", "Auth"),
        ("Priority", "EMERG"),
        ("Tag", "broker"),
    ]);
    let sink = SyslogSink::from_settings(&settings).unwrap();
    assert_eq!(sink.endpoint(), &Endpoint::Local(PathBuf::from("/dev/log")));
    let message = &sink.config().message;
    assert_eq!(format::pri(message.facility, message.priority), 32);
    assert_eq!(message.tag, "broker");
}

#[test]
fn unknown_facility_names_file_line_pipe_and_key() {
    let err = SyslogSink::from_settings(&at_line(&[("Facility", "nope")])).unwrap_err();
    let want =
        "/etc/b.conf line 4: pipe MyPipe: Facility: unknown facility \"nope\" (expected one \
        of: kern, user, mail, daemon, auth, security, syslog, lpr, news, uucp, cron, authpriv, \
        ftp, ntp, audit, console, solaris-cron, local0, local1, local2, local3, local4, local5, \
        local6, local7)";
    assert_eq!(err.message, want);
}

#[test]
fn unknown_priority_names_file_line_pipe_and_key() {
    let err =
        SyslogSink::from_settings(&at_line(&[("Tag", "t"), ("priority", "loud")])).unwrap_err();
    assert!(
        err.message.starts_with(
            "/etc/b.conf line 5: pipe MyPipe: priority: unknown priority \"loud\" (expected one of: emerg,"
        ),
        "{}",
        err.message
    );
}

#[test]
fn bad_sockets_name_file_line_pipe_and_key() {
    let cases = [
        ("localhost:0", "port \"0\" is not a number from 1 to 65535"),
        (
            "localhost:99999",
            "port \"99999\" is not a number from 1 to 65535",
        ),
        (
            "localhost:syslog",
            "port \"syslog\" is not a number from 1 to 65535",
        ),
        (
            "[::1:514",
            "\"[::1:514\" has an unclosed bracket (write [::1]:514)",
        ),
        (
            "::1:514",
            "\"::1:514\": put an IPv6 address in brackets, like [::1]:514",
        ),
        ("", "empty: give host:port or the path of a local socket"),
    ];
    for (value, why) in cases {
        let err = SyslogSink::from_settings(&at_line(&[("Socket", value)])).unwrap_err();
        assert_eq!(
            err.message,
            format!("/etc/b.conf line 4: pipe MyPipe: Socket: {why}")
        );
    }
}

#[test]
fn bad_tag_is_rejected() {
    let err = SyslogSink::from_settings(&at_line(&[("Tag", "a\0b")])).unwrap_err();
    assert_eq!(
        err.message,
        "/etc/b.conf line 4: pipe MyPipe: Tag: tag \"a\\0b\" contains the control character '\\0'"
    );
}

#[test]
fn registered_builder_does_no_io() {
    let plugin = broker_core::registry::find("syslog").unwrap();
    let keys: Vec<String> = plugin
        .keys
        .iter()
        .map(|k| broker_core::config::ini::canonical_key(k.name))
        .collect();
    assert_eq!(
        keys,
        [
            "socket",
            "protocol",
            "format",
            "framing",
            "facility",
            "priority",
            "tag",
            "hostname",
            "maxsize",
            "rate",
            "window",
            "ca",
            "cert",
            "key",
            "servername"
        ]
    );
    let settings = at_line(&[("Socket", "no-such-host.invalid:514")]);
    assert!((plugin.build)(&settings).is_ok());
    let settings = at_line(&[("Socket", "/no/such/socket")]);
    assert!((plugin.build)(&settings).is_ok());
    let settings = at_line(&[
        ("Socket", "no-such-host.invalid"),
        ("Protocol", "tls"),
        ("CA", "/no/such/ca.pem"),
        ("Cert", "/no/such/cert.pem"),
        ("Key", "/no/such/key.pem"),
    ]);
    assert!((plugin.build)(&settings).is_ok());
}

#[test]
fn the_config_loader_knows_every_key_by_its_written_name() {
    let text = "[Broker]\nBroker = b\n\
        [Pipe.Siem]\nFrom = alerts\nTo = syslog\nprotocol = tls\nSOCKET = logs.example.com\n\
        Format = rfc5424\nframing = lf\nHostname = web1\nmax_size = 8K\nca = /etc/ca.pem\n\
        Cert = /etc/c.pem\nKey = /etc/k.pem\nServerName = logs.example.com\n";
    let config = broker_core::config::BrokerConfig::parse(text, Path::new("/etc/b.conf"));
    assert!(config.is_ok(), "{:?}", config.err());
    let text = "[Broker]\nBroker = b\n[Pipe.Siem]\nFrom = alerts\nTo = syslog\nMaxSise = 1\n";
    let err = broker_core::config::BrokerConfig::parse(text, Path::new("/etc/b.conf"))
        .err()
        .unwrap();
    assert!(
        err.message.ends_with(
            "pipe Siem: unknown key MaxSise for sink syslog (expected one of: From, Max, To, \
             Socket, Protocol, Format, Framing, Facility, Priority, Tag, Hostname, MaxSize, Rate, \
             Window, CA, Cert, Key, ServerName)"
        ),
        "{}",
        err.message
    );
}
