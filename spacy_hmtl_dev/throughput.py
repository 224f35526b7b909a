"""Training throughput and a profile of training steps, by pipe and by torch operation.

Used by ``training_speed`` (``scripts/training_speed.py``, and through it by the benchmark),
which runs this file in a fresh process per measurement: it builds a pipeline
from a training config exactly as ``spacy train`` does (``init_nlp``), draws batches from the
config's own corpus and batcher, and runs ``nlp.update`` with the config's dropout, optimizer,
frozen and annotating components. After ``warmup`` steps it times ``steps`` more:

* training words/s (the words of the batches' predicted docs over the wall time);
* by pipe: the wall time of each pipe's ``update`` and ``finish_update``, with the encoder's
  backward pass (run when the last head calls back, i.e. inside a head's ``update``) and the
  annotating pipes (e.g. a frozen transformer) counted on their own;
* by torch module: the forward time of every named torch sub-module of each pipe (encoder
  levels, CRF, span scorer, relation scorer, antecedent scorer, ...);
* by operation: the torch operators' self time (``torch.profiler``), grouped into families
  (LSTM, matmul, dropout, indexing, ...) and listed one by one. Wall time that no torch
  operator accounts for is Python, thinc/numpy and spaCy overhead.
"""
import re
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import torch

from spacy_hmtl_dev.benchmarking import time_pipes

# operator-name patterns -> family, first match wins
OP_FAMILIES: Sequence[Tuple[str, str]] = (
    ("lstm|rnn", "LSTM (forward + backward)"),
    ("addmm|^aten::mm$|bmm|matmul|linear|^aten::einsum", "matmul / linear"),
    ("dropout|bernoulli", "dropout"),
    ("gather|scatter|index|embedding|take|masked_select|nonzero", "indexing / gather"),
    ("cat|stack|copy|clone|contiguous|pad|narrow|slice|select|view|reshape|expand|transpose|permute", "copies / reshapes"),
    ("logsumexp|softmax|sigmoid|tanh|relu|exp|log", "activations / softmax"),
    ("sort|topk|argmax|max|min", "sort / top-k / max"),
    ("sum|mean|mul|add|sub|div|where|fill|zero|ones|empty|arange|_to_copy|^aten::to$", "elementwise / reductions"),
)


def op_family(name: str) -> str:
    """The family of a torch operator name (e.g. ``aten::mkldnn_rnn_layer_backward`` -> LSTM)."""
    short = name.lower()
    for pattern, family in OP_FAMILIES:
        if re.search(pattern, short):
            return family
    return "other"


class _Regions:
    """Exclusive wall time of nested named regions (a region's time excludes its children)."""

    def __init__(self) -> None:
        self.totals: Dict[str, float] = {}
        self._stack: List[List[float]] = []  # [start, children_time]

    @contextmanager
    def region(self, name: str) -> Iterator[None]:
        self._stack.append([time.perf_counter(), 0.0])
        try:
            yield
        finally:
            start, children = self._stack.pop()
            elapsed = time.perf_counter() - start
            self.totals[name] = self.totals.get(name, 0.0) + elapsed - children
            if self._stack:
                self._stack[-1][1] += elapsed

    def wrap(self, obj: Any, attr: str, name: str) -> Callable[[], None]:
        """Time every call of ``obj.attr`` as region ``name``; returns an undo function."""
        original = getattr(obj, attr)
        regions = self

        def timed(*args, **kwargs):
            with regions.region(name):
                return original(*args, **kwargs)

        setattr(obj, attr, timed)
        return lambda: setattr(obj, attr, original)


def torch_modules(pipe: Any) -> Dict[str, torch.nn.Module]:
    """The torch modules wrapped in a pipe's thinc model, by thinc node name."""
    found: Dict[str, torch.nn.Module] = {}
    model = getattr(pipe, "model", None)
    if model is None or not hasattr(model, "walk"):
        return found
    for node in model.walk():
        for shim in node.shims:
            module = getattr(shim, "_model", None)
            if isinstance(module, torch.nn.Module) and module not in found.values():
                found[node.name] = module
    return found


