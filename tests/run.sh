#!/usr/bin/env bash
# The test command (README's, and .ci/run's): installs what the tests need beyond the .NET SDK,
# then runs every test. redis-server: [cluster]'s tests start their own on a loopback port (tests/
# Shared/RedisServer.cs) and fail, never skip, without it. Arguments go on to `dotnet test`.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v redis-server >/dev/null 2>&1; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "tests/run.sh: redis-server is not installed; run as root, or: sudo apt-get install -y redis-server" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
fi

# postgresql: the shared ledger's tests start their own on a loopback port (tests/Shared/
# PostgresServer.cs: initdb and pg_ctl from /usr/lib/postgresql/*/bin) and fail, never skip, without it.
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "tests/run.sh: postgresql is not installed; run as root, or: sudo apt-get install -y postgresql" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi

dotnet test AotProxy.sln "$@"
