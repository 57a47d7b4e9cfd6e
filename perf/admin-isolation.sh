#!/usr/bin/env bash
# perf/admin-isolation.sh: does admin work move the data plane's latency? (issue 15, item 4)
#
#   perf/admin-isolation.sh                       3 runs of the AOT binary, ~3 min with the ledger
#   AOTPROXY_BINARY=/path/to/aotproxy perf/admin-isolation.sh --runs 1 --rows 100000
#
# What it runs, all on 127.0.0.1 (ports BASE..BASE+9, checked free first):
#   ledger   ROWS rows (default 1,000,000) in the gateway's own schema: the gateway creates the
#            file, then python3's sqlite3 inserts rows one minute apart, 16 tenants, in one statement
#   worker   `aotproxy simulate` (decode 1,000 tokens/s: a 4-token completion takes ~5 ms)
#   gateway  `aotproxy serve` on that ledger (its socket threads as shipped: inline completions,
#            one epoll thread per core)
#   load     h2load --h1, a fixed RATE (default 200/s) of non-stream chat completions over 8
#            connections for DURATION seconds (default 10), per-request latency from its log
#   admin    (b) only: one keep-alive connection sending GET /api/usage?by=day (a scan of every
#            row) back to back for the whole phase. Keep-alive matters: Kestrel starts a
#            connection's first request on the thread pool, later ones on the epoll thread.
# Each run measures (a) the load alone, then (b) the load with the admin loop, on the same gateway.
#
# Output: per run p50/p99 (ms) of (a) and (b), usage answers in (b), the ratio p99(b)/p99(a),
# and the medians over the runs, on stdout and in perf/reports/admin-isolation-STAMP.md.
# Every process it starts is stopped by its PID on exit.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
cd "$root"
FLEET_TAG=admin-isolation.sh
# shellcheck source=perf/lib/fleet.sh
source perf/lib/fleet.sh

RUNS=3
ROWS=1000000
RATE=200
DURATION=10
BASE=18401
CONNECTIONS=8
KEY=sk-isolation
MODEL=isolation-model
COMMAND_LINE="perf/admin-isolation.sh${*:+ $*}"

usage() { sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'; }

while (($#)); do
  case "$1" in
    --runs) RUNS="$2"; shift ;;
    --rows) ROWS="$2"; shift ;;
    --rate) RATE="$2"; shift ;;
    --duration) DURATION="$2"; shift ;;
    --base-port) BASE="$2"; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "admin-isolation.sh: unknown option $1 (see --help)" >&2; exit 1 ;;
  esac
  shift
done
[[ $RUNS =~ ^[1-9][0-9]?$ && $ROWS =~ ^[0-9]+$ && $RATE =~ ^[1-9][0-9]*$ && $DURATION =~ ^[1-9][0-9]*$ ]] ||
  { echo "admin-isolation.sh: --runs 1-99, --rows N, --rate N, --duration SECONDS" >&2; exit 1; }
command -v h2load >/dev/null || { echo "admin-isolation.sh: h2load is missing (apt-get install nghttp2-client)" >&2; exit 1; }

BINARY=$(fleet_binary)
WORKER_PORT=$BASE
GATEWAY_PORT=$((BASE + 8))
ADMIN_PORT=$((BASE + 9))
fleet_check_ports "$WORKER_PORT" "$GATEWAY_PORT" "$ADMIN_PORT"

STAMP=$(date +%Y%m%d-%H%M%S)
mkdir -p perf/reports
WORK=$(mktemp -d /tmp/admin-isolation-XXXXXX)
REPORT="perf/reports/admin-isolation-$STAMP.md"
trap 'fleet_stop_all; rm -rf "$WORK"' EXIT

KEY_SHA=$(printf '%s' "$KEY" | sha256sum | cut -d' ' -f1)
{
  fleet_gateway_toml "$GATEWAY_PORT" "$ADMIN_PORT" round_robin
  cat <<TOML

[ledger]
path = "$WORK/usage.db"

[[workers]]
name = "sim"
url = "http://127.0.0.1:$WORKER_PORT"
models = ["$MODEL"]

[[tenants]]
name = "isolation"
api_key_sha256 = ["$KEY_SHA"]
models = ["*"]
TOML
} >"$WORK/aotproxy.toml"
printf '%s' "{\"model\":\"$MODEL\",\"messages\":[{\"role\":\"user\",\"content\":\"Say something about proxies.\"}],\"max_tokens\":4}" >"$WORK/request.json"

# The gateway makes the file and its schema; the rows go in while it is stopped.
fleet_start_gateway "$BINARY" "$WORK/aotproxy.toml" "$WORK/gateway-schema.log" 2>/dev/null
fleet_stop "$fleet_last_pid"
echo "admin-isolation.sh: writing $ROWS ledger rows" >&2
python3 - "$WORK/usage.db" "$ROWS" "$MODEL" <<'EOF'
import sqlite3, sys
path, rows, model = sys.argv[1], int(sys.argv[2]), sys.argv[3]
db = sqlite3.connect(path, isolation_level=None)
db.execute(f"""
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ? - 1)
INSERT INTO requests (request_id, time, tenant, key_id, class, model, worker, prompt_tokens,
  completion_tokens, cached_tokens, reasoning_tokens, estimated, queue_wait_ms, ttft_ms,
  duration_ms, status, outcome, cost_nanos)
SELECT printf('r%08d', i), 1767225600000 + i * 60000, 'tenant-' || (i % 16), 'abcd1234', 'default',
  ?, 'sim', 100 + i % 50, 20 + i % 30, i % 10, 0, 0, 0.5, 12.5, 250.0,
  CASE WHEN i % 97 = 0 THEN 503 ELSE 200 END, 'admitted', 1000
FROM n""", (rows, model))
db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
EOF

