#!/usr/bin/env python3
"""PyTorch side of the strength-meter benchmark: scores the very token ids and loss masks
that engine/domain/examples/bench_strength.rs scored (its BENCH_DUMP file), batched the same way
(16 rows, longest first, right padding), f32, no grad; times the prompted pass and checks
that PyTorch's per-row log-prob sums agree with Candle's.

Usage: python bench/strength_torch.py DUMP.json [MODEL.gguf]   (run by bench/strength.sh)
Not part of CI.
"""
import json
import os
import resource
import sys
import time

import torch

threads = int(os.environ.get("RAYON_NUM_THREADS", "2"))
torch.set_num_threads(threads)
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
dump = json.load(open(sys.argv[1]))
GGUF = sys.argv[2] if len(sys.argv) > 2 else os.path.join(ROOT, ".data/models/SmolLM2-135M-Instruct.Q4_1.gguf")
reps = int(os.environ.get("BENCH_REPS", "5"))

from transformers import AutoModelForCausalLM  # noqa: E402

d, f = os.path.dirname(GGUF), os.path.basename(GGUF)
model = AutoModelForCausalLM.from_pretrained(d, gguf_file=f, torch_dtype=torch.float32)
model.eval()


def score(rows, batch=16):
    order = sorted(range(len(rows)), key=lambda i: -len(rows[i]["ids"]))
    sums = [0.0] * len(rows)
    for k in range(0, len(order), batch):
        chunk = order[k : k + batch]
        t = max(len(rows[i]["ids"]) for i in chunk)
        ids = torch.zeros((len(chunk), t), dtype=torch.long)
        att = torch.zeros((len(chunk), t), dtype=torch.long)
        for r, i in enumerate(chunk):
            n = len(rows[i]["ids"])
            ids[r, :n] = torch.tensor(rows[i]["ids"])
            att[r, :n] = 1
        with torch.no_grad():
            hidden = model.model(input_ids=ids, attention_mask=att).last_hidden_state
            # Logits only where a target is predicted, as the Candle side does.
            for r, i in enumerate(chunk):
                mask = rows[i]["mask"]
                pos = [j - 1 for j in range(1, len(mask)) if mask[j]]
                if not pos:
                    continue
                logits = model.lm_head(hidden[r, pos])
                lp = torch.log_softmax(logits.float(), dim=-1)
                tgt = torch.tensor([rows[i]["ids"][j + 1] for j in pos])
                sums[i] = lp[torch.arange(len(pos)), tgt].sum().item()
    return sums


times = []
for _ in range(reps):
    t = time.perf_counter()
    sums = score(dump["prompted"])
    times.append(time.perf_counter() - t)
times.sort()
diffs = [abs(a - r["sum_logprob"]) / max(r["n_tokens"], 1) for a, r in zip(sums, dump["prompted"])]
print(
    json.dumps(
        {
            "impl": "torch",
            "task": "strength_score_64",
            "torch": torch.__version__,
            "rows": len(dump["prompted"]),
            "prompted_pass_median_s": times[len(times) // 2],
            "prompted_pass_min_s": times[0],
            "reps": reps,
            "max_abs_diff_per_token_vs_candle": max(diffs),
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
            "threads": threads,
        }
    )
)
