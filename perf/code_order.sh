#!/usr/bin/env bash
# perf/code_order.sh [--binary PATH]: rewrites src/AotProxy/aotproxy.order, the managed methods the
# gateway executes from startup through its first requests, which the AOT build places first in
# its code section (AotProxy.csproj IlcOrderFile; perf/RESULTS.md "Issue 22: the process's base RSS").
#
# Runs the published binary (default AOTPROXY_BINARY or artifacts/aot/aotproxy, with its
# aotproxy.dbg beside it) under valgrind's callgrind (apt-get install valgrind), as
# perf/connections.sh configures it, against one simulated worker: 40 requests (half streamed),
# 20 keep-alive connections left to park and used again, one /metrics scrape; then
# perf/code_order.py maps every executed instruction to its method. Regenerate after a change
# that moves the startup or request path to other code; a method that no longer exists is skipped,
# so a stale file costs resident memory, never correctness. Ports 18291-18293 (+PERF_PORT_OFFSET).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
while (($#)); do
  case "$1" in
    --binary) AOTPROXY_BINARY="$2"; shift ;;
    *) echo "code_order.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
FLEET_TAG="code_order.sh"
# shellcheck source=perf/lib/fleet.sh
source "$ROOT/perf/lib/fleet.sh"
fleet_ports SIM_PORT=18291 AOT_PORT=18292 AOT_ADMIN=18293
trap fleet_stop_all EXIT
BINARY=$(fleet_binary) || exit 1
[[ -f "$BINARY.dbg" ]] || { echo "code_order.sh: $BINARY.dbg is missing (publish with symbols)" >&2; exit 1; }
command -v valgrind >/dev/null || { echo "code_order.sh: valgrind is missing (apt-get install valgrind)" >&2; exit 1; }
fleet_check_ports $FLEET_PORTS || exit 1
WORK=$(mktemp -d)
# a copy without its .dbg beside it: valgrind 3.19 gives up on the runtime's debug info
cp "$BINARY" "$(dirname "$BINARY")"/libe_sqlite3.so "$WORK/"
{
  printf '[server]\nlisten = "127.0.0.1:%s"\nadmin_listen = "127.0.0.1:%s"\nshutdown_grace = "2s"\n' $AOT_PORT $AOT_ADMIN
  printf '\n[routing]\nstrategy = "round_robin"\n'
  fleet_workers_toml bench 8192 $SIM_PORT
  printf '\n[[tenants]]\nname = "bench"\napi_key_sha256 = ["%s"]\nmodels = ["*"]\n' "$(printf sk-bench | sha256sum | cut -d' ' -f1)"
} >"$WORK/aotproxy.toml"
AOTPROXY_LOG_LEVEL=warning fleet_start_worker "$BINARY" $SIM_PORT "$WORK/sim.log" --model bench
# a 1 GiB region range: valgrind cannot map the GC's default 256 GiB reservation
DOTNET_GCRegionRange=0x40000000 AOTPROXY_LOG_LEVEL=warning fleet_spawn "$WORK/gateway.log" \
  valgrind --tool=callgrind --dump-instr=yes --callgrind-out-file="$WORK/callgrind.out" "$WORK/aotproxy" serve --config "$WORK/aotproxy.toml"
gateway=$fleet_last_pid
fleet_wait_line "$WORK/gateway.log" "aotproxy ready:" "the gateway under callgrind" || exit 3
python3 - "$AOT_PORT" <<'PY'
import http.client, sys, time
port = int(sys.argv[1])
def request(c, stream):
    body = '{"model":"bench","stream":%s,"max_tokens":8,"messages":[{"role":"user","content":"hi"}]}' % ("true" if stream else "false")
    c.request("POST", "/v1/chat/completions", body, {"Authorization": "Bearer sk-bench", "Content-Type": "application/json"})
    r = c.getresponse()
    r.read()
    assert r.status == 200, r.status
for i in range(40):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    request(c, i % 2 == 1)
    c.close()
kept = [http.client.HTTPConnection("127.0.0.1", port, timeout=60) for _ in range(20)]
for c in kept:
    request(c, False)
time.sleep(4)  # past server.park_idle_after (1 s): each is parked, then used again
for c in kept:
    request(c, True)
    c.close()
PY
curl -sf -o /dev/null "http://127.0.0.1:$AOT_ADMIN/metrics"
callgrind_control -d "$gateway" >/dev/null # valgrind runs as the PID it was started with
sleep 2
python3 perf/code_order.py "$BINARY" "$WORK/callgrind.out.1" src/AotProxy/aotproxy.order
rm -rf "$WORK"
