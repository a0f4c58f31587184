#!/usr/bin/env bash
# Times `npm run setup` from a fresh clone of this checkout's HEAD, step by step (the three commands
# it chains), leaving this checkout's public/datastores alone. docs/benchmarks.md, "Set-up".
#   scripts/time-setup.sh [clone-dir]     (RETROLAB_DATA: the shared data folder, default ../shared/data)
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
dir="${1:-$(mktemp -d /tmp/retrolab-setup-XXXXXX)}"
export RETROLAB_DATA="${RETROLAB_DATA:-$(cd "$repo/.." && pwd)/shared/data}"
rm -rf "$dir" && git clone -q "$repo" "$dir"
# Hard links: the same packages `npm ci` would install, without the download.
cp -al "$repo/node_modules" "$dir/node_modules"
cd "$dir"
echo "fresh clone of $(git log --oneline -1) in $dir; $(nproc) cores; load $(cut -d' ' -f1-3 /proc/loadavg)"
total=0
step() {
  local name="$1"; shift
  local start end
  start=$(date +%s.%N)
  "$@" > "$dir/$name.log" 2>&1 || { echo "$name failed: see $dir/$name.log"; exit 1; }
  end=$(date +%s.%N)
  printf '%-18s %7.1f s\n' "$name" "$(echo "$end - $start" | bc)"
  total=$(echo "$total + $end - $start" | bc)
}
step setup:datastores npm run -s setup:datastores
step setup:knn npm run -s setup:knn
step vite-build npx vite build
printf '%-18s %7.1f s\n' "npm run setup" "$total"
grep -h "entries keyed\|entries,\|IVF lists (" "$dir/setup:knn.log" || true
