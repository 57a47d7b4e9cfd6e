#!/usr/bin/env bash
# What shipping the ledger to Postgres costs (issue 17): the lone AOT binary in two setups, in one
# session, alternated, under the same load (a profile, not a test):
#
#   (a) [ledger] only (today's default: every request a row in the local SQLite file);
#   (b) [ledger] + [store] postgres_url: the same, and LedgerShipper copies the file's rows to a
#       local PostgreSQL this script starts itself (initdb + pg_ctl as the postgres user, a free
#       port, a temp dir; Debian's postgresql with its default settings; stopped at the end).
#
# Both gateways run side by side on core 1, in front of one `aotproxy simulate` worker (--speed
# 100, 1-token answers); wrk, the worker and Postgres share core 0. Each round runs wrk against
# (a) then (b), or (b) then (a) (the order turns every round), for --duration seconds at
# --connections connections; after each run the script waits until the gateway's ledger queue is
# empty (and, for (b), every row shipped) before it reads the CPU, so a run's figures include the
# work its rows cause. Per setup: the median req/s, latency, the gateway's CPU per request (utime +
# stime from /proc), allocated bytes per request (/api/status), RSS before and after; Postgres's
# own CPU (its process tree) apart; and (b) / (a). For (b), sampled every 100 ms from /metrics: rows
# shipped per second under the load, the most rows spooled (llm_gateway_ledger_spooled_rows), and
# the time from the load's end until every row is shipped.
#
# Then the replay, --replays times: Postgres is stopped, --replay-rows requests (h2load -n) spool
# their rows, Postgres starts again, and the script times the shipper until every row is shipped
# (rows/s), with the gateway's and Postgres's CPU meanwhile. Last, the check: the shared ledger
# holds exactly the rows the local file holds (count, distinct row ids, last row id, token and
# cost sums), so nothing was lost or doubled.
#
#   perf/ledger.sh                  5 rounds of 10 s, 3 replays of 100,000 rows (~6 min)
#   perf/ledger.sh --quick          3 rounds of 5 s, 1 replay of 20,000 rows (~2 min)
#
# Options:
#   --rounds N          alternated rounds (default 5; at least 3)
#   --duration S        seconds per wrk run (default 10)
#   --connections N     wrk and h2load connections (default 64)
#   --rate N            a fixed rate instead of the closed loop: h2load --rps, N requests per second
#                       over the connections, in both setups (below the saturation point, where
#                       the gateways' CPU per request compares without a throughput difference)
#   --replay-rows N     rows spooled per replay (default 100000)
#   --replays N         replays (default 3; 0: none)
#   --nice N            run what it starts at nice N (e.g. -10 beside other work)
#   --profile           perf record the gateway (b) during the first replay, when it does nothing
#                       but ship: DIR/replay-profile.txt (needs perf)
#   --no-build          use artifacts/aot/aotproxy as it is (default: publish it first, ~2-4 min)
#   --base-port N       the worker on N, (a) on N+1 (admin N+2), (b) on N+3 (admin N+4), Postgres
#                       on N+5 (default 18601, or LEDGER_BASE_PORT); checked free first
#   --out DIR           reports (default perf/reports/ledger-YYYYmmdd-HHMMSS)
# Environment:
#   AOTPROXY_BINARY     the gateway binary (default: artifacts/aot/aotproxy)
#
# Output: DIR/summary.md (also on stdout); raw data beside it (runs.csv, replay.csv, check.csv,
# every wrk/h2load output, the sampler files, the gateways' and Postgres's logs). Exit code: 0,
# 2 when the shared ledger does not hold exactly the file's rows, 1 usage or tool errors, 3 when
# something could not start. Everything started here is stopped by its PID; Postgres by pg_ctl.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
cd "$root"

cmdline="perf/ledger.sh $*"

usage() {
  sed -n '2,/^set -e/{/^set -e/d;p}' "$0" | sed 's/^# \{0,1\}//'
  exit 1
}

number() { [[ "$2" =~ ^[0-9]+$ ]] || { echo "ledger.sh: $1 takes a number" >&2; exit 1; }; }

