#!/bin/sh
# Builds the release: the release binaries, then in dist/ at the repository root
#   procustodibus-broker-X.Y.Z.tar.gz       unpacks to procustodibus-broker-X.Y.Z/: the binaries,
#                                           install.sh, the service files, README.md, LICENSE
#                                           and broker.conf.example
#   procustodibus-broker-X.Y.Z.tar.gz.sha256   its checksum (sha256sum -c)
#   procustodibus-broker-X.Y.Z.tar.gz.sig      its detached PGP signature, when DIST_GPG_KEY is set
#   procustodibus-broker-latest.tar.gz (.sha256, .sig)   the same tarball under the latest name
#   procustodibus-broker_X.Y.Z-1_amd64.deb (.sha256, .sig)   with cargo-deb, when installed
#
# Environment:
#   DIST_GPG_KEY   key to sign with (a key id, fingerprint or user id gpg knows; GNUPGHOME is
#                  honoured); unset: no signatures
#   DIST_DIR       where to put the files (default: dist/ at the repository root)
#   DIST_NO_BUILD  1: use the release binaries already in the target directory when they are
#                  there (tests), instead of running cargo build --release
#   DIST_DEB       yes: build the .deb (fail without cargo-deb); no: do not; default: build it
#                  when cargo-deb is installed
#   DIST_ALLOW_DIRTY  1: build from a tree with uncommitted changes (tests); a release is
#                  built from a clean checkout of its commit
#   SOURCE_DATE_EPOCH  the date of every file in the tarball and the .deb (default: the last
#                  commit's; required outside a git checkout)
#
# Reproducible: the same commit gives byte-identical tarballs and .debs wherever it is built.
# The binaries carry no builder's paths (--remap-path-prefix maps the source tree, the target
# directory and the cargo home to fixed names), the files are dated by the commit, owned by
# root, in name order, with modes set here (umask 022).
set -eu
umask 022

cd "$(dirname "$0")/.."
repo=$(pwd)

say() {
    echo "dist: $*"
}

die() {
    echo "dist: ERROR $*" >&2
    exit 1
}

for tool in cargo tar gzip sha256sum; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool not found"
done

# A release is the commit's content: nothing uncommitted, nothing untracked (packaging/*/ is
# copied whole).
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    if [ -n "$(git status --porcelain)" ] && [ "${DIST_ALLOW_DIRTY:-}" != 1 ]; then
        git status --short >&2
        die "the tree has uncommitted or untracked changes (above): commit or remove them," \
            "or set DIST_ALLOW_DIRTY=1 for a build that is not a release"
    fi
    SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct)}
