#!/usr/bin/env bash
# Runs one load profile against a real gateway on loopback:
#   4 simulated vLLM workers (aotproxy simulate) on 127.0.0.1:18101..18104,
#   aotproxy serve --config perf/targets/loadtest.toml on 127.0.0.1:8080 (admin 9090),
#   then aotproxy-load run PROFILE against it.
#
#   perf/load.sh PROFILE [runner args...]     PROFILE: a path, or a name in perf/profiles/
#   perf/load.sh smoke --duration-scale 0.5
#   AOTPROXY_BINARY=artifacts/aot/aotproxy perf/load.sh sustained
#
# Environment:
#   AOTPROXY_BINARY   the gateway binary (default: artifacts/aot/aotproxy; publish it first, see README)
#   SIMULATE_ARGS     extra flags for every `aotproxy simulate`, e.g. "--decode-tps 200"
#   LOAD_LOG_DIR      where the gateway's and workers' logs go (default: a temp dir, kept on failure)
#
# Exit code: the runner's (0 thresholds passed, 2 a threshold failed, 1 usage/profile error), or
# 3 when the gateway or a worker could not be started. Everything started here is stopped by its
# PID on exit; nothing is killed by name.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
cd "$root"

if [[ $# -lt 1 || "$1" == "-h" || "$1" == "--help" ]]; then
  sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'
  exit 1
fi

profile="$1"
shift
if [[ ! -f "$profile" && -f "perf/profiles/$profile.toml" ]]; then
  profile="perf/profiles/$profile.toml"
fi
if [[ ! -f "$profile" ]]; then
  echo "load.sh: no profile $profile (nor perf/profiles/$profile.toml)" >&2
  exit 1
fi

binary="${AOTPROXY_BINARY:-artifacts/aot/aotproxy}"
if [[ ! -x "$binary" ]]; then
  echo "load.sh: $binary is not an executable; publish it (README: The Native AOT binary) or set AOTPROXY_BINARY" >&2
  exit 1
fi

model="meta-llama/Llama-3.1-8B-Instruct"
ports=(18101 18102 18103 18104)
gateway_port=8080
admin_port=9090
config="perf/targets/loadtest.toml"
logs="${LOAD_LOG_DIR:-$(mktemp -d -t aotproxy-load.XXXXXX)}"
mkdir -p "$logs"
pids=()
status=3

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# shellcheck disable=SC2317  # called by the EXIT trap
stop_all() {
  # Reverse order: the gateway first, so it does not see its workers vanish mid-request.
  local i
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    kill -TERM "${pids[i]}" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    # Up to 15 s for a graceful exit (the gateway's shutdown_grace is 10 s), then KILL that PID.
    for _ in $(seq 1 150); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  if [[ $status -eq 0 && -z "${LOAD_LOG_DIR:-}" ]]; then
    rm -rf "$logs"
  else
    echo "load.sh: logs in $logs" >&2
  fi
}
trap stop_all EXIT
trap 'exit 130' INT TERM

for port in "${ports[@]}" "$gateway_port" "$admin_port"; do
  if port_open "$port"; then
    echo "load.sh: 127.0.0.1:$port is already in use; stop what listens there first" >&2
    exit 3
  fi
done

# Build the runner before anything starts, so that compiling does not overlap the measurement.
dotnet build -c Release perf/AotProxy.Load/AotProxy.Load.csproj -nologo -v quiet >"$logs/build.log" 2>&1 || {
  cat "$logs/build.log" >&2
  exit 1
}

for i in "${!ports[@]}"; do
  # SIMULATE_ARGS is split into words on purpose (several flags in one variable).
  # shellcheck disable=SC2086
  "$binary" simulate --listen "127.0.0.1:${ports[i]}" --model "$model" --max-num-seqs 64 ${SIMULATE_ARGS:-} \
    >"$logs/worker-$i.log" 2>&1 &
  pids+=($!)
done

for i in "${!ports[@]}"; do
  for _ in $(seq 1 300); do
    port_open "${ports[i]}" && break
    kill -0 "${pids[i]}" 2>/dev/null || { echo "load.sh: worker $i exited:" >&2; cat "$logs/worker-$i.log" >&2; exit 3; }
    sleep 0.1
  done
  port_open "${ports[i]}" || { echo "load.sh: worker $i not listening on ${ports[i]} after 30 s" >&2; exit 3; }
done

"$binary" serve --config "$config" >"$logs/gateway.log" 2>&1 &
gateway=$!
pids+=("$gateway")
for _ in $(seq 1 300); do
  grep -q "aotproxy ready:" "$logs/gateway.log" && break
  kill -0 "$gateway" 2>/dev/null || { echo "load.sh: the gateway exited:" >&2; cat "$logs/gateway.log" >&2; exit 3; }
  sleep 0.1
done
grep -q "aotproxy ready:" "$logs/gateway.log" || { echo "load.sh: the gateway printed no 'aotproxy ready:' within 30 s" >&2; cat "$logs/gateway.log" >&2; exit 3; }
grep "aotproxy ready:" "$logs/gateway.log" >&2

set +e
dotnet run -c Release --no-build --project perf/AotProxy.Load -- run "$profile" --target "http://127.0.0.1:$gateway_port" "$@"
status=$?
set -e

# What the gateway itself counted, next to the runner's report (best effort).
if command -v curl >/dev/null; then
  name="$(basename "$profile" .toml)"
  out="perf/reports"
  args=("$@")
  for ((i = 0; i < ${#args[@]}; i++)); do
    [[ "${args[i]}" == "--out" && $((i + 1)) -lt ${#args[@]} ]] && out="${args[i + 1]}"
  done
  mkdir -p "$out"
  curl -sf "http://127.0.0.1:$admin_port/metrics" >"$out/$name.gateway-metrics.txt" || true
fi

exit "$status"
