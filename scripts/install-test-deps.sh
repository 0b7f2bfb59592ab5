#!/usr/bin/env bash
# System packages the test suite drives, installed when missing (Debian/Ubuntu, as root or via sudo):
# cmake and a C++ compiler for whisper.cpp, Chromium and a font with Hebrew letters for the browser
# test, redis-server for the multi-gateway caption-room test, docker-compose to validate
# compose.gpu.yml (no Docker engine is needed). Idempotent: does nothing when everything is present.
set -euo pipefail
need=()
command -v cmake >/dev/null || need+=(cmake)
command -v c++ >/dev/null || need+=(g++)
[ -x /usr/bin/chromium ] || need+=(chromium fonts-dejavu-core)
command -v redis-server >/dev/null || need+=(redis-server)
command -v docker-compose >/dev/null || docker compose version >/dev/null 2>&1 || need+=(docker-compose)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
