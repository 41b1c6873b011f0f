#!/usr/bin/env bash
# How does redis-cli cope when the network is slow, then resets? A test with netd's faults.
#
# Usage: faults_redis.sh REDIS_PORT
# Needs netctl (or $NETCTL), redis-cli and jq; netd on its default socket (or $NETD_SOCKET).
# Exits 0 when every check passes.
set -euo pipefail
netctl=${NETCTL:-netctl}
redis_port=$1

ok() { echo "ok   $*"; }
fail() { echo "FAIL $*"; exit 1; }

# A forward in front of Redis: the client talks to Redis through netd.
front=$($netctl --json call server.listen "{\"host\":\"127.0.0.1\",\"port\":0,\"forward\":{\"host\":\"127.0.0.1\",\"port\":$redis_port}}")
id=$(jq -r .id <<<"$front")
port=$(jq -r .local.port <<<"$front")
trap '$netctl call server.close "{\"id\":$id}" >/dev/null' EXIT
[ "$(redis-cli -p "$port" set greeting hello)" = OK ] && ok "SET through the forward" || fail "SET through the forward"

# 150 ms each way: a round trip takes 300 ms at least.
fault=$($netctl --json call fault.add "{\"target\":$id,\"type\":\"latency\",\"ms\":150,\"seed\":7}")
start=$(date +%s%N)
reply=$(redis-cli -p "$port" get greeting)
elapsed=$(( ($(date +%s%N) - start) / 1000000 ))
[ "$reply" = hello ] && [ "$elapsed" -ge 300 ] && ok "GET waits out the latency (${elapsed} ms)" || fail "GET with latency: $reply in ${elapsed} ms"
$netctl call fault.remove "{\"id\":$(jq -r .fault.id <<<"$fault")}" >/dev/null

# Reset every connection as soon as it opens: redis-cli reports it and fails.
fault=$($netctl --json call fault.add "{\"target\":$id,\"type\":\"reset\",\"afterMs\":0}")
if error=$(redis-cli -p "$port" ping 2>&1); then fail "ping got through a resetting forward: $error"; fi
ok "redis-cli fails cleanly: $error"
$netctl call fault.remove "{\"id\":$(jq -r .fault.id <<<"$fault")}" >/dev/null
[ "$(redis-cli -p "$port" ping)" = PONG ] && ok "with the fault removed, redis-cli gets through again" || fail "ping after removal"

# The history of the reset connection says what happened.
refused=$($netctl --json call history.query "{\"server\":$id,\"role\":\"accepted\",\"limit\":50}" \
    | jq '[.items[] | select(.error.code == "ECONNRESET" or .state == "closed")] | length')
events=$($netctl --json call socket.list "{\"server\":$id}" | jq -r '.sockets[] | select(.role == "accepted") | .id' \
    | while read -r socket; do $netctl --json call history.get "{\"id\":$socket}" | jq -r '.events[] | select(.type == "fault") | .detail.detail'; done)
grep -q "delayed 150 ms" <<<"$events" && grep -q "reset" <<<"$events" \
    && ok "the history says so ($(tr '\n' ',' <<<"$events"))" || fail "history: $events"
[ "$refused" -ge 1 ] || fail "no closed accepted connection in history.query"
