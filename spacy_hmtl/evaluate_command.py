"""``python -m spacy_hmtl evaluate``: score a pipeline on test sets read like its dev set.

``spacy evaluate`` reads a ``.spacy`` file with every annotation it holds. For a pipeline
trained from several corpora (``configs/mixed.cfg``: NER + relations from CoNLL04, mentions +
coreference from LitBank) that scores annotation the pipeline never learnt: LitBank's own
entity labels (PER, LOC, ...) against the CoNLL04 NER head. This command reads each test set
with the tasks its corpus declares in the pipeline's ``[corpora.dev]``
(``spacy_hmtl.training.read_like_dev``), prints every head's scores (``spacy evaluate``
prints only NER and sentence scores for these pipes) and writes ``nlp.evaluate``'s scores as
JSON, the same keys ``spacy evaluate --output`` writes, atomically.
"""
import argparse
import json
import sys
from pathlib import Path
from typing import Any, Dict, Sequence, Union

from spacy.language import Language

from .batch_annotator import AnnotateError, load_model
from .safe_io import write_atomic
from .scores_table import format_scores


def evaluate_like_dev(nlp: Language, paths: Sequence[Union[str, Path]], *, batch_size: int = 32) -> Dict[str, Any]:
    """Score ``nlp`` on ``paths``, read as its training config reads the dev set.

    nlp (Language): the trained pipeline.
    paths (Sequence[Union[str, Path]]): ``.spacy`` files, e.g. each corpus's test set.
    batch_size (int): documents per ``nlp.pipe`` batch.
    RETURNS (Dict[str, Any]): ``nlp.evaluate``'s scores over all paths, as one corpus
        (each scorer skips the documents not annotated for its task).
    """
    from .training import read_like_dev

    examples = read_like_dev(nlp, paths)
    return nlp.evaluate(examples, batch_size=batch_size)


def add_evaluate(subparsers: Any) -> None:
    """Add the ``evaluate`` command's parser to ``subparsers``.

    subparsers: what ``argparse.ArgumentParser.add_subparsers`` returned.
    """
    parser = subparsers.add_parser(
        "evaluate",
        help="score a pipeline on test sets read like its dev set (multi-corpus pipelines)",
        description=(
            "Score MODEL on the TEST .spacy files, each read with the tasks that its corpus "
            "declares in the pipeline's [corpora.dev] (a multi-corpus pipeline is not scored "
            "on annotation it never learnt), print every head's scores and write them as JSON."
        ),
    )
    parser.add_argument("model", metavar="MODEL", help="pipeline name or path")
    parser.add_argument("tests", metavar="TEST", nargs="+", help=".spacy file(s), e.g. corpus/conll04/test.spacy")
    parser.add_argument("--output", "-o", metavar="JSON", default=None, help="write the scores here (replaced atomically)")
    parser.add_argument("--batch-size", type=int, default=32, help="documents per batch (default 32)")
    parser.add_argument("--gpu-id", type=int, default=-1, help="GPU to use (default -1: CPU)")
    parser.set_defaults(handler=run_evaluate, parser=parser)


def run_evaluate(args: argparse.Namespace) -> int:
    """Run the ``evaluate`` command.

    args: the parsed arguments (``add_evaluate``'s parser).
    RETURNS (int): 0, or 1 after an error reported on stderr.
    """
    if args.batch_size < 1:
        args.parser.error("--batch-size must be at least 1")
    missing = [path for path in args.tests if not Path(path).is_file()]
    if missing:
        print(f"error: no such file: {', '.join(missing)}", file=sys.stderr)
        return 1
    try:
        nlp = load_model(args.model, gpu_id=args.gpu_id)
        scores = evaluate_like_dev(nlp, args.tests, batch_size=args.batch_size)
    except (AnnotateError, ValueError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(format_scores(scores))
    if args.output is not None:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        write_atomic(args.output, (json.dumps(scores, indent=2, default=float) + "\n").encode("utf8"))
        print(f"scores written to {args.output}")
    return 0
