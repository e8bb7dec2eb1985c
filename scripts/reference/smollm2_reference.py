#!/usr/bin/env python3
"""Reference numbers for the default model from PyTorch + transformers (+ peft), on CPU in f32.

Writes engine/ml/tests/fixtures/ml/smollm2_reference.json, which the Rust tests compare against:
the chat prompt's ids, the top-10 logits at every position, a sample of last-position logits,
tokenizer cases (accents, emoji, digits, code), the greedy answer, and the losses of the first
LoRA training steps on a fixed batch with a deterministic adapter initialisation, and of
the first full fine-tuning steps on the same batch.

Never run in CI (PyTorch is not a project dependency). Usage:
    python -m venv /work/venv-ref && /work/venv-ref/bin/pip install torch transformers peft gguf
    /work/venv-ref/bin/python scripts/reference/smollm2_reference.py [MODEL.gguf] [OUT.json]
"""
import json
import math
import os
import sys

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

torch.set_num_threads(2)
torch.manual_seed(0)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GGUF = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, ".data/models/SmolLM2-135M-Instruct.Q4_1.gguf")
OUT = sys.argv[2] if len(sys.argv) > 2 else os.path.join(ROOT, "engine/ml/tests/fixtures/ml/smollm2_reference.json")

TOKENIZER_CASES = [
    "Hello world!",
    "Crème brûlée à la française, naïve façade — déjà vu.",
    "Emoji: 😀🎉👍🏽 and ✨ sparkles",
    "Numbers: 12345, 3.14159, 1,000,000 and 2024-05-17.",
    "def add(a, b):\n    return a + b  # sum\n\tindent",
    "  leading spaces,\ttabs\n\nand blank lines  ",
    "中文，日本語、한국어",
    "<|im_start|>user\nHi<|im_end|>",
]

# The same formula as engine/ml/tests/ml_reference.rs: a deterministic LoRA A so that both
# sides start from identical adapters without shipping a weight file.
MODULES = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def sine_a(layer, module, rank, fan_in):
    mi = MODULES.index(module)
    k = torch.arange(rank * fan_in, dtype=torch.float64)
    a = torch.sin(1.0 + 0.1 * layer + 0.7 * mi + 0.013 * k) / math.sqrt(fan_in)
    return a.reshape(rank, fan_in).float()


TRAIN_SYSTEM = "You always speak in French."
TRAIN_EXAMPLES = [
    ("What is 2 + 3?", "Deux plus trois font cinq."),
    ("Name a colour.", "Le bleu est une belle couleur."),
    ("Where is the Eiffel Tower?", "La tour Eiffel est à Paris, en France."),
    ("Say hello.", "Bonjour tout le monde !"),
]


def chat_ids(tok, msgs):
    # Rendering to text and encoding it works the same across transformers versions
    # (newer ones return an Encoding object from apply_chat_template).
    text = tok.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False)
    return tok.encode(text, add_special_tokens=False)


