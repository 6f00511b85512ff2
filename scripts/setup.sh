#!/usr/bin/env bash
# Installs the Debian 12 packages Qallow builds and tests with, only those
# missing, so a second run is a no-op.  Needs root or sudo for apt-get.
set -euo pipefail

packages=(
  build-essential cmake pkg-config ninja-build               # Ninja: scripts/build.sh says why
  libboost-dev libboost-filesystem-dev libboost-system-dev   # Boost.DLL (header-only) and its filesystem
  nlohmann-json3-dev libspdlog-dev libfmt-dev libcli11-dev
  libmbedtls-dev                                             # SHA-256 now, signatures for the ledger/federation
  libssl-dev                                                 # OpenSSL libcrypto: verifying signatures (docs/DECISIONS.md)
  liblua5.4-dev                                              # Lua experiments
  libpaho-mqtt-dev mosquitto mosquitto-clients               # federation (the Paho C client)
  lld-16                                                     # the edge's link in edge/symbol-order.txt's order
  libsqlite3-dev libpq-dev postgresql                        # the fleet store; the server for its tests
  openssl                                                    # test certificates for the TLS broker test
  python3                                                    # edge/*.sh and scripts/bench.sh read JSON with it
  curl                                                       # the HTTP tests scrape with a real client
  systemd                                                    # systemd-analyze verify of the edge unit
  libgtest-dev libgmock-dev libbenchmark-dev
  clang libclang-rt-14-dev                                   # scripts/fuzz.sh: libFuzzer is in the runtime, only a Recommends
  libjs-chart.js                                             # the dashboard's and the report's charts (docs/dashboard.md)
)
# Only for the tests (scripts/test.sh passes --tests): a node runs without them.
if [ "${1:-}" = "--tests" ]; then
  packages+=(
    chromium chromium-driver                                 # the dashboard's browser tests (headless, WebDriver)
    prometheus                                               # promtool: check metrics, config and rules
    debootstrap                                              # edge/deb-root-test.sh: the .deb in a fresh root
  )
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#packages[@]} packages present"
  exit 0
fi

echo "setup: installing ${missing[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "setup: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
