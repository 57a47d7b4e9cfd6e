#!/usr/bin/env bash
# perf/event_latency.sh: what each SSE event costs through a proxy while N streams are in flight.
#
#   perf/event_latency.sh [--streams 1000] [--events 20] [--interval-ms 100] [--rounds 3]
#                         [--proxies "nginx aot"] [--base-binary PATH] [--nice N | --rt] [--out DIR]
#
# A Python worker (perf/event_latency.py upstream) stamps every token event with the
# CLOCK_MONOTONIC time it wrote it; the client (perf/event_latency.py client) opens --streams
# streams at once and takes receive time minus stamp for every token event. Per round it
# measures direct (the worker itself), then each proxy, the order rotating from round to round;
# the report gives each target's p50/p99 per round and the median over rounds, and the added
# time (proxy minus direct of the same round). Proxies on core 1 (nginx: proxy_buffering off,
# upstream keepalive; AotProxy: the AOT binary, artifacts/aot/aotproxy or AOTPROXY_BINARY;
# `base`: --base-binary, e.g. main's binary for before/after); worker and client on core 0.
# Before the rounds, one unrecorded warm-up pass per target (--streams streams of 2 events).
# --nice N runs everything it starts at nice N; --rt runs it SCHED_FIFO at priority 1 (as
# perf/compare.sh --rt: while other work keeps the cores busy, nice -20 still waits for its slices).
# Loopback ports 19501-19506. Every process is stopped by its PID on exit.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

STREAMS=1000
EVENTS=20
INTERVAL_MS=100
ROUNDS=3
PROXIES="nginx aot"
BASE_BIN=""
NICE=0
RT=0
OUT="perf/reports/event-latency-$(date -u +%Y%m%d-%H%M%S)"

while (($#)); do
  case "$1" in
    --streams) STREAMS="$2"; shift ;;
    --events) EVENTS="$2"; shift ;;
    --interval-ms) INTERVAL_MS="$2"; shift ;;
    --rounds) ROUNDS="$2"; shift ;;
    --proxies) PROXIES="$2"; shift ;;
    --base-binary) BASE_BIN="$2"; shift ;;
    --nice) NICE="$2"; shift ;;
    --rt) RT=1 ;;
    --out) OUT="$2"; shift ;;
    -h | --help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "event_latency.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

SCHED=(nice -n "$NICE")
((RT)) && SCHED=(chrt -f 1)
readonly HOST=127.0.0.1 KEY=sk-bench
FLEET_TAG="event_latency.sh"
# shellcheck source=perf/lib/fleet.sh
source "$ROOT/perf/lib/fleet.sh"
fleet_ports UP_PORT=19501 NGINX_PORT=19502 AOT_PORT=19503 AOT_ADMIN=19504 BASE_PORT=19505 BASE_ADMIN=19506
trap fleet_stop_all EXIT
trap 'exit 130' INT TERM

# The measurement's own check first (perf/event_latency_test.py): a slow relay must show up.
python3 -m unittest discover -s "$ROOT/perf" -p 'event_latency_test.py' >/dev/null 2>&1 || {
  python3 -m unittest discover -s "$ROOT/perf" -p 'event_latency_test.py' >&2 || true
  echo "event_latency.sh: perf/event_latency_test.py fails: the figures could not be trusted" >&2
  exit 1
}
AOT_BIN=$(fleet_binary)
read -ra PROXY_LIST <<<"$PROXIES"
mkdir -p "$OUT/work"
OUT=$(cd "$OUT" && pwd)
ulimit -n "$(ulimit -Hn)"
fleet_check_ports $FLEET_PORTS || exit 3

gateway_toml() { # PORT ADMIN
  cat <<EOF
[server]
listen = "$HOST:$1"
admin_listen = "$HOST:$2"
shutdown_grace = "2s"

[routing]
strategy = "round_robin"

[[workers]]
name = "stamp"
url = "http://$HOST:$UP_PORT"
models = ["bench"]
max_concurrency = 4096

[[tenants]]
name = "bench"
api_key_sha256 = ["$(printf '%s' "$KEY" | sha256sum | cut -d' ' -f1)"]
models = ["*"]

[ledger]
path = ""
EOF
}

{
  fleet_nginx_main "$OUT/work" nginx
  echo "http {"
  fleet_nginx_http_common "$OUT/work"
  fleet_nginx_proxy "$HOST:$NGINX_PORT" "$HOST:$UP_PORT" 1024
  echo "}"
} >"$OUT/work/nginx.conf"

