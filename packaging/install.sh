#!/bin/sh
# Installs, upgrades or removes the Pro Custodibus broker (procustodibus-broker) as a daemon.
#
# Run it as root from the unpacked release tarball (the binaries sit beside it), or from
# packaging/ in the source tree with --binary target/release/procustodibus-broker. Run it again
# from a newer tarball to upgrade: it finds the installed broker (this one, or the Python broker
# in /opt/venvs/procustodibus-broker), stops it, replaces it and starts the new one, keeping
# broker.conf and the credentials. --help lists the options.
#
# INSTALL_SH_SERVICE=TOOL (for tests): run TOOL status|stop|start instead of the init system's
# tool, also with --root.
set -eu

script_dir=$(cd "$(dirname "$0")" && pwd)

# What this script installs, by path on the target system (below --root when one is given).
daemon_name=procustodibus-broker
daemon_user=procustodibus-broker
daemon_group=procustodibus-broker
bin_dir=/usr/local/bin
cnf_dir=/etc/procustodibus/broker
log_dir=/var/log/procustodibus/broker
spool_dir=/var/lib/procustodibus/broker
venv_dir=/opt/venvs/procustodibus-broker
logrotate_path=/etc/logrotate.d/procustodibus-broker
newsyslog_path=/usr/local/etc/newsyslog.conf.d/procustodibus-broker.conf
systemd_path=/etc/systemd/system/procustodibus-broker.service
initd_path=/etc/init.d/procustodibus-broker
freebsd_path=/usr/local/etc/rc.d/procustodibus-broker
freebsd_enable_path=/etc/rc.conf.d/procustodibus_broker
sysvinit_log=/var/log/procustodibus-broker.log

action=""
yes=""
dry_run=""
purge=""
root=""
binary=""
init=""
answer=""

usage() {
    cat <<EOF
Pro Custodibus broker installer.

Installs procustodibus-broker and procustodibus-broker-credentials to $bin_dir/, creates the
daemon user $daemon_user and the directories $cnf_dir (configuration),
$log_dir (logs, file pipes) and $spool_dir (spool), and installs,
enables and starts the service of the init system (systemd, OpenRC, sysvinit or FreeBSD rc.d).
Running it again upgrades an installed broker (this one, or the Python broker in
$venv_dir), keeping its configuration and credentials.

Usage:
  install.sh --install [--yes] [--dry-run] [--root DIR] [--binary PATH] [--init NAME]
  install.sh --uninstall [--purge] [--yes] [--dry-run] [--root DIR]
  install.sh --help | --version

Options:
  -i, --install      install, or upgrade an installed broker
  -u, --uninstall    remove the broker, its service and logrotate config; keep the
                     configuration, credentials, spool, logs and daemon user
      --purge        with --uninstall: also delete the configuration and credentials, the
                     spool, the log directory and the daemon user
  -y, --yes          answer yes to every question (for automation)
  -n, --dry-run      print what would be done, change nothing
      --root DIR     install into DIR as the root directory (a staging tree, for packaging
                     and tests): users and files go below DIR, no service is started
      --binary PATH  the procustodibus-broker binary to install (default: beside this
                     script); procustodibus-broker-credentials is taken from beside it
      --init NAME    the init system: systemd, openrc, sysvinit, freebsd, or none to install
                     no service (default: detected)
  -h, --help         show this help
  -v, --version      show the version of the broker this script installs

Files: broker.conf and broker-setup.conf (from the broker's setup page in Pro Custodibus) go in
$cnf_dir/ before the daemon starts; the broker writes broker-credentials.conf there.
EOF
}

die_usage() {
    echo "ERROR $*" >&2
    echo "run install.sh --help for the options" >&2
    exit 2
}

while [ $# -gt 0 ]; do
    case $1 in
        -i | --install) action=install ;;
        -u | --uninstall | --remove) action=uninstall ;;
        --purge) purge=yes ;;
        -y | --yes | --force) yes=yes ;;
        -n | --dry-run | --dryrun) dry_run=yes ;;
        -h | --help) action=help ;;
        -v | --version) action=version ;;
        --root | --binary | --init)
            [ $# -ge 2 ] || die_usage "$1 needs a value"
            case $1 in
                --root) root=$2 ;;
                --binary) binary=$2 ;;
                --init) init=$2 ;;
            esac
            shift
            ;;
        --root=*) root=${1#--root=} ;;
        --binary=*) binary=${1#--binary=} ;;
        --init=*) init=${1#--init=} ;;
        *) die_usage "unknown option: $1" ;;
    esac
    shift
done

case $init in
    "" | systemd | openrc | sysvinit | freebsd | none) ;;
    *) die_usage "unknown init system: $init (systemd, openrc, sysvinit, freebsd or none)" ;;
esac
if [ -n "$purge" ] && [ "$action" != uninstall ]; then
    die_usage "--purge goes with --uninstall"
fi

# The staging root, without a trailing slash; empty for the machine's own root.
if [ -n "$root" ]; then
    [ -d "$root" ] || die_usage "--root $root is not a directory"
    root=$(cd "$root" && pwd)
    [ "$root" != / ] || root=""
fi

# ---- Messages and questions ----

log_info() {
    echo "$*"
}

log_warn() {
    echo "WARNING $*"
}

log_error() {
    echo "ERROR $*" >&2
}

# Prints the message and exits with the status.
bye() {
    status=$1
    shift
    echo "$*"
    exit "$status"
}

fail() {
    log_error "$*"
    bye 1 "$action FAIL"
}

# Asks QUESTION with OPTIONS (words such as yes, no, quit) until the answer starts with the
# first letter of one of them, and sets $answer to that letter. With --yes or --dry-run, prints
# the question with the first option as its answer.
prompt() {
    question=$1
    shift
    options=""
    for option in "$@"; do
        options="${options:+$options, }[$(printf %.1s "$option")]${option#?}"
    done
    if [ -n "$yes" ] || [ -n "$dry_run" ]; then
        answer=$(printf %.1s "$1")
        echo "$question ($options): $answer"
        return 0
    fi
    while :; do
        printf '%s (%s): ' "$question" "$options"
        if ! read -r reply; then
            echo
            fail "no answer to \"$question\" (standard input closed): run with --yes to answer yes"
        fi
        reply=$(printf %.1s "$reply" | tr '[:upper:]' '[:lower:]')
        for option in "$@"; do
            if [ -n "$reply" ] && [ "$reply" = "$(printf %.1s "$option")" ]; then
                answer=$reply
                return 0
            fi
        done
    done
}

