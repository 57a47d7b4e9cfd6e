#!/usr/bin/env bash
# perf/compare.sh: AotProxy beside nginx and YARP on this machine, one command.
#
#   perf/compare.sh            full run: 8 32 64 128 256 connections, 3 rounds of 10 s (~25 min)
#   perf/compare.sh --quick    3 points, 1 round of 4 s (a few minutes)
#
# Options: --connections "8 32 64 128 256"  --rounds N  --duration SECONDS  --warmup SECONDS
#          --proxies "nginx yarp aot jit"   --no-install (skip apt)  --no-build (use what is built)
#          (also: base, see --base-binary; haproxy and socat, the floor of a user-space relay)
#          --nice N (run everything it starts at nice N, e.g. -10, when other work shares the
#          machine: a bigger share of the CPU for the benchmark, at the expense of that work)
#          --rt (run everything it starts SCHED_FIFO at priority 1 instead: on a core another
#          engineer's build keeps 100% busy even nice -20 waits for the other task's slice, which
#          measured 15 ms per SSE event through nginx at 1,000 streams; the kernel's RT throttling
#          still leaves that work 5% of each second)
#          --wait-quiet SECONDS (first wait, up to SECONDS, until other work leaves core 1 alone)
#          --noise-retries N (repeat a sweep run, up to N times, while other work took more than
#          15% of core 1 during it; the quietest attempt is kept)
#          --ledger on|off (default on, as shipped: AotProxy writes its usage ledger, one SQLite row
#          per request; off measures the proxy without it)
#          --base-binary PATH (a second AotProxy AOT binary, e.g. an earlier commit's published in
#          its own worktree, measured as proxy `base` beside `aot` when --proxies names it: before
#          and after, alternated in one session)
#          --overhead (only the sweep, then interleaved pairs: direct and through each proxy, one
#          after the other in alternating order, at 10%, 50% and 90% of AotProxy's best throughput
#          as background load (--overhead-loads "10 50 90", --overhead-pairs N per point); refuses
#          to run while other work keeps the proxy core more than 15% busy)
#          --base-transport NAME (server.transport of proxy `base`: with --base-binary
#          artifacts/aot/aotproxy --base-transport epoll, one binary on sockets against epoll)
#          --base-park VALUE (server.park_idle_after of proxy `base`: with --base-binary
#          artifacts/aot/aotproxy --base-park 0, one binary parking idle connections against not)
#          --sse-only (only the streaming rounds: time to first token direct and through each proxy,
#          --rounds of --sse-requests streams each; interleaved: each round is one probe that sends
#          one stream to every target in rotation, paired against direct's of the same rotation)
#          --sse-sequential (the streaming rounds as before: per round, --sse-requests streams to
#          one target, then to the next, the targets' order rotating per round)
#          --sse-interval-ms MS (pacing of the streams, 50; 0: back to back)  --sse-max-tokens T (8)
#          --trace-sink (proxy `aot` traces every request, [telemetry] otlp_endpoint, to an OTLP/HTTP
#          sink on the load core that answers 200 to each export; `base` keeps tracing off: with
#          --base-binary artifacts/aot/aotproxy, tracing on against off in one binary)
#
# What it runs, all on 127.0.0.1, ports 18181-18193 plus PERF_PORT_OFFSET (checked free first):
#   backends  nginx `return 200` with a fixed 1024-byte chat completion (non-stream), and
#             `aotproxy simulate` at 200 tokens/s (5 ms between tokens) for stream requests
#   proxies   nginx (proxy_pass, upstream keepalive), YARP (perf/peers/YarpPeer), AotProxy as the
#             AOT binary (artifacts/aot/aotproxy) and as the JIT build of the same code; the
#             floor: haproxy (mode http, keep-alive both sides, nothing buffered) and socat (a
#             byte relay, one forked process per connection, no HTTP work at all)
#   load      wrk (closed loop) for the throughput sweep; h2load --rps (fixed rate) for the
#             open-loop latency point; perf/sse_probe.py for time to first token
# Each proxy is pinned to core 1; the backends and load generators share core 0.
#
# Output: a Markdown report on stdout and in perf/reports/compare-STAMP.md, raw data (CSV, JSON,
# every wrk/h2load output) in perf/reports/compare-STAMP/. Every process it starts is stopped by
# its PID on exit.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

CONNECTIONS="8 32 64 128 256"
ROUNDS=3
DURATION=10
WARMUP=5
PROXIES="nginx yarp aot jit"
# One connection: h2load starts every connection's --rps timer at the same moment, so N
# connections send N requests at once, every N/rate seconds, and the burst queues (measured
# against nginx direct at 3,500 req/s: p50 31 µs on 1 connection, 62 on 2, 121 on 4, 246 on 8).
OPEN_CONNECTIONS=1
OPEN_DURATION=10
SSE_REQUESTS=300
RSS_CONNECTIONS=1024
RSS_DURATION=5
INSTALL=1
NICE=0
RT=0
WAIT_QUIET=0
NOISE_MAX=15
NOISE_RETRIES=0
BUILD=1
QUICK=0
LEDGER=on
BASE_BIN=""
BASE_TRANSPORT=""
BASE_PARK=""
TRACE_SINK=0
OVERHEAD=0
SSE_ONLY=0
SSE_SEQUENTIAL=0
SSE_INTERVAL_MS=50
SSE_MAX_TOKENS=8
OVERHEAD_LOADS="10 50 90"
OVERHEAD_PAIRS=2000
COMMAND_LINE="perf/compare.sh${*:+ $*}"

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }

