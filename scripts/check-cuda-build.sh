#!/usr/bin/env bash
# Compiles and links the patched whisper-server with CUDA on a machine with no GPU and no system
# CUDA toolkit, to show the CUDA build still compiles. Long (tens of minutes on 2 cores): run it by
# hand or in a weekly job, not in every CI run.
#
#   scripts/check-cuda-build.sh [--arch 90] [--jobs 2] [--force]
#
# The toolkit comes from PyPI (CUDA 13.0, the release the driver 580 hosts run): nvcc, its front
# end and libraries, installed once into KOL_CUDA_PIP_DIR (default ~/.cache/kol/cuda-13.0-pip).
# The wheels lack what a system toolkit has beside them, so this adds it there:
#   - lib64 (where nvcc.profile looks) as a link to lib;
#   - unversioned .so links (libcudart.so, libcublas.so, libcublasLt.so) that CMake's
#     FindCUDAToolkit searches for;
#   - lib/stubs/libcuda.so: a link-time stub of the driver library (no driver here). Its functions
#     are generated from cuda.h and do nothing; at run time the host's real libcuda.so.1 is loaded.
# Prints the build time, the binary's size and what it links against (ldd), and checks that it loads.
set -euo pipefail

ARCH=90
JOBS=2
FORCE=()
while [ $# -gt 0 ]; do
  case "$1" in
    --arch) ARCH="$2"; shift 2 ;;
    --jobs|-j) JOBS="$2"; shift 2 ;;
    --force) FORCE=(--force); shift ;;
    *) echo "usage: $0 [--arch 90] [--jobs 2] [--force]" >&2; exit 2 ;;
  esac
done

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PIP_DIR="${KOL_CUDA_PIP_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/kol/cuda-13.0-pip}"
# CUDA 13.0 update 2: the components as NVIDIA's redistributable manifest pairs them.
PACKAGES=(
  nvidia-cuda-nvcc==13.0.88 nvidia-cuda-crt==13.0.88 nvidia-nvvm==13.0.88
  nvidia-cuda-runtime==13.0.96 nvidia-cuda-cccl==13.0.85 nvidia-cublas==13.1.0.3
)
TK="$PIP_DIR/nvidia/cu13"

if [ ! -x "$TK/bin/nvcc" ] || [ ! -e "$TK/lib/libcublas.so.13" ]; then
  echo "== installing the CUDA 13.0 toolkit from PyPI into $PIP_DIR (about 850 MB)"
  python3 -m pip install --quiet --no-compile --target "$PIP_DIR" "${PACKAGES[@]}"
fi

# What a system toolkit has and the wheels do not. nvcc.profile links from lib64.
ln -sfn lib "$TK/lib64"
for lib in cudart cublas cublasLt; do ln -sfn "lib$lib.so.13" "$TK/lib/lib$lib.so"; done
if [ ! -e "$TK/lib/stubs/libcuda.so" ]; then
  mkdir -p "$TK/lib/stubs"
  stub="$(mktemp -d)"
  # Every driver entry point cuda.h declares, under the names its macros give them (cuMemAlloc → cuMemAlloc_v2).
  echo '#include <cuda.h>' | cc -E -P -I "$TK/include" -x c - \
    | grep -oE '\bCUresult[[:space:]]+cu[A-Za-z0-9_]+[[:space:]]*\(' | sed -E 's/^CUresult[[:space:]]+//; s/[[:space:]]*\($//' | sort -u \
    | awk '{ print "int " $1 "(void) { return 999; }" }' >"$stub/libcuda.c"
  cc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$TK/lib/stubs/libcuda.so" "$stub/libcuda.c"
  echo "== libcuda stub: $(wc -l <"$stub/libcuda.c") entry points"
  rm -rf "$stub"
fi

export PATH="$TK/bin:$PATH" CUDACXX="$TK/bin/nvcc" CUDAToolkit_ROOT="$TK"
echo "== $(nvcc --version | tail -2 | head -1)"
echo "== host: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); compiling with -j $JOBS at nice 19"

NICE=(nice -n 19)
command -v ionice >/dev/null && NICE+=(ionice -c3)
started=$(date +%s)
binary="$(cd "$ROOT" && "${NICE[@]}" node bin/kol.js build-engine --cuda --cuda-arch "$ARCH" -j "$JOBS" "${FORCE[@]}" | tail -1)"
seconds=$(( $(date +%s) - started ))

echo "== binary: $binary"
echo "== time: ${seconds} s wall (a cached build answers at once: --force to rebuild)"
# CPU time of everything the build ran: bash's `times` (second line: children's user and system), run
# in this shell (in a subshell it would count nothing).
cpu="$(mktemp)"; times >"$cpu"; echo "== CPU: $(tail -1 "$cpu") (user, system)"; rm -f "$cpu"
echo "== size: $(stat -c %s "$binary") bytes"
echo "== build.json: $(tr -d '\n ' <"$(dirname "$(dirname "$binary")")/build.json")"
echo "== needed (readelf):"
readelf -d "$binary" | awk '/NEEDED/ { print "   " $NF }'
echo "== ldd (the toolkit's lib folder on LD_LIBRARY_PATH; libcuda.so.1 comes from the GPU host's driver):"
LD_LIBRARY_PATH="$TK/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" ldd "$binary" | sed 's/^/  /'

# It loads: every library resolves (the stub standing in for the driver) and it prints its usage.
smoke="$(mktemp -d)"
ln -s "$TK/lib/stubs/libcuda.so" "$smoke/libcuda.so.1"
usage="$(LD_LIBRARY_PATH="$smoke:$TK/lib" "$binary" --help 2>&1 || true)"
if [[ "$usage" == *"usage: "* ]]; then echo "== loads: yes (whisper-server --help)"; else echo "== loads: NO"; exit 1; fi
rm -rf "$smoke"
