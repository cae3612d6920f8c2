#!/bin/sh
# Idempotent set-up shared by scripts/hostwatch and scripts/test.
# Usage: scripts/setup.sh [--test]   (--test adds what the test suite needs)
set -eu
cd "$(dirname "$0")/.."

RUN_PKGS="iproute2 util-linux busybox-static libseccomp2 gcc libc6-dev"  # gcc: the C extensions
TEST_PKGS="crun prometheus prometheus-node-exporter prometheus-alertmanager systemd systemd-journal-remote procps
  rsyslog rsyslog-kafka kcat e2fsprogs chromium chromium-driver docker-compose"
pkgs="$RUN_PKGS"
extra=""
[ "${1:-}" = "--test" ] && pkgs="$pkgs $TEST_PKGS" && extra="[test]"

command -v python3 >/dev/null || { echo "setup: python3 is required" >&2; exit 1; }
python3 -c 'import ensurepip, venv' 2>/dev/null || pkgs="$pkgs python3-venv python3-pip"
# Python's headers, for the C extension: Debian's python3 has them in python3-dev
[ -f "$(python3 -c 'import sysconfig; print(sysconfig.get_paths()["include"])')/Python.h" ] || pkgs="$pkgs python3-dev"
# the forward-protocol tests use fluent-logger-node (the Python client has no ack support)
[ -n "$extra" ] && ! command -v npm >/dev/null && pkgs="$pkgs nodejs npm"

missing=""
for p in $pkgs; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  [ "$(id -u)" = 0 ] || { echo "setup: run as root to install:$missing" >&2; exit 1; }
  echo "setup: installing Debian packages:$missing"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

stamp=".venv/.installed$extra"
fresh() { [ -f "$1" ] && [ ! pyproject.toml -nt "$1" ] && [ ! exporter/_speedups.c -nt "$1" ] && [ ! logshipper/_fastpath.c -nt "$1" ] \
  && [ ! hostwatch/core/outbuf.h -nt "$1" ]; }
# the test install is a superset of the plain one
if [ ! -x .venv/bin/python ] || ! { fresh "$stamp" || { [ -z "$extra" ] && fresh ".venv/.installed[test]"; }; }; then
  echo "setup: installing hostwatch$extra into .venv"
  python3 -m venv .venv
  log=.venv/pip-install.log
  if ! { .venv/bin/pip install -q --upgrade pip && .venv/bin/pip install -q -e ".$extra"; } >"$log" 2>&1; then
    cat "$log" >&2
    echo "setup: pip install failed (log above, kept in $log)" >&2
    exit 1
  fi
  touch "$stamp"
fi
if [ -n "$extra" ] && [ ! -d .venv/node/node_modules/fluent-logger ]; then
  echo "setup: installing fluent-logger (node) into .venv/node"
  npm install --silent --no-audit --no-fund --prefix .venv/node fluent-logger@3.4.1 >/dev/null
fi
# Byte-compile our own packages: every `hostwatch` call is a fresh interpreter, and an environment
# with PYTHONDONTWRITEBYTECODE would otherwise recompile them on each one.
.venv/bin/python -m compileall -q hostwatch runtime exporter logshipper alerting dashboards >/dev/null