fleet_launcher=("${SCHED[@]}" taskset -c 0)
fleet_spawn "$OUT/work/upstream.log" python3 perf/event_latency.py upstream --port $UP_PORT --interval-ms "$INTERVAL_MS"
fleet_wait_port $UP_PORT "the stamping worker" "$OUT/work/upstream.log"
fleet_launcher=("${SCHED[@]}" taskset -c 1)
declare -A URL_OF=([direct]="http://$HOST:$UP_PORT")
for proxy in "${PROXY_LIST[@]}"; do
  case $proxy in
    nginx)
      fleet_spawn "$OUT/work/nginx.log" nginx -p "$OUT/work" -e "$OUT/work/nginx-error.log" -c "$OUT/work/nginx.conf"
      fleet_wait_port $NGINX_PORT "nginx" "$OUT/work/nginx.log"
      URL_OF[nginx]="http://$HOST:$NGINX_PORT" ;;
    aot)
      gateway_toml $AOT_PORT $AOT_ADMIN >"$OUT/work/aot.toml"
      AOTPROXY_LOG_LEVEL=warning fleet_start_gateway "$AOT_BIN" "$OUT/work/aot.toml" "$OUT/work/aot.log"
      URL_OF[aot]="http://$HOST:$AOT_PORT" ;;
    base)
      [[ -x $BASE_BIN ]] || { echo "event_latency.sh: proxy base needs --base-binary PATH" >&2; exit 2; }
      gateway_toml $BASE_PORT $BASE_ADMIN >"$OUT/work/base.toml"
      AOTPROXY_LOG_LEVEL=warning fleet_start_gateway "$BASE_BIN" "$OUT/work/base.toml" "$OUT/work/base.log"
      URL_OF[base]="http://$HOST:$BASE_PORT" ;;
    *) echo "event_latency.sh: unknown proxy $proxy (nginx aot base)" >&2; exit 2 ;;
  esac
done

targets=(direct "${PROXY_LIST[@]}")
n=${#targets[@]}
# Warm-up, not recorded: every target opens its upstream connections and runs each path once.
for target in "${targets[@]}"; do
  "${SCHED[@]}" taskset -c 0 python3 perf/event_latency.py client "${URL_OF[$target]}" "$KEY" --streams "$STREAMS" --events 2 --ramp-s 1 >/dev/null
done
echo "round,target,streams,events,failed_streams,p50_us,p90_us,p99_us,max_us,loadavg" >"$OUT/events.csv"
for ((round = 1; round <= ROUNDS; round++)); do
  for ((k = 0; k < n; k++)); do
    target=${targets[(k + round) % n]}
    echo "[event_latency $(date -u +%H:%M:%S)] round $round/$ROUNDS: $target, $STREAMS streams x $EVENTS events" >&2
    "${SCHED[@]}" taskset -c 0 python3 perf/event_latency.py client "${URL_OF[$target]}" "$KEY" --streams "$STREAMS" --events "$EVENTS" \
      --ramp-s 1 --out "$OUT/r$round-$target.json" >/dev/null
    python3 - "$round" "$target" "$OUT/r$round-$target.json" "$(cut -d' ' -f1 /proc/loadavg)" >>"$OUT/events.csv" <<'EOF'
import json, sys
rnd, target, out, load = sys.argv[1:]
d = json.load(open(out))
f = lambda p: "" if d["latency_us"][p] is None else f'{d["latency_us"][p]:.0f}'
print(",".join([rnd, target, str(d["streams"]), str(d["events"]), str(d["failed_streams"]), f("p50"), f("p90"), f("p99"), f("max"), load]))
EOF
  done
done

python3 - "$OUT/events.csv" <<'EOF' | tee "$OUT/report.md"
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1])))
direct = {r["round"]: r for r in rows if r["target"] == "direct"}
print("| target | rounds | events (failed streams) | p50 us | p99 us | added p50 | added p99 | load avg |")
print("|---|---|---|---|---|---|---|---|")
for target in dict.fromkeys(r["target"] for r in rows):
    mine = [r for r in rows if r["target"] == target]
    med = lambda key: statistics.median(float(r[key]) for r in mine)
    added = lambda key: statistics.median(float(r[key]) - float(direct[r["round"]][key]) for r in mine)
    extra = ("", "") if target == "direct" else (f"{added('p50_us'):+.0f}", f"{added('p99_us'):+.0f}")
    print(f"| {target} | {len(mine)} | {sum(int(r['events']) for r in mine)} ({sum(int(r['failed_streams']) for r in mine)}) "
          f"| {med('p50_us'):.0f} | {med('p99_us'):.0f} | {extra[0]} | {extra[1]} | {min(r['loadavg'] for r in mine)}-{max(r['loadavg'] for r in mine)} |")
EOF
