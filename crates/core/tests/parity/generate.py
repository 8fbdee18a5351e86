#!/usr/bin/env python3
"""Generate the VADER parity corpus: varied texts scored by Python vaderSentiment 3.3.2.

Usage (from the repository root; `make parity-corpus` does this in the project venv):
    pip install vaderSentiment==3.3.2
    python3 crates/core/tests/parity/generate.py > crates/core/tests/parity/vader_3.3.2.jsonl

The output is deterministic (fixed seed). Every line is
    {"text": ..., "neg": ..., "neu": ..., "pos": ..., "compound": ..., "family": ...}
where `family` names the phenomenon the text exercises, so a parity failure says which
rule drifted.
"""
import json
import random
import sys

import vaderSentiment
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer, BOOSTER_DICT, NEGATE

EXPECTED_VERSION_FILE = "vaderSentiment-3.3.2"

rng = random.Random(20261124)
analyzer = SentimentIntensityAnalyzer()
LEXICON = sorted(analyzer.lexicon)
LEX_WORDS = [w for w in LEXICON if w.isalpha()]
EMOJI_KEYS = sorted(k for k in analyzer.emojis if len(k) == 1)
BOOSTERS = sorted(BOOSTER_DICT)

SUBJECTS = ["The food", "Our waiter", "The delivery", "This app", "The checkout", "Support",
            "The hotel room", "My order", "The new update", "The staff", "Shipping", "The price",
            "The refund process", "Customer service", "The website", "The coffee", "It",
            "The parcel", "Billing", "The manager", "Your team", "The product", "The installer"]
VERBS = ["was", "is", "seemed", "felt", "has been", "looked", "got", "became"]
POS_ADJ = ["good", "great", "excellent", "amazing", "friendly", "helpful", "fast", "nice",
           "perfect", "wonderful", "lovely", "fantastic", "awesome", "pleasant", "clean",
           "reliable", "easy", "brilliant", "superb", "happy", "cool", "fun", "fine"]
NEG_ADJ = ["bad", "terrible", "awful", "slow", "rude", "horrible", "poor", "dirty", "broken",
           "useless", "disappointing", "annoying", "expensive", "frustrating", "ugly",
           "confusing", "late", "cold", "wrong", "sad", "angry", "worst", "boring"]
NEUTRAL = ["okay", "average", "there", "on time", "as described", "blue", "in the box",
           "at the counter", "ready", "the same", "new", "small", "big", "open"]
EMOTICONS = [":)", ":(", ":-)", ":-(", ":D", ";)", ":P", ":/", ":'(", "<3", "</3", ":-D", "XD",
             "xD", "=)", ":|", "D:", ";-)", ":o", "^_^", "-_-", "T_T", ":3", "(:", "):", ":]"]
CONTRACTIONS = ["isn't", "wasn't", "don't", "didn't", "can't", "won't", "couldn't", "wouldn't",
                "shouldn't", "aren't", "doesn't", "haven't", "ain't", "cant", "dont", "wont",
                "isnt", "wasnt", "didnt", "doesnt", "mustn't", "needn't"]
IDIOMS = ["the shit", "the bomb", "bad ass", "badass", "bus stop", "yeah right", "kiss of death",
          "to die for", "beating heart", "cut the mustard", "hand to mouth", "upper hand",
          "break a leg", "in the black", "in the red", "on the ball", "under the weather",
          "kind of", "sort of", "just enough", "kinda", "sorta"]
FEEDBACK = [
    "I still can't log in after the reset.", "The parcel never arrived.",
    "I was charged twice for the same order.", "Delivery was late again and nobody called.",
    "Staff were friendly but the wait was way too long.", "Great value, will come back!",
    "The app keeps crashing when I try to pay.", "Refund took three weeks, unacceptable.",
    "Support solved it in five minutes, thanks!", "No one answered my emails.",
    "Not bad, not great.", "The room was clean and the bed was comfy.",
    "Checkout is confusing and the coupon didn't work.", "Absolutely love the new menu :)",
    "Why is it so hard to cancel???", "Best coffee in town!!!", "Meh.",
    "I have been waiting 40 minutes for my food.", "At least the staff apologised.",
    "Price went up but quality went down.", "Would recommend to friends and family.",
]


def choice(xs):
    return xs[rng.randrange(len(xs))]


