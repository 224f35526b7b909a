"""Training words/s of the shipped configs, beside stock spaCy ``ner`` and an earlier commit,
measured in the same run; and a profile of training steps (and of inference) by pipe,
torch module and operator.

    python scripts/training_speed.py --output benchmarks/training_speed \
        --config configs/scierc.cfg --config configs/stock_ner_scierc.cfg \
        [--baseline-commit cd479c9] [--rounds 2] [--steps 20] [--warmup 3] [--threads 1] \
        [--profile-steps 3] [--warm-epoch configs/scierc_trf.cfg] [--inference-model training/scierc/model-best]

writes ``OUTPUT.md`` and ``OUTPUT.json`` (``spacy_hmtl_dev.training_speed``). Every measurement
runs in a fresh process (``spacy_hmtl_dev/throughput.py``): the config's own corpus, batcher, dropout and
optimizer, ``--warmup`` untimed steps, then ``--steps`` timed ones. ``--rounds`` rounds
measure every config once each (order reversed every other round); the median is
reported. With ``--baseline-commit``, each HMTL config is also measured on that commit's
code *and config* (a ``git worktree`` in a temporary directory, put first on
``PYTHONPATH``), interleaved in the same rounds, so the ratio compares code on the same
machine at the same time; the machines are shared, so absolute figures drift, ratios less.
A config whose inputs are missing (e.g. ``scierc_trf.cfg`` without ``training/minilm``) is
listed as skipped with the reason.
"""
import argparse
import os
import shlex
import sys
from pathlib import Path

from spacy_hmtl_dev.paths import ROOT
from spacy_hmtl_dev.training_speed import TrainingSpeedSettings, run_training_speed


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", default="benchmarks/training_speed")
    parser.add_argument("--config", action="append", type=Path, help="repeatable; default: scierc.cfg and stock_ner_scierc.cfg")
    parser.add_argument("--stock-config", type=Path, default=Path("configs/stock_ner_scierc.cfg"),
                        help="the reference config every other is compared with, in the same run (default: stock spaCy NER)")
    parser.add_argument("--baseline-commit", default=None)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--profile-steps", type=int, default=3)
    parser.add_argument(
        "--warm-epoch",
        action="append",
        type=Path,
        default=[],
        help="repeatable: run this config one whole epoch before timing (a frozen-feature cache then holds every "
        "document); the first epoch's time is reported",
    )
    parser.add_argument("--inference-model", type=Path, default=None)
    parser.add_argument("--inference-corpus", type=Path, default=Path("corpus/scierc/test.spacy"))
    parser.add_argument("--inference-docs", type=int, default=0)
    args = parser.parse_args(argv)
    settings = TrainingSpeedSettings(
        configs=tuple(args.config or [Path("configs/scierc.cfg"), args.stock_config]),
        output=args.output,
        stock_config=args.stock_config,
        baseline_commit=args.baseline_commit,
        rounds=args.rounds,
        steps=args.steps,
        warmup=args.warmup,
        threads=args.threads,
        profile_steps=args.profile_steps,
        warm_epoch=tuple(args.warm_epoch),
        inference_model=args.inference_model,
        inference_corpus=args.inference_corpus,
        inference_docs=args.inference_docs,
    )
    command = "python " + shlex.join([os.path.relpath(__file__, ROOT)] + list(sys.argv[1:] if argv is None else argv))
    run_training_speed(settings, command)
    return 0


if __name__ == "__main__":
    sys.exit(main())
