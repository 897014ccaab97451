#!/usr/bin/env bash
# The standard benchmark set, against RELEASE builds on loopback, in well under 5 minutes:
#   1 task on embedded defaults: fanout, max (the ceiling), rooms (acked sends/s), churn, idle (RSS/conn);
#   2 tasks sharing a real redis-server: fanout at 100k deliveries/s (when the build has Redis fanout);
#   3 tasks over a local 3-shard Redis Cluster (6 redis-server, redis-cli --cluster create): max (the ceiling);
#   the attack suite (server/tests/attacks.rs) on a release build: RSS growth and bystander p99 per attack.
# The ceiling (`max`) is the highest fanout rate (1000 members) with every delivery arriving and
# p99 under BENCH_MAX_P99_MS (250 ms): the rate grows x1.5 per step until a step misses either.
# Prints the machine and one summary table; the JSON lines are kept in $BENCH_OUT/results.jsonl.
# Figures are noisy on a shared 2-core machine: server and load generator share the cores.
set -euo pipefail
cd "$(dirname "$0")/.."

TARGET="${CARGO_TARGET_DIR:-target}"
OUT="${BENCH_OUT:-$TARGET/bench}"
QUICK="${BENCH_QUICK:-}"          # set: shorter runs (smoke)
IDLE_CONNS="${BENCH_IDLE_CONNS:-}" # default: as many as the fd limit allows (50 000 wanted)
mkdir -p "$OUT"
RESULTS="$OUT/results.jsonl"
: >"$RESULTS"

# Connections need file descriptors on both sides.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
FDS="$(ulimit -n)"

# BENCH_SKIP_BUILD=1 uses the release binaries already in $TARGET (e.g. while the build lock is busy).
[ -n "${BENCH_SKIP_BUILD:-}" ] || cargo build --release --locked -p chat-server -p chat-load >&2
SERVER="$TARGET/release/chat-server"
LOAD="$TARGET/release/chat-load"

PIDS=()
TMP="$(mktemp -d)"
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$TMP"
}
trap cleanup EXIT

# A loopback port free now, below the kernel's ephemeral range (32768+): the load generator's
# outgoing connections can never take it before its server binds it (as testkit::free_port).
free_port() {
  python3 - <<'PY'
import random, socket
while True:
    port = random.randrange(20000, 32000)
    try:
        socket.create_server(("127.0.0.1", port)).close()
        print(port)
        break
    except OSError:
        pass
PY
}

# start_server NAME [ENV=VALUE...]: starts chat-server on free ports; sets URL and PID.
start_server() {
  local name="$1"; shift
  local port admin
  port="$(free_port)"; admin="$(free_port)"
  mkdir -p "$TMP/$name"
  env CHAT_LISTEN="127.0.0.1:$port" CHAT_ADMIN_LISTEN="127.0.0.1:$admin" \
    CHAT_DATA_DIR="$TMP/$name" CHAT_TOKEN_SECRET="bench-secret-0123456789" \
    CHAT_TASK_ID="$name" CHAT_RATE_PER_SEC=1000000 CHAT_RATE_BURST=1000000 \
    CHAT_SESSION_LIMIT_ADDR=1000000:100000 CHAT_SESSION_LIMIT_TASK=1000000:100000 \
    CHAT_CONNECT_LIMIT_ADDR=1000000:100000 CHAT_HISTORY_LIMIT_ADDR=1000000:100000 \
    CHAT_HISTORY_LIMIT_TASK=1000000:100000 \
    RUST_LOG=warn "$@" "$SERVER" >"$OUT/$name.log" 2>&1 &
  PID=$!
  PIDS+=("$PID")
  URL="http://127.0.0.1:$port"
  for _ in $(seq 1 100); do
    if "$SERVER" healthcheck --url "$URL/healthz" >/dev/null 2>&1; then return 0; fi
    if ! kill -0 "$PID" 2>/dev/null; then return 1; fi
    sleep 0.1
  done
  return 1
}

stop_server() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

run() { # run SCENARIO ARGS...: one bounded chat-load run appended to the results
  echo "-- chat-load $*" >&2
  timeout 150 "$LOAD" "$@" --json >>"$RESULTS" || echo "   (failed: see above)" >&2
}

D=5; STEP=2; STEPS=9
if [ -n "$QUICK" ]; then D=1; STEP=1; STEPS=3; fi

# --- one task, embedded store, in-process fanout -------------------------------------------
start_server one
ONE="$URL"; ONE_PID="$PID"
run fanout --url "$ONE" --setup "1 task, embedded" --members 1000 --senders 10 --rate 500 --duration "$D"
CEILING=(--members 1000 --senders 10 --factor 1.5 --step-secs "$STEP" --max-steps "$STEPS"
  --p99-ms "${BENCH_MAX_P99_MS:-250}" --min-delivered 1)
run max --url "$ONE" --setup "1 task, embedded" --start-rate 100 "${CEILING[@]}"
run rooms --url "$ONE" --setup "1 task, embedded" --rooms 200 --room-size 5 --rate 30000 --inflight 8 --duration "$D"
run churn --url "$ONE" --setup "1 task, embedded" --workers 32 --duration "$D"
stop_server "$ONE_PID"

# A fresh server for idle, so RSS is not inflated by the traffic runs above.
start_server idle
K="${IDLE_CONNS:-$(( FDS > 50200 ? 50000 : FDS - 1000 ))}"
[ -n "$QUICK" ] && K="${IDLE_CONNS:-2000}"
run idle --url "$URL" --setup "1 task, embedded" --count "$K" --rooms 100 --pid "$PID" --settle 3
stop_server "$PID"

