#!/usr/bin/env bash
# perf/profile.sh: where AotProxy's CPU per request goes (issue 22), beside nginx's, on the
# setup compare.sh sweeps: POST /v1/chat/completions through the proxy (pinned to core 1) to one
# nginx `return 200` backend with a 1024-byte completion (core 0, with the load generator).
#
#   perf/profile.sh [--connections 64] [--duration 10] [--binary PATH] [--proxies "aot nginx"]
#                   [--ledger on|off] [--lone RATE] [--frequency HZ] [--rt] [--no-record]
#                   [--server 'park_idle_after = "0"'] (a line added to AotProxy's [server])
#                   [--call-graph fp|dwarf] (dwarf: the kernel's samples keep their managed callers
#                   through libc, which has no frame pointers; heavier)
#
# Per proxy: a 3 s warm-up, then wrk -c CONNECTIONS for DURATION s (or, with --lone RATE, h2load
# on one connection at RATE req/s: a lone request on a cold core, the TTFT case) while
# `perf record -F HZ -g` samples the proxy's process. It prints requests/s, the process's CPU
# per request (utime and stime from /proc, so user and kernel), the samples' split by DSO, the
# hottest functions (self), and the samples per stage (perf/profile_stages.py; with dwarf call
# graphs `perf script` takes minutes: run it by hand on PROXY.data then, as RESULTS.md shows).
# This VM has no PMU (perf stat: cycles <not supported>), so the samples are cpu-clock ones, and
# no cycles or instructions per request are given. Symbols: NativeAOT puts them in
# aotproxy.dbg next to the binary (its .gnu_debuglink), which perf reads.
#
# Ports 18391-18394 (+ PERF_PORT_OFFSET) on 127.0.0.1. Output: a Markdown summary on stdout and
# the raw perf data and reports in perf/reports/profile-STAMP/. Every process it starts is
# stopped by its PID on exit.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
CONNECTIONS=64 DURATION=10 BINARY=${AOTPROXY_BINARY:-artifacts/aot/aotproxy} PROXIES="aot nginx"
LEDGER=on LONE=0 FREQ=1999 RT=0 RECORD=1 SERVER_LINES="" CALL_GRAPH=fp
while (($#)); do
  case $1 in
    --connections) CONNECTIONS=$2; shift ;;
    --duration) DURATION=$2; shift ;;
    --binary) BINARY=$2; shift ;;
    --proxies) PROXIES=$2; shift ;;
    --ledger) LEDGER=$2; shift ;;
    --lone) LONE=$2; shift ;;
    --frequency) FREQ=$2; shift ;;
    --rt) RT=1 ;;
    --no-record) RECORD=0 ;;
    --call-graph) CALL_GRAPH=$2; shift ;;
    --server) SERVER_LINES+="$2"$'\n'; shift ;;
    -h | --help) sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "profile.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
SCHED=()
((RT)) && SCHED=(chrt -f 1)
OFFSET=${PERF_PORT_OFFSET:-0}
HOST=127.0.0.1 BACKEND=$((18391 + OFFSET)) PROXY=$((18392 + OFFSET)) ADMIN=$((18393 + OFFSET)) KEY=sk-bench
OUT="$ROOT/perf/reports/profile-$(date -u +%Y%m%d-%H%M%S)"
WORK="$OUT/work"
mkdir -p "$WORK/tmp"
CLK_TCK=$(getconf CLK_TCK)

FLEET_TAG="profile.sh"
# shellcheck source=perf/lib/fleet.sh
source "$ROOT/perf/lib/fleet.sh"
trap fleet_stop_all EXIT
trap 'exit 130' INT TERM
fleet_check_ports $BACKEND $PROXY $ADMIN

