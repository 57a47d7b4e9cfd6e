#!/usr/bin/env bash
# perf/connections.sh: memory per idle keep-alive connection and per concurrent SSE stream, AotProxy
# beside nginx (an SSE reverse proxy: proxy_buffering off, upstream keep-alive) and the simulator
# direct, in the same run, against the same simulated vLLM worker.
#
#   perf/connections.sh                         6,000 idle + 6,000 streams, 3 runs per target
#   perf/connections.sh --idle 2000 --streams 2000 --runs 1 --targets "aot nginx"
#
# Options: --idle N  --streams M  --runs R  --targets "aot nginx direct"  --token-delay-ms MS
#          (targets aot-epoll, aot-sockets: the same binary with that server.transport; aot: its default)
#          --binary PATH (default AOTPROXY_BINARY or artifacts/aot/aotproxy)  --deadline SECONDS
#          --compact (AotProxy: also read RSS after a full compacting GC at each step, triggered by
#          POST /api/config/reload; the gap to the plain reading is garbage the GC has not collected)
#
# Each run of each target starts a fresh simulator (`aotproxy simulate`) and a fresh proxy, then
# perf/connections_client.py measures the measured process's VmRSS (/proc/PID/status): its own
# baseline after 16 warm-up requests (a gateway that parks also parks and resumes 8 connections,
# so that code first run at a park is not counted in the idle step), after N idle connections (one request each, kept open),
# and after M streams that stay open (the simulator sends one token every --token-delay-ms;
# every stream's first content event is checked delivered). The growth over the previous reading
# divided by the count is KiB per idle connection and per stream; a stream's figure includes its
# upstream connection (a proxy's; the direct target has none). Kernel socket buffers are not RSS.
#
# File descriptors: the gateway holds idle + 2 x streams sockets; the client (python) and the
# simulator are separate processes. The soft limit is raised to the hard limit, no further.
#
# Output: a Markdown table (medians over the runs) on stdout and in perf/reports/connections-STAMP.md,
# every run's JSON in perf/reports/connections-STAMP/. Ports 18281-18284 on 127.0.0.1 (checked free).
# Every process it starts is stopped by its PID on exit.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

IDLE=6000
STREAMS=6000
RUNS=3
TARGETS="aot nginx direct"
TOKEN_DELAY_MS=5000
DEADLINE=180
COMPACT=""
COMMAND_LINE="perf/connections.sh${*:+ $*}"

while (($#)); do
  case "$1" in
    --idle) IDLE="$2"; shift ;;
    --streams) STREAMS="$2"; shift ;;
    --runs) RUNS="$2"; shift ;;
    --targets) TARGETS="$2"; shift ;;
    --token-delay-ms) TOKEN_DELAY_MS="$2"; shift ;;
    --binary) AOTPROXY_BINARY="$2"; shift ;;
    --deadline) DEADLINE="$2"; shift ;;
    --compact) COMPACT=--compact ;;
    -h | --help) sed -n '2,27p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "connections.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

readonly HOST=127.0.0.1 KEY=sk-bench MODEL=bench
FLEET_TAG="connections.sh"
# shellcheck source=perf/lib/fleet.sh
source "$ROOT/perf/lib/fleet.sh"
fleet_ports SIM_PORT=18281 NGINX_PORT=18282 AOT_PORT=18283 AOT_ADMIN=18284
trap fleet_stop_all EXIT
trap 'exit 130' INT TERM

BINARY=$(fleet_binary) || exit 1
read -ra TARGET_LIST <<<"$TARGETS"
fleet_one_of target "aot aot-epoll aot-sockets nginx direct" "${TARGET_LIST[@]}" || exit 2
if [[ " $TARGETS " == *" nginx "* ]] && ! command -v nginx >/dev/null; then
  echo "connections.sh: nginx is missing (apt-get install nginx-light)" >&2
  exit 1
fi

# The gateway needs IDLE + 2 x STREAMS descriptors, plus its own few dozen.
ulimit -n "$(ulimit -Hn)"
NOFILE=$(ulimit -n)
if ((IDLE + 2 * STREAMS + 200 > NOFILE)); then
  echo "connections.sh: $IDLE idle + 2 x $STREAMS streams need more than the $NOFILE open files this machine allows" >&2
  exit 2
fi

