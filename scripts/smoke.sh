#!/usr/bin/env bash
# Smoke test of a running deployment through its public URL (TEST_GUIDE.md): version and
# colour, a guest session, room info and history, then a WebSocket round trip of numbered
# messages (scripts/numbered_sender.py) and a check that the room's history holds each once.
# Safe against production: it writes a few messages to one room (`smoke` by default).
#
#   scripts/smoke.sh URL [ROOM]     e.g. scripts/smoke.sh "$(terraform -chdir=terraform output -raw url)"
#
# Needs curl, jq, and a python with websocket-client (PYTHON, default $TEST_VENV/bin/python).
set -euo pipefail
cd "$(dirname "$0")/.."

url="${1:?usage: $0 URL [ROOM]}"
url="${url%/}"
room="${2:-smoke}"
py="${PYTHON:-${TEST_VENV:+$TEST_VENV/bin/python}}"
py="${py:-python3}"
count=5

fail() { echo "smoke: FAIL: $*" >&2; exit 1; }
ok() { echo "smoke: ok: $*"; }

version="$(curl -fsS --max-time 10 "$url/version")" || fail "GET $url/version"
color="$(jq -er .color <<<"$version")" || fail "/version has no colour: $version"
ok "version $(jq -r .version <<<"$version"), colour $color, task $(jq -r .task <<<"$version")"

user="$(curl -fsS --max-time 10 -H 'content-type: application/json' -d '{"nickname":"Smoke"}' "$url/api/session")" ||
  fail "POST /api/session"
jq -e '.token and .user.id' >/dev/null <<<"$user" || fail "session answer lacks token or user id"
ok "session for user $(jq -r .user.id <<<"$user")"

before="$(curl -fsS --max-time 10 "$url/api/rooms/$room" | jq -er .last_seq)" || fail "GET /api/rooms/$room"
curl -fsS --max-time 10 "$url/api/rooms/$room/messages?limit=1" | jq -e '.messages | type == "array"' >/dev/null ||
  fail "GET /api/rooms/$room/messages"
ok "room $room at seq $before"

prefix="smoke-$(date +%s)-"
"$py" scripts/numbered_sender.py "$room" "$count" --url "$url" --prefix "$prefix" --interval 0.1 --deadline 60 ||
  fail "WebSocket round trip"
"$py" scripts/check_room.py "$url" "$room" --expect-prefix "$prefix" --expect "$count" || fail "history check"
after="$(curl -fsS --max-time 10 "$url/api/rooms/$room" | jq -er .last_seq)"
[ "$after" -ge $((before + count)) ] || fail "last_seq went from $before to $after, expected +$count"
ok "$count messages acked, in the history once each (seq $before -> $after)"
echo "smoke: passed against $url ($color)"
