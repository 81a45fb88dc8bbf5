#!/usr/bin/env bash
# Builds the carry folder .gpu/ for one call of the device tool (see bench/gpu/README.md):
#   .gpu/node.xz          this machine's Node.js binary (the GPU machine has none)
#   .gpu/bundle.tar.xz    dist/ (compiled, no maps/typings) + the node_modules the run loads,
#                         pruned: only the tfjs Node bundles and wasm files, dawn.node for
#                         linux-x64, sharp + its libvips, koffi for linux-x64 only; no HDF5
#                         (h5wasm, --set TinyImageNet), typings
#   .gpu/debs/*.deb       the Vulkan/EGL loaders (the GPU image may lack libvulkan.so.1)
#   .gpu/MANIFEST         sizes, commit, node version
# and checks that the working tree plus .gpu/ stay under the tool's 64 MiB.
#   bench/gpu/pack.sh [--no-build] [--fast]     (--fast: xz -6 instead of -9e, for trying it out)
set -euo pipefail
shopt -s extglob
cd "$(dirname "$0")/../.."
ROOT=$PWD
CARRY=.gpu
LIMIT_MIB=64
BUILD=1
XZLEVEL=-9e
for a in "$@"; do
  case "$a" in
    --no-build) BUILD=0 ;;
    --fast) XZLEVEL=-6 ;;
    *) echo "pack.sh: unknown option $a (expected --no-build, --fast)" >&2; exit 2 ;;
  esac
done

for pkg in webgpu @tensorflow/tfjs-backend-webgpu sharp @tensorflow/tfjs-core; do
  if [ ! -f "node_modules/$pkg/package.json" ]; then
    echo "pack.sh: node_modules/$pkg is missing: run npm ci (webgpu and @tensorflow/tfjs-backend-webgpu are optional dependencies)" >&2
    exit 1
  fi
done
[ -f node_modules/webgpu/dist/linux-x64/dawn.node ] || { echo "pack.sh: node_modules/webgpu/dist/linux-x64/dawn.node is missing" >&2; exit 1; }
[ "$(uname -m)" = x86_64 ] || { echo "pack.sh: this machine is $(uname -m); the GPU machine is x86-64: pack on an x86-64 machine" >&2; exit 1; }

if [ "$BUILD" = 1 ]; then
  echo "pack: compiling (tsc)"
  npx tsc -p tsconfig.json
fi
[ -f dist/bench/gpu/check.js ] || { echo "pack.sh: dist/bench/gpu/check.js is missing: build first" >&2; exit 1; }

# the carry folder must never travel as an ordinary untracked folder (it would count twice)
grep -qx '/.gpu/' .gitignore 2>/dev/null || { echo "pack.sh: .gitignore must list /.gpu/" >&2; exit 1; }

rm -rf "$CARRY"
mkdir -p "$CARRY/debs"
STAGE=$(mktemp -d /tmp/str-gpu-pack.XXXXXX)
trap 'rm -rf "$STAGE"' EXIT

# ---- node
NODE_BIN=$(readlink -f "$(command -v node)")
# compressing node takes minutes on 2 cores: reuse the last result for the same binary
NODE_CACHE=/tmp/str-gpu-node-$(node -v)-$(stat -c %s "$NODE_BIN")$XZLEVEL.xz
if [ ! -s "$NODE_CACHE" ]; then
  echo "pack: compressing node $(node -v) ($NODE_BIN)"
  xz -T0 $XZLEVEL -c "$NODE_BIN" > "$NODE_CACHE.tmp" && mv "$NODE_CACHE.tmp" "$NODE_CACHE"
fi
cp "$NODE_CACHE" "$CARRY/node.xz"

