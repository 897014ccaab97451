#!/usr/bin/env bash
# Installs (once) what the tests need and exports where it is. Sourced by scripts/test.sh;
# source it yourself to run one test layer alone: `source scripts/test-env.sh && cargo test -p chat-server`.
#   - redis-server, redis-cli (creates the tests' local Redis Cluster), openssl (test TLS
#     certificates), chromium and faketime (a server whose clock says another day, for the
#     browser's date separators) from Debian (apt-get), when missing;
#   - a Python venv with moto (the AWS API server), python-hcl2, checkov and pytest;
#   - playwright-core for the browser tests (npm, in frontend/tests).
# Exports: MOTO_SERVER, REDIS_SERVER, REDIS_CLI, CHROMIUM, TEST_VENV, FAKETIME_LIB.

_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
_cache="${CHAT_TEST_CACHE:-$HOME/.cache/chat-test}"
mkdir -p "$_cache"

_apt_updated=""
_need_apt() { # package, binary
  if ! command -v "$2" >/dev/null 2>&1; then
    if [ -z "$_apt_updated" ]; then
      echo "test-env: apt-get update" >&2
      apt-get update -qq >&2 && _apt_updated=1
    fi
    echo "test-env: installing $1" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$1" >&2
  fi
}
_need_apt redis-server redis-server
_need_apt redis-tools redis-cli
_need_apt openssl openssl
_need_apt jq jq
_need_apt curl curl
_need_apt chromium chromium
_need_apt faketime faketime

# The venv lives outside the clone and is rebuilt when the requirements change.
_req="$_root/scripts/requirements-test.txt"
_req_hash="$(sha256sum "$_req" | cut -c1-16)"
export TEST_VENV="$_cache/venv-$_req_hash"
if [ ! -x "$TEST_VENV/bin/moto_server" ]; then
  echo "test-env: creating $TEST_VENV" >&2
  rm -rf "$TEST_VENV"
  python3 -m venv "$TEST_VENV"
  "$TEST_VENV/bin/pip" install -q --disable-pip-version-check -r "$_req" >&2
fi

# npm ci again whenever package-lock.json changed since the last install (a stamp in node_modules).
_lock="$_root/frontend/tests/package-lock.json"
_stamp="$_root/frontend/tests/node_modules/.lock-sha256"
if [ -f "$_lock" ] && [ "$(cat "$_stamp" 2>/dev/null)" != "$(sha256sum "$_lock" | cut -c1-64)" ]; then
  echo "test-env: npm ci in frontend/tests" >&2
  (cd "$_root/frontend/tests" && npm ci --no-audit --no-fund --loglevel=error >&2)
  sha256sum "$_lock" | cut -c1-64 > "$_stamp"
fi

export MOTO_SERVER="$TEST_VENV/bin/moto_server"
export REDIS_SERVER="$(command -v redis-server)"
export REDIS_CLI="$(command -v redis-cli)"
export CHROMIUM="$(command -v chromium)"
export FAKETIME_LIB="$(dpkg -L libfaketime 2>/dev/null | grep -m1 '/libfaketimeMT\.so\.1$' || true)"
