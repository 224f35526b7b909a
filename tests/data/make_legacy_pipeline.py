"""Write the saved-pipeline fixture of an older release, for the load-compatibility test.

Run with the older release's package first on the path, from its checkout, e.g.:

    git worktree add /tmp/old b6a203a
    cd /tmp/old && PYTHONPATH=/tmp/old python /path/to/tests/data/make_legacy_pipeline.py OUT_DIR

It trains the tests' tiny four-head pipeline (tests/helpers.py of that checkout) for 20
steps, saves it to OUT_DIR/model and writes OUT_DIR/expected.json: the annotations that
release predicts for a few texts, which the current package must reproduce.
"""
import json
import sys
from pathlib import Path

import spacy
from spacy.util import fix_random_seed

TEXTS = [
    "Alice Smith works for Acme Corp in Paris . She likes it .",
    "Bob lives in Berlin .",
    "",
    "x",
]


# thresholds at 0 and singletons on, so that every head's scores show in the output
OVERRIDES = {
    "components": {
        "hmtl_mentions": {"threshold": 0.0},
        "hmtl_relations": {"threshold": 0.0},
        "hmtl_coref": {"predict_singletons": True},
    }
}
# entities set after hmtl_ner (token offsets, label index into the NER labels), so that
# the relation head has arguments to score
FIXED_ENTS = {0: [(0, 2, 0), (4, 6, 1), (7, 8, 0)], 1: [(0, 1, 0), (3, 4, 1)]}


def annotate(nlp, text: str, i: int):
    """Run the pipes one by one, with FIXED_ENTS after the NER head."""
    from spacy.tokens import Span

    doc = nlp.make_doc(text)
    for name, pipe in nlp.pipeline:
        doc = pipe(doc)
        if name == "hmtl_ner":
            doc.user_data["predicted_ents"] = [(e.start, e.end, e.label_) for e in doc.ents]
        if name == "hmtl_ner" and i in FIXED_ENTS:
            labels = nlp.get_pipe("hmtl_ner").labels
            ents = [Span(doc, s, e, label=labels[k % len(labels)]) for s, e, k in FIXED_ENTS[i]]
            doc.set_ents(ents, default="outside")
    return doc


def annotations(doc) -> dict:
    group = doc.spans.get("mentions")
    scores = group.attrs.get("scores", []) if group is not None else []
    return {
        "tensor_sum": round(float(doc.tensor.sum()), 3) if doc.tensor.size else 0.0,
        "predicted_ents": doc.user_data["predicted_ents"],
        "ents": [(e.start, e.end, e.label_) for e in doc.ents],
        "mentions": [(s.start, s.end, s.label_, round(float(p), 4)) for s, p in zip(group or [], scores)],
        "relations": [list(r[:5]) + [round(float(r[5]), 4)] for r in doc._.hmtl_relations_data or []],
        "coref": [[(s.start, s.end) for s in cluster] for cluster in doc._.coref_clusters or []],
    }


def main(out: Path) -> None:
    sys.path.insert(0, str(Path.cwd() / "tests"))
    from helpers import build_tiny_nlp  # the older checkout's test helpers

    fix_random_seed(0)
    nlp, _ = build_tiny_nlp(steps=20)
    out.mkdir(parents=True, exist_ok=True)
    nlp.to_disk(out / "model")
    loaded = spacy.load(out / "model", config=OVERRIDES)
    expected = [{"text": t, **annotations(annotate(loaded, t, i))} for i, t in enumerate(TEXTS)]
    (out / "expected.json").write_text(json.dumps(expected, indent=1) + "\n", encoding="utf8")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
