"""Faster transformer inference on the CPU: ``spacy_hmtl.quantize_transformer.v2`` (bfloat16
or int8) and ``.v1`` (int8).

On a CPU the MiniLM pipelines spend most of their time in the transformer, in float32. Two
ways to make it cheaper, measured on the fine-tuned pipelines' dev sets (docs/CONFIGS.md,
"Faster transformer inference on the CPU"):

* **bfloat16** (``precision = "bfloat16"``): the float model runs under ``torch.autocast``, its
  matrix products in bfloat16; 1.36-1.64x the MiniLM pipelines' float32 words/s on a CPU
  with native bfloat16 instructions (AVX512-BF16 or AMX), every head within 0.17 F1 of
  float32 on the test sets (0.44 on one dev score). ``"auto"`` (the
  default of ``.v2``) picks it where the CPU runs it natively and stays float32 elsewhere
  (emulated bfloat16 is slower than float32).
* **int8** (``precision = "int8"``, and all that ``.v1`` does): dynamic int8 quantization of
  the ``Linear`` layers (``torch.ao.quantization.quantize_dynamic``): 1.7x, but up to 3.8 F1
  points lost on a head of a dev set.

Switched on per pipeline, in its config (the packages that ``python -m spacy_hmtl package``
builds have ``.v2`` with ``precision = "auto"``; the training configs have nothing)::

    [nlp.after_pipeline_creation]
    @callbacks = "spacy_hmtl.quantize_transformer.v2"
    enabled = true
    precision = "auto"

and then applies to every spacy-transformers pipe of the pipeline:

* only to **loaded** weights (``spacy.load``, ``from_disk`` / ``from_bytes``): ``spacy train``
  builds the pipeline without loading it, and trains and evaluates in float32;
* only at **inference**: a pipe that is updated (fine-tuning, or training resumed from a
  loaded pipeline) predicts in float32 from then on;
* only on the **CPU** (a pipeline on a GPU keeps float32), and int8 by default only where the
  CPU's int8 kernels are exact enough (``activation_range``);
* **saved as float32**: the int8 model is a copy made at the first prediction, bfloat16 a
  context around the float model; ``nlp.to_disk`` writes the float32 weights, which load back
  at any precision.

Off for one load: ``spacy.load(path, config={"nlp": {"after_pipeline_creation": {"enabled":
False}}})``, or ``SPACY_HMTL_QUANTIZE=0`` in the environment (for commands that take no
config overrides, e.g. ``spacy evaluate``). On for a pipeline trained without it:
``spacy.load(path, config=QUANTIZE_OVERRIDES)`` (``.v2``, "auto"), or
``quantize_transformers(nlp, precision=...)`` after loading; ``quantize_transformers(nlp,
enabled=False)`` switches back to the exact float32 outputs. ``transformer_precision(nlp)``
says what each transformer pipe runs.
"""
import os
from typing import Callable, Dict, List, Optional, Sequence

from spacy.language import Language
from spacy.util import registry
from wasabi import msg

CALLBACK_V1 = "spacy_hmtl.quantize_transformer.v1"
# .v2 adds `precision`: bfloat16 where the CPU runs it natively ("auto"), int8 or float32
CALLBACK = "spacy_hmtl.quantize_transformer.v2"
# spacy.load(path, config=QUANTIZE_OVERRIDES): quantization on for a pipeline whose config
# does not name the callback
QUANTIZE_OVERRIDES = {"nlp": {"after_pipeline_creation": {"@callbacks": CALLBACK}}}
# "0", "false", "off" or "no": the callback does nothing (config overrides cannot reach
# every command, e.g. `spacy evaluate`)
ENV_SWITCH = "SPACY_HMTL_QUANTIZE"


def switched_off_by_env() -> bool:
    """Whether ``SPACY_HMTL_QUANTIZE`` turns reduced precision off for this process."""
    return os.environ.get(ENV_SWITCH, "").strip().lower() in ("0", "false", "off", "no")


