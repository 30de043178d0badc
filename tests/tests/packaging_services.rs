//! Services and their upkeep (issue 11, items 4, 6, 8, 9, 10, 12 and 13): the sysvinit script
//! trusts a pid only when its process is the broker (or its own supervisor) and starts a
//! crashed broker again, and does not follow a link at its log file; the OpenRC and FreeBSD
//! scripts supervise the broker too (checked on their text: neither init system runs here); the
//! logrotate config rotates as the daemon user; install.sh cleans up and restarts the daemon
//! after a failed install, hands a purge's kept files to root, leaves the Python broker's
//! documented path working, and does not shadow the .deb's unit; the release is reproducible.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use broker_tests::packaging::*;
use broker_tests::*;

/// A sysvinit script of the test's own: its pid files, log file and directories in `dir`, the
/// broker `command` (with `args`), run as root (the tests run as root; setpriv runs it), and
/// the supervisor's respawn delay cut to 1 s.
struct Sysvinit {
    script: PathBuf,
    pidfile: PathBuf,
    supervisor_pidfile: PathBuf,
    logfile: PathBuf,
    _guard: KillOnDrop,
}

impl Sysvinit {
    fn new(dir: &BrokerDir, args: &str) -> Self {
        Self::with_delay(dir, args, 1)
    }

    /// As [`Sysvinit::new`], with a respawn delay of `delay` seconds.
    fn with_delay(dir: &BrokerDir, args: &str, delay: u32) -> Self {
        assert!(
            is_root(),
            "this test runs the sysvinit script, which starts the broker as its user: run it as root"
        );
        let pidfile = dir.path("broker.pid");
        let supervisor_pidfile = dir.path("broker.supervisor.pid");
        let logfile = dir.path("daemon.log");
        let script = dir.path("procustodibus-broker");
        let path = |p: &Path| p.display().to_string();
        write_sysvinit_script(
            &script,
            &[
                ("command", path(&binary("procustodibus-broker"))),
                ("command_args", format!("\"{args}\"")),
                ("user", "root".into()),
                ("group", "root".into()),
                ("pidfile", path(&pidfile)),
                ("logfile", path(&logfile)),
                ("spool_dir", path(&dir.spool())),
                ("log_dir", path(&dir.path("logs"))),
                ("respawn_delay", delay.to_string()),
            ],
        );
        Sysvinit {
            _guard: KillOnDrop(vec![supervisor_pidfile.clone(), pidfile.clone()]),
            script,
            pidfile,
            supervisor_pidfile,
            logfile,
        }
    }

    /// Runs the script with a command; its exit code and standard output.
    fn run(&self, command: &str) -> (Option<i32>, String) {
        let out = run_with_timeout(
            {
                let mut c = Command::new(&self.script);
                c.arg(command);
                c
            },
            Duration::from_secs(90),
        );
        (out.status.code(), stdout(&out))
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.logfile).unwrap_or_default()
    }
}

/// A process of no concern to the broker (a `sleep`), killed on drop.
struct Bystander(std::process::Child);

impl Bystander {
    fn start() -> Self {
        Bystander(
            Command::new("sleep")
                .arg("600")
                .spawn()
                .expect("start sleep"),
        )
    }

    fn pid(&self) -> u32 {
        self.0.id()
    }

    fn alive(&mut self) -> bool {
        self.0.try_wait().expect("try_wait").is_none()
    }
}

impl Drop for Bystander {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn sysvinit_stale_pid_file_of_another_process_is_not_the_broker() {
    let dir = BrokerDir::new();
    let init = Sysvinit::new(&dir, "--loop=1");
    let mut bystander = Bystander::start();
    // A crash left the pid files; the pid is now an unrelated process's.
    for pidfile in [&init.pidfile, &init.supervisor_pidfile] {
        std::fs::write(pidfile, format!("{}\n", bystander.pid())).expect("write pid file");
    }

