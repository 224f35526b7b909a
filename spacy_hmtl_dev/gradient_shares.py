"""How much each head teaches the shared encoder: the share of the encoder's gradient
that comes from each task.

For each head in turn, one batch is run through the encoder and that head alone, and the
gradient of the encoder's parameters is read; a head's share is the norm of its gradient
divided by the norm of the sum of all heads' gradients (so shares need not add up to 1:
gradients that point in different directions partly cancel). A head whose share is near 0
does not shape the shared levels, whatever its loss says.

``measure_gradient_shares`` is ``scripts/gradient_shares.py``'s measurement: the shares over
the first batches of a corpus, for a pipeline built from its config or a trained one.
"""
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Union

import numpy
import spacy
from spacy.language import Language
from spacy.training import Corpus, Example
from spacy.util import fix_random_seed, load_config, registry

import spacy_hmtl  # noqa: F401  (registers the Doc extensions the corpus carries; the pipes come through entry points)


def encoder_gradient(encoder_model) -> numpy.ndarray:
    """The current gradient of every parameter of ``encoder_model`` (thinc and torch),
    flattened into one vector."""
    parts: List[numpy.ndarray] = []
    for node in encoder_model.walk():
        for name in node.param_names:
            if node.has_grad(name):
                parts.append(numpy.asarray(node.get_grad(name), dtype="float64").ravel())
        for shim in node.shims:
            for param in shim._model.parameters():
                if param.grad is not None:
                    parts.append(param.grad.detach().cpu().double().numpy().ravel())
    return numpy.concatenate(parts) if parts else numpy.zeros((0,))


def clear_gradients(model) -> None:
    """Zero the gradients of a thinc model (its torch modules included)."""
    for node in model.walk():
        for name in node.param_names:
            if node.has_grad(name):
                node.set_grad(name, node.ops.alloc(node.get_grad(name).shape, dtype="f"))
        for shim in node.shims:
            for param in shim._model.parameters():
                param.grad = None


def heads_of(nlp: Language, encoder: str) -> List[str]:
    """The names of the pipes listening to the encoder, in pipeline order."""
    enc: Any = nlp.get_pipe(encoder)  # an hmtl_encoder; spaCy types pipes as Callable[[Doc], Doc]
    listening = set(enc.listening_components)
    return [name for name in nlp.pipe_names if name in listening]


def annotate_predicted(nlp: Language, examples: Sequence[Example], encoder: str = "hmtl_encoder") -> None:
    """Run on the predicted docs, in pipeline order, what the encoder and its heads read
    before their update: the non-trainable pipes (e.g. the sentencizer), the pipes named in
    the config's ``[training] annotating_components`` (e.g. a frozen transformer, whose
    listeners read the features it stores on the docs), and every pipe before the encoder
    (a *fine-tuned* transformer: ``spacy train`` feeds its listeners through its own update,
    which this measurement does not run, so its features are set on the docs instead; the
    encoder's gradient is the same either way, dropout aside)."""
    annotating = set(nlp.config.get("training", {}).get("annotating_components") or [])
    before_encoder = set(nlp.pipe_names[: nlp.pipe_names.index(encoder)]) if encoder in nlp.pipe_names else set()
    for name, proc in nlp.pipeline:
        if name in annotating or name in before_encoder or not getattr(proc, "is_trainable", False):
            for eg in examples:
                eg.predicted = proc(eg.predicted)


def encoder_gradient_shares(
    nlp: Language, examples: Sequence[Example], *, encoder: str = "hmtl_encoder", heads: Optional[List[str]] = None
) -> Dict[str, float]:
    """Each head's share of the encoder's gradient on one batch (no dropout, no update).

    nlp (Language): an initialized pipeline with an ``hmtl_encoder``.
    examples (Sequence[Example]): the batch (its predicted docs should carry what the
        annotating pipes set, see ``annotate_predicted``).
    encoder (str): the name of the encoder pipe.
    heads (Optional[List[str]]): the heads to measure (default: every listener).
    RETURNS (Dict[str, float]): head name -> ``|g_head| / |sum of g|``.
    """
    enc: Any = nlp.get_pipe(encoder)  # an hmtl_encoder; spaCy types pipes as Callable[[Doc], Doc]
    heads = heads or heads_of(nlp, encoder)
    gradients: Dict[str, numpy.ndarray] = {}
    for head in heads:
        head_pipe: Any = nlp.get_pipe(head)
        clear_gradients(enc.model)
        enc.update(examples, drop=0.0)
        head_pipe.update(examples, drop=0.0)
        enc._flush()  # backpropagate this head's gradient alone
        gradients[head] = encoder_gradient(enc.model)
        clear_gradients(head_pipe.model)
    clear_gradients(enc.model)
    total = numpy.linalg.norm(sum(gradients.values()))
    if not total:
        return {head: 0.0 for head in heads}
    return {head: float(numpy.linalg.norm(g) / total) for head, g in gradients.items()}


def measure_gradient_shares(
    config_path: Union[str, Path],
    corpus: Union[str, Path],
    *,
    model: Optional[Union[str, Path]] = None,
    batches: int = 5,
    seed: int = 0,
) -> Dict[str, Dict[str, float]]:
    """Each head's share of the encoder's gradient over the first ``batches`` batches of
    ``corpus``: the config's batcher over the corpus in order (no shuffling), so the
    figures repeat.

    config_path (Union[str, Path]): the training config (its batcher; without ``model``, the
        pipeline is built from it and initialized on ``corpus``: the shares at initialization).
    corpus (Union[str, Path]): a ``.spacy`` file of training docs.
    model (Optional[Union[str, Path]]): a trained pipeline to measure instead.
    batches (int): how many batches.
    seed (int): the random seed (initialization, dropout-free updates).
    RETURNS (Dict[str, Dict[str, float]]): head -> ``mean``, ``min``, ``max`` of its share.
    """
    fix_random_seed(seed)
    if model:
        nlp = spacy.load(model)
    else:
        # interpolated: nlp.initialize() resolves [training.optimizer] from nlp.config as it is,
        # and a schedule's `total_steps = ${training.max_steps}` must be a number by then
        config = load_config(config_path, overrides={"paths.train": str(corpus), "paths.dev": str(corpus)}, interpolate=True)
        nlp = spacy.util.load_model_from_config(config, auto_fill=True)
        nlp.initialize(lambda: Corpus(str(corpus))(nlp))
    config = nlp.config.interpolate() if model else load_config(config_path)
    batcher = registry.resolve({"b": config["training"]["batcher"]})["b"]
    per_head: Dict[str, List[float]] = {head: [] for head in heads_of(nlp, "hmtl_encoder")}
    for i, batch in enumerate(batcher(Corpus(str(corpus))(nlp))):
        if i >= batches:
            break
        batch = list(batch)
        annotate_predicted(nlp, batch)
        for head, share in encoder_gradient_shares(nlp, batch).items():
            per_head[head].append(share)
    return {
        head: {"mean": float(numpy.mean(v)), "min": float(numpy.min(v)), "max": float(numpy.max(v))}
        for head, v in per_head.items()
        if v
    }
