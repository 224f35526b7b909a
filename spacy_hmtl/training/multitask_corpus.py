"""``spacy_hmtl.MultiTaskCorpus.v1``: several corpora, each annotated for some tasks.

HMTL trains every task on its own corpus (NER + relations on CoNLL04, mentions +
coreference on LitBank, ...). This reader combines such corpora into one stream of
``Example`` s that spaCy's training loop (and ``nlp.evaluate``) can consume:

* Each corpus is read with ``spacy.training.Corpus`` and ``max_length = 0``: documents
  are kept whole, so cross-sentence relations and coreference chains survive.
* Each corpus declares the tasks it is annotated for: names of registered tasks
  (``spacy_hmtl.tasks``: ``"ner"``, ``"mentions"``, ``"relations"``, ``"coref"``, and any
  head registered beside them). The annotation of every task a corpus does *not* declare
  is stripped from the reference doc (the task's ``strip``) so that it reads as *missing*
  (see ``spacy_hmtl.annotations``), never as "annotated with nothing":

  ============  =============================================================
  task          stripped as
  ============  =============================================================
  ``ner``       every token's entity IOB set to missing (``doc.has_annotation
                ("ENT_IOB")`` is False); ``doc.spans["ents_overlapping"]`` removed
  ``mentions``  ``doc.spans[mentions_key]`` (and LitBank's ``"mention_kinds"``)
                removed
  ``relations`` ``set_relation_records(doc, None)``
  ``coref``     ``set_coref_clusters(doc, None)`` (record and span groups)
  ============  =============================================================

  Each head's ``update`` skips what is missing and each scorer skips documents that are
  not annotated for its task, so a single dev set that mixes corpora scores every task
  on exactly the documents annotated for it.
* Every example is tagged with its corpus: ``eg.reference.user_data["hmtl_corpus"]``
  (the corpus name) and ``["hmtl_tasks"]`` (the declared tasks, sorted). The batcher
  ``spacy_hmtl.task_batcher.v1`` groups by this tag (``get_corpus_name``). The tag is a
  plain string/list, so it survives ``DocBin(store_user_data=True)`` and pickling.

Config::

    [corpora.train]
    @readers = "spacy_hmtl.MultiTaskCorpus.v1"
    mentions_key = "mentions"
    shuffle = false

    [corpora.train.corpora.conll04]
    path = ${paths.conll04_train}
    tasks = ["ner", "relations"]
    # optional: limit = 0, gold_preproc = false

    [corpora.train.corpora.litbank]
    path = ${paths.litbank_train}
    tasks = ["mentions", "coref"]

Corpora are yielded one after the other, in the order they are given; spaCy's training
loop shuffles the examples of every epoch, and the batcher draws corpora independently of
that order. Each call re-reads the DocBins (like ``spacy.Corpus.v1``), so stripping in
place never leaks between calls.
"""
import random
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Union

from spacy.language import Language
from spacy.tokens import Doc
from spacy.training import Corpus, Example
from spacy.util import registry

from ..annotations import MENTIONS_KEY
from ..doc_json import doc_keys
from ..tasks import registered_tasks, task_names

CORPUS_TAG = "hmtl_corpus"
TASKS_TAG = "hmtl_tasks"
_CORPUS_KEYS = {"path", "tasks", "limit", "gold_preproc"}


def get_corpus_name(eg: Example, default: str = "default") -> str:
    """The corpus an example was read from (``default`` for untagged examples)."""
    return eg.reference.user_data.get(CORPUS_TAG, default)


def get_corpus_tasks(eg: Example) -> Optional[List[str]]:
    """The tasks the example's corpus is annotated for (None for untagged examples)."""
    tasks = eg.reference.user_data.get(TASKS_TAG)
    return None if tasks is None else list(tasks)


def strip_annotation(doc: Doc, keep_tasks: Iterable[str], *, mentions_key: str = MENTIONS_KEY) -> Doc:
    """Remove (in place) the annotation of every task not in ``keep_tasks``, so that it
    reads as missing. Returns the doc."""
    keep = set(keep_tasks)
    tasks = registered_tasks()
    unknown = keep - {task.name for task in tasks}
    if unknown:
        raise ValueError(f"Unknown task(s) {sorted(unknown)}; expected a subset of {list(task_names())}")
    keys = doc_keys(mentions_key)
    for task in tasks:
        if task.name not in keep:
            task.strip(doc, task.key(keys))
    return doc


