# shellcheck shell=bash
# Shared by the perf/*.sh fleet scripts (source it; it runs nothing by itself): start
# simulated vLLM workers and the gateway on loopback, wait for them, and stop them again, every
# one by the PID this shell started it with. Nothing is ever killed by name.
#
# The caller sets FLEET_TAG (a prefix for messages, e.g. "load.sh") and calls fleet_stop_all from
# its EXIT trap. Functions that fail print why and return 3 (the scripts' "could not start" code).

fleet_pids=()
FLEET_TAG="${FLEET_TAG:-fleet}"
# Words put before every command fleet_spawn starts: none by default; compare.sh sets
# `nice -n N taskset -c CORE` to pin each process to its core.
fleet_launcher=()

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# fleet_ports NAME=PORT...: defines each NAME (readonly) as PORT moved by PERF_PORT_OFFSET (two
# engineers' runs side by side), and adds it to FLEET_PORTS, for `fleet_check_ports $FLEET_PORTS`.
FLEET_PORTS=""
fleet_ports() {
  local pair port
  for pair in "$@"; do
    port=$((${pair#*=} + ${PERF_PORT_OFFSET:-0}))
    declare -gr "${pair%%=*}=$port"
    FLEET_PORTS+="${FLEET_PORTS:+ }$port"
  done
}

# fleet_binary: prints the gateway binary (AOTPROXY_BINARY, default artifacts/aot/aotproxy), or
# fails with how to get one.
fleet_binary() {
  local binary="${AOTPROXY_BINARY:-artifacts/aot/aotproxy}"
  if [[ ! -x "$binary" ]]; then
    echo "$FLEET_TAG: $binary is not an executable; publish it (README: The Native AOT binary) or set AOTPROXY_BINARY" >&2
    return 1
  fi
  printf '%s\n' "$binary"
}

# fleet_one_of WHAT "CHOICES" ITEM...: fails, naming the choices, unless every ITEM is one of them.
fleet_one_of() {
  local what="$1" choices="$2" item
  shift 2
  for item in "$@"; do
    [[ " $choices " == *" $item "* ]] || { echo "$FLEET_TAG: unknown $what \"$item\"; use: $choices" >&2; return 1; }
  done
}

# fleet_check_ports PORT...: fails if anything listens on one of them already.
fleet_check_ports() {
  local port
  for port in "$@"; do
    if port_open "$port"; then
      echo "$FLEET_TAG: 127.0.0.1:$port is already in use; stop what listens there first" >&2
      return 3
    fi
  done
}

# Builds the load runner before anything starts, so that compiling does not overlap a measurement.
fleet_build_runner() {
  local logs="$1"
  dotnet build -c Release perf/AotProxy.Load/AotProxy.Load.csproj -nologo -v quiet >"$logs/build.log" 2>&1 || {
    cat "$logs/build.log" >&2
    return 1
  }
}

# fleet_spawn LOG COMMAND...: starts COMMAND (after fleet_launcher) in the background, its output
# in LOG. Its PID is appended to fleet_pids and left in fleet_last_pid.
fleet_spawn() {
  local log="$1"
  shift
  "${fleet_launcher[@]}" "$@" >"$log" 2>&1 &
  fleet_last_pid=$!
  fleet_pids+=("$fleet_last_pid")
}

# fleet_wait_port PORT WHAT LOG: up to 30 s until PORT listens, as long as fleet_last_pid runs.
fleet_wait_port() {
  local _
  for _ in $(seq 1 300); do
    port_open "$1" && return 0
    kill -0 "$fleet_last_pid" 2>/dev/null || { echo "$FLEET_TAG: $2 exited:" >&2; cat "$3" >&2; return 3; }
    sleep 0.1
  done
  echo "$FLEET_TAG: $2 is not listening on port $1 after 30 s" >&2
  return 3
}

# fleet_wait_line LOG TEXT WHAT: up to 30 s until LOG has a line with TEXT, as long as
# fleet_last_pid runs.
fleet_wait_line() {
  local _
  for _ in $(seq 1 300); do
    grep -qs "$2" "$1" && return 0
    kill -0 "$fleet_last_pid" 2>/dev/null || { echo "$FLEET_TAG: $3 exited:" >&2; cat "$1" >&2; return 3; }
    sleep 0.1
  done
  echo "$FLEET_TAG: $3 printed no '$2' within 30 s" >&2
  cat "$1" >&2
  return 3
}

# fleet_start_worker BINARY PORT LOG [simulate flags...]: starts `aotproxy simulate` and waits up
# to 30 s for its port. Its PID is appended to fleet_pids and left in fleet_last_pid.
fleet_start_worker() {
  local binary="$1" port="$2" log="$3"
  shift 3
  fleet_spawn "$log" "$binary" simulate --listen "127.0.0.1:$port" "$@"
  fleet_wait_port "$port" "the worker on port $port" "$log"
}

# fleet_start_workers BINARY DIR "PORT..." [simulate flags...]: worker sim-I on the I-th port,
# its output in DIR/sim-I.log (the names fleet_workers_toml gives them).
fleet_start_workers() {
  local binary="$1" dir="$2" ports port i=0
  read -ra ports <<<"$3"
  shift 3
  for port in "${ports[@]}"; do
    fleet_start_worker "$binary" "$port" "$dir/sim-$i.log" "$@" --name "sim-$i" || return 3
    i=$((i + 1))
  done
}

# fleet_start_gateway BINARY CONFIG LOG: starts `aotproxy serve` and waits up to 30 s for its
# "aotproxy ready:" line. Its PID is appended to fleet_pids and left in fleet_last_pid.
fleet_start_gateway() {
  local binary="$1" config="$2" log="$3"
  fleet_spawn "$log" "$binary" serve --config "$config"
  fleet_wait_line "$log" "aotproxy ready:" "the gateway" || return 3
  grep "aotproxy ready:" "$log" >&2
}

# fleet_check_config BINARY FILE: fails unless the gateway's own check accepts FILE.
fleet_check_config() {
  "$1" check-config "$2" >/dev/null || { echo "$FLEET_TAG: $2 does not validate" >&2; return 1; }
}

# fleet_gateway_toml GATEWAY_PORT ADMIN_PORT STRATEGY [ROUTING_LINES]: prints the [server],
# [routing] and [forwarding] tables every perf config starts with (extra [routing] lines, e.g.
# weights, in ROUTING_LINES); the caller writes its own [scheduler], classes, workers and tenants.
fleet_gateway_toml() {
  cat <<TOML
[server]
listen = "127.0.0.1:$1"
admin_listen = "127.0.0.1:$2"
shutdown_grace = "5s"

[routing]
strategy = "$3"
metrics_interval = "500ms"
${4:-}

[forwarding]
connect_timeout = "5s"
activity_timeout = "120s"
TOML
}

# fleet_workers_toml MODEL MAX_CONCURRENCY PORT...: a [[workers]] table for worker sim-I on the
# I-th port (as fleet_start_workers starts them), serving MODEL.
fleet_workers_toml() {
  local model="$1" max_concurrency="$2" port i=0
  shift 2
  for port in "$@"; do
    printf '\n[[workers]]\nname = "sim-%s"\nurl = "http://127.0.0.1:%s"\nmodels = ["%s"]\nmax_concurrency = %s\n' \
      "$i" "$port" "$model" "$max_concurrency"
    i=$((i + 1))
  done
}

# fleet_wrk_script BODY KEY: prints a wrk script that POSTs BODY (JSON) with the bearer KEY and
# ends with one line the scripts parse: "RESULT requests=N duration_us=N p50_us=N p99_us=N
# mean_us=F errors=N status_errors=N".
fleet_wrk_script() {
  cat <<LUA
wrk.method = "POST"
wrk.body = [[$1]]
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $2"

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT requests=%d duration_us=%d p50_us=%d p99_us=%d mean_us=%.1f errors=%d status_errors=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), latency.mean,
    e.connect + e.read + e.write + e.timeout, e.status))
end
LUA
}