STAMP=$(date -u +%Y%m%d-%H%M%S)
RAW="$ROOT/perf/reports/connections-$STAMP"
mkdir -p "$RAW"
LOADAVG_START=$(cut -d' ' -f1-3 /proc/loadavg)
log() { printf '[connections %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

fleet_check_ports $FLEET_PORTS || exit 1

key_sha=$(printf '%s' "$KEY" | sha256sum | cut -d' ' -f1)
{
  # Kestrel's default cap (server.max_connections 10,000) is below idle + streams.
  printf '[server]\nlisten = "%s:%s"\nadmin_listen = "%s:%s"\nshutdown_grace = "2s"\nmax_connections = 20000\n' "$HOST" $AOT_PORT "$HOST" $AOT_ADMIN
  printf '\n[routing]\nstrategy = "round_robin"\n'
  fleet_workers_toml "$MODEL" 8192 $SIM_PORT
  printf '\n[[tenants]]\nname = "bench"\napi_key_sha256 = ["%s"]\nmodels = ["*"]\n' "$key_sha"
} >"$RAW/aotproxy.toml"
for transport in epoll sockets; do
  sed "s/^shutdown_grace = \"2s\"\$/shutdown_grace = \"2s\"\ntransport = \"$transport\"/" "$RAW/aotproxy.toml" >"$RAW/aotproxy-$transport.toml"
done

{
  fleet_nginx_main "$RAW" nginx "$NOFILE" "$NOFILE"
  echo "http {"
  fleet_nginx_http_common "$RAW"
  fleet_nginx_proxy "$HOST:$NGINX_PORT backlog=4096" "$HOST:$SIM_PORT" 1024 "proxy_read_timeout 300s;"
  echo "}"
} >"$RAW/nginx.conf"

run_one() { # TARGET RUN
  local target=$1 run=$2 url pid out="$RAW/$1-$2.json" rc=0 admin=""
  AOTPROXY_LOG_LEVEL=warning fleet_start_worker "$BINARY" $SIM_PORT "$RAW/sim-$target-$run.log" \
    --model "$MODEL" --max-num-seqs 8192 --num-gpu-blocks 200000
  local sim_pid=$fleet_last_pid
  case $target in
    aot | aot-epoll | aot-sockets)
      AOTPROXY_LOG_LEVEL=warning fleet_start_gateway "$BINARY" "$RAW/aotproxy${target#aot}.toml" "$RAW/$target-$run.log"
      pid=$fleet_last_pid url="http://$HOST:$AOT_PORT" admin="http://$HOST:$AOT_ADMIN" ;;
    nginx)
      fleet_spawn "$RAW/nginx-$run.log" nginx -p "$RAW" -e "$RAW/nginx-error.log" -c "$RAW/nginx.conf"
      fleet_wait_port $NGINX_PORT "nginx" "$RAW/nginx-$run.log"
      pid=$fleet_last_pid url="http://$HOST:$NGINX_PORT" ;;
    direct) pid=$sim_pid url="http://$HOST:$SIM_PORT" ;;
  esac
  log "run $run/$RUNS, $target: $IDLE idle connections, then $STREAMS streams"
  python3 perf/connections_client.py --url "$url" --pid "$pid" --key "$KEY" --model "$MODEL" \
    --idle "$IDLE" --streams "$STREAMS" --sim "http://$HOST:$SIM_PORT" ${admin:+--admin "$admin" $COMPACT} \
    --token-delay-ms "$TOKEN_DELAY_MS" --deadline "$DEADLINE" --out "$out" >/dev/null || rc=$?
  ((rc == 0)) || log "  $target run $run: not every connection or first event made it (see $out)"
  [[ $target == direct ]] || fleet_stop "$pid"
  fleet_stop "$sim_pid"
}

log "$(nproc) cores, load average $LOADAVG_START, open files $NOFILE; raw data: $RAW"
for ((run = 1; run <= RUNS; run++)); do
  for target in "${TARGET_LIST[@]}"; do run_one "$target" "$run"; done
done

CPU=$(lscpu | sed -n 's/^Model name: *//p')
python3 - "$RAW" "$COMMAND_LINE" "$LOADAVG_START" "$(cut -d' ' -f1-3 /proc/loadavg)" "$TARGETS" "$CPU" "$BINARY" >"$ROOT/perf/reports/connections-$STAMP.md" <<'EOF'
import glob, json, os, statistics, subprocess, sys
raw, command, load0, load1, targets, cpu, binary = sys.argv[1:]
def sh(c):
    return subprocess.run(c, shell=True, capture_output=True, text=True).stdout.strip()
print(f"# perf/connections.sh, {sh('date -u +%Y-%m-%dT%H:%MZ')}\n")
print(f"`{command}` (binary {binary}, worktree at `{sh('git log -1 --format=%h')}`); {sh('nproc')} cores, {cpu}; "
      f"load average {load0} at the start, {load1} at the end (the machine is shared with other engineers' builds).\n")
print("| target | runs | idle conns | streams | base RSS MiB | KiB / idle conn | KiB / stream | total RSS MiB | first events | failures |")
print("|---|---|---|---|---|---|---|---|---|---|")
for t in targets.split():
    runs = [json.load(open(f)) for f in sorted(glob.glob(os.path.join(raw, f"{t}-[0-9]*.json")))]
    if not runs:
        continue
    med = lambda f: statistics.median(f(r) for r in runs)
    fails = sum(sum(r["errors"].values()) for r in runs)
    print(f"| {t} | {len(runs)} | {runs[0]['idle']} | {runs[0]['streams']} | {med(lambda r: r['rss_base_kib']['VmRSS']) / 1024:.1f} "
          f"| {med(lambda r: r['kib_per_idle'] or 0):.2f} | {med(lambda r: r['kib_per_stream'] or 0):.2f} | {med(lambda r: r['total_mib']):.1f} "
          f"| {min(r['first_events'] for r in runs)}/{runs[0]['streams']} | {fails} |")
print("\nMedians over the runs; RSS growth over each process's own baseline (VmRSS); a proxy's stream includes its upstream connection.")
EOF
cat "$ROOT/perf/reports/connections-$STAMP.md"
