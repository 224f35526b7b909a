"""Probe (round 14): where the fine-tuned MiniLM's time goes, as packaged (bfloat16, length
buckets): torch's profiler over the transformer pipe on the SciERC test texts, one thread.
Output: benchmarks/logs/transformer_profile_round14.txt (two trainings ran beside it: read the
shares, not the seconds).

    python benchmarks/logs/transformer_profile_round14.py training/mixed_ft/model-best
"""
import sys

import spacy
import torch
from spacy.tokens import DocBin
from torch.profiler import ProfilerActivity, profile

from spacy_hmtl.reduced_precision import REDUCED_PRECISION_OVERRIDES

torch.set_num_threads(1)
nlp = spacy.load(sys.argv[1], config=REDUCED_PRECISION_OVERRIDES)
texts = [d.text for d in DocBin().from_disk("corpus/scierc/test.spacy").get_docs(nlp.vocab)]
transformer = nlp.get_pipe("transformer")
docs = [nlp.make_doc(t) for t in texts]
list(transformer.pipe(docs[:10]))
with profile(activities=[ProfilerActivity.CPU]) as prof:
    list(transformer.pipe(docs, batch_size=64))
print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=12))
