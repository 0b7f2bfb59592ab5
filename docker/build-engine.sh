#!/bin/sh
# Builds whisper-server for the Docker image into $KOL_CACHE_DIR/engine (the runtime stage copies that
# folder). `cuda`: CUDA for $KOL_CUDA_ARCHS (default 86,89,90 = RTX 30xx/A10, RTX 40xx/L4, H100/H200);
# the runtime finds the build under the same key because it sees the same KOL_CUDA_ARCHS.
# `cpu`: the portable AVX2 build, smoke-tested by running it.
# CI runs `docker/build-engine.sh cpu` outside Docker (server/production/deploy.test.ts).
set -eu
variant="${1:?usage: docker/build-engine.sh cuda|cpu}"
cd "$(dirname "$0")/.."
case "$variant" in
  cuda)
    binary=$(node bin/kol.js build-engine --cuda --cuda-arch "${KOL_CUDA_ARCHS:-86,89,90}")
    # Not run here: a build stage has CUDA's link stubs but no driver (libcuda.so.1) to load.
    ;;
  cpu)
    binary=$(node bin/kol.js build-engine --no-cuda)
    "$binary" --help >/dev/null 2>&1
    ;;
  *)
    echo "docker/build-engine.sh: unknown variant '$variant' (cuda or cpu)" >&2
    exit 2
    ;;
esac
test -x "$binary"
echo "$binary"