while (($#)); do
  case "$1" in
    --quick) QUICK=1; CONNECTIONS="8 64 256"; ROUNDS=1; DURATION=4; WARMUP=3; OPEN_DURATION=5; SSE_REQUESTS=100; RSS_DURATION=3 ;;
    --connections) CONNECTIONS="$2"; shift ;;
    --rounds) ROUNDS="$2"; shift ;;
    --duration) DURATION="$2"; shift ;;
    --warmup) WARMUP="$2"; shift ;;
    --proxies) PROXIES="$2"; shift ;;
    --no-install) INSTALL=0 ;;
    --nice) NICE="$2"; shift ;;
    --rt) RT=1 ;;
    --wait-quiet) WAIT_QUIET="$2"; shift ;;
    --noise-retries) NOISE_RETRIES="$2"; shift ;;
    --no-build) BUILD=0 ;;
    --overhead) OVERHEAD=1 ;;
    --sse-only) SSE_ONLY=1 ;;
    --sse-requests) SSE_REQUESTS="$2"; shift ;;
    --sse-sequential) SSE_SEQUENTIAL=1 ;;
    --sse-interval-ms) SSE_INTERVAL_MS="$2"; shift ;;
    --sse-max-tokens) SSE_MAX_TOKENS="$2"; shift ;;
    --overhead-loads) OVERHEAD_LOADS="$2"; shift ;;
    --overhead-pairs) OVERHEAD_PAIRS="$2"; shift ;;
    --ledger) LEDGER="$2"; [[ $LEDGER == on || $LEDGER == off ]] || { echo "compare.sh: --ledger on|off" >&2; exit 2; }; shift ;;
    --base-binary) BASE_BIN="$2"; shift ;;
    --base-transport) BASE_TRANSPORT="$2"; shift ;;
    --base-park) BASE_PARK="$2"; shift ;;
    --trace-sink) TRACE_SINK=1 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "compare.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

read -ra PROXY_LIST <<<"$PROXIES"
# How every process the script starts is scheduled (--nice N, or --rt).
SCHED=(nice -n "$NICE")
((RT)) && SCHED=(chrt -f 1)
readonly HOST=127.0.0.1
FLEET_TAG="compare.sh"
# shellcheck source=perf/lib/fleet.sh
source "$ROOT/perf/lib/fleet.sh"
fleet_ports BACKEND_PORT=18181 SIM_PORT=18182 NGINX_PORT=18183 YARP_PORT=18184 AOT_PORT=18185 AOT_ADMIN=18186 \
  JIT_PORT=18187 JIT_ADMIN=18188 BASE_PORT=18189 BASE_ADMIN=18190 SINK_PORT=18191 SOCAT_PORT=18192 HAPROXY_PORT=18193
readonly LOAD_CORE=0 PROXY_CORE=1
readonly KEY=sk-bench MODEL=bench
readonly AOT_BIN=artifacts/aot/aotproxy
readonly JIT_DLL=src/AotProxy/bin/Release/net10.0/aotproxy.dll
readonly YARP_DLL=perf/peers/YarpPeer/bin/Release/net10.0/yarp-peer.dll
CLK_TCK=$(getconf CLK_TCK)
readonly CLK_TCK

STAMP=$(date -u +%Y%m%d-%H%M%S)
REPORTS="$ROOT/perf/reports"
RAW="$REPORTS/compare-$STAMP"
WORK="$RAW/work"
mkdir -p "$WORK"
STARTED_AT=$(date +%s)
LOADAVG_START=$(cut -d' ' -f1-3 /proc/loadavg)

