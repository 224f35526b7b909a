"""Frozen features computed once: ``spacy_hmtl.cache_frozen_features.v1``.

A frozen, annotating upstream (``configs/scierc_trf.cfg``'s MiniLM: listed in both
``[training] frozen_components`` and ``annotating_components``) runs forward on every training
batch, and computes the same features for the same document in every epoch: on a CPU that
was two thirds of the MiniLM config's training time. This ``[training.before_update]``
callback wraps the ``pipe`` method of each such component (spaCy's ``nlp.update`` and
``nlp.evaluate`` annotate through it) so that a document it has already seen gets its
stored output back instead of a new forward pass.

* What is stored: ``doc._.trf_data`` for a spacy-transformers ``Transformer``,
  ``doc.tensor`` for a spaCy ``Tok2Vec``; other components are left alone.
* Key: the document's text and token boundaries, so a changed text or tokenization misses.
* Invalidation: a fingerprint of the component's weights is taken when the cache is set up
  and checked at every new epoch; if the weights changed (the component was not frozen after
  all), everything stored is dropped and the component is annotated afresh.
* Bounded memory: at most ``max_mb`` in memory, least recently used first out; with
  ``store_dir`` the evicted entries go to disk (one pickle per document) and come back on
  the next hit, for corpora whose features do not fit in memory.

Stored outputs are the same objects the component produced, so training with the cache
gives the same weights and scores as without it (``tests/test_feature_cache.py``).
"""
import hashlib
import pickle
import shutil
import tempfile
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional

import numpy
from spacy.language import Language
from spacy.tokens import Doc
from spacy.util import minibatch, registry
from wasabi import msg


@registry.callbacks("spacy_hmtl.cache_frozen_features.v1")
def make_frozen_feature_cache(
    max_mb: float = 2048.0, store_dir: Optional[str] = None
) -> Callable[[Language, Dict[str, Any]], None]:
    """A ``[training.before_update]`` callback that computes the features of frozen,
    annotating components once per document (see the module docstring).

    max_mb (float): memory for stored outputs, in MB.
    store_dir (Optional[str]): directory for outputs evicted from memory (None: drop them).
    RETURNS (Callable[[Language, Dict[str, Any]], None]): the callback.
    """
    return FrozenFeatureCache(max_mb=max_mb, store_dir=store_dir)


def doc_key(doc: Doc) -> str:
    """The document's text and token boundaries, hashed."""
    digest = hashlib.blake2b(doc.text.encode("utf8"), digest_size=16)
    digest.update(numpy.asarray([t.idx for t in doc] + [len(t) for t in doc], dtype="int64").tobytes())
    return digest.hexdigest()


def output_nbytes(value: Any, depth: int = 0) -> int:
    """Bytes of the arrays inside a stored output (arrays, containers, dataclass fields)."""
    if depth > 6 or value is None:
        return 0
    if hasattr(value, "nbytes") and not isinstance(value, (str, bytes)):
        return int(value.nbytes)
    if isinstance(value, dict):
        return sum(output_nbytes(v, depth + 1) for v in value.values())
    if isinstance(value, (list, tuple)):
        return sum(output_nbytes(v, depth + 1) for v in value)
    fields = getattr(value, "__dict__", None)
    if fields:
        return sum(output_nbytes(v, depth + 1) for v in fields.values())
    return 0


class _Accessor:
    """Reads and writes one component's output on a doc."""

    def __init__(self, kind: str):
        self.kind = kind

    def get(self, doc: Doc) -> Any:
        return doc._.trf_data if self.kind == "trf_data" else doc.tensor

    def set(self, doc: Doc, value: Any) -> None:
        if self.kind == "trf_data":
            doc._.trf_data = value
        else:
            doc.tensor = value


def output_kind(pipe: Any) -> Optional[str]:
    """Which output of a component the cache stores; None: not supported."""
    names = {cls.__name__ for cls in type(pipe).__mro__}
    if "Transformer" in names and Doc.has_extension("trf_data"):
        return "trf_data"
    if "Tok2Vec" in names:
        return "tensor"
    return None


def fingerprint(pipe: Any) -> str:
    """A hash of the component's weights."""
    return hashlib.blake2b(pipe.model.to_bytes(), digest_size=16).hexdigest()


