//! Helpers of the packaging tests (tests/tests/packaging.rs): a staging root for
//! `packaging/install.sh --root` (never the machine's own /etc, /usr or users), snapshots of a
//! tree, the tools the tests need (a missing one fails the test and names the package), and the
//! release build, made once per test run.

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use crate::{binary, describe};

/// The daemon user (and group) install.sh creates.
pub const DAEMON_USER: &str = "procustodibus-broker";
/// The configuration directory install.sh sets up.
pub const CNF_DIR: &str = "/etc/procustodibus/broker";
/// broker.conf in it.
pub const BROKER_CONF: &str = "/etc/procustodibus/broker/broker.conf";
/// The setup file in it.
pub const SETUP_CONF: &str = "/etc/procustodibus/broker/broker-setup.conf";
/// The credentials file in it.
pub const CREDENTIALS_CONF: &str = "/etc/procustodibus/broker/broker-credentials.conf";
/// The installed broker binary.
pub const BIN: &str = "/usr/local/bin/procustodibus-broker";

/// The debug build of the broker (scripts/test builds it), which the install tests install.
pub fn broker_binary() -> String {
    binary("procustodibus-broker");
    binary("procustodibus-broker-credentials");
    binary("procustodibus-broker").display().to_string()
}

/// A stage with broker.conf and broker-setup.conf as an administrator copies them in: root's,
/// modes 0644 and 0600.
pub fn stage_with_config() -> Stage {
    let stage = Stage::new();
    stage.write(
        BROKER_CONF,
        "[Broker]\nBroker = abcdef12345\n\n[Pipe.All]\nFrom = alerts\nTo = file\nFile = /var/log/procustodibus/broker/all.jsonl\n",
        0o644,
    );
    stage.write(
        SETUP_CONF,
        "[Broker.Setup]\nCode = one-time-code\nExpires = 2099-01-01T00:00:00Z\n",
        0o600,
    );
    stage
}

/// Runs `sh -c SCRIPT` as user `uid` and group `gid` (`setpriv`, no supplementary groups): what
/// the daemon user, or anything running as it, can do.
pub fn sh_as(uid: u32, gid: u32, script: &str) -> Output {
    require_tool("setpriv", "util-linux");
    output(
        Command::new("setpriv")
            .arg(format!("--reuid={uid}"))
            .arg(format!("--regid={gid}"))
            .arg("--clear-groups")
            .args(["sh", "-c", script])
            .current_dir("/")
            .stdin(std::process::Stdio::null()),
    )
}

/// The repository's root directory.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// A file of the repository, by its path from the root.
pub fn repo_file(path: &str) -> PathBuf {
    repo_root().join(path)
}

/// Fails the test, naming the Debian package to install, when `tool` is not on PATH.
pub fn require_tool(tool: &str, package: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(tool))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!(
                "the packaging tests need `{tool}`, which is not on PATH: install it \
                 (apt-get install {package}); scripts/test should"
            )
        })
}

/// Whether the tests run as root (then users are created and owners checked).
pub fn is_root() -> bool {
    // /proc/self belongs to the process's effective user.
    std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

/// Runs a command to the end and returns its output (panics when it cannot start).
pub fn output(command: &mut Command) -> Output {
    command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"))
}

/// Runs a command that must succeed; returns its standard output.
pub fn run_ok(command: &mut Command) -> String {
    let out = output(command);
    assert!(
        out.status.success(),
        "{command:?} failed:\n{}",
        describe(&out)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Cargo's target directory, the one that holds the test executables.
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/debug/deps/test-hash -> target
    exe.parent()
        .and_then(Path::parent)
        .and_then(Path::parent)
        .expect("target directory")
        .to_path_buf()
}

/// The cargo that runs the tests.
pub fn cargo() -> Command {
    let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    command
        .current_dir(repo_root())
        .env("CARGO_TARGET_DIR", target_dir());
    command
}

/// The directory of the release binaries, built (`cargo build --release -p broker-cli --bins`,
/// which does nothing when they are up to date) once per test run.
pub fn release_dir() -> PathBuf {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let out = output(cargo().args([
                "build",
                "--release",
                "--locked",
                "-p",
                "broker-cli",
                "--bins",
            ]));
            if out.status.success() {
                Ok(target_dir().join("release"))
            } else {
                Err(describe(&out))
            }
        })
        .clone()
        .unwrap_or_else(|e| panic!("cargo build --release failed:\n{e}"))
}

