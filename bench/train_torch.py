#!/usr/bin/env python3
"""PyTorch (+peft) side of the benchmark: the same work as engine/ml/tests/ml_bench.rs.

LoRA rank 8 on q/k/v/o, f32, fixed 8 x 128-token batch (same ids as the Rust side), AdamW,
6 steps (first untimed); sampling 128 new tokens at batch 1 and 16. Prints one JSON line
per task. Usage: python bench/train_torch.py {train|sample1|sample16} [MODEL.gguf]
Not part of CI; run by bench/run.sh when a PyTorch venv exists.
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
task = sys.argv[1]
GGUF = sys.argv[2] if len(sys.argv) > 2 else os.path.join(ROOT, ".data/models/SmolLM2-135M-Instruct.Q4_1.gguf")


def peak_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def bench_ids(rows, length):
    return [[100 + (i * 7919 + j * 104729 + i * j * 31) % 40000 for j in range(length)] for i in range(rows)]


from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: E402

d, f = os.path.dirname(GGUF), os.path.basename(GGUF)
tok = AutoTokenizer.from_pretrained(d, gguf_file=f)
model = AutoModelForCausalLM.from_pretrained(d, gguf_file=f, torch_dtype=torch.float32)

if task == "train":
    from peft import LoraConfig, get_peft_model

    pm = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"]))
    pm.train()
    opt = torch.optim.AdamW([p for p in pm.parameters() if p.requires_grad], lr=1e-4, weight_decay=0.0)
    ids = torch.tensor(bench_ids(8, 128))
    times, cpus, losses = [], [], []
    for _ in range(6):
        t = time.perf_counter()
        c = time.process_time()
        out = pm(input_ids=ids, labels=ids)
        opt.zero_grad()
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_([p for p in pm.parameters() if p.requires_grad], 1.0)
        opt.step()
        times.append(time.perf_counter() - t)
        cpus.append(time.process_time() - c)
        losses.append(out.loss.item())
    mean = sum(times[1:]) / len(times[1:])
    print(json.dumps({"impl": "pytorch", "task": "train", "threads": threads, "batch": "8x128", "step_s": mean, "step_cpu_s": sum(cpus[1:]) / len(cpus[1:]), "tokens_per_s": 1024 / mean, "peak_rss_mib": peak_rss_mib(), "losses": losses, "torch": torch.__version__}))
else:
    batch = int(task.removeprefix("sample"))
    text = tok.apply_chat_template([{"role": "user", "content": "Tell me a story about a dragon."}], add_generation_prompt=True, tokenize=False)
    p = tok.encode(text, add_special_tokens=False)
    ids = torch.tensor([p] * batch)
    torch.manual_seed(0)
    t = time.perf_counter()
    c = time.process_time()
    with torch.no_grad():
        g = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=128, min_new_tokens=128, do_sample=True, temperature=1.0, top_p=1.0, top_k=0)
    s = time.perf_counter() - t
    n = (g.shape[1] - ids.shape[1]) * batch
    print(json.dumps({"impl": "pytorch", "task": "sample", "batch": batch, "new_tokens": n, "seconds": s, "cpu_s": time.process_time() - c, "tokens_per_s": n / s, "peak_rss_mib": peak_rss_mib()}))