log() { printf '[compare %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

# ---------------------------------------------------------------- processes, by PID only

declare -A PID_OF=()   # name -> pid of every long-running process this script started

trap fleet_stop_all EXIT
trap 'exit 130' INT TERM

# pin CORE: what fleet_spawn starts next runs on CORE, scheduled as SCHED says.
pin() { fleet_launcher=("${SCHED[@]}" taskset -c "$1"); }

stop() {
  local name=$1 pid=${PID_OF[$1]:-}
  [[ -n $pid ]] || return 0
  fleet_stop "$pid"
  unset "PID_OF[$name]"
}

# ---------------------------------------------------------------- setup

install_tools() {
  local missing=()
  command -v nginx >/dev/null || missing+=(nginx-light)
  command -v haproxy >/dev/null || missing+=(haproxy)
  command -v socat >/dev/null || missing+=(socat)
  command -v wrk >/dev/null || missing+=(wrk)
  command -v h2load >/dev/null || missing+=(nghttp2-client)
  command -v curl >/dev/null || missing+=(curl)
  command -v python3 >/dev/null || missing+=(python3)
  command -v taskset >/dev/null || missing+=(util-linux)
  command -v clang >/dev/null || missing+=(clang lld zlib1g-dev)
  ((${#missing[@]})) || return 0
  log "installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

build() {
  log "building: AOT binary, JIT build, YARP peer"
  dotnet publish src/AotProxy/AotProxy.csproj -c Release -r linux-x64 -o artifacts/aot >"$WORK/build-aot.log" 2>&1 || { tail -20 "$WORK/build-aot.log" >&2; exit 1; }
  dotnet build src/AotProxy -c Release >"$WORK/build-jit.log" 2>&1 || { tail -20 "$WORK/build-jit.log" >&2; exit 1; }
  dotnet build perf/peers/YarpPeer -c Release >"$WORK/build-yarp.log" 2>&1 || { tail -20 "$WORK/build-yarp.log" >&2; exit 1; }
}

# The 1024-byte OpenAI chat completion the nginx backend returns (padded in the content).
completion_json() {
  local head='{"id":"chatcmpl-bench","object":"chat.completion","created":1795000000,"model":"bench","choices":[{"index":0,"message":{"role":"assistant","content":"'
  local tail='"},"logprobs":null,"finish_reason":"length"}],"usage":{"prompt_tokens":12,"total_tokens":28,"completion_tokens":16}}'
  local pad=$((1024 - ${#head} - ${#tail})) text=""
  while ((${#text} < pad)); do text+="lorem ipsum "; done
  printf '%s%s%s' "$head" "${text:0:pad}" "$tail"
}

write_configs() {
  local body
  body=$(completion_json)
  ((${#body} == 1024)) || { echo "backend body is ${#body} bytes, not 1024" >&2; exit 1; }
  printf '%s' "$body" >"$RAW/backend-response.json"
  printf '%s' '{"model":"bench","messages":[{"role":"user","content":"Say something about proxies."}],"max_tokens":16}' >"$WORK/request.json"

  fleet_nginx_http_common "$WORK" >"$WORK/nginx-common.conf"
  {
    fleet_nginx_main "$WORK" backend
    cat <<EOF
http {
  include $WORK/nginx-common.conf;
  server {
    listen $HOST:$BACKEND_PORT;
    location / {
      default_type application/json;
      return 200 '$body';
    }
  }
  # --trace-sink: an OTLP/HTTP receiver that takes every export (an empty 200 is a full success).
  server {
    listen $HOST:$SINK_PORT;
    location / {
      default_type application/x-protobuf;
      return 200;
    }
  }
}
EOF
  } >"$WORK/backend.conf"

  local key_sha
  key_sha=$(printf '%s' "$KEY" | sha256sum | cut -d' ' -f1)
  for mode in aot jit base; do
    local port=$AOT_PORT admin=$AOT_ADMIN
    [[ $mode == jit ]] && port=$JIT_PORT admin=$JIT_ADMIN
    [[ $mode == base ]] && port=$BASE_PORT admin=$BASE_ADMIN
    local transport=""
    [[ $mode == base && -n $BASE_TRANSPORT ]] && transport="transport = \"$BASE_TRANSPORT\""
    [[ $mode == base && -n $BASE_PARK ]] && transport+=$'\n'"park_idle_after = \"$BASE_PARK\""
    for upstream in backend sim; do
      local url="http://$HOST:$BACKEND_PORT"
      [[ $upstream == sim ]] && url="http://$HOST:$SIM_PORT"
      cat >"$WORK/aotproxy-$mode-$upstream.toml" <<EOF
[server]
listen = "$HOST:$port"
admin_listen = "$HOST:$admin"
shutdown_grace = "2s"
$transport

[routing]
strategy = "round_robin"

[[workers]]
name = "$upstream"
url = "$url"
models = ["$MODEL"]
max_concurrency = 4096

[[tenants]]
name = "bench"
api_key_sha256 = ["$key_sha"]
models = ["*"]
EOF
      # The ledger defaults to aotproxy-usage.db next to the config ($WORK); off: none at all.
      [[ $LEDGER == off ]] && printf '\n[ledger]\npath = ""\n' >>"$WORK/aotproxy-$mode-$upstream.toml"
      if ((TRACE_SINK)) && [[ $mode == aot ]]; then
        printf '\n[telemetry]\notlp_endpoint = "http://%s:%s"\n' "$HOST" "$SINK_PORT" >>"$WORK/aotproxy-$mode-$upstream.toml"
      fi
    done
  done

  fleet_wrk_script "$(cat "$WORK/request.json")" "$KEY" >"$WORK/post.lua"
}

nginx_proxy_conf() { # UPSTREAM_PORT
  {
    fleet_nginx_main "$WORK" proxy
    echo "http {"
    echo "include $WORK/nginx-common.conf;"
    fleet_nginx_proxy "$HOST:$NGINX_PORT" "$HOST:$1" 256
    echo "}"
  } >"$WORK/proxy.conf"
}

start_backends() {
  pin $LOAD_CORE
  fleet_spawn "$WORK/backend.log" nginx -p "$WORK" -e "$WORK/backend-error.log" -c "$WORK/backend.conf"
  PID_OF[backend]=$fleet_last_pid
  fleet_wait_port $BACKEND_PORT "the nginx backend" "$WORK/backend.log"
  AOTPROXY_LOG_LEVEL=warning fleet_start_worker "$AOT_BIN" $SIM_PORT "$WORK/sim.log" --model "$MODEL" --decode-tps 200 --max-num-seqs 1024
  PID_OF[sim]=$fleet_last_pid
}

start_proxies() { # backend | sim
  local upstream=$1 upstream_port=$BACKEND_PORT proxy
  [[ $upstream == sim ]] && upstream_port=$SIM_PORT
  pin $PROXY_CORE
  for proxy in "${PROXY_LIST[@]}"; do
    case $proxy in
      nginx)
        nginx_proxy_conf "$upstream_port"
        fleet_spawn "$WORK/nginx-$upstream.log" nginx -p "$WORK" -e "$WORK/proxy-error.log" -c "$WORK/proxy.conf"
        fleet_wait_port $NGINX_PORT "the nginx proxy" "$WORK/nginx-$upstream.log" ;;
      yarp)
        fleet_spawn "$WORK/yarp-$upstream.log" dotnet "$YARP_DLL" --listen "$HOST:$YARP_PORT" --upstream "http://$HOST:$upstream_port/"
        fleet_wait_line "$WORK/yarp-$upstream.log" "yarp-peer ready" yarp ;;
      aot) AOTPROXY_LOG_LEVEL=warning fleet_start_gateway "$AOT_BIN" "$WORK/aotproxy-aot-$upstream.toml" "$WORK/aot-$upstream.log" ;;
      jit)
        AOTPROXY_LOG_LEVEL=warning fleet_spawn "$WORK/jit-$upstream.log" dotnet "$JIT_DLL" serve --config "$WORK/aotproxy-jit-$upstream.toml"
        fleet_wait_line "$WORK/jit-$upstream.log" "aotproxy ready:" jit ;;
      base) AOTPROXY_LOG_LEVEL=warning fleet_start_gateway "$BASE_BIN" "$WORK/aotproxy-base-$upstream.toml" "$WORK/base-$upstream.log" ;;
      haproxy)
        haproxy_conf "$upstream_port"
        fleet_spawn "$WORK/haproxy-$upstream.log" haproxy -db -f "$WORK/haproxy.cfg"
        fleet_wait_port $HAPROXY_PORT "haproxy" "$WORK/haproxy-$upstream.log" ;;
      socat) # each connection's child inherits the pinning and scheduling
        fleet_spawn "$WORK/socat-$upstream.log" socat "TCP-LISTEN:$SOCAT_PORT,bind=$HOST,fork,reuseaddr,nodelay" "TCP:$HOST:$upstream_port,nodelay"
        fleet_wait_port $SOCAT_PORT "socat" "$WORK/socat-$upstream.log" ;;
      *) echo "unknown proxy $proxy (nginx yarp aot jit base haproxy socat)" >&2; exit 2 ;;
    esac
    PID_OF[$proxy]=$fleet_last_pid
  done
}

# haproxy as a plain HTTP relay: keep-alive on both sides (no http-server-close), the request not
# buffered (no http-buffer-request), and http-no-delay so that no send waits for more (MSG_MORE):
# each SSE event goes out as it comes in.
haproxy_conf() { # UPSTREAM_PORT
  cat >"$WORK/haproxy.cfg" <<EOF
global
  nbthread 1
  maxconn 8192

defaults
  mode http
  timeout connect 5s
  timeout client 130s
  timeout server 130s
  timeout http-keep-alive 130s
  option http-keep-alive
  no option http-server-close
  no option http-buffer-request
  option http-no-delay
  http-reuse always

frontend relay
  bind $HOST:$HAPROXY_PORT
  default_backend upstream

backend upstream
  server up $HOST:$1 maxconn 4096
EOF
}

stop_proxies() {
  local proxy
  # --trace-sink: what the traced gateway exported and dropped, kept beside the raw data.
  if ((TRACE_SINK)); then
    curl -s "http://$HOST:$AOT_ADMIN/metrics" | grep '^llm_gateway_trace_spans' >>"$RAW/trace-spans.txt" || true
  fi
  for proxy in "${PROXY_LIST[@]}"; do stop "$proxy"; done
}

# ---------------------------------------------------------------- measurements

url_of() { # TARGET -> base URL
  case $1 in
    direct) echo "http://$HOST:$BACKEND_PORT" ;;
    direct-sim) echo "http://$HOST:$SIM_PORT" ;;
    nginx) echo "http://$HOST:$NGINX_PORT" ;;
    yarp) echo "http://$HOST:$YARP_PORT" ;;
    aot) echo "http://$HOST:$AOT_PORT" ;;
    jit) echo "http://$HOST:$JIT_PORT" ;;
    base) echo "http://$HOST:$BASE_PORT" ;;
    haproxy) echo "http://$HOST:$HAPROXY_PORT" ;;
    socat) echo "http://$HOST:$SOCAT_PORT" ;;
  esac
}

