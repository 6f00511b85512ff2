#!/usr/bin/env bash
# ctest no_color_on_a_terminal: log lines are coloured on a terminal, and
# not when NO_COLOR is set (no-color.org), terminal or not.  script(1) (util-linux,
# in every Debian) gives the run a pseudo-terminal.
#   tests/no_color_test.sh <qallow binary> <source dir>
set -euo pipefail
qallow="$1"
src="$2"
tmp="$(mktemp -d /tmp/qallow-nocolor.XXXXXX)"
trap 'rm -rf "$tmp"' EXIT
# A one-tick run logs info lines: enough to see colour.
run() {
  script -q -e -c "$1 $qallow run -c $src/configs/phase12.json --ticks 1 --no-progress --out $tmp/out --state-dir $tmp/state" \
    /dev/null >"$2" 2>&1 || true
}
# TERM names a colour terminal: spdlog (like most tools) colours only then,
# and CI's environment may have no TERM at all.
run "env -u NO_COLOR TERM=xterm-256color" "$tmp/tty"
run "env NO_COLOR=1 TERM=xterm-256color" "$tmp/nocolor"
esc=$'\x1b['
grep -qF "$esc" "$tmp/tty" || { echo "FAIL: no colour on a terminal without NO_COLOR:"; cat -v "$tmp/tty"; exit 1; }
if grep -qF "$esc" "$tmp/nocolor"; then echo "FAIL: colour with NO_COLOR=1:"; cat -v "$tmp/nocolor"; exit 1; fi
echo "coloured on a terminal; plain with NO_COLOR"
