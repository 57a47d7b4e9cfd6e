#!/usr/bin/env bash
# Tenant limits under many tenants (issue 6), on a simulated fleet (a profile, not a test):
#
#   2 `aotproxy simulate` workers on loopback at --speed 4, each --max-num-seqs 64 (128 slots, far
#   more than the limits let through: the limit stage refuses, admission does not).
#   `aotproxy serve` in front of them with 28 tenants (the table below): rpm only, tpm only, both,
#   and none, each with its own key "sk-NAME".
#   perf/profiles/limits-many-tenants.toml offers each tenant 1.5-4x its limits for 180 s.
# The runner writes one line per request (requests.csv); perf/limits_report.py then checks, per
# tenant, that the requests admitted (neither 429 nor 503) in every 60 s window and calendar minute are
# at most rpm, and their tokens at most tpm + the tenant's largest reservation (perf/LOAD.md has
# the exact rules), prints a table per tenant and exits non-zero when a check fails.
#
#   perf/limits.sh                   the full run, ~4 min
#   perf/limits.sh --quick           72 s instead of 180 s: a check of the harness
#
# Options:
#   --quick              --duration-scale 0.4
#   --duration-scale F   multiply the profile's duration (passed to aotproxy-load); the limits are
#                        per minute of real time, so rates are never scaled
#   --base-port N        workers on N and N+1, gateway N+8, admin N+9 (default 18401, or
#                        LIMITS_BASE_PORT); checked free first
#   --out DIR            reports (default perf/reports/limits-YYYYmmdd-HHMMSS)
# Environment:
#   AOTPROXY_BINARY   the gateway binary (default: artifacts/aot/aotproxy; publish it first)
#
# Exit code: 0 every check passed, 2 a check failed (the table says which), 1 for usage errors or
# a runner failure, 3 when a worker or the gateway could not start. Everything started here is
# stopped by its PID.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
cd "$root"

cmdline="perf/limits.sh $*"

usage() {
  sed -n '2,29p' "$0" | sed 's/^# \{0,1\}//'
  exit 1
}

duration_scale=1
base_port="${LIMITS_BASE_PORT:-18401}"
out=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    -h | --help) usage ;;
    --quick) duration_scale=0.4; shift ;;
    --duration-scale)
      [[ $# -ge 2 ]] || usage
      duration_scale="$2"; shift 2 ;;
    --base-port)
      [[ $# -ge 2 && "$2" =~ ^[0-9]+$ && "$2" -ge 1024 && "$2" -le 65000 ]] || { echo "limits.sh: --base-port takes a port from 1024 to 65000" >&2; exit 1; }
      base_port="$2"; shift 2 ;;
    --out)
      [[ $# -ge 2 ]] || usage
      out="$2"; shift 2 ;;
    *) echo "limits.sh: unknown argument $1" >&2; usage ;;
  esac
done

FLEET_TAG="limits.sh"
# shellcheck source=perf/lib/fleet.sh
source "$here/lib/fleet.sh"
binary="$(fleet_binary)" || exit 1

# The tenants: NAME RPM TPM (0 = unlimited). perf/profiles/limits-many-tenants.toml offers each a
# multiple of these: change them together.
tenants="
lim-r01 30 0
lim-r02 40 0
lim-r03 60 0
lim-r04 60 0
lim-r05 90 0
lim-r06 120 0
lim-r07 45 0
lim-r08 20 0
lim-t01 0 3000
lim-t02 0 6000
lim-t03 0 4000
lim-t04 0 10000
lim-t05 0 4000
lim-t06 0 6000
lim-t07 0 2000
lim-t08 0 8000
lim-b01 30 5000
lim-b02 20 20000
lim-b03 60 6000
lim-b04 40 10000
lim-b05 100 8000
lim-b06 15 4000
lim-b07 50 50000
lim-b08 25 12000
lim-u01 0 0
lim-u02 0 0
lim-u03 0 0
lim-u04 0 0
"

# The fleet: at --speed 4 one stream decodes at 400 tok/s and a full batch of 64 at ~11,000 tok/s
# per worker, ~10x what the limits let through (~5x even if a limit let 2x through, as a token
# bucket without its sliding window did in the first minute).
model="meta-llama/Llama-3.1-8B-Instruct"
max_num_seqs=64
speed=4
worker_ports=("$base_port" $((base_port + 1)))
gateway_port=$((base_port + 8))
admin_port=$((base_port + 9))
profile=perf/profiles/limits-many-tenants.toml

out="${out:-perf/reports/limits-$(date +%Y%m%d-%H%M%S)}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"

# shellcheck disable=SC2317  # called by the EXIT trap
on_exit() {
  fleet_stop_all
  echo "limits.sh: reports and logs in $out" >&2
}
trap on_exit EXIT
trap 'exit 130' INT TERM

fleet_check_ports "${worker_ports[@]}" "$gateway_port" "$admin_port" || exit 3
fleet_build_runner "$out" || exit 1

write_config() {
  local file="$1" name rpm tpm
  {
    echo "# Written by perf/limits.sh."
    fleet_gateway_toml "$gateway_port" "$admin_port" least_queue
    cat <<TOML

[scheduler]
policy = "fairshare"

[[classes]]
name = "shared"
priority = 0
weight = 1
max_queue_wait = "30s"               # nothing should wait: the fleet has room for all the limits let through
TOML
    while read -r name rpm tpm; do
      [[ -n "$name" ]] || continue
      printf '\n[[tenants]]\nname = "%s"\nclass = "shared"\napi_key_sha256 = ["%s"]  # sha256 of "sk-%s"\nmodels = ["*"]\nrpm = %s\ntpm = %s\n' \
        "$name" "$("$binary" hash-key "sk-$name")" "$name" "$rpm" "$tpm"
    done <<<"$tenants"
    fleet_workers_toml "$model" "$max_num_seqs" "${worker_ports[@]}" # max_concurrency = --max-num-seqs
  } >"$file"
  fleet_check_config "$binary" "$file"
}

started=$SECONDS
echo "limits.sh: $profile (duration scale $duration_scale) -> $out" >&2
write_config "$out/gateway.toml" || exit 1
fleet_start_workers "$binary" "$out" "${worker_ports[*]}" --model "$model" --max-num-seqs "$max_num_seqs" --speed "$speed" || exit 3
fleet_start_gateway "$binary" "$out/gateway.toml" "$out/gateway.log" || exit 3

status=0
dotnet run -c Release --no-build --project perf/AotProxy.Load -- run "$profile" \
  --target "http://127.0.0.1:$gateway_port" --out "$out" --requests "$out/requests.csv" --duration-scale "$duration_scale" \
  >"$out/runner.txt" 2>&1 || status=$?
curl -sf --max-time 5 "http://127.0.0.1:$admin_port/metrics" >"$out/gateway-metrics.txt" 2>/dev/null || true
curl -sf --max-time 5 "http://127.0.0.1:$admin_port/api/tenants" >"$out/tenants.json" 2>/dev/null || true
fleet_stop_all # the gateway, then its workers
if [[ $status -eq 1 ]]; then
  echo "limits.sh: the runner failed on $profile:" >&2
  cat "$out/runner.txt" >&2
  exit 1
fi

report=0
python3 "$here/limits_report.py" "$out" --command "$cmdline" --seconds $((SECONDS - started)) >"$out/summary.md" || report=$?
cat "$out/summary.md"
exit "$report"
