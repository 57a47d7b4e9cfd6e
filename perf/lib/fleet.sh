# shellcheck shell=bash
# Shared by the perf/*.sh fleet scripts (source it; it runs nothing by itself): start
# simulated vLLM workers and the gateway on loopback, wait for them, and stop them again, every
# one by the PID this shell started it with. Nothing is ever killed by name.
#
# The caller sets FLEET_TAG (a prefix for messages, e.g. "load.sh") and calls fleet_stop_all from
# its EXIT trap. Functions that fail print why and return 3 (the scripts' "could not start" code).

fleet_pids=()
FLEET_TAG="${FLEET_TAG:-fleet}"

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

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

# fleet_start_worker BINARY PORT LOG [simulate flags...]: starts `aotproxy simulate` and waits up
# to 30 s for its port. Its PID is appended to fleet_pids and left in fleet_last_pid.
fleet_start_worker() {
  local binary="$1" port="$2" log="$3"
  shift 3
  "$binary" simulate --listen "127.0.0.1:$port" "$@" >"$log" 2>&1 &
  fleet_last_pid=$!
  fleet_pids+=("$fleet_last_pid")
  local _
  for _ in $(seq 1 300); do
    port_open "$port" && return 0
    kill -0 "$fleet_last_pid" 2>/dev/null || { echo "$FLEET_TAG: the worker on port $port exited:" >&2; cat "$log" >&2; return 3; }
    sleep 0.1
  done
  echo "$FLEET_TAG: the worker on port $port is not listening after 30 s" >&2
  return 3
}

# fleet_start_gateway BINARY CONFIG LOG: starts `aotproxy serve` and waits up to 30 s for its
# "aotproxy ready:" line. Its PID is appended to fleet_pids and left in fleet_last_pid.
fleet_start_gateway() {
  local binary="$1" config="$2" log="$3"
  "$binary" serve --config "$config" >"$log" 2>&1 &
  fleet_last_pid=$!
  fleet_pids+=("$fleet_last_pid")
  local _
  for _ in $(seq 1 300); do
    grep -qs "aotproxy ready:" "$log" && { grep "aotproxy ready:" "$log" >&2; return 0; }
    kill -0 "$fleet_last_pid" 2>/dev/null || { echo "$FLEET_TAG: the gateway exited:" >&2; cat "$log" >&2; return 3; }
    sleep 0.1
  done
  echo "$FLEET_TAG: the gateway printed no 'aotproxy ready:' within 30 s" >&2
  cat "$log" >&2
  return 3
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

# fleet_stop PID...: SIGTERM to each, then up to 15 s for a graceful exit (the gateway's
# shutdown_grace is 10 s in the perf targets), then SIGKILL to that PID; drops them from fleet_pids.
fleet_stop() {
  local pid kept=() p
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
