#!/usr/bin/env bash
# The GPU check of issue 11 in one script, for one call of the device tool (bench/gpu/README.md):
# unpacks what bench/gpu/pack.sh put in .gpu/ (Node.js, the compiled project with its
# node_modules, the Vulkan loader), prints the adapter, runs the webgpu correctness tests on it,
# times str-train (webgpu) against PyTorch CUDA (strict fp32 and defaults), checks memory, the
# loader against torchvision with 14 workers and a real-data training run, and writes
#   $OUT/<device>/{adapter,correctness,models,memory,loader,feed}.json + RESULTS.md, $OUT/log.txt
# Each part runs under its own time limit inside the whole budget (default 450 s): a part that
# runs out is stopped, the rest still run or are listed as skipped, and RESULTS.md is written.
#
#   bench/gpu/run.sh [--tiny] [--budget SECONDS] [--only adapter,models,...]
# --tiny: the dry run for a machine without a GPU (software adapter, tiny sizes, CPU PyTorch).
set -uo pipefail
cd "$(dirname "$0")/../.."
T0=$(date +%s)
TINY=
BUDGET=
ONLY=
while [ $# -gt 0 ]; do
  case "$1" in
    --tiny) TINY=--tiny ;;
    --budget) BUDGET=$2; shift ;;
    --only) ONLY=$2; shift ;;
    *) echo "run.sh: unknown option $1 (expected --tiny, --budget SECONDS, --only PARTS)" >&2; exit 2 ;;
  esac
  shift
done
BUDGET=${BUDGET:-$([ -n "$TINY" ] && echo 1800 || echo 450)}
OUT=${OUT:-$PWD/.gpu-out}
WORK=${STR_GPU_WORK:-/tmp/str-gpu}
mkdir -p "$OUT" "$WORK/bin"
exec > >(tee -a "$OUT/log.txt") 2>&1
elapsed() { echo $(($(date +%s) - T0)); }
echo "== str-train GPU check $([ -n "$TINY" ] && echo '(DRY RUN, --tiny)') at $(date -u +%FT%TZ), budget ${BUDGET} s, OUT=$OUT"

# ---- Node.js and the project (dist/ + node_modules/) from the carry folder
if [ -s .gpu/node.xz ]; then
  xz -dc .gpu/node.xz > "$WORK/bin/node" && chmod +x "$WORK/bin/node" || { echo "run.sh: could not unpack .gpu/node.xz"; exit 1; }
elif [ -n "$TINY" ] && command -v node >/dev/null; then
  ln -sf "$(command -v node)" "$WORK/bin/node"
else
  echo "run.sh: .gpu/node.xz is missing: run bench/gpu/pack.sh and carry .gpu"; exit 1
fi
export PATH="$WORK/bin:$PATH"
NODE="$WORK/bin/node"
if [ -s .gpu/bundle.tar.xz ] && { [ ! -d node_modules ] || [ -n "${STR_GPU_UNPACK:-}" ]; }; then
  xz -dc .gpu/bundle.tar.xz | tar -xf - || { echo "run.sh: could not unpack .gpu/bundle.tar.xz"; exit 1; }
fi
[ -f dist/bench/gpu/check.js ] || { echo "run.sh: dist/bench/gpu/check.js is missing (carry .gpu, built by bench/gpu/pack.sh)"; exit 1; }
export STR_GPU_BUILD="$(head -1 .gpu/MANIFEST 2>/dev/null || echo 'no .gpu/MANIFEST: the local build')"
echo "node $("$NODE" -v), $STR_GPU_BUILD"

