#!/usr/bin/env bash
# The blue/green demo on a laptop (DEMO_GUIDE.md, "Rehearse on a laptop"): a moto server as the
# AWS API (ELBv2, ECS, CloudWatch, DynamoDB), a local redis-server, and two chat-server tasks,
# blue and green, sharing that Redis and the DynamoDB tables in moto. Everything listens on
# 127.0.0.1 only.
#
#   scripts/rehearsal.sh up      start it all; writes $REHEARSAL_DIR/env to source
#   scripts/rehearsal.sh up-aws  only the AWS side (moto with the ALB, services, alarm): to
#                                practise the opsctl commands without chat tasks
#   scripts/rehearsal.sh down    stop everything `up` started
#   scripts/rehearsal.sh drain COLOR   SIGTERM one task (its clients reconnect to the other)
#   scripts/rehearsal.sh reapply       what a later `terraform apply` puts back (its tags, the
#                                counts it manages)
#
# Needs MOTO_SERVER, REDIS_SERVER, TEST_VENV (`source scripts/test-env.sh`) and the binaries
# built (`cargo build -p chat-server -p opsctl -p localalb`). Ports: REHEARSAL_PORT_BASE (default
# 8080) the local ALB's production listener as CloudFront reaches it (localalb: routes each new
# connection by the weights of the origin-verified rule in moto), + 3 its test listener (green),
# + 1 blue, + 2 green, + 11 / + 12 their metrics, + 20 moto, + 30 redis.
set -euo pipefail
cd "$(dirname "$0")/.."

dir="${REHEARSAL_DIR:-${TMPDIR:-/tmp}/chat-rehearsal}"
base="${REHEARSAL_PORT_BASE:-8080}"
bin="${CARGO_TARGET_DIR:-$PWD/target}/debug"
blue_port=$((base + 1)) green_port=$((base + 2)) test_port=$((base + 3))
moto_port=$((base + 20)) redis_port=$((base + 30))

die() { echo "rehearsal: $*" >&2; exit 1; }

# Polls `curl URL` until it answers 2xx, for at most $2 seconds.
wait_http() {
  local url="$1" secs="${2:-20}" i
  for ((i = 0; i < secs * 10; i++)); do
    curl -fsS -o /dev/null "$url" 2>/dev/null && return 0
    sleep 0.1
  done
  die "$url did not answer within ${secs}s (logs in $dir)"
}

start() { # name, command...
  local name="$1"; shift
  "$@" >"$dir/$name.log" 2>&1 &
  echo "$! $name" >>"$dir/pids"
}

# Starts moto and creates the stack opsctl drives; writes the env file.
up_aws() {
  : "${MOTO_SERVER:?run 'source scripts/test-env.sh' first (sets MOTO_SERVER)}"
  : "${TEST_VENV:?run 'source scripts/test-env.sh' first (sets TEST_VENV)}"
  [ -x "$bin/opsctl" ] && [ -x "$bin/chat-server" ] || die "build first: cargo build -p chat-server -p opsctl (looked in $bin)"
  [ -e "$dir/pids" ] && die "already up ($dir/pids exists); run '$0 down' first"
  mkdir -p "$dir"
  : >"$dir/pids"
  cat >"$dir/env" <<EOF
export AWS_ENDPOINT_URL=http://127.0.0.1:$moto_port
export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1 AWS_ACCESS_KEY_ID=rehearsal AWS_SECRET_ACCESS_KEY=rehearsal
export OPSCTL_ALB=chat OPSCTL_CLUSTER=chat OPSCTL_TABLE_PREFIX=chat-
export BLUE_URL=http://127.0.0.1:$blue_port GREEN_URL=http://127.0.0.1:$green_port
export ALB_URL=http://127.0.0.1:$base
# DEMO_GUIDE's names: the chat's public URL, the test listener's, the image repository.
export URL=http://127.0.0.1:$base TEST_URL=http://127.0.0.1:$test_port REPO=chat
export PATH="$bin:\$PATH"
EOF
  # shellcheck disable=SC1091
  source "$dir/env"
  # moto reports this many running tasks per ECS service (desired is 1 per colour).
  start moto env MOTO_ECS_SERVICE_RUNNING=1 "$MOTO_SERVER" -H 127.0.0.1 -p "$moto_port"
  wait_http "$AWS_ENDPOINT_URL/moto-api/"
  REHEARSAL_URL="$URL" REHEARSAL_TEST_URL="$TEST_URL" "$TEST_VENV/bin/python" scripts/rehearsal_stack.py create chat
  # chat-server's own tables (opsctl keeps its lease and control record in the connections table).
  CHAT_DYNAMODB_TABLE_PREFIX=chat- "$bin/chat-server" create-tables
}

