#!/usr/bin/env bash
# Dry run of the device call on this machine: copies what the device tool would send (tracked and
# untracked-not-ignored files, plus the carried .gpu/) into a fresh temp folder with no dist/ and
# no node_modules/, runs the command of bench/gpu/README.md there with --tiny (software adapter,
# tiny sizes, CPU PyTorch) and OUT set, then checks what came back against the tool's limits
# (at most 8 files, 16 MiB each, 2 folders deep, names of letters, digits, '.', '_', '-').
#   bench/gpu/simulate.sh [run.sh options, e.g. --only adapter,models]
set -euo pipefail
cd "$(dirname "$0")/../.."
[ -s .gpu/bundle.tar.xz ] || { echo "simulate.sh: no .gpu/: run bench/gpu/pack.sh first" >&2; exit 1; }
SIM=$(mktemp -d /tmp/str-gpu-sim.XXXXXX)
export OUT=$SIM/out
mkdir -p "$SIM/repo" "$OUT"
git ls-files -z --cached --others --exclude-standard | tar --null -T - -cf - | tar -xf - -C "$SIM/repo"
cp -r .gpu "$SIM/repo/.gpu"
echo "simulate: device layout in $SIM/repo ($(du -sm --apparent-size "$SIM/repo" | cut -f1) MiB), OUT=$OUT"
# a bare machine: no earlier dataset, a private work folder
export STR_GPU_WORK=$SIM/work
export TMPDIR=$SIM/tmp
mkdir -p "$TMPDIR"
# the command of bench/gpu/README.md, with --tiny
(cd "$SIM/repo" && bash bench/gpu/run.sh --tiny "$@")
echo "simulate: checking \$OUT against the device tool's limits"
bad=0
n=$(find "$OUT" -type f | wc -l)
[ "$n" -le 8 ] || { echo "  $n files (limit 8)"; bad=1; }
while IFS= read -r f; do
  rel=${f#"$OUT"/}
  depth=$(tr -cd / <<<"$rel" | wc -c)
  [ "$depth" -le 2 ] || { echo "  $rel is more than 2 folders down"; bad=1; }
  [[ "$rel" =~ ^[A-Za-z0-9._/-]+$ ]] || { echo "  $rel: name has other characters"; bad=1; }
  [ "$(stat -c %s "$f")" -le $((16 * 1048576)) ] || { echo "  $rel is over 16 MiB"; bad=1; }
  printf '  %8d  %s\n' "$(stat -c %s "$f")" "$rel"
done < <(find "$OUT" -type f | sort)
[ "$bad" = 0 ] && echo "simulate: OK ($n files)" || { echo "simulate: OUT breaks the limits"; exit 1; }
echo "simulate: left in $SIM (rm -rf it when done)"
