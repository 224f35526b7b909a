"""Probe (round 16): the coreference head's training step (loss + backward, one 2,000-token
document, litbank.cfg's head settings, random inputs) with the exhaustive scorer and with
coarse-to-fine + the coarse loss as litbank.cfg trains it (the FFNN on all 250 candidates),
in alternating rounds, one torch thread. Output: benchmarks/logs/coarse_loss_training_step_round16.txt.

    python benchmarks/logs/coarse_loss_training_step_round16.py ROUNDS
"""
import statistics
import sys
import time

import torch

from spacy_hmtl.coref.torch_module import CorefRanker

torch.set_num_threads(1)
SETTINGS = dict(lstm_width=64, max_width=8, spans_per_word=0.4, max_antecedents=250, hidden_width=150,
                width_embedding=20, dropout=0.3, mention_loss_weight=1.0, product_width=64,
                antecedent_depth=1, non_crossing=True, match_embedding=0)  # fmt: skip
VARIANTS = {
    "exhaustive": dict(coarse_width=0, coarse_antecedents=0, coarse_loss_weight=0.0),
    "coarse loss": dict(coarse_width=128, coarse_antecedents=250, coarse_loss_weight=1.0),
}
X, L = torch.randn(1, 2000, 352), torch.tensor([2000])
gold = [[[(i, i + 1) for i in range(c, 2000, 37)] for c in range(30)]]
modules = {}
for name, extra in VARIANTS.items():
    torch.manual_seed(0)
    modules[name] = CorefRanker(352, **SETTINGS, **extra).train()
times = {name: [] for name in VARIANTS}
print(f"python {' '.join(sys.argv)}")
for r in range(int(sys.argv[1]) + 1):
    for name in (list(VARIANTS) if r % 2 == 0 else list(VARIANTS)[::-1]):
        module = modules[name]
        start = time.perf_counter()
        module.zero_grad()
        module.loss(X, L, gold).backward()
        if r:  # round 0 warms up
            times[name].append(time.perf_counter() - start)
for name, seconds in times.items():
    print(f"{name}: median {statistics.median(seconds):.3f} s per step ({' / '.join(f'{s:.2f}' for s in seconds)})")
print(f"coarse loss / exhaustive: {statistics.median(times['coarse loss']) / statistics.median(times['exhaustive']):.2f}")