class ComponentCache:
    """The stored outputs of one component, and its wrapped ``pipe``."""

    def __init__(self, name: str, pipe: Any, kind: str, max_bytes: int, store_dir: Optional[Path]):
        self.name = name
        self.pipe_obj = pipe
        self.access = _Accessor(kind)
        self.max_bytes = max_bytes
        self.store_dir = store_dir
        self.memory: "OrderedDict[str, Any]" = OrderedDict()
        self.sizes: Dict[str, int] = {}
        self.on_disk: set = set()
        self.bytes = 0
        self.hits = 0
        self.misses = 0
        self.original_pipe = pipe.pipe
        self.fingerprint = fingerprint(pipe)
        pipe.pipe = self.pipe

    def uninstall(self) -> None:
        if self.pipe_obj.__dict__.get("pipe") == self.pipe:
            del self.pipe_obj.__dict__["pipe"]

    def clear(self) -> None:
        self.memory.clear()
        self.sizes.clear()
        self.bytes = 0
        if self.store_dir is not None:
            for key in self.on_disk:
                (self.store_dir / f"{key}.pkl").unlink(missing_ok=True)
        self.on_disk.clear()

    def check_weights(self) -> bool:
        """Drop everything if the weights changed. RETURNS (bool): whether they changed."""
        current = fingerprint(self.pipe_obj)
        if current == self.fingerprint:
            return False
        self.fingerprint = current
        self.clear()
        return True

    def lookup(self, key: str) -> Any:
        if key in self.memory:
            self.memory.move_to_end(key)
            return self.memory[key]
        if key in self.on_disk:
            with (self.store_dir / f"{key}.pkl").open("rb") as f:
                value = pickle.load(f)
            self._keep(key, value)
            return value
        return None

    def _keep(self, key: str, value: Any) -> None:
        size = output_nbytes(value)
        if size > self.max_bytes and self.store_dir is None:
            return
        self.memory[key] = value
        self.sizes[key] = size
        self.bytes += size
        while self.bytes > self.max_bytes and len(self.memory) > 1:
            old_key, old_value = self.memory.popitem(last=False)
            self.bytes -= self.sizes.pop(old_key)
            if self.store_dir is not None and old_key not in self.on_disk:
                path = self.store_dir / f"{old_key}.pkl"
                tmp = path.with_suffix(".tmp")
                with tmp.open("wb") as f:
                    pickle.dump(old_value, f, protocol=pickle.HIGHEST_PROTOCOL)
                tmp.replace(path)
                self.on_disk.add(old_key)

    def pipe(self, stream: Iterable[Doc], *, batch_size: int = 128, **kwargs) -> Iterator[Doc]:
        """The component's ``pipe``, answering seen documents from the store."""
        for batch in minibatch(stream, size=batch_size):
            keys = [doc_key(doc) for doc in batch]
            stored = [self.lookup(key) for key in keys]
            todo = [doc for doc, value in zip(batch, stored) if value is None]
            self.hits += len(batch) - len(todo)
            self.misses += len(todo)
            if todo:
                done = iter(list(self.original_pipe(todo, batch_size=batch_size, **kwargs)))
            for doc, key, value in zip(batch, keys, stored):
                if value is None:
                    doc = next(done)
                    self._keep(key, self.access.get(doc))
                else:
                    self.access.set(doc, value)
                yield doc


class FrozenFeatureCache:
    """The callback: sets up a ``ComponentCache`` per frozen, annotating component at the
    first step and checks their weights at every new epoch."""

    def __init__(self, max_mb: float = 2048.0, store_dir: Optional[str] = None):
        if max_mb <= 0:
            raise ValueError(f"spacy_hmtl.cache_frozen_features.v1: max_mb must be positive, got {max_mb}")
        self.max_bytes = int(max_mb * 2**20)
        self.store_dir = store_dir
        self.caches: List[ComponentCache] = []
        self.epoch: Optional[int] = None
        self._installed = False
        self._tmp: Optional[str] = None

    def __call__(self, nlp: Language, info: Dict[str, Any]) -> None:
        if not self._installed:
            self.install(nlp)
        epoch = info.get("epoch")
        if self.epoch is not None and epoch != self.epoch:
            for cache in self.caches:
                if cache.check_weights():
                    msg.warn(f"[{cache.name}] weights changed: its stored features were dropped")
        self.epoch = epoch

    def install(self, nlp: Language) -> None:
        self._installed = True
        training = nlp.config.get("training", {})
        frozen = set(training.get("frozen_components", []))
        annotating = set(training.get("annotating_components", []))
        store: Optional[Path] = None
        for name in [n for n in nlp.pipe_names if n in frozen and n in annotating]:
            pipe = nlp.get_pipe(name)
            kind = output_kind(pipe)
            if kind is None or not hasattr(pipe, "model"):
                continue
            if store is None and self.store_dir is not None:
                store = Path(self.store_dir)
                store.mkdir(parents=True, exist_ok=True)
                # a private subdirectory: never read a previous run's entries
                self._tmp = tempfile.mkdtemp(prefix="hmtl-features-", dir=store)
                store = Path(self._tmp)
            self.caches.append(ComponentCache(name, pipe, kind, self.max_bytes, store))
            where = f" (then {store})" if store is not None else ""
            msg.info(f"[{name}] frozen features cached: up to {self.max_bytes / 2**20:.0f} MB in memory{where}")

    def stats(self) -> Dict[str, Dict[str, float]]:
        """Hits, misses and memory per cached component."""
        return {
            c.name: {"hits": c.hits, "misses": c.misses, "memory_mb": c.bytes / 2**20, "on_disk": len(c.on_disk)}
            for c in self.caches
        }

    def close(self) -> None:
        """Unwrap the components and delete the on-disk entries."""
        for cache in self.caches:
            cache.uninstall()
            cache.clear()
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
