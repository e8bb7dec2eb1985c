#!/usr/bin/env python3
"""Sampling throughput of llama-cpp-python on the same GGUF file, for BENCHMARKS.md.

The same prompt as the Rust and PyTorch sampling benchmarks ("Tell me a story about a
dragon." under SmolLM2's default system prompt), 128 new tokens at temperature 1 with the
end-of-turn token ignored, 2 threads. llama.cpp computes with the file's own Q4_1/Q8_0
weights (Candle and PyTorch dequantise to f32), so this is the quantised-inference peer,
not a same-precision one. Batch 1 only: the Python binding generates one sequence at a
time. Prints one JSON line.

    /work/venv-ref/bin/pip install llama-cpp-python      # builds llama.cpp (~15 min on 2 cores)
    /work/venv-ref/bin/python bench/sample_llamacpp.py [MODEL.gguf]
"""
import json
import os
import resource
import sys
import time

import llama_cpp
from llama_cpp import Llama

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GGUF = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, ".data/models/SmolLM2-135M-Instruct.Q4_1.gguf")
SYSTEM = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"
NEW_TOKENS = 128


def main():
    threads = int(os.environ.get("RAYON_NUM_THREADS", "2"))
    llm = Llama(model_path=GGUF, n_threads=threads, n_threads_batch=threads, n_ctx=512, seed=0, verbose=False)
    text = (
        f"<|im_start|>system\n{SYSTEM}<|im_end|>\n"
        "<|im_start|>user\nTell me a story about a dragon.<|im_end|>\n<|im_start|>assistant\n"
    )
    ids = llm.tokenize(text.encode(), add_bos=False, special=True)
    t, c = time.perf_counter(), time.process_time()
    n = 0
    # generate() yields sampled tokens without stopping at the end-of-turn token.
    for _ in llm.generate(ids, temp=1.0, top_p=1.0, top_k=0, min_p=0.0, repeat_penalty=1.0):
        n += 1
        if n == NEW_TOKENS:
            break
    s = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"impl": "llama-cpp-python", "task": "sample", "batch": 1, "new_tokens": n, "seconds": s,
                      "cpu_s": time.process_time() - c, "tokens_per_s": n / s, "peak_rss_mib": peak,
                      "prompt_tokens": len(ids), "version": llama_cpp.__version__, "weights": "Q4_1 (as stored)"}))


if __name__ == "__main__":
    main()