up() {
  : "${MOTO_SERVER:?run 'source scripts/test-env.sh' first (sets MOTO_SERVER)}"
  : "${REDIS_SERVER:?run 'source scripts/test-env.sh' first (sets REDIS_SERVER)}"
  : "${TEST_VENV:?run 'source scripts/test-env.sh' first (sets TEST_VENV)}"
  [ -x "$bin/chat-server" ] || die "build first: cargo build -p chat-server -p opsctl -p localalb (looked in $bin)"
  [ -x "$bin/localalb" ] || die "build first: cargo build -p chat-server -p opsctl -p localalb (looked in $bin)"
  export REHEARSAL_TARGETS="blue=127.0.0.1:$blue_port,green=127.0.0.1:$green_port"
  up_aws
  start redis "$REDIS_SERVER" --bind 127.0.0.1 --port "$redis_port" --save "" --appendonly no
  for ((i = 0; i < 100; i++)); do
    (exec 3<>"/dev/tcp/127.0.0.1/$redis_port") 2>/dev/null && break
    sleep 0.1
  done

  local secret
  secret="rehearsal-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
  for color in blue green; do
    local port=$blue_port admin=$((base + 11))
    [ "$color" = green ] && port=$green_port admin=$((base + 12))
    mkdir -p "$dir/$color"
    # The chat container's environment from the task definition its service runs in moto
    # (Terraform's template), then what differs on a laptop: loopback ports, a data directory,
    # the secrets ECS would inject, no collector sidecar to export traces to, and a 2 s drain
    # (Terraform's 10 s would make every guide run wait; the drain itself is the same code).
    local env_file="$dir/$color/env"
    "$TEST_VENV/bin/python" scripts/rehearsal_stack.py task-env chat "$color" |
      grep -v '^OTEL_EXPORTER_OTLP_ENDPOINT=' >"$env_file"
    start "$color" env $(cat "$env_file") CHAT_TASK_ID="$color-1" \
      CHAT_LISTEN="127.0.0.1:$port" CHAT_ADMIN_LISTEN="127.0.0.1:$admin" \
      CHAT_DATA_DIR="$dir/$color" CHAT_REDIS_URL="redis://127.0.0.1:$redis_port" \
      CHAT_TOKEN_SECRET="$secret" CHAT_DRAIN_SECS=2 "$bin/chat-server"
  done
  wait_http "$BLUE_URL/readyz"
  wait_http "$GREEN_URL/readyz"
  start localalb "$bin/localalb" --alb chat --listen "127.0.0.1:$base"
  start localalb-test "$bin/localalb" --alb chat --listener-port 9000 --listen "127.0.0.1:$test_port"
  wait_http "$ALB_URL/healthz"
  wait_http "$TEST_URL/healthz"
  echo "rehearsal: up. source $dir/env; the chat through the local ALB: $URL, its test listener $TEST_URL (blue $BLUE_URL, green $GREEN_URL)"
}

down() {
  [ -e "$dir/pids" ] || { echo "rehearsal: nothing running"; return 0; }
  local pid name
  local pids=()
  while read -r pid name; do
    if kill "$pid" 2>/dev/null; then
      echo "rehearsal: stopping $name"
      pids+=("$pid")
    fi
  done <"$dir/pids"
  # chat-server drains for CHAT_DRAIN_SECS first; wait for everyone, bounded.
  for ((i = 0; i < 150; i++)); do
    local alive=0
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break
    sleep 0.1
  done
  for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  rm -f "$dir/pids"
}

drain() {
  local color="${1:?usage: $0 drain blue|green}" pid name
  while read -r pid name; do
    if [ "$name" = "$color" ]; then
      kill -TERM "$pid"
      echo "rehearsal: draining $color (pid $pid)"
    fi
  done <"$dir/pids"
}

reapply() {
  # shellcheck disable=SC1091
  source "$dir/env"
  "$TEST_VENV/bin/python" scripts/rehearsal_stack.py reapply chat
}

case "${1:-}" in
  up) up ;;
  up-aws) up_aws && echo "rehearsal: AWS side up. source $dir/env" ;;
  down) down ;;
  drain) drain "${2:-}" ;;
  reapply) reapply ;;
  *) die "usage: $0 up|up-aws|down|drain COLOR|reapply" ;;
esac
