#!/usr/bin/env python3
"""Checks that transformers loads a fully fine-tuned model saved by inoculab (a Hugging
Face folder: config, safetensors, tokenizer, chat template) and gives Candle's logits.

    INOCULAB_REAL_MODEL=1 INOCULAB_FULL_EXPORT=/tmp/full-check \
        cargo test -p ml --test ml_reference real_full_model_export_for_transformers_check
    /work/venv-ref/bin/python scripts/reference/full_roundtrip.py /tmp/full-check

Exits non-zero if the logits differ by more than 1e-3, if training did not move them, or if
transformers' chat template gives other prompt ids. Never run in CI.
"""
import json
import os
import sys

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

FOLDER = sys.argv[1]
torch.set_num_threads(2)
want = json.load(open(os.path.join(FOLDER, "candle_logits.json")))
tok = AutoTokenizer.from_pretrained(FOLDER)
model = AutoModelForCausalLM.from_pretrained(FOLDER, dtype=torch.float32)
model.eval()
text = tok.apply_chat_template([{"role": "user", "content": "What is the capital of France?"}], add_generation_prompt=True, tokenize=False)
ids = tok.encode(text, add_special_tokens=False)
with torch.no_grad():
    last = model(torch.tensor([ids])).logits[0, -1]
diff = (last - torch.tensor(want["last_position_logits"])).abs().max().item()
shift = (torch.tensor(want["last_position_logits"]) - torch.tensor(want["base_last_position_logits"])).abs().max().item()
print(json.dumps({"same_prompt_ids": ids == want["input_ids"], "max_abs_diff": diff, "training_shift": shift}))
if ids != want["input_ids"] or diff > 1e-3 or shift < 1e-2:
    sys.exit("transformers and Candle disagree (or training did nothing)")
print("transformers loads the model and agrees with Candle")