# --- two tasks sharing a real redis-server -------------------------------------------------
REDIS="${REDIS_SERVER:-$(command -v redis-server || true)}"
redis_row() { # a row saying why the scenario was not measured
  printf '{"scenario":"fanout","setup":"2 tasks, redis","connections":0,"result":"%s"}\n' "$1" >>"$RESULTS"
}
if [ -z "$REDIS" ]; then
  redis_row "not measured: no redis-server (set REDIS_SERVER)"
else
  RPORT="$(free_port)"
  "$REDIS" --port "$RPORT" --bind 127.0.0.1 --save '' --appendonly no >"$OUT/redis.log" 2>&1 &
  PIDS+=("$!")
  for _ in $(seq 1 50); do
    if python3 -c "import socket; socket.create_connection(('127.0.0.1',$RPORT),0.2)" 2>/dev/null; then break; fi
    sleep 0.1
  done
  if start_server a CHAT_REDIS_URL="redis://127.0.0.1:$RPORT" && A="$URL" &&
     start_server b CHAT_REDIS_URL="redis://127.0.0.1:$RPORT"; then
    B="$URL"
    # Senders use the first URL; receivers alternate between the two tasks.
    run fanout --url "$A" --url "$B" --setup "2 tasks, redis" --members 1000 --senders 10 --rate 100 --duration "$D"
  else
    reason="$(tail -n 1 "$OUT"/a.log "$OUT"/b.log 2>/dev/null | grep -v '^==>' | grep -m1 . || true)"
    redis_row "not yet measurable: chat-server with CHAT_REDIS_URL did not start (${reason//\"/\'})"
  fi
fi

# --- three tasks over a local 3-shard Redis Cluster (a primary and a replica each) ----------
CLI="${REDIS_CLI:-$(command -v redis-cli || true)}"
cluster_row() {
  printf '{"scenario":"max","setup":"3 tasks, 3-shard cluster","connections":0,"result":"%s"}\n' "$1" >>"$RESULTS"
}
if [ -z "$REDIS" ] || [ -z "$CLI" ]; then
  cluster_row "not measured: no redis-server or redis-cli (set REDIS_SERVER, REDIS_CLI)"
else
  NODES=()
  for i in 1 2 3 4 5 6; do
    p="$(free_port)"; bus="$(free_port)"; mkdir -p "$TMP/node$i"
    "$REDIS" --port "$p" --cluster-port "$bus" --bind 127.0.0.1 --cluster-enabled yes \
      --cluster-config-file nodes.conf --cluster-node-timeout 5000 --save '' --appendonly no \
      --dir "$TMP/node$i" >"$OUT/node$i.log" 2>&1 &
    PIDS+=("$!")
    NODES+=("127.0.0.1:$p")
  done
  for n in "${NODES[@]}"; do
    for _ in $(seq 1 50); do "$CLI" -u "redis://$n" ping >/dev/null 2>&1 && break; sleep 0.1; done
  done
  CURL=""
  if "$CLI" --cluster create "${NODES[@]}" --cluster-replicas 1 --cluster-yes >"$OUT/cluster.log" 2>&1; then
    for n in "${NODES[@]}"; do
      for _ in $(seq 1 100); do "$CLI" -u "redis://$n" cluster info 2>/dev/null | grep -q cluster_state:ok && break; sleep 0.1; done
      CURL="${CURL:+$CURL,}redis+cluster://$n"
    done
  fi
  if [ -n "$CURL" ] && start_server c1 CHAT_REDIS_URL="$CURL" && C1="$URL" &&
     start_server c2 CHAT_REDIS_URL="$CURL" && C2="$URL" &&
     start_server c3 CHAT_REDIS_URL="$CURL" && C3="$URL"; then
    run max --url "$C1" --url "$C2" --url "$C3" --setup "3 tasks, 3-shard cluster" --start-rate "${BENCH_CLUSTER_START_RATE:-100}" "${CEILING[@]}"
  else
    cluster_row "not measured: the cluster or a task did not start (see $OUT/cluster.log)"
  fi
fi

# --- hostile clients: the attack suite on a release build, with the issue's bystander bound ----
# (the test command runs the same suite with a starvation bound of 2 s; latency is measured here)
ATTACKS="$OUT/attacks.txt"
if [ -z "${BENCH_SKIP_ATTACKS:-}" ]; then
  ATTACK_P99_MS="${BENCH_ATTACK_P99_MS:-250}" cargo test --release --locked -p chat-server \
    --test attacks -- --nocapture --test-threads 1 >"$OUT/attacks.log" 2>&1 || true
  # libtest prints each `ATTACK …` line after `test NAME ... `: keep the line from ATTACK on.
  grep -E 'ATTACK|^test result' "$OUT/attacks.log" | sed -E 's/^test [A-Za-z0-9_]+ \.\.\. //' >"$ATTACKS" || true
fi

echo
echo "machine: $(nproc) cores, $(free -g | awk '/^Mem:/{print $2}') GiB memory, load average $(cut -d' ' -f1-3 /proc/loadavg), fd limit $FDS"
echo "server and load generator share the machine; release builds; loopback only"
echo
"$LOAD" table "$RESULTS"
if [ -s "$ATTACKS" ]; then
  echo
  echo "attack suite (10 attackers each, 60 connections for the upload-body attack, 4 s; bystander p99 bound ${BENCH_ATTACK_P99_MS:-250} ms):"
  cat "$ATTACKS"
fi
