#!/usr/bin/env bash
# The test command (README's, and .ci/run's): installs what the tests need beyond the .NET SDK,
# then runs every test. redis-server: [cluster]'s tests start their own on a loopback port (tests/
# Shared/RedisServer.cs) and fail, never skip, without it. Arguments go on to `dotnet test`.
set -euo pipefail
cd "$(dirname "$0")/.."

# The deploy kit's checks (tests/AotProxy.FunctionalTests/DeployKitTests.cs) read deploy/ with
# Debian's tools, no container engine or cluster: kubectl (kustomize offline), docker-compose
# (`config` parses and validates the compose file), haproxy (`-c` checks its config) and
# python3-yaml (YAML to JSON).
missing=()
command -v kubectl >/dev/null 2>&1 || missing+=(kubernetes-client)
command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
command -v haproxy >/dev/null 2>&1 || missing+=(haproxy)
python3 -c 'import yaml' >/dev/null 2>&1 || missing+=(python3-yaml)
# promtool (Debian's prometheus): `promtool check rules` and `promtool test rules` on
# deploy/prometheus/rules.yml and its unit tests, rules_test.yml.
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
# chromium: the dashboard's browser test (tests/AotProxy.FunctionalTests/DashboardBrowserTests.cs)
# drives /usr/bin/chromium through the Microsoft.Playwright package's bundled driver (its own
# node); Playwright's browser download is not used, and would be refused on a closed network.
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "tests/run.sh: ${missing[*]} not installed; run as root, or: sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

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

# node and the openai and @anthropic-ai/sdk npm packages: StreamIdleTimeoutTests,
# ResponsesApiBinaryTests and MessagesApiBinaryTests drive the official clients
# (tests/AotProxy.FunctionalTests/Node, their versions pinned by package-lock.json) through the
# gateway: responses.create, messages.create/stream, and the errors they raise.
if ! command -v npm >/dev/null 2>&1; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "tests/run.sh: node/npm are not installed; run as root, or: sudo apt-get install -y nodejs npm" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi
npm ci --prefix tests/AotProxy.FunctionalTests/Node --no-audit --no-fund --silent

dotnet test AotProxy.sln "$@"
