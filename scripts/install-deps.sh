#!/bin/sh
# Installs the Debian 12 packages wisp builds and tests with. Skips apt when
# everything is already there; uses sudo when not run as root.
# ocl-icd-opencl-dev: Debian's oneDNN is built with its OpenCL runtime, so
# dnnl-config.cmake calls find_package(OpenCL); libdnnl-dev only recommends it,
# and --no-install-recommends leaves it out.
# libcurl4-openssl-dev: model downloads; python3: the fake hub server of the download tests.
# libcpp-httplib-dev: `wisp serve` (its pkg-config also pulls libssl-dev, zlib and brotli headers).
set -eu
PACKAGES="build-essential cmake pkg-config git
  libavformat-dev libavcodec-dev libswresample-dev libavutil-dev
  libdnnl-dev ocl-icd-opencl-dev nlohmann-json3-dev libcli11-dev libgtest-dev zlib1g-dev libsqlite3-dev
  libcurl4-openssl-dev python3
  libcpp-httplib-dev"
missing=""
for p in $PACKAGES; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "installing:$missing"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
