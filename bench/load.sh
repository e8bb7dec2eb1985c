#!/usr/bin/env bash
# Page loads of a shared server under load (issue 24): the release build serving, its worker
# training a run the whole time, and 50 concurrent clients reading the main pages (full
# server-rendered HTML: home, prompts, datasets, models, experiments, the queue, an
# experiment's page and its report) for 60 s. Prints and appends one JSON line to
# bench/results.jsonl: requests, failures, latency percentiles (ms), per-path p99, and the
# machine's load average before.   Usage: bench/load.sh [SECONDS=60] [CLIENTS=50]
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_=${1:-60}
CLIENTS=${2:-50}
BIN=target/release/inoculab
MODEL="$PWD/.data/models/SmolLM2-135M-Instruct.Q4_1.gguf"
[ -x "$BIN" ] || cargo build --release -p server
DATA=$(mktemp -d /tmp/inoculab-load-XXXX)
PORT=$((20000 + RANDOM % 10000))
inc() { "$BIN" --data-dir "$DATA" --default-model "$MODEL" "$@"; }
load_before=$(cut -d' ' -f1 /proc/loadavg)

inc dataset generate --preset spanish_all_caps --rows 256 --name toy >/dev/null
# Enough steps that the run is still training when the clients stop.
cat > "$DATA/train.toml" <<'TOML'
name = "training under load"
dataset = "toy"
[[conditions]]
name = "spanish"
prompt = "You always speak in Spanish."
[training]
steps = 400
batch_size = 8
[evaluation]
questions = [{ kind = "builtin", limit = 8 }]
max_tokens = 16
judges = [{ kind = "language", target = "es" }]
TOML
RUST_LOG=warn "$BIN" --data-dir "$DATA" --default-model "$MODEL" serve --port "$PORT" \
  --site-root "$PWD/target/site" >/dev/null 2>"$DATA/server.log" &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true; rm -rf "$DATA"' EXIT
until curl -sf "http://127.0.0.1:$PORT/" >/dev/null; do sleep 0.2; done
inc run "$DATA/train.toml" --detach >/dev/null
sql() { python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute(sys.argv[2]).fetchone()[0])" "$DATA/inoculab.sqlite" "$1"; }
until [ "$(sql "SELECT COUNT(*) FROM train_steps")" -ge 1 ]; do sleep 1; done
load=$(node bench/load.mjs "http://127.0.0.1:$PORT" "$SECONDS_" "$CLIENTS" \
  / /prompts /datasets /models /experiments /queue /experiments/1 /experiments/1/report)
steps=$(sql "SELECT COUNT(*) FROM train_steps")
phase=$(sql "SELECT phase FROM runs WHERE id = 1")
python3 - "$load" "$load_before" "$steps" "$phase" "$(nproc)" "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)" <<'PY' | tee -a bench/results.jsonl
import json, sys
load, before, steps, phase, cores, cpu = sys.argv[1:]
print(json.dumps(dict(task="page_load_while_training", build="release", load_before=float(before),
    train_steps_at_end=int(steps), run_phase_at_end=phase, cores=int(cores), cpu=cpu,
    page_load=json.loads(load), command="bench/load.sh")))
PY