body=$(python3 -c 'import json; t="lorem ipsum "*80; print(json.dumps({"id":"c","object":"chat.completion","model":"bench","choices":[{"index":0,"message":{"role":"assistant","content":t[:820]},"finish_reason":"length"}],"usage":{"prompt_tokens":12,"total_tokens":28,"completion_tokens":16}}))')
request='{"model":"bench","messages":[{"role":"user","content":"Say something about proxies."}],"max_tokens":16}'
printf '%s' "$request" >"$WORK/request.json"
fleet_wrk_script "$request" "$KEY" >"$WORK/post.lua"
common="daemon off; master_process off; pid $WORK/NAME.pid; error_log $WORK/NAME-error.log warn; events { worker_connections 4096; }"
tmp="client_body_temp_path $WORK/tmp; proxy_temp_path $WORK/tmp; fastcgi_temp_path $WORK/tmp; uwsgi_temp_path $WORK/tmp; scgi_temp_path $WORK/tmp; access_log off; keepalive_requests 10000000; keepalive_timeout 300s;"
{ echo "${common//NAME/backend}"; echo "http { $tmp server { listen $HOST:$BACKEND; location / { default_type application/json; return 200 '$body'; } } }"; } >"$WORK/backend.conf"
{ echo "${common//NAME/proxy}"; echo "http { $tmp upstream b { server $HOST:$BACKEND; keepalive 256; keepalive_requests 10000000; } server { listen $HOST:$PROXY; location / { proxy_pass http://b; proxy_http_version 1.1; proxy_set_header Connection \"\"; proxy_buffering off; } } }"; } >"$WORK/proxy.conf"
sha=$(printf '%s' "$KEY" | sha256sum | cut -d' ' -f1)
{
  printf '[server]\nlisten = "%s:%s"\nadmin_listen = "%s:%s"\nshutdown_grace = "2s"\n%s\n[routing]\nstrategy = "round_robin"\n\n' $HOST $PROXY $HOST $ADMIN "$SERVER_LINES"
  printf '[[workers]]\nname = "b"\nurl = "http://%s:%s"\nmodels = ["bench"]\nmax_concurrency = 4096\n\n' $HOST $BACKEND
  printf '[[tenants]]\nname = "bench"\napi_key_sha256 = ["%s"]\nmodels = ["*"]\n' "$sha"
  # The ledger defaults to aotproxy-usage.db next to the config; off: none at all.
  [[ $LEDGER == off ]] && printf '\n[ledger]\npath = ""\n'
} >"$WORK/aot.toml"

cpu_ticks() { # PID -> "utime stime" in clock ticks, all threads
  local stat rest fields
  stat=$(<"/proc/$1/stat")
  rest=${stat##*) }
  read -ra fields <<<"$rest"
  echo "${fields[11]} ${fields[12]}"
}

thread_ticks() { # PID -> "name<TAB>utime+stime" per thread
  local t stat name rest fields
  for t in /proc/"$1"/task/*; do
    stat=$(<"$t/stat") || continue
    name=${stat#*(}; name=${name%%)*}
    rest=${stat##*) }
    read -ra fields <<<"$rest"
    printf '%s\t%s\n' "$name" $((fields[11] + fields[12]))
  done
}

load() { # SECONDS OUTFILE
  if ((LONE)); then
    "${SCHED[@]}" taskset -c 0 h2load --h1 -t1 -c1 --rps="$LONE" -D "$1" -d "$WORK/request.json" -H "Content-Type: application/json" \
      -H "Authorization: Bearer $KEY" "http://$HOST:$PROXY/v1/chat/completions" >"$2" 2>&1
  else
    "${SCHED[@]}" taskset -c 0 wrk -t1 -c"$CONNECTIONS" -d"$1s" --latency -s "$WORK/post.lua" "http://$HOST:$PROXY/v1/chat/completions" >"$2" 2>&1
  fi
}

served() { # OUTFILE -> requests answered 2xx
  if ((LONE)); then sed -n 's/.*status codes: \([0-9]*\) 2xx.*/\1/p' "$1"; else sed -n 's/^RESULT requests=\([0-9]*\) .*/\1/p' "$1"; fi
}

fleet_launcher=("${SCHED[@]}" taskset -c 0)
fleet_spawn "$WORK/backend.log" nginx -p "$WORK" -e "$WORK/backend-error.log" -c "$WORK/backend.conf"
fleet_wait_port $BACKEND "the nginx backend" "$WORK/backend.log"

mode="wrk -c$CONNECTIONS, ${DURATION}s"
((LONE)) && mode="h2load -c1 --rps $LONE, ${DURATION}s"
echo "## perf/profile.sh: $mode, ledger $LEDGER, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| proxy | requests | req/s | CPU µs/req | user µs/req | kernel µs/req |"
echo "|---|---:|---:|---:|---:|---:|"
for proxy in $PROXIES; do
  fleet_launcher=("${SCHED[@]}" taskset -c 1)
  case $proxy in
    nginx)
      fleet_spawn "$WORK/nginx.log" nginx -p "$WORK" -e "$WORK/proxy-error.log" -c "$WORK/proxy.conf"
      fleet_wait_port $PROXY "the nginx proxy" "$WORK/nginx.log" ;;
    aot) AOTPROXY_LOG_LEVEL=warning fleet_start_gateway "$BINARY" "$WORK/aot.toml" "$WORK/aot.log" 2>/dev/null ;;
    *) echo "profile.sh: unknown proxy $proxy (aot nginx)" >&2; exit 2 ;;
  esac
  pid=$fleet_last_pid
  load 3 "$WORK/$proxy-warmup.txt"
  read -r u0 s0 <<<"$(cpu_ticks "$pid")"
  thread_ticks "$pid" >"$WORK/$proxy-threads0.txt"
  recorder=""
  if ((RECORD)); then
    perf record -F "$FREQ" --call-graph "$CALL_GRAPH" -p "$pid" -o "$OUT/$proxy.data" -- sleep "$DURATION" >"$WORK/$proxy-record.log" 2>&1 &
    recorder=$!
  fi
  load "$DURATION" "$OUT/$proxy-load.txt"
  read -r u1 s1 <<<"$(cpu_ticks "$pid")"
  thread_ticks "$pid" >"$WORK/$proxy-threads1.txt"
  [[ -z $recorder ]] || wait "$recorder" || true
  n=$(served "$OUT/$proxy-load.txt")
  python3 - "$proxy" "${n:-0}" "$DURATION" $((u1 - u0)) $((s1 - s0)) "$CLK_TCK" "$WORK/$proxy.cpu" <<'PY'
