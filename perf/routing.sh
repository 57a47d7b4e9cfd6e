#!/usr/bin/env bash
# Routing quality, strategy by strategy, on a heterogeneous simulated fleet (a profile, not a test):
#
#   4 `aotproxy simulate` workers on loopback: sim-0 and sim-1 at full speed, sim-2 and sim-3 at
#   half speed (--speed 0.5); by default each with --max-num-seqs 16 and a small KV budget of
#   1,024 blocks of 16 tokens (16,384 tokens: about 7 of the workloads' 2,100-token requests at
#   once, and a prefix cache that holds 4 to 8 of the 16 shared system prompts, never all of them).
#   Some workloads change the workers' flags (worker_flags below) or the gateway's view of them.
#   `aotproxy serve` in front of them with routing.strategy = STRATEGY (weights 2, 2, 1, 1).
#
# For every strategy and workload the workers and the gateway start fresh (cold caches, same
# traffic: the runner's request sequence is seeded), run one profile, and stop:
#   shared-prefix   perf/profiles/routing-shared-prefix.toml   13/s (80% of the fleet), 16 system prompts
#   no-reuse        perf/profiles/routing-no-reuse.toml        13/s, every prompt unique
#   load-90         perf/profiles/routing-load-90.toml         ramp to 14.6/s (90%), then hold: sheds?
#   cache-pressure  perf/profiles/routing-cache-pressure.toml  13.4/s (90%), 16 prefixes of 6,000 chars;
#                                                              --num-gpu-blocks 512: each cache holds ~4
#   multi-turn      perf/profiles/routing-multi-turn.toml      22 turns/s (80%) over 64 conversations, 800 new
#                                                              chars a turn; --num-gpu-blocks 2048
#   push-back       perf/profiles/routing-push-back.toml       bursts of 24 into workers that hold 10, 10, 5, 5
#                                                              (--max-num-queued-reqs); gateway slots 8 each
#   lora            perf/profiles/routing-lora.toml            8 adapters, 2 slots a worker (--max-loras 2);
#                                                              the workers' models configured (--lora-models)
# A workload whose simulator flags the binary lacks (lora before lora19) is skipped, and says so.
# Then perf/routing_report.py writes one table per workload and the goals (summary.md).
#
#   perf/routing.sh                                  all 7 strategies x 7 workloads, ~40 min
#   perf/routing.sh round_robin least_queue p2c_kv   the strategies the issue's goals compare, ~17 min
#   perf/routing.sh --quick round_robin p2c_kv       a third of every duration (~2.5 min per strategy)
#   perf/routing.sh --workloads "cache-pressure multi-turn" least_queue p2c_kv
#
# Options:
#   --quick                 --duration-scale 0.34 (10 s instead of 30 s per workload)
#   --duration-scale F      multiply every profile duration (passed to aotproxy-load)
#   --rate-scale F          multiply every rate, e.g. 1.1 to probe past the design point
#   --workloads "A B"       a subset of: shared-prefix no-reuse load-90 cache-pressure multi-turn push-back lora
#   --base-port N           workers on N..N+3, gateway N+9, admin N+10 (default 18201, or ROUTING_BASE_PORT)
#   --out DIR               reports (default perf/reports/routing-YYYYmmdd-HHMMSS)
#   --set "KEY = VALUE"     one more [routing] line for every strategy, e.g. --set "weight_kv = 0"
#                           (repeatable; the gateway validates it, so a typo fails the run's start)
#   --lora-models M         lora's workers: "configured" (default: models = the base model and the 8
#                           adapters; the gateway asks which are adapters once the scrape reports LoRA)
#                           or "discovered" (no models line: GET /v1/models from the start)
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
all_workloads=(shared-prefix no-reuse load-90 cache-pressure multi-turn push-back lora)

usage() {
  sed -n '2,51p' "$0" | sed 's/^# \{0,1\}//'
  exit 1
}

strategies=()
workloads=("${all_workloads[@]}")
runner_args=()
routing_set=()
base_port="${ROUTING_BASE_PORT:-18201}"
out=""
lora_models=configured
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
    --lora-models)
      [[ $# -ge 2 && ( "$2" == configured || "$2" == discovered ) ]] || { echo "routing.sh: --lora-models takes configured or discovered" >&2; exit 1; }
      lora_models="$2"; shift 2 ;;
    -*) echo "routing.sh: unknown option $1" >&2; usage ;;
    *) strategies+=("$1"); shift ;;
  esac
