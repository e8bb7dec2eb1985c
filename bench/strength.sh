#!/usr/bin/env bash
# The prompt-strength meter: Candle scores a 64-row sample of the demo dataset under one
# prompt (engine/domain/examples/bench_strength.rs), then PyTorch scores the very same token ids
# (bench/strength_torch.py) and checks the numbers agree; 2 threads each, alternating
# runs, each in its own process so peak RSS is per side. Copy the summary into BENCHMARKS.md.
#   bench/strength.sh [PYTHON_WITH_TORCH]   (default /work/venv-ref/bin/python)
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${1:-/work/venv-ref/bin/python}"
export RAYON_NUM_THREADS="${RAYON_NUM_THREADS:-2}" OMP_NUM_THREADS="${RAYON_NUM_THREADS:-2}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target-ml}"
dump=$(mktemp --suffix=.json)
cargo build --release -p engine --example bench_strength
for round in 1 2; do
  BENCH_DUMP="$dump" "$CARGO_TARGET_DIR/release/examples/bench_strength"
  if [ -x "$PY" ]; then "$PY" bench/strength_torch.py "$dump" 2>/dev/null | grep '^{'; fi
done
rm -f "$dump"