def strip_docbin(
    src: Union[str, Path], dst: Union[str, Path], tasks: Sequence[str], *, mentions_key: str = MENTIONS_KEY
) -> int:
    """Write a copy of the DocBin ``src`` to ``dst`` keeping only the annotation of
    ``tasks``, e.g. to run plain ``spacy evaluate`` on a test set with the view of a
    multi-corpus config (CoNLL04 test as ``["ner", "relations"]``: mentions then score
    None). Returns the number of docs written."""
    from spacy.tokens import DocBin
    from spacy.vocab import Vocab

    vocab = Vocab()
    docs = [
        strip_annotation(doc, tasks, mentions_key=mentions_key)
        for doc in DocBin().from_disk(src).get_docs(vocab)
    ]
    DocBin(docs=docs, store_user_data=True).to_disk(dst)
    return len(docs)


class MultiTaskCorpus:
    """Iterate over the examples of several corpora, each restricted to its tasks.

    corpora (Dict[str, Dict[str, Any]]): corpus name -> settings: ``path`` (a .spacy
        file or a directory of them, required), ``tasks`` (required, a non-empty subset
        of the registered tasks: ``ner``, ``mentions``, ``relations``, ``coref``, ...), ``limit`` (0: all docs),
        ``gold_preproc`` (False).
    mentions_key (str): the ``doc.spans`` key of the mention annotation.
    shuffle (bool): shuffle the combined examples (seeded by the global ``random``
        state, which ``spacy train`` fixes with ``training.seed``). The training loop
        shuffles anyway; this is for ``max_epochs = -1`` streaming.
    """

    def __init__(
        self,
        corpora: Dict[str, Dict[str, Any]],
        *,
        mentions_key: str = MENTIONS_KEY,
        shuffle: bool = False,
    ) -> None:
        self.specs = _validate_specs(corpora)
        self.mentions_key = mentions_key
        self.shuffle = shuffle
        self.readers = {
            name: Corpus(
                spec["path"],
                max_length=0,
                limit=spec["limit"],
                gold_preproc=spec["gold_preproc"],
            )
            for name, spec in self.specs.items()
        }

    @property
    def names(self) -> List[str]:
        return list(self.specs)

    def __call__(self, nlp: Language) -> Iterator[Example]:
        if self.shuffle:
            examples = list(self._read(nlp))
            random.shuffle(examples)
            yield from examples
        else:
            yield from self._read(nlp)

    def _read(self, nlp: Language) -> Iterator[Example]:
        for name, reader in self.readers.items():
            tasks = self.specs[name]["tasks"]
            for eg in reader(nlp):
                ref = strip_annotation(eg.reference, tasks, mentions_key=self.mentions_key)
                ref.user_data[CORPUS_TAG] = name
                ref.user_data[TASKS_TAG] = list(tasks)
                yield eg


