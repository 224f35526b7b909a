"""Reduced-precision inference for a spacy-transformers model: the shim behind
``spacy_hmtl.quantize_transformer.v1`` / ``.v2``, which predicts in bfloat16 or with a
dynamically quantized int8 copy of the Hugging Face model.

``QuantizingHFShim`` is spacy-transformers' ``HFShim`` with four changes:

* ``predict`` (inference, ``is_train=False``) runs the model at the shim's precision:
  ``"bfloat16"`` runs the float model under ``torch.autocast`` (matrix products in bfloat16 on
  CPUs with native bfloat16 instructions, AVX512-BF16 or AMX; outputs back in float32);
  ``"int8"`` runs an int8 copy of the model, built on first use by
  ``torch.ao.quantization.quantize_dynamic``: every ``torch.nn.Linear`` gets int8 weights (one
  scale per output row) and quantizes its input on the fly; embeddings, layer norms and the
  attention products stay float32. The copy shares the float model's other tensors, so it
  costs the int8 weights only (~11 MB for MiniLM).
* ``predict`` runs the padded batch in buckets of similar length (``length_buckets``: the
  same outputs at every real position, up to float rounding) while the callback is enabled
  and the weights are loaded; switched off, it runs the one padded batch, exactly as trained.
* ``begin_update`` (training) drops the copy and disarms the shim: a pipe being trained
  runs, and keeps predicting, in float32 until the next load or ``quantize_transformers``.
* ``from_bytes`` (``from_disk`` goes through it) arms the shim: quantization applies to
  loaded weights, never to those of a pipeline being built for training.

The float model stays ``self._model``, so ``to_bytes`` / ``to_disk`` save the float32 weights
unchanged and a saved pipeline loads back anywhere, quantized or not. On a GPU, or with a
CPU whose int8 kernels would lose accuracy (``activation_range``), ``predict`` is the float
one. This module imports spacy-transformers; ``quantization`` imports it only when a
pipeline holds a transformer.
"""
import copy
import re
import warnings
from typing import Any, Dict, Optional

import torch
import torch.ao.nn.quantized.dynamic as nnqd
from spacy_transformers.layers.hf_shim import HFShim
from thinc.types import ArgsKwargs
from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic
from wasabi import msg

# the CPU probes, here under their old import path (``cpu_has_native_bf16`` is looked up in
# this module's namespace by ``resolve_precision``)
from ..layers.cpu_features import cpu_has_int32_int8_dot, cpu_has_native_bf16  # noqa: F401
from .length_buckets import run_in_length_buckets

# the warnings torch gives while quantizing (torch.ao.quantization's deprecation and that of
# the quantized tensor constructors it calls): once per load, about torch's own code
_TORCH_QUANTIZATION_WARNINGS = re.compile(r"(?s).*(torch\.ao\.quantization is deprecated|quantize_per_\w+.* deprecated)")


class FullRangeDynamicLinear(nnqd.Linear):
    """torch's dynamic int8 ``Linear``, quantizing its input to 8 bits instead of 7.

    torch's default (``reduce_range=True``) keeps one bit spare so that x86 kernels
    without VNNI, which add two int8 products in int16, cannot overflow. With VNNI (or
    on ARM's qnnpack) the sums are int32 and the spare bit only costs accuracy: on the
    fine-tuned CoNLL04 pipeline's test set 7-bit inputs cost up to 1.5 F1 on a head, 8-bit
    ones none (benchmarks/quantization_accuracy*.md).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        Y = torch.ops.quantized.linear_dynamic(x, self._packed_params._packed_params, reduce_range=False)
        return Y.to(x.dtype)


PRECISIONS = ("auto", "bfloat16", "int8", "float32")


def resolve_precision(precision: str, activation_range: str = "auto") -> Optional[str]:
    """``precision`` -> what inference runs here: "bfloat16", "int8", or None (float32).

    precision (str): "auto" (bfloat16 where ``cpu_has_native_bf16``, else float32: int8
        cost up to 3.8 F1 points on a dev set, docs/CONFIGS.md), "bfloat16"
        (also where emulated), "int8" (as ``activation_range`` allows) or "float32".
    activation_range (str): the int8 inputs' range (``resolve_activation_range``).
    RETURNS (Optional[str]): the precision, None for float32.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {list(PRECISIONS)}, not {precision!r}")
    resolve_activation_range(activation_range)  # validate
    if precision == "float32":
        return None
    if precision == "auto":
        return "bfloat16" if cpu_has_native_bf16() else None
    if precision == "int8":
        return "int8" if resolve_activation_range(activation_range) is not None else None
    return precision


