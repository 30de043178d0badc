//! A real rsyslog for the end-to-end tests: `rsyslogd` (Debian packages `rsyslog` and
//! `rsyslog-gnutls`, and `rsyslog-relp` for RELP, which `scripts/test` installs) started in the
//! foreground with its own config, pid file, work directory and output file in a temporary
//! directory, listening on 127.0.0.1 only:
//! UDP, TCP (octet counting or LF framing, as rsyslog detects) and TLS (GnuTLS, with a CA and a
//! server certificate made for the test by rcgen). It loads no `imuxsock`, so it never touches the
//! machine's `/dev/log`, and it keeps its own messages to itself (`processInternalMessages`).
//!
//! [`Rsyslog::start_stock_udp`] starts instead one plain `imudp` listener as a stock rsyslog has it
//! (the kernel's default receive buffer, no `rcvBufSize`), only with the larger message size an
//! operator sets for the broker's events.
//!
//! [`Rsyslog::start_relp`] starts instead RELP listeners (`imrelp`, Debian package `rsyslog-relp`):
//! plain and TLS (which `imrelp` runs with GnuTLS and a required client certificate, signed by the
//! test CA: [`Certificates::client_cert`]), and a plain `imtcp` beside them for comparisons. Its
//! main queue is direct: a message is written to the output file before `imrelp` answers `200`
//! for it, so a test can kill it ([`Rsyslog::restart`]) or stop it ([`Rsyslog::pause`]) and still
//! expect every answered message in the file.
//!
//! Every message received is written to one file as a JSON object per line with the fields rsyslog
//! parsed ([`Received`]), so a test can check what a real syslog daemon made of the broker's bytes.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::net::{TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use broker_sim::Simulator;

use crate::expected_lines;

/// Queues 3 generated alerts, `tricky` (a hand-written alert) and `authn` generated log_authn
/// events; returns the raw alerts and the raw log_authn events, in queue order.
pub fn enqueue_events(sim: &Simulator, tricky: &str, authn: usize) -> (Vec<String>, Vec<String>) {
    let mut alerts = sim.enqueue_generated("alerts", 3).expect("enqueue alerts");
    sim.enqueue("alerts", tricky).expect("enqueue tricky alert");
    alerts.push(tricky.to_string());
    let authn = sim
        .enqueue_generated("log_authn", authn)
        .expect("enqueue log_authn");
    (alerts, authn)
}

/// [`expected_lines`] in batches of at most about 40 KB: it writes all its input to python3
/// before reading any output, so a batch whose output outgrows a pipe buffer (64 KB) never
/// finishes.
pub fn expected_lines_chunked(raws: &[String]) -> Vec<String> {
    let mut lines = Vec::new();
    let mut start = 0;
    let mut size = 0;
    for (i, raw) in raws.iter().enumerate() {
        if size > 0 && size + raw.len() > 40_000 {
            lines.extend(expected_lines(&raws[start..i]));
            start = i;
            size = 0;
        }
        size += raw.len();
    }
    lines.extend(expected_lines(&raws[start..]));
    lines
}

/// Where the Debian package puts the daemon (also looked up on `PATH`).
const RSYSLOGD: &str = "/usr/sbin/rsyslogd";

/// How long rsyslogd may take to open its listeners.
const START_LIMIT: Duration = Duration::from_secs(15);

/// One of the listeners.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Input {
    /// imudp on 127.0.0.1.
    Udp,
    /// imtcp on 127.0.0.1, plain.
    Tcp,
    /// imtcp on 127.0.0.1 with the GnuTLS stream driver (server authentication only).
    Tls,
    /// imrelp on 127.0.0.1, plain.
    Relp,
    /// imrelp on 127.0.0.1 with TLS (a client certificate signed by the test CA required).
    RelpTls,
}

impl Input {
    /// The `name` the input has in rsyslog's config, which rsyslog reports as `inputname`.
    pub fn name(self) -> &'static str {
        match self {
            Input::Udp => "udp",
            Input::Tcp => "tcp",
            Input::Tls => "tls",
            Input::Relp => "relp",
            Input::RelpTls => "relptls",
        }
    }
}

