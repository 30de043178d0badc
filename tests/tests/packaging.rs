//! Packaging (issue 5): packaging/install.sh into a staging root (`--root`, never the machine's
//! own /etc, /usr or users) for each init system, `--dry-run`, `--uninstall` and `--purge`,
//! upgrades over our own previous install and over the Python broker's virtualenv; shellcheck on
//! every shell script; the systemd unit through `systemd-analyze verify` and `security`; the
//! sysvinit script running a real broker; the release tarball (checksum, signature, contents,
//! the unpacked installer and binary, the example broker.conf); the .deb.
//!
//! A tool these tests need that is missing fails the test with the package to install. The
//! release binaries are built once per run (`cargo build --release -p broker-cli --bins`).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use broker_tests::packaging::*;
use broker_tests::*;

const CREDENTIALS_BIN: &str = "/usr/local/bin/procustodibus-broker-credentials";
const UNIT: &str = "/etc/systemd/system/procustodibus-broker.service";
const UNIT_LINK: &str = "/etc/systemd/system/multi-user.target.wants/procustodibus-broker.service";
const INITD: &str = "/etc/init.d/procustodibus-broker";
const RC_D: &str = "/usr/local/etc/rc.d/procustodibus-broker";
const RC_CONF_D: &str = "/etc/rc.conf.d/procustodibus_broker";
const LOGROTATE: &str = "/etc/logrotate.d/procustodibus-broker";
const LOG_DIR: &str = "/var/log/procustodibus/broker";
const SPOOL_DIR: &str = "/var/lib/procustodibus/broker";
const VENV: &str = "/opt/venvs/procustodibus-broker";

/// Marks a stage as a system of an init system, as install.sh detects it.
fn mark_init(stage: &Stage, init: &str) {
    match init {
        "systemd" => stage.write("/usr/lib/systemd/systemd", "", 0o755),
        "openrc" => stage.write("/sbin/openrc-run", "", 0o755),
        "sysvinit" => stage.mkdir("/etc/init.d"),
        "freebsd" => stage.write("/etc/rc.subr", "", 0o644),
        other => panic!("no init system {other}"),
    }
}

/// A stage with the configuration (`stage_with_config`) on a system of `init`.
fn stage_for(init: &str) -> Stage {
    let stage = stage_with_config();
    mark_init(&stage, init);
    stage
}

/// Runs `install.sh --install --yes` with the broker binary on `stage`; its output.
fn install_ok(stage: &Stage) -> String {
    stage.install_sh_ok(
        &["--install", "--yes", "--binary", &broker_binary()],
        "install SUCCESS",
    )
}

/// Installs on a fresh stage of `init` and checks the common tree and the detection line.
fn fresh_install_for(init: &str) -> (Stage, String) {
    let stage = stage_for(init);
    let out = install_ok(&stage);
    assert_fresh_install(&stage, &out);
    contains(&out, &format!("init system {init} detected\n"));
    (stage, out)
}

fn contains(text: &str, needle: &str) {
    assert!(
        text.contains(needle),
        "expected {needle:?} in the output:\n{text}"
    );
}

/// The daemon user's uid and gid in the stage (when the tests run as root, which creates it).
fn daemon_ids(stage: &Stage) -> Option<(u32, u32)> {
    if !is_root() {
        return None;
    }
    let (uid, gid) = stage
        .user(DAEMON_USER)
        .expect("install.sh created the daemon user in the stage's /etc/passwd");
    assert_eq!(stage.group(DAEMON_USER), Some(gid), "its group");
    Some((uid, gid))
}

fn assert_mode_owner(stage: &Stage, path: &str, mode: u32, owner: Option<(u32, u32)>) {
    let (actual, uid, gid) = stage.mode_owner(path);
    assert_eq!(
        actual, mode,
        "mode of {path}: {actual:o}, expected {mode:o}"
    );
    if let Some(owner) = owner {
        assert_eq!((uid, gid), owner, "owner of {path}");
    }
}

/// What every fresh install builds, whatever the init system: the binaries (which run), the
/// daemon user, the directories with their owners and modes, the setup file made readable by
/// the daemon; and the product page's messages.
fn assert_fresh_install(stage: &Stage, out: &str) {
    let version = workspace_version();
    let ids = daemon_ids(stage);
    let root = is_root().then_some((0, 0));
    if is_root() {
        contains(out, "running as root\n");
        contains(
            out,
            "WARNING daemon user procustodibus-broker not found\ncreate user? ([y]es, [q]uit): y\nOK will create user\ncreated user\n",
        );
        let passwd = stage.read("/etc/passwd");
        let line = passwd
            .lines()
            .find(|l| l.starts_with("procustodibus-broker:"))
            .expect("passwd line");
        assert!(
            line.ends_with(":/nonexistent:/usr/sbin/nologin"),
            "home and shell of the daemon user: {line}"
        );
    }
    contains(out, &format!("install {version}\n"));
    contains(
        out,
        "broker configuration found at /etc/procustodibus/broker/broker.conf\n",
    );
    contains(
        out,
        "broker setup found at /etc/procustodibus/broker/broker-setup.conf\n",
    );
    contains(out, "install SUCCESS");

    for path in [BIN, CREDENTIALS_BIN] {
        assert_mode_owner(stage, path, 0o755, root);
    }
    let installed = run_ok(Command::new(stage.path(BIN)).arg("--version"));
    assert_eq!(installed.trim(), format!("procustodibus-broker {version}"));

    let gid = ids.map(|(_, gid)| gid);
    if is_root() {
        // Setup is still to run: the daemon writes the credentials file into the directory,
        // whose sticky bit keeps it from replacing root's files there, and deletes the setup
        // file, now its own (tests/tests/packaging_privilege.rs tests this layout).
        assert_mode_owner(stage, CNF_DIR, 0o1770, gid.map(|g| (0, g)));
        assert_mode_owner(stage, SETUP_CONF, 0o600, ids);
    }
    assert_mode_owner(stage, BROKER_CONF, 0o644, root);
    assert_mode_owner(stage, LOG_DIR, 0o750, ids);
    assert_mode_owner(stage, SPOOL_DIR, 0o700, ids);
    assert_mode_owner(stage, "/var/log/procustodibus", 0o755, root);
    assert_mode_owner(stage, "/var/lib/procustodibus", 0o755, root);
}