# Runs a command, or in a dry run prints it.
run() {
    if [ -n "$dry_run" ]; then
        echo "would run: $*"
    else
        "$@"
    fi
}

# ---- Paths, users, modes ----

# The path of a target path below the staging root.
at() {
    printf '%s%s' "$root" "$1"
}

have() {
    command -v "$1" >/dev/null 2>&1
}

# A field (3: uid, 4: gid) of the daemon user's line in the target's /etc/passwd, or of a group's
# (3: gid) in /etc/group; empty when there is none.
passwd_field() {
    if [ -f "$(at /etc/passwd)" ]; then
        awk -F: -v name="$1" -v field="$2" '$1 == name { print $field; exit }' "$(at /etc/passwd)"
    fi
}

group_gid() {
    if [ -f "$(at /etc/group)" ]; then
        awk -F: -v name="$1" '$1 == name { print $3; exit }' "$(at /etc/group)"
    fi
}

daemon_uid() {
    passwd_field "$daemon_user" 3
}

daemon_gid() {
    gid=$(group_gid "$daemon_group")
    [ -n "$gid" ] || gid=$(passwd_field "$daemon_user" 4)
    echo "$gid"
}

# The permission bits of a file as octal digits (such as 640), its owner's uid, its group's gid.
mode_of() {
    # shellcheck disable=SC2012 # ls -ldn is the portable way to read a mode and numeric owner.
    ls -ldn "$1" | awk '{
        m = 0
        for (i = 2; i <= 10; i++) { c = substr($1, i, 1); m = m * 2 + (c != "-" && c != "S" && c != "T") }
        printf "%o\n", m
    }'
}

owner_of() {
    # shellcheck disable=SC2012
    ls -ldn "$1" | awk '{ print $3 }'
}

group_of() {
    # shellcheck disable=SC2012
    ls -ldn "$1" | awk '{ print $4 }'
}

# Whether this run may change owners (as root), else only modes.
can_chown() {
    [ "$(id -u)" = 0 ]
}

# Sets the owner (uid:gid) and mode of an existing path.
set_owner_mode() {
    if can_chown; then
        run chown "$2" "$1"
    fi
    run chmod "$3" "$1"
}

# The version of the procustodibus-broker binary at a path, or empty when it does not run.
binary_version() {
    "$1" --version 2>/dev/null | awk '$1 == "procustodibus-broker" { print $2; exit }' || true
}

# The version of the installed broker at a target path, without running it when it may be
# anyone's: a binary in a --root tree, or one not root's alone (owner, no group or other
# write), is never run (as root). Its version is then this script's when it is the same file,
# else read from its text (a script or a binary that names it), else empty (unknown).
installed_binary_version() {
    ib_path=$(at "$1")
    if [ -z "$root" ] && [ "$(owner_of "$ib_path")" = 0 ] &&
        [ $((0$(mode_of "$ib_path") & 18)) = 0 ]; then
        binary_version "$ib_path"
    elif [ -f "$(src_binary)" ] && cmp -s "$(src_binary)" "$ib_path"; then
        new_version
    else
        tr -c '[:print:]' '[\n*]' <"$ib_path" | awk 'match($0, /procustodibus-broker [0-9][0-9A-Za-z.+~-]*/) {
            print substr($0, RSTART + 21, RLENGTH - 21); exit }'
    fi
}

