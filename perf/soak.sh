#!/usr/bin/env bash
# Soak: runs a load profile through perf/load.sh (4 simulated workers, the gateway on 8080, admin
# 9090) while sampling the gateway every few seconds (RSS and open files from /proc, GC counts,
# managed heap and CPU from /api/status, the ledger's queue from /metrics, the host's load), then
# draws RSS, latency and throughput over time (PNG) and says whether they stayed flat.
#
#   perf/soak.sh [--out DIR] [--interval S] PROFILE [runner args...]
#   AOTPROXY_BINARY=artifacts/aot/aotproxy perf/soak.sh --out /tmp/soak sustained --duration-scale 3
#   perf/soak.sh --out /tmp/burst burst-1000
#
# DIR (default perf/reports/soak-PROFILE-STAMP) gets samples.csv, requests.csv (one line per
# request), summary.md, soak-rss.png, soak-latency.png, soak-throughput.png and the fleet's logs.
# The graphs need matplotlib (Debian's python3-matplotlib; installed here when missing and apt-get
# is usable). Exit code: load.sh's.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
cd "$root"

out=""
interval=5
while [[ $# -gt 0 ]]; do
  case "$1" in
    --out) out="$2"; shift 2 ;;
    --interval) interval="$2"; shift 2 ;;
    -h | --help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 1 ;;
    *) break ;;
  esac
done
if [[ $# -lt 1 ]]; then
  sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'
  exit 1
fi
profile="$1"
shift
out="${out:-perf/reports/soak-$(basename "$profile" .toml)-$(date -u +%Y%m%d-%H%M%S)}"
mkdir -p "$out/logs"
out="$(cd "$out" && pwd)"

# The interpreter that has matplotlib: python3 on PATH, else Debian's (a pyenv python3 on PATH
# does not see python3-matplotlib).
py=python3
for candidate in python3 /usr/bin/python3; do
  if "$candidate" -c 'import matplotlib' >/dev/null 2>&1; then py="$candidate"; break; fi
done
if ! "$py" -c 'import matplotlib' >/dev/null 2>&1; then
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-matplotlib >/dev/null
    py=/usr/bin/python3
  else
    echo "soak.sh: python3-matplotlib is missing (apt-get install python3-matplotlib); graphs will fail" >&2
  fi
fi

LOAD_LOG_DIR="$out/logs" "$here/load.sh" "$profile" --requests "$out/requests.csv" --out "$out" "$@" &
runner=$!

# The gateway's PID, once load.sh has started it (it builds the runner and starts the workers first).
for _ in $(seq 1 600); do
  [[ -s "$out/logs/gateway.pid" ]] && break
  kill -0 "$runner" 2>/dev/null || break
  sleep 0.5
done
status=0
if [[ -s "$out/logs/gateway.pid" ]]; then
  "$py" "$here/soak_report.py" sample "$(cat "$out/logs/gateway.pid")" "$runner" http://127.0.0.1:9090 "$out/samples.csv" "$interval" &
  sampler=$!
  wait "$runner" || status=$?
  wait "$sampler" || true
  "$py" "$here/soak_report.py" report "$out" || status=${status:-1}
else
  wait "$runner" || status=$?
  echo "soak.sh: the gateway never started; logs in $out/logs" >&2
  [[ $status -eq 0 ]] && status=3
fi
exit "$status"