AOTPROXY_LOG_LEVEL=warning fleet_start_worker "$BINARY" "$WORKER_PORT" "$WORK/worker.log" --model "$MODEL" --decode-tps 1000 --max-num-seqs 256
AOTPROXY_LOG_LEVEL=warning fleet_start_gateway "$BINARY" "$WORK/aotproxy.toml" "$WORK/gateway.log"
GATEWAY_PID=$fleet_last_pid

# One phase: h2load at RATE for DURATION; prints "p50_ms p99_ms requests non_200".
load_phase() { # OUTFILE
  local per_connection
  per_connection=$(python3 -c "print(max(1, round($RATE / $CONNECTIONS)))")
  h2load --h1 -t1 -c"$CONNECTIONS" --rps="$per_connection" -D "$DURATION" --warm-up-time=1 \
    -d "$WORK/request.json" -H "Content-Type: application/json" -H "Authorization: Bearer $KEY" \
    --log-file="$1.log" "http://127.0.0.1:$GATEWAY_PORT/v1/chat/completions" >"$1" 2>&1
  python3 - "$1.log" <<'EOF'
import sys
rows = [line.split("\t") for line in open(sys.argv[1]) if line.strip()]
lat = sorted(int(r[2]) for r in rows)
def pct(p):
    return lat[min(len(lat) - 1, max(0, int(round(p / 100 * len(lat) + 0.5)) - 1))] / 1000
print(f"{pct(50):.2f} {pct(99):.2f} {len(rows)} {sum(1 for r in rows if r[1] != '200')}")
EOF
}

# The admin client: GET /api/usage?by=day back to back on one keep-alive connection until
# STOPFILE exists (at most DURATION + 30 s); prints how many answers were 200.
admin_loop() { # STOPFILE OUTFILE
  python3 - "$ADMIN_PORT" "$1" "$((DURATION + 30))" >"$2" <<'EOF'
import http.client, os, sys, time
port, stop, limit = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
ok = other = 0
deadline = time.monotonic() + limit
while not os.path.exists(stop) and time.monotonic() < deadline:
    conn.request("GET", "/api/usage?by=day")
    response = conn.getresponse()
    response.read()
    if response.status == 200:
        ok += 1
    else:
        other += 1
print(ok, other)
EOF
}

RESULTS="$WORK/results.txt"
: >"$RESULTS"
for run in $(seq 1 "$RUNS"); do
  read -r a50 a99 an anon <<<"$(load_phase "$WORK/a-$run.txt")"
  rm -f "$WORK/stop"
  admin_loop "$WORK/stop" "$WORK/admin-$run.txt" &
  admin_pid=$!
  read -r b50 b99 bn bnon <<<"$(load_phase "$WORK/b-$run.txt")"
  touch "$WORK/stop"
  wait "$admin_pid"
  read -r usage_ok usage_other <"$WORK/admin-$run.txt"
  echo "$run $a50 $a99 $an $anon $b50 $b99 $bn $bnon $usage_ok $usage_other" | tee -a "$RESULTS" >&2
done
kill -0 "$GATEWAY_PID" 2>/dev/null || { echo "admin-isolation.sh: the gateway exited during the runs" >&2; cat "$WORK/gateway.log" >&2; exit 3; }

python3 - "$RESULTS" "$COMMAND_LINE" "$BINARY" "$ROWS" "$RATE" "$DURATION" "$CONNECTIONS" <<'EOF' | tee "$REPORT"
import statistics, subprocess, sys
path, command, binary, rows, rate, duration, connections = sys.argv[1:]
runs = [line.split() for line in open(path) if line.strip()]
cpu = subprocess.run("lscpu | grep 'Model name' | cut -d: -f2", shell=True, capture_output=True, text=True).stdout.strip()
print(f"`{command}` ({binary}); {rows} ledger rows; {rate} req/s over {connections} connections for {duration} s per phase; {cpu}, {subprocess.run('nproc', capture_output=True, text=True).stdout.strip()} cores\n")
print("| run | (a) p50 ms | (a) p99 ms | (a) requests | (b) p50 ms | (b) p99 ms | (b) requests | non-200 (a/b) | usage answers in (b) | p99(b)/p99(a) |")
print("|---|---|---|---|---|---|---|---|---|---|")
ratios = []
for r in runs:
    run, a50, a99, an, anon, b50, b99, bn, bnon, ok, other = r
    ratio = float(b99) / float(a99)
    ratios.append(ratio)
    print(f"| {run} | {a50} | {a99} | {an} | {b50} | {b99} | {bn} | {anon}/{bnon} | {ok} ({other} not 200) | {ratio:.2f} |")
med = lambda i: statistics.median(float(r[i]) for r in runs)
print(f"| median | {med(1):.2f} | {med(2):.2f} | | {med(5):.2f} | {med(6):.2f} | | | {med(9):.0f} | {statistics.median(ratios):.2f} |")
EOF