/// The service file installed at `path` is `packaging/<source>`, with `mode`.
fn assert_service_file(stage: &Stage, path: &str, source: &str, mode: u32) {
    assert_eq!(
        stage.read(path),
        std::fs::read_to_string(repo_file(source)).expect("read service file"),
        "{path} is {source}"
    );
    assert_mode_owner(stage, path, mode, is_root().then_some((0, 0)));
}

fn assert_logrotate(stage: &Stage) {
    assert_service_file(
        stage,
        LOGROTATE,
        "packaging/logrotate/procustodibus-broker",
        0o644,
    );
}

fn link_target(stage: &Stage, path: &str) -> String {
    std::fs::read_link(stage.path(path))
        .unwrap_or_else(|e| panic!("{path} is a symlink: {e}"))
        .display()
        .to_string()
}

/// Uninstalls (keeping the configuration) and checks that none of `paths` is left, while the
/// configuration, the spool and the user are.
fn uninstall_removes(stage: &Stage, paths: &[&str]) {
    let out = stage.install_sh_ok(&["--uninstall", "--yes"], "uninstall SUCCESS");
    for path in [BIN, CREDENTIALS_BIN].iter().chain(paths) {
        assert!(
            !stage.exists(path),
            "{path} is left after --uninstall:\n{out}"
        );
    }
    for path in [BROKER_CONF, SPOOL_DIR, LOG_DIR] {
        assert!(
            stage.exists(path),
            "{path} was removed by --uninstall:\n{out}"
        );
    }
    assert!(
        stage.exists(SETUP_CONF) || stage.exists(CREDENTIALS_CONF),
        "the setup or credentials file was removed by --uninstall:\n{out}"
    );
    if is_root() {
        assert!(stage.user(DAEMON_USER).is_some(), "the daemon user is kept");
    }
    contains(
        &out,
        "kept configuration and credentials in /etc/procustodibus/broker (use --uninstall --purge to delete)",
    );
}

#[test]
fn install_for_systemd_builds_the_tree_and_uninstall_removes_it() {
    let (stage, out) = fresh_install_for("systemd");
    contains(
        &out,
        "WARNING systemd daemon not found at /etc/systemd/system/procustodibus-broker.service\ninstall daemon? ([y]es, [q]uit): y\n",
    );
    contains(&out, "daemon not started: installed into ");
    assert_service_file(
        &stage,
        UNIT,
        "packaging/systemd/procustodibus-broker.service",
        0o644,
    );
    assert_eq!(link_target(&stage, UNIT_LINK), UNIT, "enabled");
    assert_logrotate(&stage);
    assert!(!stage.exists(INITD));

    uninstall_removes(&stage, &[UNIT, UNIT_LINK, LOGROTATE]);
}

#[test]
fn install_for_openrc_builds_the_tree_and_uninstall_removes_it() {
    let (stage, _) = fresh_install_for("openrc");
    assert_service_file(
        &stage,
        INITD,
        "packaging/openrc/procustodibus-broker",
        0o755,
    );
    let link = "/etc/runlevels/default/procustodibus-broker";
    assert_eq!(link_target(&stage, link), INITD, "enabled");
    assert_logrotate(&stage);
    assert!(!stage.exists(UNIT));
    let script = stage.read(INITD);
    contains(
        &script,
        "output_log=/var/log/procustodibus/broker/daemon.log\n",
    );
    contains(
        &script,
        "error_log=/var/log/procustodibus/broker/daemon.err\n",
    );

    uninstall_removes(&stage, &[INITD, link, LOGROTATE]);
}

#[test]
fn install_for_sysvinit_builds_the_tree_and_uninstall_removes_it() {
    let (stage, _) = fresh_install_for("sysvinit");
    assert_service_file(
        &stage,
        INITD,
        "packaging/sysvinit/procustodibus-broker",
        0o755,
    );
    let starts = "/etc/rc2.d/S20procustodibus-broker";
    let stops = "/etc/rc0.d/K20procustodibus-broker";
    assert_eq!(
        link_target(&stage, starts),
        "../init.d/procustodibus-broker"
    );
    assert_eq!(link_target(&stage, stops), "../init.d/procustodibus-broker");
    assert_logrotate(&stage);

    uninstall_removes(&stage, &[INITD, starts, stops, LOGROTATE]);
}

#[test]
fn install_for_freebsd_builds_the_tree_and_uninstall_removes_it() {
    let (stage, _) = fresh_install_for("freebsd");
    assert_service_file(
        &stage,
        RC_D,
        "packaging/freebsd/procustodibus-broker",
        0o755,
    );
    assert_eq!(
        stage.read(RC_CONF_D),
        "# procustodibus-broker: written by install.sh\nprocustodibus_broker_enable=\"YES\"\n"
    );
    // FreeBSD rotates with newsyslog, not logrotate.
    assert!(!stage.exists(LOGROTATE));
    let script = stage.read(RC_D);
    contains(&script, "name=procustodibus_broker\n");

    uninstall_removes(&stage, &[RC_D, RC_CONF_D]);
}

