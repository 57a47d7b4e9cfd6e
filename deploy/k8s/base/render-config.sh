#!/bin/sh
# Writes the gateway's config file: TEMPLATE with the admin token's SHA-256 and the store's URL
# put in, then each EXTRA file that exists (tenants and their key hashes, from a Secret).
#
# Why a step of its own: the gateway reads server.admin_token_sha256 and store.postgres_url only
# from its TOML, and neither the token nor the database password may be a literal in the
# repository. The Deployment's init container and compose's `config` service run this (busybox
# sh, sha256sum, sed) before any gateway starts. Usage:
#   AOTPROXY_ADMIN_TOKEN=... POSTGRES_URL=... render-config.sh TEMPLATE OUT [EXTRA...]
set -eu
template=$1
out=$2
shift 2

token=${AOTPROXY_ADMIN_TOKEN:-}
# 32 characters at least (`openssl rand -hex 32` gives 64): an empty token or the Secret's
# placeholder must stop the pod here, not start a gateway whose admin API anyone can guess.
if [ ${#token} -lt 32 ] || [ "${token#REPLACE}" != "$token" ]; then
  echo "render-config.sh: AOTPROXY_ADMIN_TOKEN must be set to a secret of at least 32 characters (openssl rand -hex 32)" >&2
  exit 1
fi
url=${POSTGRES_URL:-}
case $url in
  *'"'* | *'\'*)
    echo "render-config.sh: POSTGRES_URL must not contain a quote or a backslash (percent-encode them)" >&2
    exit 1
    ;;
esac

# The same digest as `aotproxy hash-key TOKEN`: SHA-256 of the token's bytes, lower-case hex.
hash=$(printf '%s' "$token" | sha256sum | cut -d ' ' -f 1)
# The characters sed's replacement would read (&, |, \) escaped.
url=$(printf '%s' "$url" | sed 's/[&|\\]/\\&/g')
sed -e "s|@ADMIN_TOKEN_SHA256@|$hash|" -e "s|@POSTGRES_URL@|$url|" "$template" > "$out.tmp"
for extra in "$@"; do
  if [ -f "$extra" ]; then
    cat "$extra" >> "$out.tmp"
  fi
done
# One rename: a gateway that watches the file never reads half of it.
mv "$out.tmp" "$out"
