"""Scoring one ablation run's ``model-best`` on the test set(s), in a process of its own
(``runs.evaluate_run`` starts it: ``python -m spacy_hmtl_dev.ablation.evaluate``), so that
one run's pipeline never stays in the memory of the process that trains the others.
"""
import argparse
import json
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Union


def evaluate(model: Union[str, Path], tests: Sequence[str], batch_size: int) -> Dict[str, Any]:
    """Scores of a trained pipeline on the test set(s), read as one corpus like its dev set
    (each scorer skips the documents not annotated for its task).

    RETURNS (Dict[str, Any]): ``pipeline`` (pipe names), ``n_docs`` and ``scores``.
    """
    import spacy

    from spacy_hmtl.training import read_like_dev

    nlp = spacy.load(model)
    # as the dev set is read: a multi-task config's test sets keep only the tasks their
    # corpus declares (LitBank's entities are not scored against a CoNLL04 NER head)
    examples = read_like_dev(nlp, tests)
    scores = nlp.evaluate(examples, batch_size=batch_size)
    return {"pipeline": nlp.pipe_names, "n_docs": len(examples), "scores": scores}


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="the run's model-best")
    parser.add_argument("output", help="the JSON file to write (evaluate's result)")
    parser.add_argument("--test", nargs="+", required=True, help="the test corpus/corpora")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1, help="torch threads; 0: the default")
    args = parser.parse_args(argv)
    if args.threads > 0:
        import torch

        torch.set_num_threads(args.threads)
    result = evaluate(Path(args.model), args.test, args.batch_size)
    Path(args.output).write_text(json.dumps(result, default=str), encoding="utf8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