#[test]
fn init_flag_overrides_detection_and_none_installs_no_service() {
    let stage = stage_for("systemd");
    let out = stage.install_sh_ok(
        &[
            "--install",
            "--yes",
            "--init",
            "sysvinit",
            "--binary",
            &broker_binary(),
        ],
        "install SUCCESS",
    );
    contains(&out, "init system sysvinit (--init)\n");
    assert!(stage.exists(INITD));
    assert!(!stage.exists(UNIT), "no systemd unit with --init sysvinit");

    let bare = stage_with_config();
    let out = bare.install_sh_ok(
        &[
            "--install",
            "--yes",
            "--init=none",
            "--binary",
            &broker_binary(),
        ],
        "install SUCCESS",
    );
    contains(&out, "no service installed (--init none)");
    assert!(bare.exists(BIN));
    for path in [UNIT, INITD, RC_D] {
        assert!(!bare.exists(path), "{path} with --init none");
    }

    let out = bare.install_sh(&["--install", "--init", "upstart"]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    contains(&stderr(&out), "unknown init system: upstart");
}

#[test]
fn install_without_config_warns_with_the_fix() {
    let stage = Stage::new();
    mark_init(&stage, "systemd");
    let out = install_ok(&stage);
    contains(
        &out,
        "WARNING broker configuration not found at /etc/procustodibus/broker/broker.conf\n",
    );
    contains(&out, "download broker.conf from the broker's setup page");
    contains(&out, "WARNING broker credentials not found at /etc/procustodibus/broker/broker-credentials.conf, nor setup at /etc/procustodibus/broker/broker-setup.conf\n");
    contains(&out, "download broker-setup.conf");
    // Nothing to run setup with, so the directory is the daemon's to read only.
    assert_eq!(stage.mode(CNF_DIR), 0o750);
}

#[test]
fn install_refuses_a_missing_binary_and_a_closed_prompt() {
    let stage = stage_for("systemd");
    let out = stage.install_sh(&[
        "--install",
        "--yes",
        "--binary",
        "/nonexistent/procustodibus-broker",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    contains(
        &stderr(&out),
        "ERROR binary not found at /nonexistent/procustodibus-broker",
    );
    contains(&stdout(&out), "install FAIL");

    if is_root() {
        // No --yes and no terminal: the first question (create user?) cannot be answered.
        let out = stage.install_sh(&["--install", "--binary", &broker_binary()]);
        assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
        contains(&stderr(&out), "run with --yes to answer yes");
        assert!(!stage.exists(BIN), "nothing installed after the refusal");
    }
}

#[test]
fn dry_run_changes_nothing() {
    let stage = stage_for("systemd");
    let before = stage.snapshot();
    let out = stage.install_sh_ok(
        &["--install", "--dry-run", "--binary", &broker_binary()],
        "install SUCCESS",
    );
    contains(&out, "dry run: nothing will be changed\n");
    contains(&out, "would run: cp ");
    if is_root() {
        contains(&out, "would run: useradd --prefix ");
    }
    let diff = snapshot_diff(&before, &stage.snapshot());
    assert!(
        diff.is_empty(),
        "--install --dry-run changed the stage:\n{}\n{out}",
        diff.join("\n")
    );

    // Installed: neither a dry-run upgrade nor a dry-run purge changes anything.
    install_ok(&stage);
    let before = stage.snapshot();
    for args in [
        &["--install", "--dry-run", "--binary", &broker_binary()][..],
        &["--uninstall", "--purge", "--dry-run"][..],
    ] {
        let success = if args[0] == "--install" {
            "install SUCCESS"
        } else {
            "uninstall SUCCESS"
        };
        let out = stage.install_sh_ok(args, success);
        let diff = snapshot_diff(&before, &stage.snapshot());
        assert!(
            diff.is_empty(),
            "{args:?} changed the stage:\n{}\n{out}",
            diff.join("\n")
        );
    }
}

/// Writes the credentials file as setup does (the daemon's, 0600) and deletes the setup file.
fn finish_setup(stage: &Stage) {
    std::fs::remove_file(stage.path(SETUP_CONF)).expect("remove setup");
    stage.write(
        CREDENTIALS_CONF,
        "[Broker.Credentials]\nPublicKey = cHVibGlj\nPrivateKey = cHJpdmF0ZQ==\n",
        0o600,
    );
    if let Some((uid, gid)) = daemon_ids(stage) {
        stage.chown(CREDENTIALS_CONF, uid, gid);
    }
}

#[test]
fn uninstall_keeps_config_and_credentials_and_purge_deletes_them() {
    let stage = stage_for("systemd");
    install_ok(&stage);
    finish_setup(&stage);
    let conf = stage.read(BROKER_CONF);
    let credentials = stage.read(CREDENTIALS_CONF);
    let credentials_meta = stage.mode_owner(CREDENTIALS_CONF);

    uninstall_removes(&stage, &[UNIT, UNIT_LINK, LOGROTATE]);
    assert_eq!(stage.read(BROKER_CONF), conf);
    assert_eq!(stage.read(CREDENTIALS_CONF), credentials);
    assert_eq!(stage.mode_owner(CREDENTIALS_CONF), credentials_meta);

    let out = stage.install_sh_ok(&["--uninstall", "--purge", "--yes"], "uninstall SUCCESS");
    contains(
        &out,
        "delete configuration and credentials? ([y]es, [n]o): y\n",
    );
    for path in [
        CNF_DIR,
        "/etc/procustodibus",
        SPOOL_DIR,
        "/var/lib/procustodibus",
        LOG_DIR,
        "/var/log/procustodibus",
    ] {
        assert!(!stage.exists(path), "{path} is left after --purge:\n{out}");
    }
    if is_root() {
        assert_eq!(stage.user(DAEMON_USER), None, "the daemon user is deleted");
        assert_eq!(stage.group(DAEMON_USER), None, "and its group");
    }
}

/// A directory with stand-ins for older binaries, which report `version`.
fn fake_binaries(version: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    for name in ["procustodibus-broker", "procustodibus-broker-credentials"] {
        let path = dir.path().join(name);
        std::fs::write(
            &path,
            format!("#!/bin/sh\necho \"procustodibus-broker {version}\"\n"),
        )
        .expect("write fake binary");
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .expect("chmod");
    }
    dir
}

/// Content, mode and owner of the configuration files.
fn config_state(stage: &Stage) -> Vec<(String, String, (u32, u32, u32))> {
    [BROKER_CONF, CREDENTIALS_CONF]
        .iter()
        .map(|p| (p.to_string(), stage.read(p), stage.mode_owner(p)))
        .collect()
}

#[test]
fn upgrade_over_our_previous_install_keeps_config_credentials_owners_and_modes() {
    let stage = stage_for("systemd");
    let old = fake_binaries("1.9.0");
    let old_binary = old
        .path()
        .join("procustodibus-broker")
        .display()
        .to_string();
    stage.install_sh_ok(
        &["--install", "--yes", "--binary", &old_binary],
        "install SUCCESS",
    );
    let ids = daemon_ids(&stage);
    finish_setup(&stage);
    // The administrator's edits: a tighter broker.conf, and a file pipe elsewhere in the unit.
    std::fs::write(stage.path(BROKER_CONF), "[Broker]\nBroker = abcdef12345\n").expect("edit");
    std::fs::set_permissions(
        stage.path(BROKER_CONF),
        std::os::unix::fs::PermissionsExt::from_mode(0o640),
    )
    .expect("chmod");
    if let Some((_, gid)) = ids {
        stage.chown(BROKER_CONF, 0, gid);
    }
    let unit = stage.read(UNIT).replace(
        "ReadWritePaths=/var/log/procustodibus/broker\n",
        "ReadWritePaths=/var/log/procustodibus/broker\nReadWritePaths=/var/log/custom/example.log\n",
    );
    std::fs::write(stage.path(UNIT), unit).expect("edit unit");
    let config = config_state(&stage);

    let out = install_ok(&stage);
    let version = workspace_version();
    contains(
        &out,
        "procustodibus-broker 1.9.0 found at /usr/local/bin/procustodibus-broker\n",
    );
    contains(
        &out,
        &format!("WARNING upgrade procustodibus-broker 1.9.0 to procustodibus-broker {version}\nupgrade? ([y]es, [q]uit): y\n"),
    );
    contains(
        &out,
        "broker credentials found at /etc/procustodibus/broker/broker-credentials.conf\n",
    );
    contains(
        &out,
        "kept ReadWritePaths=/var/log/custom/example.log from the unit it replaces\n",
    );
    if is_root() {
        contains(&out, "daemon user procustodibus-broker found\n");
        assert_eq!(daemon_ids(&stage), ids, "the same daemon user");
    }
    assert_eq!(
        config_state(&stage),
        config,
        "config and credentials kept as they were"
    );
    let installed = run_ok(Command::new(stage.path(BIN)).arg("--version"));
    assert_eq!(installed.trim(), format!("procustodibus-broker {version}"));
    // Setup has run: the daemon no longer writes to the config directory.
    assert_mode_owner(&stage, CNF_DIR, 0o750, ids.map(|(_, g)| (0, g)));
    let expected_unit = std::fs::read_to_string(repo_file(
        "packaging/systemd/procustodibus-broker.service",
    ))
    .expect("read unit")
    .replace(
        "ReadWritePaths=/var/log/procustodibus/broker\n",
        "ReadWritePaths=/var/log/procustodibus/broker\nReadWritePaths=/var/log/custom/example.log\n",
    );
    assert_eq!(stage.read(UNIT), expected_unit);
    assert_eq!(link_target(&stage, UNIT_LINK), UNIT);
}

#[test]
fn upgrade_over_the_python_broker_keeps_config_credentials_owners_and_modes() {
    let stage = Stage::new();
    mark_init(&stage, "systemd");
    // The Python broker's install: its user, its virtualenv (with a link to it in
    // /usr/local/bin), its unit (enabled for default.target, with an administrator's
    // ReadWritePaths), and a broker that has run setup.
    stage.add_user(DAEMON_USER, 998);
    stage.write(
        &format!("{VENV}/bin/procustodibus-broker"),
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
    std::os::unix::fs::symlink(format!("{VENV}/bin/procustodibus-broker"), stage.path(BIN))
        .expect("symlink");
    stage.write(
        UNIT,
        "[Unit]\nDescription=Pro Custodibus Broker\n\n[Service]\nUser=procustodibus-broker\nExecStart=/opt/venvs/procustodibus-broker/bin/procustodibus-broker --loop=120\nReadWritePaths=/var/log/procustodibus/broker\nReadWritePaths=/var/log/custom\n\n[Install]\nWantedBy=default.target\n",
        0o644,
    );
    let old_link = "/etc/systemd/system/default.target.wants/procustodibus-broker.service";
    stage.mkdir("/etc/systemd/system/default.target.wants");
    std::os::unix::fs::symlink(UNIT, stage.path(old_link)).expect("symlink");
    stage.write(BROKER_CONF, "[Broker]\nBroker = abcdef12345\n", 0o640);
    stage.write(
        CREDENTIALS_CONF,
        "[Broker.Credentials]\nPublicKey = cHVibGlj\nPrivateKey = cHJpdmF0ZQ==\n",
        0o640,
    );
    if is_root() {
        stage.chown(BROKER_CONF, 0, 998);
        stage.chown(CREDENTIALS_CONF, 0, 998);
    }
    let config = config_state(&stage);

    let out = install_ok(&stage);
    let version = workspace_version();
    contains(
        &out,
        "python broker 1.1.1 found at /opt/venvs/procustodibus-broker\n",
    );
    contains(
        &out,
        &format!("WARNING upgrade python broker 1.1.1 to procustodibus-broker {version}\nupgrade? ([y]es, [q]uit): y\n"),
    );
    contains(
        &out,
        "WARNING systemd daemon at /etc/systemd/system/procustodibus-broker.service is not this version's\nreplace daemon? ([y]es, [q]uit): y\n",
    );
    contains(&out, "delete python broker? ([y]es, [n]o): y\n");
    if is_root() {
        contains(&out, "daemon user procustodibus-broker found\n");
        assert_eq!(stage.user(DAEMON_USER), Some((998, 998)), "the same user");
        assert_eq!(
            stage
                .read("/etc/passwd")
                .matches("procustodibus-broker:")
                .count(),
            1
        );
    }
    assert_eq!(
        config_state(&stage),
        config,
        "config and credentials kept as they were"
    );
    // The virtualenv is deleted; its documented path is left as a link to the new binary
    // (issue 11, item 13: tests/tests/packaging_services.rs).
    assert_eq!(
        run_ok(
            Command::new("find")
                .arg(stage.path(VENV))
                .args(["-mindepth", "1"])
        ),
        format!(
            "{}\n{}\n",
            stage.path(&format!("{VENV}/bin")).display(),
            stage
                .path(&format!("{VENV}/bin/procustodibus-broker"))
                .display()
        ),
        "the virtualenv is deleted"
    );
    let meta = stage.path(BIN).symlink_metadata().expect("binary");
    assert!(
        meta.is_file(),
        "the link to the virtualenv is replaced by the binary"
    );
    let installed = run_ok(Command::new(stage.path(BIN)).arg("--version"));
    assert_eq!(installed.trim(), format!("procustodibus-broker {version}"));
    let unit = stage.read(UNIT);
    contains(
        &unit,
        "ExecStart=/usr/local/bin/procustodibus-broker --loop=120\n",
    );
    contains(
        &unit,
        "ReadWritePaths=/var/log/procustodibus/broker\nReadWritePaths=/var/log/custom\n",
    );
    assert_eq!(link_target(&stage, UNIT_LINK), UNIT);
    assert!(
        !stage.exists(old_link),
        "the Python unit's default.target link is gone"
    );
}

#[test]
fn shellcheck_passes_on_every_shell_script() {
    let shellcheck = require_tool("shellcheck", "shellcheck");
    let scripts = shell_scripts();
    for expected in [
        "packaging/install.sh",
        "packaging/dist.sh",
        "packaging/openrc/procustodibus-broker",
        "packaging/sysvinit/procustodibus-broker",
        "packaging/freebsd/procustodibus-broker",
        "packaging/debian/postinst",
        "packaging/debian/postrm",
        "scripts/test",
    ] {
        assert!(
            scripts.contains(&repo_file(expected)),
            "{expected} is among the shell scripts found: {scripts:?}"
        );
    }
    let out = output(Command::new(shellcheck).args(&scripts));
    assert!(
        out.status.success(),
        "shellcheck found problems:\n{}",
        describe(&out)
    );
}

/// The exposure figure of `systemd-analyze security` output.
fn exposure(text: &str) -> f64 {
    let line = text
        .lines()
        .find(|l| l.contains("Overall exposure level for procustodibus-broker.service:"))
        .unwrap_or_else(|| panic!("no exposure level in:\n{text}"));
    line.split(':')
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no number in {line:?}"))
}

#[test]
fn systemd_unit_passes_verify_and_security_with_exposure_at_most_1_5() {
    let analyze = require_tool("systemd-analyze", "systemd");
    let units = Path::new("/usr/lib/systemd/system");
    assert!(
        units.join("multi-user.target").is_file(),
        "systemd's own units are missing from {} (apt-get install systemd)",
        units.display()
    );
    // A stage that looks like a systemd system: systemd's units, /usr/bin/kill (ExecReload).
    let stage = stage_for("systemd");
    stage.mkdir("/usr/lib/systemd/system");
    run_ok(
        Command::new("cp")
            .arg("-a")
            .arg(units)
            .arg(stage.path("/usr/lib/systemd/")),
    );
    stage.mkdir("/usr/bin");
    std::fs::copy(require_tool("kill", "procps"), stage.path("/usr/bin/kill")).expect("copy kill");
    std::os::unix::fs::symlink("usr/bin", stage.path("/bin")).expect("symlink /bin");
    install_ok(&stage);

    let root = format!("--root={}", stage.root().display());
    let out =
        output(Command::new(&analyze).args(["verify", &root, "procustodibus-broker.service"]));
    assert!(
        out.status.success() && !String::from_utf8_lossy(&out.stderr).contains("procustodibus"),
        "systemd-analyze verify:\n{}",
        describe(&out)
    );

    let out = output(Command::new(&analyze).args([
        "security",
        "--offline=true",
        &root,
        "procustodibus-broker.service",
    ]));
    let text = stdout(&out);
    assert!(
        out.status.success(),
        "systemd-analyze security:\n{}",
        describe(&out)
    );
    let figure = exposure(&text);
    assert!(figure <= 1.5, "exposure {figure} > 1.5:\n{text}");

    // The .deb's unit is the same but for the binary's path, and as safe.
    let main = std::fs::read_to_string(repo_file("packaging/systemd/procustodibus-broker.service"))
        .expect("read unit");
    let deb = std::fs::read_to_string(repo_file("packaging/debian/procustodibus-broker.service"))
        .expect("read .deb unit");
    assert_eq!(
        deb,
        main.replace(
            "ExecStart=/usr/local/bin/procustodibus-broker ",
            "ExecStart=/usr/bin/procustodibus-broker "
        )
    );
    let out = output(
        Command::new(&analyze)
            .args(["security", "--offline=true"])
            .arg(repo_file("packaging/debian/procustodibus-broker.service")),
    );
    assert!(exposure(&stdout(&out)) <= 1.5, "{}", describe(&out));
}

/// Stops a daemon started by an init script (by the pid in its pid file) when a test fails.
struct PidFileGuard(std::path::PathBuf);

impl Drop for PidFileGuard {
    fn drop(&mut self) {
        if let Ok(pid) = std::fs::read_to_string(&self.0) {
            let _ = Command::new("kill").arg("-KILL").arg(pid.trim()).status();
        }
    }
}

#[test]
fn sysvinit_script_starts_reports_reloads_and_stops_a_real_broker() {
    require_tool("su", "util-linux");
    assert!(
        is_root(),
        "this test runs the sysvinit script, which starts the broker with su: run it as root"
    );
    let sim = simulator(Default::default());
    let dir = BrokerDir::new();
    let out_file = dir.path("all.jsonl");
    dir.write_config(&sim.url(), &file_pipe("All", "alerts", None, &out_file));
    dir.set_up(&sim);
    let raws = sim.enqueue_generated("alerts", 3).expect("enqueue");

    // The script with its paths in the test's directory, run as root instead of the daemon user.
    let pidfile = dir.path("broker.pid");
    let logfile = dir.path("daemon.log");
    let script = std::fs::read_to_string(repo_file("packaging/sysvinit/procustodibus-broker"))
        .expect("read script");
    let mut replaced = 0;
    let script: String = script
        .lines()
        .map(|line| {
            let new = match line.split('=').next().unwrap_or_default() {
                "command" => format!("command={}", binary("procustodibus-broker").display()),
                "command_args" => format!(
                    "command_args=\"--loop=1 --config {}\"",
                    dir.config().display()
                ),
                "user" => "user=root".into(),
                "group" => "group=root".into(),
                "pidfile" => format!("pidfile={}", pidfile.display()),
                "logfile" => format!("logfile={}", logfile.display()),
                "spool_dir" => format!("spool_dir={}", dir.spool().display()),
                "log_dir" => format!("log_dir={}", dir.path("logs").display()),
                _ => return format!("{line}\n"),
            };
            replaced += 1;
            format!("{new}\n")
        })
        .collect();
    assert_eq!(replaced, 8, "the script's settings:\n{script}");
    let path = dir.path("procustodibus-broker");
    std::fs::write(&path, script).expect("write script");
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    let _guard = PidFileGuard(pidfile.clone());
    let init = |command: &str| output(Command::new(&path).arg(command));

    let out = init("start");
    assert!(out.status.success(), "start:\n{}", describe(&out));
    assert_eq!(
        stdout(&out),
        "starting Pro Custodibus Broker ...\nstarted\n"
    );
    let out = init("status");
    assert_eq!(
        (out.status.code(), stdout(&out).as_str()),
        (Some(0), "started\n")
    );
    assert!(
        wait_until(Duration::from_secs(20), || dir.lines("all.jsonl").len()
            == 3),
        "the daemon delivered the events: {:?}\nlog:\n{}",
        dir.lines("all.jsonl"),
        std::fs::read_to_string(&logfile).unwrap_or_default()
    );
    assert_eq!(dir.lines("all.jsonl"), expected_lines(&raws));

    // reload: SIGHUP; the broker reopens its file and goes on.
    std::fs::rename(&out_file, dir.path("all.jsonl.1")).expect("rotate");
    let out = init("reload");
    assert_eq!(
        (out.status.code(), stdout(&out).as_str()),
        (Some(0), "reloaded\n")
    );
    let more = sim.enqueue_generated("alerts", 2).expect("enqueue");
    assert!(
        wait_until(Duration::from_secs(20), || dir.lines("all.jsonl").len()
            == 2),
        "events after the reload go to a new file"
    );
    assert_eq!(dir.lines("all.jsonl"), expected_lines(&more));

    let pid = std::fs::read_to_string(&pidfile).expect("pid file");
    let out = init("stop");
    assert_eq!(
        (out.status.code(), stdout(&out).as_str()),
        (Some(0), "stopping Pro Custodibus Broker ...\nstopped\n")
    );
    assert!(
        !Path::new(&format!("/proc/{}", pid.trim())).exists(),
        "the broker is gone after stop"
    );
    let out = init("status");
    assert_eq!(
        (out.status.code(), stdout(&out).as_str()),
        (Some(3), "stopped\n")
    );
    assert_eq!(
        std::fs::metadata(&logfile).map(|m| m.is_file()).ok(),
        Some(true)
    );
}

/// A throwaway GnuPG home with a signing key, in a short path (gpg-agent's socket path must be
/// short); the agent is stopped on drop.
struct GnupgHome {
    dir: tempfile::TempDir,
    fingerprint: String,
}

impl GnupgHome {
    fn new() -> Self {
        require_tool("gpg", "gnupg");
        require_tool("gpgconf", "gnupg");
        let dir = tempfile::Builder::new()
            .prefix("g")
            .tempdir_in("/tmp")
            .expect("GNUPGHOME");
        let mut home = GnupgHome {
            dir,
            fingerprint: String::new(),
        };
        run_ok(home.gpg().args([
            "--pinentry-mode",
            "loopback",
            "--passphrase",
            "",
            "--quick-gen-key",
            "Broker Release Test <release-test@example.invalid>",
            "ed25519",
            "sign",
            "1d",
        ]));
        let keys = run_ok(home.gpg().args(["--list-keys", "--with-colons"]));
        let fingerprint = keys
            .lines()
            .find_map(|l| l.strip_prefix("fpr:"))
            .and_then(|rest| rest.split(':').find(|f| !f.is_empty()))
            .expect("fingerprint")
            .to_string();
        home.fingerprint = fingerprint;
        home
    }

    fn gpg(&self) -> Command {
        let mut command = Command::new("gpg");
        command.arg("--batch").env("GNUPGHOME", self.dir.path());
        command
    }
}

impl Drop for GnupgHome {
    fn drop(&mut self) {
        let _ = Command::new("gpgconf")
            .args(["--kill", "gpg-agent"])
            .env("GNUPGHOME", self.dir.path())
            .status();
    }
}

#[test]
fn release_tarball_verifies_unpacks_and_runs() {
    for (tool, package) in [("sha256sum", "coreutils"), ("tar", "tar"), ("gzip", "gzip")] {
        require_tool(tool, package);
    }
    let release = release_dir();
    let gnupg = GnupgHome::new();
    let work = tempfile::tempdir().expect("temp dir");
    let dist = work.path().join("dist");
    let out = output(
        Command::new(repo_file("packaging/dist.sh"))
            .env("DIST_DIR", &dist)
            .env("DIST_GPG_KEY", &gnupg.fingerprint)
            .env("DIST_NO_BUILD", "1")
            // A test run may come from a tree with changes (dist.sh refuses one for a release).
            .env("DIST_ALLOW_DIRTY", "1")
            // Also where git cannot read the checkout (not one, another owner's).
            .env("SOURCE_DATE_EPOCH", "1700000000")
            .env("DIST_DEB", "no")
            .env("GNUPGHOME", gnupg.dir.path())
            .env("CARGO_TARGET_DIR", target_dir()),
    );
    assert!(out.status.success(), "dist.sh:\n{}", describe(&out));
    let version = workspace_version();
    let name = format!("procustodibus-broker-{version}");
    let tarball = format!("{name}.tar.gz");
    let latest = "procustodibus-broker-latest.tar.gz";

    for file in [tarball.as_str(), latest] {
        let check = run_ok(
            Command::new("sha256sum")
                .args(["-c", &format!("{file}.sha256")])
                .current_dir(&dist),
        );
        assert_eq!(check, format!("{file}: OK\n"));
        let out = output(
            gnupg
                .gpg()
                .arg("--verify")
                .arg(dist.join(format!("{file}.sig")))
                .arg(dist.join(file)),
        );
        assert!(
            out.status.success() && stderr(&out).contains("Good signature"),
            "gpg --verify {file}.sig:\n{}",
            describe(&out)
        );
    }
    let bytes = std::fs::read(dist.join(&tarball)).expect("read tarball");
    assert_eq!(
        bytes,
        std::fs::read(dist.join(latest)).expect("read latest")
    );

    // A changed byte fails both checks.
    let mut tampered = bytes.clone();
    let middle = tampered.len() / 2;
    tampered[middle] ^= 1;
    std::fs::write(dist.join(&tarball), &tampered).expect("tamper");
    let out = output(
        Command::new("sha256sum")
            .args(["-c", &format!("{tarball}.sha256")])
            .current_dir(&dist),
    );
    assert!(
        !out.status.success(),
        "sha256sum -c accepted a changed tarball"
    );
    let out = output(
        gnupg
            .gpg()
            .arg("--verify")
            .arg(dist.join(format!("{tarball}.sig")))
            .arg(dist.join(&tarball)),
    );
    assert!(
        !out.status.success(),
        "gpg --verify accepted a changed tarball"
    );
    std::fs::write(dist.join(&tarball), &bytes).expect("restore");

    // Contents: everything under procustodibus-broker-X.Y.Z/, owned by root.
    let listing = run_ok(Command::new("tar").arg("-tvzf").arg(dist.join(&tarball)));
    for line in listing.lines() {
        assert!(
            line.contains(" root/root ") || line.contains(" 0/0 "),
            "owner: {line}"
        );
        let path = line.split_whitespace().last().unwrap_or_default();
        assert!(
            path.starts_with(&format!("{name}/")),
            "outside {name}/: {line}"
        );
    }
    for file in [
        "procustodibus-broker",
        "procustodibus-broker-credentials",
        "install.sh",
        "README.md",
        "LICENSE",
        "broker.conf.example",
        "docs/reliability.md",
        "systemd/procustodibus-broker.service",
        "openrc/procustodibus-broker",
        "sysvinit/procustodibus-broker",
        "freebsd/procustodibus-broker",
        "logrotate/procustodibus-broker",
    ] {
        assert!(
            listing
                .lines()
                .any(|l| l.ends_with(&format!("{name}/{file}"))),
            "{file} missing from the tarball:\n{listing}"
        );
    }

    // Unpacked: the installer's help and version, the binary's version.
    let unpack = work.path().join("unpack");
    std::fs::create_dir(&unpack).expect("mkdir");
    run_ok(
        Command::new("tar")
            .arg("-xzf")
            .arg(dist.join(latest))
            .current_dir(&unpack),
    );
    let tree = unpack.join(&name);
    let help = run_ok(Command::new(tree.join("install.sh")).arg("--help"));
    for flag in [
        "--install",
        "--uninstall",
        "--purge",
        "--yes",
        "--dry-run",
        "--root DIR",
        "--binary PATH",
        "--init NAME",
        "--help",
    ] {
        contains(&help, flag);
    }
    assert_eq!(
        run_ok(Command::new(tree.join("procustodibus-broker")).arg("--version")),
        format!("procustodibus-broker {version}\n")
    );
    assert_eq!(
        run_ok(Command::new(tree.join("install.sh")).arg("--version")),
        format!("procustodibus-broker/install {version}\n")
    );
    assert_eq!(
        std::fs::read(tree.join("LICENSE")).expect("LICENSE"),
        std::fs::read(repo_file("LICENSE")).expect("LICENSE")
    );

    // The unpacked installer installs the binaries beside it (no --binary).
    let stage = stage_for("systemd");
    let out = output(
        Command::new(tree.join("install.sh"))
            .args(["--install", "--yes", "--root"])
            .arg(stage.root())
            .stdin(std::process::Stdio::null()),
    );
    assert!(
        out.status.success(),
        "unpacked install.sh:\n{}",
        describe(&out)
    );
    assert_eq!(
        std::fs::read(stage.path(BIN)).expect("installed binary"),
        std::fs::read(tree.join("procustodibus-broker")).expect("tarball binary")
    );

    // The example broker.conf: every pipe commented out, and valid.
    let example = std::fs::read_to_string(tree.join("broker.conf.example")).expect("example");
    assert!(
        example.contains("# [Pipe.ExampleSyslog]\n") && example.contains("# [Pipe.ExampleFile]\n")
    );
    for line in example.lines() {
        let active = line.trim_start();
        assert!(
            active.starts_with('#') || !active.to_ascii_lowercase().starts_with("[pipe."),
            "an active pipe in the example: {line}"
        );
        assert!(
            !active.starts_with("To"),
            "an active pipe key in the example: {line}"
        );
    }
    let dir = BrokerDir::new();
    write_credentials(&dir.credentials(), [7; 32]);
    std::fs::write(
        dir.config(),
        format!("{example}Spool = {}\n", dir.spool().display()),
    )
    .expect("write config");
    let out = output(
        Command::new(release.join("procustodibus-broker"))
            .arg("--check-config")
            .arg("--config")
            .arg(dir.config()),
    );
    assert!(
        out.status.success() && stdout(&out).starts_with("config OK: "),
        "--check-config on the example:\n{}",
        describe(&out)
    );
}

#[test]
fn readme_states_the_glibc_the_release_binary_needs() {
    let needed = highest_glibc(&release_dir().join("procustodibus-broker"));
    let readme = std::fs::read_to_string(repo_file("README.md")).expect("README");
    contains(&readme, &format!("glibc {needed} or newer"));
    contains(&readme, "cargo build --release");
}

#[test]
fn deb_builds_with_the_binaries_and_the_unit() {
    let dpkg_deb = require_tool("dpkg-deb", "dpkg");
    let has_cargo_deb = output(cargo().args(["deb", "--version"])).status.success();
    assert!(
        has_cargo_deb,
        "the .deb test needs cargo-deb, which is not installed: cargo install cargo-deb --locked"
    );
    release_dir();
    let out_dir = tempfile::tempdir().expect("temp dir");
    let out = output(
        cargo()
            .args(["deb", "--no-build", "-p", "broker-cli", "--output"])
            .arg(out_dir.path()),
    );
    assert!(out.status.success(), "cargo deb:\n{}", describe(&out));
    let version = workspace_version();
    let deb = out_dir
        .path()
        .join(format!("procustodibus-broker_{version}-1_amd64.deb"));
    assert!(
        deb.is_file(),
        "{} missing:\n{}",
        deb.display(),
        describe(&out)
    );

    let contents = run_ok(Command::new(&dpkg_deb).arg("--contents").arg(&deb));
    for path in [
        "./usr/bin/procustodibus-broker",
        "./usr/bin/procustodibus-broker-credentials",
        "./usr/lib/systemd/system/procustodibus-broker.service",
        "./etc/logrotate.d/procustodibus-broker",
        "./usr/share/doc/procustodibus-broker/examples/broker.conf",
    ] {
        assert!(
            contents.lines().any(|l| l.ends_with(path)),
            "{path} missing from the .deb:\n{contents}"
        );
    }
    let info = run_ok(Command::new(&dpkg_deb).arg("--info").arg(&deb));
    contains(&info, "Package: procustodibus-broker\n");
    contains(&info, &format!("Version: {version}-1\n"));
    let glibc = highest_glibc(&release_dir().join("procustodibus-broker"));
    contains(&info, &format!("libc6 (>= {glibc})"));

    // The unit in the package is packaging/debian's; postinst creates the user and enables it.
    let unit = run_ok(
        Command::new("sh")
            .arg("-c")
            .arg("dpkg-deb --fsys-tarfile \"$1\" | tar -xOf - ./usr/lib/systemd/system/procustodibus-broker.service")
            .arg("sh")
            .arg(&deb),
    );
    assert_eq!(
        unit,
        std::fs::read_to_string(repo_file("packaging/debian/procustodibus-broker.service"))
            .expect("read unit")
    );
    let postinst = run_ok(
        Command::new("sh")
            .arg("-c")
            .arg("dpkg-deb --ctrl-tarfile \"$1\" | tar -xOf - ./postinst")
            .arg("sh")
            .arg(&deb),
    );
    contains(&postinst, "useradd --system");
    contains(
        &postinst,
        "deb-systemd-helper enable procustodibus-broker.service",
    );
}