    assert_eq!(init.run("status"), (Some(3), "stopped\n".into()));
    assert_eq!(init.run("reload"), (Some(7), "not started\n".into()));
    assert_eq!(init.run("stop"), (Some(0), "stopped\n".into()));
    assert!(bystander.alive(), "stop signalled an unrelated process");
    assert!(
        !init.pidfile.exists() && !init.supervisor_pidfile.exists(),
        "stop removes the stale pid files"
    );
}

#[test]
fn sysvinit_supervisor_starts_a_crashed_broker_again_and_stop_ends_both() {
    let sim = simulator(Default::default());
    let dir = BrokerDir::new();
    let out_file = dir.path("all.jsonl");
    dir.write_config(&sim.url(), &file_pipe("All", "alerts", None, &out_file));
    dir.set_up(&sim);
    let init = Sysvinit::new(
        &dir,
        &format!("--loop=1 --config {}", dir.config().display()),
    );

    assert_eq!(
        init.run("start"),
        (
            Some(0),
            "starting Pro Custodibus Broker ...\nstarted\n".into()
        )
    );
    let first = pid_in(&init.pidfile).expect("the broker's pid");
    let supervisor = pid_in(&init.supervisor_pidfile).expect("the supervisor's pid");
    assert_eq!(init.run("status"), (Some(0), "started\n".into()));

    // The broker crashes (SIGKILL): the supervisor starts it again, and it delivers.
    run_ok(Command::new("kill").args(["-KILL", &first.to_string()]));
    assert!(
        wait_until(Duration::from_secs(20), || pid_in(&init.pidfile)
            .is_some_and(|pid| pid != first && process_alive(pid))),
        "no new broker after the crash; log:\n{}",
        init.log()
    );
    assert!(
        init.log()
            .contains("procustodibus-broker exited with status 137: starting it again in 1 s\n"),
        "the restart is logged:\n{}",
        init.log()
    );
    assert_eq!(init.run("status"), (Some(0), "started\n".into()));
    let raws = sim.enqueue_generated("alerts", 3).expect("enqueue");
    assert!(
        wait_until(Duration::from_secs(20), || dir.lines("all.jsonl").len()
            == 3),
        "the restarted broker delivers: {:?}\nlog:\n{}",
        dir.lines("all.jsonl"),
        init.log()
    );
    assert_eq!(dir.lines("all.jsonl"), expected_lines(&raws));

    // stop ends the supervisor and the broker, and nothing starts again.
    let second = pid_in(&init.pidfile).expect("the broker's pid");
    assert_eq!(
        init.run("stop"),
        (
            Some(0),
            "stopping Pro Custodibus Broker ...\nstopped\n".into()
        )
    );
    assert!(!process_alive(second) && !process_alive(supervisor));
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(init.run("status"), (Some(3), "stopped\n".into()));

    // A broker that exits cleanly (SIGTERM sent to it, not through the script) is not started
    // again, as with systemd's Restart=on-failure.
    assert_eq!(init.run("start").0, Some(0));
    let pid = pid_in(&init.pidfile).expect("the broker's pid");
    let supervisor = pid_in(&init.supervisor_pidfile).expect("the supervisor's pid");
    run_ok(Command::new("kill").args(["-TERM", &pid.to_string()]));
    assert!(
        wait_until(Duration::from_secs(30), || !process_alive(supervisor)),
        "the supervisor ends after a clean exit; log:\n{}",
        init.log()
    );
    assert_eq!(init.run("status"), (Some(3), "stopped\n".into()));
}

/// The lines of a packaging file that are not comments.
fn active_lines(path: &str) -> Vec<String> {
    std::fs::read_to_string(repo_file(path))
        .unwrap_or_else(|e| panic!("read {path}: {e}"))
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(String::from)
        .collect()
}

fn has_line(lines: &[String], path: &str, wanted: &str) {
    assert!(
        lines.iter().any(|l| l == wanted),
        "{path} has no line {wanted:?}:\n{}",
        lines.join("\n")
    );
}

/// Checked on the text only: neither OpenRC nor FreeBSD's rc.subr and daemon(8) run here
/// (shellcheck_passes_on_every_shell_script in packaging.rs checks both scripts).
#[test]
fn openrc_and_freebsd_scripts_supervise_the_broker() {
    let openrc = "packaging/openrc/procustodibus-broker";
    let lines = active_lines(openrc);
    has_line(&lines, openrc, "supervisor=supervise-daemon");
    has_line(&lines, openrc, "respawn_delay=10");
    has_line(&lines, openrc, "respawn_max=0");
    has_line(
        &lines,
        openrc,
        "supervise-daemon \"${RC_SVCNAME}\" --signal HUP",
    );
    assert!(
        !lines.iter().any(|l| l.starts_with("command_background")),
        "supervise-daemon runs the broker in the foreground: {openrc} sets command_background"
    );

    let freebsd = "packaging/freebsd/procustodibus-broker";
    let lines = active_lines(freebsd);
    has_line(&lines, freebsd, "procname=/usr/sbin/daemon");
    has_line(
        &lines,
        freebsd,
        "command_args=\"-f -S -T procustodibus-broker -R 10 -P $pidfile -p $child_pidfile -u $broker_user $broker $procustodibus_broker_args\"",
    );
    has_line(
        &lines,
        freebsd,
        "pid=$(check_pidfile \"$child_pidfile\" \"$broker\")",
    );
}

const BIN: &str = "/usr/local/bin/procustodibus-broker";
const CREDENTIALS_BIN: &str = "/usr/local/bin/procustodibus-broker-credentials";
const BROKER_CONF: &str = "/etc/procustodibus/broker/broker.conf";
const SETUP_CONF: &str = "/etc/procustodibus/broker/broker-setup.conf";

/// The debug build of the broker (`cargo build --workspace --bins`), which install tests install.
fn broker_binary() -> String {
    binary("procustodibus-broker-credentials");
    binary("procustodibus-broker").display().to_string()
}

/// A stage on a sysvinit system with broker.conf and broker-setup.conf in place.
fn sysvinit_stage() -> Stage {
    let stage = Stage::new();
    stage.mkdir("/etc/init.d");
    stage.write(BROKER_CONF, "[Broker]\nBroker = abcdef12345\n", 0o644);
    stage.write(SETUP_CONF, "[Broker.Setup]\nCode = one-time-code\n", 0o600);
    stage
}

/// `install.sh --install --yes` with the broker binary on `stage`, which must succeed.
fn install_ok(stage: &Stage) -> String {
    stage.install_sh_ok(
        &["--install", "--yes", "--binary", &broker_binary()],
        "install SUCCESS",
    )
}

fn contains(text: &str, needle: &str) {
    assert!(text.contains(needle), "expected {needle:?} in:\n{text}");
}

/// The paths of the stage whose names hold `.new.` (install_file's temporary files).
fn new_files(stage: &Stage) -> Vec<PathBuf> {
    stage
        .snapshot()
        .into_keys()
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().contains(".new."))
        })
        .collect()
}

/// Runs `install.sh --install --yes` on the stage with `service` as its service tool.
fn install_with_service(stage: &Stage, service: &FakeService) -> Output {
    output(
        Command::new(repo_file("packaging/install.sh"))
            .args(["--install", "--yes", "--binary", &broker_binary(), "--root"])
            .arg(stage.root())
            .env("INSTALL_SH_SERVICE", service.tool())
            .stdin(std::process::Stdio::null()),
    )
}

/// A stand-in for the init system's service tool (install.sh's INSTALL_SH_SERVICE): `status`
/// says whether its state file holds `running`, `stop` and `start` write it; every call is
/// appended to its calls file. With `interrupt`, `stop` sends SIGINT to install.sh, as Ctrl-C
/// would while the daemon stops.
struct FakeService {
    dir: tempfile::TempDir,
}

impl FakeService {
    fn running(interrupt: bool) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let d = dir.path().display();
        let kill = if interrupt { "kill -INT $PPID" } else { ":" };
        std::fs::write(
            dir.path().join("service"),
            format!(
                "#!/bin/sh\necho \"$1\" >>{d}/calls\ncase $1 in\n    status) [ \"$(cat {d}/state)\" = running ] ;;\n    stop) echo stopped >{d}/state; {kill} ;;\n    start) echo running >{d}/state ;;\nesac\n"
            ),
        )
        .expect("write service");
        std::fs::set_permissions(
            dir.path().join("service"),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .expect("chmod");
        std::fs::write(dir.path().join("state"), "running\n").expect("write state");
        FakeService { dir }
    }

