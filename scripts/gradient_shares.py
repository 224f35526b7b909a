"""Print (and optionally save) each head's share of the shared encoder's gradient.

    python scripts/gradient_shares.py configs/scierc.cfg corpus/scierc/train.spacy \
        [--model training/scierc/model-best] [--batches 5] [--output metrics/shares.json]

Without ``--model`` the pipeline is built from the config and initialized on the corpus
(the shares at initialization); with it, a trained pipeline is measured. Batches are the
config's batcher over the corpus, in order (no shuffling), so the figures repeat.
"""
import argparse
import json
import sys
from pathlib import Path

import numpy
import spacy
from spacy.training import Corpus
from spacy.util import fix_random_seed, load_config, registry

import spacy_hmtl  # noqa: F401  (registers the pipes and extensions)
from spacy_hmtl.training.gradient_shares import annotate_predicted, encoder_gradient_shares, heads_of


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config")
    parser.add_argument("corpus", help=".spacy file of training docs")
    parser.add_argument("--model", help="a trained pipeline directory instead of a fresh one")
    parser.add_argument("--batches", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", help="write the figures as JSON here")
    args = parser.parse_args(argv)
    fix_random_seed(args.seed)
    if args.model:
        nlp = spacy.load(args.model)
    else:
        # interpolated: nlp.initialize() resolves [training.optimizer] from nlp.config as it is,
        # and a schedule's `total_steps = ${training.max_steps}` must be a number by then
        config = load_config(args.config, overrides={"paths.train": args.corpus, "paths.dev": args.corpus}, interpolate=True)
        nlp = spacy.util.load_model_from_config(config, auto_fill=True)
        nlp.initialize(lambda: Corpus(args.corpus)(nlp))
    config = nlp.config.interpolate() if args.model else load_config(args.config)
    batcher = registry.resolve({"b": config["training"]["batcher"]})["b"]
    per_head = {head: [] for head in heads_of(nlp, "hmtl_encoder")}
    for i, batch in enumerate(batcher(Corpus(args.corpus)(nlp))):
        if i >= args.batches:
            break
        batch = list(batch)
        annotate_predicted(nlp, batch)
        for head, share in encoder_gradient_shares(nlp, batch).items():
            per_head[head].append(share)
    result = {
        "command": " ".join([Path(sys.argv[0]).name] + (argv or sys.argv[1:])),
        "model": args.model or f"{args.config} (initialized)",
        "batches": args.batches,
        "shares": {h: {"mean": float(numpy.mean(v)), "min": float(numpy.min(v)), "max": float(numpy.max(v))}
                   for h, v in per_head.items() if v},
    }
    for head, s in result["shares"].items():
        print(f"{head:16s} share of the encoder gradient: mean {s['mean']:.3f} (min {s['min']:.3f}, max {s['max']:.3f})")
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
