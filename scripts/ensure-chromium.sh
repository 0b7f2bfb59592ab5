#!/bin/sh
# Makes sure Debian's Chromium (and a font with Hebrew letters) is installed for the browser tests
# (clients/web/web.test.ts). Idempotent: does nothing when /usr/bin/chromium is already there.
# Needs root (or sudo) and apt; on other systems install Chromium yourself and set KOL_CHROMIUM.
set -eu

CHROMIUM="${KOL_CHROMIUM:-/usr/bin/chromium}"
if [ -x "$CHROMIUM" ]; then
  echo "chromium: $("$CHROMIUM" --version 2>/dev/null || echo "$CHROMIUM")"
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "ensure-chromium: $CHROMIUM is missing and apt-get is not available; install Chromium and set KOL_CHROMIUM" >&2
  exit 1
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "ensure-chromium: installing Chromium needs root (or sudo)" >&2
    exit 1
  fi
fi

echo "ensure-chromium: installing chromium with apt-get" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# fonts-dejavu-core: a font with Hebrew letters, so pages and screenshots do not show boxes.
$SUDO apt-get install -y -qq chromium fonts-dejavu-core >/dev/null
"$CHROMIUM" --version
