"""The ``hmtl_encoder`` pipe: runs the shared hierarchy once, feeds every head its level."""
from itertools import islice
from typing import Callable, Dict, Iterable, List, Optional, Sequence, cast

from spacy.language import Language
from thinc.api import Config
from spacy.pipeline import TrainablePipe
from spacy.tokens import Doc
from spacy.training import Example, validate_examples, validate_get_examples
from spacy.util import ensure_path
from spacy.vocab import Vocab
from thinc.api import Model, Optimizer, set_dropout_rate
from thinc.types import Floats2d

from ..layers import inference_precision
from ..model_files import (
    ModelFileError,
    model_load_error,
    read_cfg,
    read_checksums,
    read_verified,
    verify_files,
    write_checksums,
)
from .listener import HMTLListener

DEFAULT_ENCODER_MODEL = """
[model]
@architectures = "spacy_hmtl.HierarchicalEncoder.v1"
level_widths = [64, 64]
level_depths = [2, 2]
dropout = 0.2

[model.embed]
@architectures = "spacy_hmtl.HMTLEmbed.v1"
width = 96
attrs = ["NORM", "PREFIX", "SUFFIX", "SHAPE"]
rows = [5000, 1000, 2500, 2500]
include_static_vectors = false
char_embed_nM = 16
char_embed_nC = 8
"""


@Language.factory(
    "hmtl_encoder",
    assigns=["doc.tensor"],
    default_config={"model": Config().from_str(DEFAULT_ENCODER_MODEL)["model"]},
)
def make_hmtl_encoder(nlp: Language, name: str, model: Model[List[Doc], List[Floats2d]]) -> "HMTLEncoder":
    """The shared hierarchical encoder of spacy-hmtl (HMTL's embeddings + BiLSTM levels).

    Heads read it through ``spacy_hmtl.HMTLListener.v1``. At inference it writes
    ``[E ; level 1 ; ... ; level K]`` to ``doc.tensor``.
    """
    return HMTLEncoder(nlp.vocab, model, name)


class _PendingBackprop:
    """Sums the gradients of one batch as listeners call back, and runs the encoder's
    backward pass once: when every linked listener has called, or when flushed."""

    def __init__(
        self, model: Model, backprop: Callable, outputs: List[Floats2d], expected: int, losses: Dict, name: str
    ):
        self.model = model
        self.backprop = backprop
        self.d_outputs = [model.ops.alloc2f(*out.shape) for out in outputs]
        self.expected = expected
        self.received = 0
        self.has_gradient = False
        self.done = False
        self.losses = losses
        self.name = name
        # An optimizer step asked for before every listener called back (``nlp.update``
        # calls the encoder's finish_update right after its update): applied after the
        # backward pass, so the step always uses this batch's gradient.
        self.deferred_sgd: Optional[Optimizer] = None

    def callback(self, d_outputs: Optional[List[Floats2d]]):
        """Add one listener's gradient; ``None``: the listener has nothing for this batch
        (its head had no gold), which still counts as its call."""
        if self.done:
            # The batch was already flushed: its torch graph is gone.
            raise ValueError(
                "hmtl_encoder: a listener called back after the encoder's update was flushed. "
                "Call every head's update() before the encoder's finish_update()."
            )
        if d_outputs is not None:
            for acc, d in zip(self.d_outputs, d_outputs):
                acc += d
                self.losses[self.name] += float((d**2).sum())  # type: ignore[call-overload]  # thinc's Floats2d.sum stub requires an axis
            self.has_gradient = True
        self.received += 1
        if self.received >= self.expected:
            self.flush()
        return []

    def flush(self) -> bool:
        """Backpropagate what arrived (once), then apply a deferred step.
        RETURNS (bool): whether a step was applied."""
        if self.done:
            return False
        self.done = True
        if self.has_gradient:
            self.backprop(self.d_outputs)
        self.d_outputs = []
        if self.deferred_sgd is None:
            return False
        sgd, self.deferred_sgd = self.deferred_sgd, None
        self.model.finish_update(sgd)
        return True

    def __reduce__(self):
        # A batch in flight holds torch graphs and closures: it pickles as "nothing
        # pending". (HMTLEncoder.__getstate__ alone is not enough: Cython's pickling of
        # TrainablePipe reads the instance __dict__ directly and ignores __getstate__.)
        return (_no_pending, ())