# The nginx peers (proxy_buffering off: an SSE reverse proxy with upstream keep-alive), in three
# parts the caller puts together: the main context, the http context's common lines, and the
# proxy's upstream and server.

# fleet_nginx_main DIR NAME [NOFILE] [CONNECTIONS]: one process (master_process off: its PID
# carries all of nginx's CPU and memory), its pid and error log DIR/NAME.pid and DIR/NAME-error.log.
fleet_nginx_main() {
  cat <<NGINX
daemon off;
master_process off;
worker_rlimit_nofile ${3:-16384};
pid $1/$2.pid;
error_log $1/$2-error.log warn;
events { worker_connections ${4:-8192}; }
NGINX
}

# fleet_nginx_http_common DIR: temp files under DIR/nginx-tmp (created), no access log, client
# keep-alive connections that last.
fleet_nginx_http_common() {
  mkdir -p "$1/nginx-tmp"
  cat <<NGINX
client_body_temp_path $1/nginx-tmp/body;
proxy_temp_path $1/nginx-tmp/proxy;
fastcgi_temp_path $1/nginx-tmp/fastcgi;
uwsgi_temp_path $1/nginx-tmp/uwsgi;
scgi_temp_path $1/nginx-tmp/scgi;
access_log off;
keepalive_requests 10000000;
keepalive_timeout 300s;
NGINX
}

# fleet_nginx_proxy LISTEN UPSTREAM KEEPALIVE [LOCATION_LINES]: the proxy on LISTEN (address:port
# and listen parameters) in front of UPSTREAM (address:port), KEEPALIVE idle upstream connections
# kept, each for any number of requests; extra lines for its location in LOCATION_LINES.
fleet_nginx_proxy() {
  cat <<NGINX
upstream backend {
  server $2;
  keepalive $3;
  keepalive_requests 10000000;
}
server {
  listen $1;
  location / {
    proxy_pass http://backend;
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_buffering off;${4:+
    $4}
  }
}
NGINX
}

# fleet_stop PID...: SIGTERM to each, then up to 15 s for a graceful exit (the gateway's
# shutdown_grace is 10 s in the perf targets), then SIGKILL to that PID; drops them from fleet_pids.
fleet_stop() {
  local pid
  for pid in "$@"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "$@"; do
    local _
    for _ in $(seq 1 150); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  fleet_forget "$@"
}

# fleet_kill PID...: SIGKILL, no grace (a crash); drops them from fleet_pids.
fleet_kill() {
  local pid
  for pid in "$@"; do
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  fleet_forget "$@"
}

fleet_forget() {
  local kept=() p
  for p in "${fleet_pids[@]}"; do
    [[ " $* " == *" $p "* ]] || kept+=("$p")
  done
  fleet_pids=("${kept[@]}")
}

# Everything still running, newest first: the gateway before its workers, so that it does not see
# them vanish mid-request.
fleet_stop_all() {
  local reversed=() i
  for ((i = ${#fleet_pids[@]} - 1; i >= 0; i--)); do
    reversed+=("${fleet_pids[i]}")
  done
  ((${#reversed[@]} == 0)) || fleet_stop "${reversed[@]}"
}
