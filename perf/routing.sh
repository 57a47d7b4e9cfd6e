#!/usr/bin/env bash
# Routing quality, strategy by strategy, on a heterogeneous simulated fleet (a profile, not a test):
#
#   4 `aotproxy simulate` workers on loopback: sim-0 and sim-1 at full speed, sim-2 and sim-3 at
#   half speed (--speed 0.5); each with --max-num-seqs 16 and a small KV budget of 1,024 blocks of
#   16 tokens (16,384 tokens: about 7 of the workloads' 2,100-token requests at once, and a prefix
#   cache that holds 4 to 8 of the 16 shared system prompts, never all of them).
#   `aotproxy serve` in front of them with routing.strategy = STRATEGY (weights 2, 2, 1, 1).
#
# For every strategy and workload the workers and the gateway start fresh (cold caches, same
# traffic: the runner's request sequence is seeded), run one open-loop profile, and stop:
#   shared-prefix  perf/profiles/routing-shared-prefix.toml  13/s (80% of the fleet), 16 system prompts
#   no-reuse       perf/profiles/routing-no-reuse.toml       13/s, every prompt unique
#   load-90        perf/profiles/routing-load-90.toml        ramp to 14.6/s (90%), then hold: sheds?
# Then perf/routing_report.py writes one table per workload and the goals (summary.md).
#
#   perf/routing.sh                                  all 7 strategies, ~12 min
#   perf/routing.sh --quick round_robin p2c_kv       a third of every duration (~1 min per strategy)
#   perf/routing.sh --workloads "shared-prefix" least_queue p2c_kv
#
# Options:
#   --quick                 --duration-scale 0.34 (10 s instead of 30 s per workload)
#   --duration-scale F      multiply every profile duration (passed to aotproxy-load)
#   --rate-scale F          multiply every rate, e.g. 1.1 to probe past the design point
#   --workloads "A B"       a subset of: shared-prefix no-reuse load-90
#   --base-port N           workers on N..N+3, gateway N+9, admin N+10 (default 18201, or ROUTING_BASE_PORT)
#   --out DIR               reports (default perf/reports/routing-YYYYmmdd-HHMMSS)
#   --set "KEY = VALUE"     one more [routing] line for every strategy, e.g. --set "weight_kv = 0"
#                           (repeatable; the gateway validates it, so a typo fails the run's start)
#   STRATEGY...             a subset of: round_robin weighted_round_robin least_queue
#                           least_connections p2c_kv consistent_hash adaptive (default: all)
# Environment:
#   AOTPROXY_BINARY   the gateway binary (default: artifacts/aot/aotproxy; publish it first)
#
# Exit code: 0 when every run completed (whatever the numbers say: the goals are in the summary),
# 1 for usage errors, 3 when a worker or the gateway could not start. Everything started here is
# stopped by its PID, also on Ctrl+C; nothing is killed by name. Logs and per-run reports stay in DIR.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
cd "$root"

cmdline="perf/routing.sh $*"
all_strategies=(round_robin weighted_round_robin least_queue least_connections p2c_kv consistent_hash adaptive)
all_workloads=(shared-prefix no-reuse load-90)

usage() {
  sed -n '2,37p' "$0" | sed 's/^# \{0,1\}//'
  exit 1
}

