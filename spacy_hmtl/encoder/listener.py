"""``spacy_hmtl.HMTLListener.v1``: how a head reads one level of the shared encoder."""
from typing import Callable, List, Optional, Tuple

from spacy.errors import Errors
from spacy.tokens import Doc
from spacy.util import registry
from thinc.api import Model
from thinc.types import Floats2d

from .model import level_columns


class HMTLListener(Model):
    """Receives the encoder's output during training and reads ``doc.tensor`` at
    inference, returning the columns of one level (with the embeddings in front when
    ``shortcut`` is set).

    The column layout is only known once the encoder links the listener
    (``HMTLEncoder.add_listener``), which also sets ``nO`` when the config gave width 0.
    """

    name = "hmtl_listener"

    def __init__(self, upstream_name: str, level: int, shortcut: bool, width: int, grad_factor: float):
        Model.__init__(
            self,
            name=self.name,
            forward=_listener_forward,
            init=_listener_init,
            dims={"nO": width or None},
            attrs={"level": level, "shortcut": shortcut, "grad_factor": grad_factor},
        )
        self.upstream_name = upstream_name
        self._batch_id: Optional[int] = None
        self._outputs: Optional[List[Floats2d]] = None
        self._backprop: Optional[Callable] = None
        self._columns: Optional[Tuple[int, ...]] = None
        self._encoder_width: Optional[int] = None

    def __getstate__(self):
        # Drop the training batch (arrays + a closure into the encoder) when pickling.
        # thinc's Model keeps its own state (attrs, dims, refs, ...) in __slots__, which a
        # plain __dict__ state would lose: return (dict, slots), as object.__getstate__ does.
        state = dict(self.__dict__)
        state.update(_batch_id=None, _outputs=None, _backprop=None)
        slots = {name: getattr(self, name) for name in Model.__slots__ if hasattr(self, name)}
        return state, slots

    @classmethod
    def get_batch_id(cls, inputs: List[Doc]) -> int:
        return sum(sum(token.orth for token in doc) for doc in inputs)

    @property
    def is_linked(self) -> bool:
        return self._columns is not None

    def link(self, level_widths: List[int]) -> None:
        """Fix the columns this listener reads, given the encoder's block widths."""
        level, shortcut = self.attrs["level"], self.attrs["shortcut"]
        columns = level_columns(level_widths, level, shortcut)
        width = len(columns)
        if self.has_dim("nO") and self.get_dim("nO") not in (None, width):
            raise ValueError(
                f"HMTLListener: level {level} (shortcut={shortcut}) of '{self.upstream_name}' is "
                f"{width} wide but the listener's width is {self.get_dim('nO')}; set width = 0 "
                f"(inferred) or {width}"
            )
        self._columns = columns
        self._encoder_width = sum(level_widths)
        if not self.has_dim("nO") or self.get_dim("nO") is None:
            self.set_dim("nO", width, force=True)

    def receive(self, batch_id: int, outputs, backprop: Callable) -> None:
        self._batch_id = batch_id
        self._outputs = outputs
        self._backprop = backprop

    def decline(self) -> None:
        """Tell the encoder that this listener's head has nothing to learn from the
        current batch, so the encoder need not wait for it."""
        backprop, self._backprop = self._backprop, None
        if backprop is not None:
            backprop(None)

    def verify_inputs(self, inputs: List[Doc]) -> bool:
        if self._batch_id is None and self._outputs is None:
            raise ValueError(Errors.E954)
        batch_id = self.get_batch_id(inputs)
        if batch_id != self._batch_id:
            raise ValueError(Errors.E953.format(id1=batch_id, id2=self._batch_id))
        return True


def _not_linked_error(model: HMTLListener) -> ValueError:
    return ValueError(
        f"HMTLListener (level {model.attrs['level']}) is not linked to an encoder named "
        f"'{model.upstream_name}': add the '{model.upstream_name}' component before the "
        "components that listen to it, or fix the listener's 'upstream' setting"
    )


def _listener_init(model: HMTLListener, X=None, Y=None) -> None:
    # nlp.initialize links listeners before initializing components: an unlinked
    # listener here means its upstream is missing. Say so now, not deep inside a head.
    if model._columns is None:
        raise _not_linked_error(model)


def _listener_forward(model: HMTLListener, docs: List[Doc], is_train: bool):
    if model._columns is None:
        raise _not_linked_error(model)
    columns = model.ops.asarray1i(model._columns)
    if is_train:
        model.verify_inputs(docs)
        outputs = model._outputs
        Y = [out[:, columns] for out in outputs]
        grad_factor = model.attrs["grad_factor"]

        def backprop(dY: List[Floats2d]):
            d_outputs = []
            for out, d in zip(outputs, dY):
                full = model.ops.alloc2f(*out.shape)
                full[:, columns] = d * grad_factor if grad_factor != 1.0 else d
                d_outputs.append(full)
            return model._backprop(d_outputs)

        return Y, backprop
    Y = []
    for doc in docs:
        tensor = doc.tensor
        if len(doc) == 0:
            Y.append(model.ops.alloc2f(0, len(model._columns)))
            continue
        if tensor is None or tensor.size == 0:
            raise ValueError(
                f"HMTLListener: the doc has no encoder states. Run '{model.upstream_name}' before "
                "the components listening to it (and do not disable it)"
            )
        if tensor.shape != (len(doc), model._encoder_width):
            raise ValueError(
                f"HMTLListener: doc.tensor has shape {tensor.shape}, expected "
                f"({len(doc)}, {model._encoder_width}) from '{model.upstream_name}'; did another "
                "component overwrite doc.tensor?"
            )
        Y.append(model.ops.asarray2f(tensor[:, columns]))  # type: ignore[arg-type]  # thinc's asarray2f stub does not accept a plain ndarray
    return Y, lambda dY: []


@registry.architectures("spacy_hmtl.HMTLListener.v1")
def build_hmtl_listener(
    upstream: str = "hmtl_encoder",
    level: int = 1,
    shortcut: bool = False,
    width: int = 0,
    grad_factor: float = 1.0,
) -> Model[List[Doc], List[Floats2d]]:
    """Read one level of an ``hmtl_encoder`` component.

    upstream (str): name of the encoder component (or "*" for any).
    level (int): 0 = embeddings, 1 = first BiLSTM level, ...
    shortcut (bool): prepend the embeddings to the level (HMTL's shortcut connections).
    width (int): expected output width; 0 infers it from the encoder.
    grad_factor (float): scales the gradient this head sends into the encoder (a per-task
        loss weight for the shared layers).
    """
    if level < 0:
        raise ValueError(f"HMTLListener: level must be >= 0, got {level}")
    return HMTLListener(upstream, level, shortcut, width, grad_factor)