    fn tool(&self) -> PathBuf {
        self.dir.path().join("service")
    }

    /// The verbs install.sh ran, in order, but for `status`.
    fn calls(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.path().join("calls"))
            .unwrap_or_default()
            .lines()
            .filter(|l| *l != "status")
            .map(String::from)
            .collect()
    }

    fn state(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("state"))
            .expect("state")
            .trim()
            .to_string()
    }
}

#[test]
fn failed_install_deletes_its_temporary_files_and_starts_the_stopped_daemon_again() {
    assert!(
        is_root(),
        "this test bind-mounts in a mount namespace: run it as root"
    );
    require_tool("unshare", "util-linux");
    let stage = sysvinit_stage();
    install_ok(&stage);

    // The second install stops the daemon, then cannot rename the new credentials binary into
    // place (a bind mount sits on it: EBUSY), after its temporary copy was made.
    let service = FakeService::running(false);
    let blocker = tempfile::NamedTempFile::new().expect("temp file");
    let out = output(
        Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c"])
            .arg("mount --bind \"$1\" \"$2\" && shift 2 && exec \"$@\"")
            .arg("sh")
            .arg(blocker.path())
            .arg(stage.path(CREDENTIALS_BIN))
            .arg(repo_file("packaging/install.sh"))
            .args(["--install", "--yes", "--binary", &broker_binary(), "--root"])
            .arg(stage.root())
            .env("INSTALL_SH_SERVICE", service.tool())
            .stdin(std::process::Stdio::null()),
    );
    let text = stdout(&out);
    assert!(
        !out.status.success(),
        "the install failed:\n{}",
        describe(&out)
    );
    assert_eq!(
        new_files(&stage),
        Vec::<PathBuf>::new(),
        "{}",
        describe(&out)
    );
    contains(&text, "OK will stop daemon\nstopped daemon\n");
    contains(
        &text,
        "WARNING install did not finish after it stopped the daemon: starting the daemon again\nOK will start daemon\nstarted daemon\n",
    );
    assert_eq!(service.calls(), ["stop", "start"]);
    assert_eq!(service.state(), "running");

    // Ctrl-C while the daemon stops: the daemon is started again too.
    let service = FakeService::running(true);
    let out = install_with_service(&stage, &service);
    assert_eq!(out.status.code(), Some(130), "{}", describe(&out));
    contains(
        &stdout(&out),
        "WARNING install did not finish after it stopped the daemon: starting the daemon again\n",
    );
    assert_eq!(service.calls(), ["stop", "start"]);
    assert_eq!(service.state(), "running");

    // A finished install restarts nothing on exit, and leaves no temporary file either.
    let service = FakeService::running(false);
    let out = install_with_service(&stage, &service);
    assert!(out.status.success(), "{}", describe(&out));
    assert!(!stdout(&out).contains("starting the daemon again"));
    assert_eq!(new_files(&stage), Vec::<PathBuf>::new());
    assert!(stage.exists(BIN));
}

/// The blocks of a logrotate config: the paths each rotates, and its directives.
fn logrotate_blocks(text: &str) -> Vec<(Vec<String>, Vec<String>)> {
    let mut blocks = Vec::new();
    let mut current: Option<(Vec<String>, Vec<String>)> = None;
    let mut in_script = false;
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match &mut current {
            None => {
                if let Some(paths) = line.strip_suffix('{') {
                    current = Some((
                        paths.split_whitespace().map(String::from).collect(),
                        Vec::new(),
                    ));
                }
            }
            Some((_, directives)) => {
                if in_script {
                    in_script = line != "endscript";
                } else if line == "}" {
                    blocks.push(current.take().expect("block"));
                } else {
                    in_script = line == "postrotate" || line == "prerotate";
                    directives.push(line.to_string());
                }
            }
        }
    }
    blocks
}

/// The uid and gid of a user of the machine, from /etc/passwd.
fn machine_user(name: &str) -> (u32, u32) {
    std::fs::read_to_string("/etc/passwd")
        .expect("read /etc/passwd")
        .lines()
        .find_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            (fields[0] == name).then(|| (fields[2].parse().unwrap(), fields[3].parse().unwrap()))
        })
        .unwrap_or_else(|| panic!("no user {name} on this machine"))
}

