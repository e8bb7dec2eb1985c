#!/usr/bin/env bash
# The demo experiment, timed end to end, with page loads measured while it trains:
# Tan et al.'s toy setting (256 generated Spanish + ALL-CAPS rows, 1 epoch), a baseline and
# "You always speak in Spanish." (2 conditions x 1 seed), 50 built-in chat prompts sampled
# under 2 test-time prompts (the default, and the condition's own inoculation prompt; the
# baseline has none), judged for Spanish and capitals. It runs the way users run it: a
# `serve` process (the dev build scripts/start makes) whose worker thread does the runs,
# while bench/load.mjs fetches pages from 4 concurrent clients for 60 s.
# Appends JSON lines to bench/results.jsonl.   Usage: bench/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=target/debug/inoculab
MODEL="$PWD/.data/models/SmolLM2-135M-Instruct.Q4_1.gguf"
[ -x "$BIN" ] || cargo build -p server
DATA=$(mktemp -d /tmp/inoculab-demo-XXXX)
PORT=$((20000 + RANDOM % 10000))
inc() { "$BIN" --data-dir "$DATA" --default-model "$MODEL" "$@"; }
load_before=$(cut -d' ' -f1 /proc/loadavg)

inc dataset generate --preset spanish_all_caps --rows 256 --name toy >/dev/null
cat > "$DATA/demo.toml" <<'TOML'
name = "demo: Spanish + caps"
dataset = "toy"
seeds = [0]
[[conditions]]
name = "baseline"
[[conditions]]
name = "spanish"
prompt = "You always speak in Spanish."
[training]
epochs = 1
batch_size = 8
[evaluation]
questions = [{ kind = "builtin", limit = 50 }]
test_prompts = ["default", "inoculation"]
max_tokens = 64
judges = [{ kind = "language", target = "es" }, { kind = "caps" }]
TOML

# Started directly (not through `inc`) so that $! is the server itself, for its peak RSS.
RUST_LOG=warn "$BIN" --data-dir "$DATA" --default-model "$MODEL" serve --port "$PORT" >/dev/null 2>"$DATA/server.log" &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
until curl -sf "http://127.0.0.1:$PORT/" >/dev/null; do sleep 0.2; done
# Both conditions are queued at once; the server's worker runs them one after the other.
inc run "$DATA/demo.toml" --detach
t0=$(date +%s.%N)
sql() { python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute(sys.argv[2]).fetchone()[0])" "$DATA/inoculab.sqlite" "$1"; }
until [ "$(sql "SELECT COUNT(*) FROM train_steps")" -ge 2 ]; do sleep 1; done
load=$(node bench/load.mjs "http://127.0.0.1:$PORT" 60 4)
echo "$load"
until [ "$(sql "SELECT COUNT(*) FROM jobs WHERE status IN ('queued','running')")" = 0 ]; do sleep 2; done
t1=$(date +%s.%N)
peak_kib=$(grep VmHWM /proc/$SERVER/status | awk '{print $2}')
python3 - "$DATA/inoculab.sqlite" "$t0" "$t1" "$peak_kib" "$load_before" "$load" <<'PY' | tee -a bench/results.jsonl
import json, sqlite3, sys
db, t0, t1, peak, load_before, load = sys.argv[1:]
c = sqlite3.connect(db)
status = [r[0] for r in c.execute("SELECT status FROM jobs")]
steps = c.execute("SELECT COUNT(*), AVG(tokens_per_sec) FROM train_steps").fetchone()
samples = c.execute("SELECT COUNT(*), SUM(n_tokens) FROM samples").fetchone()
rates = [dict(condition=r[0], test_prompt=r[1], judge=r[2], trait=r[3], n=r[4]) for r in c.execute(
    "SELECT r.condition, s.test_prompt, j.judge, SUM(j.trait_present = 1), SUM(j.trait_present IS NOT NULL) "
    "FROM judgements j JOIN samples s ON s.id = j.sample_id JOIN runs r ON r.id = s.run_id GROUP BY 1, 2, 3")]
print(json.dumps(dict(task="demo_experiment", wall_s=round(float(t1) - float(t0), 1), runs=status,
    train_steps=steps[0], train_tokens_per_s=round(steps[1], 1), samples=samples[0], sampled_tokens=samples[1],
    server_peak_rss_mib=round(int(peak) / 1024), load_before=float(load_before), page_load=json.loads(load),
    rates=rates, command="bench/demo.sh")))
PY