strategies=()
workloads=("${all_workloads[@]}")
runner_args=()
routing_set=()
base_port="${ROUTING_BASE_PORT:-18201}"
out=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    -h | --help) usage ;;
    --quick) runner_args+=(--duration-scale 0.34); shift ;;
    --duration-scale | --rate-scale)
      [[ $# -ge 2 ]] || usage
      runner_args+=("$1" "$2"); shift 2 ;;
    --workloads)
      [[ $# -ge 2 ]] || usage
      read -r -a workloads <<<"$2"; shift 2 ;;
    --base-port)
      [[ $# -ge 2 && "$2" =~ ^[0-9]+$ && "$2" -ge 1024 && "$2" -le 65000 ]] || { echo "routing.sh: --base-port takes a port from 1024 to 65000" >&2; exit 1; }
      base_port="$2"; shift 2 ;;
    --out)
      [[ $# -ge 2 ]] || usage
      out="$2"; shift 2 ;;
    --set)
      [[ $# -ge 2 ]] || usage
      routing_set+=("$2"); shift 2 ;;
    -*) echo "routing.sh: unknown option $1" >&2; usage ;;
    *) strategies+=("$1"); shift ;;
  esac
done
((${#strategies[@]} > 0)) || strategies=("${all_strategies[@]}")

FLEET_TAG="routing.sh"
# shellcheck source=perf/lib/fleet.sh
source "$here/lib/fleet.sh"
binary="$(fleet_binary)" || exit 1
fleet_one_of strategy "${all_strategies[*]}" "${strategies[@]}" || exit 1
fleet_one_of workload "${all_workloads[*]}" "${workloads[@]}" || exit 1

# The fleet. perf/profiles/routing-*.toml derive their rates from exactly these numbers: change
# them together.
model="meta-llama/Llama-3.1-8B-Instruct"
worker_names=(sim-0 sim-1 sim-2 sim-3)
worker_speeds=(1 1 0.5 0.5)
worker_weights=(2 2 1 1)
sim_flags=(--model "$model" --max-num-seqs 16 --num-gpu-blocks 1024 --block-size 16)
max_concurrency=16 # = --max-num-seqs, as configs/aotproxy.toml advises
worker_ports=()
for i in "${!worker_names[@]}"; do
  worker_ports+=($((base_port + i)))
done
gateway_port=$((base_port + 9))
admin_port=$((base_port + 10))
api_key="sk-routing-bench"

out="${out:-perf/reports/routing-$(date +%Y%m%d-%H%M%S)}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"

# shellcheck disable=SC2317  # called by the EXIT trap
on_exit() {
  fleet_stop_all
  echo "routing.sh: reports and logs in $out" >&2
}
trap on_exit EXIT
trap 'exit 130' INT TERM

fleet_check_ports "${worker_ports[@]}" "$gateway_port" "$admin_port" || exit 3
fleet_build_runner "$out" || exit 1
key_hash="$("$binary" hash-key "$api_key")"

# One gateway config per strategy: the same fleet and tenant, only routing.strategy differs.
write_config() {
  local strategy="$1" file="$2" i
  {
    echo "# Written by perf/routing.sh for strategy $strategy."
    fleet_gateway_toml "$gateway_port" "$admin_port" "$strategy" "$(printf '%s\n' "${routing_set[@]}")"
    cat <<EOF

[scheduler]
policy = "fairshare"

[[classes]]
name = "bench"
priority = 0
weight = 1
max_queue_wait = "30s"
max_utilization = 1.0

[[tenants]]
name = "routing-bench"
class = "bench"
api_key_sha256 = ["$key_hash"]  # sha256 of "$api_key"
models = ["*"]
EOF
    for i in "${!worker_names[@]}"; do
      cat <<EOF

[[workers]]
name = "${worker_names[i]}"            # --speed ${worker_speeds[i]}
url = "http://127.0.0.1:${worker_ports[i]}"
models = ["$model"]
max_concurrency = $max_concurrency
weight = ${worker_weights[i]}
EOF
    done
  } >"$file"
}

# What each worker did, as one JSON array of their /sim/stats (requests, prefix-cache hits...).
worker_stats() {
  local first=1 port
  printf '['
  for port in "${worker_ports[@]}"; do
    ((first)) || printf ','
    first=0
    curl -sf --max-time 5 "http://127.0.0.1:$port/sim/stats" || printf 'null'
  done
  printf ']\n'
}

# One strategy on one workload, from a cold fleet to a stopped one.
run_one() {
  local strategy="$1" workload="$2" dir="$out/$1" i
  local profile="perf/profiles/routing-$workload.toml"
  mkdir -p "$dir"
  for i in "${!worker_names[@]}"; do
    fleet_start_worker "$binary" "${worker_ports[i]}" "$dir/$workload.${worker_names[i]}.log" \
      "${sim_flags[@]}" --name "${worker_names[i]}" --speed "${worker_speeds[i]}" || return 3
  done
  fleet_start_gateway "$binary" "$dir/gateway.toml" "$dir/$workload.gateway.log" || return 3

  local status=0
  dotnet run -c Release --no-build --project perf/AotProxy.Load -- run "$profile" \
    --target "http://127.0.0.1:$gateway_port" --key "$api_key" --out "$dir" "${runner_args[@]}" \
    >"$dir/$workload.runner.txt" 2>&1 || status=$?
  echo "$status" >"$dir/$workload.exit"
  worker_stats >"$dir/$workload.workers.json"
  curl -sf --max-time 5 "http://127.0.0.1:$admin_port/api/routing/stats" >"$dir/$workload.routing.json" 2>/dev/null || rm -f "$dir/$workload.routing.json"
  curl -sf --max-time 5 "http://127.0.0.1:$admin_port/metrics" >"$dir/$workload.gateway-metrics.txt" 2>/dev/null || true

  # The gateway first, then its workers.
  fleet_stop_all # the run's gateway, then its workers
  if [[ $status -eq 1 ]]; then
    echo "routing.sh: the runner failed on $profile:" >&2
    cat "$dir/$workload.runner.txt" >&2
    return 1
  fi
  grep -E '^\| routing-' "$dir/$workload.runner.txt" | head -1 >&2 || true
}

started=$SECONDS
echo "routing.sh: ${strategies[*]} x ${workloads[*]} -> $out" >&2
for strategy in "${strategies[@]}"; do
  mkdir -p "$out/$strategy"
  write_config "$strategy" "$out/$strategy/gateway.toml"
  for workload in "${workloads[@]}"; do
    echo "routing.sh: $strategy / $workload ($((SECONDS - started)) s in)" >&2
    run_one "$strategy" "$workload" || exit $?
  done
done

python3 "$here/routing_report.py" "$out" \
  --strategies "${strategies[*]}" --workloads "${workloads[*]}" \
  --command "$cmdline" --seconds $((SECONDS - started)) >"$out/summary.md"
cat "$out/summary.md"
