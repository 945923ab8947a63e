#!/bin/sh
# Starts Redis with the ledger's ACL users (deploy/redis/users.acl).
#
# The passwords come from the environment and only their sha256 reaches the
# rendered ACL file (mode 600, outside the data volume):
#   LEDGER_REDIS_ADMIN_PASSWORD     the admin user's (CLI, policy loads, tokens)
#   LEDGER_REDIS_GATEWAY_PASSWORD   the gateway user's
# With LEDGER_REDIS_REPLICAOF="HOST PORT" the server starts as that primary's
# replica and logs in to it as "admin" (a config file of mode 600 holds the
# password, never the command line).
# Further arguments go to redis-server. In the redis image the official
# entrypoint runs it (it drops root); elsewhere redis-server is run directly
# (LEDGER_REDIS_SERVER names another binary, e.g. valkey-server).
set -eu
: "${LEDGER_REDIS_ADMIN_PASSWORD:?set LEDGER_REDIS_ADMIN_PASSWORD}"
: "${LEDGER_REDIS_GATEWAY_PASSWORD:?set LEDGER_REDIS_GATEWAY_PASSWORD}"
template="${LEDGER_REDIS_ACL_TEMPLATE:-$(dirname "$0")/users.acl}"
out="${LEDGER_REDIS_ACL_FILE:-/tmp/ledger-users.acl}"

sha() { printf '%s' "$1" | sha256sum | cut -d' ' -f1; }

umask 077
# Redis reads no comments in an ACL file: they are dropped here.
sed -e '/^#/d' -e '/^[[:space:]]*$/d' \
    -e "s/@ADMIN_HASH@/$(sha "$LEDGER_REDIS_ADMIN_PASSWORD")/" \
    -e "s/@GATEWAY_HASH@/$(sha "$LEDGER_REDIS_GATEWAY_PASSWORD")/" \
    "$template" > "$out"
# redis-server takes a config file only as its first argument: an empty one unless a replica.
conf="${LEDGER_REDIS_CONF_FILE:-/tmp/ledger-redis.conf}"
: > "$conf"
if [ -n "${LEDGER_REDIS_REPLICAOF:-}" ]; then
  printf 'replicaof %s\nmasteruser admin\nmasterauth "%s"\n' \
    "$LEDGER_REDIS_REPLICAOF" "$LEDGER_REDIS_ADMIN_PASSWORD" > "$conf"
fi
unset LEDGER_REDIS_ADMIN_PASSWORD LEDGER_REDIS_GATEWAY_PASSWORD

if [ -z "${LEDGER_REDIS_SERVER:-}" ] && command -v docker-entrypoint.sh >/dev/null 2>&1; then
  [ "$(id -u)" = 0 ] && chown redis "$out" "$conf"
  exec docker-entrypoint.sh redis-server "$conf" --aclfile "$out" "$@"
fi
exec "${LEDGER_REDIS_SERVER:-redis-server}" "$conf" --aclfile "$out" "$@"
