#!/usr/bin/env bash
# Measures the AOT binary: size, time from exec to the first 200 from /ready, and idle RSS.
# Usage: perf/startup.sh [BINARY] [RUNS]   (default artifacts/aot/aotproxy, 7 runs; prints the median)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-artifacts/aot/aotproxy}
runs=${2:-7}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cat > "$dir/aotproxy.toml" <<TOML
[server]
listen = "127.0.0.1:18480"
admin_listen = "127.0.0.1:19490"
[[workers]]
name = "w"
url = "http://127.0.0.1:1"
models = ["m"]
TOML

echo "binary: $(stat -c %s "$bin") bytes ($(numfmt --to=iec "$(stat -c %s "$bin")"))"
ready=() rss=()
for _ in $(seq "$runs"); do
  start=$(date +%s%N)
  "$bin" serve --config "$dir/aotproxy.toml" >/dev/null 2>&1 &
  pid=$!
  until curl -sf -o /dev/null http://127.0.0.1:19490/ready; do :; done
  end=$(date +%s%N)
  ready+=($(( (end - start) / 1000 )))
  sleep 1
  rss+=($(awk '/VmRSS/ {print $2}' "/proc/$pid/status"))
  kill -TERM "$pid"; wait "$pid"
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo "exec -> /ready 200: median $(median "${ready[@]}") us over $runs runs (all: ${ready[*]})"
echo "idle RSS after 1 s: median $(median "${rss[@]}") KiB (all: ${rss[*]})"
