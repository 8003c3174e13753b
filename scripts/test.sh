#!/usr/bin/env bash
# Install everything the tests need, then run them all: ruff, the import contracts, mypy
# (services and firmware) and pytest, which starts private mosquitto and influxd processes,
# runs the firmware under MicroPython (WebAssembly, on node) and drives the web app in
# chromium. Safe to run again: it installs only what is missing. Needs Debian/Ubuntu with
# Python 3.11+ and apt-get (root or sudo).
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || missing+=(mosquitto)
command -v mosquitto_pub >/dev/null 2>&1 || missing+=(mosquitto-clients)
command -v influxd >/dev/null 2>&1 || missing+=(influxdb)
command -v influx >/dev/null 2>&1 || missing+=(influxdb-client)
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)  # promtool: metrics and alert rules
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)  # the broker TLS test makes certificates
python3 -c "import venv, ensurepip" 2>/dev/null || missing+=(python3-venv)
if ((${#missing[@]})); then
    sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    echo "installing Debian packages: ${missing[*]}"
    $sudo apt-get update -q
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[test]"
(cd firmware/tests && npm ci --no-audit --no-fund --loglevel=error)
(cd tests/web && npm ci --no-audit --no-fund --loglevel=error)   # axe-core for the browser tests

echo "== ruff"
.venv/bin/ruff check .
echo "== import contracts (lint-imports)"
.venv/bin/lint-imports --no-cache
echo "== mypy (services, strict)"
.venv/bin/mypy
echo "== pytest"
exec .venv/bin/pytest "$@"
