#!/usr/bin/env bash
# What a flood of hostile bearer tokens costs the gateway (issue 14, item 1): the AOT binary and one
# simulated worker on loopback, [jwt] on, then N requests whose JWT header's kid is not UTF-8 text
# (perf/auth_flood.py). Prints the client's statuses and time, the gateway's 401 counter, and what
# the gateway wrote to its log during the flood and its shutdown: bytes, lines, exception lines.
#
#   perf/auth_flood.sh [N (20000)] [kid-surrogate|kid-bytes]    # AOTPROXY_BINARY: the binary to run
set -euo pipefail
cd "$(dirname "$0")/.."
FLEET_TAG=auth_flood.sh
source perf/lib/fleet.sh
trap fleet_stop_all EXIT

n="${1:-20000}"
kind="${2:-kid-surrogate}"
binary="$(fleet_binary)"
worker_port=18531 gateway_port=18532 admin_port=18533
fleet_check_ports "$worker_port" "$gateway_port" "$admin_port"
logs="$(mktemp -d)"
fleet_start_worker "$binary" "$worker_port" "$logs/worker.log" --model m

export AOTPROXY_FLOOD_SECRET="auth-flood-hs256-secret-0123456789-abcdef"
{
  fleet_gateway_toml "$gateway_port" "$admin_port" round_robin
  cat <<TOML

[ledger]
path = ""

[[tenants]]
name = "acme"
api_key_sha256 = ["$(printf '0%.0s' $(seq 64))"]

[jwt]
hs256_secret_env = "AOTPROXY_FLOOD_SECRET"

[[workers]]
name = "sim-0"
url = "http://127.0.0.1:$worker_port"
models = ["m"]
TOML
} >"$logs/gateway.toml"
fleet_start_gateway "$binary" "$logs/gateway.toml" "$logs/gateway.log"
gateway_pid="$fleet_last_pid"

before=$(wc -c <"$logs/gateway.log")
lines_before=$(wc -l <"$logs/gateway.log")
python3 perf/auth_flood.py 127.0.0.1 "$gateway_port" "$n" --kind "$kind"
counted=$(curl -s "http://127.0.0.1:$admin_port/metrics" | awk '/^llm_gateway_requests_total\{.*status="401"/ {s += $2} END {print s + 0}')
fleet_stop "$gateway_pid"
echo "llm_gateway_requests_total{status=\"401\"}: $counted"
echo "log during the flood and shutdown: $(($(wc -c <"$logs/gateway.log") - before)) bytes, $(($(wc -l <"$logs/gateway.log") - lines_before)) lines," \
  "$(grep -c 'not identified' "$logs/gateway.log" || true) 'not identified' lines, $(grep -c 'Exception' "$logs/gateway.log" || true) with an exception"
rm -rf "$logs"