elif [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
    die "not a git checkout: set SOURCE_DATE_EPOCH (the release commit's date, in seconds)"
fi
export SOURCE_DATE_EPOCH

# Cargo's target directory (CARGO_TARGET_DIR, a config file, or target/).
target_dir=$(cargo metadata --format-version 1 --no-deps |
    sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
[ -n "$target_dir" ] || die "cargo metadata did not name the target directory"
release="$target_dir/release"

if [ "${DIST_NO_BUILD:-}" = 1 ] && [ -x "$release/procustodibus-broker" ] &&
    [ -x "$release/procustodibus-broker-credentials" ]; then
    say "using the release binaries in $release (DIST_NO_BUILD=1)"
else
    # No builder's path in the binaries: the sources, the target directory (build scripts'
    # output) and the registry sources under the cargo home get fixed names.
    cargo_home=${CARGO_HOME:-$HOME/.cargo}
    RUSTFLAGS="${RUSTFLAGS:+$RUSTFLAGS }--remap-path-prefix=$repo=/build/procustodibus-broker"
    RUSTFLAGS="$RUSTFLAGS --remap-path-prefix=$target_dir=/build/target"
    RUSTFLAGS="$RUSTFLAGS --remap-path-prefix=$cargo_home=/cargo"
    export RUSTFLAGS
    say "cargo build --release -p broker-cli --bins (RUSTFLAGS=$RUSTFLAGS)"
    cargo build --release --locked -p broker-cli --bins
fi

version=$("$release/procustodibus-broker" --version | awk '{ print $2 }')
[ -n "$version" ] || die "$release/procustodibus-broker --version printed no version"
name="procustodibus-broker-$version"
dist=${DIST_DIR:-$repo/dist}
mkdir -p "$dist"
dist=$(cd "$dist" && pwd)

# The tree of the tarball, in a scratch directory.
scratch=$(mktemp -d "${TMPDIR:-/tmp}/procustodibus-dist.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
tree="$scratch/$name"
mkdir -p "$tree"
for binary in procustodibus-broker procustodibus-broker-credentials; do
    cp "$release/$binary" "$tree/$binary"
    # Symbols are not needed to run, and make the binary a third larger.
    if command -v strip >/dev/null 2>&1; then
        strip "$tree/$binary"
    fi
    chmod 755 "$tree/$binary"
done
cp packaging/install.sh "$tree/install.sh"
chmod 755 "$tree/install.sh"
for dir in systemd openrc sysvinit freebsd logrotate; do
    mkdir -p "$tree/$dir"
    cp "packaging/$dir/"* "$tree/$dir/"
done
chmod 644 "$tree/systemd/procustodibus-broker.service" "$tree/logrotate/procustodibus-broker" \
    "$tree/freebsd/procustodibus-broker.newsyslog.conf"
chmod 755 "$tree/openrc/procustodibus-broker" "$tree/sysvinit/procustodibus-broker" \
    "$tree/freebsd/procustodibus-broker"
mkdir -p "$tree/docs"
cp README.md LICENSE "$tree/"
cp docs/reliability.md "$tree/docs/"
cp packaging/broker.conf.example "$tree/broker.conf.example"
chmod 644 "$tree/README.md" "$tree/LICENSE" "$tree/docs/reliability.md" "$tree/broker.conf.example"

# Owned by root, dated by the last commit, in name order: the same tree gives the same tarball.
mtime=$SOURCE_DATE_EPOCH
tarball="$name.tar.gz"
(cd "$scratch" && tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$mtime" \
    -cf - "$name") | gzip -n -9 >"$dist/$tarball.tmp"
mv -f "$dist/$tarball.tmp" "$dist/$tarball"
say "wrote $dist/$tarball"

# A checksum and, with DIST_GPG_KEY, a detached signature of a file in $dist.
seal() {
    (cd "$dist" && sha256sum "$1" >"$1.sha256")
    say "wrote $dist/$1.sha256"
    rm -f "$dist/$1.sig"
    if [ -n "${DIST_GPG_KEY:-}" ]; then
        gpg --batch --yes --local-user "$DIST_GPG_KEY" --output "$dist/$1.sig" \
            --detach-sign "$dist/$1"
        # A signature that does not verify is never published.
        if ! gpg --batch --verify "$dist/$1.sig" "$dist/$1" 2>/dev/null; then
            rm -f "$dist/$1.sig"
            die "the signature of $dist/$1 does not verify (key $DIST_GPG_KEY)"
        fi
        say "wrote $dist/$1.sig (verified)"
    fi
}

seal "$tarball"
cp "$dist/$tarball" "$dist/procustodibus-broker-latest.tar.gz"
say "wrote $dist/procustodibus-broker-latest.tar.gz"
seal procustodibus-broker-latest.tar.gz

deb=${DIST_DEB:-auto}
if [ "$deb" = auto ]; then
    if cargo deb --version >/dev/null 2>&1; then
        deb=yes
    else
        say "cargo-deb not installed: no .deb (cargo install cargo-deb --locked)"
        deb=no
    fi
fi
if [ "$deb" = yes ]; then
    cargo deb --version >/dev/null 2>&1 || die "DIST_DEB=yes but cargo-deb is not installed"
    rm -f "$dist"/procustodibus-broker_*.deb
    cargo deb --no-build -p broker-cli --output "$dist"
    for file in "$dist"/procustodibus-broker_*.deb; do
        seal "${file##*/}"
    done
fi

glibc=$(objdump -T "$release/procustodibus-broker" 2>/dev/null |
    grep -o 'GLIBC_[0-9.]*' | sort -u -t. -k1,1 -k2,2n -k3,3n | tail -n 1 || true)
say "done: $name${glibc:+ (needs $glibc or newer)}"
