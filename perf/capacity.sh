#!/usr/bin/env bash
# Issue 14, item 6, as the issue measured it (a reproduction, not a benchmark):
#
#   4 `aotproxy simulate` workers on loopback, each --max-num-seqs 4 --max-num-waiting 2: a worker
#   holds 6 requests (4 running, 2 waiting) and answers 503 to a 7th, as a vLLM whose queue is
#   capped does. `aotproxy serve` in front with max_concurrency = 6 on each (24 slots in all) and
#   the default routing (p2c_kv). Then bursts of 24 and of 40 streams (max_tokens 128), one after
#   the other; in the burst of 40, 16 must wait in the gateway's queue.
#
# Prints, per burst, how many clients got a whole stream (200 and "data: [DONE]"), and then per
# worker the most requests it held at once (max_in_engine) and its 503s for a full queue
# (queue_full), and the gateway's breaker openings. Kept: no worker above 6, no 503, no breaker
# opened, every client served.
#
#   perf/capacity.sh                                  the AOT binary (artifacts/aot/aotproxy)
#   AOTPROXY_BINARY=path/to/other/aotproxy perf/capacity.sh
#
# Options: --base-port N (workers N..N+3, gateway N+8, admin N+9; default 18401, or
#          CAPACITY_BASE_PORT), --out DIR (default perf/reports/capacity-YYYYmmdd-HHMMSS).
# Exit code: 0 when the bursts ran (the figures say whether the bound held), 1 for usage errors,
# 3 when a worker or the gateway could not start. Everything started here is stopped by its PID.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
cd "$root"
FLEET_TAG="capacity.sh"
# shellcheck source=perf/lib/fleet.sh
source "$here/lib/fleet.sh"

base_port="${CAPACITY_BASE_PORT:-18401}"
out=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --base-port) base_port="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    *) sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'; exit 1 ;;
  esac
done

binary="$(fleet_binary)" || exit 1
out="${out:-perf/reports/capacity-$(date +%Y%m%d-%H%M%S)}"
mkdir -p "$out"
gateway_port=$((base_port + 8))
admin_port=$((base_port + 9))
fleet_check_ports $(seq "$base_port" $((base_port + 3))) "$gateway_port" "$admin_port" || exit 3
trap fleet_stop_all EXIT

key="sk-capacity"
model="capacity-model"
{
  fleet_gateway_toml "$gateway_port" "$admin_port" p2c_kv
  cat <<TOML

[ledger]
path = ""

[[tenants]]
name = "load"
api_key_sha256 = ["$("$binary" hash-key "$key")"]
TOML
  for i in 0 1 2 3; do
    cat <<TOML

[[workers]]
name = "sim-$i"
url = "http://127.0.0.1:$((base_port + i))/"
models = ["$model"]
max_concurrency = 6
TOML
  done
} >"$out/aotproxy.toml"

for i in 0 1 2 3; do
  fleet_start_worker "$binary" $((base_port + i)) "$out/sim-$i.log" --name "sim-$i" --model "$model" --max-num-seqs 4 --max-num-waiting 2 || exit 3
done
fleet_start_gateway "$binary" "$out/aotproxy.toml" "$out/gateway.log" || exit 3

burst() {
  local count="$1" i
  for i in $(seq 1 "$count"); do
    curl -sN --max-time 60 -o "$out/burst-$count-$i.sse" -w '%{http_code}\n' \
      -H "Authorization: Bearer $key" -H 'Content-Type: application/json' \
      -d "{\"model\":\"$model\",\"messages\":[{\"role\":\"user\",\"content\":\"burst $count stream $i\"}],\"max_tokens\":128,\"stream\":true}" \
      "http://127.0.0.1:$gateway_port/v1/chat/completions" >"$out/burst-$count-$i.status" &
  done
  wait
  local whole=0
  for i in $(seq 1 "$count"); do
    if [[ "$(cat "$out/burst-$count-$i.status")" == 200 ]] && tail -c 14 "$out/burst-$count-$i.sse" | grep -q 'data: \[DONE\]'; then
      whole=$((whole + 1))
    fi
  done
  echo "burst of $count: $whole whole streams, $((count - whole)) failed ($(cat "$out"/burst-"$count"-*.status | sort | uniq -c | tr -s ' ' | tr '\n' ';'))"
}

{
  echo "binary: $binary"
  burst 24
  burst 40
  for i in 0 1 2 3; do
    curl -s "http://127.0.0.1:$((base_port + i))/sim/stats" | python3 -c \
      'import json,sys; s=json.load(sys.stdin); print("%s: requests %d, max_in_engine %d, queue_full %d" % (s["name"], s["requests_total"], s["max_in_engine"], s["queue_full"]))'
  done
  curl -s "http://127.0.0.1:$admin_port/api/circuit-breaker/stats" | python3 -c \
    'import json,sys; b=json.load(sys.stdin); print("breakers opened:", sum(x["times_opened"] for x in b), "failures:", sum(x["failures"] for x in b))'
} | tee "$out/summary.txt"
