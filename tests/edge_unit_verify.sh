#!/usr/bin/env bash
# ctest edge_unit_verifies: `systemd-analyze verify` of the edge package's
# unit (edge/package/qallow-edge.service), in a scratch root that has the
# programs the unit names and the system's own targets.  Any message from
# systemd-analyze (an unknown key, a bad value, a missing program) fails it.
#   tests/edge_unit_verify.sh <any executable to stand for /usr/bin/qallow-edge> <source dir>
set -euo pipefail
exe="$1"
src="$2"
command -v systemd-analyze >/dev/null || { echo "systemd-analyze not found (scripts/setup.sh installs systemd)"; exit 1; }
root="$(mktemp -d /tmp/qallow-unit.XXXXXX)"
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/usr/bin" "$root/usr/lib/qallow" "$root/etc/systemd/system" "$root/lib/systemd"
cp "$exe" "$root/usr/bin/qallow-edge"
cp "$src/edge/package/qallow-edge-firstboot" "$root/usr/lib/qallow/"
cp -r /lib/systemd/system "$root/lib/systemd/"
cp "$src/edge/package/qallow-edge.service" "$root/etc/systemd/system/"
out="$(systemd-analyze verify --root="$root" /etc/systemd/system/qallow-edge.service 2>&1)" || { echo "$out"; exit 1; }
if [ -n "$out" ]; then echo "$out"; exit 1; fi
echo "qallow-edge.service verifies"