/// The workspace's version (`[workspace.package] version`), which the binaries report.
pub fn workspace_version() -> String {
    let text = std::fs::read_to_string(repo_file("Cargo.toml")).expect("read Cargo.toml");
    let package = text
        .split("[workspace.package]")
        .nth(1)
        .expect("[workspace.package] in Cargo.toml");
    package
        .lines()
        .find_map(|l| l.trim().strip_prefix("version = \""))
        .and_then(|v| v.strip_suffix('"'))
        .expect("version in [workspace.package]")
        .to_string()
}

/// A staging root for `install.sh --root`: a temporary directory with the /etc files that
/// `useradd --prefix` reads and writes: passwd, group, shadow, gshadow
/// with root alone, and a copy of the machine's login.defs.
pub struct Stage {
    /// The temporary directory (deleted on drop).
    pub dir: tempfile::TempDir,
}

impl Default for Stage {
    fn default() -> Self {
        Self::new()
    }
}

impl Stage {
    /// A new staging root with /etc (as above), /usr/sbin/nologin and /etc/logrotate.d.
    pub fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("pcb-stage-")
            .tempdir()
            .expect("create staging directory");
        let stage = Stage { dir };
        stage.write("/etc/passwd", "root:x:0:0:root:/root:/bin/sh\n", 0o644);
        stage.write("/etc/group", "root:x:0:\n", 0o644);
        stage.write("/etc/shadow", "root:*:20000:0:99999:7:::\n", 0o640);
        stage.write("/etc/gshadow", "root:*::\n", 0o640);
        let defs = std::fs::read_to_string("/etc/login.defs").unwrap_or_else(|_| {
            "SYS_UID_MIN 100\nSYS_UID_MAX 999\nSYS_GID_MIN 100\nSYS_GID_MAX 999\n".into()
        });
        stage.write("/etc/login.defs", &defs, 0o644);
        stage.write("/usr/sbin/nologin", "#!/bin/sh\nexit 1\n", 0o755);
        stage.mkdir("/etc/logrotate.d");
        stage
    }

    /// Lets other users (the daemon user of [`sh_as`]) into the stage: a temporary directory
    /// is root's alone (0700), where the machine's root directory is 0755.
    pub fn open_to_users(&self) {
        std::fs::set_permissions(self.root(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod the stage");
    }

    /// The staging root's directory.
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// A path of the target system inside the stage (`/etc/x` -> `STAGE/etc/x`).
    pub fn path(&self, path: &str) -> PathBuf {
        self.root().join(path.trim_start_matches('/'))
    }

    /// Creates a directory (and its parents) in the stage.
    pub fn mkdir(&self, path: &str) {
        std::fs::create_dir_all(self.path(path))
            .unwrap_or_else(|e| panic!("mkdir {path} in the stage: {e}"));
    }

    /// Writes a file (creating its parents) with a mode.
    pub fn write(&self, path: &str, text: &str, mode: u32) {
        let full = self.path(path);
        std::fs::create_dir_all(full.parent().expect("parent")).expect("create parent");
        std::fs::write(&full, text).unwrap_or_else(|e| panic!("write {path} in the stage: {e}"));
        std::fs::set_permissions(&full, std::fs::Permissions::from_mode(mode)).expect("set mode");
    }

    /// Reads a file of the stage.
    pub fn read(&self, path: &str) -> String {
        std::fs::read_to_string(self.path(path))
            .unwrap_or_else(|e| panic!("read {path} in the stage: {e}"))
    }

    /// Whether a path exists in the stage (a dangling symlink counts).
    pub fn exists(&self, path: &str) -> bool {
        self.path(path).symlink_metadata().is_ok()
    }

    /// Mode bits (0o7777), uid and gid of a path in the stage.
    pub fn mode_owner(&self, path: &str) -> (u32, u32, u32) {
        let meta = self
            .path(path)
            .symlink_metadata()
            .unwrap_or_else(|e| panic!("{path} in the stage: {e}"));
        (meta.mode() & 0o7777, meta.uid(), meta.gid())
    }

    /// Mode bits of a path in the stage.
    pub fn mode(&self, path: &str) -> u32 {
        self.mode_owner(path).0
    }

    /// Changes the owner of a path in the stage.
    pub fn chown(&self, path: &str, uid: u32, gid: u32) {
        std::os::unix::fs::lchown(self.path(path), Some(uid), Some(gid))
            .unwrap_or_else(|e| panic!("chown {path} in the stage: {e}"));
    }

    /// The uid and gid of a user in the stage's /etc/passwd.
    pub fn user(&self, name: &str) -> Option<(u32, u32)> {
        self.read("/etc/passwd").lines().find_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            (fields.first() == Some(&name) && fields.len() >= 4).then(|| {
                (
                    fields[2].parse().expect("uid"),
                    fields[3].parse().expect("gid"),
                )
            })
        })
    }

    /// The gid of a group in the stage's /etc/group.
    pub fn group(&self, name: &str) -> Option<u32> {
        self.read("/etc/group").lines().find_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            (fields.first() == Some(&name) && fields.len() >= 3)
                .then(|| fields[2].parse().expect("gid"))
        })
    }

    /// Adds a system user and its group to the stage's files, as a previous installer would
    /// have (uid = gid = `id`).
    pub fn add_user(&self, name: &str, id: u32) {
        let append = |path: &str, line: String| {
            let mut text = self.read(path);
            text.push_str(&line);
            std::fs::write(self.path(path), text).expect("append");
        };
        append(
            "/etc/passwd",
            format!("{name}:x:{id}:{id}::/var/lib/procustodibus/broker:/usr/sbin/nologin\n"),
        );
        append("/etc/group", format!("{name}:x:{id}:\n"));
        append("/etc/shadow", format!("{name}:!:20000::::::\n"));
        append("/etc/gshadow", format!("{name}:!::\n"));
    }

    /// Runs packaging/install.sh with `--root STAGE` and `args`, standard input closed.
    pub fn install_sh(&self, args: &[&str]) -> Output {
        output(
            Command::new(repo_file("packaging/install.sh"))
                .args(args)
                .arg("--root")
                .arg(self.root())
                .stdin(std::process::Stdio::null()),
        )
    }

    /// Runs install.sh as [`Stage::install_sh`] does and asserts that it succeeded and that its
    /// output ends with `SUCCESS_LINE`; returns the standard output.
    pub fn install_sh_ok(&self, args: &[&str], success_line: &str) -> String {
        let out = self.install_sh(args);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success() && stdout.trim_end().ends_with(success_line),
            "install.sh {args:?} --root STAGE:\n{}",
            describe(&out)
        );
        stdout
    }

    /// A snapshot of the whole stage.
    pub fn snapshot(&self) -> BTreeMap<PathBuf, Entry> {
        snapshot(self.root())
    }
}

