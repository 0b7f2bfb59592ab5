#!/usr/bin/env bash
# Stages .gpu-payload/ for bench/gpu/check.sh (needs Node.js, ../shared and kol's CPU engine: here,
# not on the GPU host). See bench/gpu/README.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
exec nice -n 19 node --import tsx bench/gpu/prepare.ts "$@"
