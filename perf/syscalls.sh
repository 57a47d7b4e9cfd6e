#!/usr/bin/env bash
# perf/syscalls.sh: system calls per request (strace -c -f) of AotProxy on server.transport
# "sockets" and "epoll", and of nginx, proxying the same POST /v1/chat/completions to one nginx
# backend (`return 200` with a 1024-byte completion), issue 22.
#
#   perf/syscalls.sh [--requests N] [--connections C] [--binary PATH]
#
# Each proxy is pinned to core 1, the backend and h2load to core 0; strace attaches to the
# proxy after a warm-up and counts the syscalls of exactly N requests (h2load -n N, HTTP/1.1,
# C connections). strace slows the traced process a lot: the counts are what it asks the kernel
# for, not its speed. Ports 18381-18384 on 127.0.0.1 (+ PERF_PORT_OFFSET). Output: one Markdown table on stdout and
# the raw `strace -c` summaries in perf/reports/syscalls-STAMP/.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
REQUESTS=20000 CONNECTIONS=64 BINARY=${AOTPROXY_BINARY:-artifacts/aot/aotproxy}
while (($#)); do
  case $1 in
    --requests) REQUESTS=$2; shift ;;
    --connections) CONNECTIONS=$2; shift ;;
    --binary) BINARY=$2; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
# PERF_PORT_OFFSET=N moves every port below by N (two engineers' runs side by side).
readonly PORT_OFFSET=${PERF_PORT_OFFSET:-0}
HOST=127.0.0.1 BACKEND=$((18381 + PORT_OFFSET)) PROXY=$((18382 + PORT_OFFSET)) ADMIN=$((18383 + PORT_OFFSET)) KEY=sk-bench
OUT="$ROOT/perf/reports/syscalls-$(date -u +%Y%m%d-%H%M%S)"
WORK=$(mktemp -d)
mkdir -p "$OUT" "$WORK/tmp"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT
for port in $BACKEND $PROXY $ADMIN; do
  if (exec 3<>"/dev/tcp/$HOST/$port") 2>/dev/null; then echo "port $port is in use" >&2; exit 1; fi
done

body=$(python3 -c 'import json; t="lorem ipsum "*80; print(json.dumps({"id":"c","object":"chat.completion","model":"bench","choices":[{"index":0,"message":{"role":"assistant","content":t[:820]},"finish_reason":"length"}],"usage":{"prompt_tokens":12,"total_tokens":28,"completion_tokens":16}}))')
printf '%s' '{"model":"bench","messages":[{"role":"user","content":"Say something about proxies."}],"max_tokens":16}' >"$WORK/request.json"
common="daemon off; master_process off; pid WORK/NAME.pid; error_log WORK/NAME-error.log warn; events { worker_connections 4096; }"
tmp="client_body_temp_path $WORK/tmp; proxy_temp_path $WORK/tmp; fastcgi_temp_path $WORK/tmp; uwsgi_temp_path $WORK/tmp; scgi_temp_path $WORK/tmp; access_log off; keepalive_requests 10000000;"
echo "${common//WORK/$WORK}" | sed "s/NAME/backend/g" >"$WORK/backend.conf"
echo "http { $tmp server { listen $HOST:$BACKEND; location / { default_type application/json; return 200 '$body'; } } }" >>"$WORK/backend.conf"
echo "${common//WORK/$WORK}" | sed "s/NAME/proxy/g" >"$WORK/proxy.conf"
echo "http { $tmp upstream b { server $HOST:$BACKEND; keepalive 256; keepalive_requests 10000000; } server { listen $HOST:$PROXY; location / { proxy_pass http://b; proxy_http_version 1.1; proxy_set_header Connection \"\"; proxy_buffering off; } } }" >>"$WORK/proxy.conf"
sha=$(printf '%s' "$KEY" | sha256sum | cut -d' ' -f1)
for transport in sockets epoll; do
  printf '[server]\nlisten = "%s:%s"\nadmin_listen = "%s:%s"\nshutdown_grace = "2s"\ntransport = "%s"\n\n[routing]\nstrategy = "round_robin"\n\n[ledger]\npath = ""\n\n[[workers]]\nname = "b"\nurl = "http://%s:%s"\nmodels = ["bench"]\nmax_concurrency = 4096\n\n[[tenants]]\nname = "bench"\napi_key_sha256 = ["%s"]\nmodels = ["*"]\n' \
    $HOST $PROXY $HOST $ADMIN "$transport" $HOST $BACKEND "$sha" >"$WORK/aot-$transport.toml"
done

wait_port() { for _ in $(seq 100); do (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 never opened" >&2; exit 1; }
load() { # N
  taskset -c 0 h2load --h1 -n "$1" -c "$CONNECTIONS" -m 1 -d "$WORK/request.json" -H "Content-Type: application/json" \
    -H "Authorization: Bearer $KEY" "http://$HOST:$PROXY/v1/chat/completions"
}

taskset -c 0 nginx -p "$WORK" -e "$WORK/backend-error.log" -c "$WORK/backend.conf" & PIDS+=($!)
wait_port $BACKEND
echo "| proxy | requests | syscalls | per request | recv-side calls (read/recv*) per request | of which failed (EAGAIN) | epoll_wait per request | send-side (write/send*) per request |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
for proxy in aot-sockets aot-epoll nginx; do
  case $proxy in
    nginx) taskset -c 1 nginx -p "$WORK" -e "$WORK/proxy-error.log" -c "$WORK/proxy.conf" & pid=$! ;;
    *) AOTPROXY_LOG_LEVEL=warning taskset -c 1 "$BINARY" serve --config "$WORK/$proxy.toml" >"$WORK/$proxy.log" 2>&1 & pid=$! ;;
  esac
  PIDS+=($pid)
  wait_port $PROXY
  load 5000 >"$OUT/$proxy-warmup.txt"
  strace -c -f -p "$pid" -o "$OUT/$proxy-strace.txt" & tracer=$!
  sleep 1
  load "$REQUESTS" >"$OUT/$proxy-h2load.txt"
  kill -INT $tracer; wait $tracer 2>/dev/null || true
  ok=$(sed -n 's/.*status codes: \([0-9]*\) 2xx.*/\1/p' "$OUT/$proxy-h2load.txt")
  python3 - "$OUT/$proxy-strace.txt" "$proxy" "$ok" <<'PY'
import re, sys
path, proxy, ok = sys.argv[1], sys.argv[2], int(sys.argv[3] or 0)
calls, errors = {}, {}
for line in open(path):
    f = line.split()
    if len(f) >= 5 and f[0][0].isdigit() and f[-1] != "total":
        name = f[-1]; n = int(f[3]); e = int(f[4]) if len(f) == 6 else 0
        calls[name] = n; errors[name] = e
total = sum(calls.values())
recv = [k for k in calls if k in ("read", "recvfrom", "recvmsg", "readv")]
send = [k for k in calls if k in ("write", "sendto", "sendmsg", "writev")]
per = lambda n: f"{n / ok:.2f}" if ok else "-"
print(f"| {proxy} | {ok} | {total} | {per(total)} | {per(sum(calls[k] for k in recv))} | {per(sum(errors[k] for k in recv))} | {per(calls.get('epoll_wait', 0) + calls.get('epoll_pwait', 0))} | {per(sum(calls[k] for k in send))} |")
PY
  kill "$pid"; wait "$pid" 2>/dev/null || true
  for _ in $(seq 50); do (exec 3<>"/dev/tcp/$HOST/$PROXY") 2>/dev/null || break; sleep 0.1; done
done
echo
echo "raw: $OUT"