/// One message as rsyslog stored it: its parsed properties (rsyslog's names in the comments).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Received {
    /// `inputname`: `udp`, `tcp` or `tls`.
    pub input: String,
    /// `fromhost-ip`.
    pub from_ip: String,
    /// `pri`.
    pub pri: u8,
    /// `protocol-version`: `1` for an RFC 5424 message, `0` for any other.
    pub protocol_version: String,
    /// `timereported` as RFC 3339 (what the message said, or the receive time without one).
    pub time_reported: String,
    /// `timegenerated` as RFC 3339 (when rsyslog received it).
    pub time_generated: String,
    /// `hostname`.
    pub hostname: String,
    /// `app-name`.
    pub app_name: String,
    /// `procid`.
    pub procid: String,
    /// `msgid`.
    pub msgid: String,
    /// `syslogtag`.
    pub tag: String,
    /// `structured-data`.
    pub structured_data: String,
    /// `msg`.
    pub msg: String,
    /// `rawmsg`: the message as received, without the transport's framing.
    pub raw: String,
}

impl Received {
    /// `msg` without the one space rsyslog keeps after an RFC 3164 tag's colon.
    pub fn body(&self) -> &str {
        if self.protocol_version == "1" {
            &self.msg
        } else {
            self.msg.strip_prefix(' ').unwrap_or(&self.msg)
        }
    }
}

/// The properties written per message, as `(JSON name, rsyslog property, date format)`.
const FIELDS: &[(&str, &str, &str)] = &[
    ("input", "inputname", ""),
    ("from_ip", "fromhost-ip", ""),
    ("pri", "pri", ""),
    ("protocol_version", "protocol-version", ""),
    ("time_reported", "timereported", "rfc3339"),
    ("time_generated", "timegenerated", "rfc3339"),
    ("hostname", "hostname", ""),
    ("app_name", "app-name", ""),
    ("procid", "procid", ""),
    ("msgid", "msgid", ""),
    ("tag", "syslogtag", ""),
    ("structured_data", "structured-data", ""),
    ("msg", "msg", ""),
    ("raw", "rawmsg", ""),
];

/// A CA and a server certificate signed by it, as PEM files in rsyslog's directory.
pub struct Certificates {
    /// The CA certificate (PEM): what a client's `CA =` names.
    pub ca: PathBuf,
    /// The CA certificate (DER), for a client built in the test.
    pub ca_der: Vec<u8>,
    /// The server certificate (PEM), for `127.0.0.1`, `::1` and `localhost`.
    pub cert: PathBuf,
    /// The server's private key (PEM, PKCS #8).
    pub key: PathBuf,
    /// A client certificate (PEM) signed by the CA, for `Cert =` (RELP over TLS requires one).
    pub client_cert: PathBuf,
    /// The client certificate's private key (PEM, PKCS #8), for `Key =`.
    pub client_key: PathBuf,
}

impl Certificates {
    /// Makes a CA ("Broker Test CA") and a leaf certificate it signs for the loopback names, and
    /// writes them to `dir`.
    pub fn generate(dir: &Path) -> Certificates {
        use rcgen::{
            BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
            KeyPair, KeyUsagePurpose,
        };
        let ca_key = KeyPair::generate().expect("generate the CA key");
        let mut ca_params = CertificateParams::new(Vec::new()).expect("CA parameters");
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "Broker Test CA");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca_params.self_signed(&ca_key).expect("self-sign the CA");
        let issuer = Issuer::new(ca_params, ca_key);

        let key = KeyPair::generate().expect("generate the server key");
        let mut params = CertificateParams::new(vec![
            "localhost".to_string(),
            "127.0.0.1".to_string(),
            "::1".to_string(),
        ])
        .expect("server parameters");
        params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let cert = params.signed_by(&key, &issuer).expect("sign the server");

        let client_key = KeyPair::generate().expect("generate the client key");
        let mut client_params =
            CertificateParams::new(vec!["broker.test".to_string()]).expect("client parameters");
        client_params
            .distinguished_name
            .push(DnType::CommonName, "broker.test");
        client_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        client_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let client_cert = client_params
            .signed_by(&client_key, &issuer)
            .expect("sign the client");

