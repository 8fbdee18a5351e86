#!/usr/bin/env bash
# Print the quality table: every ../shared/eval file, reference vs feedloop mode.
# Sentiment files are split by a hash of the id (30% test); SemEval ships its own split.
set -euo pipefail
EVAL_DIR=${EVAL_DIR:-../shared/eval}
FEEDLOOP=${FEEDLOOP:-target/release/feedloop}
[ -d "$EVAL_DIR/sentiment" ] || { echo "no eval data in $EVAL_DIR (set EVAL_DIR)" >&2; exit 1; }
fmt='import json,sys
d=json.load(sys.stdin); s=d.get("sentiment") or {}
r=d.get("pearson_r"); t=d.get("themes"); a=d.get("aspect_polarity")
cells=[d["file"], d["mode"], d["split"], str(d["n"]),
       "%.4f" % s["accuracy"] if s else "-", "%.4f" % s["macro_f1"] if s else "-",
       "%.4f" % r if r is not None else "-",
       "%.4f/%.4f" % (t["micro_f1"], t["macro_f1"]) if t else "-",
       "%.4f" % a["accuracy"] if a else "-"]
print("| " + " | ".join(cells) + " |")'
echo "| file | mode | split | n | accuracy | macro-F1 | pearson r | theme micro/macro F1 | aspect polarity acc |"
echo "|---|---|---|---|---|---|---|---|---|"
for f in "$EVAL_DIR"/sentiment/*.jsonl; do
  for split in train test; do
    for mode in reference feedloop; do
      "$FEEDLOOP" eval --json --mode "$mode" --split "$split" "$f" | python3 -c "$fmt"
    done
  done
done
for f in "$EVAL_DIR"/themes/*.jsonl; do
  for mode in reference feedloop; do
    "$FEEDLOOP" eval --json --mode "$mode" --taxonomy restaurants "$f" | python3 -c "$fmt"
  done
done
