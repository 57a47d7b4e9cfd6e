#!/usr/bin/env bash
# Cluster mode (issue 16, "Measured"): three replicas of the binary sharing one Redis, in front of
# one simulated fleet, with a client that spreads requests unevenly over them (a profile, not a test):
#
#   a redis-server on loopback (no persistence: a restart is an empty store), 4 `aotproxy simulate`
#   workers (max_concurrency 16 each in the gateway's config; each simulator runs up to 64, so that
#   a worker sent more than 16 shows it in its vllm:num_requests_running), and replicas A, B and C
#   of `aotproxy serve` with `[cluster] redis_url`, each with its own ledger. The client is one
#   `aotproxy-load run` per replica (perf/AotProxy.Load), 60 % / 30 % / 10 % of the load (unless a
#   case says otherwise), put on one clock by each run's started_at. Every case runs on a fresh fleet.
#
# The cases (issue 16's six), each against its bound, PASS or FAIL:
#   1  a tenant with rpm = 120 offered 600 requests/min: served in any 60 s window <= 120 + 3
#      (--quick: rpm = 30 offered 150/min for 75 s; the window is still 60 s)
#   2  tenants weighted 70/20/10, all backlogged, t70 only on A, t20 and t10 only on B and C:
#      served weighted tokens within +-5 % of 70/20/10; once with one request shape, once with a
#      shape per tenant
#   3  160 closed-loop clients (96/48/16): the most requests each worker ran at once, sampled from
#      its /metrics every 50 ms, <= max_concurrency (16)
#   4  budget_tokens = 200,000, 64 closed-loop clients (38/19/7): fleet spend over the budget <=
#      the reservations in flight when it ran out (both printed)
#   5  the cost of the cluster: (a) one replica without [cluster], (b) one with, (c) three with,
#      alternated a,b,c per round: added latency p50 <= 300 us and p99 <= 1 ms (b - a, one
#      connection), req/s of (c) >= 70 % of (a), allocated bytes per request <= 1 KB
#   6  Redis SIGKILLed for 20 s mid-run, then restarted empty, under a case-1 tenant and an
#      unlimited one: no 5xx (store_down = "local"), and case 1's window bound across the outage
#
#   perf/cluster.sh                 all six, ~20 min
#   perf/cluster.sh --quick         all six, shorter runs, ~8 min
#   perf/cluster.sh --case 5 --rounds 5
#
# Options:
#   --case N          run only case N (repeatable); default all six
#   --quick           shorter runs (rpm 30 in cases 1 and 6; 45 s per fairness shape; 3 rounds of 5 s)
#   --rounds N        case 5's alternated rounds (default 5, --quick 3; at least 3)
#   --no-build        use artifacts/aot/aotproxy as it is (default: publish it first, ~2 min)
#   --base-port N     workers N..N+3, redis N+7, the lone gateway N+8/N+9, replicas A, B, C on
#                     N+10/N+11, N+12/N+13, N+14/N+15 (data plane/admin) (default 18501, or
#                     CLUSTER_BASE_PORT); checked free first
#   --out DIR         reports (default perf/reports/cluster-YYYYmmdd-HHMMSS)
# Environment:
#   AOTPROXY_BINARY   the gateway binary (default: artifacts/aot/aotproxy)
#
# Output: DIR/summary.md (every case's figures, then one table of all bounds) on stdout too.
# Exit code: 0 every bound held, 2 one failed (the table says which), 1 usage errors or a runner
# failure, 3 when a worker, redis-server or a gateway could not start. Everything started here is
# stopped by its PID.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
cd "$root"

cmdline="perf/cluster.sh $*"

usage() {
  sed -n '2,47p' "$0" | sed 's/^# \{0,1\}//'
  exit 1
}

