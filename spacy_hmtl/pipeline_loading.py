"""Loading the pipeline a command runs (``annotate``, ``render``, ``evaluate``): on the
chosen device, its errors reported as the commands report bad input (``AnnotateError``
naming MODEL)."""
from pathlib import Path
from typing import Union

from spacy.language import Language

from .annotate_records import AnnotateError


def load_pipeline(model: Union[str, Path], *, gpu_id: int = -1) -> Language:
    """``spacy.load`` after selecting the GPU (``gpu_id >= 0``) or the CPU."""
    import spacy

    if gpu_id >= 0:
        spacy.require_gpu(gpu_id)
    return spacy.load(model)


def load_model(model: Union[str, Path], gpu_id: int = -1) -> Language:
    """``load_pipeline``, its errors turned into AnnotateError naming MODEL."""
    try:
        return load_pipeline(model, gpu_id=gpu_id)
    except Exception as err:
        raise AnnotateError(f"{model}: cannot load the pipeline: {err}") from err