def _module_regions(nlp: Any, regions: _Regions) -> List[Any]:
    """Forward hooks timing every direct child (and the root) of each pipe's torch modules."""
    handles = []
    open_regions: Dict[int, List[Any]] = {}  # id(module) -> entered regions, innermost last

    def enter(label: str):
        def hook(module, inputs):
            region = regions.region(label)
            region.__enter__()
            open_regions.setdefault(id(module), []).append(region)

        return hook

    def leave(module, inputs, output):
        stack = open_regions.get(id(module))
        if stack:
            stack.pop().__exit__(None, None, None)

    for pipe_name, pipe in nlp.pipeline:
        for _node_name, root in torch_modules(pipe).items():
            targets = [(f"{pipe_name}: {type(root).__name__}", root)]
            targets += [
                (f"{pipe_name}: {type(root).__name__}.{child_name}", child)
                for child_name, child in root.named_children()
            ]
            for label, module in targets:
                handles.append(module.register_forward_pre_hook(enter(label)))
                handles.append(module.register_forward_hook(leave))
    return handles


def build_training(config_path: Path, overrides: Optional[Dict[str, Any]] = None, threads: int = 1):
    """Initialize the pipeline of a training config like ``spacy train`` (seed, ``init_nlp``).

    RETURNS (Tuple[Language, Dict]): the pipeline and the resolved ``[training]`` block, with
    ``train_corpus`` resolved to the corpus reader.
    """
    import spacy
    from spacy.schemas import ConfigSchemaTraining
    from spacy.training.initialize import init_nlp
    from spacy.util import load_config, registry, resolve_dot_names

    torch.set_num_threads(threads)
    config = load_config(config_path, overrides=overrides or {}, interpolate=False)
    nlp = init_nlp(config.interpolate())
    config = nlp.config.interpolate()
    training = registry.resolve(config["training"], schema=ConfigSchemaTraining)
    (train_corpus,) = resolve_dot_names(config, [training["train_corpus"]])
    training = dict(training)
    training["train_corpus"] = train_corpus
    spacy.util.fix_random_seed(training["seed"])
    return nlp, training


class TrainingBatches:
    """The config's batches, epoch after epoch, as ``spacy train`` draws them; ``epoch`` is
    the epoch of the next batch."""

    def __init__(self, nlp: Any, training: Dict[str, Any]):
        self.nlp = nlp
        self.training = training
        self.epoch = 0
        self._batches = self._generate()
        self._next = next(self._batches)

    def _generate(self) -> Iterator[Tuple[int, List[Any]]]:
        epoch = 0
        while True:
            for batch in self.training["batcher"](self.training["train_corpus"](self.nlp)):
                yield epoch, batch
            epoch += 1

    def __iter__(self) -> "TrainingBatches":
        return self

    def __next__(self) -> List[Any]:
        epoch, batch = self._next
        self._next = next(self._batches)
        self.epoch = self._next[0]
        return batch


def training_batches(nlp: Any, training: Dict[str, Any]) -> TrainingBatches:
    """The config's batches, epoch after epoch (as ``spacy train`` draws them)."""
    return TrainingBatches(nlp, training)


def run_steps(
    nlp: Any, training: Dict[str, Any], batches: TrainingBatches, n_steps: int, until_epoch: Optional[int] = None
) -> Tuple[float, int]:
    """``n_steps`` of ``nlp.update`` as ``spacy train`` runs them (with its ``before_update``
    callback), or, with ``until_epoch``, as many as reach that epoch. RETURNS (seconds, words)."""
    optimizer = training["optimizer"]
    frozen = training["frozen_components"]
    annotating = training["annotating_components"]
    before_update = training.get("before_update")
    losses: Dict[str, float] = {}
    words = 0
    step = 0
    start = time.perf_counter()
    while (step < n_steps) if until_epoch is None else (batches.epoch < until_epoch):
        epoch = batches.epoch
        batch = next(batches)
        if before_update is not None:
            before_update(nlp, {"step": step, "epoch": epoch})
        words += sum(len(eg.predicted) for eg in batch)
        nlp.update(batch, drop=training["dropout"], sgd=optimizer, losses=losses, exclude=frozen, annotates=annotating)
        step += 1
    return time.perf_counter() - start, words