# ---- dist + pruned node_modules, as one list of files for tar
echo "pack: listing dist/ and node_modules/"
LIST="$STAGE/files"
find dist -type f ! -name '*.map' ! -name '*.d.ts' ! -name '*.tsbuildinfo' -print0 > "$LIST"
# runtime packages: npm's production tree (optional ones included), less what the run never loads
npm ls --omit=dev --all --parseable 2>/dev/null | sed -n "s|^$ROOT/||p" | grep '^node_modules/' | sort -u > "$STAGE/packages"
EXCLUDE='(^|/)node_modules/(h5wasm|core-js|@types/.*|@tensorflow/tfjs-node|@tensorflow/tfjs-node-gpu)$'
while read -r p; do
  if [[ "$p" =~ $EXCLUDE ]]; then continue; fi
  [ -d "$p" ] || continue
  case "$p" in
    node_modules/@tensorflow/tfjs*([!/]))
      # Node loads each package's "main" (dist/*.node.js, one CommonJS bundle) and the wasm files
      find "$p" -maxdepth 1 -type f \( -name package.json -o -name 'LICENSE*' \) -print0
      find "$p/dist" -maxdepth 1 -type f \( -name '*.node.js' -o -name '*.wasm' \) -print0
      if [ -d "$p/wasm-out" ]; then find "$p/wasm-out" -type f ! -name '*.d.ts' -print0; fi ;;
    node_modules/koffi)
      # dlopen for Dawn's Vulkan-loader check (src/backend/webgpu/dawn.ts) and MPI: linux-x64 only
      find "$p" -maxdepth 1 -type f \( -name package.json -o -name '*.js' -o -name 'LICENSE*' \) -print0
      find "$p/lib" "$p/build/koffi/linux_x64" -type f ! -name '*.d.ts' -print0 ;;
    node_modules/webgpu)
      printf '%s\0' "$p/package.json" "$p/index.js" "$p/LICENSE.md" "$p/dist/linux-x64/dawn.node" ;;
    *)
      # nested node_modules are packages of their own (listed separately)
      find "$p" -path "$p/node_modules" -prune -o -type f ! -name '*.map' ! -name '*.d.ts' ! -name '*.d.mts' ! -name '*.d.cts' \
        ! -iname 'README*' ! -iname 'CHANGELOG*' ! -iname 'HISTORY*' -print0 ;;
  esac
done < "$STAGE/packages" >> "$LIST"
for f in node_modules/@tensorflow/tfjs-backend-webgpu/dist/tf-backend-webgpu.node.js node_modules/webgpu/dist/linux-x64/dawn.node \
         node_modules/@tensorflow/tfjs-core/dist/tf-core.node.js node_modules/sharp/package.json; do
  # (not grep -q: under pipefail its early exit would fail the pipeline with SIGPIPE)
  tr '\0' '\n' < "$LIST" | grep -x "$f" >/dev/null || { echo "pack.sh: $f is not in the bundle" >&2; exit 1; }
done
echo "pack: $(tr -cd '\0' < "$LIST" | wc -c) files, $(xargs -0 du -cb < "$LIST" | tail -1 | awk '{printf "%.1f", $1/1048576}') MiB; compressing (xz $XZLEVEL)"
tar --null -T "$LIST" -cf - | xz -T0 $XZLEVEL > "$CARRY/bundle.tar.xz"

# ---- Vulkan / EGL loaders (the device tool's README recipe)
LISTS=/tmp/str-gpu-apt-amd64
mkdir -p "$LISTS/partial"
o="-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=$LISTS"
if ! (apt-get $o update -qq >/dev/null 2>&1 && cd "$CARRY/debs" && apt-get $o download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2 >/dev/null 2>&1); then
  echo "pack.sh: could not download the Vulkan loader debs (apt-get download libvulkan1 ...)" >&2
  exit 1
fi

# ---- manifest and the size check: what travels = tracked + untracked-not-ignored files + .gpu/
TREE=$(git ls-files -z --cached --others --exclude-standard | xargs -0 -r du -cb 2>/dev/null | tail -1 | cut -f1)
GPU=$(du -sb "$CARRY" | cut -f1)
TOTAL=$((TREE + GPU))
{
  echo "built $(date -u +%FT%TZ) from $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src bench test package.json || echo ' + uncommitted changes')"
  echo "node $(node -v)"
  echo "webgpu $(node -p "require('./node_modules/webgpu/package.json').version") tfjs-backend-webgpu $(node -p "require('./node_modules/@tensorflow/tfjs-backend-webgpu/package.json').version")"
  (cd "$CARRY" && find . -type f ! -name MANIFEST -printf '%s\t%p\n' | sort -k2)
  echo "working tree $TREE bytes + $CARRY $GPU bytes = $TOTAL bytes (limit $((LIMIT_MIB * 1048576)))"
} > "$CARRY/MANIFEST"
cat "$CARRY/MANIFEST"
if [ "$TOTAL" -gt $((LIMIT_MIB * 1048576)) ]; then
  echo "pack.sh: $TOTAL bytes would travel, over the device tool's $LIMIT_MIB MiB" >&2
  exit 1
fi
awk -v t="$TOTAL" -v l="$LIMIT_MIB" 'BEGIN { printf "pack: OK, %.1f MiB of %d MiB travel\n", t / 1048576, l }' 
