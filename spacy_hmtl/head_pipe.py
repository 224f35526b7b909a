"""The shared machinery of the task heads (``hmtl_ner``, ``hmtl_mentions``, ...).

A head's thinc model (see ``build_head_model``) holds two refs:

* ``tok2vec``: the listener that hands it a level of the shared encoder;
* ``torch_head``: a ``lazy_torch_layer`` holding the head's torch module.

The component pads the listener's output into a torch tensor, lets its torch module
compute the loss (CRF likelihood, antecedent marginal likelihood, ...) with autograd, and
passes the gradient of the tensor back to the listener. thinc still owns the torch
parameters: ``finish_update`` reads their ``.grad`` and serialization goes through the shim.
"""
from itertools import islice
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import srsly
import torch
from spacy.language import Language
from spacy.pipeline import TrainablePipe
from spacy.tokens import Doc
from spacy.training import Example, validate_examples, validate_get_examples
from spacy.util import ensure_path
from spacy.vocab import Vocab
from thinc.api import Model, Optimizer, set_dropout_rate
from thinc.types import Floats2d

from .layers.torch_bridge import ensure_torch_module, pad_to_torch, torch_device, unpad_from_torch


def build_head_model(name: str, tok2vec: Model[List[Doc], List[Floats2d]], torch_head: Model) -> Model:
    """Combine a listener and a head's torch layer into one model.

    Calling the model returns the listener's output; the torch module is run by the
    component, which needs the gold annotation to compute a loss.
    """
    return Model(
        name,
        _head_forward,
        init=_head_init,
        layers=[tok2vec, torch_head],
        refs={"tok2vec": tok2vec, "torch_head": torch_head},
    )


# Module-level (not closures) so that pipelines can be pickled.
def _head_forward(model: Model, docs: List[Doc], is_train: bool):
    return model.get_ref("tok2vec")(docs, is_train)


def _head_init(model: Model, X: Optional[List[Doc]] = None, Y=None) -> None:
    model.get_ref("tok2vec").initialize(X=X)
    model.get_ref("torch_head").initialize()


