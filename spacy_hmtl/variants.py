"""The layouts of a pipeline that the hierarchy ablation compares, each derived from one
training config: which heads it has and which level of the encoder each one listens to.

``derive_variant_config(config, variant)`` gives the config of a named variant:

* ``full``: the config as it is (the hierarchy: in the shipped configs NER listens to level 1,
  the other heads to level 2).
* ``flat``: the same heads and encoder, every head listening to the top level of its
  encoder with the embedding shortcut, as the top heads do: multi-task without the hierarchy.
* a task's name: that head alone on its own encoder; the other heads, their score weights
  and every trace of them in ``[training]``, ``[initialize]`` and ``[nlp]`` go. A head that
  reads argument spans another head writes (a task's ``span_input``: the relation head's
  ``entity_source``) keeps that provider on the original encoder and gets its own copy of
  the encoder: no parameter is shared, and the provider's score weights are 0 (model-best
  is picked on the alone head's scores).
* ``no-<task>``: the hierarchy without that head (the paper's "- task" rows). A head that
  read its argument spans from the removed one reads them from the next head that provides
  spans (a task's ``provides_spans``: the NER head's ``"ents"``, a mentions head's spans key).

The heads, and which provides or reads argument spans, are the registered tasks
(``spacy_hmtl.tasks``), so a new head has its variants without a change here; a head's
level is its listener block (``spacy_hmtl.HMTLListener.v1``: ``upstream``, ``level``,
``shortcut``). Nothing here builds a pipeline: the functions read and copy configs, never
changing the one they are given.
"""
import copy
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

from thinc.api import Config

from .tasks import Task, get_task, task_names, task_of_factory

ENCODER_FACTORY = "hmtl_encoder"
LISTENER_ARCH = "spacy_hmtl.HMTLListener.v1"
# a "- task" variant's name: the prefix and the task's name
MINUS_PREFIX = "no-"


def variant_names() -> List[str]:
    """Every variant, primary rows first: ``full``, ``flat``, each registered task alone,
    then ``no-<task>`` for each task (in task order)."""
    tasks = list(task_names())
    return ["full", "flat"] + tasks + [MINUS_PREFIX + task for task in tasks]


def is_minus_variant(variant: str) -> bool:
    """Whether ``variant`` is a "- task" row (the hierarchy without one head)."""
    return variant.startswith(MINUS_PREFIX)


def variant_tasks(variant: str) -> List[str]:
    """The tasks whose scores a variant reports: a single-head variant its own (relations-alone
    also trains its provider, whose scores are not the single-task ones), a "- task" variant
    every other task, ``full`` and ``flat`` every task."""
    tasks = list(task_names())
    if variant in tasks:
        return [variant]
    if is_minus_variant(variant):
        return [task for task in tasks if task != variant[len(MINUS_PREFIX) :]]
    return tasks


def derive_variant_config(config: Config, variant: str) -> Config:
    """The config of one variant (see the module docstring).

    config (Config): a training config with an ``hmtl_encoder`` and its heads, not
        interpolated (``load_config(path, interpolate=False)``); it is not changed.
    variant (str): one of ``variant_names()``.
    RETURNS (Config): the variant's config (a copy).
    RAISES (ValueError): an unknown variant, or a pipeline without exactly one head for the
        task the variant names.
    """
    if variant == "full":
        return copy.deepcopy(config)
    if variant == "flat":
        return derive_flat_config(config)
    task_name = variant[len(MINUS_PREFIX) :] if is_minus_variant(variant) else variant
    if task_name not in task_names():
        raise ValueError(f"unknown variant {variant!r} (one of {variant_names()})")
    factory = get_task(task_name).factory
    names = components_by_factory(config).get(factory, [])
    if len(names) != 1:
        raise ValueError(f"{variant}: {len(names)} '{factory}' components in the pipeline")
    if is_minus_variant(variant):
        return derive_without_head_config(config, names[0])
    return derive_single_head_config(config, names[0])


def derive_flat_config(config: Config) -> Config:
    """Every head listens to the top level of its encoder, with the embedding shortcut as the
    top-level heads have it: the same heads and encoder without the hierarchy."""
    config = copy.deepcopy(config)
    for name in config["nlp"]["pipeline"]:
        block = config["components"][name]
        if not _is_head(block.get("factory")):
            continue
        for listener in listener_blocks(block):
            listener["level"] = encoder_levels(config, listener["upstream"])
            listener["shortcut"] = True
    return config


def derive_single_head_config(config: Config, head: str) -> Config:
    """The config minus every head but ``head`` (a component name), on its own encoder.

    Keeps the encoder(s) and every pipe that is not a head (sentencizer, transformer). For a
    relation head whose entity source another head provides, the provider stays on the
    original encoder, the relation head gets its own copy of the encoder, and the provider's
    score weights are set to 0 (model-best is picked on the relation scores).
    """
    config = copy.deepcopy(config)
    pipeline = list(config["nlp"]["pipeline"])
    factories = {name: config["components"][name].get("factory", name) for name in pipeline}
    if head not in pipeline or not _is_head(factories[head]):
        raise ValueError(f"'{head}' is not a head of the pipeline {pipeline}")
    encoders = [n for n in pipeline if factories[n] == ENCODER_FACTORY]
    keep = {n for n in pipeline if not _is_head(factories[n])} | {head}
    provider = span_provider(config, head)
    if provider is not None:
        keep.add(provider)
    new_pipeline = [n for n in pipeline if n in keep]
    if provider is not None:
        if len(encoders) != 1:
            raise ValueError(f"expected one encoder to copy for '{head}', found {encoders}")
        encoder = encoders[0]
        own = f"{encoder}_{task_of_factory(factories[head]).name}"
        config["components"][own] = copy.deepcopy(dict(config["components"][encoder]))
        for block in listener_blocks(config["components"][provider]):
            block["upstream"] = encoder
        for block in listener_blocks(config["components"][head]):
            block["upstream"] = own
        new_pipeline.insert(new_pipeline.index(head), own)
    _remove_components(config, [n for n in pipeline if n not in keep], new_pipeline)
    if provider is not None:
        prefix = task_of_factory(factories[provider]).score_prefix
        weights = config["training"]["score_weights"]
        for key in list(weights) + [f"{prefix}f", f"{prefix}p", f"{prefix}r"]:
            if key.startswith(prefix) and not key.endswith("_per_type"):
                weights[key] = 0.0
    return config