# CPU ticks the whole core spent busy (user, nice, system, irq, softirq, steal), from /proc/stat.
core_busy_ticks() { # CORE
  local name user niced system irq softirq steal _
  while read -r name user niced system _ _ irq softirq steal _; do
    [[ $name == "cpu$1" ]] && { echo $((user + niced + system + irq + softirq + steal)); return; }
  done </proc/stat
}

proxy_core_busy_pct() { # over one second
  local a b
  a=$(core_busy_ticks $PROXY_CORE)
  sleep 1
  b=$(core_busy_ticks $PROXY_CORE)
  echo $(((b - a) * 100 / CLK_TCK))
}

# Another benchmark or build on the proxy's core makes every figure a measure of sharing.
wait_for_quiet_core() {
  local busy deadline=$(($(date +%s) + WAIT_QUIET))
  busy=$(proxy_core_busy_pct)
  while ((busy > 15 && $(date +%s) < deadline)); do
    log "core $PROXY_CORE is ${busy}% busy with other work; waiting (--wait-quiet $WAIT_QUIET)"
    sleep 9
    busy=$(proxy_core_busy_pct)
  done
  ((busy <= 15)) || log "WARNING: core $PROXY_CORE is ${busy}% busy with other work: the figures will measure sharing, not the proxies"
}

cpu_ticks() { # PID -> utime+stime in clock ticks, all threads
  local stat rest fields
  stat=$(<"/proc/$1/stat")
  rest=${stat##*) }
  read -ra fields <<<"$rest"
  echo $((fields[11] + fields[12]))
}

rss_kib() { # PID FIELD(VmRSS|VmHWM)
  local key value _
  while read -r key value _; do
    [[ $key == "$2:" ]] && { echo "$value"; return; }
  done <"/proc/$1/status"
}

# .NET runtime counters: "allocated_bytes gen0 gen1 gen2", or "" for nginx and direct.
dotnet_counters() { # TARGET
  local url
  case $1 in
    aot) url="http://$HOST:$AOT_ADMIN/api/status" ;;
    jit) url="http://$HOST:$JIT_ADMIN/api/status" ;;
    base) url="http://$HOST:$BASE_ADMIN/api/status" ;;
    yarp) url="http://$HOST:$YARP_PORT/_stats" ;;
    *) return 0 ;;
  esac
  curl -s "$url" | python3 -c '
import json, sys
d = json.load(sys.stdin)
r = d.get("runtime", d)
print(r["allocated_bytes"], r["gen0_collections"], r["gen1_collections"], r["gen2_collections"])'
}

