#!/usr/bin/env bash
# Install everything rspfed's tests need on a fresh Debian machine:
# system packages (apt, needs root) and a virtual environment in .venv with
# rspfed and its test extras.  Idempotent; safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

# System packages the test suite uses.  iproute2: `ip netns` for the LAN
# pairing tests between two network namespaces.
# PC/SC: pcscd with the vsmartcard vpcd virtual reader, pcsc-tools (pcsc_scan,
# scriptor); swig, libpcsclite-dev and a C compiler build pyscard from source.
APT_PACKAGES=(openssl pcscd vsmartcard-vpcd pcsc-tools swig libpcsclite-dev gcc iproute2)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
    if [ "$(id -u)" -eq 0 ]; then
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${missing[@]}"
    else
        echo "bootstrap: needs root to apt-get install: ${missing[*]}" >&2
        exit 1
    fi
fi

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[test]'
