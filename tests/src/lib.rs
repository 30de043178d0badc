//! Shared helpers of the end-to-end tests: find the real binaries, lay out a broker's files in a
//! temporary directory, run the broker against a simulator, and open real receivers on 127.0.0.1
//! or unix sockets.
//!
//! The binaries come from cargo's target directory (`scripts/test` builds them first with
//! `cargo build --workspace --bins`).

use std::io::Read;
use std::net::UdpSocket;
use std::os::unix::net::{UnixDatagram, UnixListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use broker_sim::{SimOptions, Simulator};

pub mod delivery;
pub mod elasticsearch;
pub mod http_receiver;
pub mod https;
pub mod loki;
pub mod packaging;
pub mod rsyslog;
pub mod sentinel;
pub mod splunk_hec;

/// The broker id every test uses.
pub const BROKER_ID: &str = "abcdef12345";
/// The display name the simulator gives it.
pub const BROKER_NAME: &str = "My Test Broker";

/// The stock sinks and `extra` (a custom build's own sinks), sorted as `--list-sinks` and the
/// unknown-sink error list them.
pub fn stock_sinks_and(extra: &[&'static str]) -> Vec<&'static str> {
    let mut names: Vec<&str> = broker_sinks::STOCK_SINK_NAMES.to_vec();
    names.extend(extra);
    names.sort_unstable();
    names
}

/// The sink list of an unknown-sink error (`this broker has: file, syslog`) of a binary with the
/// stock sinks and `extra`.
pub fn stock_sinks_listed(extra: &[&'static str]) -> String {
    stock_sinks_and(extra).join(", ")
}

/// What an unknown-sink error says the broker has, e.g. `file, syslog`.
pub fn sinks_listed(message: &str) -> Option<&str> {
    let rest = message.split("this broker has: ").nth(1)?;
    rest.split(')').next()
}

/// The path of one of the workspace's binaries, from cargo's target directory.
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/debug/deps/test-hash -> target/debug/NAME
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target directory");
    let path = dir.join(name);
    assert!(
        path.is_file(),
        "{} is missing: run `cargo build --workspace --bins` first (scripts/test does)",
        path.display()
    );
    path
}

/// A simulator with the test broker registered.
pub fn simulator(options: SimOptions) -> Simulator {
    let sim = Simulator::start_background(options).expect("start simulator");
    sim.add_broker(BROKER_ID, BROKER_NAME);
    sim
}

/// A broker's files in a temporary directory: broker.conf and its companions.
pub struct BrokerDir {
    /// The temporary directory (deleted on drop).
    pub dir: tempfile::TempDir,
}

impl Default for BrokerDir {
    fn default() -> Self {
        Self::new()
    }
}

impl BrokerDir {
    /// An empty directory.
    pub fn new() -> Self {
        BrokerDir {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    /// A path inside the directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The broker.conf path.
    pub fn config(&self) -> PathBuf {
        self.path("broker.conf")
    }

    /// The credentials file path.
    pub fn credentials(&self) -> PathBuf {
        self.path("broker-credentials.conf")
    }

    /// The setup file path.
    pub fn setup(&self) -> PathBuf {
        self.path("broker-setup.conf")
    }

    /// Writes broker.conf: a `[Broker]` section for `api` (with `Timeout = 3` and `Spool` in this
    /// directory), then `pipes`.
    pub fn write_config(&self, api: &str, pipes: &str) {
        self.write_config_with(api, "", pipes);
    }

    /// Writes a file in the directory.
    pub fn write(&self, name: &str, text: &str) {
        std::fs::write(self.path(name), text).expect("write file");
    }

    /// Registers a fresh setup code with `sim`, valid for a day, and writes broker-setup.conf.
    pub fn write_setup(&self, sim: &Simulator, code: &str) {
        let expires = chrono::Utc::now() + chrono::Duration::days(1);
        sim.add_setup_code(BROKER_ID, code, expires);
        let text = format!(
            "[Broker.Setup]\nCode = {code}\nExpires = {}\n",
            expires.format("%Y-%m-%dT%H:%M:%SZ")
        );
        std::fs::write(self.setup(), text).expect("write setup");
    }

    /// Runs setup against `sim` with the credentials tool, so the broker has credentials.
    pub fn set_up(&self, sim: &Simulator) {
        self.write_setup(sim, "setup-code-for-tests");
        let out = self.run("procustodibus-broker-credentials", &[]);
        assert!(out.status.success(), "setup failed: {}", describe(&out));
    }

    /// Runs a binary with `--config` pointing at this directory's broker.conf, with a clean
    /// environment for the broker's own variables, and waits for it (at most 60 s).
    pub fn run(&self, binary_name: &str, args: &[&str]) -> Output {
        let mut command = self.command(binary_name);
        command.args(args);
        run_with_timeout(command, Duration::from_secs(60))
    }

    /// The command for a binary with `--config` set and the broker's env variables cleared.
    pub fn command(&self, binary_name: &str) -> Command {
        let mut command = Command::new(binary(binary_name));
        command
            .arg("--config")
            .arg(self.config())
            .current_dir(self.dir.path())
            // Never the machine's own spool, even where a config names none.
            .env("STATE_DIRECTORY", self.path("state"))
            .env_remove("PROCUSTODIBUS_CONF")
            .env_remove("PROCUSTODIBUS_LOGGING_LEVEL")
            // Never the service manager of the machine running the tests.
            .env_remove("NOTIFY_SOCKET")
            .env_remove("WATCHDOG_USEC")
            .env_remove("WATCHDOG_PID")
            .stdin(Stdio::null());
        command
    }

    /// The lines of a file in the directory (empty when it does not exist).
    pub fn lines(&self, name: &str) -> Vec<String> {
        std::fs::read_to_string(self.path(name))
            .map(|t| t.lines().map(String::from).collect())
            .unwrap_or_default()
    }
}

/// Runs `command` to its end, killing it after `limit`.
pub fn run_with_timeout(mut command: Command, limit: Duration) -> Output {
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = command.spawn().expect("spawn binary");
    let start = Instant::now();
    loop {
        if child.try_wait().expect("wait").is_some() {
            break;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("collect output")
}

/// The exit status, standard output and standard error of a run, for assertion messages.
pub fn describe(out: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Standard output as text.
pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Standard error as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// What the existing broker writes for each raw event: Python's own `json.loads` and
/// `json.dumps(separators=(",", ":"))`, run in `python3`, with one change docs/protocol.md asks for:
/// numbers are kept exactly as the API wrote them. This is an independent reference for the
/// broker's bytes.
pub fn expected_lines(raws: &[String]) -> Vec<String> {
    const SCRIPT: &str = r#"
import json, re, sys
mark = lambda s: "\x00NUM" + s + "\x00"
for line in sys.stdin:
    value = json.loads(json.loads(line), parse_float=mark, parse_int=mark)
    text = json.dumps(value, separators=(",", ":"))
    print(re.sub(r'"\\u0000NUM(.*?)\\u0000"', lambda m: m.group(1), text))
"#;
    let mut input = String::new();
    for raw in raws {
        input.push_str(&serde_json::to_string(raw).expect("quote raw event"));
        input.push('\n');
    }
    let mut child = Command::new("python3")
        .arg("-c")
        .arg(SCRIPT)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 is needed for the reference encoding");
    // Feed python3 from another thread: it writes as it reads, and a big input would otherwise
    // fill both pipes and hang the two processes.
    let mut stdin = child.stdin.take().expect("stdin");
    let feeder = std::thread::spawn(move || {
        use std::io::Write;
        stdin.write_all(input.as_bytes())
    });
    let out = child.wait_with_output().expect("python3 output");
    feeder
        .join()
        .expect("feeder thread")
        .expect("write to python3");
    assert!(out.status.success(), "python3 reference encoding failed");
    String::from_utf8(out.stdout)
        .expect("ASCII output")
        .lines()
        .map(String::from)
        .collect()
}

/// A UDP receiver on 127.0.0.1 (or `[::1]`), port chosen by the OS.
pub struct UdpReceiver {
    /// The bound socket.
    pub socket: UdpSocket,
}

impl UdpReceiver {
    /// Binds `127.0.0.1:0` (or `[::1]:0` when `v6`).
    pub fn bind(v6: bool) -> std::io::Result<Self> {
        let socket = UdpSocket::bind(if v6 { "[::1]:0" } else { "127.0.0.1:0" })?;
        socket.set_read_timeout(Some(Duration::from_millis(200)))?;
        Ok(UdpReceiver { socket })
    }

    /// `host:port` for the `Socket` key.
    pub fn address(&self) -> String {
        self.socket.local_addr().expect("local addr").to_string()
    }

    /// Every datagram received until none arrives for 200 ms.
    pub fn drain(&self) -> Vec<Vec<u8>> {
        let mut got = Vec::new();
        let mut buf = vec![0u8; 70_000];
        while let Ok(n) = self.socket.recv(&mut buf) {
            got.push(buf[..n].to_vec());
        }
        got
    }
}

/// A unix datagram receiver in a temporary directory.
pub struct UnixDatagramReceiver {
    /// The bound socket.
    pub socket: UnixDatagram,
    /// Its path.
    pub path: PathBuf,
}

impl UnixDatagramReceiver {
    /// Binds `dir/name`.
    pub fn bind(dir: &Path, name: &str) -> Self {
        let path = dir.join(name);
        let socket = UnixDatagram::bind(&path).expect("bind unix datagram");
        socket
            .set_read_timeout(Some(Duration::from_millis(200)))
            .expect("timeout");
        UnixDatagramReceiver { socket, path }
    }

    /// Every datagram received until none arrives for 200 ms.
    pub fn drain(&self) -> Vec<Vec<u8>> {
        let mut got = Vec::new();
        let mut buf = vec![0u8; 70_000];
        while let Ok(n) = self.socket.recv(&mut buf) {
            got.push(buf[..n].to_vec());
        }
        got
    }
}

/// A unix stream receiver in a temporary directory that collects the bytes of every connection
/// on a thread.
pub struct UnixStreamReceiver {
    /// Its path.
    pub path: PathBuf,
    bytes: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
}

impl UnixStreamReceiver {
    /// Binds `dir/name` and accepts connections in the background.
    pub fn bind(dir: &Path, name: &str) -> Self {
        let path = dir.join(name);
        let listener = UnixListener::bind(&path).expect("bind unix stream");
        let bytes = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = bytes.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { break };
                let sink = sink.clone();
                std::thread::spawn(move || {
                    let mut buf = [0u8; 65536];
                    while let Ok(n) = stream.read(&mut buf) {
                        if n == 0 {
                            break;
                        }
                        sink.lock().expect("lock").extend_from_slice(&buf[..n]);
                    }
                });
            }
        });
        UnixStreamReceiver { path, bytes }
    }

    /// Everything received so far, after waiting for `settle`.
    pub fn received(&self, settle: Duration) -> Vec<u8> {
        std::thread::sleep(settle);
        self.bytes.lock().expect("lock").clone()
    }
}

/// Polls `condition` every 20 ms until it holds or `limit` has passed; whether it held.
pub fn wait_until(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if condition() {
            return true;
        }
        if start.elapsed() > limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A broker binary running in the background (a `--loop` run). Its standard output and error
/// go to files in the broker's directory, so a long or chatty run never blocks on a full pipe.
/// Killed on drop if it is still running.
pub struct Running {
    child: std::process::Child,
    stdout: PathBuf,
    stderr: PathBuf,
}

impl BrokerDir {
    /// Starts a binary in the background with `--config` set (see [`BrokerDir::command`]).
    pub fn spawn(&self, binary_name: &str, args: &[&str]) -> Running {
        self.spawn_with_env(binary_name, args, &[])
    }

    /// [`BrokerDir::spawn`] with `env` (name, value pairs) added to the environment.
    pub fn spawn_with_env(
        &self,
        binary_name: &str,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Running {
        static SPAWNED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = SPAWNED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let stdout = self.path(&format!("run-{n}.stdout"));
        let stderr = self.path(&format!("run-{n}.stderr"));
        let mut command = self.command(binary_name);
        command
            .args(args)
            .envs(env.iter().copied())
            .stdout(std::fs::File::create(&stdout).expect("create stdout file"))
            .stderr(std::fs::File::create(&stderr).expect("create stderr file"));
        let child = command.spawn().expect("spawn binary");
        Running {
            child,
            stdout,
            stderr,
        }
    }
}

impl Running {
    /// The process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// What it has written to standard output so far.
    pub fn stdout_so_far(&self) -> String {
        std::fs::read_to_string(&self.stdout).unwrap_or_default()
    }

    /// Sends SIGTERM (with `kill -TERM`), waits at most `limit` for the process to end (killing
    /// it after that), and returns its exit status and output.
    pub fn terminate(&mut self, limit: Duration) -> Output {
        let sent = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -TERM {} failed", self.child.id());
        self.finish(limit)
    }

    /// Waits at most `limit` for the process to end on its own (killing it after that), and
    /// returns its exit status and output.
    pub fn finish(&mut self, limit: Duration) -> Output {
        let start = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                break status;
            }
            if start.elapsed() > limit {
                let _ = self.child.kill();
                break self.child.wait().expect("wait after kill");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        Output {
            status,
            stdout: std::fs::read(&self.stdout).unwrap_or_default(),
            stderr: std::fs::read(&self.stderr).unwrap_or_default(),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The host name the broker reports on a host whose name has no domain and resolves to no
/// canonical name with one (as here): `gethostname`, as the kernel has it.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .expect("read /proc/sys/kernel/hostname")
}

/// The key pair of a credentials file, checked against docs/protocol.md's format: the two comment
/// lines (generation time within a minute of now, broker id, host), `[Broker.Credentials]`,
/// `PublicKey` and `PrivateKey` as standard base64 with padding of 32 bytes each, the public key
/// derived from the private seed, and mode 0600. Returns the public key and the private key's
/// base64 text.
pub fn check_credentials_file(path: &Path) -> ([u8; 32], String) {
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine;
    use std::os::unix::fs::PermissionsExt;

    let meta = std::fs::metadata(path).expect("credentials file exists");
    assert_eq!(
        meta.permissions().mode() & 0o777,
        0o600,
        "mode of {}",
        path.display()
    );
    let text = std::fs::read_to_string(path).expect("read credentials file");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 5, "credentials file:\n{text}");
    assert!(
        text.ends_with('\n'),
        "credentials file ends with a newline:\n{text}"
    );
    let generated = lines[0]
        .strip_prefix("# broker-credentials.conf generated ")
        .unwrap_or_else(|| panic!("first line: {:?}", lines[0]));
    let generated = chrono::NaiveDateTime::parse_from_str(generated, "%Y-%m-%dT%H:%M:%SZ")
        .unwrap_or_else(|e| panic!("generation time {generated:?}: {e}"))
        .and_utc();
    let age = chrono::Utc::now() - generated;
    assert!(
        age >= chrono::Duration::seconds(-1) && age < chrono::Duration::seconds(60),
        "generation time {generated} is not now"
    );
    assert_eq!(
        lines[1],
        format!("# for broker {BROKER_ID} on {}", host_name())
    );
    assert_eq!(lines[2], "[Broker.Credentials]");
    let key = |line: &str, name: &str| -> ([u8; 32], String) {
        let value = line
            .strip_prefix(&format!("{name} = "))
            .unwrap_or_else(|| panic!("expected `{name} = ...`, got {line:?}"));
        let bytes: [u8; 32] = STANDARD
            .decode(value)
            .ok()
            .and_then(|b| b.try_into().ok())
            .unwrap_or_else(|| panic!("{name} {value:?} is not standard base64 of 32 bytes"));
        assert_eq!(
            STANDARD.encode(bytes),
            value,
            "{name} is canonical, padded base64"
        );
        (bytes, value.to_string())
    };
    let (public, _) = key(lines[3], "PublicKey");
    let (seed, private_text) = key(lines[4], "PrivateKey");
    let derived = ed25519_dalek::SigningKey::from_bytes(&seed).verifying_key();
    assert_eq!(
        derived.to_bytes(),
        public,
        "PublicKey is the key of PrivateKey"
    );
    (public, private_text)
}

/// Writes a credentials file with the key pair of `seed`, which the simulator does not know
/// unless the caller registers it with `Simulator::add_key`; returns the public key.
pub fn write_credentials(path: &Path, seed: [u8; 32]) -> [u8; 32] {
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine;

    let public = ed25519_dalek::SigningKey::from_bytes(&seed)
        .verifying_key()
        .to_bytes();
    let text = format!(
        "[Broker.Credentials]\nPublicKey = {}\nPrivateKey = {}\n",
        STANDARD.encode(public),
        STANDARD.encode(seed)
    );
    std::fs::write(path, text).expect("write credentials");
    public
}

/// The requests of `sim`'s log whose path is `path`, as `(max, status)` pairs in order.
pub fn requests_to(sim: &Simulator, path: &str) -> Vec<(Option<u32>, u16)> {
    sim.requests()
        .into_iter()
        .filter(|r| r.path == path)
        .map(|r| (r.max, r.status))
        .collect()
}

/// A `[Pipe.NAME]` section for the file sink: `From = from`, an optional `Max`, `File = path`.
pub fn file_pipe(name: &str, from: &str, max: Option<u32>, path: &Path) -> String {
    let max = max.map(|m| format!("Max = {m}\n")).unwrap_or_default();
    format!(
        "[Pipe.{name}]\nFrom = {from}\n{max}To = file\nFile = {}\n\n",
        path.display()
    )
}

// ---- Helpers of the outage and spool tests (tests/tests/outage.rs, tests/tests/spool.rs) ----

impl BrokerDir {
    /// Writes broker.conf as [`BrokerDir::write_config`] does, with `broker_extra` (lines such as
    /// `SpoolMax = 16K\n`) added to the `[Broker]` section.
    pub fn write_config_with(&self, api: &str, broker_extra: &str, pipes: &str) {
        let text = format!(
            "[Broker]\nBroker = {BROKER_ID}\nApi = {api}\nTimeout = 3\nSpool = {}\n{broker_extra}\n{pipes}",
            self.path("spool").display()
        );
        std::fs::write(self.config(), text).expect("write broker.conf");
    }

    /// Starts a binary in the background as user `uid` and group `gid` (with `setpriv`, which
    /// execs the binary, so the process id is the broker's), otherwise as [`BrokerDir::spawn`].
    pub fn spawn_as(&self, uid: u32, gid: u32, binary_name: &str, args: &[&str]) -> Running {
        static SPAWNED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = SPAWNED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let stdout = self.path(&format!("run-as-{n}.stdout"));
        let stderr = self.path(&format!("run-as-{n}.stderr"));
        let mut command = Command::new("setpriv");
        command
            .arg(format!("--reuid={uid}"))
            .arg(format!("--regid={gid}"))
            .arg("--clear-groups")
            .arg(binary(binary_name))
            .arg("--config")
            .arg(self.config())
            .args(args)
            .current_dir(self.dir.path())
            .env_remove("PROCUSTODIBUS_CONF")
            .env_remove("PROCUSTODIBUS_LOGGING_LEVEL")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&stdout).expect("create stdout file"))
            .stderr(std::fs::File::create(&stderr).expect("create stderr file"));
        let child = command.spawn().expect("spawn setpriv");
        Running {
            child,
            stdout,
            stderr,
        }
    }

    /// The path of the spool directory [`BrokerDir::write_config`] sets.
    pub fn spool(&self) -> PathBuf {
        self.path("spool")
    }
}

/// Changes the owner of `path` and of everything below it.
pub fn chown_recursive(path: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::lchown(path, Some(uid), Some(gid))
        .unwrap_or_else(|e| panic!("chown {}: {e}", path.display()));
    let meta = std::fs::symlink_metadata(path).expect("metadata");
    if meta.is_dir() {
        for entry in std::fs::read_dir(path).expect("read dir") {
            chown_recursive(&entry.expect("dir entry").path(), uid, gid);
        }
    }
}

/// The total size of the spool's segment files (`queues/<queue>/*.seg`) under `spool`.
pub fn spool_segment_bytes(spool: &Path) -> u64 {
    let Ok(queues) = std::fs::read_dir(spool.join("queues")) else {
        return 0;
    };
    let mut total = 0;
    for queue in queues.flatten() {
        let Ok(files) = std::fs::read_dir(queue.path()) else {
            continue;
        };
        for file in files.flatten() {
            if file.path().extension().is_some_and(|e| e == "seg") {
                total += file.metadata().map(|m| m.len()).unwrap_or(0);
            }
        }
    }
    total
}

/// The `type` member of an output line.
pub fn line_type(line: &str) -> String {
    let value: serde_json::Value =
        serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
    value["type"].as_str().unwrap_or_default().to_string()
}

/// The lines of `lines` whose `type` is `event_type`, in order.
pub fn lines_of_type(lines: &[String], event_type: &str) -> Vec<String> {
    lines
        .iter()
        .filter(|l| line_type(l) == event_type)
        .cloned()
        .collect()
}

/// A `[Pipe.NAME]` section for the syslog sink with the default facility, priority and tag
/// (`local0`, `info`, `procustodibus`): `From = from`, an optional `Max`, `Socket = socket`.
pub fn default_syslog_pipe(name: &str, from: &str, max: Option<u32>, socket: &str) -> String {
    let max = max.map(|m| format!("Max = {m}\n")).unwrap_or_default();
    format!("[Pipe.{name}]\nFrom = {from}\n{max}To = syslog\nSocket = {socket}\n\n")
}

/// The legacy syslog message of a pipe with the default settings for an output line:
/// `<134>procustodibus: LINE\0`.
pub fn default_syslog_message(line: &str) -> Vec<u8> {
    format!("<134>procustodibus: {line}\0").into_bytes()
}

/// Datagrams read from a socket on a background thread as they arrive, so a sender never waits
/// on a full socket queue. Stops (and closes the socket) on [`DatagramCollector::stop`] or drop.
pub struct DatagramCollector {
    messages: std::sync::Arc<std::sync::Mutex<Vec<Vec<u8>>>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl DatagramCollector {
    /// Binds a unix datagram socket at `path` and collects what arrives there.
    pub fn bind_unix(path: &Path) -> Self {
        let socket = UnixDatagram::bind(path)
            .unwrap_or_else(|e| panic!("bind unix datagram {}: {e}", path.display()));
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .expect("read timeout");
        Self::start(move |buf| socket.recv(buf))
    }

    /// Binds a UDP socket at `127.0.0.1:0` and collects what arrives there; also returns its
    /// `host:port`.
    pub fn bind_udp() -> (Self, String) {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind UDP");
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .expect("read timeout");
        let address = socket.local_addr().expect("local addr").to_string();
        (Self::start(move |buf| socket.recv(buf)), address)
    }

    fn start(mut recv: impl FnMut(&mut [u8]) -> std::io::Result<usize> + Send + 'static) -> Self {
        let messages = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (sink, stopped) = (messages.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut buf = vec![0u8; 256 * 1024];
            loop {
                match recv(&mut buf) {
                    Ok(n) => sink.lock().expect("lock").push(buf[..n].to_vec()),
                    // A timeout: quiet for 100 ms; the end when asked to stop.
                    Err(_) if stopped.load(std::sync::atomic::Ordering::SeqCst) => break,
                    Err(_) => {}
                }
            }
        });
        DatagramCollector {
            messages,
            stop,
            thread: Some(thread),
        }
    }

    /// How many datagrams arrived so far.
    pub fn count(&self) -> usize {
        self.messages.lock().expect("lock").len()
    }

    /// The datagrams that arrived so far, in order.
    pub fn messages(&self) -> Vec<Vec<u8>> {
        self.messages.lock().expect("lock").clone()
    }

    /// Reads what is still queued at the socket (until it has been quiet for 100 ms), closes
    /// the socket and returns every datagram received.
    pub fn stop(mut self) -> Vec<Vec<u8>> {
        self.halt();
        self.messages()
    }

    fn halt(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for DatagramCollector {
    fn drop(&mut self) {
        self.halt();
    }
}

/// The lines of a run's standard output that contain `needle`.
pub fn lines_containing(text: &str, needle: &str) -> Vec<String> {
    text.lines()
        .filter(|l| l.contains(needle))
        .map(String::from)
        .collect()
}

/// A "proxy" on 127.0.0.1 that only records connections: the kernel accepts them into the
/// listener's backlog and nothing ever answers, so a client that uses it gets no reply.
pub struct RecordingProxy {
    listener: std::net::TcpListener,
}

impl RecordingProxy {
    /// Listens on an OS-chosen port.
    pub fn start() -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        listener
            .set_nonblocking(true)
            .expect("non-blocking proxy listener");
        RecordingProxy { listener }
    }

    /// Its URL, `http://127.0.0.1:PORT`, for the proxy variables.
    pub fn url(&self) -> String {
        let address = self.listener.local_addr().expect("proxy address");
        format!("http://{address}")
    }

    /// Sets `HTTP_PROXY`, `HTTPS_PROXY` and `ALL_PROXY` (lower case too) of `command` to it.
    pub fn set_in(&self, command: &mut Command) {
        let url = self.url();
        for name in ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"] {
            command.env(name, &url);
            command.env(name.to_ascii_lowercase(), &url);
        }
    }

    /// How many connections it got since the last call.
    pub fn connections(&self) -> usize {
        let mut count = 0;
        loop {
            match self.listener.accept() {
                Ok(_) => count += 1,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return count,
                Err(e) => panic!("proxy accept: {e}"),
            }
        }
    }
}
