"""``spacy_hmtl.task_batcher.v1``: HMTL's training regime, one task (corpus) per step.

HMTL (Sanh et al. 2018) trains one task per step: it picks a task at random, with a
probability proportional to that task's number of training batches, and takes the next
batch of that task's corpus. This batcher does the same over the examples of
``spacy_hmtl.MultiTaskCorpus.v1``, whose examples carry the name of their corpus
(``eg.reference.user_data["hmtl_corpus"]``; untagged examples form one group
``"default"``, so with a plain ``spacy.Corpus.v1`` it behaves like a seeded
``spacy.batch_by_words.v1``).

How it fits spaCy's training loop (``spacy.training.loop.create_train_batches``): the
loop reads the corpus once, then for every epoch shuffles the example list and calls
``batcher(examples)``; with ``max_epochs = 0`` it does so forever and ``max_steps`` ends
training. One call of this batcher is one *epoch*:

1. The examples are grouped by corpus; each group becomes an endless stream of batches
   sized by words (``spacy.training.batchers.minibatch_by_words``: ``size``,
   ``tolerance``, ``discard_oversize``, ``get_length``), reshuffled with the batcher's
   own RNG every time it is exhausted. With ``pool_size`` (``.v2``; 0 in ``.v1``) the
   shuffled examples are read in pools of that many, and each pool is sorted by length
   before it is cut, as ``spacy_hmtl.batch_by_length.v1`` does for one corpus: a
   fine-tuned transformer pads each batch to its longest window, so mixed lengths make
   most of its work padding.
2. ``steps_per_epoch`` times (default 0: the total number of batches of all groups, i.e.
   about one pass over every corpus under proportional sampling), a corpus is drawn
   and the next batch of its stream is yielded:

   * ``sampling = "proportional"`` (the paper's default): probability proportional to
     the corpus' number of batches per pass;
   * ``sampling = "uniform"``: every corpus equally often;
   * ``sampling = "weights"`` with ``weights = {"conll04": 2, "litbank": 1}``: the
     given (unnormalised, >= 0) weights. Setting ``weights`` without ``sampling`` means
     ``"weights"``. Every corpus of the data needs a weight; 0 never samples it.
   * ``sampling = "annealed"`` (``.v2``, with ``anneal_epochs``): temperature-annealed
     sampling (Stickland & Murray 2019): probability proportional to the number of
     batches to the power ``alpha`` (the inverse temperature), which falls linearly from
     1 at the first epoch (proportional) to ``final_alpha`` at epoch ``anneal_epochs``
     and stays there (0 would be uniform). Large corpora lead early and the small ones
     catch up later.

   Every batch holds examples of one corpus only, hence of one task set, so a head
   without gold in the batch skips it (``TorchHeadPipe.update``) and the encoder is
   trained by the heads of that task set only (it flushes in ``finish_update``).

The RNG is ``random.Random(seed)``, created with the batcher and kept across epochs: the
same seed and the same input order (``spacy train`` fixes it with ``training.seed``)
give the same batches; another seed gives others. The iterable given to one call is
materialised (with ``max_epochs = -1`` spaCy streams the corpus: one call then reads the
whole corpus into memory).

Per-task loss weights: the heads read the encoder through ``spacy_hmtl.HMTLListener.v1``
whose ``grad_factor`` scales the gradient a head sends into the shared encoder, i.e. the
weight of that task's loss in the encoder's update. Set it per head in the config
(``[components.hmtl_coref.model.tok2vec] grad_factor = 0.5``). It does not scale the
gradient of the head's own parameters, which with Adam would hardly matter anyway.
"""
import random
from collections import OrderedDict
from typing import Callable, Dict, Iterable, Iterator, List, Optional

from spacy.training import Example
from spacy.training.batchers import minibatch_by_words
from spacy.util import registry

from .length_batcher import sorted_pool_batches
from .multitask_corpus import get_corpus_name

SAMPLING = ("proportional", "uniform", "weights", "annealed")

BatcherT = Callable[[Iterable[Example]], Iterable[List[Example]]]


