#!/usr/bin/env bash
# Candle vs PyTorch on the same CPU: LoRA training (8 x 128 tokens, rank 8 on q/k/v/o, f32)
# and sampling (128 new tokens at batch 1 and 16; llama-cpp-python at batch 1 on the GGUF's
# own quantised weights when installed), 2 threads each, every task in its own
# process so that peak RSS is per task. Results go to bench/results.jsonl; copy the
# summary into BENCHMARKS.md.
#   bench/run.sh [PYTHON_WITH_TORCH]   (default /work/venv-ref/bin/python; skipped if absent)
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${1:-/work/venv-ref/bin/python}"
export RAYON_NUM_THREADS="${RAYON_NUM_THREADS:-2}" OMP_NUM_THREADS="${RAYON_NUM_THREADS:-2}"
export INOCULAB_BENCH=1 INOCULAB_REAL_MODEL=1
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target-ml}"
# Appended to: the file is the history of every measurement the docs quote.
out=bench/results.jsonl
cargo test --release -p ml --test ml_bench --no-run
for t in bench_train bench_sample_batch1 bench_sample_batch16 bench_sample_batch16_distinct_prompts; do
  cargo test --release -p ml --test ml_bench -- --exact "$t" --nocapture --test-threads=1 2>/dev/null | grep -o '{.*}' | tee -a "$out"
done
if [ -x "$PY" ]; then
  for t in train sample1 sample16; do
    "$PY" bench/train_torch.py "$t" 2>/dev/null | grep '^{' | tee -a "$out"
  done
  # The quantised peer, when llama-cpp-python is installed in the same venv.
  if "$PY" -c "import llama_cpp" 2>/dev/null; then
    "$PY" bench/sample_llamacpp.py 2>/dev/null | grep '^{' | tee -a "$out"
  else
    echo "no llama-cpp-python in $PY; llama.cpp not measured" >&2
  fi
else
  echo "no PyTorch python at $PY; only Candle measured" >&2
fi