def _no_pending() -> None:
    return None


class HMTLEncoder(TrainablePipe):
    """A shared encoder that implements spaCy's listener protocol.

    Unlike ``spacy.pipeline.Tok2Vec``, which backpropagates only when its *last* listener
    calls back, the encoder sums the gradients of every listener and runs its backward pass
    once all linked listeners have called, or at ``finish_update`` / the next ``update``
    with whatever arrived. So a head that skips a batch (no gold for its task) never
    silently drops the other heads' gradients.
    """

    def __init__(self, vocab: Vocab, model: Model, name: str = "hmtl_encoder") -> None:
        self.vocab = vocab
        self.model = model
        self.name = name
        self.listener_map: Dict[str, List[Model]] = {}
        self.cfg: Dict = {}
        self._pending: Optional[_PendingBackprop] = None

    def __getstate__(self) -> Dict:
        # A batch in flight holds torch graphs and closures: never pickle it.
        state = dict(self.__dict__)
        state["_pending"] = None
        return state

    # --- listener protocol (spacy.ty.ListenedToComponent) -----------------------------

    @property
    def listeners(self) -> List[Model]:
        """RETURNS (List[Model]): the listener layers linked to this encoder."""
        return [m for c in self.listening_components for m in self.listener_map[c]]

    @property
    def listening_components(self) -> List[str]:
        """RETURNS (List[str]): names of the components listening to this encoder."""
        return list(self.listener_map.keys())

    def add_listener(self, listener: Model, component_name: str) -> None:
        """Link a listener of a downstream component (and fix the columns it reads)."""
        if isinstance(listener, HMTLListener):
            try:
                listener.link(self.model.attrs["level_widths"])
            except ValueError as err:
                # name the component whose config is wrong
                raise ValueError(f"[{component_name}] {err}") from err
        self.listener_map.setdefault(component_name, [])
        if listener not in self.listener_map[component_name]:
            self.listener_map[component_name].append(listener)

    def remove_listener(self, listener: Model, component_name: str) -> bool:
        """Unlink a listener. RETURNS (bool): whether it was linked."""
        if listener in self.listener_map.get(component_name, []):
            self.listener_map[component_name].remove(listener)
            if not self.listener_map[component_name]:
                del self.listener_map[component_name]
            return True
        return False

    def find_listeners(self, component) -> None:
        """Link the ``HMTLListener`` layers of a component whose upstream is this encoder."""
        names = ("*", self.name)
        if isinstance(getattr(component, "model", None), Model):
            for node in component.model.walk():
                if isinstance(node, HMTLListener) and node.upstream_name in names:
                    self.add_listener(node, component.name)

    # --- inference -------------------------------------------------------------------

    def predict(self, docs: Iterable[Doc]) -> List[Floats2d]:
        """Encode a batch: one ``(n_tokens, width)`` array per doc."""
        docs = list(docs)
        if not any(len(doc) for doc in docs):
            width = self.model.get_dim("nO")
            return [self.model.ops.alloc2f(0, width) for _ in docs]
        return self.model.predict(docs)

    def set_annotations(self, docs: Sequence[Doc], states: List[Floats2d]) -> None:
        """Store each doc's encoder states in ``doc.tensor`` for the listeners."""
        for doc, state in zip(docs, states):
            doc.tensor = state  # type: ignore[assignment]  # spaCy's Doc.tensor stub is numpy-only; thinc arrays are stored

    # --- training --------------------------------------------------------------------

    def update(
        self,
        examples: Iterable[Example],
        *,
        drop: float = 0.0,
        sgd: Optional[Optimizer] = None,
        losses: Optional[Dict[str, float]] = None,
    ) -> Dict[str, float]:
        """Run the hierarchy once on the batch and hand every listener its level.

        The backward pass runs when all linked listeners have called back (a head
        without gold for the batch calls back with nothing), or is flushed by
        ``finish_update`` / the next ``update``. ``spacy train`` calls ``finish_update``
        after every head's update; ``nlp.update(sgd=...)`` calls it right after this
        method, so the step is deferred until the last listener has called back: both
        paths apply the same gradient to the same weights.
        """
        if losses is None:
            losses = {}
        losses.setdefault(self.name, 0.0)
        examples = list(examples)
        validate_examples(examples, "HMTLEncoder.update")
        self._flush()
        docs = [eg.predicted for eg in examples]
        if not any(len(doc) for doc in docs):
            return losses
        set_dropout_rate(self.model, drop)
        outputs, backprop = self.model.begin_update(docs)
        listeners = self.listeners
        pending = _PendingBackprop(self.model, backprop, outputs, len(listeners), losses, self.name)
        self._pending = pending
        batch_id = HMTLListener.get_batch_id(docs)
        for listener in listeners:
            cast(HMTLListener, listener).receive(batch_id, outputs, pending.callback)
        return losses

    def _flush(self) -> bool:
        """Finish the pending batch, even if some listeners never called back (e.g. a head
        excluded from ``nlp.update``), applying a step that waited for it.
        RETURNS (bool): whether a step was applied."""
        pending, self._pending = self._pending, None
        return pending is not None and pending.flush()

    def finish_update(self, sgd: Optimizer) -> None:
        """Update the weights from the gradients of the batch. While some listeners have
        not called back yet (``nlp.update`` calls this right after ``update``), the step
        waits for them; the next ``update`` or ``finish_update`` applies it otherwise."""
        pending = self._pending
        waiting = pending is not None and not pending.done and pending.received < pending.expected
        if waiting and pending.deferred_sgd is None:
            pending.deferred_sgd = sgd
            return
        if not self._flush():
            self.model.finish_update(sgd)

    def get_loss(self, examples, scores) -> None:
        raise NotImplementedError("hmtl_encoder has no loss of its own: its heads provide the gradients")

    def initialize(self, get_examples: Callable[[], Iterable[Example]], *, nlp: Optional[Language] = None) -> None:
        """Initialize the encoder's weights (and static vectors) from a sample of the data."""
        validate_get_examples(get_examples, "HMTLEncoder.initialize")
        docs = [eg.reference for eg in islice(get_examples(), 10)]
        self.model.initialize(X=docs)

    def add_label(self, label: str) -> int:
        raise NotImplementedError("hmtl_encoder has no labels")

    # --- serialization: checksums, and errors that name the component and the file ---

    def from_bytes(self, bytes_data: bytes, *, exclude: Iterable[str] = tuple()) -> "HMTLEncoder":
        try:
            super().from_bytes(bytes_data, exclude=exclude)
        except (ValueError, RuntimeError, KeyError) as err:
            raise model_load_error(self.name, None, "the saved bytes", err, _CONFIG_HINT) from err
        # loaded weights: the reduced inference precision a config callback asked for
        inference_precision.apply_requested(self)
        return self

    def to_disk(self, path, *, exclude: Iterable[str] = tuple()) -> None:
        """spaCy's files (``cfg``, ``model``, ``vocab`` unless excluded), and their SHA-256
        in ``checksums.sha256`` (``model_files``), which ``from_disk`` checks."""
        super().to_disk(path, exclude=exclude)
        write_checksums(path, [name for name in _SAVED_FILES if name not in exclude])

    def from_disk(self, path, *, exclude: Iterable[str] = tuple()) -> "HMTLEncoder":
        """Load what ``to_disk`` saved, each file checked against its saved checksum (a
        pipeline saved before checksums existed has none: nothing to check)."""
        path = ensure_path(path)
        try:
            checksums = read_checksums(path)
            if "cfg" not in exclude:
                self.cfg.update(read_cfg(path / "cfg", checksums, path))
            if "vocab" not in exclude and (path / "vocab").exists():
                verify_files(path, "vocab", checksums)
                self.vocab.from_disk(path / "vocab", exclude=exclude)
            if "model" not in exclude:
                self._load_model(read_verified(path / "model", checksums, path), str(path / "model"))
        except ModelFileError as err:
            raise ValueError(f"[{self.name}] {err}") from err
        return self

    def _load_model(self, data: bytes, source: str) -> None:
        try:
            self.model.from_bytes(data)
        except (ValueError, RuntimeError, KeyError) as err:
            raise model_load_error(self.name, data, source, err, _CONFIG_HINT) from err
        inference_precision.apply_requested(self)


# The files spaCy's TrainablePipe.to_disk writes.
_SAVED_FILES = ("cfg", "vocab", "model")
_CONFIG_HINT = "Was it saved with another configuration (embedding width, level widths or depths)?"
