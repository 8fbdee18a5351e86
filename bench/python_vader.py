#!/usr/bin/env python3
"""Time Python vaderSentiment 3.3.2 on a JSONL corpus (one {"text": ...} per line).
Prints one JSON object: {"texts": n, "seconds": s, "texts_per_sec": r}. Used by `make bench`."""
import json
import sys
import time

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer


def main():
    texts = [json.loads(line)["text"] for line in open(sys.argv[1], encoding="utf-8")]
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    analyzer = SentimentIntensityAnalyzer()
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for t in texts:
            analyzer.polarity_scores(t)
        best = min(best, time.perf_counter() - start)
    print(json.dumps({"texts": len(texts), "seconds": best, "texts_per_sec": len(texts) / best}))


if __name__ == "__main__":
    main()