# ---- the Vulkan loader (device tool README): the GPU image may have the driver but no libvulkan.so.1
if [ -z "$TINY" ]; then
  if ! ldconfig -p | grep 'libvulkan.so.1' >/dev/null; then   # (no -q: pipefail + SIGPIPE)
    echo "no libvulkan.so.1: unpacking the carried loader debs into /"
    for f in .gpu/debs/*.deb; do dpkg -x "$f" /; done
    ldconfig
  fi
  ICD=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
  if [ -f "$ICD" ] && ! ls /usr/share/vulkan/icd.d/nvidia* /etc/vulkan/icd.d/nvidia* >/dev/null 2>&1; then
    export VK_DRIVER_FILES=$ICD
  fi
  EGL=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
  if [ -f "$EGL" ] && ! ls /usr/share/glvnd/egl_vendor.d/*nvidia* >/dev/null 2>&1; then
    export __EGL_VENDOR_LIBRARY_FILENAMES=$EGL
  fi
  nvidia-smi || echo "nvidia-smi failed"
else
  # a dry run must not change this machine's /: only check that the debs unpack
  rm -rf "$WORK/gl" && for f in .gpu/debs/*.deb; do [ -f "$f" ] && dpkg -x "$f" "$WORK/gl"; done
  ls "$WORK"/gl/usr/lib/x86_64-linux-gnu/libvulkan.so.1 2>/dev/null && echo "(dry run: the Vulkan loader debs unpack; not installed)"
  export EGL_PLATFORM=surfaceless
fi
echo "VK_DRIVER_FILES=${VK_DRIVER_FILES:-} __EGL_VENDOR_LIBRARY_FILENAMES=${__EGL_VENDOR_LIBRARY_FILENAMES:-}"
export PYTHONUNBUFFERED=1

# ---- results folder: named after the device (what is committed to bench/results/gpu/<device>/)
if [ -n "$TINY" ]; then
  DEVICE=dry-run-no-gpu
else
  DEVICE=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1 | tr 'A-Z' 'a-z' | sed 's/[^a-z0-9]\+/-/g; s/^-//; s/-$//')
  DEVICE=${DEVICE:-unknown-gpu}
fi
RES="$OUT/$DEVICE"
mkdir -p "$RES"
echo "results: $RES (setup took $(elapsed) s)"

# ---- the parts, each in its own process group under its own limit
set -m
SKIPPED=
RESERVE=15   # seconds kept for the report
part() {     # part NAME CAP_SECONDS MIN_SECONDS MARGIN_SECONDS [args]
  local name=$1 cap=$2 min=$3 margin=$4
  shift 4
  if [ -n "$ONLY" ] && [[ ",$ONLY," != *",$name,"* ]]; then return; fi
  local left=$((T0 + BUDGET - RESERVE - $(date +%s)))
  local lim=$((cap < left ? cap : left))
  if [ "$lim" -lt "$min" ]; then
    echo "== $name: SKIPPED, ${left} s left of the budget (needs ${min} s)"
    SKIPPED="$SKIPPED${SKIPPED:+,}$name"
    return
  fi
  echo "== $name (limit ${lim} s, at $(elapsed) s)"
  "$NODE" dist/bench/gpu/check.js "$name" --out "$RES" --seconds $((lim - margin)) $TINY "$@" &
  local pid=$!
  (sleep "$lim"; echo "== $name: time limit (${lim} s) reached, stopping it"; kill -TERM -- -"$pid" 2>/dev/null; sleep 5; kill -KILL -- -"$pid" 2>/dev/null) &
  local dog=$!
  wait "$pid"
  local rc=$?
  kill -- -"$dog" 2>/dev/null
  wait "$dog" 2>/dev/null
  [ "$rc" = 0 ] || echo "== $name exited with $rc"
}
# the loader's and the feed run's JPEGs are written meanwhile, on the CPU cores the GPU parts leave idle
DATA_PID=
if [ -z "$ONLY" ] || [[ ",$ONLY," == *,loader,* ]] || [[ ",$ONLY," == *,feed,* ]]; then
  "$NODE" dist/bench/gpu/check.js data --out "$RES" $TINY &
  DATA_PID=$!
fi
data_ready() {   # waits for the background dataset, at most until the budget's end
  [ -n "$DATA_PID" ] || return 0
  while kill -0 "$DATA_PID" 2>/dev/null && [ $((T0 + BUDGET - RESERVE - $(date +%s))) -gt 0 ]; do sleep 1; done
  kill -- -"$DATA_PID" 2>/dev/null
  wait "$DATA_PID" 2>/dev/null
  DATA_PID=
}
if [ -z "$TINY" ]; then
  #    name        cap  min margin   (seconds; with setup ~10 s and the report's 15 s they add up to the 450 s budget)
  part adapter      40   10   5
  part correctness  70   20   5
  part models      175   60  40
  part memory       35   15   5
  data_ready
  part loader       45   20   5
  part feed         60   30   5
else
  part adapter     120   10   5
  part correctness 240   20   5
  part models      600   60  60
  part memory      120   15   5
  data_ready
  part loader      120   20   5
  part feed        300   30   5
fi
set +m

# ---- the report, printed last (the tool returns the output's tail); at most 8 files come back
rm -f "$RES"/*.tmp
"$NODE" dist/bench/gpu/check.js report --out "$RES" ${SKIPPED:+--skipped "$SKIPPED"}
echo
cat "$RES/RESULTS.md"
echo
echo "== done in $(elapsed) s; files under \$OUT:"
(cd "$OUT" && find . -type f | sort)
