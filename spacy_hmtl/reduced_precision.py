"""``spacy_hmtl.reduced_precision.v3``: a loaded pipeline's CPU inference at reduced precision:
the transformer, the BiLSTMs, the coreference head's pair scoring and the mention head's span
scoring.

``spacy_hmtl.quantize_transformer.v2`` reaches the spacy-transformers pipe only; a vectors
pipeline has none, and its time goes to the encoder's and the heads' BiLSTMs (about a third)
and to span and pair scoring (on long documents the coreference head's antecedent scoring is
half of it). This callback runs the transformer as ``.v2`` does and, with the same
``precision``, the BiLSTMs' inference calls, the antecedent scorer's matrix products and the
mention head's span scoring in bfloat16 (``layers.inference_precision``):

    [nlp.after_pipeline_creation]
    @callbacks = "spacy_hmtl.reduced_precision.v3"
    enabled = true
    precision = "auto"

``precision = "auto"``: bfloat16 where the CPU multiplies it natively (AVX512-BF16 or AMX),
float32 elsewhere. The packages that ``python -m spacy_hmtl package`` builds carry it. Measured
on the dev sets (docs/CONFIGS.md, "Faster inference on the CPU"). As with
``quantize_transformer.v2``: loaded weights only (``spacy train`` trains and evaluates in
float32), inference on the CPU only, the weights saved in float32; off for one load with
``config={"nlp": {"after_pipeline_creation": {"enabled": False}}}`` or ``SPACY_HMTL_QUANTIZE=0``.

Older packages run as they were measured: ``spacy_hmtl.reduced_precision.v2`` (built before
the span scoring had a bfloat16 path) is ``.v3`` with ``span_scoring = false``, and ``.v1``
(before the pair scoring had one) is ``.v2`` with ``pair_scoring = false``.
"""
from typing import Callable, Dict, List, Optional, Sequence

from spacy.language import Language
from spacy.util import registry

from .encoder.component import HMTLEncoder
from .encoder.quantization import make_quantize_transformer_v2, switched_off_by_env
from .head_pipe import TorchHeadPipe
from .layers import inference_precision

CALLBACK = "spacy_hmtl.reduced_precision.v3"
CALLBACK_V2 = "spacy_hmtl.reduced_precision.v2"
CALLBACK_V1 = "spacy_hmtl.reduced_precision.v1"
# spacy.load(path, config=REDUCED_PRECISION_OVERRIDES): on for a pipeline whose config does
# not name it ("auto")
REDUCED_PRECISION_OVERRIDES = {"nlp": {"after_pipeline_creation": {"@callbacks": CALLBACK}}}


@registry.callbacks(CALLBACK)
def make_reduced_precision(
    enabled: bool = True,
    precision: str = "auto",
    transformer_components: Optional[List[str]] = None,
    activation_range: str = "auto",
    lstms: bool = True,
    pair_scoring: bool = True,
    span_scoring: bool = True,
) -> Callable[[Language], Language]:
    """An ``[nlp.after_pipeline_creation]`` callback: once the weights are loaded, run the
    transformer (as ``spacy_hmtl.quantize_transformer.v2``), the BiLSTMs of the encoder and
    the heads, the coreference head's antecedent scoring and the mention head's span scoring
    at reduced precision on the CPU.

    enabled (bool): False: float32 everywhere (the switch in a config).
    precision (str): "auto" (bfloat16 where the CPU has native bfloat16 products, else
        float32), "bfloat16", "int8" (the transformer's ``Linear`` layers; the rest stays
        float32) or "float32".
    transformer_components (Optional[List[str]]): the transformer pipes; None: every
        spacy-transformers pipe (a pipeline without one is fine).
    activation_range (str): int8 only: see ``spacy_hmtl.quantize_transformer.v1``.
    lstms (bool): False: the BiLSTMs stay float32.
    pair_scoring (bool): False: the coreference head's antecedent scoring stays float32.
    span_scoring (bool): False: the mention head's span scoring stays float32.
    RETURNS (Callable[[Language], Language]): the callback.
    """
    inference_precision.resolve_dtype(precision)  # a wrong value fails when the config loads
    transformer: Optional[Callable[[Language], Language]] = None
    try:
        transformer = make_quantize_transformer_v2(enabled, transformer_components, precision, activation_range)
    except ImportError:  # no spacy-transformers: a vectors pipeline, which has no transformer pipe
        if transformer_components:
            raise
    switches = {"lstms": lstms, "pair_scoring": pair_scoring, "span_scoring": span_scoring}

    def reduce_precision_after_creation(nlp: Language) -> Language:
        if transformer is not None:
            transformer(nlp)
        on = enabled and not switched_off_by_env()
        wanted = {part: (precision if on and switch else None) for part, switch in switches.items()}
        for pipe in _reducible_pipes(nlp).values():
            # applied when from_disk / from_bytes loads the pipe's weights
            inference_precision.request(pipe, wanted)
        return nlp

    return reduce_precision_after_creation


@registry.callbacks(CALLBACK_V2)
def make_reduced_precision_v2(
    enabled: bool = True,
    precision: str = "auto",
    transformer_components: Optional[List[str]] = None,
    activation_range: str = "auto",
    lstms: bool = True,
    pair_scoring: bool = True,
) -> Callable[[Language], Language]:
    """``spacy_hmtl.reduced_precision.v2``: ``.v3`` without the span scoring (the mention
    head's span scoring stays float32), as the packages built with it were measured. The
    arguments are ``.v3``'s."""
    return make_reduced_precision(enabled, precision, transformer_components, activation_range, lstms, pair_scoring, False)


@registry.callbacks(CALLBACK_V1)
def make_reduced_precision_v1(
    enabled: bool = True,
    precision: str = "auto",
    transformer_components: Optional[List[str]] = None,
    activation_range: str = "auto",
    lstms: bool = True,
) -> Callable[[Language], Language]:
    """``spacy_hmtl.reduced_precision.v1``: ``.v2`` without the pair scoring (its
    antecedent scoring stays float32), as the packages built with it were measured. The
    arguments are ``.v3``'s."""
    return make_reduced_precision(enabled, precision, transformer_components, activation_range, lstms, False, False)


def set_inference_precision(
    nlp: Language, precision: Optional[str] = "auto", parts: Sequence[str] = inference_precision.PARTS
) -> List[str]:
    """Switch the modules of ``parts`` ("lstms", "pair_scoring", "span_scoring") of a loaded pipeline to
    ``precision`` now (None or "float32": back to the exact float32 outputs); not saved
    with the pipeline (the callback is).

    RETURNS (List[str]): the pipes that have modules of those parts.
    """
    dtype = inference_precision.resolve_dtype(precision or "float32")
    return [
        name
        for name, pipe in _reducible_pipes(nlp).items()
        if inference_precision.set_pipe_dtype(pipe, dtype, parts)
    ]


def inference_precision_of(nlp: Language, parts: Sequence[str] = ("lstms",)) -> Dict[str, str]:
    """pipe name -> what its modules of ``parts`` run at CPU inference now ("bfloat16",
    "float32" or "mixed"), for the pipes that have such modules."""
    return inference_precision.precisions(_reducible_pipes(nlp), parts)


def _reducible_pipes(nlp: Language) -> Dict[str, object]:
    """The pipes whose torch modules may run at reduced precision: the encoder and the heads."""
    return {name: pipe for name, pipe in nlp.pipeline if isinstance(pipe, (HMTLEncoder, TorchHeadPipe))}
