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

FLEET_TAG="load.sh"
# shellcheck source=perf/lib/fleet.sh
source "$here/lib/fleet.sh"
binary="$(fleet_binary)" || exit 1

model="meta-llama/Llama-3.1-8B-Instruct"
ports=(18101 18102 18103 18104)
gateway_port=8080
admin_port=9090
config="perf/targets/loadtest.toml"
logs="${LOAD_LOG_DIR:-$(mktemp -d -t aotproxy-load.XXXXXX)}"
mkdir -p "$logs"
status=3


# shellcheck disable=SC2317  # called by the EXIT trap
on_exit() {
  fleet_stop_all
  if [[ $status -eq 0 && -z "${LOAD_LOG_DIR:-}" ]]; then
    rm -rf "$logs"
  else
    echo "load.sh: logs in $logs" >&2
  fi
}
trap on_exit EXIT
trap 'exit 130' INT TERM

fleet_check_ports "${ports[@]}" "$gateway_port" "$admin_port" || exit 3
fleet_build_runner "$logs" || exit 1

for i in "${!ports[@]}"; do
  # SIMULATE_ARGS is split into words on purpose (several flags in one variable).
  # shellcheck disable=SC2086
  fleet_start_worker "$binary" "${ports[i]}" "$logs/worker-$i.log" --model "$model" --max-num-seqs 64 ${SIMULATE_ARGS:-} || exit 3
done

fleet_start_gateway "$binary" "$config" "$logs/gateway.log" || exit 3
# perf/soak.sh samples this process (RSS, open files) while the profile runs.
echo "$fleet_last_pid" >"$logs/gateway.pid"

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
