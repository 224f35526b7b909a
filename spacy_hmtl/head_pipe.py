"""The shared pipe machinery of the task heads (``hmtl_ner``, ``hmtl_mentions``, ...).

A head's model is built by ``layers.torch_head.build_torch_head`` (the head contract: the
model owns its torch module, built from typed settings). The pipe gives the model its
sizes at initialize (listener width, labels), calls it on a batch, computes the task's loss
in torch with the gold annotation, and calls the model's backprop callback.
"""
import warnings
from itertools import islice
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Set, Tuple

import srsly
import torch
from spacy.language import Language
from spacy.pipeline import TrainablePipe
from spacy.tokens import Doc
from spacy.training import Example, validate_examples, validate_get_examples
from spacy.util import ensure_path
from spacy.vocab import Vocab
from thinc.api import Model, Optimizer, set_dropout_rate

from .annotations import register_extensions
from .layers import inference_precision
from .gold_check import GoldLabelWarning, UnlearnableGold, count_unlearnable, some_labels, unlearnable_message
from .layers.torch_head import (
    HeadBatch,
    LabelSets,
    build_head_module,
    drop_head_module,
    has_head_module,
    label_sets,
    set_head_sizes,
)
from .model_files import ModelFileError, model_load_error, read_cfg, read_checksums, read_verified, write_checksums