@registry.callbacks(CALLBACK)
def make_quantize_transformer_v2(
    enabled: bool = True,
    components: Optional[List[str]] = None,
    precision: str = "auto",
    activation_range: str = "auto",
) -> Callable[[Language], Language]:
    """An ``[nlp.after_pipeline_creation]`` callback: run the pipeline's spacy-transformers
    pipes in bfloat16 or int8 on the CPU, once their weights are loaded.

    enabled (bool): False leaves every transformer in float32 (the switch in a config).
    components (Optional[List[str]]): the transformer pipes; None: every pipe whose model
        is a spacy-transformers model.
    precision (str): "auto" (bfloat16 where the CPU has native bfloat16 instructions,
        AVX512-BF16 or AMX, else float32), "bfloat16", "int8" (``.v1``'s dynamic int8
        ``Linear`` layers) or "float32". bfloat16 kept every head within 0.17 F1 of
        float32 on the test sets at 1.36-1.64x the pipelines' words/s; int8 ran at 1.7x and
        cost up to 3.8 F1 on a dev set (docs/CONFIGS.md, "Faster transformer inference on
        the CPU").
    activation_range (str): int8 only: see ``.v1``.
    RETURNS (Callable[[Language], Language]): the callback.
    """
    from .quantized_shim import resolve_precision

    resolve_precision(precision, activation_range)  # a wrong value fails when the config loads

    def reduce_precision_after_creation(nlp: Language) -> Language:
        switched_off = switched_off_by_env()
        # armed=False: the shims switch once from_disk / from_bytes loads their weights. A
        # pipe sourced from a loaded, switched pipeline is disarmed here, so that a
        # pipeline built for training never runs at a reduced precision.
        _install(nlp, components, enabled=enabled and not switched_off, armed=False,
                 activation_range=activation_range, precision=precision)  # fmt: skip
        return nlp

    return reduce_precision_after_creation


@registry.callbacks(CALLBACK_V1)
def make_quantize_transformer(
    enabled: bool = True,
    components: Optional[List[str]] = None,
    activation_range: str = "auto",
) -> Callable[[Language], Language]:
    """An ``[nlp.after_pipeline_creation]`` callback: run the pipeline's spacy-transformers
    pipes with int8 ``Linear`` layers on the CPU, once their weights are loaded.

    enabled (bool): False leaves every transformer in float32 (the switch in a config).
    components (Optional[List[str]]): the transformer pipes to quantize; None: every pipe
        whose model is a spacy-transformers model.
    activation_range (str): how the layers' inputs are quantized: "auto" (8 bits where the
        CPU adds int8 products in int32, i.e. x86 with AVX512-VNNI or ARM; elsewhere no
        quantization), "8bit" or "7bit" (torch's default, for x86 CPUs without VNNI; it
        cost up to 1.5 F1 points on the fine-tuned CoNLL04 pipeline).
    RETURNS (Callable[[Language], Language]): the callback.
    """
    return make_quantize_transformer_v2(enabled, components, precision="int8", activation_range=activation_range)


def quantize_transformers(
    nlp: Language,
    enabled: bool = True,
    components: Optional[Sequence[str]] = None,
    activation_range: str = "auto",
    precision: str = "int8",
) -> List[str]:
    """Switch int8 inference on (or off) for the transformer pipes of a loaded pipeline.

    The one-liner for a pipeline trained without ``spacy_hmtl.quantize_transformer.v1``
    (``nlp = spacy.load(path); quantize_transformers(nlp)``), and the way back to float32
    (``enabled=False`` gives the exact float32 outputs again). The weights are taken as
    they are now; it is not saved with the pipeline (put the callback in the config for that).

    nlp (Language): the loaded pipeline.
    enabled (bool): True: quantize at the next prediction on the CPU; False: float32.
    components (Optional[Sequence[str]]): the transformer pipes; None: all of them.
    activation_range (str): see ``make_quantize_transformer``.
    precision (str): "int8" (the default), "bfloat16", "auto" or "float32": see
        ``make_quantize_transformer_v2``.
    RETURNS (List[str]): the names of the pipes switched.
    """
    return _install(nlp, components, enabled=enabled, armed=True, activation_range=activation_range, precision=precision)