class TaskBatcher:
    """Single-corpus batches, corpus chosen per step (see the module docstring)."""

    def __init__(
        self,
        *,
        size: int = 1000,
        tolerance: float = 0.2,
        discard_oversize: bool = False,
        sampling: Optional[str] = None,
        weights: Optional[Dict[str, float]] = None,
        seed: int = 0,
        steps_per_epoch: int = 0,
        get_length: Optional[Callable[[Example], int]] = None,
        pool_size: int = 0,
        anneal_epochs: int = 0,
        final_alpha: float = 0.2,
    ) -> None:
        if sampling is None:
            sampling = "weights" if weights is not None else "proportional"
        if sampling not in SAMPLING:
            raise ValueError(f"spacy_hmtl.task_batcher.v1: sampling must be one of {list(SAMPLING)}, got {sampling!r}")
        if sampling == "weights":
            if not weights:
                raise ValueError("spacy_hmtl.task_batcher.v1: sampling = \"weights\" needs weights = {corpus: weight}")
            bad = {k: v for k, v in weights.items() if not isinstance(v, (int, float)) or v < 0}
            if bad:
                raise ValueError(f"spacy_hmtl.task_batcher.v1: weights must be numbers >= 0, got {bad}")
        elif sampling == "annealed":
            if not isinstance(anneal_epochs, int) or anneal_epochs < 1:
                raise ValueError(
                    "spacy_hmtl.task_batcher.v2: sampling = \"annealed\" needs anneal_epochs >= 1 (the epoch at "
                    f"which alpha reaches final_alpha), got {anneal_epochs!r}"
                )
            if not 0.0 <= final_alpha <= 1.0:
                raise ValueError(f"spacy_hmtl.task_batcher.v2: final_alpha must be in [0, 1], got {final_alpha!r}")
        if weights is not None and sampling != "weights":
            raise ValueError(
                f"spacy_hmtl.task_batcher.v1: weights are only used with sampling = \"weights\" "
                f"(got sampling = {sampling!r}); remove one of them"
            )
        if not isinstance(size, int) or size <= 0:
            raise ValueError(f"spacy_hmtl.task_batcher.v1: size must be a positive integer, got {size!r}")
        if steps_per_epoch < 0:
            raise ValueError("spacy_hmtl.task_batcher.v1: steps_per_epoch must be >= 0")
        if not isinstance(pool_size, int) or pool_size < 0:
            raise ValueError(f"spacy_hmtl.task_batcher.v2: pool_size must be an integer >= 0, got {pool_size!r}")
        self.size = size
        self.tolerance = tolerance
        self.discard_oversize = discard_oversize
        self.sampling = sampling
        self.weights = dict(weights) if weights is not None else None
        self.seed = seed
        self.steps_per_epoch = steps_per_epoch
        self.get_length = get_length
        self.pool_size = pool_size
        self.anneal_epochs = anneal_epochs
        self.final_alpha = final_alpha
        # calls so far: one call is one epoch (the annealing's clock)
        self.epoch = 0
        self.rng = random.Random(seed)

    def _batches(self, examples: List[Example]) -> List[List[Example]]:
        if self.pool_size:
            batches: List[List[Example]] = []
            for start in range(0, len(examples), self.pool_size):
                batches += sorted_pool_batches(
                    examples[start : start + self.pool_size],
                    size=self.size,
                    tolerance=self.tolerance,
                    discard_oversize=self.discard_oversize,
                    length=self.get_length or len,
                    shuffle=self.rng.shuffle,
                )
            return batches
        kwargs = {"get_length": self.get_length} if self.get_length is not None else {}
        return list(
            minibatch_by_words(
                examples,
                size=self.size,
                tolerance=self.tolerance,
                discard_oversize=self.discard_oversize,
                **kwargs,
            )
        )

    def _stream(self, examples: List[Example], first: List[List[Example]]) -> Iterator[List[Example]]:
        """The batches ``first``, then endlessly batches of reshuffled examples."""
        yield from first
        examples = list(examples)
        while True:
            self.rng.shuffle(examples)
            batches = self._batches(examples)
            if not batches:
                return
            yield from batches

    def group(self, examples: Iterable[Example]) -> "OrderedDict[str, List[Example]]":
        groups: "OrderedDict[str, List[Example]]" = OrderedDict()
        for eg in examples:
            groups.setdefault(get_corpus_name(eg), []).append(eg)
        # Sorted by name: the draw does not depend on which corpus came first.
        return OrderedDict(sorted(groups.items()))

    def alpha(self, epoch: int) -> float:
        """The annealed sampling's exponent at ``epoch`` (0-based): 1, falling linearly to
        ``final_alpha`` at epoch ``anneal_epochs``."""
        progress = min(1.0, epoch / self.anneal_epochs) if self.anneal_epochs else 1.0
        return 1.0 - (1.0 - self.final_alpha) * progress

    def corpus_weights(self, n_batches: Dict[str, int], epoch: int = 0) -> Dict[str, float]:
        """Sampling weights per corpus, given each corpus' number of batches per pass (and,
        for annealed sampling, the epoch)."""
        if self.sampling == "proportional":
            return {name: float(n) for name, n in n_batches.items()}
        if self.sampling == "annealed":
            alpha = self.alpha(epoch)
            return {name: (float(n) ** alpha if n else 0.0) for name, n in n_batches.items()}
        if self.sampling == "uniform":
            return {name: (1.0 if n else 0.0) for name, n in n_batches.items()}
        assert self.weights is not None
        missing = [name for name in n_batches if name not in self.weights]
        if missing:
            raise ValueError(
                f"spacy_hmtl.task_batcher.v1: no weight for corpus(es) {missing}; weights are "
                f"given for {sorted(self.weights)}"
            )
        return {name: (float(self.weights[name]) if n else 0.0) for name, n in n_batches.items()}

    def __call__(self, examples: Iterable[Example]) -> Iterator[List[Example]]:
        epoch = self.epoch
        self.epoch += 1
        groups = self.group(examples)
        if not groups:
            return
        first = {name: self._batches(egs) for name, egs in groups.items()}
        n_batches = {name: len(b) for name, b in first.items()}
        weights = self.corpus_weights(n_batches, epoch)
        names = [name for name in groups if weights[name] > 0]
        if not names:
            return
        cum_weights = []
        total = 0.0
        for name in names:
            total += weights[name]
            cum_weights.append(total)
        streams = {name: self._stream(groups[name], first[name]) for name in names}
        n_steps = self.steps_per_epoch or sum(n_batches.values())
        for _ in range(n_steps):
            name = self.rng.choices(names, cum_weights=cum_weights)[0]
            yield next(streams[name])