class TorchHeadPipe(TrainablePipe):
    """Base class of the HMTL heads. Subclasses implement:

    * ``is_annotated(doc)``: whether a reference doc carries gold for this task;
    * ``gold_labels(examples)``: the task's labels in the references (collected by
      ``initialize_labels``; ``evaluate`` compares them with the pipe's);
    * ``compute_loss(examples, batch)``: a scalar torch loss from the model's
      ``HeadBatch``; docs that are not annotated must not contribute;
    * ``decode(docs, batch)``: predictions, one per doc;
    * ``set_annotations(docs, predictions)``;

    and may override ``label_sets()`` (the label sets the torch module is built for) and
    ``unlearnable_gold(examples, nlp)`` (the gold it cannot learn or predict, reported at
    initialize).
    """

    def __init__(
        self,
        vocab: Vocab,
        model: Model,
        name: str,
        *,
        scorer: Optional[Callable] = None,
        loss_weight: float = 1.0,
        **cfg: Any,
    ):
        if loss_weight < 0:
            raise ValueError(f"[{name}] loss_weight must be >= 0, got {loss_weight}")
        # The heads write doc._ layers: warn now if other code registered one of them
        # (e.g. its own doc._.relations) since spacy_hmtl was imported.
        register_extensions()
        self.vocab = vocab
        self.model = model
        self.name = name
        self.scorer = scorer
        # Every head's loss is a sum over the batch's annotated docs of a sum over each
        # doc's decisions (tags, candidate spans, pairs, antecedents): one scale for all
        # heads, so the shared encoder hears each task. ``loss_weight`` rescales it.
        self.loss_weight = float(loss_weight)
        self.cfg: Dict[str, Any] = {"labels": [], **cfg}

    # --- labels ----------------------------------------------------------------------

    @property
    def labels(self) -> tuple:
        return tuple(self.cfg["labels"])

    @property
    def label_data(self) -> List[str]:
        return list(self.labels)

    def add_label(self, label: str) -> int:
        if not isinstance(label, str):
            raise ValueError(f"[{self.name}] labels must be strings, got {label!r}")
        if label in self.cfg["labels"]:
            return 0
        if has_head_module(self.model):
            raise ValueError(
                f"[{self.name}] cannot add label {label!r} after the model was initialized; "
                "add all labels before nlp.initialize()"
            )
        self.cfg["labels"].append(label)
        return 1

    # --- hooks for subclasses --------------------------------------------------------

    def label_sets(self) -> LabelSets:
        """The label sets the torch module is built for (saved in ``cfg``)."""
        return label_sets(self.labels)

    def is_annotated(self, doc: Doc) -> bool:
        raise NotImplementedError

    def gold_labels(self, examples: Iterable[Example]) -> Set[str]:
        """The labels this task's gold annotation uses in the references of ``examples``."""
        raise NotImplementedError

    def initialize_labels(self, examples: Iterable[Example]) -> None:
        """Add the labels of the training data (``gold_labels``), sorted."""
        for label in sorted(self.gold_labels(examples)):
            self.add_label(label)

    def unlearnable_gold(self, examples: Iterable[Example], nlp: Optional[Language]) -> Iterator[UnlearnableGold]:
        """Yield ``(problem, label)`` for each gold item of the references of ``examples``
        that this head ignores in training or can never predict; ``problem`` is a plural
        noun phrase that says what and why. Called once at initialize, after the labels
        are set. By default nothing."""
        return iter(())

    def labelled_outside(self, what: str, effect: str) -> str:
        """The problem "gold WHAT labelled outside the head's labels (...), EFFECT"."""
        return f"gold {what} labelled outside the head's labels ({some_labels(self.labels)}), {effect}"

    def compute_loss(self, examples: List[Example], batch: HeadBatch) -> torch.Tensor:
        raise NotImplementedError

    def decode(self, docs: List[Doc], batch: HeadBatch) -> List[Any]:
        raise NotImplementedError

    # --- torch module ---------------------------------------------------------------

    @property
    def torch_module(self) -> torch.nn.Module:
        """The head's torch module (built from the saved or initialized sizes if needed)."""
        return self._ensure_module()

    def _ensure_module(self) -> torch.nn.Module:
        if not has_head_module(self.model):
            self._set_model_sizes()
        return build_head_module(self.model)

    def _set_model_sizes(self) -> None:
        set_head_sizes(self.model, input_width=self.input_width(), labels=self.label_sets())

    # --- TrainablePipe API ----------------------------------------------------------

    def initialize(
        self,
        get_examples: Callable[[], Iterable[Example]],
        *,
        nlp: Optional[Language] = None,
        labels: Optional[Sequence[str]] = None,
    ) -> None:
        """Initialize the head: collect labels (unless given) and build the torch module.

        get_examples (Callable[[], Iterable[Example]]): the training data.
        nlp (Language): the current nlp object.
        labels (Optional[Sequence[str]]): labels, e.g. from ``spacy init labels``.
        """
        validate_get_examples(get_examples, f"{type(self).__name__}.initialize")
        self._check_listeners_linked(nlp)
        if labels is not None:
            for label in labels:
                self.add_label(label)
        elif not self.labels:
            self.initialize_labels(get_examples())
        if not self.labels and self._needs_labels:
            raise ValueError(
                f"[{self.name}] found no labels in the training data: are the documents "
                f"annotated for this task (see spacy_hmtl.annotations)?"
            )
        self._warn_unlearnable_gold(get_examples(), nlp)
        sample = [eg.predicted for eg in islice(get_examples(), 10)]
        self.cfg["input_width"] = self._find_input_width([doc for doc in sample if len(doc)][:1])
        drop_head_module(self.model)  # re-initializing rebuilds the module
        self._set_model_sizes()
        self.model.initialize(X=sample)

    _needs_labels = True

    def _warn_unlearnable_gold(self, examples: Iterable[Example], nlp: Optional[Language]) -> None:
        """One ``GoldLabelWarning`` with the counts of ``unlearnable_gold``, if any: a gold
        label or span the head drops must not vanish from training unnoticed."""
        counts = count_unlearnable(self.unlearnable_gold(examples, nlp))
        if counts:
            warnings.warn(unlearnable_message(self.name, counts), GoldLabelWarning, stacklevel=3)

    def input_width(self) -> int:
        """Width of the listener's output: its ``nO`` (set when an HMTLListener is linked,
        or given in the config), else the width found at initialize."""
        tok2vec = self.model.get_ref("tok2vec")
        if tok2vec.has_dim("nO") and tok2vec.get_dim("nO"):
            return int(tok2vec.get_dim("nO"))
        if self.cfg.get("input_width"):
            return int(self.cfg["input_width"])
        raise ValueError(
            f"[{self.name}] the width of the listener's output is unknown: initialize the "
            "pipeline (nlp.initialize) or give the listener a width"
        )

    def _find_input_width(self, sample: List[Doc]) -> int:
        """At initialize: the listener's ``nO``, or, for a listener that learns its width
        lazily, the width of its first output (its upstream is initialized by then)."""
        tok2vec = self.model.get_ref("tok2vec")
        tok2vec.initialize(X=sample or None)
        if tok2vec.has_dim("nO") and tok2vec.get_dim("nO"):
            return int(tok2vec.get_dim("nO"))
        try:
            outputs = tok2vec.predict(sample) if sample else []
        except Exception as err:  # noqa: BLE001  (re-raised with context)
            raise ValueError(
                f"[{self.name}] cannot determine the width of the token vectors: the listener "
                f"has no 'nO' and could not be run ({err})"
            ) from err
        if not outputs or outputs[0].ndim != 2 or not outputs[0].shape[1]:
            raise ValueError(f"[{self.name}] cannot determine the width of the token vectors")
        return int(outputs[0].shape[1])

    def _check_listeners_linked(self, nlp: Optional[Language]) -> None:
        for node in self.model.walk():
            # an encoder listener (HMTLListener) that no encoder in the pipeline linked
            if getattr(node, "is_linked", True) is False:
                pipeline = nlp.pipe_names if nlp is not None else "?"
                raise ValueError(
                    f"[{self.name}] listens to '{node.upstream_name}', which is not in the pipeline "  # type: ignore[attr-defined]  # an HMTLListener (is_linked above); thinc types walk() as Model
                    f"before it (pipeline: {pipeline}). Add an hmtl_encoder named "
                    f"'{node.upstream_name}' earlier, or fix model.tok2vec.upstream."  # type: ignore[attr-defined]  # an HMTLListener (is_linked above); thinc types walk() as Model
                )

    def predict(self, docs: Iterable[Doc]) -> List[Any]:
        docs = list(docs)
        if not docs:
            return []
        self._ensure_module()
        batch = self.model.predict(docs)
        with torch.no_grad():
            return self.decode(docs, batch)

    def update(
        self,
        examples: Iterable[Example],
        *,
        drop: float = 0.0,
        sgd: Optional[Optimizer] = None,
        losses: Optional[Dict[str, float]] = None,
    ) -> Dict[str, float]:
        """Learn from a batch. The loss (see ``__init__``) is multiplied by
        ``loss_weight``. A batch without gold for this task (or with only empty docs) is
        skipped: the listener tells the encoder it sends nothing, and the encoder
        backpropagates the other heads' gradients."""
        if losses is None:
            losses = {}
        losses.setdefault(self.name, 0.0)
        examples = list(examples)
        validate_examples(examples, f"{type(self).__name__}.update")
        if not any(self.is_annotated(eg.reference) and len(eg.predicted) for eg in examples):
            self._decline_batch()
            return losses
        docs = [eg.predicted for eg in examples]
        set_dropout_rate(self.model, drop)
        self._ensure_module()
        batch, backprop = self.model.begin_update(docs)
        loss = self.compute_loss(examples, batch) * self.loss_weight
        if loss.requires_grad:
            loss.backward()
        backprop(None)
        if sgd is not None:
            self.finish_update(sgd)
        losses[self.name] += float(loss.detach())
        return losses

    def _decline_batch(self) -> None:
        """Let the listeners' encoder know this head sends nothing for the batch."""
        for node in self.model.walk():
            decline = getattr(node, "decline", None)
            if callable(decline):
                decline()

    def get_loss(self, examples: Iterable[Example], scores) -> Any:
        raise NotImplementedError(f"{type(self).__name__} computes its loss in torch inside update()")

    # --- serialization: cfg (labels) before the model, so the module can be built ---

    def _build_module_if_possible(self) -> None:
        """Build the torch module before saving, so the bytes hold its weights. A pipe that
        was never initialized (sizes unknown) is saved without one."""
        if not has_head_module(self.model):
            try:
                self.input_width()
            except ValueError:
                self.cfg["has_module"] = False
                return
            if self._needs_labels and not self.labels:
                self.cfg["has_module"] = False
                return
            self._ensure_module()
        self.cfg["has_module"] = True

    def to_bytes(self, *, exclude: Iterable[str] = tuple()) -> bytes:
        self._build_module_if_possible()
        return srsly.msgpack_dumps(
            {"cfg": self.cfg, "model": self.model.to_bytes(), "vocab": self.vocab.to_bytes(exclude=exclude)}
        )

    def from_bytes(self, bytes_data: bytes, *, exclude: Iterable[str] = tuple()):
        try:
            msg = srsly.msgpack_loads(bytes_data)
        except Exception as err:  # msgpack's errors share no base class
            raise ValueError(f"[{self.name}] the saved bytes are truncated or corrupted: {err}") from err
        self._update_saved_cfg(msg["cfg"])
        if "vocab" not in exclude:
            self.vocab.from_bytes(msg["vocab"], exclude=exclude)
        self._load_model(msg["model"], source="the saved bytes")
        return self

    def to_disk(self, path, *, exclude: Iterable[str] = tuple()) -> None:
        """Save ``cfg`` and ``model``, and their SHA-256 in ``checksums.sha256``
        (``model_files``), which ``from_disk`` checks."""
        path = ensure_path(path)
        path.mkdir(parents=True, exist_ok=True)
        self._build_module_if_possible()
        srsly.write_json(path / "cfg", self.cfg)
        (path / "model").write_bytes(self.model.to_bytes())
        write_checksums(path, ["cfg", "model"])

    def from_disk(self, path, *, exclude: Iterable[str] = tuple()):
        """Load ``cfg`` and ``model``, each checked against its saved checksum (a
        pipeline saved before checksums existed has none: nothing to check)."""
        path = ensure_path(path)
        checksums = self._read_checksums(path)
        self._update_saved_cfg(self._read_cfg(path / "cfg", checksums))
        model_path = path / "model"
        try:
            data = read_verified(model_path, checksums, path)
        except ModelFileError as err:
            raise ValueError(f"[{self.name}] {err}") from err
        self._load_model(data, source=str(model_path))
        return self

    #: keys of a saved ``cfg`` to ignore: run-time settings that older releases saved
    #: with the weights and that are now attributes from the config
    legacy_cfg_keys: Tuple[str, ...] = ()

    def _update_saved_cfg(self, saved: Dict[str, Any]) -> None:
        self.cfg.update({key: value for key, value in saved.items() if key not in self.legacy_cfg_keys})

    def _read_checksums(self, path) -> Optional[Dict[str, str]]:
        try:
            return read_checksums(path)
        except ModelFileError as err:
            raise ValueError(f"[{self.name}] {err}") from err

    def _read_cfg(self, path, checksums: Optional[Dict[str, str]] = None) -> Dict[str, Any]:
        """The saved settings (checked against ``checksums`` when given); an unreadable
        file raises an error that names it."""
        try:
            return read_cfg(path, checksums, path.parent)
        except ModelFileError as err:
            raise ValueError(f"[{self.name}] {err}") from err

    def _load_error(self, data: bytes, source: str, err: Exception) -> ValueError:
        """Tell a truncated or corrupted file from weights that do not fit this component."""
        return model_load_error(
            self.name, data, source, err,
            "Was it saved with another configuration or label set? Load it with the config "
            "it was saved with (its config.cfg), or retrain the pipeline with this one.",
        )

    def _load_model(self, data: bytes, source: str = "the saved model") -> None:
        drop_head_module(self.model)
        if self.cfg.get("has_module", True):
            self._set_model_sizes()
            build_head_module(self.model)
        try:
            self.model.from_bytes(data)
        except (ValueError, RuntimeError, KeyError) as err:
            raise self._load_error(data, source, err) from err
        # loaded weights: the reduced inference precision a config callback asked for
        inference_precision.apply_requested(self)