def measure_training(
    config_path: Path,
    overrides: Optional[Dict[str, Any]] = None,
    *,
    warmup: int = 3,
    warmup_epochs: int = 0,
    steps: int = 20,
    profile_steps: int = 3,
    threads: int = 1,
    top_ops: int = 15,
) -> Dict[str, Any]:
    """Training words/s of a config, then a profile of a few more steps.

    config_path (Path): a training config (its ``[paths]`` may be overridden).
    overrides (Dict[str, Any]): config overrides, e.g. ``{"paths.train": ...}``.
    warmup (int): steps run before timing (lazy initialization, allocator warm-up).
    warmup_epochs (int): instead of ``warmup`` steps, run whole epochs first (e.g. 1, so
        that a frozen-feature cache has seen every document); their time is reported.
    steps (int): timed steps for words/s (no profiler attached).
    profile_steps (int): further steps run under the profiler (0: no profile).
    threads (int): torch threads.
    top_ops (int): operators listed one by one.
    RETURNS (Dict[str, Any]): ``words_per_second``, ``seconds_per_step``, ``words``, and
        ``profile`` (``by_pipe``, ``by_module``, ``by_family``, ``top_ops``, ``wall_s``).
    """
    nlp, training = build_training(config_path, overrides, threads)
    batches = training_batches(nlp, training)
    warmup_s, warmup_words = run_steps(nlp, training, batches, warmup, until_epoch=warmup_epochs or None)
    seconds, words = run_steps(nlp, training, batches, steps)
    result: Dict[str, Any] = {
        "config": str(config_path),
        "overrides": overrides or {},
        "threads": threads,
        "warmup_steps": warmup if not warmup_epochs else None,
        "warmup_epochs": warmup_epochs or None,
        "warmup_seconds": round(warmup_s, 3),
        "warmup_words": warmup_words,
        "steps": steps,
        "words": words,
        "seconds": round(seconds, 3),
        "seconds_per_step": round(seconds / max(steps, 1), 4),
        "words_per_second": round(words / seconds, 1) if seconds else None,
    }
    if profile_steps:
        result["profile"] = profile_training_steps(nlp, training, batches, profile_steps, top_ops)
    return result


def profile_training_steps(
    nlp: Any, training: Dict[str, Any], batches: TrainingBatches, n_steps: int, top_ops: int = 15
) -> Dict[str, Any]:
    """Run ``n_steps`` training steps under the region timers and ``torch.profiler``."""
    # absolute import: this file also runs as a script against another checkout's package
    from spacy_hmtl.encoder.component import _PendingBackprop

    regions = _Regions()
    undo: List[Callable[[], None]] = []
    annotating = set(training["annotating_components"])
    for name, pipe in nlp.pipeline:
        # nlp.update runs annotating pipes (a frozen transformer, the sentencizer) via .pipe
        methods = ("update", "finish_update") + (("pipe",) if name in annotating else ())
        for method in methods:
            if hasattr(pipe, method):
                undo.append(regions.wrap(pipe, method, f"{name}.{method}"))
    # the encoder's backward pass runs when the last listener calls back
    undo.append(regions.wrap(_PendingBackprop, "flush", "hmtl_encoder backward"))
    # module regions nest inside pipe regions: timed apart, so each partition stays exclusive
    module_regions = _Regions()
    handles = _module_regions(nlp, module_regions)
    try:
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
            with regions.region("(outside any pipe)"):
                wall, words = run_steps(nlp, training, batches, n_steps)
    finally:
        for handle in handles:
            handle.remove()
        for fn in reversed(undo):
            fn()
    return summarize_profile(prof, regions.totals, module_regions.totals, wall, words, n_steps, top_ops)