def derive_without_head_config(config: Config, head: str) -> Config:
    """The hierarchy without ``head`` (a component name). A head that read its argument
    spans from ``head`` reads them from the next head that provides spans, in pipeline
    order; a ValueError when there is none."""
    config = copy.deepcopy(config)
    pipeline = list(config["nlp"]["pipeline"])
    if head not in pipeline or not _is_head(config["components"][head].get("factory")):
        raise ValueError(f"'{head}' is not a head of the pipeline {pipeline}")
    for reader in pipeline:
        task = _task_of(config, reader)
        if task is None or task.span_input is None or span_provider(config, reader) != head:
            continue
        sources = [_spans_of(config, n) for n in pipeline if n not in (head, reader)]
        source = next((s for s in sources if s is not None), None)
        if source is None:
            raise ValueError(f"without '{head}', '{reader}' has no source of argument spans ({task.span_input.setting})")
        config["components"][reader][task.span_input.setting] = source
    _remove_components(config, [head], [n for n in pipeline if n != head])
    return config


def heads_and_levels(config: Config) -> Dict[str, Tuple[str, int]]:
    """head factory -> (upstream encoder, level) of each head in the pipeline: what its
    (first) listener block says."""
    out = {}
    for name in config["nlp"]["pipeline"]:
        block = config["components"][name]
        if _is_head(block.get("factory")):
            listener = next(listener_blocks(block))
            out[block["factory"]] = (listener["upstream"], listener["level"])
    return out


def describe_layout(config: Config) -> str:
    """The pipeline and each head's encoder and level in one line (``ner@hmtl_encoder:L1``)."""
    levels = heads_and_levels(config)
    heads = ", ".join(f"{task_of_factory(f).name}@{enc}:L{lvl}" for f, (enc, lvl) in levels.items())
    return f"pipeline {', '.join(config['nlp']['pipeline'])}; heads (encoder:level) {heads}"


def components_by_factory(config: Config) -> Dict[str, List[str]]:
    """factory -> the names of the pipeline's components it makes, in pipeline order."""
    out: Dict[str, List[str]] = {}
    for name in config["nlp"]["pipeline"]:
        factory = config["components"].get(name, {}).get("factory", name)
        out.setdefault(factory, []).append(name)
    return out


def encoder_levels(config: Config, encoder: str) -> int:
    """The number of BiLSTM levels of the encoder component ``encoder`` (its top level)."""
    widths = config["components"][encoder]["model"].get("level_widths")
    if not isinstance(widths, list) or not widths:
        raise ValueError(f"'{encoder}': no level_widths in its model block")
    return len(widths)


def listener_blocks(block: Any) -> Iterator[Dict[str, Any]]:
    """Every ``spacy_hmtl.HMTLListener.v1`` block nested in a component's config."""
    if isinstance(block, dict):
        if block.get("@architectures") == LISTENER_ARCH:
            yield block
        for value in block.values():
            yield from listener_blocks(value)


def span_provider(config: Config, name: str) -> Optional[str]:
    """The component whose spans the head ``name`` reads as its arguments (its task's
    ``span_input``: the relation head's ``entity_source``); None when ``name`` reads no
    spans or no component of the pipeline provides that source."""
    task = _task_of(config, name)
    if task is None or task.span_input is None:
        return None
    source = config["components"][name].get(task.span_input.setting, task.span_input.default)
    return next((n for n in config["nlp"]["pipeline"] if n != name and _spans_of(config, n) == source), None)


def _task_of(config: Config, name: str) -> Optional[Task]:
    factory = config["components"].get(name, {}).get("factory")
    return task_of_factory(factory) if factory is not None else None


def _spans_of(config: Config, name: str) -> Optional[str]:
    """The source name other heads read the component ``name``'s spans by, or None."""
    task = _task_of(config, name)
    if task is None or task.provides_spans is None:
        return None
    return task.provides_spans(config["components"][name])


def _is_head(factory: Optional[str]) -> bool:
    return factory is not None and task_of_factory(factory) is not None


def _remove_components(config: Config, removed: Sequence[str], new_pipeline: List[str]) -> None:
    """Drop components: their blocks, pipeline/frozen/annotating/disabled entries,
    ``[initialize.components]`` entries and score weights (in place)."""
    factories = {name: config["components"][name].get("factory", name) for name in removed}
    config["nlp"]["pipeline"] = new_pipeline
    for name in removed:
        config["components"].pop(name, None)
        config.get("initialize", {}).get("components", {}).pop(name, None)
    training = config["training"]
    for key in ("frozen_components", "annotating_components"):
        if key in training:
            training[key] = [n for n in training[key] if n in new_pipeline]
    if "disabled" in config["nlp"]:
        config["nlp"]["disabled"] = [n for n in config["nlp"]["disabled"] if n in new_pipeline]
    tasks = [task_of_factory(f) for f in factories.values()]
    prefixes = [task.score_prefix for task in tasks if task is not None]
    weights = dict(training.get("score_weights", {}))
    training["score_weights"] = {k: v for k, v in weights.items() if not any(k.startswith(p) for p in prefixes)}