cases=()
quick=0
rounds=""
build=1
base_port="${CLUSTER_BASE_PORT:-18501}"
out=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    -h | --help) usage ;;
    --case)
      [[ $# -ge 2 && "$2" =~ ^[1-6]$ ]] || { echo "cluster.sh: --case takes 1 to 6" >&2; exit 1; }
      cases+=("$2"); shift 2 ;;
    --quick) quick=1; shift ;;
    --rounds)
      [[ $# -ge 2 && "$2" =~ ^[0-9]+$ && "$2" -ge 3 ]] || { echo "cluster.sh: --rounds takes a number >= 3" >&2; exit 1; }
      rounds="$2"; shift 2 ;;
    --no-build) build=0; shift ;;
    --base-port)
      [[ $# -ge 2 && "$2" =~ ^[0-9]+$ && "$2" -ge 1024 && "$2" -le 65000 ]] || { echo "cluster.sh: --base-port takes a port from 1024 to 65000" >&2; exit 1; }
      base_port="$2"; shift 2 ;;
    --out)
      [[ $# -ge 2 ]] || usage
      out="$2"; shift 2 ;;
    *) echo "cluster.sh: unknown argument $1" >&2; usage ;;
  esac
done
((${#cases[@]} > 0)) || cases=(1 2 3 4 5 6)

FLEET_TAG="cluster.sh"
# shellcheck source=perf/lib/fleet.sh
source "$here/lib/fleet.sh"

command -v redis-server >/dev/null || {
  echo "cluster.sh: needs redis-server (apt-get install redis-server)" >&2
  exit 1
}
command -v wrk >/dev/null || { echo "cluster.sh: needs wrk (apt-get install wrk) for case 5" >&2; exit 1; }

# The report's arithmetic first: a wrong window or share would make every figure below a lie.
python3 -m unittest discover -s "$here" -p 'cluster_report_test.py' >/dev/null 2>&1 || {
  python3 -m unittest discover -s "$here" -p 'cluster_report_test.py' >&2 || true
  echo "cluster.sh: perf/cluster_report_test.py fails: the figures could not be trusted" >&2
  exit 1
}

model="meta-llama/Llama-3.1-8B-Instruct"
max_concurrency=16
sim_seqs=64
worker_ports=("$base_port" $((base_port + 1)) $((base_port + 2)) $((base_port + 3)))
redis_port=$((base_port + 7))
lone_port=$((base_port + 8))
lone_admin=$((base_port + 9))
replicas=(A B C)
declare -A port_of=([A]=$((base_port + 10)) [B]=$((base_port + 12)) [C]=$((base_port + 14)))
declare -A admin_of=([A]=$((base_port + 11)) [B]=$((base_port + 13)) [C]=$((base_port + 15)))
runner_dll="perf/AotProxy.Load/bin/Release/net10.0/aotproxy-load.dll"

if ((quick)); then
  rpm=30; rpm_rate=2.5; rpm_seconds=75                  # 150/min, 5x the limit, as 600/min is to 120
  fair_seconds=45; fair_from=10
  saturate_seconds=20; budget_seconds=20
  rounds="${rounds:-3}"; run_seconds=5
  outage_seconds=80; outage_at=20; outage_for=20
else
  rpm=120; rpm_rate=10; rpm_seconds=150
  fair_seconds=120; fair_from=15
  saturate_seconds=60; budget_seconds=40
  rounds="${rounds:-5}"; run_seconds=10
  outage_seconds=150; outage_at=40; outage_for=20
fi
budget=200000
budget_max_tokens=256
throughput_connections=32

out="${out:-perf/reports/cluster-$(date +%Y%m%d-%H%M%S)}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"

sampler_pid=""
# shellcheck disable=SC2317  # called by the EXIT trap
on_exit() {
  [[ -z "$sampler_pid" ]] || fleet_stop "$sampler_pid"
  # The runners of an interrupted case (spread may run in a subshell, so they are listed in a file).
  local pid
  if [[ -f "$out/runner.pids" ]]; then
    while read -r pid; do kill -TERM "$pid" 2>/dev/null || true; done <"$out/runner.pids"
  fi
  fleet_stop_all
  echo "cluster.sh: reports and logs in $out" >&2
}
trap on_exit EXIT
trap 'exit 130' INT TERM

fleet_check_ports "${worker_ports[@]}" "$redis_port" "$lone_port" "$lone_admin" \
  "${port_of[A]}" "${admin_of[A]}" "${port_of[B]}" "${admin_of[B]}" "${port_of[C]}" "${admin_of[C]}" || exit 3

if ((build)); then
  echo "cluster.sh: publishing the AOT binary (--no-build skips this)" >&2
  dotnet publish src/AotProxy/AotProxy.csproj -c Release -r linux-x64 -o artifacts/aot -nologo >"$out/publish.log" 2>&1 || {
    cat "$out/publish.log" >&2
    exit 1
  }
fi
binary="$(fleet_binary)" || exit 1
fleet_build_runner "$out" || exit 1

# ---------------------------------------------------------------- the fleet

redis_pid=""
# start_redis LOG: redis-server on redis_port (no RDB, no AOF: a restart is an empty store).
start_redis() {
  fleet_spawn "$1" redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no --daemonize no
  redis_pid=$fleet_last_pid
  fleet_wait_port "$redis_port" redis-server "$1"
}

# write_config FILE PORT ADMIN REPLICA TENANTS: REPLICA "" = no [cluster] (the lone gateway).
# TENANTS: "name weight rpm tpm max_in_flight budget_tokens" lines.
write_config() {
  local file="$1" port="$2" admin="$3" replica="$4" tenants="$5" name weight t_rpm t_tpm t_inflight t_budget
  {
    echo "# Written by perf/cluster.sh."
    fleet_gateway_toml "$port" "$admin" least_queue
    cat <<TOML

[scheduler]
policy = "fairshare"
queue_capacity = 4096                # the fairness case keeps every tenant backlogged for its whole run

[ledger]
path = "ledger-${replica:-lone}.db"  # one per replica, as on separate hosts

[[classes]]
name = "shared"
priority = 0
weight = 1
max_queue_wait = "10s"
TOML
    if [[ -n "$replica" ]]; then
      printf '\n[cluster]\nredis_url = "redis://127.0.0.1:%s"\nreplica = "%s"\nheartbeat = "1s"\nmember_ttl = "5s"\nstore_down = "local"\n' "$redis_port" "$replica"
    fi
    while read -r name weight t_rpm t_tpm t_inflight t_budget; do
      [[ -n "$name" ]] || continue
      printf '\n[[tenants]]\nname = "%s"\nclass = "shared"\nweight = %s\napi_key_sha256 = ["%s"]  # sha256 of "sk-%s"\nmodels = ["*"]\nrpm = %s\ntpm = %s\nmax_in_flight = %s\nbudget_tokens = %s\n' \
        "$name" "$weight" "$("$binary" hash-key "sk-$name")" "$name" "$t_rpm" "$t_tpm" "$t_inflight" "$t_budget"
    done <<<"$tenants"
    fleet_workers_toml "$model" "$max_concurrency" "${worker_ports[@]}"
  } >"$file"
  fleet_check_config "$binary" "$file"
}

# start_fleet DIR SPEED TENANTS [lone]: redis, the workers, replicas A, B, C (and the lone gateway
# without [cluster] with "lone").
start_fleet() {
  local dir="$1" speed="$2" tenants="$3" r
  start_redis "$dir/redis.log" || return 3
  fleet_start_workers "$binary" "$dir" "${worker_ports[*]}" --model "$model" --max-num-seqs "$sim_seqs" --speed "$speed" || return 3
  for r in "${replicas[@]}"; do
    write_config "$dir/gateway-$r.toml" "${port_of[$r]}" "${admin_of[$r]}" "$r" "$tenants" || return 1
    fleet_start_gateway "$binary" "$dir/gateway-$r.toml" "$dir/gateway-$r.log" || return 3
  done
  if [[ "${4:-}" == lone ]]; then
    write_config "$dir/gateway-lone.toml" "$lone_port" "$lone_admin" "" "$tenants" || return 1
    fleet_start_gateway "$binary" "$dir/gateway-lone.toml" "$dir/gateway-lone.log" || return 3
  fi
}

stop_fleet() {
  fleet_stop_all
  redis_pid=""
}

# ---------------------------------------------------------------- the client

# write_profile FILE TIMEOUT LOAD MIXES: one runner's profile (its [[load]] and [[mix]] tables).
write_profile() {
  printf '# Written by perf/cluster.sh.\n[scenario]\nname = "spread"\nmodel = "%s"\ntimeout = "%s"\n\n%s\n%s\n' "$model" "$2" "$3" "$4" >"$1"
}

inject() { printf '[[load]]\nkind = "inject"\nrate = %s\nduration = "%ss"\n' "$1" "$2"; }
keep() { printf '[[load]]\nkind = "keep_constant"\nconcurrency = %s\nduration = "%ss"\n' "$1" "$2"; }
# mix NAME WEIGHT PROMPT_CHARS MAX_TOKENS: a non-streaming entry for tenant NAME (key sk-NAME).
mix() {
  printf '\n[[mix]]\nname = "%s"\nweight = %s\nprompt_chars = %s\nmax_tokens = %s\napi_key = "sk-%s"\ntenant = "%s"\nunique_prompts = true\n' \
    "$1" "$2" "$3" "$4" "$1" "$1"
}

# spread DIR: one runner per replica on DIR/A.toml, DIR/B.toml, DIR/C.toml, all at once.
spread() {
  local dir="$1" r pids=() status=0 pid
  for r in "${replicas[@]}"; do
    mkdir -p "$dir/$r"
    dotnet "$runner_dll" run "$dir/$r.toml" --target "http://127.0.0.1:${port_of[$r]}" --out "$dir/$r" \
      --requests "$dir/$r/requests.csv" >"$dir/$r/runner.txt" 2>&1 &
    pids+=($!)
    echo "$!" >>"$out/runner.pids"
  done
  for pid in "${pids[@]}"; do
    wait "$pid" || { [[ $? -eq 2 ]] || status=1; }
  done
  if ((status)); then
    echo "cluster.sh: a runner failed in $dir:" >&2
    cat "$dir"/*/runner.txt >&2
  fi
  return "$status"
}

start_sampler() { # FILE INTERVAL URL...
  python3 "$here/cluster_report.py" sample "$@" &
  sampler_pid=$!
}

stop_sampler() {
  fleet_stop "$sampler_pid"
  sampler_pid=""
}

report() { # CASE ARGS...: the case's figures into DIR/report.md; its last line (the verdict row) into rows
  local case="$1" status=0
  shift
  report_seq=$((report_seq + 1))
  python3 "$here/cluster_report.py" "case$case" "$@" >"$out/case$case-$report_seq.md" || status=$?
  cat "$out/case$case-$report_seq.md" >>"$out/details.md"
  echo >>"$out/details.md"
  grep '^| [1-6] |' "$out/case$case-$report_seq.md" >>"$out/rows.md" || true
  ((status == 0)) || failed=1
}

# ---------------------------------------------------------------- the cases

case1() {
  local dir="$out/case1"
  mkdir -p "$dir"
  start_fleet "$dir" 4 "rpm 1 $rpm 0 0 0" || return 3
  # 60/30/10 of rpm_rate requests per second.
  write_profile "$dir/A.toml" 30s "$(inject "$(python3 -c "print($rpm_rate * 0.6)")" "$rpm_seconds")" "$(mix rpm 1 200 8)"
  write_profile "$dir/B.toml" 30s "$(inject "$(python3 -c "print($rpm_rate * 0.3)")" "$rpm_seconds")" "$(mix rpm 1 200 8)"
  write_profile "$dir/C.toml" 30s "$(inject "$(python3 -c "print($rpm_rate * 0.1)")" "$rpm_seconds")" "$(mix rpm 1 200 8)"
  spread "$dir" || return 1
  stop_fleet
  report 1 "$dir" --rpm "$rpm"
}

# At --speed 0.1 a request of 32 completion tokens holds its slot ~3.2 s: the fleet's 64 slots
# serve ~20 such requests per second. Each tenant offers 1.3x its weight's share of the slot time,
# so all three stay backlogged whichever share the gateways give them. The clients wait 30 s: a
# served request may wait max_queue_wait (10 s) in the queue, up to as long again for its turn and
# a worker's slot, then run 6.4 s (t70's long ones); with 15 s, t70's requests that waited their
# queue out in the steady state were all cut off by their clients while the fleet served (and
# charged) them, so "served" measured the client's timeout, not the fair share.
case2() {
  local shape dir timeout=30s
  for shape in same mixed; do
    dir="$out/case2-$shape"
    mkdir -p "$dir"
    start_fleet "$dir" 0.1 "t70 70 0 0 0 0
t20 20 0 0 0 0
t10 10 0 0 0 0" || return 3
    if [[ $shape == same ]]; then
      # 3.2 s per request: t70 0.91 x 20/s, t20 0.26 x 20/s (half on B, half on C), t10 0.13 x 20/s.
      write_profile "$dir/A.toml" "$timeout" "$(inject 18.2 "$fair_seconds")" "$(mix t70 1 400 32)"
      write_profile "$dir/B.toml" "$timeout" "$(inject 3.9 "$fair_seconds")" "$(mix t20 2 400 32; mix t10 1 400 32)"
      write_profile "$dir/C.toml" "$timeout" "$(inject 3.9 "$fair_seconds")" "$(mix t20 2 400 32; mix t10 1 400 32)"
    else
      # t70 long (4,000 characters, 64 tokens: 6.4 s), t20 short (200, 16: 1.6 s), t10 medium
      # (1,000, 32: 3.2 s); rates for 1.3x each weight's share of the 64 slots' time.
      write_profile "$dir/A.toml" "$timeout" "$(inject 9.1 "$fair_seconds")" "$(mix t70 1 4000 64)"
      write_profile "$dir/B.toml" "$timeout" "$(inject 6.5 "$fair_seconds")" "$(mix t20 4 200 16; mix t10 1 1000 32)"
      write_profile "$dir/C.toml" "$timeout" "$(inject 6.5 "$fair_seconds")" "$(mix t20 4 200 16; mix t10 1 1000 32)"
    fi
    spread "$dir" || return 1
    stop_fleet
    report 2 "$dir" --shape "$shape" --start "$fair_from" --stop "$fair_seconds"
  done
}

case3() {
  local dir="$out/case3" urls=() port
  mkdir -p "$dir"
  start_fleet "$dir" 1 "sat 1 0 0 0 0" || return 3
  for port in "${worker_ports[@]}"; do urls+=("http://127.0.0.1:$port/metrics"); done
  write_profile "$dir/A.toml" 30s "$(keep 96 "$saturate_seconds")" "$(mix sat 1 400 32)"
  write_profile "$dir/B.toml" 30s "$(keep 48 "$saturate_seconds")" "$(mix sat 1 400 32)"
  write_profile "$dir/C.toml" 30s "$(keep 16 "$saturate_seconds")" "$(mix sat 1 400 32)"
  start_sampler "$dir/samples.txt" 0.05 "${urls[@]}"
  spread "$dir" || return 1
  stop_sampler
  stop_fleet
  report 3 "$dir" --max-concurrency "$max_concurrency"
}

case4() {
  local dir="$out/case4" r
  mkdir -p "$dir"
  start_fleet "$dir" 4 "budget 1 0 0 0 $budget" || return 3
  write_profile "$dir/A.toml" 30s "$(keep 38 "$budget_seconds")" "$(mix budget 1 400 "$budget_max_tokens")"
  write_profile "$dir/B.toml" 30s "$(keep 19 "$budget_seconds")" "$(mix budget 1 400 "$budget_max_tokens")"
  write_profile "$dir/C.toml" 30s "$(keep 7 "$budget_seconds")" "$(mix budget 1 400 "$budget_max_tokens")"
  local urls=()
  for r in "${replicas[@]}"; do urls+=("http://127.0.0.1:${admin_of[$r]}/api/tenants"); done
  start_sampler "$dir/tenants.txt" 0.1 "${urls[@]}" # each replica's reservations, for the moment it runs out
  spread "$dir" || return 1
  stop_sampler
  for r in "${replicas[@]}"; do
    curl -sf --max-time 5 "http://127.0.0.1:${admin_of[$r]}/api/tenants" >"$dir/tenants-$r.json" || true
  done
  stop_fleet
  report 4 "$dir" --budget "$budget" --max-tokens "$budget_max_tokens" --tenants-urls "${urls[@]}"
}

# allocated_bytes of the admin ports given, summed.
allocated() {
  local admin total=0 bytes
  for admin in "$@"; do
    bytes=$(curl -sf --max-time 5 "http://127.0.0.1:$admin/api/status" | python3 -c 'import json, sys; print(json.load(sys.stdin)["runtime"]["allocated_bytes"])')
    total=$((total + bytes))
  done
  echo "$total"
}

# wrk_run OUT CONNECTIONS PORT: one closed-loop run against one gateway; prints its RESULT line.
wrk_run() {
  wrk -t1 -c"$2" -d"${run_seconds}s" --latency -s "$out/case5/post.lua" "http://127.0.0.1:$3/v1/chat/completions" >"$1" 2>&1
  grep '^RESULT' "$1" || { echo "cluster.sh: no wrk result in $1" >&2; cat "$1" >&2; return 1; }
}

# record ROUND CONFIG KIND ALLOC_BEFORE ALLOC_AFTER RESULT_LINE...: one runs.csv row (ALLOC "" "":
# not measured; concurrent wrk runs' RESULT lines are summed, their latencies from the first).
record() {
  python3 - "$@" >>"$out/case5/runs.csv" <<'EOF'
import re, sys
rnd, config, kind, a0, a1, *lines = sys.argv[1:]
parsed = [dict(re.findall(r"(\w+)=([\d.]+)", line)) for line in lines]
requests = sum(int(p["requests"]) for p in parsed)
rps = sum(int(p["requests"]) / (int(p["duration_us"]) / 1e6) for p in parsed)
errors = sum(int(p["errors"]) + int(p["status_errors"]) for p in parsed)
alloc = f"{int(a1) - int(a0)},{(int(a1) - int(a0)) / requests:.0f}" if a0 else ","
print(f"{rnd},{config},{kind},{requests},{rps:.1f},{parsed[0]['p50_us']},{parsed[0]['p99_us']},{errors},{alloc}")
EOF
}

case5() {
  local dir="$out/case5" round a0 a1 la lb lc
  mkdir -p "$dir"
  # rpm, tpm and max_in_flight far above what the run reaches: each request takes every shared
  # decision the build has (tenant RPM today), and is never refused.
  start_fleet "$dir" 100 "bench 1 1000000000 1000000000 100000 0" lone || return 3
  fleet_wrk_script '{"model":"'"$model"'","messages":[{"role":"user","content":"Say hello."}],"max_tokens":1}' sk-bench >"$dir/post.lua"
  echo "round,config,kind,requests,rps,p50_us,p99_us,errors,alloc_bytes,alloc_per_request" >"$dir/runs.csv"
  # Warm-up: JIT-free AOT, but connections, pools and Redis's script cache warm up too.
  wrk_run "$dir/warm-lone.txt" 8 "$lone_port" >/dev/null || return 1
  wrk_run "$dir/warm-A.txt" 8 "${port_of[A]}" >/dev/null || return 1
  for round in $(seq 1 "$rounds"); do
    echo "cluster.sh: case 5 round $round of $rounds" >&2
    # (a) one replica without [cluster]
    la=$(wrk_run "$dir/a-latency-$round.txt" 1 "$lone_port") || return 1
    record "$round" a latency "" "" "$la"
    a0=$(allocated "$lone_admin")
    la=$(wrk_run "$dir/a-throughput-$round.txt" "$throughput_connections" "$lone_port") || return 1
    a1=$(allocated "$lone_admin")
    record "$round" a throughput "$a0" "$a1" "$la"
    # (b) one replica with [cluster]
    lb=$(wrk_run "$dir/b-latency-$round.txt" 1 "${port_of[A]}") || return 1
    record "$round" b latency "" "" "$lb"
    a0=$(allocated "${admin_of[A]}")
    lb=$(wrk_run "$dir/b-throughput-$round.txt" "$throughput_connections" "${port_of[A]}") || return 1
    a1=$(allocated "${admin_of[A]}")
    record "$round" b throughput "$a0" "$a1" "$lb"
    # (c) three replicas with [cluster], the connections split 60/30/10 (19/10/3)
    a0=$(allocated "${admin_of[A]}" "${admin_of[B]}" "${admin_of[C]}")
    wrk_run "$dir/c-A-$round.txt" 19 "${port_of[A]}" >/dev/null &
    local wa=$!
    wrk_run "$dir/c-B-$round.txt" 10 "${port_of[B]}" >/dev/null &
    local wb=$!
    wrk_run "$dir/c-C-$round.txt" 3 "${port_of[C]}" >/dev/null &
    local wc=$!
    wait "$wa" && wait "$wb" && wait "$wc" || return 1
    a1=$(allocated "${admin_of[A]}" "${admin_of[B]}" "${admin_of[C]}")
    record "$round" c throughput "$a0" "$a1" "$(grep '^RESULT' "$dir/c-A-$round.txt")" \
      "$(grep '^RESULT' "$dir/c-B-$round.txt")" "$(grep '^RESULT' "$dir/c-C-$round.txt")"
  done
  stop_fleet
  report 5 "$dir"
}

case6() {
  local dir="$out/case6"
  mkdir -p "$dir"
  start_fleet "$dir" 4 "rpm 1 $rpm 0 0 0
free 1 0 0 0 0" || return 3
  local r share
  for r in "${replicas[@]}"; do
    case $r in A) share=0.6 ;; B) share=0.3 ;; C) share=0.1 ;; esac
    # the rpm tenant at case 1's rate, the unlimited one at 2 requests per second, 60/30/10 of both
    write_profile "$dir/$r.toml" 30s "$(inject "$(python3 -c "print(($rpm_rate + 2) * $share)")" "$outage_seconds")" \
      "$(mix rpm "$(python3 -c "print(round($rpm_rate * 10))")" 200 8; mix free 20 200 8)"
  done
  spread "$dir" &
  local spread_pid=$!
  sleep "$outage_at"
  fleet_kill "$redis_pid"
  echo "redis_killed $(date +%s.%N)" >>"$dir/events.txt"
  sleep "$outage_for"
  start_redis "$dir/redis-restarted.log" || return 3
  echo "redis_started $(date +%s.%N)" >>"$dir/events.txt"
  wait "$spread_pid" || return 1
  stop_fleet
  report 6 "$dir" --rpm "$rpm"
}

# ---------------------------------------------------------------- run

started=$SECONDS
failed=0
report_seq=0
: >"$out/details.md"
: >"$out/rows.md"
echo "cluster.sh: cases ${cases[*]}$( ((quick)) && echo " (--quick)") -> $out" >&2
for c in "${cases[@]}"; do
  echo "cluster.sh: case $c" >&2
  status=0
  "case$c" || status=$?
  if ((status)); then
    echo "cluster.sh: case $c could not run (exit $status)" >&2
    exit "$status"
  fi
done

{
  echo "# Cluster mode (issue 16): perf/cluster.sh"
  echo
  echo "Command: \`$cmdline\`, $((SECONDS - started)) s in all; $(nproc) cores, load average at the end $(cut -d' ' -f1-3 /proc/loadavg); $(git rev-parse --short HEAD 2>/dev/null || echo "?")."
  echo
  cat "$out/details.md"
  echo "## Bounds"
  echo
  echo "| case | figure | measured | bound | |"
  echo "|---|---|--:|---|---|"
  cat "$out/rows.md"
} >"$out/summary.md"
cat "$out/summary.md"
exit $((failed ? 2 : 0))
