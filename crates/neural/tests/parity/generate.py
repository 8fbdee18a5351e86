#!/usr/bin/env python3
"""Generate the encoder parity corpus: varied texts embedded by Python
sentence-transformers with the same all-MiniLM-L6-v2 folder `make model` installs.

Usage (from the repository root; `make parity-embeddings` does this in .venv-parity,
which holds PyTorch and is deliberately not part of `make test`):
    python3 crates/neural/tests/parity/generate.py models/all-MiniLM-L6-v2 \
        > crates/neural/tests/parity/minilm_embeddings.jsonl

Deterministic (fixed seed). Every line is {"family", "text", "embedding"}; `family` names
what the text exercises (truncation, emoji, accents...), so a failure says what drifted.
"""
import json
import random
import sys

import sentence_transformers
from sentence_transformers import SentenceTransformer

rng = random.Random(20261201)

HANDWRITTEN = {
    "short": ["ok", "Great!", "meh", "No.", "Terrible", "5 stars", "why??", "thx", "Late again",
              "Love it", "k", "Not bad", "awful :(", "10/10", "Never again."],
    "feedback": [
        "The parcel never arrived and nobody answered my emails. The staff in the shop were lovely though.",
        "Delivery is always late.",
        "Checkout kept crashing on my phone, had to order three times.",
        "Support sorted my refund within an hour, really impressed.",
        "The coffee was cold and the barista ignored us for ten minutes.",
        "Prices went up again but the quality stayed the same.",
        "I waited ages on hold and then the call dropped.",
        "It took forever to get a reply from customer service.",
        "Great value for money, will definitely order again!",
        "The app logs me out every time I switch screens.",
        "Still waiting for my refund after three weeks.",
        "Lovely staff, clean store, easy parking.",
        "Product broke after two days. Cheap plastic.",
        "Would recommend to friends and family.",
        "The manager was rude when I asked for a receipt.",
    ],
    "emoji": ["Love this place 😍😍", "🔥🔥🔥", "delivery took 2 weeks 😡", "ok 👍",
              "The cake was 🤤 but the coffee 🤮", "💔", "Best service ever 🙌✨", "😐😐😐",
              "Arrived broken 📦💥", "thanks!! 🙏"],
    "non_ascii": ["Café au lait was perfect, merci!", "Señor García was very helpful.",
                  "Das Paket ist nie angekommen.", "El servicio fue terrible.",
                  "Très bon rapport qualité-prix", "naïve résumé façade coöperate",
                  "北京的咖啡很好喝", "Отличный сервис, спасибо", "東京 delivery was fast",
                  "Ünïcödé everywhere: ñ ø å ß æ", "مرحبا، الخدمة ممتازة", "שירות מצוין"],
    "empty_ish": ["", " ", "\n", "...", "!!!", "?", "-", "   \t  ", "..", "😀"],
    "punctuation": ["WHY IS THIS SO SLOW?!?!", "good... I guess?", "not-so-great",
                    "it's fine (mostly)", "\"amazing\" service /s", "a+b=c; x<y & y>z",
                    "Order #12345 — still not shipped", "e-mail me at someone@example.com",
                    "call 555-0100 asap", "https://example.com/order/42 is broken"],
}

WORDS = ("the delivery staff coffee price refund app checkout order parcel service manager "
         "slow fast rude friendly broken great terrible lovely late cold hot clean dirty "
         "cheap expensive quality support waited forever ages again never always really very "
         "not quite fine okay and but because although however the of to in on at for with").split()


def random_text(n_words):
    words = [rng.choice(WORDS) for _ in range(n_words)]
    text = " ".join(words)
    return text[0].upper() + text[1:] + rng.choice([".", "!", "?", ""])


def corpus():
    rows = []
    for family, texts in HANDWRITTEN.items():
        rows += [(family, t) for t in texts]
    vader = "crates/core/tests/parity/vader_3.3.2.jsonl"
    with open(vader, encoding="utf-8") as f:
        lines = [json.loads(l)["text"] for l in f]
    rows += [("vader_corpus", t) for t in rng.sample(lines, 80)]
    rows += [("random_words", random_text(rng.randint(3, 60))) for _ in range(40)]
    # Past the 256-token truncation: where the two implementations cut must agree.
    rows += [("long", random_text(rng.randint(300, 600))) for _ in range(10)]
    rows.append(("long", " ".join(HANDWRITTEN["feedback"]) * 6))
    return rows


def main():
    model_dir = sys.argv[1] if len(sys.argv) > 1 else "models/all-MiniLM-L6-v2"
    model = SentenceTransformer(model_dir, device="cpu")
    assert model.max_seq_length == 256, model.max_seq_length
    rows = corpus()
    vecs = model.encode([t for _, t in rows], batch_size=16, normalize_embeddings=True,
                        convert_to_numpy=True)
    print(json.dumps({"generator": "sentence-transformers " + sentence_transformers.__version__,
                      "model_dir": model_dir, "rows": len(rows)}))
    for (family, text), v in zip(rows, vecs):
        print(json.dumps({"family": family, "text": text,
                          "embedding": [round(float(x), 7) for x in v]}, ensure_ascii=False))


if __name__ == "__main__":
    main()
