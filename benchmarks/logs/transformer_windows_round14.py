"""Probe (round 14): dev F1 of a trained MiniLM pipeline with its transformer windows set at load
(spacy-transformers strided_spans: WINDOW tokens every STRIDE), at the packaged precision
(spacy_hmtl.reduced_precision.v2, "auto"). Output: benchmarks/logs/transformer_windows_round14.txt.

    python benchmarks/logs/transformer_windows_round14.py MODEL STRIDE WINDOW CORPUS [CORPUS ...]
    python benchmarks/logs/transformer_windows_round14.py training/mixed_ft/model-best 128 128 conll04 litbank
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
model, stride, window = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
windows = {"@span_getters": "spacy-transformers.strided_spans.v1", "window": window, "stride": stride}
cfg = {
    "nlp": {"after_pipeline_creation": {"@callbacks": "spacy_hmtl.reduced_precision.v2"}},
    "components": {"transformer": {"model": {"get_spans": windows}}},
}
nlp = spacy.load(model, config=cfg)
out = {}
for corpus in sys.argv[4:]:
    docs = list(DocBin().from_disk(f"corpus/{corpus}/dev.spacy").get_docs(nlp.vocab))
    examples = [Example(nlp.make_doc(d.text), d) for d in docs]
    start = time.perf_counter()
    scores = nlp.evaluate(examples)
    keys = ["ents_f", "mentions_f", "rel_strict_f", "coref_f"]
    out[corpus] = {k: round(100 * scores[k], 2) for k in keys if scores.get(k) is not None}
    out[corpus]["s"] = round(time.perf_counter() - start, 1)
print(window, stride, json.dumps(out))