#[test]
fn logrotate_rotates_the_daemons_files_as_the_daemon_user() {
    let logrotate = require_tool("logrotate", "logrotate");
    let path = "packaging/logrotate/procustodibus-broker";
    let text = std::fs::read_to_string(repo_file(path)).expect("read the logrotate config");

    // Every block for the daemon's directory rotates as the daemon user; none uses systemctl
    // kill (its hook signals the broker's pid after the /proc/PID/exe check).
    let blocks = logrotate_blocks(&text);
    assert_eq!(blocks.len(), 3, "{blocks:?}");
    for (paths, directives) in &blocks {
        if paths
            .iter()
            .any(|p| p.starts_with("/var/log/procustodibus/broker/"))
        {
            assert!(
                directives.contains(&"su procustodibus-broker procustodibus-broker".into()),
                "{paths:?} is rotated as root"
            );
        }
    }
    assert!(!text.contains("systemctl kill"));

    // A real rotation of the config with its paths in a temporary directory, as `nobody`
    // (the daemon user's stand-in), who owns the log directory.
    assert!(
        is_root(),
        "logrotate's su needs root: run this test as root"
    );
    let (uid, gid) = machine_user("nobody");
    let dir = tempfile::tempdir().expect("temp dir");
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).expect("mkdir");
    for (name, line) in [("all.jsonl", "{\"a\":1}\n"), ("daemon.log", "started\n")] {
        std::fs::write(logs.join(name), line).expect("write log");
        std::os::unix::fs::lchown(logs.join(name), Some(uid), Some(gid)).expect("chown");
    }
    std::os::unix::fs::lchown(&logs, Some(uid), Some(gid)).expect("chown");
    std::fs::set_permissions(&logs, std::os::unix::fs::PermissionsExt::from_mode(0o750))
        .expect("chmod");
    let group = std::fs::read_to_string("/etc/group")
        .expect("read /etc/group")
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.get(2) == Some(&gid.to_string().as_str())).then(|| f[0].to_string())
        })
        .expect("nobody's group");
    let staged = text
        .replace("/var/log/procustodibus/broker", &logs.display().to_string())
        .replace(
            "/var/log/procustodibus-broker.log",
            &dir.path().join("sysvinit.log").display().to_string(),
        )
        .replace(
            "su procustodibus-broker procustodibus-broker",
            &format!("su nobody {group}"),
        );
    let conf = dir.path().join("logrotate.conf");
    std::fs::write(&conf, staged).expect("write config");
    let state = dir.path().join("state");
    let rotate = || {
        let out = output(
            Command::new(&logrotate)
                .args(["-v", "-f", "-s"])
                .arg(&state)
                .arg(&conf),
        );
        assert!(out.status.success(), "logrotate -f:\n{}", describe(&out));
        stderr(&out) + &stdout(&out)
    };
    let log = rotate();
    assert_eq!(
        log.matches(&format!(
            "switching euid from 0 to {uid} and egid from 0 to {gid}"
        ))
        .count(),
        2,
        "both blocks of the daemon's directory rotate as the daemon user:\n{log}"
    );
    std::fs::write(logs.join("all.jsonl"), "{\"a\":2}\n").expect("write log");
    std::os::unix::fs::lchown(logs.join("all.jsonl"), Some(uid), Some(gid)).expect("chown");
    rotate();
    let owner = |name: &str| {
        let meta = std::fs::symlink_metadata(logs.join(name))
            .unwrap_or_else(|e| panic!("{name} after the rotation: {e}"));
        (
            std::os::unix::fs::MetadataExt::uid(&meta),
            std::os::unix::fs::MetadataExt::gid(&meta),
        )
    };
    for name in [
        "all.jsonl.1",
        "all.jsonl.2.gz",
        "daemon.log",
        "daemon.log.1.gz",
    ] {
        assert_eq!(owner(name), (uid, gid), "owner of {name}");
    }
    assert_eq!(
        std::fs::read_to_string(logs.join("all.jsonl.1")).expect("read"),
        "{\"a\":2}\n"
    );
}

#[test]
fn sysvinit_start_refuses_a_link_at_its_log_file() {
    let sim = simulator(Default::default());
    let dir = BrokerDir::new();
    dir.write_config(&sim.url(), "");
    dir.set_up(&sim);
    let init = Sysvinit::new(
        &dir,
        &format!("--loop=1 --config {}", dir.config().display()),
    );
    // A member of /var/log's group (syslog on Ubuntu) links the log file to a file of root's.
    let victim = dir.path("victim");
    std::fs::write(&victim, "root's\n").expect("write victim");
    std::fs::set_permissions(&victim, std::os::unix::fs::PermissionsExt::from_mode(0o644))
        .expect("chmod");
    std::os::unix::fs::symlink(&victim, &init.logfile).expect("symlink");
    let meta = |p: &Path| {
        let m = std::fs::symlink_metadata(p).expect("metadata");
        use std::os::unix::fs::MetadataExt;
        (m.mode(), m.uid(), m.gid(), m.mtime(), m.mtime_nsec())
    };
    let before = meta(&victim);
    std::thread::sleep(Duration::from_millis(20));

    let (code, out) = init.run("start");
    assert_eq!(
        (code, out.as_str()),
        (
            Some(1),
            format!(
                "starting Pro Custodibus Broker ...\nfailed to start: {} is a link or not a regular file: move it away\n",
                init.logfile.display()
            )
            .as_str()
        )
    );
    assert_eq!(meta(&victim), before, "the link's target was changed");
    assert_eq!(std::fs::read_to_string(&victim).expect("read"), "root's\n");
    assert!(pid_in(&init.pidfile).is_none(), "nothing started");

    // With the link gone, start creates the file for the daemon user, mode 0640.
    std::fs::remove_file(&init.logfile).expect("remove link");
    let (code, out) = init.run("start");
    assert_eq!(code, Some(0), "{out}\n{}", init.log());
    let m = std::fs::symlink_metadata(&init.logfile).expect("log file");
    assert!(m.is_file());
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o7777,
        0o640
    );
    init.run("stop");
}

const NEWSYSLOG: &str = "/usr/local/etc/newsyslog.conf.d/procustodibus-broker.conf";
const LOGROTATE: &str = "/etc/logrotate.d/procustodibus-broker";

#[test]
fn freebsd_gets_a_newsyslog_entry_and_an_old_logrotate_config_is_flagged() {
    let stage = sysvinit_stage();
    stage.write("/etc/rc.subr", "", 0o644);
    let out = install_ok(&stage);
    contains(
        &out,
        "OK will install newsyslog configuration at /usr/local/etc/newsyslog.conf.d/procustodibus-broker.conf\n",
    );
    let source = std::fs::read_to_string(repo_file(
        "packaging/freebsd/procustodibus-broker.newsyslog.conf",
    ))
    .expect("read newsyslog config");
    assert_eq!(stage.read(NEWSYSLOG), source);
    assert_eq!(stage.mode(NEWSYSLOG), 0o644);
    let entry: Vec<&str> = source
        .lines()
        .find(|l| !l.starts_with('#') && !l.trim().is_empty())
        .expect("an entry")
        .split_whitespace()
        .collect();
    assert_eq!(
        entry,
        [
            "/var/log/procustodibus/broker/*.jsonl",
            "procustodibus-broker:procustodibus-broker",
            "640",
            "14",
            "*",
            "@T00",
            "BGZ",
            "/var/run/procustodibus_broker.child.pid",
            "1"
        ]
    );
    // The pid file is the one the rc.d script has daemon(8) write for the broker.
    contains(
        &std::fs::read_to_string(repo_file("packaging/freebsd/procustodibus-broker"))
            .expect("read rc.d script"),
        "child_pidfile=/var/run/procustodibus_broker.child.pid\n",
    );
    let out = stage.install_sh_ok(&["--uninstall", "--yes"], "uninstall SUCCESS");
    contains(&out, "OK will remove newsyslog configuration at");
    assert!(!stage.exists(NEWSYSLOG));

    // A logrotate config from before (root rotates the daemon's files) is kept, and flagged.
    let stage = sysvinit_stage();
    stage.write(
        LOGROTATE,
        "/var/log/procustodibus/broker/*.jsonl {\n    daily\n}\n",
        0o644,
    );
    let out = install_ok(&stage);
    contains(
        &out,
        "WARNING /etc/logrotate.d/procustodibus-broker rotates the files in /var/log/procustodibus/broker as root: add \"su procustodibus-broker procustodibus-broker\" to its blocks for them",
    );
    assert_eq!(
        stage.read(LOGROTATE),
        "/var/log/procustodibus/broker/*.jsonl {\n    daily\n}\n"
    );
}

