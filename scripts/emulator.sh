#!/usr/bin/env bash
# Install, start and stop IAM emulators as real processes on 127.0.0.1.
#
#   scripts/emulator.sh NAME start   installs NAME into a cached virtualenv (once),
#                                    starts it on a free loopback port, waits until
#                                    it answers, prints its URL
#   scripts/emulator.sh NAME stop    stops it by its PID (SIGTERM, then SIGKILL)
#   scripts/emulator.sh NAME url     prints the URL of the running instance
#
# NAME: moto. Virtualenvs are cached under $IAM_CONFORMANCE_CACHE (default
# ~/.cache/iam-conformance); PID, port and log live under .emulators/ in the repo.
set -euo pipefail

name=${1:?usage: emulator.sh NAME start|stop|url}
action=${2:?usage: emulator.sh NAME start|stop|url}
root=$(cd "$(dirname "$0")/.." && pwd)
cache=${IAM_CONFORMANCE_CACHE:-$HOME/.cache/iam-conformance}
state="$root/.emulators"
mkdir -p "$state" "$cache"

case "$name" in
  moto) package='moto[server]==5.2.5'; version=5.2.5 ;;
  *) echo "emulator.sh: unknown emulator '$name' (known: moto)" >&2; exit 2 ;;
esac
venv="$cache/venv-$name-$version"

install() {
  if [ ! -x "$venv/bin/moto_server" ]; then
    echo "emulator.sh: installing $package into $venv" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "$package" >&2
  fi
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
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
  "$venv/bin/moto_server" -H 127.0.0.1 -p "$port" >"$state/$name.log" 2>&1 &
  echo $! >"$state/$name.pid"
  echo "$port" >"$state/$name.port"
  for _ in $(seq 1 150); do
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
  echo "emulator.sh: $name did not answer on port $port within 30 s" >&2
  stop
  exit 3
}

stop() {
  [ -f "$state/$name.pid" ] || return 0
  local pid
  pid=$(cat "$state/$name.pid")
  if kill "$pid" 2>/dev/null; then
    for _ in $(seq 1 50); do
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
  url) echo "http://127.0.0.1:$(cat "$state/$name.port")/" ;;
  *) echo "emulator.sh: unknown action '$action' (start|stop|url)" >&2; exit 2 ;;
esac