@registry.batchers("spacy_hmtl.task_batcher.v2")
def configure_task_batcher_v2(
    size: int = 1000,
    tolerance: float = 0.2,
    discard_oversize: bool = False,
    sampling: Optional[str] = None,
    weights: Optional[Dict[str, float]] = None,
    seed: int = 0,
    steps_per_epoch: int = 0,
    get_length: Optional[Callable[[Example], int]] = None,
    pool_size: int = 512,
    anneal_epochs: int = 0,
    final_alpha: float = 0.2,
) -> BatcherT:
    """``spacy_hmtl.task_batcher.v1`` with length-sorted batches within each corpus (for
    fine-tuned transformers: ``configs/mixed_ft.cfg``) and temperature-annealed sampling.

    pool_size (int): shuffled examples of a corpus sorted by length together before they
        are cut into batches (as ``spacy_hmtl.batch_by_length.v1``); larger pools pad
        less and mix less; 0: unsorted, exactly ``.v1``.
    anneal_epochs (int): with ``sampling = "annealed"``: the epoch (one call of the
        batcher) at which the exponent reaches ``final_alpha``.
    final_alpha (float): the exponent (inverse temperature) that annealed sampling ends
        at: 1 is proportional, 0 uniform.
    The other settings are ``.v1``'s (``sampling`` also takes ``"annealed"``).
    RETURNS (Callable): the batcher.
    """
    return TaskBatcher(
        size=size,
        tolerance=tolerance,
        discard_oversize=discard_oversize,
        sampling=sampling,
        weights=weights,
        seed=seed,
        steps_per_epoch=steps_per_epoch,
        get_length=get_length,
        pool_size=pool_size,
        anneal_epochs=anneal_epochs,
        final_alpha=final_alpha,
    )


@registry.batchers("spacy_hmtl.task_batcher.v1")
def configure_task_batcher(
    size: int = 1000,
    tolerance: float = 0.2,
    discard_oversize: bool = False,
    sampling: Optional[str] = None,
    weights: Optional[Dict[str, float]] = None,
    seed: int = 0,
    steps_per_epoch: int = 0,
    get_length: Optional[Callable[[Example], int]] = None,
) -> BatcherT:
    """HMTL's sampler: one corpus (task set) per batch, corpus drawn per step.

    size (int): target number of words per batch (as ``spacy.batch_by_words.v1``).
    tolerance (float): how much a batch may exceed ``size`` (fraction).
    discard_oversize (bool): drop documents longer than ``size * (1 + tolerance)``
        (otherwise each becomes a batch of its own).
    sampling (Optional[str]): ``"proportional"`` (to the number of batches, the default),
        ``"uniform"`` or ``"weights"`` (default when ``weights`` is set).
    weights (Optional[Dict[str, float]]): corpus name -> sampling weight.
    seed (int): seed of the batcher's RNG (corpus draws and reshuffles).
    steps_per_epoch (int): batches per call; 0: the number of batches of one pass over
        all corpora.
    get_length (Optional[Callable[[Example], int]]): length of an example (``len``).
    RETURNS (Callable): the batcher.
    """
    # .v2 with unsorted batches: the same batcher
    return configure_task_batcher_v2(
        size, tolerance, discard_oversize, sampling, weights, seed, steps_per_epoch, get_length, pool_size=0
    )
