#!/bin/sh
# Headless Chromium and Japanese fonts for the browser tests and the Lighthouse benchmark
# (bench/pwa.py). Idempotent: does nothing when everything is already installed.
# Debian packages only; needs root (or sudo). Node/npm come with the machine image.
set -eu

PACKAGES="chromium fonts-ipafont-gothic"

missing=""
for p in $PACKAGES; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done

if [ -z "$missing" ]; then
    echo "install-browser: already installed:$(printf ' %s' $PACKAGES)"
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi

echo "install-browser: installing$missing"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
# shellcheck disable=SC2086
$SUDO apt-get install -y -q --no-install-recommends $missing
command -v chromium >/dev/null
