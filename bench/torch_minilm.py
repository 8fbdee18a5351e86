#!/usr/bin/env python3
"""Time Python sentence-transformers (PyTorch, one thread) on the same texts as the
Rust neural bench. Usage: torch_minilm.py MODEL_DIR TEXTS.jsonl BATCH. Prints JSON."""
import json
import sys
import time

import torch
from sentence_transformers import SentenceTransformer


def main():
    model_dir, corpus, batch = sys.argv[1], sys.argv[2], int(sys.argv[3])
    torch.set_num_threads(1)
    texts = [json.loads(l)["text"] for l in open(corpus, encoding="utf-8")]
    model = SentenceTransformer(model_dir, device="cpu")
    model.encode(texts[:batch], batch_size=batch)
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        model.encode(texts, batch_size=batch, normalize_embeddings=True)
        best = min(best, time.perf_counter() - start)
    print(json.dumps({"texts": len(texts), "seconds": best, "texts_per_sec": len(texts) / best}))


if __name__ == "__main__":
    main()
