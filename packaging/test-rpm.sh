#!/usr/bin/env bash
# The .rpm built with cargo-generate-rpm and checked with rpm itself: the file list, owners,
# modes and config flags, the scriptlets; then installed for real with `rpm --root` into the
# minimal Debian root of test-deb.sh (rpm runs the scriptlets chrooted there, so the user is
# created by the package's own %pre), upgraded over an edited config (kept, the new one beside
# it as .rpmnew) and erased.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then
    echo "test-rpm.sh needs root (rpm --root into a chroot)" >&2
    exit 1
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root="${XDG_CACHE_HOME:-$HOME/.cache}/multicloud-exporter/debootstrap-bookworm"
if [ ! -x "$root/usr/bin/dpkg" ]; then
    echo "no Debian root at $root: run packaging/test-deb.sh first" >&2
    exit 1
fi

echo "-- build the package twice (the second as an upgrade)"
cargo build --release --quiet --bin multicloud-exporter
cargo generate-rpm --output "$work/v1.rpm"
cargo generate-rpm --output "$work/v2.rpm" --set-metadata 'release = "2"'

echo "-- file list, owners, modes, config flags"
rpm -qp --qf '[%{FILEMODES:perms} %{FILEUSERNAME}:%{FILEGROUPNAME} %{FILEFLAGS:fflags} %{FILENAMES}\n]' \
    "$work/v1.rpm" >"$work/files"
cat "$work/files"
expect_file() {
    grep -qxF -- "$1" "$work/files" || { echo "missing from the rpm: $1" >&2; exit 1; }
}
expect_file "-rwxr-xr-x root:root  /usr/bin/multicloud-exporter"
expect_file "-rw-r----- root:multicloud-exporter cn /etc/multicloud-exporter/config.toml"
expect_file "-rw-r----- root:multicloud-exporter cn /etc/sysconfig/multicloud-exporter"
expect_file "-rw-r--r-- root:root  /usr/lib/systemd/system/multicloud-exporter.service"
expect_file "-rw-r--r-- root:root  /usr/share/multicloud-exporter/alerts.yml"
test "$(rpm -qlp "$work/v1.rpm" | wc -l)" -eq 6
test "$(rpm -qcp "$work/v1.rpm" | sort | tr '\n' ' ')" = \
    "/etc/multicloud-exporter/config.toml /etc/sysconfig/multicloud-exporter "
rpm -qp --requires "$work/v1.rpm" >"$work/requires"
grep -q '^/usr/sbin/useradd' "$work/requires"
grep -q '^libc.so.6(GLIBC_' "$work/requires"

echo "-- scriptlets"
rpm -qp --scripts "$work/v1.rpm" >"$work/scripts"
for phase in preinstall postinstall preuninstall postuninstall; do
    grep -q "^$phase scriptlet" "$work/scripts" || { echo "no $phase scriptlet" >&2; exit 1; }
done
grep -q 'useradd -r -g multicloud-exporter' "$work/scripts"
for s in packaging/rpm/*.sh; do sh -n "$s"; done

echo "-- install, upgrade over an edited config, erase (in the Debian root)"
rm -rf "$root/var/lib/rpm" "$root/usr/lib/sysimage/rpm"
rpm --root="$root" --initdb
rpm --root="$root" -i --nodeps "$work/v1.rpm"
chroot "$root" sh -euc '
    getent passwd multicloud-exporter | grep -q ":/sbin/nologin$"
    test "$(stat -c %U:%G:%a /etc/multicloud-exporter/config.toml)" = root:multicloud-exporter:640
    test "$(stat -c %U:%G:%a /etc/sysconfig/multicloud-exporter)" = root:multicloud-exporter:640
    test "$(stat -c %U:%G:%a /etc/multicloud-exporter)" = root:multicloud-exporter:750
    /usr/bin/multicloud-exporter --version
    echo "# edited by the operator" >>/etc/multicloud-exporter/config.toml
'
rpm --root="$root" -U --nodeps "$work/v2.rpm"
test "$(rpm --root="$root" -q --qf '%{RELEASE}' multicloud-exporter)" = 2
grep -q "edited by the operator" "$root/etc/multicloud-exporter/config.toml"
rpm --root="$root" -e multicloud-exporter
test ! -e "$root/usr/bin/multicloud-exporter"
grep -q "edited by the operator" "$root/etc/multicloud-exporter/config.toml.rpmsave"

# Leave the root as test-deb.sh expects it: no rpm database, user or leftover config.
chroot "$root" sh -c 'userdel multicloud-exporter 2>/dev/null; groupdel multicloud-exporter 2>/dev/null; true'
rm -rf "$root/etc/multicloud-exporter" "$root/etc/sysconfig" "$root/var/lib/rpm" "$root/usr/lib/sysimage/rpm"
echo "-- rpm package: all checks passed"
