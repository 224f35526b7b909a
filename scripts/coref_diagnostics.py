"""Where coreference links are lost: string overlap of the gold clusters, and how many gold
mentions and links survive a trained pipeline's mention pruning.

    python scripts/coref_diagnostics.py --corpus corpus/scierc [--model training/scierc/model-best] \
        [--splits train dev test] --output benchmarks/coref_diagnostics_scierc

writes OUTPUT.md and OUTPUT.json with the command, the machine and, per split:

* **anaphoric mentions**: gold mentions that have an earlier mention in their cluster; the
  share of them with the same lowercased words as an earlier mention of the cluster, and with
  the same last word (what ``match_embedding`` tells the antecedent scorer);
* with ``--model``, on the split's raw text re-tokenized as ``spacy evaluate`` reads it:
  gold mentions (aligned to the pipeline's tokens) among the spans kept by the coreference
  head's pruning, and gold links still possible among the kept spans (a cluster of k kept
  mentions has k - 1), against all gold links.
"""
import argparse
import shlex
import sys
from typing import List, Optional

from spacy_hmtl_dev.coref_diagnostics import load_pipeline, run_coref_diagnostics


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", required=True, help="a directory with SPLIT.spacy files")
    parser.add_argument("--model", help="a trained pipeline with hmtl_coref")
    parser.add_argument("--splits", nargs="+", default=["train", "dev", "test"])
    parser.add_argument("--output", required=True, help="OUTPUT.md and OUTPUT.json are written")
    args = parser.parse_args(argv)
    command = shlex.join(["python", "scripts/coref_diagnostics.py"] + list(sys.argv[1:] if argv is None else argv))
    try:
        nlp = load_pipeline(args.model)
    except ValueError as err:
        parser.error(str(err))
    run_coref_diagnostics(nlp, args.corpus, args.splits, args.output, command, model=args.model)
    return 0


if __name__ == "__main__":
    sys.exit(main())
