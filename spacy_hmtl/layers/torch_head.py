"""The head contract: a thinc model that owns a task head's torch module.

Every HMTL head (``hmtl_ner``, ``hmtl_mentions``, ``hmtl_relations``, ``hmtl_coref``) has
the same model, built by its architecture with ``build_torch_head``:

* ``tok2vec`` (ref): the listener that hands the head one level of the shared encoder;
* ``torch_head`` (ref): a layer holding the torch module in a ``PyTorchShim`` (``torch_shim``; thinc owns
  device placement, serialization and the optimizer step);
* ``attrs["settings"]``: the head's typed hyper-parameters, a ``HeadSettings`` dataclass
  that the architecture builds from its arguments (the one place the config's values
  go) and whose ``build_module`` makes the torch module;
* ``attrs["labels"]`` and dim ``nI``: the sizes only known at initialize (label sets, the
  listener's width), set by the pipe with ``set_head_sizes``.

The model's ``init`` builds the torch module. Calling the model runs the listener and pads
its output into a ``HeadBatch`` (tensor, lengths, module): the head's loss needs the gold
annotation, so the pipe computes it in torch, calls ``loss.backward()`` and then the
model's backprop callback, which passes the tensor's gradient back to the listener.
"""
from dataclasses import asdict, dataclass, fields
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Type, TypeVar, get_type_hints

import srsly
import torch
from spacy.tokens import Doc
from thinc.api import Model
from thinc.model import deserialize_attr, serialize_attr
from thinc.types import Floats2d

from .torch_bridge import get_torch_module, pad_to_torch, torch_device, unpad_from_torch
from .torch_shim import AveragingPyTorchShim

# label set name -> labels, e.g. {"labels": [...], "entity_labels": [...]}
LabelSets = Mapping[str, Sequence[str]]


SettingsT = TypeVar("SettingsT", bound="HeadSettings")


@dataclass(frozen=True)
class HeadSettings:
    """Base class of the heads' typed hyper-parameters. Each head subclasses it as a
    frozen dataclass with one field per setting of its architecture, and its docstring is
    the one place those settings are described. The field names are the keyword arguments
    of the head's torch module, so ``build_module`` passes them all with ``asdict``.

    The architecture function still lists each setting as a typed argument (spaCy
    validates a config block against the signature) and builds the settings with
    ``from_arguments(locals())``, so no setting is listed a third time.
    """

    @classmethod
    def from_arguments(cls: Type[SettingsT], arguments: Mapping[str, Any]) -> SettingsT:
        """The settings named in ``arguments``: an architecture's ``locals()`` (names that
        are not settings, such as ``tok2vec``, are ignored)."""
        return cls(**{field.name: arguments[field.name] for field in fields(cls)})

    def __post_init__(self) -> None:
        # A config may write 2.0 for an int or 1 for a float: store the declared type, so
        # the torch module and the saved record always see the same one.
        hints = get_type_hints(type(self))
        for field in fields(self):
            kind = hints[field.name]
            if kind in (int, float, bool, str):
                object.__setattr__(self, field.name, kind(getattr(self, field.name)))
        self.check()

    def check(self) -> None:
        """Raise a ValueError for settings the torch module cannot be built with: checked
        when the architecture runs, since the module itself is only built at initialize."""

    def build_module(self, input_width: int, labels: LabelSets) -> torch.nn.Module:
        """The head's torch module for token vectors ``input_width`` wide and these label
        sets."""
        raise NotImplementedError


# The settings are rebuilt from the config when a pipeline loads, so the saved copy is
# only a record (thinc saves every attr): loading keeps the config's settings.
@serialize_attr.register(HeadSettings)
def _serialize_settings(_: HeadSettings, value: HeadSettings, name: str, model: Model) -> bytes:
    return srsly.msgpack_dumps(asdict(value))  # type: ignore[call-overload]


@deserialize_attr.register(HeadSettings)
def _deserialize_settings(current: HeadSettings, value: bytes, name: str, model: Model) -> HeadSettings:
    return current