/// What a snapshot keeps of a path: its kind, mode, owner, and for a file its size, inode and
/// modification time, for a symlink its target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub kind: char,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub inode: u64,
    pub mtime: (i64, i64),
    pub link: Option<PathBuf>,
}

/// Every path below `root` (relative), with its [`Entry`].
pub fn snapshot(root: &Path) -> BTreeMap<PathBuf, Entry> {
    let mut entries = BTreeMap::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(path) = pending.pop() {
        let meta = path.symlink_metadata().expect("metadata");
        let kind = if meta.is_dir() {
            'd'
        } else if meta.file_type().is_symlink() {
            'l'
        } else {
            'f'
        };
        let relative = path.strip_prefix(root).expect("below root").to_path_buf();
        entries.insert(
            relative,
            Entry {
                kind,
                mode: meta.mode() & 0o7777,
                uid: meta.uid(),
                gid: meta.gid(),
                size: if kind == 'd' { 0 } else { meta.len() },
                inode: meta.ino(),
                mtime: (meta.mtime(), meta.mtime_nsec()),
                link: std::fs::read_link(&path).ok(),
            },
        );
        if kind == 'd' {
            for child in std::fs::read_dir(&path).expect("read dir") {
                pending.push(child.expect("dir entry").path());
            }
        }
    }
    entries
}