const CNF_DIR: &str = "/etc/procustodibus/broker";
const CREDENTIALS_CONF: &str = "/etc/procustodibus/broker/broker-credentials.conf";
const SPOOL_DIR: &str = "/var/lib/procustodibus/broker";
const LOG_DIR: &str = "/var/log/procustodibus/broker";

/// The paths below `dirs` of the stage owned by `uid` or by group `gid`.
fn owned_by(stage: &Stage, dirs: &[&str], uid: u32, gid: u32) -> Vec<PathBuf> {
    stage
        .snapshot()
        .into_iter()
        .filter(|(path, entry)| {
            dirs.iter()
                .any(|d| path.starts_with(d.trim_start_matches('/')))
                && (entry.uid == uid || entry.gid == gid)
        })
        .map(|(path, _)| path)
        .collect()
}

#[test]
fn purge_that_keeps_the_files_but_deletes_the_user_hands_them_to_root() {
    assert!(
        is_root(),
        "this test creates the daemon user in the stage: run it as root"
    );
    let stage = sysvinit_stage();
    install_ok(&stage);
    // Setup ran: the daemon's credentials file; the daemon wrote its spool and a file pipe.
    std::fs::remove_file(stage.path(SETUP_CONF)).expect("remove setup");
    let (uid, gid) = stage.user(DAEMON_USER).expect("daemon user");
    let credentials = "[Broker.Credentials]\nPublicKey = cHVibGlj\nPrivateKey = cHJpdmF0ZQ==\n";
    for (path, text, mode) in [
        (CREDENTIALS_CONF, credentials, 0o600),
        (
            "/var/lib/procustodibus/broker/queue/0001.seg",
            "event\n",
            0o600,
        ),
        ("/var/log/procustodibus/broker/all.jsonl", "{}\n", 0o640),
    ] {
        stage.write(path, text, mode);
        stage.chown(path, uid, gid);
    }
    stage.chown("/var/lib/procustodibus/broker/queue", uid, gid);
    let kept = [CNF_DIR, SPOOL_DIR, LOG_DIR];
    assert!(!owned_by(&stage, &kept, uid, gid).is_empty());

    // remove daemon, remove broker; keep the configuration, the spool and the logs; delete
    // the user.
    let out =
        stage.install_sh_answering(&["--uninstall", "--purge"], &["y", "y", "n", "n", "n", "y"]);
    let text = stdout(&out);
    assert!(out.status.success(), "{}", describe(&out));
    contains(
        &text,
        "delete configuration and credentials? ([y]es, [n]o): ",
    );
    contains(&text, "delete user? ([y]es, [n]o): ");
    for path in kept {
        assert!(stage.exists(path), "{path} is kept:\n{text}");
    }
    contains(
        &text,
        "OK will hand what procustodibus-broker owns in /etc/procustodibus/broker to root\n",
    );
    assert_eq!(stage.user(DAEMON_USER), None, "the user is deleted");
    assert_eq!(
        owned_by(&stage, &kept, uid, gid),
        Vec::<PathBuf>::new(),
        "kept files still owned by the deleted uid {uid} or gid {gid}"
    );
    assert_eq!(stage.mode_owner(CREDENTIALS_CONF), (0o600, 0, 0));
    assert_eq!(stage.read(CREDENTIALS_CONF), credentials);
    assert_eq!(stage.mode_owner(SPOOL_DIR), (0o700, 0, 0));
}

const VENV: &str = "/opt/venvs/procustodibus-broker";
const VENV_LINK: &str = "/opt/venvs/procustodibus-broker/bin/procustodibus-broker";

/// A stage with the Python broker installed in its virtualenv (with its link in /usr/local/bin),
/// its daemon user, and a broker that has run setup.
fn python_broker_stage() -> Stage {
    let stage = sysvinit_stage();
    std::fs::remove_file(stage.path(SETUP_CONF)).expect("remove setup");
    stage.write(CREDENTIALS_CONF, "[Broker.Credentials]\n", 0o640);
    stage.add_user(DAEMON_USER, 998);
    if is_root() {
        stage.chown(CREDENTIALS_CONF, 0, 998);
    }
    stage.write(
        VENV_LINK,
        "#!/opt/venvs/procustodibus-broker/bin/python3\nfrom procustodibus_broker.cli import main\nmain()\n",
        0o755,
    );
    stage.write(&format!("{VENV}/bin/python3"), "", 0o755);
    stage.write(
        &format!(
            "{VENV}/lib/python3.11/site-packages/procustodibus_broker-1.1.1.dist-info/METADATA"
        ),
        "Metadata-Version: 2.1\nName: procustodibus-broker\nVersion: 1.1.1\n",
        0o644,
    );
    stage.mkdir("/usr/local/bin");
    std::os::unix::fs::symlink(VENV_LINK, stage.path(BIN)).expect("symlink");
    stage
}

