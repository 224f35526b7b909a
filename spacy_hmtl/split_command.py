"""``python -m spacy_hmtl split``: a .spacy corpus -> a training and a development part,
by document, at random (reproducible with ``--seed``).

The documents keep every layer (``DocBin(store_user_data=True)``) and their order within
each part; both parts are written atomically together (``write_docbins``: both or
neither), never over the input and never over an existing file without ``--overwrite``.
"""
import random
import sys
from pathlib import Path
from typing import Any, List, Tuple

from spacy.tokens import Doc, DocBin
from spacy.vocab import Vocab

from .converters.common import ConversionError, PathLike, check_outputs, write_docbins


def split_corpus(
    input_path: PathLike,
    train_path: PathLike,
    dev_path: PathLike,
    *,
    dev_fraction: float = 0.2,
    seed: int = 0,
    overwrite: bool = False,
) -> Tuple[int, int]:
    """Split a .spacy corpus by document into a training and a development corpus.

    dev_fraction: the share of documents in the development part (0 < f < 1), rounded,
        and at least one document in each part.
    seed: the seed of the shuffle (the same seed gives the same split).
    overwrite: replace existing outputs (else ConversionError, before any work).
    RETURNS (Tuple[int, int]): the documents in the training and development parts.
    RAISES ConversionError: an unreadable input, fewer than 2 documents, or an output
        that may not be written.
    RAISES ValueError: ``dev_fraction`` outside (0, 1).
    """
    if not 0 < dev_fraction < 1:
        raise ValueError(f"the dev fraction must be between 0 and 1 (exclusive), got {dev_fraction}")
    train_path, dev_path = Path(train_path), Path(dev_path)
    if train_path.resolve() == dev_path.resolve():
        raise ConversionError(dev_path, "is also the training output; give two different paths")
    check_outputs([train_path, dev_path], [input_path], overwrite=overwrite)
    docs = read_docbin(input_path)
    if len(docs) < 2:
        raise ConversionError(input_path, f"has {len(docs)} document(s); splitting needs at least 2")
    n_dev = min(max(round(len(docs) * dev_fraction), 1), len(docs) - 1)
    order = list(range(len(docs)))
    random.Random(seed).shuffle(order)
    dev_ids = set(order[:n_dev])
    train = [doc for i, doc in enumerate(docs) if i not in dev_ids]
    dev = [doc for i, doc in enumerate(docs) if i in dev_ids]
    write_docbins({train_path: train, dev_path: dev})
    return len(train), len(dev)


def read_docbin(path: PathLike) -> List[Doc]:
    """The documents of a .spacy file, with their user data (relations, coreference).

    RAISES ConversionError: a missing file, or one that is not a DocBin.
    """
    path = Path(path)
    if not path.is_file():
        raise ConversionError(path, "file not found")
    try:
        return list(DocBin(store_user_data=True).from_disk(path).get_docs(Vocab()))
    except Exception as err:  # msgpack, zlib and spaCy raise many kinds of errors
        raise ConversionError(path, f"not a .spacy file ({type(err).__name__}: {err})") from None


def add_split(subparsers: Any) -> None:
    """Add the ``split`` command's parser to ``subparsers``.

    subparsers: what ``argparse.ArgumentParser.add_subparsers`` returned.
    """
    parser = subparsers.add_parser(
        "split",
        help="split a .spacy corpus into training and development parts, by document",
        description=(
            "Shuffle the documents of INPUT (a .spacy file, e.g. the output of `convert`) with "
            "--seed and write --dev-fraction of them to DEV, the others to TRAIN, each in the "
            "input order, every annotation layer kept. Both outputs are written or neither; "
            "existing ones are only replaced with --overwrite."
        ),
    )
    parser.add_argument("input", metavar="INPUT", help=".spacy corpus")
    parser.add_argument("train", metavar="TRAIN", help=".spacy file for the training part")
    parser.add_argument("dev", metavar="DEV", help=".spacy file for the development part")
    parser.add_argument("--dev-fraction", type=float, default=0.2, help="share of documents in DEV (default 0.2)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the shuffle (default 0)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    parser.set_defaults(handler=run_split, parser=parser)


def run_split(args: Any) -> int:
    """Run the ``split`` command. RETURNS (int): 0, or 1 after an error reported on stderr."""
    if not 0 < args.dev_fraction < 1:
        args.parser.error("--dev-fraction must be between 0 and 1 (exclusive)")
    try:
        n_train, n_dev = split_corpus(
            args.input, args.train, args.dev, dev_fraction=args.dev_fraction, seed=args.seed, overwrite=args.overwrite
        )
    except (ConversionError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"train  {n_train} documents  {args.train}\ndev    {n_dev} documents  {args.dev}")
    return 0
