#!/usr/bin/env bash
# Install, start and stop IAM emulators as real processes on 127.0.0.1.
#
#   scripts/emulator.sh NAME start     installs NAME into a cached virtualenv (once),
#                                      starts it on a free loopback port, waits until
#                                      it answers, prints its URL
#   scripts/emulator.sh NAME stop      stops it by its PID (SIGTERM, then SIGKILL)
#   scripts/emulator.sh NAME url       prints the URL of the running instance
#   scripts/emulator.sh NAME version   prints the pinned release (5.2.5)
#   scripts/emulator.sh NAME install   installs only
#
# NAME: moto (5.2.5), moto-ext (5.1.54), ministack (1.5.33), localstack (localstack-core
# 2026.3.0). Virtualenvs (and LocalStack's state directory) are cached under
# $IAM_CONFORMANCE_CACHE (default ~/.cache/iam-conformance); PID, port and log live under
# .emulators/ in the repo. Every emulator is bound to 127.0.0.1 only.
#
# LocalStack needs Python >= 3.12 (it does not import on 3.11). The script takes the first
# of: $IAM_CONFORMANCE_PYTHON, python3.13 or python3.12 on PATH, the newest 3.12+ under
# $(pyenv root)/versions (the machine image ships pyenv with 3.12 and 3.13 beside 3.11).
# Debian 12's apt has no python3.12/3.13 and nothing else outside the package registries
# can be fetched here, so there is no further fallback: it fails and says so.
set -euo pipefail

usage="usage: emulator.sh moto|moto-ext|ministack|localstack start|stop|url|version|install"
name=${1:?$usage}
action=${2:?$usage}
root=$(cd "$(dirname "$0")/.." && pwd)
cache=${IAM_CONFORMANCE_CACHE:-$HOME/.cache/iam-conformance}
state="$root/.emulators"
mkdir -p "$state" "$cache"

case "$name" in
  moto) packages=('moto[server]==5.2.5'); version=5.2.5; entry=moto_server ;;
  moto-ext) packages=('moto-ext[server]==5.1.54'); version=5.1.54; entry=moto_server ;;
  ministack) packages=('ministack==1.5.33'); version=1.5.33; entry=ministack ;;
  localstack)
    # The three extra pins avoid crashes in newer releases of its dependencies.
    packages=('localstack-core[runtime]==2026.3.0' 'cbor2<6' 'pyopenssl==25.3.0' 'service_identity<26.1')
    version=2026.3.0; entry=python ;;
  *) echo "emulator.sh: unknown emulator '$name' (known: moto, moto-ext, ministack, localstack)" >&2; exit 2 ;;
esac
venv="$cache/venv-$name-$version"

# A Python >= 3.12 interpreter for LocalStack, or nothing.
python312() {
  local candidates=()
  [ -n "${IAM_CONFORMANCE_PYTHON:-}" ] && candidates+=("$IAM_CONFORMANCE_PYTHON")
  candidates+=("$(command -v python3.13 || true)" "$(command -v python3.12 || true)")
  local pyenv_root
  pyenv_root=$( (command -v pyenv >/dev/null && pyenv root) || echo "$HOME/.pyenv")
  local v
  for v in $(ls -d "$pyenv_root"/versions/3.1[2-9]* 2>/dev/null | sort -rV); do
    candidates+=("$v/bin/python3")
  done
  local py
  for py in "${candidates[@]}"; do
    [ -n "$py" ] && [ -x "$py" ] || continue
    if "$py" -c 'import sys, venv; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then
      echo "$py"
      return
    fi
  done
}

install() {
  [ -x "$venv/bin/$entry" ] && [ -f "$venv/.installed" ] && return
  local python=python3
  if [ "$name" = localstack ]; then
    python=$(python312)
    if [ -z "$python" ]; then
      echo "emulator.sh: LocalStack needs Python >= 3.12 and none was found" \
        "(set IAM_CONFORMANCE_PYTHON, or install one under pyenv)" >&2
      exit 2
    fi
  fi
  echo "emulator.sh: installing ${packages[*]} into $venv with $python" >&2
  rm -rf "$venv"
  "$python" -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "${packages[@]}" >&2
  touch "$venv/.installed"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# Starts the emulator on $1 in the background, output to the log; prints nothing.
launch() {
  local port=$1 log="$state/$name.log"
  case "$name" in
    moto | moto-ext) "$venv/bin/moto_server" -H 127.0.0.1 -p "$port" >"$log" 2>&1 & ;;
    ministack) BIND_HOST=127.0.0.1 GATEWAY_PORT="$port" "$venv/bin/ministack" >"$log" 2>&1 & ;;
    localstack)
      mkdir -p "$cache/localstack-state"
      # hypercorn honours the listen host (the default server binds 0.0.0.0); no DNS
      # server, no analytics, state under the cache instead of /var/lib/localstack.
      OVERRIDE_IN_DOCKER=0 GATEWAY_SERVER=hypercorn GATEWAY_LISTEN="127.0.0.1:$port" \
        DNS_ADDRESS=0 DISABLE_EVENTS=1 SERVICES=iam,sts \
        FILESYSTEM_ROOT="$cache/localstack-state" \
        "$venv/bin/python" -m localstack.runtime.main >"$log" 2>&1 & ;;
  esac
  echo $! >"$state/$name.pid"
}

start() {
  install
  if [ -f "$state/$name.pid" ] && kill -0 "$(cat "$state/$name.pid")" 2>/dev/null; then
    echo "emulator.sh: $name is already running" >&2
    echo "http://127.0.0.1:$(cat "$state/$name.port")/"
    return
  fi
  local port
  port=$(free_port)
  echo "$port" >"$state/$name.port"
  launch "$port"
  for _ in $(seq 1 300); do
    if curl -s -o /dev/null "http://127.0.0.1:$port/"; then
      echo "http://127.0.0.1:$port/"
      return
    fi
    if ! kill -0 "$(cat "$state/$name.pid")" 2>/dev/null; then
      echo "emulator.sh: $name exited; its log:" >&2
      cat "$state/$name.log" >&2
      exit 3
    fi
    sleep 0.2
  done
  echo "emulator.sh: $name did not answer on port $port within 60 s; its log:" >&2
  tail -n 40 "$state/$name.log" >&2
  stop
  exit 3
}

stop() {
  [ -f "$state/$name.pid" ] || return 0
  local pid
  pid=$(cat "$state/$name.pid")
  if kill "$pid" 2>/dev/null; then
    # LocalStack may take more than 10 s to exit on SIGTERM.
    for _ in $(seq 1 75); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.2
    done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$state/$name.pid" "$state/$name.port"
}

case "$action" in
  start) start ;;
  stop) stop ;;
  install) install ;;
  version) echo "$version" ;;
  url) echo "http://127.0.0.1:$(cat "$state/$name.port")/" ;;
  *) echo "emulator.sh: unknown action '$action' ($usage)" >&2; exit 2 ;;
esac
