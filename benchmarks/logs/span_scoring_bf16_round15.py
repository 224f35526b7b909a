"""Probe (round 15): what bfloat16 span scoring (the mention head's token projection and span
FFNN, ``spacy_hmtl.reduced_precision.v3``) costs on the dev sets, against the packages'
previous callback (``.v2``: BiLSTMs and coreference pair scoring in bfloat16, span scoring
float32). Same pipeline, same documents; only the mention head's precision differs.
Output: benchmarks/logs/span_scoring_bf16_round15.txt.

    python benchmarks/logs/span_scoring_bf16_round15.py MODEL CORPUS [CORPUS ...]
    python benchmarks/logs/span_scoring_bf16_round15.py training/scierc/model-best scierc
"""
import json
import sys
import time

import spacy
import torch
from spacy.tokens import DocBin
from spacy.training import Example

import spacy_hmtl  # noqa: F401  (registers the factories)

torch.set_num_threads(1)
model = sys.argv[1]
out = {}
for callback in ("spacy_hmtl.reduced_precision.v2", "spacy_hmtl.reduced_precision.v3"):
    nlp = spacy.load(model, config={"nlp": {"after_pipeline_creation": {"@callbacks": callback}}})
    for corpus in sys.argv[2:]:
        docs = list(DocBin().from_disk(f"corpus/{corpus}/dev.spacy").get_docs(nlp.vocab))
        examples = [Example(nlp.make_doc(d.text), d) for d in docs]
        start = time.perf_counter()
        scores = nlp.evaluate(examples)
        keys = ["ents_f", "mentions_f", "rel_strict_f", "coref_f"]
        row = {k: round(100 * scores[k], 2) for k in keys if scores.get(k) is not None}
        row["s"] = round(time.perf_counter() - start, 1)
        out.setdefault(corpus, {})[callback.rsplit(".", 1)[1]] = row
for corpus, rows in out.items():
    delta = {k: round(rows["v3"][k] - rows["v2"][k], 2) for k in rows["v2"] if k != "s"}
    print(model, corpus, json.dumps(rows), "v3 - v2:", json.dumps(delta))
