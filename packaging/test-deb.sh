#!/usr/bin/env bash
# The .deb installed for real: built with cargo-deb, then installed with dpkg in a minimal
# Debian chroot (debootstrap), so the maintainer scripts run as on a host. Checks the service
# user, the enabled unit, the config's owner and mode, an upgrade that keeps the operator's
# edit, removal (config kept) and purge (config and user gone).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then
    echo "test-deb.sh needs root (debootstrap and chroot)" >&2
    exit 1
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cache="${XDG_CACHE_HOME:-$HOME/.cache}/multicloud-exporter"
mkdir -p "$cache"

echo "-- build the package twice (the second as an upgrade)"
cargo deb --quiet --output "$work/v1.deb" >/dev/null
cargo deb --quiet --no-build --deb-version "0.1.0+upgrade" --output "$work/v2.deb" >/dev/null
dpkg-deb --info "$work/v1.deb" >"$work/info"
dpkg-deb --contents "$work/v1.deb" >"$work/contents"
grep -q 'Depends:.*adduser' "$work/info"
grep -q './usr/bin/multicloud-exporter$' "$work/contents"
grep -q 'lib/systemd/system/multicloud-exporter.service$' "$work/contents"
grep -q './etc/multicloud-exporter/config.toml$' "$work/contents"

echo "-- a minimal Debian root"
root="$cache/debootstrap-bookworm"
if [ ! -x "$root/usr/bin/dpkg" ]; then
    mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
    [ -n "$mirror" ] || mirror=$(awk '/^deb / {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
    rm -rf "$root"
    debootstrap --variant=minbase --include=adduser bookworm "$root" ${mirror:+"$mirror"} >"$work/debootstrap.log" 2>&1 ||
        { tail -20 "$work/debootstrap.log"; exit 1; }
fi
# Start each run from a root without the package.
chroot "$root" sh -c 'dpkg -P multicloud-exporter >/dev/null 2>&1 || true'
cp "$work/v1.deb" "$work/v2.deb" "$root/tmp/"

echo "-- install, upgrade, remove, purge"
chroot "$root" sh -euc '
    dpkg -i /tmp/v1.deb >/dev/null
    getent passwd multicloud-exporter | grep -q ":/nonexistent:"
    test -L /etc/systemd/system/multi-user.target.wants/multicloud-exporter.service
    test "$(stat -c %U:%G:%a /etc/multicloud-exporter/config.toml)" = root:multicloud-exporter:640
    test "$(stat -c %U:%G:%a /etc/default/multicloud-exporter)" = root:multicloud-exporter:640
    /usr/bin/multicloud-exporter --version
    echo "# edited by the operator" >>/etc/multicloud-exporter/config.toml
    dpkg -i /tmp/v2.deb >/dev/null
    test "$(dpkg-query -W -f "\${Version}" multicloud-exporter)" = 0.1.0+upgrade
    grep -q "edited by the operator" /etc/multicloud-exporter/config.toml
    dpkg -r multicloud-exporter >/dev/null
    test ! -e /usr/bin/multicloud-exporter
    grep -q "edited by the operator" /etc/multicloud-exporter/config.toml
    dpkg -P multicloud-exporter >/dev/null
    test ! -e /etc/multicloud-exporter/config.toml
    if getent passwd multicloud-exporter >/dev/null; then exit 1; fi
'
rm -f "$root/tmp/v1.deb" "$root/tmp/v2.deb"
echo "deb: installed, upgraded keeping the edited config, removed and purged"
