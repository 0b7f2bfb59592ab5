#!/usr/bin/env bash
# The GPU check: one command for a bare CUDA host (nvcc, driver, CMake, python3 with numpy; no Node.js,
# no network), with the working tree and .gpu-payload/ (bench/gpu/prepare.sh) copied onto it.
#
#   bash bench/gpu/check.sh OUTDIR          # CUDA build for the chip present, then the measurements
#   bash bench/gpu/check.sh OUTDIR --cpu    # the same logic on the CPU build, smaller steps, niced
#
# Builds whisper-server from the payload's patched whisper.cpp with kol's CMake flags, for the
# GPU's own architecture only (nvidia-smi's compute_cap), timed; writes a random-weight
# large-v3-turbo meanwhile; then bench/gpu/check.py measures. Writes OUTDIR/result.json,
# OUTDIR/result.md and OUTDIR/check.log, and nothing else there. Ends inside KOL_GPU_CHECK_BUDGET
# seconds (default 570 on a GPU) from its start, with whatever was measured by then. KOL_GPU_PYTHON
# picks the python3 (it needs numpy for the random model).
set -uo pipefail
started=$(date +%s)

usage() { echo "usage: $0 OUTDIR [--cpu]" >&2; exit 2; }
[ $# -ge 1 ] || usage
OUT="$1"
MODE=gpu
case "${2:-}" in --cpu) MODE=cpu ;; "") ;; *) usage ;; esac

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
PAYLOAD="${KOL_GPU_PAYLOAD:-$ROOT/.gpu-payload}"
WORK="${KOL_GPU_WORK:-${TMPDIR:-/tmp}/kol-gpu-check-$MODE}"
mkdir -p "$OUT" "$WORK/logs"
OUT="$(cd "$OUT" && pwd)"
exec > >(tee "$OUT/check.log") 2>&1

say() { echo "check.sh [$(( $(date +%s) - started )) s] $*"; }
die() { say "ERROR: $*"; exit 1; }

if [ "$MODE" = gpu ]; then
  BUDGET="${KOL_GPU_CHECK_BUDGET:-570}"
  JOBS="$(nproc)"
  NICE=()
  PRESET=large-v3-turbo
else
  # A shared 2-core machine: stay out of other people's way.
  BUDGET="${KOL_GPU_CHECK_BUDGET:-3600}"
  JOBS=2
  NICE=(nice -n 19)
  command -v ionice >/dev/null && NICE+=(ionice -c3)
  PRESET=toy
fi
deadline=$(( started + BUDGET ))
PYTHON="${KOL_GPU_PYTHON:-python3}"

[ -f "$PAYLOAD/manifest.json" ] || die "no $PAYLOAD/manifest.json: run bench/gpu/prepare.sh where Node.js is, and bring .gpu-payload/ along"
"$PYTHON" -c 'import numpy' 2>/dev/null || die "$PYTHON with numpy is needed (KOL_GPU_PYTHON picks another)"
command -v cmake >/dev/null || die "cmake is needed"
manifest() { "$PYTHON" -c "import json,sys; m=json.load(open('$PAYLOAD/manifest.json')); print(eval(sys.argv[1]))" "$1"; }

CUDA_ARCH=""
if [ "$MODE" = gpu ]; then
  command -v nvidia-smi >/dev/null || die "no nvidia-smi: no NVIDIA driver here (use --cpu to check the script on a CPU)"
  if ! command -v nvcc >/dev/null && [ -x /usr/local/cuda/bin/nvcc ]; then export PATH="/usr/local/cuda/bin:$PATH"; fi
  command -v nvcc >/dev/null || die "no nvcc on the PATH or in /usr/local/cuda/bin"
  # "9.0" → "90": the one architecture this chip runs, so nvcc compiles every kernel once.
  CUDA_ARCH="$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -1 | tr -d ' .')"
  [ -n "$CUDA_ARCH" ] || die "nvidia-smi gave no compute capability"
  say "GPU: $(nvidia-smi --query-gpu=name,compute_cap,driver_version,memory.total --format=csv,noheader | head -1); $(nvcc --version | tail -2 | head -1)"
fi
say "mode $MODE, $(nproc) cores, budget ${BUDGET} s, work folder $WORK"

