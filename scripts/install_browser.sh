#!/usr/bin/env bash
# Installs Debian's chromium for the headless report test (tests/test_report.py). Idempotent: does nothing
# when /usr/bin/chromium is already there. Needs root (or sudo) and the Debian mirrors.
set -euo pipefail

if [ -x /usr/bin/chromium ]; then
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update
$SUDO apt-get install -y --no-install-recommends chromium
