#!/bin/sh
# Installs the Debian 12 packages wisp builds and tests with. Skips apt when
# everything is already there; uses sudo when not run as root.
# ocl-icd-opencl-dev: Debian's oneDNN is built with its OpenCL runtime, so
# dnnl-config.cmake calls find_package(OpenCL); libdnnl-dev only recommends it,
# and --no-install-recommends leaves it out.
# libcurl4-openssl-dev: model downloads; python3: the fake hub server of the download tests.
# libcpp-httplib-dev: `wisp serve` (its pkg-config also pulls libssl-dev, zlib and brotli headers).
# libpq-dev: the PostgreSQL job queue (`wisp queue`, `wisp worker`); postgresql-15 (test-only):
# the throwaway server its tests start on 127.0.0.1 (tests/queue/pg_cluster.sh).
# Test-only: nodejs + npm run the official openai client and puppeteer-core
# against `wisp serve` (tests/server/openai_client, pinned by its
# package-lock.json; `npm ci` below); chromium is the headless browser of the
# web page's test (puppeteer-core drives the system chromium, no download).
# A node already installed (e.g. NodeSource's, which bundles npm) is kept:
# Debian's npm package would conflict with it.
set -eu
PACKAGES="build-essential cmake pkg-config git
  libavformat-dev libavcodec-dev libswresample-dev libavutil-dev
  libdnnl-dev ocl-icd-opencl-dev nlohmann-json3-dev libcli11-dev libgtest-dev zlib1g-dev libsqlite3-dev
  libcurl4-openssl-dev python3
  libcpp-httplib-dev chromium libpq-dev postgresql-15"
command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || PACKAGES="$PACKAGES nodejs npm"
HERE=$(cd "$(dirname "$0")" && pwd)
CLIENT_DIR="$HERE/../tests/server/openai_client"
# The test clients' npm packages, exactly as package-lock.json pins them
# (npm ci; PUPPETEER_SKIP_DOWNLOAD: puppeteer-core never fetches a browser).
npm_ci() {
  [ -d "$CLIENT_DIR/node_modules" ] && return 0
  echo "npm ci in $CLIENT_DIR"
  (cd "$CLIENT_DIR" && PUPPETEER_SKIP_DOWNLOAD=1 npm ci --no-audit --no-fund)
}
missing=""
for p in $PACKAGES; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -z "$missing" ]; then
  npm_ci
  exit 0
fi
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "installing:$missing"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
npm_ci