#[test]
fn replacing_the_python_broker_keeps_its_documented_path_as_a_link_to_the_new_binary() {
    let stage = python_broker_stage();
    let out = install_ok(&stage);
    contains(&out, "delete python broker? ([y]es, [n]o): y\n");
    contains(
        &out,
        "OK will link /opt/venvs/procustodibus-broker/bin/procustodibus-broker to /usr/local/bin/procustodibus-broker\n",
    );
    // Only the link is left of the virtualenv, root's, to the new binary.
    let left: Vec<PathBuf> = stage
        .snapshot()
        .into_keys()
        .filter(|p| p.starts_with(VENV.trim_start_matches('/')))
        .collect();
    assert_eq!(
        left,
        [
            "opt/venvs/procustodibus-broker",
            "opt/venvs/procustodibus-broker/bin",
            "opt/venvs/procustodibus-broker/bin/procustodibus-broker"
        ]
        .map(PathBuf::from)
    );
    assert_eq!(
        std::fs::read_link(stage.path(VENV_LINK)).expect("a link"),
        Path::new(BIN)
    );
    if is_root() {
        let (_, uid, gid) = stage.mode_owner(VENV_LINK);
        assert_eq!((uid, gid), (0, 0), "owner of the link");
        for dir in [VENV, "/opt/venvs/procustodibus-broker/bin"] {
            assert_eq!(stage.mode_owner(dir), (0o755, 0, 0), "{dir}");
        }
    }
    // Installing again does not take the link for a Python broker, and keeps it.
    let out = install_ok(&stage);
    assert!(!out.contains("python broker"), "{out}");
    assert!(stage.exists(VENV_LINK));

    // --uninstall removes the link and the directories it made.
    let out = stage.install_sh_ok(&["--uninstall", "--yes"], "uninstall SUCCESS");
    contains(
        &out,
        "OK will remove the link /opt/venvs/procustodibus-broker/bin/procustodibus-broker\n",
    );
    assert!(!stage.exists(VENV), "{out}");
    assert!(stage.exists("/opt/venvs"), "/opt/venvs is left as it was");

    // An operator who keeps the virtualenv keeps it as it is.
    let stage = python_broker_stage();
    let before = stage.read(VENV_LINK);
    let out = stage.install_sh_answering(
        &["--install", "--binary", &broker_binary()],
        // upgrade? yes; install daemon? yes; delete python broker? no.
        &["y", "y", "n"],
    );
    assert!(out.status.success(), "{}", describe(&out));
    assert!(!stdout(&out).contains("OK will delete python broker"));
    assert!(
        stdout(&out).contains("delete python broker? ([y]es, [n]o): "),
        "{}",
        describe(&out)
    );
    assert_eq!(stage.read(VENV_LINK), before, "{}", describe(&out));
}

const UNIT: &str = "/etc/systemd/system/procustodibus-broker.service";

#[test]
fn the_deb_and_install_sh_never_both_own_the_host() {
    // install.sh refuses to install over the .deb (its unit in /etc would shadow the package's).
    let stage = sysvinit_stage();
    stage.write("/usr/lib/systemd/systemd", "", 0o755);
    stage.write(
        "/var/lib/dpkg/info/procustodibus-broker.list",
        "/usr/bin/procustodibus-broker\n",
        0o644,
    );
    stage.write(LOGROTATE, "# the .deb's\n", 0o644);
    let out = stage.install_sh(&["--install", "--yes", "--binary", &broker_binary()]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    contains(
        &stderr(&out),
        "ERROR the procustodibus-broker .deb is installed: it owns the broker on this host\n",
    );
    contains(&stdout(&out), "apt remove procustodibus-broker");
    assert!(
        !stage.exists(BIN) && !stage.exists(UNIT),
        "{}",
        describe(&out)
    );
    // Its --uninstall leaves the package's logrotate config alone.
    let out = stage.install_sh_ok(&["--uninstall", "--yes"], "uninstall SUCCESS");
    contains(
        &out,
        "kept logrotate configuration at /etc/logrotate.d/procustodibus-broker (the .deb's)\n",
    );
    assert_eq!(stage.read(LOGROTATE), "# the .deb's\n");

    // The .deb's postinst, run on a copy of this host, warns about install.sh's unit.
    assert!(
        is_root(),
        "the postinst runs in a mount namespace: run this test as root"
    );
    let host = HostCopy::new();
    let postinst = repo_file("packaging/debian/postinst");
    let out = host.run(&postinst, &["configure"]);
    assert!(out.status.success(), "postinst:\n{}", describe(&out));
    assert!(!stdout(&out).contains("WARNING"), "{}", describe(&out));
    std::fs::create_dir_all(host.path("/etc/systemd/system")).expect("mkdir");
    std::fs::write(host.path(UNIT), "[Service]\n").expect("write unit");
    let out = host.run(&postinst, &["configure"]);
    assert!(out.status.success(), "postinst:\n{}", describe(&out));
    contains(
        &stdout(&out),
        "procustodibus-broker: WARNING /etc/systemd/system/procustodibus-broker.service, from\ninstall.sh, overrides this package's unit",
    );
    let passwd = std::fs::read_to_string(host.path("/etc/passwd")).expect("passwd");
    assert!(
        passwd.contains("\nprocustodibus-broker:")
            && host.path("/var/lib/procustodibus/broker").is_dir(),
        "the postinst ran on the copy"
    );
}

/// Every file of a directory (not below), by name, with its bytes.
fn files_of(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| {
            let e = e.expect("entry");
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).expect("read"),
            )
        })
        .collect()
}