def rand_case(word):
    r = rng.random()
    if r < 0.15:
        return word.upper()
    if r < 0.25:
        return word.capitalize()
    return word


def punct():
    return choice([".", "!", "!!", "!!!", "!!!!!", "?", "??", "???", "?!", "...", "", ",", "?!?!?"])


def sentence(adj_pool):
    return f"{choice(SUBJECTS)} {choice(VERBS)} {choice(adj_pool)}{punct()}"


def gen_family(name, count, make):
    seen = set()
    tries = 0
    while len(seen) < count and tries < count * 50:
        tries += 1
        t = make()
        if t not in seen:
            seen.add(t)
            yield name, t


def negations():
    neg = choice(["not", "never", "no", "isn't", "without", "hardly", "nothing", "none", "nor",
                  "nope", "despite", "rarely", "seldom", "uh-uh", "cannot"])
    gap = " ".join(choice(["really", "very", "that", "so", "this", "the", "a", "much", "at all"])
                   for _ in range(rng.randrange(0, 3)))
    return f"{choice(SUBJECTS)} {choice(VERBS)} {neg} {gap} {choice(POS_ADJ + NEG_ADJ)}{punct()}"


def buts():
    parts = [sentence(POS_ADJ), sentence(NEG_ADJ), sentence(NEUTRAL)]
    rng.shuffle(parts)
    conj = choice(["but", "BUT", "But", "but", "however", "but also"])
    return f"{parts[0]} {conj} {parts[1].lower()} {parts[2] if rng.random() < 0.3 else ''}".strip()


def caps():
    words = f"{choice(SUBJECTS)} {choice(VERBS)} {choice(BOOSTERS)} {choice(POS_ADJ + NEG_ADJ)}".split()
    k = rng.randrange(len(words))
    words[k] = words[k].upper()
    if rng.random() < 0.3:
        words = [w.upper() for w in words]
    return " ".join(words) + punct()


def emoticons():
    s = sentence(choice([POS_ADJ, NEG_ADJ, NEUTRAL]))
    e = choice(EMOTICONS)
    return choice([f"{s} {e}", f"{e} {s}", f"{s}{e}", f"{e}", f"{e} {e} {choice(POS_ADJ)}"])


def emoji():
    s = sentence(choice([POS_ADJ, NEG_ADJ, NEUTRAL]))
    es = "".join(choice(EMOJI_KEYS) for _ in range(rng.randrange(1, 4)))
    return choice([f"{s} {es}", f"{es}{s}", f"{s}{es}", es, f"{s[:10]}{es}{s[10:]}"])


def idioms():
    i = choice(IDIOMS)
    return choice([f"{choice(SUBJECTS)} {choice(VERBS)} {i}{punct()}",
                   f"{i.capitalize()}, {sentence(POS_ADJ + NEG_ADJ).lower()}",
                   f"that {choice(POS_ADJ + NEG_ADJ)} {i} {choice(LEX_WORDS)}",
                   f"{choice(LEX_WORDS)} {i} {choice(LEX_WORDS)} {choice(LEX_WORDS)}"])


def boosters():
    b = " ".join(rand_case(choice(BOOSTERS)) for _ in range(rng.randrange(1, 4)))
    return f"{choice(SUBJECTS)} {choice(VERBS)} {b} {choice(POS_ADJ + NEG_ADJ)}{punct()}"


def punctuation():
    s = sentence(choice([POS_ADJ, NEG_ADJ]))
    return s.rstrip(".!?,") + "".join(choice("!?.") for _ in range(rng.randrange(0, 9)))


def no_rule():
    forms = [f"no {choice(LEX_WORDS)}", f"no {choice(['way', 'problem', 'issues', 'complaints'])}",
             f"no {choice(LEX_WORDS)} or {choice(LEX_WORDS)}", f"no {choice(LEX_WORDS)} nor {choice(LEX_WORDS)}",
             "no", "No!", f"{choice(SUBJECTS)} had no {choice(LEX_WORDS)} {choice(LEX_WORDS)}",
             f"no no {choice(POS_ADJ)}", f"{choice(POS_ADJ)} no"]
    return choice(forms) + punct()