        let certs = Certificates {
            ca: dir.join("ca.pem"),
            ca_der: ca_cert.der().to_vec(),
            cert: dir.join("server-cert.pem"),
            key: dir.join("server-key.pem"),
            client_cert: dir.join("client-cert.pem"),
            client_key: dir.join("client-key.pem"),
        };
        std::fs::write(&certs.ca, ca_cert.pem()).expect("write ca.pem");
        std::fs::write(&certs.cert, cert.pem()).expect("write server-cert.pem");
        std::fs::write(&certs.key, key.serialize_pem()).expect("write server-key.pem");
        std::fs::write(&certs.client_cert, client_cert.pem()).expect("write client-cert.pem");
        std::fs::write(&certs.client_key, client_key.serialize_pem())
            .expect("write client-key.pem");
        certs
    }
}

/// Which listeners an rsyslogd opens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Listeners {
    /// UDP (with an 8 MB receive buffer), TCP and TLS.
    All,
    /// UDP alone, as a stock rsyslog has it: the kernel's default receive buffer.
    StockUdp,
    /// RELP plain and over TLS, and plain TCP (UDP too, unused); with a direct main queue, or
    /// (`direct: false`) rsyslog's default in-memory one.
    Relp { direct: bool },
}

/// A running rsyslogd with its files in a temporary directory; stopped (SIGTERM, then SIGKILL)
/// on drop.
pub struct Rsyslog {
    /// The temporary directory: rsyslog.conf, the pid file, the work directory, the certificates
    /// and the output files.
    pub dir: tempfile::TempDir,
    /// The CA and server certificates of the TLS listener.
    pub certs: Certificates,
    /// The UDP port on 127.0.0.1.
    pub udp_port: u16,
    /// The plain TCP port on 127.0.0.1.
    pub tcp_port: u16,
    /// The TLS port on 127.0.0.1.
    pub tls_port: u16,
    /// The plain RELP port on 127.0.0.1 (of [`Rsyslog::start_relp`]).
    pub relp_port: u16,
    /// The RELP over TLS port on 127.0.0.1 (of [`Rsyslog::start_relp`]).
    pub relp_tls_port: u16,
    listeners: Listeners,
    child: Child,
}

/// The path of `rsyslogd`, or a panic that says which package to install.
pub fn rsyslogd() -> PathBuf {
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("rsyslogd"))
            .find(|p| p.is_file())
    });
    let path = Path::new(RSYSLOGD);
    match on_path {
        Some(p) => p,
        None if path.is_file() => path.to_path_buf(),
        None => panic!(
            "rsyslogd is not installed: these tests need the Debian packages `rsyslog` and \
             `rsyslog-gnutls` (and `rsyslog-relp` for RELP; scripts/test installs them: apt-get \
             install rsyslog rsyslog-gnutls rsyslog-relp)"
        ),
    }
}

impl Rsyslog {
    /// Starts rsyslogd and waits until all three listeners are open. Ports are found by binding
    /// port 0 and handing the number to rsyslog; when another process takes one in between, it
    /// starts once more on new ports. Panics with rsyslog's own messages when it cannot start.
    pub fn start() -> Rsyslog {
        Self::start_with(Listeners::All)
    }

    /// Starts rsyslogd with only a UDP listener as a stock rsyslog has it: a plain `imudp` input
    /// with the kernel's default receive buffer. Its one change from the stock config is what an
    /// operator sets for the broker's events: `maxMessageSize` of 64k (the default 8k would cut
    /// an event of 10 KB). The TCP and TLS ports are not opened.
    pub fn start_stock_udp() -> Rsyslog {
        Self::start_with(Listeners::StockUdp)
    }

    /// Starts rsyslogd with RELP listeners, plain and over TLS, and a plain TCP one, all feeding
    /// the output file through a direct main queue (see the module docs). Panics with a hint at
    /// the package when `imrelp` is missing.
    pub fn start_relp() -> Rsyslog {
        Self::start_with(Listeners::Relp { direct: true })
    }

    /// The listeners of [`Rsyslog::start_relp`] with rsyslog's default main queue (in memory):
    /// `imrelp` answers a message once it is queued, before it is written.
    pub fn start_relp_queued() -> Rsyslog {
        Self::start_with(Listeners::Relp { direct: false })
    }