/// Two release builds of this tree, each from scratch in a target directory of its own (so
/// neither reuses the other's work, and their paths differ), give byte-identical tarballs and
/// .debs, whose binaries name no builder's path. Two full release builds take minutes: run it
/// with `cargo test -p broker-tests --test packaging_services -- --ignored reproducible`.
#[test]
#[ignore = "two release builds from scratch (minutes); run with -- --ignored reproducible"]
fn release_is_reproducible_and_names_no_builder_path() {
    let deb = output(cargo().args(["deb", "--version"])).status.success();
    let work = tempfile::Builder::new()
        .prefix("pcb-repro-")
        .tempdir()
        .expect("temp dir");
    let mut dists = Vec::new();
    for build in ["one", "two"] {
        let target = work.path().join(format!("target-{build}"));
        let dist = work.path().join(format!("dist-{build}"));
        let started = std::time::Instant::now();
        let out = output(
            Command::new(repo_file("packaging/dist.sh"))
                .env("DIST_DIR", &dist)
                .env("DIST_ALLOW_DIRTY", "1")
                .env("DIST_DEB", if deb { "yes" } else { "no" })
                .env("CARGO_TARGET_DIR", &target)
                .env_remove("DIST_GPG_KEY")
                .env_remove("DIST_NO_BUILD")
                .env_remove("SOURCE_DATE_EPOCH"),
        );
        assert!(out.status.success(), "dist.sh:\n{}", describe(&out));
        eprintln!("release build {build}: {:?}", started.elapsed());
        let binary = std::fs::read(target.join("release/procustodibus-broker")).expect("binary");
        let text = String::from_utf8_lossy(&binary);
        let home = std::env::var("CARGO_HOME")
            .unwrap_or_else(|_| format!("{}/.cargo", std::env::var("HOME").unwrap_or_default()));
        for path in [
            repo_root().display().to_string(),
            target.display().to_string(),
            home,
        ] {
            assert!(
                !text.contains(&path),
                "the release binary names the builder's path {path}"
            );
        }
        dists.push(dist);
    }
    let (one, two) = (files_of(&dists[0]), files_of(&dists[1]));
    assert_eq!(
        one.keys().collect::<Vec<_>>(),
        two.keys().collect::<Vec<_>>()
    );
    assert!(one.keys().any(|k| k.ends_with(".tar.gz")));
    assert!(!deb || one.keys().any(|k| k.ends_with(".deb")));
    for (name, bytes) in &one {
        assert!(two[name] == *bytes, "{name} differs between the two builds");
    }
}

/// Runs packaging/dist.sh of `repo` with the release binaries already built
/// (DIST_NO_BUILD=1), no .deb, into `dist`, with `envs` added.
fn dist_sh(repo: &Path, dist: &Path, envs: &[(&str, &str)]) -> std::process::Output {
    release_dir();
    let mut command = Command::new(repo.join("packaging/dist.sh"));
    command
        .env("DIST_DIR", dist)
        .env("DIST_NO_BUILD", "1")
        .env("DIST_DEB", "no")
        .env("CARGO_TARGET_DIR", target_dir())
        .env_remove("DIST_GPG_KEY")
        .env_remove("DIST_ALLOW_DIRTY")
        .env_remove("SOURCE_DATE_EPOCH");
    for (key, value) in envs {
        command.env(key, value);
    }
    output(&mut command)
}

