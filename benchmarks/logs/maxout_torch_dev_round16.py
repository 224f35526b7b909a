"""Probe (round 16): the dev-set F1 of a pipeline with the hash embeddings' Maxout computed by
torch (``layers/maxout_inference.py``) and by thinc's own forward, as packaged
(``spacy_hmtl.reduced_precision.v3``: bfloat16 downstream, where a float-noise change of the
embeddings can move a bfloat16 rounding) and in float32. Output:
benchmarks/logs/maxout_torch_dev_round16.txt.

    python benchmarks/logs/maxout_torch_dev_round16.py MODEL CORPUS [MODEL CORPUS ...]
"""
import json
import sys

import spacy
import torch
from spacy.tokens import DocBin
from spacy.training import Example
from thinc.layers import maxout as thinc_maxout

import spacy_hmtl  # noqa: F401  (registers the factories)
from spacy_hmtl.layers.maxout_inference import maxout_forward
from spacy_hmtl.reduced_precision import REDUCED_PRECISION_OVERRIDES

torch.set_num_threads(1)
print(f"python {' '.join(sys.argv)}")
args = sys.argv[1:]
for model, corpus in zip(args[::2], args[1::2]):
    for precision, overrides in (("as packaged", REDUCED_PRECISION_OVERRIDES), ("float32", {})):
        nlp = spacy.load(model, config=overrides)
        docs = list(DocBin().from_disk(f"corpus/{corpus}/dev.spacy").get_docs(nlp.vocab))
        rows = {}
        for name, forward in (("thinc", thinc_maxout.forward), ("torch", maxout_forward)):
            for _, pipe in nlp.pipeline:
                for node in pipe.model.walk() if hasattr(pipe, "model") else []:
                    if node.name == "maxout":
                        node._func = forward
            scores = nlp.evaluate([Example(nlp.make_doc(d.text), d) for d in docs])
            keys = ["ents_f", "mentions_f", "rel_strict_f", "coref_f"]
            rows[name] = {k: round(100 * scores[k], 2) for k in keys if scores.get(k) is not None}
        delta = {k: round(rows["torch"][k] - rows["thinc"][k], 2) for k in rows["thinc"]}
        print(model, corpus, precision, json.dumps(rows), "torch - thinc:", json.dumps(delta))
