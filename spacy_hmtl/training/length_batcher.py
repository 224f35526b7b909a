"""Batches of similar lengths: ``spacy_hmtl.batch_by_length.v1``.

A fine-tuned transformer pads every wordpiece window of a batch to the longest one, so a batch
that mixes a 5-word and a 90-word sentence spends most of its transformer time on padding.
This batcher keeps the randomness of ``spacy.batch_by_words.v1`` where it matters and removes
the padding: it reads the (already shuffled) examples in pools of ``pool_size``, sorts each
pool by length, cuts it into batches of about ``size`` words (``minibatch_by_words``) and
yields the pool's batches in a random order. Which examples meet in a batch changes from epoch
to epoch with spaCy's shuffle; only examples of similar length meet.

The order is drawn from Python's ``random``, which ``spacy train`` seeds (``[training] seed``),
so a run is reproducible and ``python -m spacy_hmtl train --resume`` replays it.
"""
import random
from typing import Callable, Iterable, Iterator, List, Optional, TypeVar

from spacy.training.batchers import minibatch_by_words
from spacy.util import registry


T = TypeVar("T")


def sorted_pool_batches(
    pool: List[T],
    *,
    size: int,
    tolerance: float,
    discard_oversize: bool,
    length: Callable[[T], int],
    shuffle: Callable[[List[List[T]]], None],
) -> List[List[T]]:
    """One pool's batches: the pool sorted by ``length``, cut into batches of about ``size``
    words (``minibatch_by_words``), the batches put in an order drawn by ``shuffle`` (so that
    a step does not always follow a step of similar length). Shared by
    ``spacy_hmtl.batch_by_length.v1`` and ``spacy_hmtl.task_batcher.v2``.
    """
    batches = list(
        minibatch_by_words(
            sorted(pool, key=length), size=size, tolerance=tolerance, discard_oversize=discard_oversize, get_length=length
        )
    )
    shuffle(batches)
    return batches


@registry.batchers("spacy_hmtl.batch_by_length.v1")
def configure_batch_by_length(
    size: int = 1000,
    tolerance: float = 0.2,
    pool_size: int = 512,
    discard_oversize: bool = False,
    get_length: Optional[Callable] = None,
) -> Callable[[Iterable], Iterator[List]]:
    """Batches of about ``size`` words from examples of similar length.

    size (int): target number of words per batch (as ``spacy.batch_by_words.v1``).
    tolerance (float): how much a batch may exceed ``size`` (fraction).
    pool_size (int): examples sorted together; larger pools pad less and mix less.
    discard_oversize (bool): drop examples longer than ``size * (1 + tolerance)``
        (otherwise each becomes a batch of its own).
    get_length (Optional[Callable]): length of an example (``len``: its words).
    RETURNS (Callable[[Iterable], Iterator[List]]): the batcher.
    """
    if pool_size < 1:
        raise ValueError(f"spacy_hmtl.batch_by_length.v1: pool_size must be at least 1, not {pool_size}")
    length = get_length or len

    def batch_by_length(examples: Iterable) -> Iterator[List]:
        pool: List = []
        for example in examples:
            pool.append(example)
            if len(pool) == pool_size:
                yield from pool_batches(pool)
                pool = []
        if pool:
            yield from pool_batches(pool)

    def pool_batches(pool: List) -> List[List]:
        return sorted_pool_batches(
            pool, size=size, tolerance=tolerance, discard_oversize=discard_oversize, length=length, shuffle=random.shuffle
        )

    return batch_by_length
