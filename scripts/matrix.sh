#!/usr/bin/env bash
# The emulator matrix as CI runs it: installs (once, cached) and starts moto, moto-ext,
# LocalStack and ministack on 127.0.0.1, runs `iam-conformance matrix` over them with the
# baselines in corpus/baselines (seed 1, 30 cases per class), and stops them again.
# Extra arguments go to the matrix command; to regenerate the README's matrix and the
# saved regressions:
#
#   scripts/matrix.sh --readme README.md --regressions corpus/regressions
set -euo pipefail
cd "$(dirname "$0")/.."

emulators=(moto moto-ext localstack ministack)
stop_all() {
  for n in "${emulators[@]}"; do scripts/emulator.sh "$n" stop || true; done
}
trap stop_all EXIT

targets=()
for n in "${emulators[@]}"; do
  url=$(scripts/emulator.sh "$n" start)
  version=$(scripts/emulator.sh "$n" version)
  echo "$n $version at $url" >&2
  targets+=(--target "$n=$url,$n,$version")
done
cargo run --quiet -- matrix --seed 1 --cases 30 "${targets[@]}" "$@"