/// The differences between two snapshots, one line each (empty when they are the same).
pub fn snapshot_diff(
    before: &BTreeMap<PathBuf, Entry>,
    after: &BTreeMap<PathBuf, Entry>,
) -> Vec<String> {
    let mut diff = Vec::new();
    for (path, entry) in before {
        match after.get(path) {
            None => diff.push(format!("removed {}", path.display())),
            Some(other) if other != entry => diff.push(format!(
                "changed {}: {entry:?} -> {other:?}",
                path.display()
            )),
            Some(_) => {}
        }
    }
    for path in after.keys().filter(|p| !before.contains_key(*p)) {
        diff.push(format!("added {}", path.display()));
    }
    diff
}

/// The shell scripts of the repository (by their `#!` line): packaging/, scripts/, .ci/ and the
/// service scripts, which start with `#!/sbin/openrc-run` or `#!/bin/sh`.
pub fn shell_scripts() -> Vec<PathBuf> {
    let mut scripts = Vec::new();
    let mut pending: Vec<PathBuf> = ["packaging", "scripts", ".ci"]
        .iter()
        .map(|d| repo_file(d))
        .collect();
    while let Some(path) = pending.pop() {
        if path.is_dir() {
            for child in std::fs::read_dir(&path).expect("read dir") {
                pending.push(child.expect("dir entry").path());
            }
            continue;
        }
        let Ok(text) = std::fs::read(&path) else {
            continue;
        };
        let first = text.split(|b| *b == b'\n').next().unwrap_or_default();
        let first = String::from_utf8_lossy(first);
        if first.starts_with("#!")
            && (first.ends_with("/sh")
                || first.contains("/sh ")
                || first.ends_with("bash")
                || first.ends_with("openrc-run"))
        {
            scripts.push(path);
        }
    }
    scripts.sort();
    scripts
}

/// The highest `GLIBC_x.y` symbol version a binary needs (from `objdump -T`).
pub fn highest_glibc(binary: &Path) -> String {
    require_tool("objdump", "binutils");
    let text = run_ok(Command::new("objdump").arg("-T").arg(binary));
    let mut versions: Vec<(Vec<u32>, String)> = text
        .split_whitespace()
        .filter_map(|w| w.trim_start_matches('(').strip_prefix("GLIBC_"))
        .filter(|v| v.chars().next().is_some_and(|c| c.is_ascii_digit()))
        .map(|v| {
            let v = v.trim_end_matches(')');
            (
                v.split('.').filter_map(|n| n.parse().ok()).collect(),
                v.to_string(),
            )
        })
        .collect();
    versions.sort();
    versions
        .pop()
        .map(|(_, v)| v)
        .unwrap_or_else(|| panic!("{} needs no GLIBC_ version", binary.display()))
}

