#!/usr/bin/env bash
# Speed and memory of the release binary: the figures of the README's
# "Speed and robustness" section. Medians of several runs (RUNS, default 5):
# the machines here are noisy, so compare figures taken in one go.
#
#   scripts/bench.sh embedded   cases/s against the embedded server, --jobs 1, 8, 32
#   scripts/bench.sh memory     peak RSS of runs of 3,100 and 100,006 cases
#   scripts/bench.sh moto       requests/s against moto beside moto's own ceiling
#                               (wrk, one signed ListSSHPublicKeys over and over)
#   scripts/bench.sh all
#
# Needs hyperfine, wrk and GNU time: apt-get install -y hyperfine wrk time.
set -euo pipefail

what=${1:?usage: bench.sh embedded|memory|moto|all}
root=$(cd "$(dirname "$0")/.." && pwd)
bin="$root/target/release/iam-conformance"
runs=${RUNS:-5}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

(cd "$root" && cargo build --release --quiet)

# The median wall time of a command, in seconds.
median_seconds() {
  hyperfine --runs "$runs" --warmup 1 --shell=none --ignore-failure --style none \
    --export-json "$tmp/h.json" "$*" >/dev/null 2>"$tmp/h.err" || { cat "$tmp/h.err" >&2; exit 1; }
  python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["results"][0]["median"])' "$tmp/h.json"
}

# Microseconds of CPU (user, sys) per item.
per_million() { python3 -c "import sys; print(round(1e6 * (float(sys.argv[1]) + float(sys.argv[2])) / int(sys.argv[3])))" $1 "$2"; }

ratio() { python3 -c "import sys; print(f'{float(sys.argv[1]) / float(sys.argv[2]):.${3:-0}f}')" "$1" "$2"; }

classes=$("$bin" list | tail -n +2 | wc -l)

embedded() {
  local cases=${CASES:-200} jobs t cpu port pid requests
  local total=$((classes * cases))
  echo "== embedded server: $classes classes x $cases cases, median of $runs runs"
  for jobs in 1 8 32; do
    t=$(median_seconds "$bin" run --cases "$cases" --seed 1 --jobs "$jobs")
    cpu=$(/usr/bin/time -f '%U %S' "$bin" run --cases "$cases" --seed 1 --jobs "$jobs" 2>&1 >/dev/null | tail -1)
    echo "--jobs $jobs: $(ratio "$total" "$t") cases/s (${t} s);" \
      "CPU of harness and server: $(per_million "$cpu" "$total") us per case"
  done
  # The server in a process of its own: requests per case, and the harness's
  # own CPU per case, network stack included, the server's left out.
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  "$bin" serve --port "$port" >/dev/null 2>"$tmp/serve.err" &
  pid=$!
  until curl -s -o /dev/null "http://127.0.0.1:$port/"; do sleep 0.1; done
  cpu=$(/usr/bin/time -f '%U %S' "$bin" run --endpoint "http://127.0.0.1:$port/" \
    --target-kind embedded --cases "$cases" --seed 1 --jobs 8 2>&1 >/dev/null | tail -1)
  kill -INT "$pid"
  wait "$pid" || true
  requests=$(sed -n 's/^served \([0-9]*\) requests$/\1/p' "$tmp/serve.err")
  echo "against serve (own process), --jobs 8: $(ratio "$requests" "$total" 2) requests per case;" \
    "harness CPU $(per_million "$cpu" "$total") us per case"
}

memory() {
  local cases kib
  echo "== peak memory against the embedded server (--jobs 8)"
  for cases in 100 3226; do
    kib=$(/usr/bin/time -f %M "$bin" run --cases "$cases" --seed 1 --jobs 8 2>&1 >/dev/null | tail -1)
    echo "$((classes * cases)) cases: max RSS $(ratio "$kib" 1024 1) MiB"
  done
}

moto() {
  local url log before after requests cases=${MOTO_CASES:-3} jobs t cpu
  url=$("$root/scripts/emulator.sh" moto start)
  trap '"$root/scripts/emulator.sh" moto stop; rm -rf "$tmp"' EXIT
  log="$root/.emulators/moto.log"
  local run=("$bin" run --endpoint "$url" --target-kind moto --seed 1
    --baseline "$root/corpus/baselines/moto.toml" --cases "$cases")
  echo "== moto at $url: $classes classes x $cases cases, median of $runs runs"
  # One run, its requests counted in moto's log (the same seed sends the same ones).
  before=$(grep -c 'POST / HTTP' "$log" || true)
  cpu=$(/usr/bin/time -f '%U %S' "${run[@]}" --jobs 1 2>&1 >/dev/null | tail -1)
  after=$(grep -c 'POST / HTTP' "$log" || true)
  requests=$((after - before))
  echo "a run sends $requests requests ($(ratio "$requests" $((classes * cases)) 1) per case);" \
    "harness CPU $(per_million "$cpu" "$requests") us per request"

  # The ceiling: a plain client sending one signed request (moto routes by the
  # credential scope and does not verify signatures, so one signature serves all).
  local body="Action=ListSSHPublicKeys&Version=2010-05-08&UserName=bench-ceiling"
  local sig=(--aws-sigv4 'aws:amz:us-east-1:iam' --user 'AKIAIOSFODNN7EXAMPLE:x'
    -H 'Content-Type: application/x-www-form-urlencoded; charset=utf-8')
  curl -sS -o /dev/null "${sig[@]}" --data 'Action=CreateUser&Version=2010-05-08&UserName=bench-ceiling' "$url"
  curl -sS -v -o /dev/null "${sig[@]}" --data "$body" "$url" 2>"$tmp/trace"
  {
    echo 'wrk.method = "POST"'
    echo "wrk.body = \"$body\""
    echo 'wrk.headers["Content-Type"] = "application/x-www-form-urlencoded; charset=utf-8"'
    sed -n 's/^> \(Authorization\|X-Amz-Date\): \(.*\)\r$/wrk.headers["\1"] = "\2"/p' "$tmp/trace"
  } >"$tmp/ceiling.lua"

  for jobs in 1 8; do
    t=$(median_seconds "${run[@]}" --jobs "$jobs")
    local harness ceiling
    harness=$(ratio "$requests" "$t")
    ceiling=$(wrk -t 1 -c "$jobs" -d 10s -s "$tmp/ceiling.lua" "$url" | awk '/Requests\/sec/ {print $2}')
    echo "--jobs $jobs: harness $harness requests/s ($(ratio $((classes * cases)) "$t" 1) cases/s);" \
      "wrk -c $jobs: $ceiling requests/s; ratio $(ratio "$harness" "$ceiling" 2)"
  done
}

case "$what" in
  embedded) embedded ;;
  memory) memory ;;
  moto) moto ;;
  all) embedded; memory; moto ;;
  *) echo "bench.sh: unknown '$what' (embedded|memory|moto|all)" >&2; exit 2 ;;
esac