def _validate_specs(corpora: Dict[str, Dict[str, Any]]) -> Dict[str, Dict[str, Any]]:
    if not corpora:
        raise ValueError("spacy_hmtl.MultiTaskCorpus.v1: 'corpora' is empty; add [<reader>.corpora.<name>] blocks")
    specs: Dict[str, Dict[str, Any]] = {}
    for name, spec in corpora.items():
        where = f"spacy_hmtl.MultiTaskCorpus.v1: corpus '{name}'"
        if not isinstance(spec, dict):
            raise ValueError(f"{where}: expected a block with 'path' and 'tasks', got {spec!r}")
        extra = set(spec) - _CORPUS_KEYS
        if extra:
            raise ValueError(f"{where}: unknown setting(s) {sorted(extra)}; allowed: {sorted(_CORPUS_KEYS)}")
        for key in ("path", "tasks"):
            if spec.get(key) is None:
                raise ValueError(f"{where}: '{key}' is required")
        tasks = spec["tasks"]
        if isinstance(tasks, str) or not isinstance(tasks, (list, tuple)) or not tasks:
            raise ValueError(f"{where}: 'tasks' must be a non-empty list, e.g. [\"ner\", \"relations\"]")
        names = list(task_names())
        unknown = set(tasks) - set(names)
        if unknown:
            raise ValueError(f"{where}: unknown task(s) {sorted(unknown)}; expected a subset of {names}")
        path = Path(spec["path"])
        if not path.exists():
            raise ValueError(f"{where}: path '{path}' does not exist")
        limit = spec.get("limit", 0)
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 0:
            raise ValueError(f"{where}: 'limit' must be an integer >= 0, got {limit!r}")
        gold_preproc = spec.get("gold_preproc", False)
        if not isinstance(gold_preproc, bool):
            raise ValueError(f"{where}: 'gold_preproc' must be true or false, got {gold_preproc!r}")
        specs[str(name)] = {
            "path": path,
            "tasks": sorted(set(tasks), key=names.index),
            "limit": limit,
            "gold_preproc": gold_preproc,
        }
    return specs


@registry.readers("spacy_hmtl.MultiTaskCorpus.v1")
def create_multitask_corpus(
    corpora: Dict[str, Dict[str, Any]],
    mentions_key: str = MENTIONS_KEY,
    shuffle: bool = False,
) -> Callable[[Language], Iterable[Example]]:
    """Combine corpora annotated for different tasks (see the module docstring).

    corpora (Dict[str, Dict[str, Any]]): corpus name -> ``{"path": ..., "tasks": [...],
        "limit": 0, "gold_preproc": false}``.
    mentions_key (str): the ``doc.spans`` key of the mention annotation.
    shuffle (bool): shuffle the combined examples.
    RETURNS (Callable[[Language], Iterable[Example]]): the reader.
    """
    return MultiTaskCorpus(corpora, mentions_key=mentions_key, shuffle=shuffle)


def read_like_dev(nlp: Language, paths: Sequence[Union[str, Path]]) -> List[Example]:
    """Read evaluation corpora the way the pipeline's training config reads its dev set.

    When ``[corpora.dev]`` is a ``spacy_hmtl.MultiTaskCorpus.v1``, each path is read with
    the tasks that its dev counterpart declares (matched by directory: ``corpus/conll04/
    test.spacy`` pairs with ``corpus/conll04/dev.spacy``). Annotation for undeclared tasks
    (LitBank's entities in ``configs/mixed.cfg``) is stripped as on dev, so every scorer
    skips it instead of counting the labels the pipeline never learnt as misses. Any other
    dev reader: plain ``Corpus`` reads, concatenated.

    nlp (Language): the trained pipeline (its ``config`` gives the dev reader).
    paths (Sequence[Union[str, Path]]): ``.spacy`` files, e.g. the test sets.
    RETURNS (List[Example]): the examples, in path order.
    RAISES (ValueError): a path with no dev corpus in its directory, for a multi-task dev reader.
    """
    dev = nlp.config.interpolate().get("corpora", {}).get("dev", {})
    if dev.get("@readers") != "spacy_hmtl.MultiTaskCorpus.v1":
        return [eg for path in paths for eg in Corpus(path, max_length=0)(nlp)]
    dev_specs = dev.get("corpora", {})
    corpora: Dict[str, Dict[str, Any]] = {}
    for path in paths:
        matches = [n for n, s in dev_specs.items() if Path(s["path"]).parent == Path(path).parent]
        if not matches:
            dev_dirs = ", ".join(f"{n}: {Path(s['path']).parent}" for n, s in dev_specs.items())
            raise ValueError(
                f"{path}: no corpus of the pipeline's multi-task dev reader is in this "
                f"directory ({dev_dirs}), so the tasks it is annotated for are unknown"
            )
        name = matches[0]
        corpora[name] = {**dev_specs[name], "path": str(path), "limit": 0}
    mentions_key = dev.get("mentions_key", MENTIONS_KEY)
    return list(MultiTaskCorpus(corpora, mentions_key=mentions_key)(nlp))