@dataclass
class HeadBatch:
    """The model's output: the listener's token vectors, padded, and the torch module.

    X (torch.Tensor): ``(batch, max_tokens, width)`` float32, zero-padded.
    lengths (torch.Tensor): ``(batch,)`` int64 on the CPU: tokens per doc.
    module (torch.nn.Module): the head's torch module (in train or eval mode as called).
    """

    X: torch.Tensor
    lengths: torch.Tensor
    module: torch.nn.Module


def build_torch_head(
    name: str, tok2vec: Model[List[Doc], List[Floats2d]], settings: HeadSettings
) -> Model[List[Doc], HeadBatch]:
    """A head's model: the listener ``tok2vec`` and the torch module that ``settings``
    builds once ``set_head_sizes`` gave its sizes (at initialize, or before loading)."""
    torch_layer: Model = Model(f"{name}_torch", _torch_layer_forward)
    return Model(
        name,
        _head_forward,
        init=_head_init,
        layers=[tok2vec, torch_layer],
        refs={"tok2vec": tok2vec, "torch_head": torch_layer},
        dims={"nI": None},
        attrs={"settings": settings, "labels": {}},
    )


def head_settings(model: Model) -> HeadSettings:
    """The typed hyper-parameters of a head model."""
    return model.attrs["settings"]


def set_head_sizes(model: Model, *, input_width: int, labels: LabelSets) -> None:
    """Give a head model the sizes its torch module needs: the listener's width and the
    label sets. Drops a module built for other sizes."""
    labels = {key: list(values) for key, values in labels.items()}
    if model.maybe_get_dim("nI") != input_width or model.attrs["labels"] != labels:
        drop_head_module(model)
    model.set_dim("nI", int(input_width), force=True)
    model.attrs["labels"] = labels


def has_head_module(model: Model) -> bool:
    return bool(model.get_ref("torch_head").shims)


def drop_head_module(model: Model) -> None:
    """Forget the torch module (and its weights): the next build uses the current sizes."""
    model.get_ref("torch_head").shims.clear()


def build_head_module(model: Model) -> torch.nn.Module:
    """Build the torch module from the settings and sizes (once); return it."""
    layer = model.get_ref("torch_head")
    if not layer.shims:
        if not model.maybe_get_dim("nI"):
            raise ValueError(f"{model.name}: the input width is unknown; initialize the pipeline first")
        module = head_settings(model).build_module(model.get_dim("nI"), model.attrs["labels"])
        layer.shims.append(AveragingPyTorchShim(module))
    return get_torch_module(layer)


def head_module(model: Model) -> torch.nn.Module:
    """The head's torch module; a ValueError before it was built."""
    layer = model.get_ref("torch_head")
    if not layer.shims:
        raise ValueError(f"{model.name}: the head has no torch module yet; initialize or load the pipeline first")
    return get_torch_module(layer)


# Module-level functions (not closures) so that pipelines can be pickled.
def _head_init(model: Model, X: Optional[List[Doc]] = None, Y=None) -> None:
    model.get_ref("tok2vec").initialize(X=X)
    build_head_module(model)


def _head_forward(model: Model, docs: List[Doc], is_train: bool) -> Tuple[HeadBatch, Callable]:
    tok2vec = model.get_ref("tok2vec")
    tokvecs, backprop_tokvecs = tok2vec(docs, is_train)
    module = head_module(model)
    module.train(is_train)
    X, lengths = pad_to_torch(tokvecs, torch_device(model.get_ref("torch_head")), requires_grad=is_train)

    def backprop(_: None = None) -> List[Doc]:
        """Call after ``loss.backward()``: hands ``X.grad`` (zeros when the loss did not
        reach it) back to the listener."""
        if X.grad is None:
            d_tokvecs = [model.ops.alloc2f(*t.shape) for t in tokvecs]
        else:
            d_tokvecs = unpad_from_torch(X.grad, lengths)
        return backprop_tokvecs(d_tokvecs)

    return HeadBatch(X, lengths, module), backprop


def _torch_layer_forward(model: Model, X, is_train: bool):
    raise NotImplementedError(f"{model.name}: the head model runs its torch module (see build_torch_head)")


def label_sets(labels: Sequence[str], **others: Sequence[str]) -> Dict[str, List[str]]:
    """``{"labels": labels, **others}`` as lists: the label sets of a head."""
    return {"labels": list(labels), **{key: list(values) for key, values in others.items()}}
