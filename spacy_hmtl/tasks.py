"""One description per task head, and the registry every task-wide loop reads.

A head's ``Task`` says, in one place, what the rest of the package needs to know about
its task: the factory, the Doc layer it writes, the JSON field ``annotate`` writes it
under, its score keys, how to tell annotated from missing, how to strip its gold, how to
render it. The commands, the corpus reader, the score tables and the scripts loop over
``registered_tasks()`` instead of naming the heads, so a new head touches its own folder,
its task description and its entry points (``docs/ARCHITECTURE.md``, "Writing a head").

Registering a task:

* by entry point (how the four heads of this package register theirs, in ``setup.py``, and
  how a head in another package does): the group ``spacy_hmtl_tasks``, the name the task's
  name, the object a ``Task`` (or a function of no arguments that returns one)::

      entry_points={"spacy_hmtl_tasks": ["topic = my_package.topic.task:TOPIC_TASK"]}

* by decorator, on such a function::

      @task_registry.register("topic")
      def topic_task() -> Task:
          return Task(name="topic", ...)

* in code: ``register_task(TOPIC_TASK)`` (``unregister_task("topic")`` takes back a task
  registered in code, e.g. at the end of a test).

This module imports nothing from the package: the task modules import it, and the floor
(``annotations``, ``doc_json``) reads the registry without importing any head.
"""
from dataclasses import dataclass
from typing import Any, Callable, Dict, Mapping, Optional, Tuple

import catalogue
from spacy.tokens import Doc

NAMESPACE = ("spacy_hmtl", "tasks")
# The entry point group of the registry is "spacy_hmtl_tasks".
task_registry = catalogue.create(*NAMESPACE, entry_points=True)

# Fields of an ``annotate`` line that are not a task's (``doc_json``; "graph": the
# ``--output-format graph`` field), and render's own layer.
RESERVED_JSON_KEYS = frozenset(["id", "text", "tokens", "graph"])
GRAPH_LAYER = "graph"
# The layers an entity graph is built from (``spacy_hmtl.graph``): a task's ``graph_role``.
GRAPH_ROLES = ("entities", "mentions", "relations", "coref")


@dataclass(frozen=True)
class ScoreRow:
    """One precision / recall / F triple a head's scorer returns: the keys ``PREFIX_p``,
    ``PREFIX_r`` and ``PREFIX_f``.

    prefix (str): e.g. ``"rel_micro"``.
    title (str): what the score tables call it, e.g. ``"relations, boundaries"``.
    headline (bool): its F is one of the task's headline scores (train logs, ablation
        and benchmark tables, the evaluate table's top rows); else a detail row (coref's MUC).
    """

    prefix: str
    title: str
    headline: bool = True

    @property
    def f_key(self) -> str:
        return f"{self.prefix}_f"

    def keys(self) -> Tuple[str, str, str]:
        """The ``(p, r, f)`` keys."""
        return f"{self.prefix}_p", f"{self.prefix}_r", f"{self.prefix}_f"


@dataclass(frozen=True)
class DocExtension:
    """A ``Doc._`` extension a task's layer lives in (``annotations.register_extensions``
    registers it): a ``default`` or a ``getter`` (and ``setter``).

    hides (Optional[str]): what another registration of the same name hides, and where the
        head's output still is (the warning says it when other code got there first).
    """

    name: str
    default: Any = None
    getter: Optional[Callable[[Doc], Any]] = None
    setter: Optional[Callable[[Doc, Any], None]] = None
    hides: Optional[str] = None

    def kwargs(self) -> Dict[str, Any]:
        """The keyword arguments of ``Doc.set_extension``."""
        if self.getter is not None:
            return {"getter": self.getter, "setter": self.setter}
        return {"default": self.default}


@dataclass(frozen=True)
class RenderContext:
    """What a task's section renderer gets besides the document's JSON.

    colors (Mapping[str, str]): label -> CSS colour, overriding the generated ones.
    max_row_width (int): width (px) at which a drawing that grows with the text starts a new row.
    """

    colors: Mapping[str, str]
    max_row_width: int


# (doc, the layer's Doc key or None) -> ...
IsAnnotated = Callable[[Doc, Optional[str]], bool]
Strip = Callable[[Doc, Optional[str]], None]
ToJson = Callable[[Doc, Optional[str]], Any]
# (doc, the JSON value, not None, the layer's Doc key or None) -> None: sets the layer
FromJson = Callable[[Doc, Any, Optional[str]], None]
# (an annotate line, with the task's field not None; the context) -> the section's HTML
Render = Callable[[Dict[str, Any], RenderContext], str]
# (the head's component block in a config) -> the name other heads read its spans by
ProvidesSpans = Callable[[Mapping[str, Any]], str]


