#!/usr/bin/env python3
"""Checks that Python peft + transformers load an adapter saved by inoculab and give the
same logits as Candle.

    INOCULAB_REAL_MODEL=1 INOCULAB_PEFT_EXPORT=/tmp/peft-check \
        cargo test -p ml --test ml_reference real_adapter_export_for_peft_check
    /work/venv-ref/bin/python scripts/reference/peft_roundtrip.py /tmp/peft-check [MODEL.gguf]

Exits non-zero if the adapted logits differ by more than 1e-3. Never run in CI.
"""
import json
import os
import sys

import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ADAPTER = sys.argv[1]
GGUF = sys.argv[2] if len(sys.argv) > 2 else os.path.join(ROOT, ".data/models/SmolLM2-135M-Instruct.Q4_1.gguf")

torch.set_num_threads(2)
d, f = os.path.dirname(GGUF), os.path.basename(GGUF)
base = AutoModelForCausalLM.from_pretrained(d, gguf_file=f, torch_dtype=torch.float32)
want = json.load(open(os.path.join(ADAPTER, "candle_logits.json")))
ids = torch.tensor([want["input_ids"]])
with torch.no_grad():
    base_last = base(ids).logits[0, -1]
model = PeftModel.from_pretrained(base, ADAPTER)
model.eval()
with torch.no_grad():
    last = model(ids).logits[0, -1]
adapted = (last - torch.tensor(want["last_position_logits"])).abs().max().item()
unadapted = (base_last - torch.tensor(want["base_last_position_logits"])).abs().max().item()
shift = (last - base_last).abs().max().item()
print(json.dumps({"max_abs_diff_adapted": adapted, "max_abs_diff_base": unadapted, "adapter_shift": shift}))
if adapted > 1e-3 or shift < 1e-2:
    sys.exit("peft and Candle disagree (or the adapter does nothing)")
print("peft loads the adapter and agrees with Candle")