def set_length_buckets(nlp: Language, enabled: bool = True, components: Optional[Sequence[str]] = None) -> List[str]:
    """Run the transformer pipes' inference batches in buckets of similar length (on: what
    a pipeline with ``spacy_hmtl.reduced_precision`` or ``quantize_transformer`` in its
    config does) or whole, padded to the longest window (off: to measure what the buckets
    save). The outputs are the same up to float rounding (``length_buckets``). A pipe
    without the callback gets its shim (at float32) so that the buckets apply to it too.

    nlp (Language): the loaded pipeline.
    enabled (bool): True: buckets; False: whole batches.
    components (Optional[Sequence[str]]): the transformer pipes; None: all of them.
    RETURNS (List[str]): the names of the pipes switched.
    """
    found = transformer_shims(nlp, components)
    from .quantized_shim import QuantizingHFShim

    for shims in found.values():
        for shim in shims:
            if not isinstance(shim, QuantizingHFShim):
                QuantizingHFShim.install(shim, enabled=False, armed=True, precision="float32")
            shim._hmtl_length_buckets = enabled
    return list(found)


def transformer_quantization(nlp: Language) -> Dict[str, bool]:
    """Which transformer pipes predict with int8 ``Linear`` layers now (building the int8
    copy where it is due).

    nlp (Language): the pipeline.
    RETURNS (Dict[str, bool]): pipe name -> int8 (True) or float32 (False), for every pipe
        with a spacy-transformers model.
    """
    return {name: precision == "int8" for name, precision in transformer_precision(nlp).items()}


def transformer_precision(nlp: Language) -> Dict[str, str]:
    """The precision each transformer pipe predicts in now: "bfloat16", "int8" or
    "float32" (building the int8 copy where it is due).

    nlp (Language): the pipeline.
    RETURNS (Dict[str, str]): pipe name -> precision, for every pipe with a
        spacy-transformers model.
    """
    state = {}
    for name, shims in transformer_shims(nlp, None).items():
        found = set()
        for shim in shims:
            precision = getattr(shim, "inference_precision", lambda: None)()
            if precision == "int8" and shim.quantized_model() is None:  # the quantization failed
                precision = None
            found.add(precision or "float32")
        state[name] = found.pop() if len(found) == 1 else "mixed"
    return state


def _install(
    nlp: Language,
    components: Optional[Sequence[str]],
    *,
    enabled: bool,
    armed: bool,
    activation_range: str,
    precision: str = "int8",
) -> List[str]:
    found = transformer_shims(nlp, components)
    if not found:
        return []
    try:
        from .quantized_shim import QuantizingHFShim
    except ImportError as err:  # pragma: no cover - a torch without torch.ao.quantization
        if enabled:
            msg.warn(f"{CALLBACK}: cannot quantize ({err}); the transformer runs in float32")
        return []
    for shims in found.values():
        for shim in shims:
            QuantizingHFShim.install(shim, enabled=enabled, armed=armed, activation_range=activation_range, precision=precision)
    return list(found)


def transformer_shims(nlp: Language, components: Optional[Sequence[str]]) -> Dict[str, list]:
    """Pipe name -> the spacy-transformers shims of its model (pipes without one left out)."""
    names = list(components) if components is not None else nlp.component_names
    found: Dict[str, list] = {}
    for name in names:
        if name not in nlp.component_names:
            raise ValueError(f"{CALLBACK}: no pipe named '{name}' (pipes: {nlp.component_names})")
        model = getattr(nlp.get_pipe(name), "model", None)
        if model is None or not hasattr(model, "walk"):
            continue
        # spacy-transformers' HFShim, recognised without importing spacy-transformers (the
        # callback may be named by a pipeline without it)
        shims = [shim for node in model.walk() for shim in node.shims if hasattr(shim, "_hfmodel")]
        if shims:
            found[name] = shims
        elif components is not None:
            raise ValueError(f"{CALLBACK}: pipe '{name}' has no spacy-transformers model")
    return found
