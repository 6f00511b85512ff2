#!/usr/bin/env bash
# Installs what the arm64 cross build (edge/cross-build.sh) needs on a Debian 12
# x86_64 host: the aarch64 cross compiler, qemu-user-static, and the arm64
# (multiarch) -dev packages of the libraries Qallow links.  Only what is
# missing, so a second run is a no-op.  Needs root or sudo.
set -euo pipefail

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "cross-setup: need root or sudo" >&2; exit 1; }
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive

# jq and mosquitto: edge/cross-federate.sh (the broker, the status checks).
# lld-16: links qallow-edge in edge/symbol-order.txt's order (host/CMakeLists.txt).
host_packages=(g++-aarch64-linux-gnu qemu-user-static pkg-config file jq mosquitto lld-16)
arm64_packages=(
  libc6-dev libstdc++-12-dev
  libboost-dev libboost-filesystem-dev libboost-system-dev
  libspdlog-dev libfmt-dev
  libmbedtls-dev liblua5.4-dev
  libpaho-mqtt-dev libssl-dev
  libgtest-dev libgmock-dev
)
arch_all_packages=(nlohmann-json3-dev libcli11-dev)   # header-only, Architecture: all

added_arch=0
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
  echo "cross-setup: dpkg --add-architecture arm64"
  $sudo dpkg --add-architecture arm64
  added_arch=1
fi

missing=()
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
for p in "${host_packages[@]}" "${arch_all_packages[@]}"; do installed "$p" || missing+=("$p"); done
for p in "${arm64_packages[@]}"; do installed "$p:arm64" || missing+=("$p:arm64"); done

if [ ${#missing[@]} -eq 0 ]; then
  echo "cross-setup: all $(( ${#host_packages[@]} + ${#arm64_packages[@]} + ${#arch_all_packages[@]} )) packages present"
  exit 0
fi
echo "cross-setup: installing ${missing[*]}"
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