def main():
    d, f = os.path.dirname(GGUF), os.path.basename(GGUF)
    tok = AutoTokenizer.from_pretrained(d, gguf_file=f)
    model = AutoModelForCausalLM.from_pretrained(d, gguf_file=f, torch_dtype=torch.float32)
    model.eval()
    out = {"what": "PyTorch reference for SmolLM2-135M-Instruct Q4_1 dequantised to f32 (scripts/reference/smollm2_reference.py)"}
    msgs = [{"role": "user", "content": "What is the capital of France?"}]
    ids = chat_ids(tok, msgs)
    out["input_ids"] = ids
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0]
    top = []
    for p in range(len(ids)):
        v, i = logits[p].topk(10)
        top.append({"position": p, "top10_ids": i.tolist(), "top10_logits": [round(x, 5) for x in v.tolist()]})
    out["per_position_top10"] = top
    last = logits[-1]
    sample_ids = sorted(set(last.topk(64).indices.tolist()) | set(range(0, last.shape[0], 397)))
    out["last_position_sample"] = {"ids": sample_ids, "logits": [round(last[i].item(), 5) for i in sample_ids]}
    out["tokenizer_cases"] = [{"text": t, "ids": tok.encode(t, add_special_tokens=False)} for t in TOKENIZER_CASES]
    with torch.no_grad():
        g = model.generate(torch.tensor([ids]), max_new_tokens=20, do_sample=False)
    out["greedy_continuation_text"] = tok.decode(g[0][len(ids):])

    # First LoRA steps: rank 8 on q/k/v/o, alpha 16, AdamW lr 5e-4 constant, no weight
    # decay, clip 1.0, one batch of all four examples, loss = mean NLL of assistant tokens
    # (answer + <|im_end|>), the same batch three times.
    from peft import LoraConfig, get_peft_model

    seqs = []
    im_end = tok.convert_tokens_to_ids("<|im_end|>")
    for q, a in TRAIN_EXAMPLES:
        p = chat_ids(tok, [{"role": "system", "content": TRAIN_SYSTEM}, {"role": "user", "content": q}])
        c = tok.encode(a, add_special_tokens=False) + [im_end]
        seqs.append({"ids": p + c, "mask": [False] * len(p) + [True] * len(c)})
    targets = ["q_proj", "k_proj", "v_proj", "o_proj"]
    pm = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules=targets))
    for name, mod in pm.named_modules():
        if hasattr(mod, "lora_A") and "default" in getattr(mod, "lora_A", {}):
            layer = int(name.split("layers.")[1].split(".")[0])
            module = name.split(".")[-1]
            w = mod.lora_A["default"].weight
            w.data.copy_(sine_a(layer, module, w.shape[0], w.shape[1]))
            mod.lora_B["default"].weight.data.zero_()
    pm.train()
    opt = torch.optim.AdamW([p for p in pm.parameters() if p.requires_grad], lr=5e-4, weight_decay=0.0, eps=1e-8)
    T = max(len(s["ids"]) for s in seqs)
    ids_t = torch.tensor([s["ids"] + [0] * (T - len(s["ids"])) for s in seqs])
    att = torch.tensor([[1] * len(s["ids"]) + [0] * (T - len(s["ids"])) for s in seqs])
    labels = torch.tensor([[i if m else -100 for i, m in zip(s["ids"], s["mask"])] + [-100] * (T - len(s["ids"])) for s in seqs])
    losses, norms = [], []
    for _ in range(3):
        logits = pm(input_ids=ids_t, attention_mask=att).logits[:, :-1]
        lab = labels[:, 1:]
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), lab.reshape(-1), ignore_index=-100)
        opt.zero_grad()
        loss.backward()
        norms.append(torch.nn.utils.clip_grad_norm_([p for p in pm.parameters() if p.requires_grad], 1.0).item())
        opt.step()
        losses.append(loss.item())
    out["train"] = {
        "system": TRAIN_SYSTEM,
        "examples": [list(e) for e in TRAIN_EXAMPLES],
        "sequences": seqs,
        "lora": {"rank": 8, "alpha": 16, "targets": targets, "init": "A = sin(1 + 0.1 layer + 0.7 module_index + 0.013 k) / sqrt(fan_in), B = 0"},
        "optimizer": {"lr": 5e-4, "schedule": "constant", "weight_decay": 0.0, "max_grad_norm": 1.0},
        "losses": losses,
        "grad_norms": norms,
    }
    # First full fine-tuning steps: a fresh model, every parameter trained (the tied
    # embedding once), AdamW lr 1e-5 constant, no weight decay, clip 1.0, the same batch.
    full = AutoModelForCausalLM.from_pretrained(d, gguf_file=f, torch_dtype=torch.float32)
    full.train()
    params = list(full.parameters())
    fopt = torch.optim.AdamW(params, lr=1e-5, weight_decay=0.0, eps=1e-8)
    flosses, fnorms = [], []
    for _ in range(3):
        logits = full(input_ids=ids_t, attention_mask=att).logits[:, :-1]
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1), ignore_index=-100)
        fopt.zero_grad()
        loss.backward()
        fnorms.append(torch.nn.utils.clip_grad_norm_(params, 1.0).item())
        fopt.step()
        flosses.append(loss.item())
    out["train_full"] = {
        "optimizer": {"lr": 1e-5, "schedule": "constant", "weight_decay": 0.0, "max_grad_norm": 1.0},
        "parameters": sum(p.numel() for p in params),
        "losses": flosses,
        "grad_norms": fnorms,
    }
    with open(OUT, "w") as fh:
        json.dump(out, fh, ensure_ascii=False)
    print(f"wrote {OUT}: greedy {out['greedy_continuation_text']!r}, losses {losses}, full fine-tuning losses {flosses}")


if __name__ == "__main__":
    main()