# The random-weight model, written while the engine compiles (a minute of one core for large-v3-turbo).
RANDOM_MODEL="$WORK/random-$PRESET.bin"
RANDOM_RC="$WORK/random-$PRESET.rc"
if [ ! -f "$RANDOM_MODEL" ]; then
  rm -f "$RANDOM_RC"
  ( "${NICE[@]}" "$PYTHON" "$PAYLOAD/make_random_ggml.py" "$RANDOM_MODEL.tmp" "$PRESET" >"$WORK/logs/random-model.log" 2>&1 \
      && mv "$RANDOM_MODEL.tmp" "$RANDOM_MODEL"; rc=$?; [ $rc -eq 0 ] || echo $rc >"$RANDOM_RC" ) &
  say "writing the random $PRESET model in the background"
fi

# The patched source, unpacked once per archive.
sha="$(manifest "m['whisperCpp']['archiveSha256']")"
if [ "$(cat "$WORK/src.sha256" 2>/dev/null)" != "$sha" ]; then
  rm -rf "$WORK/src" "$WORK/build" && mkdir -p "$WORK/src"
  tar -xJf "$PAYLOAD/whisper.cpp.tar.xz" -C "$WORK/src" || die "cannot unpack $PAYLOAD/whisper.cpp.tar.xz"
  echo "$sha" >"$WORK/src.sha256"
fi

# kol's CMake flags (engine/whisper/build.ts, via the manifest), this chip's architecture, only whisper-server.
mapfile -t FLAGS < <(manifest "'\n'.join(m['cmake']['$MODE'])")
[ -n "$CUDA_ARCH" ] && FLAGS+=("-DCMAKE_CUDA_ARCHITECTURES=$CUDA_ARCH")
GENERATOR=()
command -v ninja >/dev/null && GENERATOR=(-G Ninja)
incremental=false
[ -f "$WORK/build/CMakeCache.txt" ] && incremental=true
say "building whisper-server ($MODE${CUDA_ARCH:+, sm_$CUDA_ARCH}) with -j $JOBS: ${FLAGS[*]}"
b0=$(date +%s)
"${NICE[@]}" cmake -S "$WORK/src/whisper.cpp" -B "$WORK/build" "${GENERATOR[@]}" "${FLAGS[@]}" >"$WORK/logs/configure.log" 2>&1 \
  || { tail -40 "$WORK/logs/configure.log"; die "configure failed"; }
b1=$(date +%s)
"${NICE[@]}" cmake --build "$WORK/build" --config Release -j "$JOBS" --target whisper-server >"$WORK/logs/build.log" 2>&1 \
  || { tail -60 "$WORK/logs/build.log"; die "build failed"; }
b2=$(date +%s)
BINARY="$WORK/build/bin/whisper-server"
[ -x "$BINARY" ] || die "no $BINARY after the build"
ldd "$BINARY" >"$WORK/logs/ldd.txt" 2>&1
say "built in $(( b2 - b0 )) s (configure $(( b1 - b0 )) s); $(stat -c %s "$BINARY") bytes"
cat "$WORK/logs/ldd.txt"

"$PYTHON" - "$WORK/build.json" <<EOF
import json, sys
json.dump({"kind": "$MODE", "cudaArch": "$CUDA_ARCH" or None, "seconds": $(( b2 - b0 )), "configureSeconds": $(( b1 - b0 )),
           "jobs": $JOBS, "incremental": "$incremental" == "true", "binaryBytes": $(stat -c %s "$BINARY"),
           "generator": "${GENERATOR[*]}" or "Unix Makefiles", "cmakeFlags": $("$PYTHON" -c 'import json,sys; print(json.dumps(sys.argv[1:]))' "${FLAGS[@]}"),
           "ldd": open("$WORK/logs/ldd.txt").read()}, open(sys.argv[1], "w"), indent=2)
EOF

PYTHONUNBUFFERED=1 "${NICE[@]}" "$PYTHON" "$ROOT/bench/gpu/check.py" --mode "$MODE" --random-preset "$PRESET" --binary "$BINARY" --payload "$PAYLOAD" \
  --out "$OUT" --logdir "$WORK/logs" --random-model "$RANDOM_MODEL" --random-model-rc "$RANDOM_RC" --build-json "$WORK/build.json" \
  --deadline "$deadline" --started "$started"
rc=$?
say "done (exit $rc): $OUT/result.md"
exit $rc
