//! Privileges (issue 11, items 1, 2, 3, 5 and 11): install.sh runs as root on a tree the daemon
//! user can partly write, and the broker may be run as root on its configuration. Each test
//! stages a `--root` (never the machine's own /etc or users), acts as the daemon user with
//! `setpriv` where the attack needs it, and checks that root changed nothing it was led to.
//!
//! These tests need root (to create the daemon user and act as it); as another user they
//! check nothing and say so.

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use broker_tests::packaging::*;
use broker_tests::*;

const LOG_DIR: &str = "/var/log/procustodibus/broker";

/// Whether the test can run (as root); prints why not otherwise.
fn running_as_root() -> bool {
    if !is_root() {
        eprintln!("skipped: the privilege tests run as root");
    }
    is_root()
}

/// The install.sh arguments of these tests: install the debug broker, no service.
fn install_args(yes: bool) -> Vec<String> {
    let mut args = vec!["--install".to_string()];
    if yes {
        args.push("--yes".into());
    }
    args.extend(["--init", "none", "--binary"].map(String::from));
    args.push(broker_binary());
    args
}

/// Runs `install.sh --install --yes` on the stage.
fn install(stage: &Stage) -> Output {
    let args = install_args(true);
    stage.install_sh(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

/// Installs on the stage, which must succeed; returns the daemon user's uid and gid.
fn install_ok(stage: &Stage) -> (u32, u32) {
    let out = install(stage);
    assert!(
        out.status.success() && stdout(&out).contains("install SUCCESS"),
        "{}",
        describe(&out)
    );
    stage.user(DAEMON_USER).expect("the daemon user")
}

/// Starts install.sh (`--install`, no `--yes`) on the stage with piped standard streams.
fn spawn_install(stage: &Stage) -> std::process::Child {
    Command::new(repo_file("packaging/install.sh"))
        .args(install_args(false))
        .arg("--root")
        .arg(stage.root())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn install.sh")
}

/// Runs install.sh (`--install`, no `--yes`) on the stage with `answers` on its standard input.
fn install_answering(stage: &Stage, answers: &str) -> Output {
    let mut child = spawn_install(stage);
    let mut stdin = child.stdin.take().expect("stdin");
    // The installer may stop before reading every answer.
    let _ = stdin.write_all(answers.as_bytes());
    drop(stdin);
    child.wait_with_output().expect("wait for install.sh")
}

/// Asserts that install.sh failed and said `message` on standard error.
fn assert_refused(out: &Output, message: &str) {
    assert_eq!(out.status.code(), Some(1), "{}", describe(out));
    assert!(
        stderr(out).contains(message),
        "expected {message:?} on standard error:\n{}",
        describe(out)
    );
}

/// Runs `sh -c SCRIPT` as the daemon user, which must succeed.
fn daemon_does(ids: (u32, u32), script: &str) {
    let out = sh_as(ids.0, ids.1, script);
    assert!(
        out.status.success(),
        "as the daemon: {script}\n{}",
        describe(&out)
    );
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// Item 1: while setup is pending the daemon user can create entries in the configuration
/// directory. A link it plants at the credentials path (to a 0644 file), a hard link there, and
/// a file of its own open to others are refused, and nothing they lead to is changed.
#[test]
fn install_changes_no_link_no_shared_file_and_no_file_of_the_daemon() {
    if !running_as_root() {
        return;
    }
    let stage = stage_with_config();
    stage.open_to_users();
    let ids = install_ok(&stage);
    stage.write("/etc/victim.conf", "root's\n", 0o644);
    let victim = stage.path("/etc/victim.conf");
    let credentials = stage.path(CREDENTIALS_CONF);

    daemon_does(
        ids,
        &format!("ln -s {} {}", victim.display(), credentials.display()),
    );
    let out = install(&stage);
    assert_refused(
        &out,
        "/etc/procustodibus/broker/broker-credentials.conf is a symbolic link",
    );
    assert_eq!(stage.mode_owner("/etc/victim.conf"), (0o644, 0, 0));

    // A hard link (the daemon makes one where fs.protected_hardlinks is 0, or on FreeBSD).
    std::fs::remove_file(&credentials).expect("remove the link");
    std::fs::hard_link(&victim, &credentials).expect("hard link");
    let out = install(&stage);
    assert_refused(&out, "broker-credentials.conf has 2 hard links");
    assert_eq!(stage.mode_owner("/etc/victim.conf"), (0o644, 0, 0));

    // The daemon's own file, open to others: install.sh leaves it to the administrator.
    std::fs::remove_file(&credentials).expect("remove the hard link");
    install_ok(&stage);
    daemon_does(
        ids,
        &format!("umask 022 && echo key >{}", credentials.display()),
    );
    let out = install(&stage);
    assert_refused(
        &out,
        "owned by daemon user procustodibus-broker, is open to other users",
    );
    assert_eq!(stage.mode_owner(CREDENTIALS_CONF), (0o644, ids.0, ids.1));
}

/// Item 1: the daemon user swaps the setup file for a link to a root-only file while install.sh
/// asks "fix group?"; the answer must not hand that file to the daemon's group.
#[test]
fn a_setup_file_swapped_for_a_link_during_fix_group_changes_nothing() {
    if !running_as_root() {
        return;
    }
    let stage = stage_with_config();
    stage.open_to_users();
    let ids = install_ok(&stage);
    // The setup file as an administrator might copy it again: root's, no access for anyone.
    let setup = stage.path(SETUP_CONF);
    std::os::unix::fs::chown(&setup, Some(0), Some(0)).expect("chown");
    chmod(&setup, 0o000);
    stage.write("/etc/root-only", "secret\n", 0o600);
    let victim = stage.path("/etc/root-only");

    let mut child = spawn_install(&stage);
    let mut child_out = child.stdout.take().expect("stdout");
    let mut seen = Vec::new();
    let mut byte = [0u8; 1];
    while !String::from_utf8_lossy(&seen).contains("fix group? ") {
        let n = child_out.read(&mut byte).expect("read install.sh");
        assert!(
            n == 1,
            "install.sh ended before asking \"fix group?\":\n{}",
            String::from_utf8_lossy(&seen)
        );
        seen.push(byte[0]);
    }
    // The swap, as the daemon: it may fail (the directory is closed while install.sh asks).
    let dir = stage.path(CNF_DIR);
    let swap = sh_as(
        ids.0,
        ids.1,
        &format!(
            "ln -s {} {dir}/.swap && mv -f {dir}/.swap {dir}/broker-setup.conf",
            victim.display(),
            dir = dir.display()
        ),
    );
    let mut stdin = child.stdin.take().expect("stdin");
    let _ = stdin.write_all(b"y\ny\ny\ny\n");
    drop(stdin);
    let mut rest = String::new();
    child_out
        .read_to_string(&mut rest)
        .expect("read install.sh");
    let out = child.wait_with_output().expect("wait");
    assert_eq!(
        stage.mode_owner("/etc/root-only"),
        (0o600, 0, 0),
        "the root-only file was changed; the swap: {}\ninstall.sh: {}{rest}\n{}",
        describe(&swap),
        String::from_utf8_lossy(&seen),
        describe(&out)
    );
    assert!(
        !swap.status.success(),
        "the daemon could swap the setup file while install.sh asked:\n{}",
        describe(&swap)
    );
}

/// Item 2: while setup is pending the directory is root:GROUP 1770 and the setup file the
/// daemon's: the daemon cannot replace root's broker.conf, setup (the real credentials tool, as
/// the daemon, against the simulator) writes the credentials and deletes the setup file, and
/// the next install.sh run closes the directory (0750).
#[test]
fn setup_as_the_daemon_works_in_a_directory_that_keeps_root_files_and_closes_after() {
    if !running_as_root() {
        return;
    }
    let sim = simulator(Default::default());
    let stage = Stage::new();
    stage.open_to_users();
    let conf_text = format!("[Broker]\nBroker = {BROKER_ID}\nApi = {}\n", sim.url());
    stage.write(BROKER_CONF, &conf_text, 0o644);
    let expires = chrono::Utc::now() + chrono::Duration::days(1);
    sim.add_setup_code(BROKER_ID, "code-for-the-daemon", expires);
    stage.write(
        SETUP_CONF,
        &format!(
            "[Broker.Setup]\nCode = code-for-the-daemon\nExpires = {}\n",
            expires.format("%Y-%m-%dT%H:%M:%SZ")
        ),
        0o600,
    );
    let ids = install_ok(&stage);

    let dir = stage.path(CNF_DIR);
    let replace = sh_as(
        ids.0,
        ids.1,
        &format!(
            "echo '[Broker]' >{dir}/mine.conf && mv -f {dir}/mine.conf {dir}/broker.conf",
            dir = dir.display()
        ),
    );
    assert!(
        !replace.status.success(),
        "the daemon replaced root's broker.conf"
    );
    assert_eq!(stage.read(BROKER_CONF), conf_text);

    assert_eq!(stage.mode_owner(CNF_DIR), (0o1770, 0, ids.1));
    assert_eq!(stage.mode_owner(SETUP_CONF), (0o600, ids.0, ids.1));
    assert_eq!(stage.mode_owner(BROKER_CONF), (0o644, 0, 0));

    let setup = sh_as(
        ids.0,
        ids.1,
        &format!(
            "exec {} --config {}",
            binary("procustodibus-broker-credentials").display(),
            stage.path(BROKER_CONF).display()
        ),
    );
    assert!(setup.status.success(), "setup: {}", describe(&setup));
    assert!(!stage.exists(SETUP_CONF), "setup deleted the setup file");
    assert_eq!(stage.mode_owner(CREDENTIALS_CONF), (0o600, ids.0, ids.1));

    let out = install(&stage);
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(stage.mode_owner(CNF_DIR), (0o750, 0, ids.1));
}

/// Item 2: as root, every mode of the broker and the credentials tool refuses a configuration
/// another user can change, naming the path; as that user, or on root's own files, it runs.
#[test]
fn the_cli_as_root_refuses_a_config_another_user_can_change() {
    if !running_as_root() {
        return;
    }
    const NOBODY: u32 = 65534;
    let sim = simulator(Default::default());
    let dir = BrokerDir::new();
    dir.write_config(
        &sim.url(),
        &file_pipe("P", "alerts", None, &dir.path("p.jsonl")),
    );
    dir.set_up(&sim);
    let ok = dir.run("procustodibus-broker", &["--check-config"]);
    assert!(ok.status.success(), "root's own files: {}", describe(&ok));

    let modes: [(&str, &[&str]); 5] = [
        ("procustodibus-broker", &["--check-config"]),
        ("procustodibus-broker", &["--test"]),
        ("procustodibus-broker", &["--test-pipe", "P"]),
        ("procustodibus-broker", &[]),
        ("procustodibus-broker-credentials", &[]),
    ];
    let assert_refused_naming = |what: &Path, why: &str| {
        for (binary_name, args) in modes {
            let out = dir.run(binary_name, args);
            let expected = format!("refusing to run as root: {} {why}", what.display());
            assert!(
                !out.status.success() && stderr(&out).contains(&expected),
                "{binary_name} {args:?}: expected {expected:?}:\n{}",
                describe(&out)
            );
        }
    };

    // The directory writable by the daemon's group (as install.sh left it for setup before).
    std::os::unix::fs::chown(dir.dir.path(), Some(0), Some(NOBODY)).expect("chown");
    chmod(dir.dir.path(), 0o770);
    assert_refused_naming(dir.dir.path(), "is writable by group 65534");
    chmod(dir.dir.path(), 0o703);
    assert_refused_naming(dir.dir.path(), "is writable by every user");
    chmod(dir.dir.path(), 0o770);
    // As the daemon user the same files are fine.
    let as_daemon = sh_as(
        NOBODY,
        NOBODY,
        &format!(
            "exec {} --config {} --check-config",
            binary("procustodibus-broker").display(),
            dir.config().display()
        ),
    );
    assert!(
        !stderr(&as_daemon).contains("refusing"),
        "{}",
        describe(&as_daemon)
    );
    chmod(dir.dir.path(), 0o700);

    // broker.conf, then the credentials, owned by another user.
    std::os::unix::fs::chown(dir.config(), Some(NOBODY), Some(NOBODY)).expect("chown");
    assert_refused_naming(&dir.config(), "is owned by uid 65534, not root");
    std::os::unix::fs::chown(dir.config(), Some(0), Some(0)).expect("chown");
    std::os::unix::fs::chown(dir.credentials(), Some(NOBODY), Some(NOBODY)).expect("chown");
    assert_refused_naming(&dir.credentials(), "is owned by uid 65534, not root");
}

/// Item 3: /var/log/procustodibus owned by the daemon user, which put a link at `broker`:
/// install.sh refuses, and the link's target is untouched.
#[test]
fn install_refuses_a_log_directory_below_a_parent_of_the_daemon() {
    if !running_as_root() {
        return;
    }
    let stage = stage_with_config();
    stage.open_to_users();
    stage.add_user(DAEMON_USER, 990);
    stage.mkdir("/var/log/procustodibus");
    stage.chown("/var/log/procustodibus", 990, 990);
    stage.mkdir("/etc/victim-dir");
    chmod(&stage.path("/etc/victim-dir"), 0o700);
    daemon_does(
        (990, 990),
        &format!(
            "ln -s {} {}",
            stage.path("/etc/victim-dir").display(),
            stage.path(LOG_DIR).display()
        ),
    );

    let out = install(&stage);
    assert_refused(
        &out,
        "/var/log/procustodibus is a symbolic link or not owned by root",
    );
    assert_eq!(stage.mode_owner("/etc/victim-dir"), (0o700, 0, 0));

    // A link at the directory itself, in a parent of root's, is refused too.
    std::fs::remove_file(stage.path(LOG_DIR)).expect("remove link");
    stage.chown("/var/log/procustodibus", 0, 0);
    std::os::unix::fs::symlink(stage.path("/etc/victim-dir"), stage.path(LOG_DIR))
        .expect("symlink");
    let out = install(&stage);
    assert_refused(&out, "/var/log/procustodibus/broker is a symbolic link");
    assert_eq!(stage.mode_owner("/etc/victim-dir"), (0o700, 0, 0));
}

/// Item 5: the README's commands put broker.conf and broker-setup.conf in place with their
/// final modes (run here with the paths moved into a stage, without sudo), whatever the mode
/// of the downloaded files.
#[test]
fn readme_install_steps_create_the_config_with_its_final_modes() {
    let readme = std::fs::read_to_string(repo_file("README.md")).expect("read README");
    let step = readme
        .split("2. Put `broker.conf` and `broker-setup.conf`")
        .nth(1)
        .expect("the README's step 2");
    let block = step
        .split("```sh\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("a sh block in step 2");
    let stage = Stage::new();
    let downloads = tempfile::tempdir().expect("temp dir");
    for name in ["broker.conf", "broker-setup.conf"] {
        let path = downloads.path().join(name);
        std::fs::write(&path, "[Broker]\n").expect("write download");
        chmod(&path, 0o644);
    }
    let script = block
        .lines()
        .map(|l| l.trim().trim_start_matches("sudo "))
        .collect::<Vec<_>>()
        .join("\n")
        .replace(" /etc/", &format!(" {}/etc/", stage.root().display()));
    let out = output(
        Command::new("sh")
            .args(["-e", "-c", &script])
            .current_dir(downloads.path()),
    );
    assert!(out.status.success(), "{script}\n{}", describe(&out));
    assert_eq!(stage.mode(CNF_DIR), 0o750, "{script}");
    assert_eq!(stage.mode(SETUP_CONF), 0o600, "{script}");
    assert_eq!(stage.mode(BROKER_CONF) & 0o007, 0, "{script}");
}

/// Item 5: install.sh does not go on while other users can read the setup code or the key,
/// unless it may fix that (an answer "no" stops it; `--yes` fixes it).
#[test]
fn install_refuses_secrets_others_can_read_unless_it_may_fix_them() {
    if !running_as_root() {
        return;
    }
    for secret in [SETUP_CONF, CREDENTIALS_CONF] {
        let stage = stage_with_config();
        stage.add_user(DAEMON_USER, 990);
        if secret == CREDENTIALS_CONF {
            std::fs::remove_file(stage.path(SETUP_CONF)).expect("remove setup");
            stage.write(secret, "[Broker.Credentials]\n", 0o644);
        }
        chmod(&stage.path(secret), 0o644);

        let out = install_answering(&stage, "n\nn\nn\nn\n");
        assert_refused(
            &out,
            &format!("refusing to go on while other users can read {secret}"),
        );
        assert!(!stage.exists(BIN), "nothing installed after the refusal");

        let out = install(&stage);
        assert!(out.status.success(), "{}", describe(&out));
        assert_eq!(stage.mode(secret) & 0o007, 0, "{secret} fixed with --yes");
    }
}

/// Item 11: `--root` with a tree someone else made: install.sh never runs the broker binary it
/// finds there (as root), on install nor on uninstall, yet still names its version.
#[test]
fn install_with_root_never_runs_a_binary_found_in_the_tree() {
    let stage = stage_with_config();
    let marker_dir = tempfile::tempdir().expect("temp dir");
    let marker = marker_dir.path().join("ran");
    for name in ["procustodibus-broker", "procustodibus-broker-credentials"] {
        stage.write(
            &format!("/usr/local/bin/{name}"),
            &format!(
                "#!/bin/sh\ntouch {}\necho \"procustodibus-broker 1.0.0\"\n",
                marker.display()
            ),
            0o755,
        );
    }
    if is_root() {
        plant_nss_module(&stage);
    }
    let out = install(&stage);
    assert!(out.status.success(), "{}", describe(&out));
    assert!(
        !stage.exists("/nss-module-ran") && !Path::new("/nss-module-ran").exists(),
        "install.sh (useradd) loaded the tree's NSS module as root"
    );
    assert!(
        stdout(&out)
            .contains("procustodibus-broker 1.0.0 found at /usr/local/bin/procustodibus-broker"),
        "{}",
        describe(&out)
    );
    assert!(!marker.exists(), "install.sh ran the tree's binary");

    let fake = stage.path(BIN);
    std::fs::copy(
        stage.path("/usr/local/bin/procustodibus-broker-credentials"),
        &fake,
    )
    .expect("plant again");
    let out = stage.install_sh(&["--uninstall", "--purge", "--yes"]);
    assert!(out.status.success(), "{}", describe(&out));
    assert!(
        !marker.exists(),
        "install.sh --uninstall ran the tree's binary"
    );
    assert!(
        !stage.exists("/nss-module-ran") && !Path::new("/nss-module-ran").exists(),
        "install.sh --purge (userdel) loaded the tree's NSS module as root"
    );
}

/// Plants in the stage an /etc/nsswitch.conf naming an NSS module `evil`, and the module (built
/// with cc) in every library directory, which creates /nss-module-ran when loaded: a tool that
/// chroots into the tree (`useradd --root`) would load it as root.
fn plant_nss_module(stage: &Stage) {
    require_tool("cc", "gcc");
    let source = stage.path("/tmp-nss-evil.c");
    std::fs::write(
        &source,
        "#include <stdio.h>\n__attribute__((constructor)) static void ran(void) {\n\
         FILE *f = fopen(\"/nss-module-ran\", \"w\"); if (f) fclose(f); }\n",
    )
    .expect("write module source");
    let module = stage.path("/tmp-libnss_evil.so.2");
    run_ok(
        Command::new("cc")
            .args(["-shared", "-fPIC", "-o"])
            .arg(&module)
            .arg(&source),
    );
    let multiarch = run_ok(Command::new("cc").arg("-print-multiarch"));
    let multiarch = multiarch.trim();
    for dir in [
        "/lib".to_string(),
        "/lib64".to_string(),
        "/usr/lib".to_string(),
        format!("/lib/{multiarch}"),
        format!("/usr/lib/{multiarch}"),
    ] {
        stage.mkdir(&dir);
        std::fs::copy(&module, stage.path(&format!("{dir}/libnss_evil.so.2"))).expect("copy");
    }
    stage.write(
        "/etc/nsswitch.conf",
        "passwd: evil files\ngroup: evil files\nshadow: evil files\ngshadow: evil files\n",
        0o644,
    );
}

/// Runs the .deb's postinst (`configure`) with the stage's /etc and /var mounted over the
/// machine's, in a mount namespace of its own (`unshare`): its useradd and directories land in
/// the stage.
fn run_postinst(stage: &Stage) -> Output {
    require_tool("unshare", "util-linux");
    stage.mkdir("/var");
    let script = format!(
        "mount --bind {etc} /etc && mount --bind {var} /var && exec sh {postinst} configure",
        etc = stage.path("/etc").display(),
        var = stage.path("/var").display(),
        postinst = repo_file("packaging/debian/postinst").display()
    );
    output(
        Command::new("unshare")
            .args([
                "--mount",
                "--propagation",
                "private",
                "sh",
                "-e",
                "-c",
                &script,
            ])
            .stdin(Stdio::null()),
    )
}

/// Item 2: the .deb's postinst creates the configuration directory closed to the daemon
/// (root:GROUP 0750), and on an upgrade closes one an older postinst left 0770 once setup has
/// run.
#[test]
fn deb_postinst_leaves_the_config_directory_closed_to_the_daemon() {
    if !running_as_root() {
        return;
    }
    let stage = Stage::new();
    let out = run_postinst(&stage);
    assert!(out.status.success(), "{}", describe(&out));
    let (_, gid) = stage
        .user(DAEMON_USER)
        .expect("postinst made the daemon user");
    assert_eq!(stage.mode_owner(CNF_DIR), (0o750, 0, gid));

    // An older postinst's directory, after setup: closed on the upgrade.
    chmod(&stage.path(CNF_DIR), 0o770);
    stage.write(CREDENTIALS_CONF, "[Broker.Credentials]\n", 0o600);
    let out = run_postinst(&stage);
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(stage.mode_owner(CNF_DIR), (0o750, 0, gid));
}