# The version of the Python broker in its virtualenv, from its package's metadata.
venv_version() {
    for info in "$(at "$venv_dir")"/lib/python*/site-packages/procustodibus_broker-*.dist-info; do
        if [ -d "$info" ]; then
            info=${info##*/procustodibus_broker-}
            echo "${info%.dist-info}"
            return 0
        fi
    done
    echo unknown-version
}

# ---- The binaries to install ----

src_binary() {
    if [ -n "$binary" ]; then
        echo "$binary"
    else
        echo "$script_dir/procustodibus-broker"
    fi
}

src_credentials_binary() {
    echo "$(dirname "$(src_binary)")/procustodibus-broker-credentials"
}

# The version this script installs: the binary's own, else the tarball directory's name.
new_version() {
    version=""
    [ ! -x "$(src_binary)" ] || version=$(binary_version "$(src_binary)")
    if [ -z "$version" ]; then
        case ${script_dir##*/} in
            procustodibus-broker-[0-9]*) version=${script_dir##*/procustodibus-broker-} ;;
            *) version=unknown-version ;;
        esac
    fi
    echo "$version"
}

require_binaries() {
    for file in "$(src_binary)" "$(src_credentials_binary)"; do
        if [ ! -f "$file" ]; then
            log_error "binary not found at $file"
            log_info "run install.sh from the unpacked release tarball, or name the binary built" \
                "with cargo build --release: --binary target/release/procustodibus-broker"
            bye 1 "$action FAIL"
        fi
    done
    if [ -z "$(binary_version "$(src_binary)")" ]; then
        log_error "$(src_binary) does not run on this machine: $("$(src_binary)" --version 2>&1 | head -n 1 || true)"
        log_info "the release binary is for x86_64 Linux with glibc; elsewhere build it from source" \
            "with cargo build --release and run install.sh --install --binary" \
            "target/release/procustodibus-broker"
        bye 1 "$action FAIL"
    fi
}

# ---- Checks ----

require_root() {
    if [ "$(id -u)" = 0 ]; then
        log_info "running as root"
    elif [ -n "$dry_run" ]; then
        log_warn "not running as root: the dry run may be inaccurate"
    elif [ -n "$root" ]; then
        log_warn "not running as root: installing into $root without a daemon user or file owners"
    else
        log_error "must run as root"
        log_info "run: sudo $0 --$action"
        bye 1 "$action FAIL"
    fi
}

# Where broker.conf is: /etc/procustodibus/broker, or /usr/local/etc/procustodibus/broker where
# only that one has it (FreeBSD, and the broker's own search path, know it too).
choose_cnf_dir() {
    if [ ! -f "$(at "$cnf_dir/broker.conf")" ] &&
        [ -f "$(at /usr/local/etc/procustodibus/broker/broker.conf)" ]; then
        cnf_dir=/usr/local/etc/procustodibus/broker
    fi
}

# Sets $config_ready when broker.conf and a setup or credentials file are in place.
config_ready=""
setup_pending=""
check_config() {
    have_conf=""
    have_secret=""
    if [ -f "$(at "$cnf_dir/broker.conf")" ]; then
        log_info "broker configuration found at $cnf_dir/broker.conf"
        have_conf=yes
    else
        log_warn "broker configuration not found at $cnf_dir/broker.conf"
        log_info "download broker.conf from the broker's setup page in Pro Custodibus" \
            "(Admin > Brokers > the broker > Credentials) and copy it to $cnf_dir/broker.conf;" \
            "the daemon starts once it is there"
    fi
    if [ -f "$(at "$cnf_dir/broker-credentials.conf")" ]; then
        log_info "broker credentials found at $cnf_dir/broker-credentials.conf"
        have_secret=yes
    fi
    if [ -f "$(at "$cnf_dir/broker-setup.conf")" ]; then
        log_info "broker setup found at $cnf_dir/broker-setup.conf"
        have_secret=yes
        [ -f "$(at "$cnf_dir/broker-credentials.conf")" ] || setup_pending=yes
    fi
    if [ -z "$have_secret" ]; then
        log_warn "broker credentials not found at $cnf_dir/broker-credentials.conf," \
            "nor setup at $cnf_dir/broker-setup.conf"
        log_info "download broker-setup.conf from the broker's setup page in Pro Custodibus and" \
            "copy it to $cnf_dir/broker-setup.conf (its one-time code is good for three days)"
    fi
    if [ -n "$have_conf" ] && [ -n "$have_secret" ]; then
        config_ready=yes
    fi
}

# ---- The installed broker ----

# The Python broker's documented path, kept working once its virtualenv is deleted.
venv_link=$venv_dir/bin/procustodibus-broker

# Whether the virtualenv directory holds only what link_venv_path left: its link to our binary.
venv_is_our_link() {
    [ -L "$(at "$venv_link")" ] &&
        [ "$(readlink "$(at "$venv_link")")" = "$bin_dir/procustodibus-broker" ] &&
        [ "$(ls -A "$(at "$venv_dir")")" = bin ] &&
        [ "$(ls -A "$(at "$venv_dir/bin")")" = procustodibus-broker ]
}

# After the virtualenv is deleted: the Python broker's documented path
# (sudo -u procustodibus-broker /opt/venvs/procustodibus-broker/bin/procustodibus-broker --test)
# as a root-owned link to the new binary; --uninstall removes it.
link_venv_path() {
    log_info "OK will link $venv_link to $bin_dir/procustodibus-broker"
    ensure_parent "${venv_dir%/*}"
    ensure_parent "$venv_dir"
    ensure_parent "$venv_dir/bin"
    [ -n "$dry_run" ] || echo "$(at "$venv_link").new.$$" >>"$scratch/new-files"
    run ln -s "$bin_dir/procustodibus-broker" "$(at "$venv_link").new.$$"
    run mv -f "$(at "$venv_link").new.$$" "$(at "$venv_link")"
    [ -n "$dry_run" ] || log_info "linked $venv_link"
}

unlink_venv_path() {
    if venv_is_our_link; then
        log_info "OK will remove the link $venv_link"
        remove_file "$venv_link"
        run rmdir "$(at "$venv_dir/bin")" "$(at "$venv_dir")"
    fi
}

installed_version=""
installed_python=""
find_installed() {
    bin=$(at "$bin_dir/procustodibus-broker")
    if [ -f "$bin" ] && [ ! -L "$bin" ]; then
        installed_version=$(installed_binary_version "$bin_dir/procustodibus-broker")
        [ -n "$installed_version" ] || installed_version=unknown-version
        log_info "procustodibus-broker $installed_version found at $bin_dir/procustodibus-broker"
    fi
    if [ -d "$(at "$venv_dir")" ] && ! venv_is_our_link; then
        installed_python=$(venv_version)
        log_info "python broker $installed_python found at $venv_dir"
    fi
}

# ---- The daemon user ----

nologin_shell() {
    for shell in /usr/sbin/nologin /sbin/nologin /usr/bin/nologin; do
        if [ -x "$(at "$shell")" ]; then
            echo "$shell"
            return 0
        fi
    done
    echo /bin/false
}

do_create_user() {
    log_info "OK will create user"
    shell=$(nologin_shell)
    if have useradd; then
        # --prefix, not --root: --root chroots into the tree, where the C library loads the
        # tree's NSS modules (/etc/nsswitch.conf, libnss_*.so) as root.
        if [ -n "$(group_gid "$daemon_group")" ]; then
            group_option="--gid"
        else
            group_option="--user-group"
        fi
        if [ "$group_option" = --gid ]; then
            run useradd ${root:+--prefix "$root"} --system --gid "$daemon_group" \
                --home-dir /nonexistent --no-create-home --shell "$shell" \
                --comment "Pro Custodibus broker" "$daemon_user"
        else
            run useradd ${root:+--prefix "$root"} --system --user-group \
                --home-dir /nonexistent --no-create-home --shell "$shell" \
                --comment "Pro Custodibus broker" "$daemon_user"
        fi
    elif have pw; then
        [ -n "$(group_gid "$daemon_group")" ] ||
            run pw ${root:+-R "$root"} groupadd "$daemon_group"
        run pw ${root:+-R "$root"} useradd "$daemon_user" -g "$daemon_group" \
            -d /nonexistent -s "$shell" -c "Pro Custodibus broker"
    elif have adduser && [ -z "$root" ]; then
        [ -n "$(group_gid "$daemon_group")" ] || run addgroup -S "$daemon_group"
        run adduser -S -D -H -h /nonexistent -s "$shell" -G "$daemon_group" \
            -g "Pro Custodibus broker" "$daemon_user"
    else
        fail "found no useradd, pw or adduser to create user $daemon_user with"
    fi
    [ -n "$dry_run" ] || log_info "created user"
}

create_user() {
    if [ -n "$(daemon_uid)" ]; then
        log_info "daemon user $daemon_user found"
    elif ! can_chown; then
        log_warn "daemon user $daemon_user not found; not created (not running as root)"
    else
        log_warn "daemon user $daemon_user not found"
        prompt "create user?" yes quit
        case $answer in
            y) do_create_user ;;
            *) bye 1 QUIT ;;
        esac
    fi
}

# uid:gid of the daemon; its names in a dry run that would create it; else 0:0 (no user).
daemon_ids() {
    uid=$(daemon_uid)
    gid=$(daemon_gid)
    if [ -z "$uid" ] && [ -n "$dry_run" ] && can_chown; then
        echo "$daemon_user:$daemon_group"
    else
        echo "${uid:-0}:${gid:-0}"
    fi
}

# ---- Directories and files ----

