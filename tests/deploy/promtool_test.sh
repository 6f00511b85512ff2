#!/bin/sh
# promtool on deploy/prometheus/: `config` (prometheus.yml, and the rule
# files it names), `rules` (alerts.yml), `unit` (alerts_test.yml).
# Usage: promtool_test.sh config|rules|unit SOURCE_DIR.  A missing promtool
# fails: scripts/setup.sh --tests installs it (Debian package prometheus).
set -eu
mode=$1
dir=$2/deploy/prometheus
promtool=$(command -v promtool || true)
if [ -z "$promtool" ]; then
    echo "promtool is not on PATH: scripts/setup.sh --tests installs it (Debian package prometheus)" >&2
    exit 1
fi
case $mode in
config)
    # check config stats the bearer token file, which lives on the
    # Prometheus host (/etc/qallow/http-token): check a copy that names a
    # token file here instead, beside the rule files it resolves
    # relative to itself.
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    cp "$dir"/*.yml "$tmp"/
    printf 'example-token\n' >"$tmp/http-token"
    grep -q 'credentials_file: /etc/qallow/http-token$' "$tmp/prometheus.yml" || {
        echo "FAIL: prometheus.yml has no 'credentials_file: /etc/qallow/http-token'"
        exit 1
    }
    sed -i "s|credentials_file: /etc/qallow/http-token\$|credentials_file: $tmp/http-token|" "$tmp/prometheus.yml"
    out=$("$promtool" check config "$tmp/prometheus.yml" 2>&1) || { echo "$out"; exit 1; }
    echo "$out"
    # A config whose rule_files match nothing passes check config: make
    # sure alerts.yml was among the files checked.
    echo "$out" | grep -q "Checking $tmp/alerts.yml" || { echo "FAIL: check config did not check alerts.yml"; exit 1; }
    ;;
rules) exec "$promtool" check rules "$dir/alerts.yml" ;;
unit) cd "$dir" && exec "$promtool" test rules alerts_test.yml ;;
*)
    echo "usage: $0 config|rules|unit SOURCE_DIR" >&2
    exit 2
    ;;
esac