#[test]
fn dist_refuses_a_tree_with_changes_and_dates_files_by_the_commit() {
    require_tool("git", "git");
    // A git checkout with what dist.sh packs (and a one-line crate for cargo metadata).
    let repo = tempfile::tempdir().expect("temp dir");
    let r = repo.path();
    run_ok(
        Command::new("cp")
            .arg("-a")
            .arg(repo_file("packaging"))
            .arg(r),
    );
    std::fs::create_dir_all(r.join("docs")).expect("mkdir");
    std::fs::create_dir_all(r.join("src")).expect("mkdir");
    for file in ["README.md", "LICENSE", "docs/reliability.md"] {
        std::fs::copy(repo_file(file), r.join(file)).expect("copy");
    }
    std::fs::write(
        r.join("Cargo.toml"),
        "[package]\nname = \"dist-test\"\nversion = \"0.0.0\"\nedition = \"2021\"\n\n[workspace]\n",
    )
    .expect("write Cargo.toml");
    std::fs::write(r.join("src/lib.rs"), "").expect("write lib.rs");
    let git = |args: &[&str]| {
        run_ok(
            Command::new("git")
                .args(["-c", "user.name=t", "-c", "user.email=t@example.invalid"])
                .args(args)
                .current_dir(r)
                .env("GIT_COMMITTER_DATE", "@1700000000 +0000")
                .env("GIT_AUTHOR_DATE", "@1700000000 +0000"),
        )
    };
    git(&["init", "-q"]);
    git(&["add", "-A"]);
    git(&["commit", "-qm", "release"]);
    let dist = tempfile::tempdir().expect("temp dir");

    // Clean: the tarball's files are dated by the commit.
    let out = dist_sh(r, dist.path(), &[]);
    assert!(out.status.success(), "dist.sh:\n{}", describe(&out));
    let tarball = dist.path().join(format!(
        "procustodibus-broker-{}.tar.gz",
        workspace_version()
    ));
    let listing = run_ok(Command::new("tar").args(["--utc", "-tvzf"]).arg(&tarball));
    assert!(
        listing.lines().all(|l| l.contains(" 2023-11-14 22:13")),
        "dated by the commit (2023-11-14 22:13:20 UTC):\n{listing}"
    );

    // An untracked file in packaging/ (it would be packed), then a changed one: refused.
    std::fs::write(r.join("packaging/systemd/stray.conf"), "x\n").expect("write");
    let out = dist_sh(r, dist.path(), &[]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    contains(
        &stderr(&out),
        "dist: ERROR the tree has uncommitted or untracked changes (above): commit or remove them, or set DIST_ALLOW_DIRTY=1 for a build that is not a release\n",
    );
    contains(&stderr(&out), "packaging/systemd/stray.conf");
    std::fs::remove_file(r.join("packaging/systemd/stray.conf")).expect("remove");
    std::fs::write(r.join("README.md"), "changed\n").expect("write");
    let out = dist_sh(r, dist.path(), &[]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    // DIST_ALLOW_DIRTY=1 builds anyway (not a release).
    let out = dist_sh(r, dist.path(), &[("DIST_ALLOW_DIRTY", "1")]);
    assert!(out.status.success(), "{}", describe(&out));
}

#[test]
fn dist_checks_each_signature_after_signing() {
    let real_gpg = require_tool("gpg", "gnupg");
    // A gpg whose detached signatures are garbage (a wrong key, a broken agent, a full disk).
    let fake = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        fake.path().join("gpg"),
        format!(
            "#!/bin/sh\nout=\nsign=\nprev=\nfor a in \"$@\"; do\n    [ \"$prev\" = --output ] && out=$a\n    [ \"$a\" = --detach-sign ] && sign=yes\n    prev=$a\ndone\nif [ -n \"$sign\" ]; then\n    echo 'not a signature' >\"$out\"\n    exit 0\nfi\nexec {} \"$@\"\n",
            real_gpg.display()
        ),
    )
    .expect("write fake gpg");
    std::fs::set_permissions(
        fake.path().join("gpg"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .expect("chmod");
    let gnupg_home = tempfile::Builder::new()
        .prefix("g")
        .tempdir_in("/tmp")
        .expect("GNUPGHOME");
    let path = format!(
        "{}:{}",
        fake.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let dist = tempfile::tempdir().expect("temp dir");
    let out = dist_sh(
        &repo_root(),
        dist.path(),
        &[
            ("PATH", &path),
            ("DIST_GPG_KEY", "release@example.invalid"),
            ("DIST_ALLOW_DIRTY", "1"),
            ("GNUPGHOME", &gnupg_home.path().display().to_string()),
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let tarball = dist.path().join(format!(
        "procustodibus-broker-{}.tar.gz",
        workspace_version()
    ));
    contains(
        &stderr(&out),
        &format!(
            "dist: ERROR the signature of {} does not verify (key release@example.invalid)\n",
            tarball.display()
        ),
    );
    assert!(
        !files_of(dist.path()).keys().any(|k| k.ends_with(".sig")),
        "a signature that does not verify is left: {:?}",
        files_of(dist.path()).keys()
    );
}

/// The gid of a group in an /etc/group file.
fn gid_in(group_file: &Path, name: &str) -> u32 {
    std::fs::read_to_string(group_file)
        .expect("read group")
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f[0] == name).then(|| f[2].parse().expect("gid"))
        })
        .unwrap_or_else(|| panic!("no group {name} in {}", group_file.display()))
}

#[test]
fn deb_postinst_and_install_sh_agree_on_an_existing_config_directory() {
    assert!(
        is_root(),
        "the postinst runs in a mount namespace: run this test as root"
    );
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    // The README's older steps (sudo mkdir -p, sudo cp): root:root 0755, setup to run.
    let prepare = |cnf_dir: &Path| {
        std::fs::create_dir_all(cnf_dir).expect("mkdir");
        std::fs::set_permissions(cnf_dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        std::fs::write(
            cnf_dir.join("broker.conf"),
            "[Broker]\nBroker = abcdef12345\n",
        )
        .expect("write");
        std::fs::write(
            cnf_dir.join("broker-setup.conf"),
            "[Broker.Setup]\nCode = c\n",
        )
        .expect("write");
        std::fs::set_permissions(
            cnf_dir.join("broker-setup.conf"),
            std::fs::Permissions::from_mode(0o600),
        )
        .expect("chmod");
    };
    let state = |path: &Path| {
        let m = std::fs::metadata(path).expect("config directory");
        (m.mode() & 0o7777, m.uid(), m.gid())
    };

    let host = HostCopy::new();
    let deb_dir = host.path(CNF_DIR);
    prepare(&deb_dir);
    let out = host.run(&repo_file("packaging/debian/postinst"), &["configure"]);
    assert!(out.status.success(), "postinst:\n{}", describe(&out));
    let deb_gid = gid_in(&host.path("/etc/group"), DAEMON_USER);
    // Closed to others, the daemon's group reads; the README says how to open it for setup.
    assert_eq!(state(&deb_dir), (0o750, 0, deb_gid));

    let stage = Stage::new();
    stage.mkdir("/etc/init.d");
    prepare(&stage.path(CNF_DIR));
    install_ok(&stage);
    let stage_gid = stage.group(DAEMON_USER).expect("daemon group");
    let (mode, uid, gid) = state(&stage.path(CNF_DIR));
    assert_eq!(
        (uid, gid),
        (0, stage_gid),
        "the same owner and group as the .deb's"
    );
    assert_eq!(mode & 0o7, 0, "closed to others, as the .deb's");

    // Once setup has run (the credentials there, the setup file gone), both close it: 0750.
    for dir in [&deb_dir, &stage.path(CNF_DIR)] {
        std::fs::remove_file(dir.join("broker-setup.conf")).expect("remove setup");
        std::fs::write(
            dir.join("broker-credentials.conf"),
            "[Broker.Credentials]\n",
        )
        .expect("write");
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o770)).expect("chmod");
    }
    let out = host.run(&repo_file("packaging/debian/postinst"), &["configure"]);
    assert!(out.status.success(), "postinst:\n{}", describe(&out));
    install_ok(&stage);
    assert_eq!(state(&deb_dir), (0o750, 0, deb_gid));
    assert_eq!(state(&stage.path(CNF_DIR)), (0o750, 0, stage_gid));
}

#[test]
fn sysvinit_stop_ends_a_supervisor_started_through_a_boot_link() {
    let sim = simulator(Default::default());
    let dir = BrokerDir::new();
    dir.write_config(&sim.url(), "");
    dir.set_up(&sim);
    let init = Sysvinit::with_delay(
        &dir,
        &format!("--loop=1 --config {}", dir.config().display()),
        5,
    );
    // Boot runs the script through /etc/rcN.d/S20procustodibus-broker; an operator checks and
    // stops it through /etc/init.d.
    let link = dir.path("S20procustodibus-broker");
    std::os::unix::fs::symlink(&init.script, &link).expect("symlink");
    let out = output(Command::new(&link).arg("start"));
    assert!(out.status.success(), "{}", describe(&out));
    let broker = pid_in(&init.pidfile).expect("the broker's pid");
    let supervisor = pid_in(&init.supervisor_pidfile).expect("the supervisor's pid");
    // The broker crashed; the supervisor waits to start it again: the service is up, and
    // start does not start a second supervisor.
    run_ok(Command::new("kill").args(["-KILL", &broker.to_string()]));
    assert!(wait_until(Duration::from_secs(5), || !process_alive(
        broker
    )));
    assert_eq!(
        init.run("status"),
        (
            Some(0),
            "started (the broker exited: starting it again)\n".into()
        )
    );
    assert_eq!(
        init.run("start"),
        (Some(0), format!("already started (pid {supervisor})\n"))
    );
    assert_eq!(
        init.run("stop"),
        (
            Some(0),
            "stopping Pro Custodibus Broker ...\nstopped\n".into()
        )
    );
    assert!(!process_alive(supervisor));
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(init.run("status"), (Some(3), "stopped\n".into()));
}
