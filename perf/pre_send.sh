#!/usr/bin/env bash
# perf/pre_send.sh: AotProxy's own time before the upstream send for a lone stream, by the pause
# before it (perf/pre_send.py reads x-gateway-overhead-ms). On this VM a lone request is slow
# because the core is cold after any sleep: the same code takes 5 µs with no pause and 45-85 µs
# after one (perf/RESULTS.md, "time to first token, fourth pass"). This measures that, and a
# change to the pre-send path, to a few µs, where end-to-end TTFT moves ±100 µs between rounds.
#
#   perf/pre_send.sh [--pauses "0 2 20"] [--streams 200] [--rounds 3] [--base-binary PATH] [--rt]
#
# One simulated worker (core 0, 5 ms decode steps) and the gateway (artifacts/aot/aotproxy or
# AOTPROXY_BINARY; with --base-binary a second one, `base`) pinned to core 1, the client on core 0.
# Per round and pause, each target in turn (the order alternating per round) serves --streams
# lone 8-token streams on one keep-alive connection; the report gives each target's p50 per round
# and the median over rounds. --rt runs what it starts SCHED_FIFO at priority 1 (as compare.sh).
# Ports 19601-19605 (+ PERF_PORT_OFFSET) on 127.0.0.1. Every process is stopped by its PID on exit.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
FLEET_TAG="pre_send.sh"
# shellcheck source=perf/lib/fleet.sh
source perf/lib/fleet.sh

PAUSES="0 2 20"
STREAMS=200
ROUNDS=3
BASE_BIN=""
RT=0
while (($#)); do
  case "$1" in
    --pauses) PAUSES="$2"; shift ;;
    --streams) STREAMS="$2"; shift ;;
    --rounds) ROUNDS="$2"; shift ;;
    --base-binary) BASE_BIN="$2"; shift ;;
    --rt) RT=1 ;;
    -h | --help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "pre_send.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

BIN=$(fleet_binary)
fleet_ports SIM_PORT=19601 AOT_PORT=19602 AOT_ADMIN=19603 BASE_PORT=19604 BASE_ADMIN=19605
fleet_check_ports $FLEET_PORTS
SCHED=()
((RT)) && SCHED=(chrt -f 1)
OUT="perf/reports/pre-send-$(date -u +%Y%m%d-%H%M%S)"
mkdir -p "$OUT"
trap fleet_stop_all EXIT

readonly KEY=sk-bench MODEL=bench KEY_SHA256=c00397de4384b5bbaf14c02fe1ec7020d28d1eeab6a722c576c84b6678c41c29
write_config() { # PORT ADMIN FILE
  {
    fleet_gateway_toml "$1" "$2" round_robin
    fleet_workers_toml "$MODEL" 4096 "$SIM_PORT"
    printf '\n[[tenants]]\nname = "bench"\napi_key_sha256 = ["%s"]\nmodels = ["*"]\n' "$KEY_SHA256"
  } >"$3"
}

fleet_launcher=("${SCHED[@]}" taskset -c 0)
AOTPROXY_LOG_LEVEL=warning fleet_start_worker "$BIN" "$SIM_PORT" "$OUT/sim.log" --model "$MODEL" --decode-tps 200 --max-num-seqs 1024
fleet_launcher=("${SCHED[@]}" taskset -c 1)
TARGETS=(aot)
write_config "$AOT_PORT" "$AOT_ADMIN" "$OUT/aot.toml"
AOTPROXY_LOG_LEVEL=warning fleet_start_gateway "$BIN" "$OUT/aot.toml" "$OUT/aot.log"
if [[ -n $BASE_BIN ]]; then
  TARGETS+=(base)
  write_config "$BASE_PORT" "$BASE_ADMIN" "$OUT/base.toml"
  AOTPROXY_LOG_LEVEL=warning fleet_start_gateway "$BASE_BIN" "$OUT/base.toml" "$OUT/base.log"
fi
port_of() { [[ $1 == aot ]] && echo "$AOT_PORT" || echo "$BASE_PORT"; }

echo "# perf/pre_send.sh, $(date -u +%FT%TZ), load average $(cut -d' ' -f1-3 /proc/loadavg)" | tee "$OUT/report.md"
: >"$OUT/results.jsonl"
for round in $(seq 1 "$ROUNDS"); do
  order=("${TARGETS[@]}")
  ((round % 2 == 0)) && order=($(printf '%s\n' "${TARGETS[@]}" | tac))
  for pause in $PAUSES; do
    for target in "${order[@]}"; do
      "${SCHED[@]}" taskset -c 0 python3 perf/pre_send.py "http://127.0.0.1:$(port_of "$target")/v1/chat/completions" "$KEY" "$MODEL" \
        --streams "$STREAMS" --pause-ms "$pause" |
        python3 -c "import json,sys; d=json.load(sys.stdin); d.update(round=$round, target='$target'); print(json.dumps(d))" >>"$OUT/results.jsonl"
    done
  done
done
echo "load average at the end $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT/report.md"

python3 - "$OUT/results.jsonl" <<'PY' | tee -a "$OUT/report.md"
import json, statistics, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
targets = sorted({r["target"] for r in rows})
pauses = sorted({r["pause_ms"] for r in rows})
print("\n| pause (ms) | " + " | ".join(f"{t} p50 µs (per round)" for t in targets) + " |")
print("|---:|" + "---|" * len(targets))
for pause in pauses:
    cells = []
    for target in targets:
        values = [r["p50_us"] for r in rows if r["target"] == target and r["pause_ms"] == pause]
        cells.append(f"**{statistics.median(values):.0f}** ({', '.join(f'{v:.0f}' for v in values)})")
    print(f"| {pause:g} | " + " | ".join(cells) + " |")
PY
echo "raw: $OUT/results.jsonl"