class TorchHeadPipe(TrainablePipe):
    """Base class of the HMTL heads. Subclasses implement:

    * ``module_kwargs()``: the keyword arguments of the torch module (sizes, labels);
    * ``is_annotated(doc)``: whether a reference doc carries gold for this task;
    * ``initialize_labels(examples)``: collect labels from the training data;
    * ``compute_loss(examples, X, lengths, module)``: a scalar torch loss; docs that are
      not annotated must not contribute;
    * ``decode(docs, X, lengths, module)``: predictions, one per doc;
    * ``set_annotations(docs, predictions)``.
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
        if self.model.get_ref("torch_head").shims:
            raise ValueError(
                f"[{self.name}] cannot add label {label!r} after the model was initialized; "
                "add all labels before nlp.initialize()"
            )
        self.cfg["labels"].append(label)
        return 1

    # --- hooks for subclasses --------------------------------------------------------

    def module_kwargs(self) -> Dict[str, Any]:
        raise NotImplementedError

    def is_annotated(self, doc: Doc) -> bool:
        raise NotImplementedError

    def initialize_labels(self, examples: Iterable[Example]) -> None:
        raise NotImplementedError

    def compute_loss(
        self, examples: List[Example], X: torch.Tensor, lengths: torch.Tensor, module: torch.nn.Module
    ) -> torch.Tensor:
        raise NotImplementedError

    def decode(self, docs: List[Doc], X: torch.Tensor, lengths: torch.Tensor, module: torch.nn.Module) -> List[Any]:
        raise NotImplementedError

    # --- torch module ---------------------------------------------------------------

    @property
    def torch_module(self) -> torch.nn.Module:
        layer = self.model.get_ref("torch_head")
        if not layer.shims:
            layer.attrs["module_kwargs"] = self.module_kwargs()
        return ensure_torch_module(layer)

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
        sample = [eg.predicted for eg in islice(get_examples(), 10)]
        self.cfg["input_width"] = self._find_input_width([doc for doc in sample if len(doc)][:1])
        layer = self.model.get_ref("torch_head")
        layer.shims.clear()  # re-initializing rebuilds the module with the current labels
        layer.attrs["module_kwargs"] = self.module_kwargs()
        self.model.initialize(X=sample)

    _needs_labels = True

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
        from .encoder.listener import HMTLListener

        for node in self.model.walk():
            if isinstance(node, HMTLListener) and not node.is_linked:
                pipeline = nlp.pipe_names if nlp is not None else "?"
                raise ValueError(
                    f"[{self.name}] listens to '{node.upstream_name}', which is not in the pipeline "
                    f"before it (pipeline: {pipeline}). Add an hmtl_encoder named "
                    f"'{node.upstream_name}' earlier, or fix model.tok2vec.upstream."
                )

    def predict(self, docs: Iterable[Doc]) -> List[Any]:
        docs = list(docs)
        if not docs:
            return []
        module = self.torch_module
        tokvecs = self.model.get_ref("tok2vec").predict(docs)
        module.eval()
        X, lengths = pad_to_torch(tokvecs, torch_device(self.model.get_ref("torch_head")))
        with torch.no_grad():
            return self.decode(docs, X, lengths, module)

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
        tokvecs, bp_tokvecs = self.model.get_ref("tok2vec").begin_update(docs)
        module = self.torch_module
        module.train()
        X, lengths = pad_to_torch(tokvecs, torch_device(self.model.get_ref("torch_head")), requires_grad=True)
        loss = self.compute_loss(examples, X, lengths, module) * self.loss_weight
        if loss.requires_grad:
            loss.backward()
        if X.grad is None:
            d_tokvecs = [self.model.ops.alloc2f(*t.shape) for t in tokvecs]
        else:
            d_tokvecs = unpad_from_torch(X.grad, lengths)
        bp_tokvecs(d_tokvecs)
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
        layer = self.model.get_ref("torch_head")
        if not layer.shims:
            try:
                kwargs = self.module_kwargs()
            except ValueError:
                self.cfg["has_module"] = False
                return
            if self._needs_labels and not self.labels:
                self.cfg["has_module"] = False
                return
            layer.attrs["module_kwargs"] = kwargs
            ensure_torch_module(layer)
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
        path = ensure_path(path)
        path.mkdir(parents=True, exist_ok=True)
        self._build_module_if_possible()
        srsly.write_json(path / "cfg", self.cfg)
        (path / "model").write_bytes(self.model.to_bytes())

    def from_disk(self, path, *, exclude: Iterable[str] = tuple()):
        path = ensure_path(path)
        self._update_saved_cfg(self._read_cfg(path / "cfg"))
        self._load_model((path / "model").read_bytes(), source=str(path / "model"))
        return self

    #: cfg keys that are run-time settings from the config (threshold, ...): a loaded
    #: pipeline keeps the value its config gives, not the one saved with the weights
    runtime_settings: Tuple[str, ...] = ()

    def _update_saved_cfg(self, saved: Dict[str, Any]) -> None:
        current = {key: self.cfg[key] for key in self.runtime_settings if key in self.cfg}
        self.cfg.update(saved)
        self.cfg.update(current)

    def _read_cfg(self, path) -> Dict[str, Any]:
        """The saved settings; an unreadable file raises an error that names it."""
        try:
            cfg = srsly.read_json(path)
        except ValueError as err:
            raise ValueError(
                f"[{self.name}] {path}: cannot read the saved settings ({err}): the file is missing, "
                "truncated or corrupted. Save the pipeline again, or restore the file."
            ) from err
        if not isinstance(cfg, dict):
            raise ValueError(f"[{self.name}] {path}: expected a JSON object, found {type(cfg).__name__}; corrupted file?")
        return cfg

    def _load_error(self, data: bytes, source: str, err: Exception) -> ValueError:
        """Tell a truncated or corrupted file from weights that do not fit this component."""
        try:
            srsly.msgpack_loads(data)
        except Exception as decode_err:
            return ValueError(
                f"[{self.name}] {source} is truncated or corrupted (not complete msgpack: {decode_err}). "
                "Save the pipeline again, or restore the file."
            )
        return ValueError(
            f"[{self.name}] cannot load the saved model into this component ({source}): {err}. "
            "Was it saved with another configuration or label set?"
        )

    def _load_model(self, data: bytes, source: str = "the saved model") -> None:
        layer = self.model.get_ref("torch_head")
        layer.shims.clear()
        if self.cfg.get("has_module", True):
            layer.attrs["module_kwargs"] = self.module_kwargs()
            ensure_torch_module(layer)
        try:
            self.model.from_bytes(data)
        except (ValueError, RuntimeError, KeyError) as err:
            raise self._load_error(data, source, err) from err