/// Writes packaging/sysvinit/procustodibus-broker to `dest` (executable) with the settings named
/// in `settings` (its `NAME=value` lines) replaced by the values given; panics when the script
/// has no such setting.
pub fn write_sysvinit_script(dest: &Path, settings: &[(&str, String)]) {
    let script = std::fs::read_to_string(repo_file("packaging/sysvinit/procustodibus-broker"))
        .expect("read the sysvinit script");
    let mut text = String::new();
    let mut replaced = Vec::new();
    for line in script.lines() {
        let name = line.split('=').next().unwrap_or_default();
        match settings.iter().find(|(setting, _)| *setting == name) {
            Some((setting, value)) if line.contains('=') => {
                text.push_str(&format!("{setting}={value}\n"));
                replaced.push(*setting);
            }
            _ => text.push_str(&format!("{line}\n")),
        }
    }
    for (setting, _) in settings {
        assert!(
            replaced.contains(setting),
            "the sysvinit script has no {setting}= line"
        );
    }
    std::fs::write(dest, text).expect("write the sysvinit script");
    std::fs::set_permissions(dest, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

/// The pid in a pid file, when it holds one.
pub fn pid_in(pidfile: &Path) -> Option<u32> {
    std::fs::read_to_string(pidfile).ok()?.trim().parse().ok()
}

/// Whether a process runs (and is not a zombie).
pub fn process_alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| {
            let state = stat.rsplit(") ").next().unwrap_or_default();
            !state.starts_with('Z')
        })
        .unwrap_or(false)
}

/// Kills (SIGKILL) the processes named by pid files when dropped, for a test that fails while a
/// service script's processes run: the first files first (a supervisor before what it runs).
pub struct KillOnDrop(pub Vec<PathBuf>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        for pidfile in &self.0 {
            if let Some(pid) = pid_in(pidfile) {
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
            }
        }
    }
}

impl Stage {
    /// Runs packaging/install.sh with `--root STAGE` and `args`, with `answers` (one a line) on
    /// its standard input, as an operator answering its questions.
    pub fn install_sh_answering(&self, args: &[&str], answers: &[&str]) -> Output {
        use std::io::Write;
        let mut child = Command::new(repo_file("packaging/install.sh"))
            .args(args)
            .arg("--root")
            .arg(self.root())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("start install.sh");
        let mut input = child.stdin.take().expect("stdin");
        for answer in answers {
            // install.sh may exit before it asks them all.
            let _ = writeln!(input, "{answer}");
        }
        drop(input);
        child.wait_with_output().expect("wait for install.sh")
    }
}

/// A copy of the machine's /etc and empty /var/lib and /var/log, which [`HostCopy::run`] mounts
/// in their places in a mount namespace of its own: a maintainer script of the .deb runs there
/// as on a real host (useradd, getent, install -o) and changes nothing of the machine's.
pub struct HostCopy {
    /// The temporary directory holding etc/, lib/ and log/ (deleted on drop).
    pub dir: tempfile::TempDir,
}

impl Default for HostCopy {
    fn default() -> Self {
        Self::new()
    }
}

impl HostCopy {
    /// Copies /etc (`cp -a`) and makes the empty var/lib and var/log.
    pub fn new() -> Self {
        require_tool("unshare", "util-linux");
        let dir = tempfile::Builder::new()
            .prefix("pcb-host-")
            .tempdir()
            .expect("temp dir");
        run_ok(Command::new("cp").arg("-a").arg("/etc").arg(dir.path()));
        for sub in ["var/lib", "var/log"] {
            std::fs::create_dir_all(dir.path().join(sub)).expect("mkdir");
        }
        HostCopy { dir }
    }

    /// A path of the copy, by its path on the host (`/etc/x` -> `COPY/etc/x`).
    pub fn path(&self, path: &str) -> PathBuf {
        self.dir.path().join(path.trim_start_matches('/'))
    }

    /// Runs `program` with `args` with the copy mounted on /etc, /var/lib and /var/log.
    pub fn run(&self, program: &Path, args: &[&str]) -> Output {
        output(
            Command::new("unshare")
                .args(["--mount", "--propagation", "private", "sh", "-c"])
                .arg(
                    "mount --bind \"$1/etc\" /etc && mount --bind \"$1/var/lib\" /var/lib && \
                     mount --bind \"$1/var/log\" /var/log && shift && exec \"$@\"",
                )
                .arg("sh")
                .arg(self.dir.path())
                .arg(program)
                .args(args)
                .stdin(std::process::Stdio::null()),
        )
    }
}
