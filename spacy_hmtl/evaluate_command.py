"""``python -m spacy_hmtl evaluate``: score a pipeline on test sets read like its dev set.

``spacy evaluate`` reads a ``.spacy`` file with every annotation it holds. For a pipeline
trained from several corpora (``configs/mixed.cfg``: NER + relations from CoNLL04, mentions +
coreference from LitBank) that scores annotation the pipeline never learnt: LitBank's own
entity labels (PER, LOC, ...) against the CoNLL04 NER head. This command reads each test set
with the tasks its corpus declares in the pipeline's ``[corpora.dev]``
(``spacy_hmtl.training.read_like_dev``), prints every head's scores (``spacy evaluate``
prints only NER and sentence scores for these pipes) and writes ``nlp.evaluate``'s scores as
JSON, the same keys ``spacy evaluate --output`` writes.

The command follows the output rules of the others (``spacy_hmtl.safe_io``), checked before
any work: the output is never one of its inputs (a TEST file, or any file of MODEL's
directory), an existing output is only replaced with ``--overwrite``, a directory is
refused, and the file is written atomically. A TEST that is not a DocBin corpus (a
``.spacy`` file, as ``convert`` writes) is refused, naming it; a head whose labels the
corpus does not share (a test set of another corpus) gets a warning: it would score 0.
"""
import argparse
import json
import sys
import warnings
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

from spacy.language import Language
from spacy.training import Example

from .annotate_records import AnnotateError
from .gold_check import some_labels
from .pipeline_loading import load_model
from .safe_io import output_problem, write_atomic
from .scores_table import format_scores

PathLike = Union[str, Path]


class UnsharedLabelsWarning(UserWarning):
    """The corpus and a head of the pipeline share no label: the head scores 0."""


def evaluate_like_dev(
    nlp: Language,
    paths: Sequence[PathLike],
    *,
    batch_size: int = 32,
    warn: Optional[Callable[[str], None]] = None,
) -> Dict[str, Any]:
    """Score ``nlp`` on ``paths``, read as its training config reads the dev set.

    nlp (Language): the trained pipeline.
    paths (Sequence[Union[str, Path]]): ``.spacy`` files, e.g. each corpus's test set.
    batch_size (int): documents per ``nlp.pipe`` batch.
    warn (Optional[Callable[[str], None]]): called with each ``unshared_labels`` message
        (default: an ``UnsharedLabelsWarning``).
    RETURNS (Dict[str, Any]): ``nlp.evaluate``'s scores over all paths, as one corpus
        (each scorer skips the documents not annotated for its task).
    """
    from .training import read_like_dev

    examples = read_like_dev(nlp, paths)
    for message in unshared_labels(nlp, examples):
        if warn is None:
            warnings.warn(message, UnsharedLabelsWarning, stacklevel=2)
        else:
            warn(message)
    return nlp.evaluate(examples, batch_size=batch_size)


def unshared_labels(nlp: Language, examples: Sequence[Example]) -> List[str]:
    """A message for each head whose gold annotation in ``examples`` uses labels, none
    of which the head predicts: its scores can only be 0 (e.g. a CoNLL04 test set on a
    SciERC pipeline). Heads without labels, or without gold in ``examples``, are skipped.

    RETURNS (List[str]): the messages, in pipeline order.
    """
    from .head_pipe import TorchHeadPipe

    messages = []
    for name, pipe in nlp.pipeline:
        if not isinstance(pipe, TorchHeadPipe) or not pipe.labels:
            continue
        gold = pipe.gold_labels(examples)
        if gold and not gold & set(pipe.labels):
            messages.append(
                f"{name}: the corpus's labels ({some_labels(gold)}) and the pipeline's ({some_labels(pipe.labels)}) share "
                "none, so its scores are 0; is this a test set of another corpus?"
            )
    return messages


def docbin_problem(path: PathLike) -> Optional[str]:
    """Why ``path`` is not a DocBin corpus that ``evaluate`` can read (None if it is)."""
    from spacy.tokens import DocBin

    path = Path(path)
    if not path.is_file():
        return "no such file"
    if path.suffix != ".spacy":
        # spaCy's corpus reader skips any other name: the test set would be empty
        return "not a .spacy file (a DocBin, as `python -m spacy_hmtl convert` writes)"
    try:
        docbin = DocBin(store_user_data=True).from_bytes(path.read_bytes())
    except Exception as err:  # zlib, msgpack and numpy errors share no base class
        return f"not a DocBin corpus ({type(err).__name__}: {str(err)[:200]})"
    if not len(docbin):
        return "holds no documents"
    return None


def model_files(model: str) -> List[Path]:
    """The files of the pipeline MODEL (a directory, or an installed package's), which
    ``evaluate`` must never write over; none for a name spaCy cannot place."""
    import spacy

    path = Path(model)
    if not path.is_dir() and spacy.util.is_package(model):
        path = spacy.util.get_package_path(model)
    return [p for p in path.rglob("*") if p.is_file()] if path.is_dir() else []


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
            "on annotation it never learnt), print every head's scores and write them as JSON. "
            "Each TEST must be a DocBin corpus (.spacy); a head that shares no label with the "
            "corpus is warned about. The output is never a TEST or a file of MODEL, and an "
            "existing one is only replaced with --overwrite."
        ),
    )
    parser.add_argument("model", metavar="MODEL", help="pipeline name or path")
    parser.add_argument("tests", metavar="TEST", nargs="+", help=".spacy file(s), e.g. corpus/conll04/test.spacy")
    parser.add_argument("--output", "-o", metavar="JSON", default=None,
                        help="write the scores here (atomically; never over a TEST or a file of MODEL)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --output file")
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
    problems = _input_problems(args)
    if problems:
        for problem in problems:
            print(f"error: {problem}", file=sys.stderr)
        return 1
    try:
        nlp = load_model(args.model, gpu_id=args.gpu_id)
        scores = evaluate_like_dev(nlp, args.tests, batch_size=args.batch_size, warn=_print_warning)
    except (AnnotateError, ValueError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(format_scores(scores))
    if args.output is not None:
        try:
            write_atomic(args.output, (json.dumps(scores, indent=2, default=float) + "\n").encode("utf8"))
        except OSError as err:
            print(f"error: {args.output}: cannot write the scores ({err}); they are printed above", file=sys.stderr)
            return 1
        print(f"scores written to {args.output}")
    return 0


def _input_problems(args: argparse.Namespace) -> List[str]:
    """What is wrong with the output and the TEST files, each naming its file; all
    checked before the model loads, so no evaluation is lost to a bad path."""
    if args.output is not None:
        inputs = [*args.tests, *model_files(args.model)]
        problem = output_problem(args.output, inputs, overwrite=args.overwrite)
        if problem is not None:
            return [f"{args.output}: {problem}"]
    problems = [(path, docbin_problem(path)) for path in args.tests]
    return [f"{path}: {problem}" for path, problem in problems if problem is not None]


def _print_warning(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)