@dataclass(frozen=True)
class SpanInput:
    """The config setting through which a head reads argument spans that another head
    writes (``hmtl_relations``' ``entity_source``): the ablation's variants
    (``spacy_hmtl.variants``) keep or re-point its provider.

    setting (str): the component setting that names the source.
    default (str): its value when the block leaves it out.
    """

    setting: str
    default: str


@dataclass(frozen=True)
class Task:
    """What the package needs to know about one task head.

    name (str): the task's name where a config or command names tasks: a corpus's
        ``tasks`` in ``spacy_hmtl.MultiTaskCorpus.v1``, the ablation's variants.
    factory (str): the head's spaCy factory (``hmtl_ner``); configs name the pipe after it.
    layer (str): the layer's name in ``render --layers`` (and the section's CSS class).
    json_key (str): the field of an ``annotate`` line (``doc_json.doc_to_json``).
    title (str): the heading of the layer's render section.
    writes (Tuple[str, ...]): the Doc attributes the head writes, for readers (``doc.ents``).
    score_prefix (str): every key its scorer returns starts with it (``"rel_"``): the
        score weights a config drops with the head.
    score_rows (Tuple[ScoreRow, ...]): its P / R / F triples; the first is its main score.
    is_annotated (IsAnnotated): whether a doc carries the layer (gold or predicted);
        not annotated means *missing*, never "annotated with nothing".
    strip (Strip): remove the layer from a doc, in place, so that it reads as missing.
    to_json (ToJson): the layer as JSON (None when the doc is not annotated for it).
    from_json (Optional[FromJson]): set the layer on a doc of the line's tokens.
    render (Optional[Render]): the layer's render section; None: never rendered.
    graph_role (Optional[str]): what the entity graph reads the layer as (``GRAPH_ROLES``);
        None: the graph does not read it.
    provides_spans (Optional[ProvidesSpans]): for a head whose spans another head can read
        as its arguments: the source name they are read by, from the head's config block
        (``"ents"``; a mentions head's ``spans_key``).
    span_input (Optional[SpanInput]): for a head that reads argument spans another head
        provides: the setting naming its source.
    doc_key (Optional[str]): the default Doc key of a layer whose key a pipeline chooses
        (``hmtl_mentions``' ``spans_key``); the callables get the chosen key (``key``).
    extensions (Tuple[DocExtension, ...]): the ``Doc._`` extensions the layer lives in.
    order (int): position among the tasks (pipeline order: lower first, then by name).
    """

    name: str
    factory: str
    layer: str
    json_key: str
    title: str
    writes: Tuple[str, ...]
    score_prefix: str
    score_rows: Tuple[ScoreRow, ...]
    is_annotated: IsAnnotated
    strip: Strip
    to_json: ToJson
    from_json: Optional[FromJson] = None
    render: Optional[Render] = None
    graph_role: Optional[str] = None
    provides_spans: Optional[ProvidesSpans] = None
    span_input: Optional[SpanInput] = None
    doc_key: Optional[str] = None
    extensions: Tuple[DocExtension, ...] = ()
    order: int = 100

    def __post_init__(self) -> None:
        if not self.score_rows:
            raise ValueError(f"task {self.name!r}: score_rows is empty; its first row is its main score")
        if self.json_key in RESERVED_JSON_KEYS:
            raise ValueError(f"task {self.name!r}: json_key {self.json_key!r} is a field of every annotate line")
        if self.layer == GRAPH_LAYER:
            raise ValueError(f"task {self.name!r}: layer {GRAPH_LAYER!r} is the entity graph's")
        if self.graph_role is not None and self.graph_role not in GRAPH_ROLES:
            raise ValueError(f"task {self.name!r}: graph_role must be one of {GRAPH_ROLES} or None")

    @property
    def main_score(self) -> str:
        """The F key of its first score row (``ents_f``)."""
        return self.score_rows[0].f_key

    @property
    def headline_scores(self) -> Tuple[str, ...]:
        """The F keys of its headline rows."""
        return tuple(row.f_key for row in self.score_rows if row.headline)

    def key(self, doc_keys: Optional[Mapping[str, str]] = None) -> Optional[str]:
        """The Doc key of the layer: ``doc_keys`` maps default keys to the chosen ones
        (``{"mentions": "predicted_mentions"}``); None for a layer without a key."""
        if self.doc_key is None:
            return None
        return (doc_keys or {}).get(self.doc_key, self.doc_key)