def profile_inference(nlp: Any, texts: Sequence[str], batch_size: int = 64, top_ops: int = 15) -> Dict[str, Any]:
    """Profile one pass of ``nlp.pipe`` over ``texts``: by pipe, module and operator."""
    module_regions = _Regions()
    docs = [nlp.make_doc(text) for text in texts]
    words = sum(len(doc) for doc in docs)
    handles = _module_regions(nlp, module_regions)
    try:
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
            start = time.perf_counter()
            _, pipes = time_pipes(nlp, docs, batch_size=batch_size)
            wall = time.perf_counter() - start
    finally:
        for handle in handles:
            handle.remove()
    return summarize_profile(prof, pipes, module_regions.totals, wall, words, 1, top_ops)


def summarize_profile(
    prof: Any,
    pipes: Dict[str, float],
    modules: Dict[str, float],
    wall: float,
    words: int,
    n_steps: int,
    top_ops: int,
) -> Dict[str, Any]:
    """Per-step seconds by pipe (exclusive: they add up to the wall time), by torch module
    (forward only; a module's time excludes its timed children), by operator family and for
    the top operators (self CPU time)."""
    per_step = max(n_steps, 1)
    events = [e for e in prof.key_averages() if not e.key.startswith("ProfilerStep")]
    op_total = 0.0
    families: Dict[str, float] = {}
    ops: List[Tuple[str, float, int]] = []
    for event in events:
        self_s = event.self_cpu_time_total / 1e6
        op_total += self_s
        families[op_family(event.key)] = families.get(op_family(event.key), 0.0) + self_s
        ops.append((event.key, self_s, event.count))
    families["outside torch operators (Python, thinc/numpy, spaCy)"] = max(wall - op_total, 0.0)
    ops.sort(key=lambda item: -item[1])

    def per_step_sorted(times: Dict[str, float]) -> List[Dict[str, Any]]:
        return [
            {"name": k, "s_per_step": round(v / per_step, 4), "share": round(v / wall, 4) if wall else None}
            for k, v in sorted(times.items(), key=lambda item: -item[1])
        ]

    return {
        "steps": n_steps,
        "wall_s": round(wall, 3),
        "words": words,
        "words_per_second_under_profiler": round(words / wall, 1) if wall else None,
        "by_pipe": per_step_sorted(pipes),
        "by_module": per_step_sorted(modules),
        "by_family": per_step_sorted(families),
        "top_ops": [
            {"op": name, "s_per_step": round(s / per_step, 4), "share": round(s / wall, 4) if wall else None, "calls": calls}
            for name, s, calls in ops[:top_ops]
        ],
    }


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``python spacy_hmtl_dev/throughput.py CONFIG --output OUT.json [--set key=value ...]``

    One measurement in this process (``training_speed`` runs one process per measurement,
    so that each starts cold and a baseline checkout can be measured by running this file
    by its path with that checkout on ``PYTHONPATH``: ``python -m`` would put the working
    directory, this checkout, first).
    """
    import argparse
    import json

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("config", type=Path)
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--warmup-epochs", type=int, default=0)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--profile-steps", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    overrides: Dict[str, Any] = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            parser.error(f"--set expects KEY=VALUE, got {item!r}")
        overrides[key] = value
    result = measure_training(
        args.config,
        overrides,
        warmup=args.warmup,
        warmup_epochs=args.warmup_epochs,
        steps=args.steps,
        profile_steps=args.profile_steps,
        threads=args.threads,
    )
    args.output.write_text(json.dumps(result, indent=2), encoding="utf8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