done
((${#strategies[@]} > 0)) || strategies=("${all_strategies[@]}")

# The report's arithmetic first: a wrong ratio or verdict would make every goal below a lie.
python3 -m unittest discover -s "$here" -p 'routing_report_test.py' >/dev/null 2>&1 || {
  python3 -m unittest discover -s "$here" -p 'routing_report_test.py' >&2 || true
  echo "routing.sh: perf/routing_report_test.py fails: the goals could not be trusted" >&2
  exit 1
}

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
adapters=(lora-0 lora-1 lora-2 lora-3 lora-4 lora-5 lora-6 lora-7)
usage_text="$("$binary" --help 2>&1 || true)"

# vLLM's cap on its waiting queue: resil19 names the simulator's flag as vLLM does; before it,
# --max-num-waiting (the same cap, counted with the running requests) is all there is. With the
# push-back workload's short prompts every slot runs, so both refuse the same request.
queue_flag=--max-num-waiting
[[ "$usage_text" == *--max-num-queued-reqs* ]] && queue_flag=--max-num-queued-reqs

# Why WORKLOAD cannot run on this binary ("" when it can).
missing_for() {
  case "$1" in
    lora) [[ "$usage_text" == *--lora-modules* ]] || echo "the simulator has no --lora-modules (lora19) yet" ;;
  esac
}

# worker_flags WORKLOAD I: `aotproxy simulate` flags of worker I in WORKLOAD, one per line.
worker_flags() {
  local workload="$1" i="$2"
  printf '%s\n' --model "$model" --block-size 16 --name "${worker_names[i]}" --speed "${worker_speeds[i]}"
  case "$workload" in
    # 512 blocks (8,192 tokens): the LRU holds ~4 of the 16 prefixes of ~1,500 tokens beside
    # the unique user messages' blocks (routing-cache-pressure.toml).
    cache-pressure) printf '%s\n' --max-num-seqs 16 --num-gpu-blocks 512 ;;
    # 2,048 blocks: 16 conversations' histories fit a worker, 64 do not (routing-multi-turn.toml).
    multi-turn) printf '%s\n' --max-num-seqs 16 --num-gpu-blocks 2048 ;;
    # What a worker holds before vLLM answers 503: 8 + 2 on the fast workers, 4 + 1 on the slow
    # ones, while the gateway believes 8 each (max_concurrency_for): an even spread overfills
    # the slow two while the fleet has room for 30.
    push-back)
      if ((i < 2)); then printf '%s\n' --max-num-seqs 8 "$queue_flag" 2; else printf '%s\n' --max-num-seqs 4 "$queue_flag" 1; fi
      printf '%s\n' --num-gpu-blocks 1024 ;;
    lora) printf '%s\n' --max-num-seqs 16 --num-gpu-blocks 1024 --lora-modules "$(IFS=,; echo "${adapters[*]}")" --max-loras 2 --lora-load-ms 150 ;;
    *) printf '%s\n' --max-num-seqs 16 --num-gpu-blocks 1024 ;;
  esac
}

# The gateway's max_concurrency per worker: --max-num-seqs, as configs/aotproxy.toml advises,
# except where the workload is about a worker taking less than the gateway believes.
max_concurrency_for() {
  case "$1" in
    push-back) echo 8 ;;
    *) echo 16 ;;
  esac
}

# The `models` line of each worker. For lora, by default the base model and the adapters, as an
# operator writes them: the gateway learns which are adapters (their parent) from GET /v1/models,
# asked once the worker's scrape reports LoRA; --lora-models discovered leaves the line out, and the
# gateway discovers them all from GET /v1/models at start.
models_line() {
  case "$1:$lora_models" in
    lora:discovered) echo "# models: discovered (the base model and ${#adapters[@]} adapters)" ;;
    lora:configured) printf 'models = ["%s"%s]\n' "$model" "$(printf ', "%s"' "${adapters[@]}")" ;;
    *) printf 'models = ["%s"]\n' "$model" ;;
  esac
}
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

# One gateway config per strategy and workload: the same tenant; routing.strategy differs between
# strategies, the workers' max_concurrency and models between workloads.
write_config() {
  local strategy="$1" workload="$2" file="$3" i
  {
    echo "# Written by perf/routing.sh for strategy $strategy, workload $workload."
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
$(models_line "$workload")
max_concurrency = $(max_concurrency_for "$workload")
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
  local strategy="$1" workload="$2" dir="$out/$1" i flags missing
  local profile="perf/profiles/routing-$workload.toml"
  mkdir -p "$dir"
  missing="$(missing_for "$workload")"
  if [[ -n "$missing" ]]; then
    echo "$missing" >"$dir/$workload.skipped"
    echo "routing.sh: $strategy / $workload skipped: $missing" >&2
    return 0
  fi
  write_config "$strategy" "$workload" "$dir/$workload.gateway.toml"
  for i in "${!worker_names[@]}"; do
    readarray -t flags < <(worker_flags "$workload" "$i")
    fleet_start_worker "$binary" "${worker_ports[i]}" "$dir/$workload.${worker_names[i]}.log" "${flags[@]}" || return 3
  done
  fleet_start_gateway "$binary" "$dir/$workload.gateway.toml" "$dir/$workload.gateway.log" || return 3

  local status=0
  dotnet run -c Release --no-build --project perf/AotProxy.Load -- run "$profile" \
    --target "http://127.0.0.1:$gateway_port" --key "$api_key" --out "$dir" "${runner_args[@]}" \
    >"$dir/$workload.runner.txt" 2>&1 || status=$?
  echo "$status" >"$dir/$workload.exit"
  worker_stats >"$dir/$workload.workers.json"
  curl -sf --max-time 5 "http://127.0.0.1:$admin_port/api/routing/stats" >"$dir/$workload.routing.json" 2>/dev/null || rm -f "$dir/$workload.routing.json"
  curl -sf --max-time 5 "http://127.0.0.1:$admin_port/metrics" >"$dir/$workload.gateway-metrics.txt" 2>/dev/null || true
  curl -sf --max-time 5 "http://127.0.0.1:$admin_port/api/circuit-breaker/stats" >"$dir/$workload.breakers.json" 2>/dev/null || rm -f "$dir/$workload.breakers.json"

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
  for workload in "${workloads[@]}"; do
    echo "routing.sh: $strategy / $workload ($((SECONDS - started)) s in)" >&2
    run_one "$strategy" "$workload" || exit $?
  done
done

python3 "$here/routing_report.py" "$out" \
  --strategies "${strategies[*]}" --workloads "${workloads[*]}" \
  --command "$cmdline" --seconds $((SECONDS - started)) >"$out/summary.md"
cat "$out/summary.md"