import sys
proxy, n, duration, u, s, clk = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
per = lambda t: f"{t / clk * 1e6 / n:.1f}" if n else "-"
print(f"| {proxy} | {n} | {n / duration:.0f} | {per(u + s)} | {per(u)} | {per(s)} |")
open(sys.argv[7], "w").write(f"{n} {per(u + s)}")
PY
  # CPU per request by thread name (threads that started during the run count from 0).
  python3 - "$WORK/$proxy-threads0.txt" "$WORK/$proxy-threads1.txt" "${n:-0}" "$CLK_TCK" >>"$WORK/threads.md" <<'PY'
import sys
from collections import defaultdict
def read(path):
    rows = defaultdict(int)
    for line in open(path):
        name, ticks = line.rstrip("\n").rsplit("\t", 1)
        rows[name] += int(ticks)
    return rows
a, b, n, clk = read(sys.argv[1]), read(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
parts = sorted(((b[k] - a.get(k, 0), k) for k in b), reverse=True)
print(" · ".join(f"{k}: {t / clk * 1e6 / n:.2f} µs/req" for t, k in parts if t > 0) if n else "-")
PY
  fleet_stop "$pid"
  for _ in $(seq 50); do port_open $PROXY || break; sleep 0.1; done
done
echo
echo "CPU per request by thread, in the order above:"
echo
cat "$WORK/threads.md"
echo

((RECORD)) || exit 0
for proxy in $PROXIES; do
  data="$OUT/$proxy.data"
  [[ -s $data ]] || continue
  perf report -i "$data" --no-children --sort dso --stdio 2>/dev/null >"$OUT/$proxy-dso.txt" || true
  perf report -i "$data" --no-children --sort dso,sym --stdio -g none 2>/dev/null >"$OUT/$proxy-self.txt" || true
  perf report -i "$data" --children --sort sym --stdio -g none 2>/dev/null >"$OUT/$proxy-children.txt" || true
  echo "### $proxy: samples by DSO"
  echo '```'
  grep -E '^ +[0-9]' "$OUT/$proxy-dso.txt" | head -8
  echo '```'
  read -r n us <"$WORK/$proxy.cpu" || true
  echo "### $proxy: stages (perf/profile_stages.py)"
  echo
  perf script -i "$data" -F comm,tid,ip,sym,dso 2>/dev/null | python3 perf/profile_stages.py --requests "$n" --cpu-us "$us" --self 6 >"$OUT/$proxy-stages.txt" || true
  sed '/: hottest leaves/,$d' "$OUT/$proxy-stages.txt"
  echo "### $proxy: hottest functions (self)"
  echo '```'
  grep -E '^ +[0-9]' "$OUT/$proxy-self.txt" | head -40 | cut -c1-160
  echo '```'
done
echo "raw: $OUT"