# Samples VmRSS of PID every 200 ms into FILE, in the background ($! is the sampler).
start_rss_sampler() { # PID FILE
  (
    while kill -0 "$1" 2>/dev/null; do
      rss_kib "$1" VmRSS >>"$2" || true
      sleep 0.2
    done
  ) >/dev/null 2>&1 &
}

max_of() { sort -n "$1" | tail -1; }

CSV_SWEEP="$RAW/sweep.csv"
echo "round,target,connections,requests,duration_s,rps,p50_us,p99_us,mean_us,socket_errors,status_errors,cpu_s,cpu_ms_per_1k,rss_max_kib,alloc_bytes,alloc_per_request,gen0,gen1,gen2,other_on_proxy_core_pct" >"$CSV_SWEEP"

# One closed-loop wrk run; prints its sweep.csv row.
sweep_run() { # ROUND TARGET CONNECTIONS
  local round=$1 target=$2 conns=$3 pid="" cpu0=0 cpu1=0 core0 core1 counters0="" counters1="" sampler="" rssfile
  local out="$RAW/wrk-r$round-$target-c$conns.txt"
  if [[ $target != direct ]]; then pid=${PID_OF[$target]}; fi
  rssfile="$WORK/rss-$target-$conns-$round.txt"
  : >"$rssfile"
  core0=$(core_busy_ticks $PROXY_CORE)
  if [[ -n $pid ]]; then
    cpu0=$(cpu_ticks "$pid")
    counters0=$(dotnet_counters "$target")
    start_rss_sampler "$pid" "$rssfile"
    sampler=$!
  fi
  "${SCHED[@]}" taskset -c $LOAD_CORE wrk -t1 -c"$conns" -d"${DURATION}s" --latency -s "$WORK/post.lua" "$(url_of "$target")/v1/chat/completions" >"$out" 2>&1
  core1=$(core_busy_ticks $PROXY_CORE)
  if [[ -n $pid ]]; then
    cpu1=$(cpu_ticks "$pid")
    counters1=$(dotnet_counters "$target")
    kill "$sampler" 2>/dev/null || true
    wait "$sampler" 2>/dev/null || true
  fi
  python3 - "$round" "$target" "$conns" "$out" "$((cpu1 - cpu0))" "$CLK_TCK" "$(max_of "$rssfile")" "$counters0" "$counters1" "$((core1 - core0))" <<'EOF'
import re, sys
rnd, target, conns, out, ticks, clk, rss, c0, c1, core = sys.argv[1:]
text = open(out).read()
m = re.search(r"RESULT requests=(\d+) duration_us=(\d+) p50_us=(\d+) p99_us=(\d+) mean_us=([\d.]+) errors=(\d+) status_errors=(\d+)", text)
if not m:
    sys.exit(f"no wrk result in {out}:\n{text}")
req, dur_us, p50, p99, mean, errors, status = m.groups()
req, dur = int(req), int(dur_us) / 1e6
rps = req / dur
cpu = int(ticks) / int(clk)
direct = target == "direct"
row = [rnd, target, conns, req, f"{dur:.3f}", f"{rps:.0f}", p50, p99, mean, errors, status,
       "" if direct else f"{cpu:.2f}", "" if direct or not req else f"{cpu * 1e6 / req:.1f}", "" if direct else rss]
if c0 and c1:
    a0, *g0 = map(int, c0.split()); a1, *g1 = map(int, c1.split())
    row += [a1 - a0, f"{(a1 - a0) / req:.0f}" if req else "", *(b - a for a, b in zip(g0, g1))]
else:
    row += ["", "", "", "", ""]
# Share of the proxy's core that other processes used during the run: noise from the machine.
row.append(f"{max(0.0, (int(core) - int(ticks)) / int(clk) / dur * 100):.0f}")
print(",".join(map(str, row)))
EOF
}