def resolve_activation_range(activation_range: str) -> Optional[bool]:
    """``activation_range`` -> torch's ``reduce_range`` (None: do not quantize here).

    activation_range (str): "auto" (8 bits where ``cpu_has_int32_int8_dot``, else no
        quantization: 7 bits cost more than the 0.3 F1 the project accepts), "8bit" (always
        8: may overflow on x86 without VNNI), "7bit" (torch's default, safe on every CPU).
    RETURNS (Optional[bool]): reduce_range, or None for "stay float32".
    """
    if activation_range == "8bit":
        return False
    if activation_range == "7bit":
        return True
    if activation_range != "auto":
        raise ValueError(f"activation_range must be 'auto', '8bit' or '7bit', not {activation_range!r}")
    return False if cpu_has_int32_int8_dot() else None


def quantize_linear_layers(model: torch.nn.Module, *, reduce_range: bool) -> torch.nn.Module:
    """An int8 copy of ``model`` for inference: its ``torch.nn.Linear`` layers dynamically
    quantized (per-output-row int8 weights), every other tensor shared with ``model``.

    model (torch.nn.Module): the float model (left unchanged).
    reduce_range (bool): quantize the layers' inputs to 7 bits (True) or 8 (False).
    RETURNS (torch.nn.Module): the copy, in eval mode.
    """
    # share every parameter and buffer (deepcopy finds them in the memo): the embeddings
    # (half of MiniLM's weights) are not duplicated, and the Linear layers' float weights
    # are only read by the conversion
    memo: Dict[int, Any] = {id(t): t for t in model.parameters()}
    memo.update({id(t): t for t in model.buffers()})
    quantized = copy.deepcopy(model, memo)
    mapping = {torch.nn.Linear: nnqd.Linear if reduce_range else FullRangeDynamicLinear}
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_TORCH_QUANTIZATION_WARNINGS.pattern)
        quantize_dynamic(
            quantized, {torch.nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8, mapping=mapping, inplace=True
        )
    return quantized.eval()


def _float32_outputs(outputs: Any) -> Any:
    """A model's outputs with every bfloat16 tensor in float32: the listeners read them
    through NumPy, which has no bfloat16 (a ``ModelOutput`` is changed in place)."""

    def to_float(value: Any) -> Any:
        return value.float() if torch.is_tensor(value) and value.dtype == torch.bfloat16 else value

    if hasattr(outputs, "keys"):
        for key in list(outputs.keys()):
            outputs[key] = to_float(outputs[key])
        return outputs
    if isinstance(outputs, tuple):
        return tuple(to_float(value) for value in outputs)
    return to_float(outputs)


class QuantizingHFShim(HFShim):
    """``HFShim`` that predicts with an int8 copy of its model (see the module docstring).

    An existing ``HFShim`` becomes one through ``install`` (its class is swapped: the shim
    is created by spacy-transformers' architecture, which this package does not replace, so
    a sourced or saved transformer keeps its config).
    """

    # set by install(); the defaults keep a shim unpickled from an older state working
    _hmtl_enabled: bool = False
    _hmtl_armed: bool = False
    _hmtl_activation_range: str = "auto"
    # .v1's shims (and their pickles) are int8
    _hmtl_precision: str = "int8"
    _hmtl_quantized: Optional[torch.nn.Module] = None
    _hmtl_source: Optional[torch.nn.Module] = None
    _hmtl_failed: bool = False
    # inference runs the batch in buckets of similar length (length_buckets): None follows
    # the callback (buckets while it is enabled and armed, the one padded batch when it is
    # switched off, so that "off" keeps the exact outputs of the pipeline as trained);
    # set_length_buckets forces it either way
    _hmtl_length_buckets: Optional[bool] = None

    @classmethod
    def install(
        cls, shim: HFShim, *, enabled: bool, armed: bool, activation_range: str = "auto", precision: str = "int8"
    ) -> "QuantizingHFShim":
        """Turn ``shim`` (an ``HFShim`` or a ``QuantizingHFShim``) into a ``QuantizingHFShim``, in place.

        shim (HFShim): the shim of a spacy-transformers ``TransformerModel``.
        enabled (bool): quantize at inference once armed.
        armed (bool): the weights are loaded (True: quantize from the next prediction;
            False: wait for ``from_bytes``).
        activation_range (str): see ``resolve_activation_range``.
        precision (str): see ``resolve_precision``.
        RETURNS (QuantizingHFShim): the same object.
        """
        resolve_precision(precision, activation_range)  # validate early
        if type(shim) is HFShim:
            shim.__class__ = cls
        elif not isinstance(shim, cls):
            raise TypeError(f"cannot quantize a {type(shim).__name__}: only spacy-transformers' HFShim")
        assert isinstance(shim, cls)
        shim._hmtl_enabled = enabled
        shim._hmtl_armed = armed
        shim._hmtl_activation_range = activation_range
        shim._hmtl_precision = precision
        shim._hmtl_failed = False
        shim.drop_quantized()
        return shim

    def drop_quantized(self) -> None:
        """Forget the int8 copy (rebuilt at the next prediction if still armed)."""
        self._hmtl_quantized = None
        self._hmtl_source = None

    def inference_precision(self) -> Optional[str]:
        """What ``predict`` runs now: "bfloat16", "int8" or None (float32: disabled, not
        armed, not on the CPU, a precision this CPU does not run well, or a failed
        quantization).

        RETURNS (Optional[str]): the precision.
        """
        if not (self._hmtl_enabled and self._hmtl_armed) or self._hmtl_failed or self._model is None:
            return None
        # the weights' device, not thinc's ops: a GPU pipeline keeps its float32 model there
        if self.device.type != "cpu":
            return None
        return resolve_precision(self._hmtl_precision, self._hmtl_activation_range)

    def quantized_model(self) -> Optional[torch.nn.Module]:
        """The int8 copy ``predict`` runs, built if needed; None where prediction does not
        run int8 (see ``inference_precision``).

        RETURNS (Optional[torch.nn.Module]): the quantized model.
        """
        if self.inference_precision() != "int8":
            return None
        if self._hmtl_quantized is not None and self._hmtl_source is self._model:
            return self._hmtl_quantized
        reduce_range = bool(resolve_activation_range(self._hmtl_activation_range))
        try:
            self._hmtl_quantized = quantize_linear_layers(self._model, reduce_range=reduce_range)
        except Exception as err:  # a torch build without int8 kernels: predict in float32
            self._hmtl_failed = True
            msg.warn(f"spacy_hmtl.quantize_transformer.v1: int8 quantization failed, running float32 ({err})")
            return None
        self._hmtl_source = self._model
        return self._hmtl_quantized

    def predict(self, inputs: ArgsKwargs) -> Any:
        precision = self.inference_precision()
        if precision == "bfloat16":
            self._model.eval()
            with torch.no_grad(), torch.autocast(device_type="cpu", dtype=torch.bfloat16):
                outputs = self._run(self._model, inputs)
            self._model.train()
            return _float32_outputs(outputs)
        quantized = self.quantized_model()
        if quantized is not None:
            with torch.no_grad():
                return self._run(quantized, inputs)
        if self._model is None or self.device.type != "cpu" or self._mixed_precision:
            return super().predict(inputs)
        self._model.eval()
        with torch.no_grad():
            outputs = self._run(self._model, inputs)
        self._model.train()
        return outputs

    def _run(self, model: Any, inputs: ArgsKwargs) -> Any:
        # the batch in length buckets where it can be (outputs equal to the padded batch's
        # at every real position; see length_buckets), else whole
        buckets = self._hmtl_length_buckets
        if buckets is None:
            buckets = self._hmtl_enabled and self._hmtl_armed
        if buckets and not inputs.args:
            outputs = run_in_length_buckets(model, dict(inputs.kwargs))
            if outputs is not None:
                return outputs
        return model(*inputs.args, **inputs.kwargs)

    def begin_update(self, inputs: ArgsKwargs):
        # the pipe is being trained: float32 from now on (the copy would go stale and the
        # int8 layers have no gradient)
        self._hmtl_armed = False
        self.drop_quantized()
        return super().begin_update(inputs)

    def from_bytes(self, bytes_data: bytes) -> "QuantizingHFShim":
        super().from_bytes(bytes_data)
        self._hmtl_armed = True
        self._hmtl_failed = False
        self.drop_quantized()
        return self

    def to_device(self, device_type: str, device_id: int) -> None:  # pragma: no cover - GPU
        self.drop_quantized()
        super().to_device(device_type, device_id)

    def __getstate__(self) -> Dict[str, Any]:
        # copies and pickles (e.g. nlp.pipe(n_process=...) under spawn) rebuild the copy
        state = dict(self.__dict__)
        state.pop("_hmtl_quantized", None)
        state.pop("_hmtl_source", None)
        return state