rounds=5
duration=10
connections=64
replay_rows=100000
replays=3
rate=""
profile=0
nice_level=0
build=1
base_port="${LEDGER_BASE_PORT:-18601}"
out=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    -h | --help) usage ;;
    --quick) rounds=3; duration=5; replay_rows=20000; replays=1; shift ;;
    --rounds) number "$1" "${2:-}"; rounds="$2"; ((rounds >= 3)) || { echo "ledger.sh: --rounds takes 3 or more" >&2; exit 1; }; shift 2 ;;
    --duration) number "$1" "${2:-}"; duration="$2"; shift 2 ;;
    --connections) number "$1" "${2:-}"; connections="$2"; shift 2 ;;
    --rate) number "$1" "${2:-}"; rate="$2"; shift 2 ;;
    --replay-rows) number "$1" "${2:-}"; replay_rows="$2"; shift 2 ;;
    --replays) number "$1" "${2:-}"; replays="$2"; shift 2 ;;
    --nice) [[ "${2:-}" =~ ^-?[0-9]+$ ]] || { echo "ledger.sh: --nice takes a number" >&2; exit 1; }; nice_level="$2"; shift 2 ;;
    --no-build) build=0; shift ;;
    --profile) profile=1; shift ;;
    --base-port)
      [[ "${2:-}" =~ ^[0-9]+$ && "$2" -ge 1024 && "$2" -le 65000 ]] || { echo "ledger.sh: --base-port takes a port from 1024 to 65000" >&2; exit 1; }
      base_port="$2"; shift 2 ;;
    --out) [[ $# -ge 2 ]] || usage; out="$2"; shift 2 ;;
    *) echo "ledger.sh: unknown argument $1" >&2; usage ;;
  esac
done

FLEET_TAG="ledger.sh"
# shellcheck source=perf/lib/fleet.sh
source "$here/lib/fleet.sh"

for tool in wrk h2load python3 taskset curl; do
  command -v "$tool" >/dev/null || { echo "ledger.sh: needs $tool (apt-get install wrk nghttp2-client python3 util-linux curl)" >&2; exit 1; }
done
pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[[ -n "$pg_bin" && -x "$pg_bin/initdb" && -x "$pg_bin/pg_ctl" ]] || { echo "ledger.sh: needs PostgreSQL (apt-get install postgresql)" >&2; exit 1; }
command -v psql >/dev/null || { echo "ledger.sh: needs psql (apt-get install postgresql-client)" >&2; exit 1; }

# The report's arithmetic first: a wrong tree sum or median would make every figure below a lie.
python3 -m unittest discover -s "$here" -p 'ledger_report_test.py' >/dev/null 2>&1 || {
  python3 -m unittest discover -s "$here" -p 'ledger_report_test.py' >&2 || true
  echo "ledger.sh: perf/ledger_report_test.py fails: the figures could not be trusted" >&2
  exit 1
}

model="bench"
key="sk-bench"
sim_port=$base_port
pg_port=$((base_port + 5))
setups=(a b)
declare -A port_of=([a]=$((base_port + 1)) [b]=$((base_port + 3)))
declare -A admin_of=([a]=$((base_port + 2)) [b]=$((base_port + 4)))
declare -A pid_of=()
report_py="$here/ledger_report.py"
clk_tck=$(getconf CLK_TCK)

[[ -n "$out" ]] || out="perf/reports/ledger-$(date -u +%Y%m%d-%H%M%S)"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
fleet_check_ports "$sim_port" "${port_of[a]}" "${admin_of[a]}" "${port_of[b]}" "${admin_of[b]}" "$pg_port" || exit 3

if ((build)); then
  echo "ledger.sh: publishing the AOT binary (~2-4 min)" >&2
  dotnet publish src/AotProxy/AotProxy.csproj -c Release -r linux-x64 -o artifacts/aot >"$out/publish.log" 2>&1 || { tail -20 "$out/publish.log" >&2; exit 1; }
fi
binary="$(fleet_binary)" || exit 1

# ---------------------------------------------------------------- Postgres, as the postgres user

pg_dir=""
as_pg=()
[[ $EUID -ne 0 ]] || as_pg=(runuser -u postgres --) # PostgreSQL refuses to run as root

pg_start() {
  nice -n "$nice_level" taskset -c 0 "${as_pg[@]}" "$pg_bin/pg_ctl" -D "$pg_dir/data" -l "$pg_dir/postgres.log" -w -t 30 \
    -o "-p $pg_port -c listen_addresses=127.0.0.1 -c unix_socket_directories=$pg_dir" start >>"$out/pg_ctl.log" 2>&1 || {
    echo "ledger.sh: postgres did not start:" >&2
    cat "$out/pg_ctl.log" "$pg_dir/postgres.log" >&2
    return 3
  }
  pg_pid=$(head -1 "$pg_dir/data/postmaster.pid")
}

pg_stop() {
  "${as_pg[@]}" "$pg_bin/pg_ctl" -D "$pg_dir/data" -m fast -w -t 30 stop >>"$out/pg_ctl.log" 2>&1
}

psql_at() { psql -h 127.0.0.1 -p "$pg_port" -U postgres -d postgres -At -F, -c "$1"; }

cleanup() {
  fleet_stop_all
  if [[ -n "$pg_dir" ]]; then
    [[ ! -f "$pg_dir/data/postmaster.pid" ]] || pg_stop || true
    cp -f "$pg_dir/postgres.log" "$out/postgres.log" 2>/dev/null || true
    rm -rf "$pg_dir"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

pg_dir=$(mktemp -d /tmp/aotproxy-ledger-pg-XXXXXX)
[[ $EUID -ne 0 ]] || chown postgres:postgres "$pg_dir"
"${as_pg[@]}" "$pg_bin/initdb" -D "$pg_dir/data" -U postgres -E UTF8 --auth=trust --no-instructions >"$out/initdb.log" 2>&1 || {
  cat "$out/initdb.log" >&2
  exit 3
}
pg_start || exit 3

# ---------------------------------------------------------------- the worker and both gateways

write_config() { # SETUP FILE
  local setup="$1"
  {
    echo "# Written by perf/ledger.sh: setup ($setup)."
    fleet_gateway_toml "${port_of[$setup]}" "${admin_of[$setup]}" round_robin
    printf '\n[ledger]\npath = "ledger-%s.db"\n' "$setup"
    [[ $setup == a ]] || printf '\n[store]\npostgres_url = "postgres://postgres@127.0.0.1:%s/postgres"\n' "$pg_port"
    printf '\n[[tenants]]\nname = "bench"\napi_key_sha256 = ["%s"]\nmodels = ["*"]\n' "$("$binary" hash-key "$key")"
    fleet_workers_toml "$model" 4096 "$sim_port"
  } >"$2"
  fleet_check_config "$binary" "$2"
}

fleet_launcher=(nice -n "$nice_level" taskset -c 0)
fleet_start_worker "$binary" "$sim_port" "$out/sim.log" --model "$model" --name sim-0 --speed 100 --max-num-seqs 1024 || exit 3
fleet_launcher=(nice -n "$nice_level" taskset -c 1)
for s in "${setups[@]}"; do
  write_config "$s" "$out/gateway-$s.toml" || exit 1
  fleet_start_gateway "$binary" "$out/gateway-$s.toml" "$out/gateway-$s.log" || exit 3
  pid_of[$s]=$fleet_last_pid
done
fleet_launcher=()
fleet_wrk_script '{"model":"'"$model"'","messages":[{"role":"user","content":"Say hello."}],"max_tokens":1}' "$key" >"$out/post.lua"
printf '%s' '{"model":"'"$model"'","messages":[{"role":"user","content":"Say hello."}],"max_tokens":1}' >"$out/request.json"

# ---------------------------------------------------------------- measuring

ticks() { python3 "$report_py" ticks "$@"; }
metrics_url() { echo "http://127.0.0.1:${admin_of[$1]}/metrics"; }
allocated() {
  curl -sf --max-time 5 "http://127.0.0.1:${admin_of[$1]}/api/status" | python3 -c 'import json, sys; print(json.load(sys.stdin)["runtime"]["allocated_bytes"])'
}
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
now() { date +%s.%N; }

sampler_pid=""
start_sampler() { # FILE SETUP INTERVAL
  python3 "$report_py" sample "$1" "$3" "$(metrics_url "$2")" &
  sampler_pid=$!
}
stop_sampler() {
  kill -TERM "$sampler_pid" 2>/dev/null || true
  wait "$sampler_pid" 2>/dev/null || true
  sampler_pid=""
}

# settle SETUP: until its ledger queue is empty and, for (b), every row shipped; prints the epoch.
settle() {
  if [[ $1 == b ]]; then
    python3 "$report_py" wait "$(metrics_url b)" drained --timeout 120 | cut -d' ' -f1
  else
    python3 "$report_py" wait "$(metrics_url a)" written --timeout 120 | cut -d' ' -f1
  fi
}

# run_load OUT PORT: one run of the load against PORT, its output (ending in a RESULT line) in OUT.
run_load() {
  if [[ -z "$rate" ]]; then
    nice -n "$nice_level" taskset -c 0 wrk -t1 -c"$connections" -d"${duration}s" --latency -s "$out/post.lua" \
      "http://127.0.0.1:$2/v1/chat/completions" >"$1" 2>&1
    return
  fi
  # h2load paces each connection on its own timer: N connections at rate / N each.
  nice -n "$nice_level" taskset -c 0 h2load --h1 -t1 -c"$connections" --rps="$(python3 -c "print(max(1, round($rate / $connections)))")" \
    -D "$duration" -d "$out/request.json" -H "Content-Type: application/json" -H "Authorization: Bearer $key" \
    --log-file="$1.log" "http://127.0.0.1:$2/v1/chat/completions" >"$1" 2>&1 || true
  python3 "$report_py" h2load "$1" "$1.log" >>"$1"
}

measure() { # ROUND SETUP
  local round="$1" setup="$2" pid="${pid_of[$2]}" samples="$out/samples-$1-$2.txt" result
  local cpu0 cpu1 pg0 pg1 alloc0 alloc1 rss0 rss1 t0 t1 settled drain=""
  start_sampler "$samples" "$setup" 0.1
  sleep 0.3
  cpu0=$(ticks "$pid"); pg0=$(ticks "$pg_pid" --tree); alloc0=$(allocated "$setup"); rss0=$(rss_kib "$pid"); t0=$(now)
  run_load "$out/load-$round-$setup.txt" "${port_of[$setup]}"
  t1=$(now)
  settled=$(settle "$setup") || { echo "ledger.sh: ($setup) did not settle after round $round" >&2; return 1; }
  cpu1=$(ticks "$pid"); pg1=$(ticks "$pg_pid" --tree); alloc1=$(allocated "$setup"); rss1=$(rss_kib "$pid")
  stop_sampler
  [[ $setup == a ]] || drain=$(python3 -c "print(f'{max(0.0, $settled - $t1):.2f}')")
  result=$(grep '^RESULT' "$out/load-$round-$setup.txt") || { echo "ledger.sh: no load result:" >&2; cat "$out/load-$round-$setup.txt" >&2; return 1; }
  python3 "$report_py" row "$round" "$setup" "$result" $((cpu1 - cpu0)) "$clk_tck" "$alloc0" "$alloc1" "$rss0" "$rss1" \
    $((pg1 - pg0)) "$samples" "$t0" "$t1" "$drain" >>"$out/runs.csv.body"
  echo "ledger.sh: round $round ($setup): $(tail -1 "$out/runs.csv.body")" >&2
}

replay() { # N
  local n="$1" samples="$out/samples-replay-$1.txt" spooled answered cpu0 cpu1 pg0 pg1 alloc0 alloc1 ready done_at span
  pg_stop || { echo "ledger.sh: postgres did not stop" >&2; return 1; }
  nice -n "$nice_level" taskset -c 0 h2load --h1 -t1 -c"$connections" -n "$replay_rows" -d "$out/request.json" \
    -H "Content-Type: application/json" -H "Authorization: Bearer $key" \
    "http://127.0.0.1:${port_of[b]}/v1/chat/completions" >"$out/h2load-replay-$n.txt" 2>&1
  answered=$(sed -n 's/^requests: .* \([0-9]*\) done.*/\1/p' "$out/h2load-replay-$n.txt")
  # every row in the file, shipped before or waiting: "EPOCH ROWS SHIPPED SPOOLED"
  spooled=$(python3 "$report_py" wait "$(metrics_url b)" spooled --timeout 60 | cut -d' ' -f4) || return 1
  start_sampler "$samples" b 0.05
  cpu0=$(ticks "${pid_of[b]}"); alloc0=$(allocated b)
  pg_start || return 3
  ready=$(now)
  pg0=$(ticks "$pg_pid" --tree)
  local perf_pid=""
  if ((profile && n == 1)); then
    perf record -F 999 -g -p "${pid_of[b]}" -o "$out/replay.perf.data" >"$out/perf-record.log" 2>&1 &
    perf_pid=$!
  fi
  done_at=$(python3 "$report_py" wait "$(metrics_url b)" drained --timeout 600 | cut -d' ' -f1) || return 1
  if [[ -n "$perf_pid" ]]; then
    kill -INT "$perf_pid" 2>/dev/null || true
    wait "$perf_pid" 2>/dev/null || true
    perf report -i "$out/replay.perf.data" --no-children --sort dso,sym --percent-limit 0.7 --stdio >"$out/replay-profile.txt" 2>/dev/null || true
  fi
  cpu1=$(ticks "${pid_of[b]}"); alloc1=$(allocated b); pg1=$(ticks "$pg_pid" --tree)
  stop_sampler
  span=$(python3 -c "
import sys; sys.path.insert(0, '$here')
from ledger_report import read_samples, shipping_span
s = shipping_span(read_samples('$samples'), $ready)
print(f'{s[1] - s[0]:.3f}' if s else '0')")
  python3 -c "print(f'$n,$spooled,$answered,{$done_at - $ready:.3f},$span,{$((cpu1 - cpu0)) / $clk_tck:.2f},$((alloc1 - alloc0)),{$((pg1 - pg0)) / $clk_tck:.2f}')" >>"$out/replay.csv"
  echo "ledger.sh: replay $n: $(tail -1 "$out/replay.csv")" >&2
}

check() {
  local file="$out/ledger-b.db" id
  id=$(python3 -c "import sqlite3; print(sqlite3.connect('file:$file?mode=ro', uri=True).execute(\"SELECT value FROM meta WHERE key = 'ledger_id'\").fetchone()[0])")
  echo "where,rows,distinct_ids,max_id,prompt,completion,cost" >"$out/check.csv"
  python3 -c "
import sqlite3
r = sqlite3.connect('file:$file?mode=ro', uri=True).execute('SELECT count(*), count(DISTINCT id), coalesce(max(id), 0), coalesce(sum(prompt_tokens), 0), coalesce(sum(completion_tokens), 0), coalesce(sum(cost_nanos), 0) FROM requests').fetchone()
print('local file (b),' + ','.join(map(str, r)))" >>"$out/check.csv"
  echo "shared ledger,$(psql_at "SELECT count(*), count(DISTINCT row_id), coalesce(max(row_id), 0), coalesce(sum(prompt_tokens), 0), coalesce(sum(completion_tokens), 0), coalesce(sum(cost_nanos), 0) FROM ledger WHERE ledger_id = '$id'")" >>"$out/check.csv"
  {
    echo "ledger_sources.shipped: $(psql_at "SELECT shipped FROM ledger_sources WHERE ledger_id = '$id'"); rows of other ledger ids: $(psql_at "SELECT count(*) FROM ledger WHERE ledger_id <> '$id'")."
    # Catalog churn: a temp staging table made again for every batch shows as pg_class inserts.
    echo "pg_class rows inserted / deleted since Postgres started: $(psql_at "SELECT n_tup_ins || ' / ' || n_tup_del FROM pg_stat_sys_tables WHERE relname = 'pg_class'"); transactions committed: $(psql_at "SELECT xact_commit FROM pg_stat_database WHERE datname = 'postgres'")."
  } >"$out/check-sources.txt"
}

# ---------------------------------------------------------------- run

started=$SECONDS
echo "ledger.sh: warm-up, 3 s per gateway -> $out" >&2
for s in "${setups[@]}"; do
  nice -n "$nice_level" taskset -c 0 wrk -t1 -c"$connections" -d3s -s "$out/post.lua" "http://127.0.0.1:${port_of[$s]}/v1/chat/completions" >"$out/warm-$s.txt" 2>&1
  settle "$s" >/dev/null || exit 1
done
: >"$out/runs.csv.body"
for round in $(seq 1 "$rounds"); do
  if ((round % 2)); then order=(a b); else order=(b a); fi
  for s in "${order[@]}"; do measure "$round" "$s" || exit 1; done
done
python3 "$report_py" header | cat - "$out/runs.csv.body" >"$out/runs.csv"
echo "replay,rows,answered,seconds,ship_seconds,cpu_s,alloc_bytes,pg_cpu_s" >"$out/replay.csv"
for n in $(seq 1 "$replays"); do replay "$n" || exit $?; done
check

status=0
{
  echo "# Shipping the ledger to Postgres (issue 17): perf/ledger.sh"
  echo
  echo "Command: \`$cmdline\`, $((SECONDS - started)) s; $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; load average $load_start at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end; $("$pg_bin/postgres" --version); $(git rev-parse --short HEAD 2>/dev/null || echo "?"). The gateways on core 1; wrk, h2load, the worker and Postgres on core 0; $connections connections, $duration s per run ($([[ -n "$rate" ]] && echo "h2load at $rate req/s" || echo "wrk, closed loop")), 1-token chats."
  echo
  python3 "$report_py" report "$out" || status=$?
  echo
  cat "$out/check-sources.txt"
} >"$out/summary.md"
cat "$out/summary.md"
exit "$status"
