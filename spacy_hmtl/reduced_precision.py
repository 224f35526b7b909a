"""``spacy_hmtl.reduced_precision.v1``: a loaded pipeline's CPU inference at reduced precision,
the transformer and the BiLSTMs both.

``spacy_hmtl.quantize_transformer.v2`` reaches the spacy-transformers pipe only; a vectors
pipeline has none, and its time goes to the encoder's and the heads' BiLSTMs (about a third),
the span and pair scoring. This callback runs the transformer as ``.v2`` does and, with the
same ``precision``, the BiLSTMs' inference calls in bfloat16 (``layers.lstm_precision``):

    [nlp.after_pipeline_creation]
    @callbacks = "spacy_hmtl.reduced_precision.v1"
    enabled = true
    precision = "auto"

``precision = "auto"``: bfloat16 where the CPU multiplies it natively (AVX512-BF16 or AMX),
float32 elsewhere. The packages that ``python -m spacy_hmtl package`` builds carry it. Measured
on the dev sets (docs/CONFIGS.md, "Faster inference on the CPU"). As with ``.v2``: loaded
weights only (``spacy train`` trains and evaluates in float32), inference on the CPU only, the
weights saved in float32; off for one load with ``config={"nlp": {"after_pipeline_creation":
{"enabled": False}}}`` or ``SPACY_HMTL_QUANTIZE=0``.
"""
from typing import Callable, Dict, List, Optional

from spacy.language import Language
from spacy.util import registry

from .encoder.component import HMTLEncoder
from .encoder.quantization import make_quantize_transformer_v2, switched_off_by_env
from .head_pipe import TorchHeadPipe
from .layers import lstm_precision

CALLBACK = "spacy_hmtl.reduced_precision.v1"
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
) -> Callable[[Language], Language]:
    """An ``[nlp.after_pipeline_creation]`` callback: once the weights are loaded, run the
    transformer (as ``spacy_hmtl.quantize_transformer.v2``) and the BiLSTMs of the encoder
    and the heads at reduced precision on the CPU.

    enabled (bool): False: float32 everywhere (the switch in a config).
    precision (str): "auto" (bfloat16 where the CPU has native bfloat16 products, else
        float32), "bfloat16", "int8" (the transformer's ``Linear`` layers; the BiLSTMs stay
        float32) or "float32".
    transformer_components (Optional[List[str]]): the transformer pipes; None: every
        spacy-transformers pipe (a pipeline without one is fine).
    activation_range (str): int8 only: see ``spacy_hmtl.quantize_transformer.v1``.
    lstms (bool): False: the BiLSTMs stay float32.
    RETURNS (Callable[[Language], Language]): the callback.
    """
    lstm_precision.resolve_lstm_dtype(precision)  # a wrong value fails when the config loads
    transformer: Optional[Callable[[Language], Language]] = None
    try:
        transformer = make_quantize_transformer_v2(enabled, transformer_components, precision, activation_range)
    except ImportError:  # no spacy-transformers: a vectors pipeline, which has no transformer pipe
        if transformer_components:
            raise

    def reduce_precision_after_creation(nlp: Language) -> Language:
        if transformer is not None:
            transformer(nlp)
        wanted = precision if (enabled and lstms and not switched_off_by_env()) else None
        for pipe in _lstm_pipes(nlp).values():
            # applied when from_disk / from_bytes loads the pipe's weights
            lstm_precision.request(pipe, wanted)
        return nlp

    return reduce_precision_after_creation


def set_lstm_precision(nlp: Language, precision: Optional[str] = "auto") -> List[str]:
    """Switch the BiLSTMs of a loaded pipeline to ``precision`` now (None or "float32":
    back to the exact float32 outputs); not saved with the pipeline (the callback is).

    RETURNS (List[str]): the pipes with BiLSTMs.
    """
    dtype = lstm_precision.resolve_lstm_dtype(precision or "float32")
    return [name for name, pipe in _lstm_pipes(nlp).items() if lstm_precision.set_pipe_lstm_dtype(pipe, dtype)]


def lstm_precision_of(nlp: Language) -> Dict[str, str]:
    """pipe name -> what its BiLSTMs run at CPU inference now ("bfloat16", "float32" or
    "mixed"), for the pipes that have BiLSTMs."""
    return lstm_precision.lstm_precisions(_lstm_pipes(nlp))


def _lstm_pipes(nlp: Language) -> Dict[str, object]:
    """The pipes whose torch modules may hold BiLSTMs: the encoder and the heads."""
    return {name: pipe for name, pipe in nlp.pipeline if isinstance(pipe, (HMTLEncoder, TorchHeadPipe))}