    /// Kills rsyslogd at once (SIGKILL: no goodbye to its clients) and starts it again on the
    /// same ports with the same config, appending to the same output file; waits until it
    /// listens again.
    pub fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let start = Instant::now();
        loop {
            self.child =
                spawn(rsyslogd().as_path(), self.dir.path()).unwrap_or_else(|e| panic!("{e}"));
            let deadline = Instant::now() + START_LIMIT;
            while Instant::now() < deadline && !self.listening() {
                if let Ok(Some(_)) = self.child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            if self.listening() {
                return;
            }
            // A port of the killed process may still be in use for a moment: try again.
            let _ = self.child.kill();
            let _ = self.child.wait();
            assert!(
                start.elapsed() < START_LIMIT * 2,
                "rsyslogd did not start again\n{}",
                self.diagnostics()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Stops rsyslogd (SIGSTOP): it reads and answers nothing until [`Rsyslog::resume`].
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Lets a paused rsyslogd go on (SIGCONT).
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(signal)
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill {signal} rsyslogd failed");
    }

    fn start_with(listeners: Listeners) -> Rsyslog {
        let path = rsyslogd();
        let mut attempt = 0;
        loop {
            attempt += 1;
            match Self::try_start(&path, listeners) {
                Ok(rsyslog) => return rsyslog,
                Err(Failure::PortTaken(why)) if attempt < 2 => {
                    eprintln!("rsyslogd: a port was taken, starting again: {why}");
                }
                Err(Failure::PortTaken(why) | Failure::Other(why)) => {
                    panic!("rsyslogd did not start: {why}")
                }
            }
        }
    }

    fn try_start(rsyslogd: &Path, listeners: Listeners) -> Result<Rsyslog, Failure> {
        let dir = tempfile::tempdir().expect("temp dir");
        let certs = Certificates::generate(dir.path());
        std::fs::create_dir(dir.path().join("work")).expect("work directory");
        let (udp_port, tcp_port, tls_port) = free_ports();
        let (relp_port, relp_tls_port) = match listeners {
            Listeners::Relp { .. } => free_ports_pair(),
            Listeners::All | Listeners::StockUdp => (0, 0),
        };
        let conf = dir.path().join("rsyslog.conf");
        let text = match listeners {
            Listeners::All => config(dir.path(), &certs, udp_port, tcp_port, tls_port),
            Listeners::StockUdp => stock_udp_config(dir.path(), udp_port),
            Listeners::Relp { direct } => {
                let ports = (tcp_port, relp_port, relp_tls_port);
                relp_config(dir.path(), &certs, ports, direct)
            }
        };
        std::fs::write(&conf, text).expect("write rsyslog.conf");
        let child = spawn(rsyslogd, dir.path()).map_err(Failure::Other)?;
        let mut rsyslog = Rsyslog {
            dir,
            certs,
            udp_port,
            tcp_port,
            tls_port,
            relp_port,
            relp_tls_port,
            listeners,
            child,
        };
        let start = Instant::now();
        loop {
            if let Ok(Some(status)) = rsyslog.child.try_wait() {
                return Err(Failure::Other(format!(
                    "it exited ({status})\n{}",
                    rsyslog.diagnostics()
                )));
            }
            if rsyslog.listening() {
                return Ok(rsyslog);
            }
            // rsyslog goes on without a listener it could not open: read why from its stderr.
            let errors =
                std::fs::read_to_string(rsyslog.path("rsyslogd.stderr")).unwrap_or_default();
            let taken = errors.contains("Address already in use")
                || errors.contains("Could not create udp listener")
                || errors.contains("Could not create tcp listener");
            let module = errors.contains("could not load module");
            let late = start.elapsed() > START_LIMIT;
            if taken || module || late {
                let what = if module {
                    "a module is missing (are the Debian packages rsyslog-gnutls and \
                     rsyslog-relp installed? scripts/test installs them)"
                        .to_string()
                } else if taken {
                    format!("a port was taken (udp {udp_port}, tcp {tcp_port}, tls {tls_port})")
                } else {
                    format!(
                        "its listeners (udp {udp_port}, tcp {tcp_port}, tls {tls_port}) are not \
                         all open after {START_LIMIT:?}"
                    )
                };
                let why = format!("{what}\n{}", rsyslog.diagnostics());
                rsyslog.stop();
                return Err(if taken && !module {
                    Failure::PortTaken(why)
                } else {
                    Failure::Other(why)
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether rsyslogd holds a UDP socket bound to its UDP port and (unless it listens on UDP
    /// alone) listening TCP sockets on its TCP and TLS ports (read from /proc, so no connection
    /// disturbs it).
    fn listening(&self) -> bool {
        let mine = socket_inodes(self.child.id());
        let has = |table: &str, port: u16, state: &str| {
            bound_inodes(table, port, state)
                .iter()
                .any(|i| mine.contains(i))
        };
        match self.listeners {
            Listeners::All => {
                has("udp", self.udp_port, "07")
                    && has("tcp", self.tcp_port, "0A")
                    && has("tcp", self.tls_port, "0A")
            }
            Listeners::StockUdp => has("udp", self.udp_port, "07"),
            Listeners::Relp { .. } => {
                has("tcp", self.tcp_port, "0A")
                    && has("tcp", self.relp_port, "0A")
                    && has("tcp", self.relp_tls_port, "0A")
            }
        }
    }

    /// `127.0.0.1:PORT` of an input, for a pipe's `Socket`.
    pub fn address(&self, input: Input) -> String {
        let port = match input {
            Input::Udp => self.udp_port,
            Input::Tcp => self.tcp_port,
            Input::Tls => self.tls_port,
            Input::Relp => self.relp_port,
            Input::RelpTls => self.relp_tls_port,
        };
        format!("127.0.0.1:{port}")
    }

    /// A path in rsyslog's directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The rsyslogd process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Every message written to the output file so far (complete lines only), in order.
    pub fn received(&self) -> Vec<Received> {
        self.received_from(0).0
    }

    /// The messages written to the output file from byte `offset` on (complete lines only), in
    /// order, and the offset after them: where the next call starts.
    pub fn received_from(&self, offset: u64) -> (Vec<Received>, u64) {
        use std::io::{Read, Seek, SeekFrom};
        let mut text = Vec::new();
        if let Ok(mut file) = std::fs::File::open(self.path("received.jsonl")) {
            file.seek(SeekFrom::Start(offset))
                .and_then(|_| file.read_to_end(&mut text))
                .expect("read rsyslog's output file");
        }
        let end = text.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        let received = String::from_utf8_lossy(&text[..end])
            .lines()
            .map(parse_line)
            .collect();
        (received, offset + end as u64)
    }

    /// The messages received on `input` so far.
    pub fn received_on(&self, input: Input) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| r.input == input.name())
            .collect()
    }

    /// Waits until at least `count` messages arrived on `input` (at most `limit`), then a little
    /// longer so that any message beyond them would show, and returns those of `input`.
    pub fn wait_for(&self, input: Input, count: usize, limit: Duration) -> Vec<Received> {
        let start = Instant::now();
        while self.received_on(input).len() < count && start.elapsed() < limit {
            std::thread::sleep(Duration::from_millis(50));
        }
        std::thread::sleep(Duration::from_millis(300));
        self.received_on(input)
    }

    /// rsyslog's standard error and its own log messages, for assertion messages.
    pub fn diagnostics(&self) -> String {
        let read = |name: &str| std::fs::read_to_string(self.path(name)).unwrap_or_default();
        format!(
            "--- rsyslogd stderr\n{}--- rsyslogd stdout\n{}--- rsyslogd's own messages\n{}",
            read("rsyslogd.stderr"),
            read("rsyslogd.stdout"),
            read("rsyslogd.log")
        )
    }

    /// rsyslog's own log messages (starts, stops, errors).
    pub fn own_messages(&self) -> String {
        std::fs::read_to_string(self.path("rsyslogd.log")).unwrap_or_default()
    }

    fn stop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(self.child.id().to_string())
                .stderr(Stdio::null())
                .status();
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(3) {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        self.stop();
    }
}

enum Failure {
    /// A listener could not bind its port (taken since it was found free).
    PortTaken(String),
    Other(String),
}

/// Starts rsyslogd in the foreground with the config, pid file and output files of `dir`.
fn spawn(rsyslogd: &Path, dir: &Path) -> Result<Child, String> {
    let stdout = std::fs::File::create(dir.join("rsyslogd.stdout")).expect("stdout");
    let stderr = std::fs::File::create(dir.join("rsyslogd.stderr")).expect("stderr");
    Command::new(rsyslogd)
        .arg("-n")
        .arg("-f")
        .arg(dir.join("rsyslog.conf"))
        .arg("-i")
        .arg(dir.join("rsyslogd.pid"))
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", rsyslogd.display()))
}

/// Two TCP ports that are free now on 127.0.0.1.
fn free_ports_pair() -> (u16, u16) {
    let a = TcpListener::bind("127.0.0.1:0").expect("bind TCP port 0");
    let b = TcpListener::bind("127.0.0.1:0").expect("bind TCP port 0");
    let port = |l: &TcpListener| l.local_addr().expect("local address").port();
    (port(&a), port(&b))
}

/// Three ports that are free now on 127.0.0.1: one for UDP, two for TCP.
fn free_ports() -> (u16, u16, u16) {
    let udp = UdpSocket::bind("127.0.0.1:0").expect("bind UDP port 0");
    let tcp = TcpListener::bind("127.0.0.1:0").expect("bind TCP port 0");
    let tls = TcpListener::bind("127.0.0.1:0").expect("bind TCP port 0");
    let port = |a: std::io::Result<std::net::SocketAddr>| a.expect("local address").port();
    (
        port(udp.local_addr()),
        port(tcp.local_addr()),
        port(tls.local_addr()),
    )
}

/// The socket inodes of process `pid` (its `/proc/PID/fd` links `socket:[N]`).
fn socket_inodes(pid: u32) -> HashSet<u64> {
    let Ok(entries) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return HashSet::new();
    };
    entries
        .flatten()
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .filter_map(|l| {
            l.to_str()?
                .strip_prefix("socket:[")?
                .strip_suffix(']')?
                .parse()
                .ok()
        })
        .collect()
}

/// The inodes of the sockets in `/proc/net/TABLE` bound to 127.0.0.1:`port` in `state`.
fn bound_inodes(table: &str, port: u16, state: &str) -> Vec<u64> {
    let local = format!("0100007F:{port:04X}");
    std::fs::read_to_string(format!("/proc/net/{table}"))
        .unwrap_or_default()
        .lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            (f.len() > 9 && f[1] == local && f[3] == state)
                .then(|| f[9].parse().ok())
                .flatten()
        })
        .collect()
}

/// rsyslog.conf: the global settings first (the message size applies to the inputs loaded after
/// it), one output template, the `received` ruleset the three inputs feed, and a default ruleset
/// that keeps rsyslog's own messages in `rsyslogd.log`.
fn config(dir: &Path, certs: &Certificates, udp: u16, tcp: u16, tls: u16) -> String {
    let d = dir.display();
    let template = template();
    format!(
        r#"# Made by broker-tests (tests/src/rsyslog.rs): loopback listeners only, no imuxsock.
global(
  maxMessageSize="64k"
  workDirectory="{d}/work"
  processInternalMessages="on"
  net.enableDNS="off"
  defaultNetstreamDriverCAFile="{ca}"
  defaultNetstreamDriverCertFile="{cert}"
  defaultNetstreamDriverKeyFile="{key}"
)
# One worker: the messages of one connection are written in the order they came.
main_queue(queue.workerThreads="1")

module(load="imudp")
module(load="imtcp" maxSessions="100")

{template}
ruleset(name="received") {{
  action(type="omfile" file="{d}/received.jsonl" template="fields")
}}

input(type="imudp" name="udp" address="127.0.0.1" port="{udp}" ruleset="received" rcvBufSize="8m")
input(type="imtcp" name="tcp" address="127.0.0.1" port="{tcp}" ruleset="received")
input(type="imtcp" name="tls" address="127.0.0.1" port="{tls}" ruleset="received"
      streamDriver.name="gtls" streamDriver.mode="1" streamDriver.authMode="anon")

# rsyslog's own messages (the default ruleset has nothing else).
action(type="omfile" file="{d}/rsyslogd.log")
"#,
        ca = certs.ca.display(),
        cert = certs.cert.display(),
        key = certs.key.display(),
    )
}

/// The output template: one JSON object per message with the properties of [`FIELDS`].
fn template() -> String {
    let mut template = String::from("template(name=\"fields\" type=\"list\") {\n");
    for (i, (name, property, date)) in FIELDS.iter().enumerate() {
        let sep = if i == 0 { "{" } else { "," };
        let date = if date.is_empty() {
            String::new()
        } else {
            format!(" dateFormat=\"{date}\"")
        };
        let _ = writeln!(
            template,
            "  constant(value=\"{sep}\\\"{name}\\\":\\\"\")\n  property(name=\"{property}\" format=\"json\"{date})\n  constant(value=\"\\\"\")"
        );
    }
    template.push_str("  constant(value=\"}\\n\")\n}\n");
    template
}

/// rsyslog.conf of a stock UDP listener: a plain `imudp` input on 127.0.0.1 with the kernel's
/// default receive buffer and rsyslog's default main queue. The one setting beyond the stock
/// config is the operator's `maxMessageSize` (what docs/reliability.md advises for UDP).
fn stock_udp_config(dir: &Path, udp: u16) -> String {
    let d = dir.display();
    let template = template();
    format!(
        r#"# Made by broker-tests (tests/src/rsyslog.rs): a stock imudp listener, no imuxsock.
global(
  maxMessageSize="64k"
  workDirectory="{d}/work"
  processInternalMessages="on"
  net.enableDNS="off"
)

module(load="imudp")

{template}
ruleset(name="received") {{
  action(type="omfile" file="{d}/received.jsonl" template="fields")
}}

input(type="imudp" name="udp" address="127.0.0.1" port="{udp}" ruleset="received")

# rsyslog's own messages (the default ruleset has nothing else).
action(type="omfile" file="{d}/rsyslogd.log")
"#
    )
}

/// rsyslog.conf of the RELP listeners: `imrelp` plain and over TLS (the server certificate of
/// `certs`, client certificates signed by its CA required), and a plain `imtcp`, on the ports
/// `(tcp, relp, relp_tls)`. With `direct`, a direct main queue, so each message is in the output
/// file before its input takes the next one (and before `imrelp` answers for it).
fn relp_config(
    dir: &Path,
    certs: &Certificates,
    (tcp, relp, relp_tls): (u16, u16, u16),
    direct: bool,
) -> String {
    let d = dir.display();
    let queue = if direct {
        "main_queue(queue.type=\"Direct\")"
    } else {
        "# rsyslog's default main queue (in memory)"
    };
    let template = template();
    format!(
        r#"# Made by broker-tests (tests/src/rsyslog.rs): RELP listeners on loopback, no imuxsock.
global(
  maxMessageSize="64k"
  workDirectory="{d}/work"
  processInternalMessages="on"
  net.enableDNS="off"
)
{queue}

module(load="imtcp" maxSessions="100")
module(load="imrelp")

{template}
ruleset(name="received") {{
  action(type="omfile" file="{d}/received.jsonl" template="fields")
}}

input(type="imtcp" name="tcp" address="127.0.0.1" port="{tcp}" ruleset="received")
input(type="imrelp" name="relp" address="127.0.0.1" port="{relp}" ruleset="received")
input(type="imrelp" name="relptls" address="127.0.0.1" port="{relp_tls}" ruleset="received"
      tls="on" tls.caCert="{ca}" tls.myCert="{cert}" tls.myPrivKey="{key}"
      tls.authMode="certvalid")

# rsyslog's own messages (the default ruleset has nothing else).
action(type="omfile" file="{d}/rsyslogd.log")
"#,
        ca = certs.ca.display(),
        cert = certs.cert.display(),
        key = certs.key.display(),
    )
}

/// One output line back into a [`Received`].
fn parse_line(line: &str) -> Received {
    let value: serde_json::Value = serde_json::from_str(line)
        .unwrap_or_else(|e| panic!("rsyslog's output line is not JSON ({e}): {line}"));
    let field = |name: &str| {
        value[name]
            .as_str()
            .unwrap_or_else(|| panic!("no {name} in rsyslog's output line {line}"))
            .to_string()
    };
    Received {
        input: field("input"),
        from_ip: field("from_ip"),
        pri: field("pri")
            .parse()
            .unwrap_or_else(|e| panic!("pri in {line}: {e}")),
        protocol_version: field("protocol_version"),
        time_reported: field("time_reported"),
        time_generated: field("time_generated"),
        hostname: field("hostname"),
        app_name: field("app_name"),
        procid: field("procid"),
        msgid: field("msgid"),
        tag: field("tag"),
        structured_data: field("structured_data"),
        msg: field("msg"),
        raw: field("raw"),
    }
}