def register_task(task: Task) -> Task:
    """Register ``task`` under its name (replacing a task of that name); return it."""
    if not isinstance(task, Task):
        raise TypeError(f"register_task: expected a spacy_hmtl.tasks.Task, got {type(task).__name__}")
    task_registry.register(task.name, func=task)
    _forget()
    return task


def unregister_task(name: str) -> None:
    """Take back a task that ``register_task`` registered (a no-op for other names)."""
    if catalogue.check_exists(*NAMESPACE, name):
        catalogue._remove((*NAMESPACE, name))  # catalogue has no public removal
    _forget()


_entry_point_tasks: Optional[Dict[str, Any]] = None
# (size of catalogue's registry when computed, the tasks): a registration anywhere in
# catalogue changes the size, so a task registered with ``task_registry.register`` is seen
_cache: Optional[Tuple[int, Tuple[Task, ...]]] = None


def _forget() -> None:
    global _cache
    _cache = None


def registered_tasks() -> Tuple[Task, ...]:
    """Every registered task, in ``order`` (then by name).

    RAISES (RuntimeError): no task is installed (the package's entry points are missing:
        install it, ``pip install -e .``, again after an update).
    RAISES (ValueError, TypeError): two tasks share a layer, JSON field or factory, a task
        is registered under another name than its own, or a registered object is not a
        ``Task`` (nor a function that returns one).
    """
    global _entry_point_tasks, _cache
    if _entry_point_tasks is None:
        # Read once per process: scanning the installed distributions takes milliseconds,
        # and doc_to_json asks for the tasks once per document.
        _entry_point_tasks = task_registry.get_entry_points()
    stamp = len(catalogue.REGISTRY)
    if _cache is None or _cache[0] != stamp:
        found = dict(_entry_point_tasks)
        found.update(
            (keys[-1], value)
            for keys, value in catalogue.REGISTRY.items()
            if len(keys) == len(NAMESPACE) + 1 and keys[: len(NAMESPACE)] == NAMESPACE
        )
        _cache = (stamp, _checked(found))
    return _cache[1]


def _checked(found: Dict[str, Any]) -> Tuple[Task, ...]:
    if not found:
        raise RuntimeError(
            "no spacy-hmtl task is registered (entry point group 'spacy_hmtl_tasks'): is spacy-hmtl "
            "installed? After an update that added entry points, run `pip install -e .` again"
        )
    made: Dict[str, Task] = {}
    for name, value in found.items():
        task = value() if callable(value) and not isinstance(value, Task) else value
        if not isinstance(task, Task):
            raise TypeError(f"spacy_hmtl task {name!r}: expected a spacy_hmtl.tasks.Task, got {type(task).__name__}")
        if task.name != name:
            raise ValueError(f"spacy_hmtl task registered as {name!r} is named {task.name!r}")
        made[name] = task
    tasks = tuple(sorted(made.values(), key=lambda t: (t.order, t.name)))
    for field in ("layer", "json_key", "factory"):
        seen: Dict[str, str] = {}
        for task in tasks:
            value = getattr(task, field)
            if value in seen:
                raise ValueError(f"spacy_hmtl tasks {seen[value]!r} and {task.name!r} share the {field} {value!r}")
            seen[value] = task.name
    return tasks


def get_task(name: str) -> Task:
    """The registered task called ``name``; a KeyError names the registered ones."""
    for task in registered_tasks():
        if task.name == name:
            return task
    raise KeyError(f"no spacy_hmtl task {name!r}; registered: {', '.join(task_names())}")


def task_names() -> Tuple[str, ...]:
    """The names of the registered tasks, in order."""
    return tuple(task.name for task in registered_tasks())


def task_of_factory(factory: str) -> Optional[Task]:
    """The task whose head the factory ``factory`` makes, or None (the encoder, a spaCy pipe)."""
    return next((task for task in registered_tasks() if task.factory == factory), None)


def headline_scores() -> Tuple[str, ...]:
    """The headline F keys of every task, in task order (``ents_f``, ``mentions_f``, ...)."""
    return tuple(key for task in registered_tasks() for key in task.headline_scores)
