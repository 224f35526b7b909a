"""HMTL's ablation: does the hierarchy help? Each configuration trained with the same steps and seeds.

    python scripts/ablation.py --config configs/scierc.cfg --max-steps 600 [--minus-max-steps 600] --seeds 0 1 2 \\
        --output benchmarks/ablation [--workdir training/ablation/scierc] [--jobs 2] \\
        [--variants full flat ner mentions relations coref no-ner ...] [--test PATH ...] \\
        [--gpu-id -1] [--threads 1] [any dotted `spacy train` override, e.g. --paths.train X]

Variants, all derived from the one config (``spacy_hmtl.variants``: its docstring says what
each one is):

* ``full``: the config as shipped (the hierarchy: NER at level 1, the others at level 2).
* ``flat``: the same heads and encoder, every head reading the top level (with the embedding
  shortcut, as the top heads do): multi-task without the hierarchy.
* ``ner`` / ``mentions`` / ``relations`` / ``coref``: one head alone on its own encoder
  (relations-alone keeps its argument provider, on another encoder).
* ``no-ner`` / ``no-mentions`` / ``no-relations`` / ``no-coref``: the hierarchy without one
  task (the paper's "- task" rows).

Every (variant, seed) run lives in ``WORKDIR/<variant>/seed<k>/`` (``spacy_hmtl_dev.ablation.runs``);
a run whose ``test_scores.json`` exists is not trained again, and a run stopped half-way goes
on from its last evaluation's checkpoint (resumable: stop it any time, rerun the same
command); ``--minus-max-steps M`` trains the "- task" rows M steps (compared with ``full`` on
dev at step M, since ``full``'s test scores come from its longer run); ``--jobs N`` trains N runs at once (each with ``--threads`` torch
threads). The test sets are read as the config reads its dev set (``read_like_dev``): with
``configs/mixed.cfg`` each test set keeps only the tasks its corpus declares, so LitBank's
entity annotation is not scored against the CoNLL04-trained NER head. ``--reevaluate``
scores every finished run's ``model-best`` again (after a change to the evaluation) and
rewrites the report, training nothing.

Written: ``OUTPUT.md``, ``OUTPUT.json`` and ``OUTPUT_dev_{steps,time}.png``
(``spacy_hmtl_dev.ablation.report``), rewritten from whatever runs have finished, so it can be
read while the ablation runs (``--report-only`` writes it without training). Verdict: a
difference between a variant and ``full`` counts only when it is larger than the sum of the
two rows' standard deviations over seeds (``spacy_hmtl_dev.ablation.summary``).
"""
import argparse
import shlex
import sys
from pathlib import Path

from spacy.util import load_config

from spacy_hmtl.variants import derive_variant_config, variant_names
from spacy_hmtl_dev.ablation.report import write_report
from spacy_hmtl_dev.ablation.runs import AblationSettings, default_test_paths, is_finished, log, reevaluate, run_order, train_all


def main(argv=None) -> int:
    variants = variant_names()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="configs/scierc.cfg")
    parser.add_argument("--max-steps", type=int, default=600)
    parser.add_argument("--minus-max-steps", type=int, default=0, help='training steps of the "- task" rows (0: --max-steps); they are then compared with full on dev at that step')
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--output", default="benchmarks/ablation", help="writes OUTPUT.md, OUTPUT.json and OUTPUT_dev_*.png")
    parser.add_argument("--workdir", default=None, help="runs (default: training/ablation/<config name>)")
    parser.add_argument("--gpu-id", type=int, default=-1)
    parser.add_argument("--test", nargs="+", default=None, help="test corpus/corpora (default: beside the dev path(s))")
    parser.add_argument("--variants", nargs="+", default=variants, choices=variants)
    parser.add_argument("--jobs", type=int, default=1, help="runs trained at once")
    parser.add_argument("--eval-batch-size", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1, help="torch threads per run (OMP_NUM_THREADS); 0: the default")
    parser.add_argument("--report-only", action="store_true", help="write the report from the finished runs, train nothing")
    parser.add_argument("--reevaluate", action="store_true", help="score the finished runs' model-best on the test set(s) again, then write the report; trains nothing")
    args, extra = parser.parse_known_args(argv)
    for item in extra:
        if item.startswith("--") and "." not in item:
            parser.error(f"unknown option {item} (only dotted `spacy train` overrides are passed through)")

    config = load_config(Path(args.config), interpolate=False)
    tests = args.test or default_test_paths(config)
    missing = [t for t in tests if not Path(t).exists()]
    if not tests or missing:
        parser.error(f"no test corpus: {missing or tests!r} (set --test)")
    configs = {}
    for variant in args.variants:
        try:
            configs[variant] = derive_variant_config(config, variant)
        except ValueError as err:
            log(f"{variant}: skipped ({err})")
    settings = AblationSettings(
        config=args.config,
        workdir=args.workdir or str(Path("training") / "ablation" / Path(args.config).stem),
        output=args.output,
        command="python " + shlex.join(["scripts/ablation.py"] + list(sys.argv[1:] if argv is None else argv)),
        max_steps=args.max_steps,
        minus_max_steps=args.minus_max_steps,
        seeds=tuple(args.seeds),
        tests=tuple(tests),
        gpu_id=args.gpu_id,
        jobs=args.jobs,
        threads=args.threads,
        eval_batch_size=args.eval_batch_size,
        overrides=tuple(extra),
    )
    order = run_order(list(configs), settings.seeds)
    if args.reevaluate:
        reevaluate(settings, order)
    elif not args.report_only:
        train_all(settings, configs, lambda: write_report(settings, configs))
    out = write_report(settings, configs)
    log(f"wrote {out}.md, {out}.json and the plots")
    return 0 if all(is_finished(settings.workdir, v, s) for v, s in order) else 1


if __name__ == "__main__":
    sys.exit(main())