def least():
    return choice([f"At least it {choice(CONTRACTIONS)} {choice(NEG_ADJ)}.",
                   f"{choice(SUBJECTS)} was the least {choice(POS_ADJ + NEG_ADJ)} part",
                   f"very least {choice(POS_ADJ)}", f"at least {choice(POS_ADJ)}",
                   f"least {choice(LEX_WORDS)}", f"{choice(SUBJECTS)} is at least {choice(POS_ADJ)}"])


def contractions():
    return f"{choice(SUBJECTS)} {choice(CONTRACTIONS)} {choice(['really', '', 'so', 'very'])} {choice(POS_ADJ + NEG_ADJ)}{punct()}"


def long_text():
    n = rng.randrange(8, 40)
    pools = [POS_ADJ, NEG_ADJ, NEUTRAL]
    parts = []
    for _ in range(n):
        r = rng.random()
        if r < 0.6:
            parts.append(sentence(choice(pools)))
        elif r < 0.7:
            parts.append(choice(FEEDBACK))
        elif r < 0.8:
            parts.append(choice(EMOTICONS))
        elif r < 0.9:
            parts.append(negations())
        else:
            parts.append(buts())
    return " ".join(parts)


def feedback():
    t = choice(FEEDBACK)
    r = rng.random()
    if r < 0.3:
        return t
    if r < 0.5:
        return t.upper()
    if r < 0.7:
        return f"{t} {choice(FEEDBACK)}"
    return f"{t} {choice(EMOTICONS)}"


def salad():
    """Random mixes of lexicon words, boosters, negators and punctuation: the cheapest way
    to reach the odd corners (repeated values around `but`, caps next to boosters, ...)."""
    pool = [lambda: choice(LEXICON), lambda: choice(BOOSTERS), lambda: choice(NEGATE),
            lambda: choice(["but", "no", "least", "at", "very", "so", "this", "never", "kind", "of",
                            "without", "doubt", "or", "nor", "the", "a", "I", "it"]),
            lambda: choice(EMOTICONS), lambda: choice(EMOJI_KEYS), lambda: choice(IDIOMS)]
    words = [rand_case(choice(pool)()) for _ in range(rng.randrange(1, 16))]
    seps = [choice([" ", " ", " ", ", ", "! ", "? ", ". ", "  "]) for _ in words]
    return "".join(w + s for w, s in zip(words, seps)).strip() + punct()


def unicode_edges():
    ws = choice(["\u00a0", "\u2003", "\u3000", "\x1c", "\x1f", "\t", "\n", "\u2028", "\u200b", "\u0085"])
    return choice([f"{choice(POS_ADJ)}{ws}{choice(NEG_ADJ)}",
                   f"ÉNORME {choice(POS_ADJ)} café", f"ΣΟΦΟΣ {choice(POS_ADJ).upper()} {choice(NEG_ADJ)}",
                   f"ǅemal was {choice(POS_ADJ)}", f"{ws}{sentence(POS_ADJ)}{ws}",
                   f"naïve {choice(NEG_ADJ)} résumé!!", f"'{choice(POS_ADJ)}' — “{choice(NEG_ADJ)}”",
                   f"{choice(EMOJI_KEYS)}{ws}{choice(EMOJI_KEYS)}", f"GOOD{ws}bad{ws}UGLY",
                   f"Straße ist {choice(POS_ADJ)}", f"{choice(POS_ADJ)}… {choice(NEG_ADJ)}"])


FAMILIES = [
    ("negation", 500, negations), ("but", 500, buts), ("caps", 450, caps),
    ("emoticon", 400, emoticons), ("emoji", 400, emoji), ("idiom", 350, idioms),
    ("booster", 450, boosters), ("punctuation", 350, punctuation), ("no", 350, no_rule),
    ("at_least", 200, least), ("contraction", 350, contractions), ("long", 250, long_text),
    ("feedback", 250, feedback), ("salad", 1200, salad), ("unicode", 150, unicode_edges),
]


def main():
    n = 0
    out = sys.stdout
    for name, count, make in FAMILIES:
        for family, text in gen_family(name, count, make):
            s = analyzer.polarity_scores(text)
            out.write(json.dumps({"family": family, "text": text, **s}, ensure_ascii=False) + "\n")
            n += 1
    print(f"wrote {n} texts", file=sys.stderr)


if __name__ == "__main__":
    main()