# Refuses (fails) to change a directory whose path or a parent of it (below --root) is a
# symbolic link or not owned by root: its owner could swap it for a link to anything, and
# chown and chmod follow links. The directory itself may be owned by root or by OWNER_UID, the
# owner the installer gives it.
require_root_owned_path() {
    rp_path=$1
    rp_owner=$2
    rp_parent=$rp_path
    while rp_parent=${rp_parent%/*} && [ -n "$rp_parent" ]; do
        if [ -L "$(at "$rp_parent")" ] || { [ -e "$(at "$rp_parent")" ] &&
            [ "$(owner_of "$(at "$rp_parent")")" != 0 ]; }; then
            fail "$rp_parent is a symbolic link or not owned by root, so $rp_path below it is" \
                "not safe to change as root: make $rp_parent a directory of root's (check what" \
                "is in it) and run install.sh again"
        fi
    done
    if [ -L "$(at "$rp_path")" ]; then
        fail "$rp_path is a symbolic link: install.sh changes no link's target; remove the link" \
            "(check who made it) and run install.sh again"
    fi
    if [ -e "$(at "$rp_path")" ] && [ "$(owner_of "$(at "$rp_path")")" != 0 ] &&
        [ "$(owner_of "$(at "$rp_path")")" != "$rp_owner" ]; then
        fail "$rp_path is owned by uid $(owner_of "$(at "$rp_path")"), not root nor" \
            "uid $rp_owner: check what is in it, make it root's and run install.sh again"
    fi
}

# The mode of a directory as ensure_dir writes it: octal digits, with a leading 1 when the
# sticky bit is set (1770).
dir_mode_of() {
    if [ -k "$1" ]; then
        echo "1$(mode_of "$1")"
    else
        mode_of "$1"
    fi
}

# Creates a directory if missing and sets its owner (uid:gid) and mode, after checking that
# neither it nor a parent is a link or someone else's (require_root_owned_path).
ensure_dir() {
    ed_path=$1
    ed_ids=$2
    ed_mode=$3
    if can_chown; then
        require_root_owned_path "$ed_path" "${ed_ids%%:*}"
    fi
    if [ -d "$(at "$ed_path")" ]; then
        if [ "$(dir_mode_of "$(at "$ed_path")")" != "$ed_mode" ] ||
            { can_chown && [ "$(owner_of "$(at "$ed_path")"):$(group_of "$(at "$ed_path")")" != "$ed_ids" ]; }; then
            log_info "OK will set owner $ed_ids and mode $ed_mode of $ed_path"
            set_owner_mode "$(at "$ed_path")" "$ed_ids" "$ed_mode"
        else
            log_info "directory $ed_path found"
        fi
    else
        log_info "OK will create directory $ed_path"
        run mkdir -p "$(at "$ed_path")"
        set_owner_mode "$(at "$ed_path")" "$ed_ids" "$ed_mode"
        [ -n "$dry_run" ] || log_info "created directory $ed_path"
    fi
}

# Creates a parent directory (root's, 0755) if missing; leaves an existing one alone.
ensure_parent() {
    if [ ! -d "$(at "$1")" ]; then
        run mkdir -p "$(at "$1")"
        set_owner_mode "$(at "$1")" 0:0 755
    fi
}

# The number of hard links of a file.
links_of() {
    # shellcheck disable=SC2012
    ls -ldn "$1" | awk '{ print $2 }'
}

# Checks that the daemon can read a config file, and that a secret file (the credentials, the
# setup code) is closed to other users; offers to fix either, and refuses to go on while a secret
# stays open to them. Leaves a file that is fine alone. Run it while the directory is closed to
# the daemon user (ensure_dir ... 750): chmod and chgrp follow links, so a link, a file with more
# than one hard link (it may be any file of the system) and a file the daemon user owns (it may
# have made it) are never changed.
check_cnf_file() {
    path=$1
    secret=$2
    file=$(at "$path")
    if [ -L "$file" ]; then
        fail "$path is a symbolic link: install.sh changes no link's target; put the file" \
            "itself there (check who made the link) and run install.sh again"
    fi
    [ -f "$file" ] || return 0
    if [ "$(links_of "$file")" != 1 ]; then
        fail "$path has $(links_of "$file") hard links: install.sh changes no file that may be" \
            "another one too; put a copy of it there and run install.sh again"
    fi
    octal=$(mode_of "$file")
    mode=$((0$octal))
    uid=$(daemon_uid)
    gid=$(daemon_gid)
    owner=$(owner_of "$file")
    group=$(group_of "$file")
    if [ -n "$uid" ] && [ "$uid" != 0 ] && [ "$owner" = "$uid" ]; then
        # The daemon's own file (setup writes the credentials): left as it is.
        if [ -n "$secret" ] && [ $((mode & 7)) != 0 ]; then
            fail "$path, owned by daemon user $daemon_user, is open to other users" \
                "(mode $octal): install.sh does not change the daemon's files; check it, then" \
                "chmod 600 $path and run install.sh again"
        elif [ -z "$secret" ]; then
            log_warn "$path is owned by daemon user $daemon_user, who should not be able to" \
                "change it: check it, then chown root $path"
        fi
        log_info "$path mode ok ($octal)"
        return 0
    fi
    fine=yes
    if [ -n "$secret" ] && [ $((mode & 7)) != 0 ]; then
        fine=""
        log_warn "$path mode should give other users no access (mode $octal)"
        prompt "fix mode?" yes no
        if [ "$answer" = y ]; then
            log_info "OK will fix mode"
            run chmod o-rwx "$file"
            [ -n "$dry_run" ] || log_info "fixed mode"
        else
            fail "refusing to go on while other users can read $path (its one-time code or" \
                "key): chmod o-rwx $path, or answer yes"
        fi
    elif [ -z "$secret" ] && [ $((mode & 2)) != 0 ]; then
        fine=""
        log_warn "$path mode should not let other users write it (mode $octal)"
        prompt "fix mode?" yes no
        if [ "$answer" = y ]; then
            log_info "OK will fix mode"
            run chmod o-w "$file"
            [ -n "$dry_run" ] || log_info "fixed mode"
        fi
    fi
    # Whether the daemon user can read it (as another user, as the group, as the owner).
    if [ -z "$uid" ] || ! can_chown; then
        : # no daemon user yet, or no way to change owners: nothing to check
    elif [ -z "$secret" ] && [ $((mode & 4)) != 0 ]; then
        :
    elif [ "$group" = "$gid" ] && [ $((mode & 32)) != 0 ]; then
        :
    elif [ "$owner" = "$uid" ] && [ $((mode & 256)) != 0 ]; then
        :
    else
        fine=""
        log_warn "daemon user $daemon_user cannot read $path"
        prompt "fix group?" yes no
        if [ "$answer" = y ]; then
            log_info "OK will fix group"
            run chgrp "$gid" "$file"
            run chmod g+r "$file"
            [ -n "$dry_run" ] || log_info "fixed group"
        fi
    fi
    [ -z "$fine" ] || log_info "$path mode ok ($octal)"
}

# Lets setup (run by the daemon) write broker-credentials.conf and delete broker-setup.conf:
# the setup file becomes the daemon's (0600), and the directory root:GROUP 1770, whose sticky
# bit keeps the daemon from renaming or deleting root's files there (broker.conf). Run after
# check_cnf_file, which refused a link or a shared file at the setup path while the directory
# was closed. A later install.sh run, once setup has run, closes the directory again (0750).
open_cnf_dir_for_setup() {
    setup_file=$(at "$cnf_dir/broker-setup.conf")
    if can_chown && [ "$(owner_of "$setup_file")" = 0 ]; then
        log_info "OK will give $cnf_dir/broker-setup.conf to $daemon_user (setup deletes it)"
        set_owner_mode "$setup_file" "$1" 600
    fi
    log_info "setup is to run: $cnf_dir is open to the daemon for it (mode 1770) until" \
        "install.sh runs again after setup"
    ensure_dir "$cnf_dir" "0:${1#*:}" 1770
}

# Copies a file into place (through a temporary file beside it, then a rename, so a running
# binary is never written to and a symlink at the destination is replaced, not followed).
install_file() {
    if_src=$1
    if_dest=$2
    if_mode=$3
    if_tmp="$(at "$if_dest").new.$$"
    ensure_parent "$(dirname "$if_dest")"
    # The exit trap deletes it if the install stops before the rename.
    [ -n "$dry_run" ] || echo "$if_tmp" >>"$scratch/new-files"
    run cp "$if_src" "$if_tmp"
    set_owner_mode "$if_tmp" 0:0 "$if_mode"
    run mv -f "$if_tmp" "$(at "$if_dest")"
}

remove_file() {
    if [ -f "$(at "$1")" ] || [ -L "$(at "$1")" ]; then
        run rm -f "$(at "$1")"
    fi
}

# Asks whether to delete WHAT (its name in the question and the log) at PATH, and on yes
# deletes PATH with all below it.
offer_delete() {
    prompt "delete $1?" yes no
    if [ "$answer" = y ]; then
        log_info "OK will delete $1"
        run rm -rf "$(at "$2")"
        [ -n "$dry_run" ] || log_info "deleted $1"
    fi
}

# ---- Init systems ----

detect_init() {
    if [ -n "$init" ]; then
        log_info "init system $init (--init)"
        return 0
    fi
    if [ -z "$root" ] && [ "$(uname -s)" = FreeBSD ]; then
        init=freebsd
    elif [ -f "$(at /etc/rc.subr)" ]; then
        init=freebsd
    elif [ -z "$root" ] && [ -d /run/systemd/system ]; then
        init=systemd
    elif [ -z "$root" ] && { [ -d /run/openrc ] || have openrc-run; }; then
        init=openrc
    elif [ -n "$root" ] && { [ -x "$(at /sbin/openrc-run)" ] || [ -x "$(at /usr/sbin/openrc-run)" ]; }; then
        init=openrc
    elif [ -n "$root" ] && { [ -d "$(at /run/systemd/system)" ] ||
        [ -x "$(at /lib/systemd/systemd)" ] || [ -x "$(at /usr/lib/systemd/systemd)" ]; }; then
        init=systemd
    elif [ -d "$(at /etc/init.d)" ]; then
        init=sysvinit
    else
        log_error "found no init system (systemd, OpenRC, sysvinit or FreeBSD rc.d)"
        log_info "name one with --init systemd|openrc|sysvinit|freebsd, or --init none to" \
            "install no service"
        bye 1 "$action FAIL"
    fi
    log_info "init system $init detected"
}

# The path of the service file of an init system.
service_path() {
    case $1 in
        systemd) echo "$systemd_path" ;;
        openrc | sysvinit) echo "$initd_path" ;;
        freebsd) echo "$freebsd_path" ;;
    esac
}

service_src() {
    case $1 in
        systemd) echo "$script_dir/systemd/procustodibus-broker.service" ;;
        openrc) echo "$script_dir/openrc/procustodibus-broker" ;;
        sysvinit) echo "$script_dir/sysvinit/procustodibus-broker" ;;
        freebsd) echo "$script_dir/freebsd/procustodibus-broker" ;;
    esac
}

# Whether the daemon runs (on the machine itself; never in a staging root).
daemon_running() {
    if [ -n "${INSTALL_SH_SERVICE:-}" ]; then
        "$INSTALL_SH_SERVICE" status >/dev/null 2>&1
        return
    fi
    [ -z "$root" ] || return 1
    case $init in
        systemd) systemctl is-active --quiet "$daemon_name.service" 2>/dev/null ;;
        openrc) rc-service "$daemon_name" status >/dev/null 2>&1 ;;
        sysvinit) [ -x "$initd_path" ] && "$initd_path" status >/dev/null 2>&1 ;;
        freebsd) [ -x "$freebsd_path" ] && service "$daemon_name" status >/dev/null 2>&1 ;;
        *) return 1 ;;
    esac
}

# Runs the daemon's service script with VERB (start or stop) under the init system, and says
# so, with DONE (started or stopped) once it has (not on a dry run).
run_service_verb() {
    service_verb=$1
    service_done=$2
    log_info "OK will $service_verb daemon"
    case ${INSTALL_SH_SERVICE:+tool}$init in
        tool*) run "$INSTALL_SH_SERVICE" "$service_verb" ;;
        systemd) run systemctl "$service_verb" "$daemon_name.service" ;;
        openrc) run rc-service "$daemon_name" "$service_verb" ;;
        sysvinit) run "$initd_path" "$service_verb" ;;
        freebsd) run service "$daemon_name" "$service_verb" ;;
    esac
    [ -n "$dry_run" ] || log_info "$service_done daemon"
}

# A running Python broker under another service manager than ours is stopped by its own script.
# The exit trap starts it again when an install stops before its end.
daemon_stopped=""
do_stop_daemon() {
    daemon_stopped=yes
    run_service_verb stop stopped
}

stop_daemon() {
    question=$1
    quit_status=$2
    if daemon_running; then
        log_warn "daemon running"
        prompt "$question" yes quit
        case $answer in
            y) do_stop_daemon ;;
            *) bye "$quit_status" QUIT ;;
        esac
    fi
}

# The systemd unit to install: ours, with the ReadWritePaths= lines an administrator added to
# the unit it replaces (the product page says to add them there for file pipes elsewhere).
systemd_unit() {
    src=$(service_src systemd)
    old=$(at "$systemd_path")
    if [ ! -f "$old" ]; then
        cat "$src"
        return 0
    fi
    awk -v out=/dev/stdout '
        FNR == NR {
            if ($0 ~ /^ReadWritePaths=/) ours[$0] = 1
            lines[++n] = $0
            next
        }
        /^ReadWritePaths=/ && !($0 in ours) && !($0 in extra) { extra[$0] = 1; order[++m] = $0 }
        END {
            for (i = 1; i <= n; i++) {
                print lines[i]
                if (lines[i] ~ /^ReadWritePaths=/ && (i == n || lines[i + 1] !~ /^ReadWritePaths=/))
                    for (j = 1; j <= m; j++) print order[j]
            }
        }
    ' "$src" "$old"
}

do_install_service() {
    log_info "OK will install daemon"
    dest=$(service_path "$init")
    case $init in
        systemd)
            systemd_unit >"$scratch/unit"
            grep '^ReadWritePaths=' "$scratch/unit" | grep -Fxv -f "$(service_src systemd)" |
                while read -r line; do log_info "kept $line from the unit it replaces"; done
            install_file "$scratch/unit" "$dest" 644
            [ -n "$root" ] || run systemctl daemon-reload
            ;;
        openrc | sysvinit | freebsd)
            install_file "$(service_src "$init")" "$dest" 755
            ;;
    esac
    [ -n "$dry_run" ] || log_info "installed daemon"
}

install_service() {
    dest=$(service_path "$init")
    if [ -f "$(at "$dest")" ]; then
        if cmp -s "$(service_src "$init")" "$(at "$dest")"; then
            log_info "$init daemon found at $dest"
            return 0
        fi
        log_warn "$init daemon at $dest is not this version's"
        prompt "replace daemon?" yes quit
    else
        log_warn "$init daemon not found at $dest"
        prompt "install daemon?" yes quit
    fi
    case $answer in
        y) do_install_service ;;
        *) bye 1 QUIT ;;
    esac
}

# Enables the service at boot: with the init system's own tool on the machine itself; in a
# staging root, by making the links (or rc.conf.d file) that tool would make.
enable_service() {
    case $init in
        systemd)
            # reenable: also drops the links of a replaced unit (the Python broker's unit was
            # wanted by default.target).
            if [ -z "$root" ]; then
                run systemctl reenable "$daemon_name.service"
            elif have systemctl; then
                run systemctl --root="$root" --quiet reenable "$daemon_name.service"
            else
                for link in "$(at /etc/systemd/system)"/*.wants/"$daemon_name.service"; do
                    [ ! -L "$link" ] || run rm -f "$link"
                done
                ensure_parent /etc/systemd/system/multi-user.target.wants
                run ln -sf "$systemd_path" \
                    "$(at "/etc/systemd/system/multi-user.target.wants/$daemon_name.service")"
            fi
            ;;
        openrc)
            if [ -z "$root" ] && have rc-update; then
                run rc-update add "$daemon_name" default
            else
                ensure_parent /etc/runlevels/default
                run ln -sf "$initd_path" "$(at "/etc/runlevels/default/$daemon_name")"
            fi
            ;;
        sysvinit)
            if [ -z "$root" ] && have update-rc.d; then
                run update-rc.d "$daemon_name" defaults
            elif [ -z "$root" ] && have chkconfig; then
                run chkconfig --add "$daemon_name"
            else
                for level in 2 3 4 5; do
                    ensure_parent "/etc/rc$level.d"
                    run ln -sf "../init.d/$daemon_name" "$(at "/etc/rc$level.d/S20$daemon_name")"
                done
                for level in 0 1 6; do
                    ensure_parent "/etc/rc$level.d"
                    run ln -sf "../init.d/$daemon_name" "$(at "/etc/rc$level.d/K20$daemon_name")"
                done
            fi
            ;;
        freebsd)
            printf '# procustodibus-broker: written by install.sh\nprocustodibus_broker_enable="YES"\n' \
                >"$scratch/rc.conf"
            install_file "$scratch/rc.conf" "$freebsd_enable_path" 644
            ;;
    esac
}

disable_service() {
    if [ -f "$(at "$systemd_path")" ]; then
        if [ -z "$root" ] && have systemctl; then
            run systemctl disable "$daemon_name.service" || true
        elif have systemctl; then
            run systemctl --root="$root" --quiet disable "$daemon_name.service" || true
        fi
        remove_file "/etc/systemd/system/multi-user.target.wants/$daemon_name.service"
    fi
    if [ -f "$(at "$initd_path")" ]; then
        if [ -z "$root" ] && have rc-update; then
            run rc-update del "$daemon_name" default || true
        elif [ -z "$root" ] && have update-rc.d; then
            run update-rc.d -f "$daemon_name" remove || true
        elif [ -z "$root" ] && have chkconfig; then
            run chkconfig --del "$daemon_name" || true
        fi
        for link in "/etc/runlevels/default/$daemon_name" \
            "/etc/rc0.d/K20$daemon_name" "/etc/rc1.d/K20$daemon_name" "/etc/rc6.d/K20$daemon_name" \
            "/etc/rc2.d/S20$daemon_name" "/etc/rc3.d/S20$daemon_name" \
            "/etc/rc4.d/S20$daemon_name" "/etc/rc5.d/S20$daemon_name"; do
            remove_file "$link"
        done
    fi
    remove_file "$freebsd_enable_path"
}

do_start_daemon() {
    run_service_verb start started
}

start_daemon() {
    if [ "$init" = none ]; then
        log_info "no service installed (--init none): start the broker with" \
            "$bin_dir/procustodibus-broker --loop=120 as user $daemon_user"
        return 0
    fi
    log_info "OK will enable daemon"
    enable_service
    [ -n "$dry_run" ] || log_info "enabled daemon"
    if [ -n "$root" ]; then
        log_info "daemon not started: installed into $root"
    elif [ -z "$config_ready" ]; then
        log_warn "daemon not started: put broker.conf and broker-setup.conf in $cnf_dir/," \
            "then start it ($(start_command))"
    elif daemon_running; then
        log_info "daemon running"
    else
        log_warn "daemon dead"
        prompt "start daemon?" yes quit
        case $answer in
            y) do_start_daemon ;;
            *) bye 0 QUIT ;;
        esac
    fi
}

start_command() {
    case $init in
        systemd) echo "systemctl start $daemon_name" ;;
        openrc) echo "rc-service $daemon_name start" ;;
        sysvinit) echo "$initd_path start" ;;
        freebsd) echo "service $daemon_name start" ;;
    esac
}

# ---- logrotate ----

# The log rotation config of this system: "logrotate" or "newsyslog" (FreeBSD), its source
# and its path.
rotation_tool() {
    case $init in freebsd) echo newsyslog ;; *) echo logrotate ;; esac
}

rotation_src() {
    case $1 in
        newsyslog) echo "$script_dir/freebsd/procustodibus-broker.newsyslog.conf" ;;
        *) echo "$script_dir/logrotate/procustodibus-broker" ;;
    esac
}

rotation_path() {
    case $1 in
        newsyslog) echo "$newsyslog_path" ;;
        *) echo "$logrotate_path" ;;
    esac
}

install_logrotate() {
    if [ "$(rotation_tool)" = newsyslog ]; then
        if [ -f "$(at "$newsyslog_path")" ]; then
            log_info "newsyslog configuration found at $newsyslog_path (kept as it is)"
        else
            log_info "OK will install newsyslog configuration at $newsyslog_path"
            install_file "$(rotation_src newsyslog)" "$newsyslog_path" 644
            [ -n "$dry_run" ] || log_info "installed newsyslog configuration"
        fi
    elif [ ! -d "$(at /etc/logrotate.d)" ]; then
        log_info "logrotate not found: no $logrotate_path"
    elif [ -f "$(at "$logrotate_path")" ]; then
        log_info "logrotate configuration found at $logrotate_path (kept as it is)"
        # One from before issue 11 rotates the daemon's files as root.
        if ! grep -q "^[[:space:]]*su $daemon_user $daemon_group" "$(at "$logrotate_path")"; then
            log_warn "$logrotate_path rotates the files in $log_dir as root: add" \
                "\"su $daemon_user $daemon_group\" to its blocks for them, as this version's" \
                "$(rotation_src logrotate) has"
        fi
    else
        log_info "OK will install logrotate configuration at $logrotate_path"
        install_file "$script_dir/logrotate/procustodibus-broker" "$logrotate_path" 644
        [ -n "$dry_run" ] || log_info "installed logrotate configuration"
    fi
}

# ---- Install ----

# Whether the procustodibus-broker .deb is installed (dpkg's file list of it is there).
deb_installed() {
    [ -f "$(at /var/lib/dpkg/info/$daemon_name.list)" ]
}

# The .deb and install.sh never both own the host: install.sh's unit in /etc/systemd/system
# would shadow the package's in /usr/lib/systemd/system (and run /usr/local/bin's binary).
refuse_over_deb() {
    if deb_installed; then
        log_error "the $daemon_name .deb is installed: it owns the broker on this host"
        log_info "upgrade it with apt install ./${daemon_name}_VERSION-1_amd64.deb; or, to use" \
            "install.sh instead, first apt remove $daemon_name (which keeps $cnf_dir), then run" \
            "install.sh --install again"
        bye 1 "$action FAIL"
    fi
}

do_install() {
    require_root
    new=$(new_version)
    log_info "install $new"
    refuse_over_deb
    require_binaries
    choose_cnf_dir
    check_config
    find_installed
    if [ -n "$installed_version" ] || [ -n "$installed_python" ]; then
        if [ "$installed_version" = "$new" ] && [ -z "$installed_python" ]; then
            log_info "procustodibus-broker $new already installed: checking the install"
        else
            from=${installed_version:+procustodibus-broker $installed_version}
            from=${from:-python broker $installed_python}
            log_warn "upgrade $from to procustodibus-broker $new"
            prompt "upgrade?" yes quit
            [ "$answer" = y ] || bye 1 QUIT
        fi
    fi
    create_user
    detect_init
    stop_daemon "stop daemon to upgrade it?" 1

    ids=$(daemon_ids)
    gid=${ids#*:}
    ensure_parent "${cnf_dir%/*}"
    # Closed to the daemon user while its files are checked; opened for setup only afterwards.
    ensure_dir "$cnf_dir" "0:$gid" 750
    check_cnf_file "$cnf_dir/broker.conf" ""
    check_cnf_file "$cnf_dir/broker-credentials.conf" secret
    check_cnf_file "$cnf_dir/broker-setup.conf" secret
    [ -z "$setup_pending" ] || open_cnf_dir_for_setup "$ids"
    ensure_parent "${log_dir%/*}"
    ensure_dir "$log_dir" "$ids" 750
    ensure_parent "${spool_dir%/*}"
    ensure_dir "$spool_dir" "$ids" 700

    log_info "OK will install procustodibus-broker $new to $bin_dir"
    install_file "$(src_binary)" "$bin_dir/procustodibus-broker" 755
    install_file "$(src_credentials_binary)" "$bin_dir/procustodibus-broker-credentials" 755
    [ -n "$dry_run" ] || log_info "installed procustodibus-broker $new"

    if [ "$init" != none ]; then
        install_service
    fi
    install_logrotate

    if [ -n "$installed_python" ]; then
        log_warn "python broker $installed_python found at $venv_dir, replaced by this one"
        offer_delete "python broker" "$venv_dir"
        [ "$answer" != y ] || link_venv_path
    fi

    start_daemon
    log_info "install SUCCESS"
}

# ---- Uninstall ----

do_uninstall() {
    require_root
    if [ -f "$(at "$bin_dir/procustodibus-broker")" ]; then
        log_info "uninstall $(installed_binary_version "$bin_dir/procustodibus-broker")"
    else
        log_info uninstall
    fi
    choose_cnf_dir
    find_installed
    if [ -z "$init" ]; then
        # Stop the daemon under whichever of our services is installed.
        if [ -z "$root" ] && [ -f "$systemd_path" ] && [ -d /run/systemd/system ]; then
            init=systemd
        elif [ -z "$root" ] && [ -f "$freebsd_path" ]; then
            init=freebsd
        elif [ -z "$root" ] && [ -f "$initd_path" ] && have rc-service; then
            init=openrc
        elif [ -z "$root" ] && [ -f "$initd_path" ]; then
            init=sysvinit
        fi
    fi
    stop_daemon "stop daemon?" 0

    for path in "$systemd_path" "$initd_path" "$freebsd_path"; do
        if [ -f "$(at "$path")" ]; then
            log_warn "daemon found at $path"
            prompt "remove daemon?" yes quit
            [ "$answer" = y ] || bye 0 QUIT
            log_info "OK will remove daemon"
            disable_service
            remove_file "$path"
            if [ "$path" = "$systemd_path" ] && [ -z "$root" ] && have systemctl; then
                run systemctl daemon-reload || true
            fi
            [ -n "$dry_run" ] || log_info "removed daemon"
        fi
    done
    remove_file "$freebsd_enable_path"

    if [ -f "$(at "$bin_dir/procustodibus-broker")" ] || [ -L "$(at "$bin_dir/procustodibus-broker")" ]; then
        log_warn "broker found at $bin_dir/procustodibus-broker"
        prompt "remove broker?" yes quit
        [ "$answer" = y ] || bye 0 QUIT
        log_info "OK will remove broker"
        remove_file "$bin_dir/procustodibus-broker"
        remove_file "$bin_dir/procustodibus-broker-credentials"
        [ -n "$dry_run" ] || log_info "removed broker"
    fi

    for tool in logrotate newsyslog; do
        conf=$(rotation_path "$tool")
        [ -f "$(at "$conf")" ] || continue
        if [ "$conf" = "$logrotate_path" ] && deb_installed; then
            log_info "kept logrotate configuration at $conf (the .deb's)"
            continue
        fi
        if [ -n "$purge" ] || cmp -s "$(rotation_src "$tool")" "$(at "$conf")"; then
            log_info "OK will remove $tool configuration at $conf"
            remove_file "$conf"
        else
            log_info "kept $tool configuration at $conf (edited; use --purge to delete it)"
        fi
    done

    if [ -n "$installed_python" ]; then
        log_warn "python broker $installed_python found at $venv_dir"
        offer_delete "python broker" "$venv_dir"
    fi
    unlink_venv_path

    if [ -z "$purge" ]; then
        for kept in "$cnf_dir:configuration and credentials" "$spool_dir:spool" "$log_dir:logs"; do
            if [ -d "$(at "${kept%%:*}")" ]; then
                log_info "kept ${kept#*:} in ${kept%%:*} (use --uninstall --purge to delete)"
            fi
        done
        [ -z "$(daemon_uid)" ] || log_info "kept daemon user $daemon_user"
    else
        purge_data
    fi
    log_info "uninstall SUCCESS"
}

# Before the daemon user and group are deleted: hands what they own in the kept configuration,
# spool and logs to root (a later user given the same uid or gid must not own the private key).
# find does not follow links, and chown -h and chgrp -h change a link itself.
hand_kept_files_to_root() {
    hk_uid=$(daemon_uid)
    hk_gid=$(daemon_gid)
    for kept in "$cnf_dir" "$spool_dir" "$log_dir" "$sysvinit_log"; do
        if [ -e "$(at "$kept")" ] || [ -L "$(at "$kept")" ]; then
            log_info "OK will hand what $daemon_user owns in $kept to root"
            run find "$(at "$kept")" -user "$hk_uid" -exec chown -h 0 {} +
            [ -z "$hk_gid" ] || run find "$(at "$kept")" -group "$hk_gid" -exec chgrp -h 0 {} +
        fi
    done
}

purge_data() {
    for doomed in "$cnf_dir:configuration and credentials" "$spool_dir:spool (events not yet delivered)" \
        "$log_dir:logs" "$sysvinit_log:daemon log"; do
        path=${doomed%%:*}
        what=${doomed#*:}
        if [ -e "$(at "$path")" ]; then
            log_warn "$what found at $path"
            offer_delete "${what%% (*}" "$path"
        fi
    done
    for parent in "${cnf_dir%/*}" "${spool_dir%/*}" "${log_dir%/*}"; do
        if [ -d "$(at "$parent")" ] && [ -z "$(ls -A "$(at "$parent")")" ]; then
            run rmdir "$(at "$parent")"
        fi
    done
    if [ -n "$(daemon_uid)" ]; then
        log_warn "daemon user $daemon_user found"
        prompt "delete user?" yes no
        if [ "$answer" = y ]; then
            hand_kept_files_to_root
            log_info "OK will delete user"
            if have userdel; then
                run userdel ${root:+--prefix "$root"} "$daemon_user"
                if [ -n "$dry_run" ] || [ -n "$(group_gid "$daemon_group")" ]; then
                    if have groupdel; then
                        run groupdel ${root:+--prefix "$root"} "$daemon_group"
                    fi
                fi
            elif have pw; then
                run pw ${root:+-R "$root"} userdel "$daemon_user"
                [ -z "$(group_gid "$daemon_group")" ] || run pw ${root:+-R "$root"} groupdel "$daemon_group"
            elif have deluser; then
                run deluser "$daemon_user"
                [ -z "$(group_gid "$daemon_group")" ] || run delgroup "$daemon_group"
            else
                fail "found no userdel, pw or deluser to delete user $daemon_user with"
            fi
            [ -n "$dry_run" ] || log_info "deleted user"
        fi
    fi
}

# ---- Main ----

# On exit: deletes the temporary files of install_file not yet renamed into place and the
# scratch directory; after an install that stopped the daemon and then failed or was
# interrupted, starts the daemon again (with whichever binary and service file are in place:
# each is replaced by a rename, so either the old or the new one) and says so.
scratch=""
cleanup() {
    status=$?
    set +e
    if [ -n "$scratch" ] && [ -f "$scratch/new-files" ]; then
        while IFS= read -r leftover; do
            rm -f "$leftover"
        done <"$scratch/new-files"
    fi
    if [ "$status" != 0 ] && [ "$action" = install ] && [ -n "$daemon_stopped" ] &&
        ! daemon_running; then
        log_warn "install did not finish after it stopped the daemon: starting the daemon again"
        if ! run_service_verb start started; then
            log_error "could not start the daemon again: start it with $(start_command)"
        fi
    fi
    [ -z "$scratch" ] || rm -rf "$scratch"
    exit "$status"
}

case $action in
    help | "") usage ;;
    version) echo "procustodibus-broker/install $(new_version)" ;;
    install | uninstall)
        scratch=$(mktemp -d "${TMPDIR:-/tmp}/procustodibus-broker-install.XXXXXX")
        trap cleanup EXIT
        trap 'exit 130' INT
        trap 'exit 143' TERM
        [ -z "$dry_run" ] || log_info "dry run: nothing will be changed"
        [ -z "$root" ] || log_info "root directory $root"
        if [ "$action" = install ]; then
            do_install
        else
            do_uninstall
        fi
        ;;
esac
