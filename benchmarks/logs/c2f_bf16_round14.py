"""Probe (round 14): the coreference pipe of the coarse-to-fine probe (training/c2f_prior/model-best, as
packaged) with the coarse path's FFNN product in bfloat16 against float32, alternating rounds on
the LitBank and SciERC test texts, one thread, two trainings beside it (read the ratios).
Output: benchmarks/logs/c2f_bf16_round14.txt."""
import time
import torch
import spacy
import numpy
from spacy.tokens import DocBin
from spacy_hmtl.reduced_precision import REDUCED_PRECISION_OVERRIDES
import spacy_hmtl.coref.torch_module as tm
torch.set_num_threads(1)
nlp = spacy.load("training/c2f_prior/model-best", config=REDUCED_PRECISION_OVERRIDES)
texts = {c: [d.text for d in DocBin().from_disk(f"corpus/{c}/test.spacy").get_docs(nlp.vocab)] for c in ("litbank", "scierc")}
real = tm.best_coarse_antecedents
def run(docs, low):
    tm.best_coarse_antecedents = real if low else (lambda *a: real(*a[:7]))
    coref = nlp.get_pipe("hmtl_coref")
    start = time.perf_counter()
    list(coref.pipe(docs))
    return time.perf_counter() - start
for c, ts in texts.items():
    docs = list(nlp.pipe(ts, disable=["hmtl_coref"]))
    run(docs, True)
    r = {True: [], False: []}
    for i in range(4):
        for low in ((True, False) if i % 2 == 0 else (False, True)):
            r[low].append(run(docs, low))
    print(c, "bf16", [round(x, 2) for x in r[True]], "f32", [round(x, 2) for x in r[False]], "speed-up", round(numpy.median(r[False]) / numpy.median(r[True]), 3))