# A run during which other processes took more than NOISE_MAX% of the proxy's core measures
# the sharing, not the proxy: it is repeated (after a pause) up to NOISE_RETRIES times, and the
# quietest attempt is kept. Its share is in the row (other_on_proxy_core_pct) either way.
sweep_point() { # ROUND TARGET CONNECTIONS
  local attempt row best="" best_noise=1000 noise
  for ((attempt = 0; attempt <= NOISE_RETRIES; attempt++)); do
    row=$(sweep_run "$@")
    noise=${row##*,}
    if ((noise < best_noise)); then best=$row best_noise=$noise; fi
    [[ $2 != direct ]] || break # the direct run does not use the proxy's core
    ((noise > NOISE_MAX)) || break
    if ((attempt < NOISE_RETRIES)); then
      log "  $2 at $3 connections: other work took ${noise}% of core $PROXY_CORE; again in 5 s"
      sleep 5
    fi
  done
  echo "$best" >>"$CSV_SWEEP"
}

sweep() {
  local targets=(direct "${PROXY_LIST[@]}") round i k n conns rotated target
  n=${#targets[@]}
  log "warm-up: ${WARMUP} s at 64 connections per proxy"
  for target in "${PROXY_LIST[@]}"; do
    "${SCHED[@]}" taskset -c $LOAD_CORE wrk -t1 -c64 -d"${WARMUP}s" -s "$WORK/post.lua" "$(url_of "$target")/v1/chat/completions" >"$WORK/warmup-$target.txt" 2>&1
  done
  for ((round = 1; round <= ROUNDS; round++)); do
    i=0
    for conns in $CONNECTIONS; do
      rotated=()
      for ((k = 0; k < n; k++)); do rotated+=("${targets[(k + round + i) % n]}"); done
      log "sweep round $round/$ROUNDS, $conns connections: ${rotated[*]}"
      for target in "${rotated[@]}"; do sweep_point "$round" "$target" "$conns"; done
      i=$((i + 1))
    done
  done
}

# The open-loop latency point: RATE requests/s in total, fixed schedule, over OPEN_CONNECTIONS
# connections. One function, so that perf/AotProxy.Load (`aotproxy-load run PROFILE --target URL
# --key KEY --out DIR --rate-scale F`) can replace h2load here. h2load's --rps paces each
# connection on a timer; far from saturation, as here, that is a fixed arrival rate. Its limit:
# HTTP/1.1 has one request in flight per connection, so a response slower than the interval
# (1/RATE) delays the next request, and that delay is not counted (coordinated omission): the
# tail is understated exactly when it is bad. Writes per-request microseconds to OUTFILE.log.
open_loop_point() { # TARGET RATE OUTFILE
  local target=$1 rate=$2 out=$3 per_client
  per_client=$(python3 -c "print(max(1, round($rate / $OPEN_CONNECTIONS)))")
  "${SCHED[@]}" taskset -c $LOAD_CORE h2load --h1 -t1 -c"$OPEN_CONNECTIONS" --rps="$per_client" -D "$OPEN_DURATION" --warm-up-time=1 \
    -d "$WORK/request.json" -H "Content-Type: application/json" -H "Authorization: Bearer $KEY" \
    --log-file="$out.log" "$(url_of "$target")/v1/chat/completions" >"$out" 2>&1
}

# best_sweep_rps TARGET...: the slowest of the TARGETs' best median throughput in the sweep
# (direct's when none of them was swept).
best_sweep_rps() {
  python3 - "$CSV_SWEEP" "$@" <<'EOF'
import csv, statistics, sys
from collections import defaultdict
runs = defaultdict(list)
for r in csv.DictReader(open(sys.argv[1])):
    runs[(r["target"], r["connections"])].append(float(r["rps"]))
best = defaultdict(float)
for (target, _), values in runs.items():
    best[target] = max(best[target], statistics.median(values))
print(round(min([best[t] for t in sys.argv[2:] if t in best] or [best["direct"]])))
EOF
}

CSV_OPEN="$RAW/open-loop.csv"
echo "round,target,target_rps,achieved_rps,requests,non_200,p50_us,p90_us,p99_us,p999_us,max_us,cpu_s" >"$CSV_OPEN"

open_loop() {
  local rate targets=(direct "${PROXY_LIST[@]}") round k n pid cpu0 cpu1 target out
  n=${#targets[@]}
  # 50% of the slowest peer's best median throughput in the sweep (peers: nginx, YARP, AotProxy AOT).
  rate=$(($(best_sweep_rps nginx yarp aot) / 2))
  OPEN_RATE=$rate
  for ((round = 1; round <= ROUNDS; round++)); do
    log "open loop round $round/$ROUNDS at $rate req/s over $OPEN_CONNECTIONS connections"
    for ((k = 0; k < n; k++)); do
      target=${targets[(k + round) % n]}
      out="$RAW/h2load-r$round-$target.txt"
      pid=${PID_OF[$target]:-}
      cpu0=0 cpu1=0
      if [[ -n $pid ]]; then cpu0=$(cpu_ticks "$pid"); fi
      open_loop_point "$target" "$rate" "$out"
      if [[ -n $pid ]]; then cpu1=$(cpu_ticks "$pid"); fi
      python3 - "$round" "$target" "$rate" "$out" "$((cpu1 - cpu0))" "$CLK_TCK" "$OPEN_DURATION" >>"$CSV_OPEN" <<'EOF'
import sys
rnd, target, rate, out, ticks, clk, duration = sys.argv[1:]
rows = [line.split("\t") for line in open(out + ".log") if line.strip()]
lat = sorted(int(r[2]) for r in rows)
non200 = sum(1 for r in rows if r[1] != "200")
def pct(p):
    return lat[min(len(lat) - 1, max(0, int(round(p / 100 * len(lat) + 0.5)) - 1))] if lat else ""
print(",".join(map(str, [rnd, target, rate, round(len(rows) / float(duration)), len(rows), non200,
      pct(50), pct(90), pct(99), pct(99.9), lat[-1] if lat else "", "" if target == "direct" else int(ticks) / int(clk)])))
EOF
    done
  done
}

# Streaming: time to first token, direct from the simulator vs through each proxy. One function
# calls the probe (to be switched to perf/AotProxy.Load's ttft_us/itl_us report later).
sse_point() { # OUTFILE URL [PROBE OPTIONS...]
  local out=$1 url=$2
  shift 2
  "${SCHED[@]}" taskset -c $LOAD_CORE python3 perf/sse_probe.py "$url/v1/chat/completions" "$KEY" "$MODEL" \
    --requests "$SSE_REQUESTS" --max-tokens "$SSE_MAX_TOKENS" --interval-ms "$SSE_INTERVAL_MS" --out "$out" "$@" >/dev/null
}

CSV_SSE="$RAW/sse.csv"
echo "round,target,requests,failures,incomplete,headers_p50_us,headers_p99_us,ttft_p50_us,ttft_p99_us,itl_p50_us,itl_p99_us,added_ttft_p50_us,added_ttft_p99_us,added_ttft_ci95_lo_us,added_ttft_ci95_hi_us,added_headers_p50_us" >"$CSV_SSE"

sse_rows() { # ROUND OUTFILE TARGET: the probe's report as sse.csv rows (every target's, when interleaved)
  python3 - "$@" >>"$CSV_SSE" <<'EOF'
import json, sys
rnd, out, name = sys.argv[1:]
d = json.load(open(out))
num = lambda v: "" if v is None else f"{v:.0f}"
for target, r in (d["targets"] if "targets" in d else {name: d}).items():
    f = lambda k, p: num(r[k][p])
    ci = r.get("added_ttft_ci95_us", [None, None])
    print(",".join(map(str, [rnd, "direct" if target == "direct-sim" else target, r["requests"], r["failures"], r["incomplete"],
          f("headers_us", "p50"), f("headers_us", "p99"), f("ttft_us", "p50"), f("ttft_us", "p99"), f("itl_us", "p50"), f("itl_us", "p99"),
          num(r.get("added_ttft_us", {}).get("p50")), num(r.get("added_ttft_us", {}).get("p99")), num(ci[0]), num(ci[1]),
          num(r.get("added_headers_us", {}).get("p50"))])))
EOF
}

sse() {
  local targets=(direct-sim "${PROXY_LIST[@]}") round k n target out also=()
  n=${#targets[@]}
  if ((!SSE_SEQUENTIAL)); then
    # The measurement's own check first: a slow relay must show up, paired by rotation.
    python3 -m unittest discover -s "$ROOT/perf" -p 'sse_probe_test.py' >/dev/null 2>&1 || {
      python3 -m unittest discover -s "$ROOT/perf" -p 'sse_probe_test.py' >&2 || true
      echo "compare.sh: perf/sse_probe_test.py fails: the figures could not be trusted" >&2
      exit 1
    }
    for target in "${PROXY_LIST[@]}"; do also+=(--also "$target=$(url_of "$target")/v1/chat/completions"); done
  fi
  for ((round = 1; round <= ROUNDS; round++)); do
    if ((!SSE_SEQUENTIAL)); then
      log "streaming round $round/$ROUNDS: $SSE_REQUESTS rotations of one stream of $SSE_MAX_TOKENS tokens to each of direct ${PROXY_LIST[*]}, interleaved"
      out="$RAW/sse-r$round.json"
      sse_point "$out" "$(url_of direct-sim)" "${also[@]}"
      sse_rows "$round" "$out" direct
      continue
    fi
    log "streaming round $round/$ROUNDS: $SSE_REQUESTS streams of $SSE_MAX_TOKENS tokens per target"
    for ((k = 0; k < n; k++)); do
      target=${targets[(k + round) % n]}
      out="$RAW/sse-r$round-$target.json"
      sse_point "$out" "$(url_of "$target")"
      sse_rows "$round" "$out" "$target"
    done
  done
}

CSV_OVERHEAD="$RAW/overhead.csv"
echo "round,target,load_pct,load_rps,pairs,failures,direct_p50_us,direct_p99_us,proxy_p50_us,proxy_p99_us,added_p50_us,added_p90_us,added_p99_us" >"$CSV_OVERHEAD"

# The host must be idle for --overhead: another build or benchmark on the proxy core makes the
# pairs measure sharing. Waits up to --wait-quiet seconds, then refuses.
refuse_when_busy() {
  wait_for_quiet_core
  local busy
  busy=$(proxy_core_busy_pct)
  if ((busy > 15)); then
    log "refusing to measure: core $PROXY_CORE is ${busy}% busy with other work (wait with --wait-quiet SECONDS)"
    exit 3
  fi
}

# Interleaved pairs (perf/pair_probe.py) at each background load: h2load sends LOAD% of
# AotProxy's best median sweep throughput (the same absolute rate to every proxy) through the
# proxy measured, while the probe sends its pairs at 100 per second.
overhead() {
  local capacity round pct rate target k n bg out pairs_s
  capacity=$(best_sweep_rps aot)
  OVERHEAD_CAPACITY=$capacity
  pairs_s=$(((OVERHEAD_PAIRS + 20) / 100 + 3))
  n=${#PROXY_LIST[@]}
  for ((round = 1; round <= ROUNDS; round++)); do
    for pct in $OVERHEAD_LOADS; do
      refuse_when_busy
      rate=$((capacity * pct / 100))
      for ((k = 0; k < n; k++)); do
        target=${PROXY_LIST[(k + round) % n]}
        out="$RAW/pairs-r$round-$pct-$target.json"
        log "overhead round $round/$ROUNDS: $target at $pct% ($rate req/s of $capacity), $OVERHEAD_PAIRS pairs"
        "${SCHED[@]}" taskset -c $LOAD_CORE h2load --h1 -t1 -c16 --rps="$(((rate + 15) / 16))" -D "$pairs_s" \
          -d "$WORK/request.json" -H "Content-Type: application/json" -H "Authorization: Bearer $KEY" \
          "$(url_of "$target")/v1/chat/completions" >"$RAW/h2load-bg-r$round-$pct-$target.txt" 2>&1 &
        bg=$!
        "${SCHED[@]}" taskset -c $LOAD_CORE python3 perf/pair_probe.py "$(url_of direct)/v1/chat/completions" \
          "$(url_of "$target")/v1/chat/completions" "$KEY" "$WORK/request.json" --pairs "$OVERHEAD_PAIRS" --rate 100 --out "$out" >/dev/null
        wait "$bg" || true
        python3 - "$round" "$target" "$pct" "$rate" "$out" >>"$CSV_OVERHEAD" <<'EOF'
import json, sys
rnd, target, pct, rate, out = sys.argv[1:]
d = json.load(open(out))
f = lambda k, p: "" if d[k][p] is None else f"{d[k][p]:.0f}"
print(",".join([rnd, target, pct, rate, str(d["pairs"]), str(d["failures"]), f("direct_us", "p50"), f("direct_us", "p99"),
                f("proxy_us", "p50"), f("proxy_us", "p99"), f("added_us", "p50"), f("added_us", "p90"), f("added_us", "p99")]))
EOF
      done
    done
  done
}

CSV_RSS="$RAW/rss-1024.csv"
echo "target,idle_rss_kib,max_rss_kib_1024,vmhwm_kib,requests,socket_errors,status_errors" >"$CSV_RSS"

# RSS with 1,024 open keep-alive connections (wrk -c1024 for a few seconds), each proxy.
rss_1024() {
  local target pid idle sampler rssfile out
  for target in "${PROXY_LIST[@]}"; do
    log "$RSS_CONNECTIONS connections: $target"
    pid=${PID_OF[$target]}
    idle=$(rss_kib "$pid" VmRSS)
    rssfile="$WORK/rss1024-$target.txt"
    out="$RAW/wrk-c$RSS_CONNECTIONS-$target.txt"
    : >"$rssfile"
    start_rss_sampler "$pid" "$rssfile"
    sampler=$!
    "${SCHED[@]}" taskset -c $LOAD_CORE wrk -t1 -c"$RSS_CONNECTIONS" -d"${RSS_DURATION}s" --timeout 10s -s "$WORK/post.lua" "$(url_of "$target")/v1/chat/completions" >"$out" 2>&1
    kill "$sampler" 2>/dev/null || true
    wait "$sampler" 2>/dev/null || true
    python3 - "$target" "$idle" "$(max_of "$rssfile")" "$(rss_kib "$pid" VmHWM)" "$out" >>"$CSV_RSS" <<'EOF'
import re, sys
target, idle, peak, hwm, out = sys.argv[1:]
m = re.search(r"RESULT requests=(\d+) .* errors=(\d+) status_errors=(\d+)", open(out).read())
print(",".join([target, idle, peak, hwm, *(m.groups() if m else ("", "", ""))]))
EOF
  done
}

write_meta() {
  python3 - "$RAW/meta.json" <<EOF
import json, subprocess, sys
def sh(c):
    return subprocess.run(c, shell=True, capture_output=True, text=True).stdout.strip()
json.dump({
    "command": "$COMMAND_LINE", "quick": $QUICK, "date_utc": "$(date -u +%Y-%m-%dT%H:%M:%SZ)",
    "commit": sh("git log -1 --format='%h %s'"), "dirty": bool(sh("git status --porcelain --untracked-files=no")),
    "cpu": sh("lscpu | sed -n 's/^Model name: *//p'"), "cores": sh("nproc"), "memory": sh("free -g | awk '/Mem:/{print \$2\" GiB\"}'"),
    "kernel": sh("uname -r"), "os": sh(". /etc/os-release && echo \$PRETTY_NAME"), "dotnet": sh("dotnet --version"),
    "nginx": sh("nginx -v 2>&1"), "wrk": sh("wrk -v 2>&1 | head -1"), "h2load": sh("h2load --version | head -1"),
    "connections": "$CONNECTIONS", "rounds": $ROUNDS, "nice": $NICE, "rt": $RT, "noise_retries": $NOISE_RETRIES, "duration_s": $DURATION, "open_connections": $OPEN_CONNECTIONS,
    "open_duration_s": $OPEN_DURATION, "open_rate": ${OPEN_RATE:-0}, "overhead": $OVERHEAD, "overhead_capacity": ${OVERHEAD_CAPACITY:-0}, "overhead_loads": "$OVERHEAD_LOADS", "overhead_pairs": $OVERHEAD_PAIRS, "sse_requests": $SSE_REQUESTS, "sse_mode": "$( ((SSE_SEQUENTIAL)) && echo sequential || echo interleaved)", "sse_interval_ms": $SSE_INTERVAL_MS, "sse_max_tokens": $SSE_MAX_TOKENS,
    "rss_connections": $RSS_CONNECTIONS, "loadavg_start": "$LOADAVG_START", "loadavg_end": "$(cut -d' ' -f1-3 /proc/loadavg)", "proxies": "$PROXIES", "trace_sink": $TRACE_SINK, "elapsed_s": $(($(date +%s) - STARTED_AT)),
}, open(sys.argv[1], "w"), indent=1)
EOF
}

# ---------------------------------------------------------------- main

if ((INSTALL)); then install_tools; fi
if ((BUILD)); then build; fi
# The AOT binary also runs the simulator, so it is always needed; the others when measured.
needed=("$AOT_BIN")
for proxy in "${PROXY_LIST[@]}"; do
  case $proxy in
    jit) needed+=("$JIT_DLL") ;;
    yarp) needed+=("$YARP_DLL") ;;
    base) [[ -n $BASE_BIN ]] || { echo "compare.sh: proxy base needs --base-binary PATH" >&2; exit 2; }; needed+=("$BASE_BIN") ;;
  esac
done
for f in "${needed[@]}"; do
  [[ -e $f ]] || { echo "$f is missing: run without --no-build" >&2; exit 1; }
done
ulimit -n "$(ulimit -Hn)" # 1,024 connections need about 2,100 descriptors per proxy
log "$(nproc) cores: proxies on core $PROXY_CORE; backends and load generators share core $LOAD_CORE"
log "raw data: $RAW"

OPEN_RATE=0
# Other benchmarks may share this machine: refuse to start rather than measure someone else's server.
# shellcheck disable=SC2086  # the list of ports
fleet_check_ports $FLEET_PORTS || exit 1
OVERHEAD_CAPACITY=0
if ((OVERHEAD)); then
  refuse_when_busy
  write_configs
  start_backends
  start_proxies backend
  sweep
  overhead
  stop_proxies
elif ((SSE_ONLY)); then
  wait_for_quiet_core
  write_configs
  start_backends
  start_proxies sim
  sse
  stop_proxies
else
  wait_for_quiet_core
  write_configs
  start_backends
  start_proxies backend
  sweep
  open_loop
  rss_1024
  stop_proxies
  start_proxies sim
  sse
  stop_proxies
fi
write_meta

python3 perf/compare_report.py "$RAW" >"$REPORTS/compare-$STAMP.md"
cat "$REPORTS/compare-$STAMP.md"
log "report: perf/reports/compare-$STAMP.md (raw: perf/reports/compare-$STAMP/), $(($(date +%s) - STARTED_AT)) s"
