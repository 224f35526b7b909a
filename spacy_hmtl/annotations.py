"""The annotation layers spacy-hmtl reads and writes on a ``Doc``, in one place.

Every layer distinguishes *missing* from *empty*, because in multi-corpus training a
document annotated for relations is not annotated for coreference:

* entities (``hmtl_ner``): ``doc.ents``; annotated when ``doc.has_annotation("ENT_IOB")``.
* mentions (``hmtl_mentions``): ``doc.spans[key]`` (default ``"mentions"``); annotated
  when the key exists, even with no spans in it.
* relations (``hmtl_relations``): a plain record list in ``doc._.hmtl_relations_data``;
  ``None`` = not annotated, ``[]`` = annotated with no relations. Each record is
  ``[head_start, head_end, tail_start, tail_end, label, score]`` in token offsets
  (end exclusive). ``doc._.relations`` builds ``Relation`` objects with ``Span`` s from it.
* coreference (``hmtl_coref``): a plain record in ``doc._.hmtl_coref_data`` (``None`` = not
  annotated, else a list of clusters, each a list of ``[start, end]``), and, on predicted
  docs, ``doc.spans["coref_clusters_1"]``, ``..._2``, ... one group per cluster
  (spacy-experimental's convention) plus the empty marker group ``doc.spans["coref_clusters"]``.
  Converters store only the record: thousands of span groups make a DocBin slow to read
  every epoch. Docs from other tools that only carry the span groups are read too.
  ``doc._.coref_clusters`` returns the clusters as lists of ``Span`` s.

Spans cannot be msgpacked, so the stored data is ints and strings only: it survives
``Doc.to_bytes``, ``DocBin(store_user_data=True)`` and ``nlp.pipe(n_process=2)``.

Each head's task description (``spacy_hmtl.tasks``) declares the ``doc._`` extensions of its
layer (``RELATION_EXTENSIONS``, ``COREF_EXTENSIONS`` for the two layers defined here);
``register_extensions`` registers those of every registered task.

The ``doc._`` extensions exist once ``spacy_hmtl`` is imported (``spacy.load`` of a
pipeline with HMTL components imports it). Unpickling a Doc imports it by itself (the
records are ``LayerRecords``); ``Doc.from_bytes`` and ``DocBin`` cannot: in a process
that has not imported ``spacy_hmtl``, reading a layer from such a Doc fails with spaCy's
E046 ("unregistered extension attribute"). ``import spacy_hmtl`` first.

An extension of the same name that other code registered first is left as it is, with an
``ExtensionConflictWarning`` (at import, and again when a head pipe is created):
``doc._.relations`` would show that code's value, not the pipe's output, which stays
readable through ``get_relation_records`` and ``get_coref_clusters``.
"""
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

from spacy.tokens import Doc, Span

from .tasks import DocExtension, registered_tasks

RELATIONS_ATTR = "hmtl_relations_data"
COREF_ATTR = "hmtl_coref_data"
DOC_KEY_ATTR = "hmtl_doc_key"
MENTIONS_KEY = "mentions"
COREF_PREFIX = "coref_clusters"
# Present (possibly empty) iff the document is annotated for coreference.
COREF_MARKER = COREF_PREFIX
# Entities that overlap others and therefore cannot live in doc.ents.
ENTS_OVERFLOW_KEY = "ents_overlapping"

RelationRecord = List  # [head_start, head_end, tail_start, tail_end, label, score]


class LayerRecords(list):
    """The list a layer's records are stored in: a plain list whose class lives in this
    package, so that unpickling a Doc imports ``spacy_hmtl`` (which registers the
    extensions) before its layers are read. msgpack stores it as a plain list."""

    __slots__ = ()


@dataclass(frozen=True)
class Relation:
    """A directed, labelled relation between two spans of a Doc."""

    head: Span
    tail: Span
    label: str
    score: float

    def to_record(self) -> RelationRecord:
        return [self.head.start, self.head.end, self.tail.start, self.tail.end, self.label, float(self.score)]


class ExtensionConflictWarning(UserWarning):
    """A ``Doc._`` extension that spacy-hmtl uses was registered differently by other code."""


def _extensions() -> List[DocExtension]:
    """Each Doc extension of spacy-hmtl: the document key's, and those of every registered
    task's layer (``Task.extensions``)."""
    return [DocExtension(DOC_KEY_ATTR)] + [ext for task in registered_tasks() for ext in task.extensions]


def register_extensions() -> List[str]:
    """Register the Doc extensions used by spacy-hmtl (idempotent). An extension that
    other code registered differently is left alone, with an ``ExtensionConflictWarning``
    that says what it hides.

    RETURNS (List[str]): the names registered differently by other code.
    """
    conflicts = []
    for extension in _extensions():
        name, kwargs = extension.name, extension.kwargs()
        if not Doc.has_extension(name):
            Doc.set_extension(name, **kwargs)
        elif not _is_ours(Doc.get_extension(name), kwargs):
            conflicts.append(name)
            effect = extension.hides or "spacy-hmtl's pipes and converters may store or read it wrongly"
            warnings.warn(
                f"Doc._.{name} is registered by other code, not as spacy_hmtl registers it: spacy_hmtl "
                f"leaves it as it is, so {effect}. Register yours under another name.",
                ExtensionConflictWarning,
                stacklevel=2,
            )
    return conflicts


def _is_ours(registered: Tuple[Any, Any, Any, Any], kwargs: Dict[str, Any]) -> bool:
    """Whether an extension (``Doc.get_extension``: default, method, getter, setter) is
    registered as ``kwargs`` would register it. Functions compare by qualified name: a
    reloaded module makes new function objects."""
    default, method, getter, setter = registered
    return (
        default is kwargs.get("default")
        and method is None
        and _same_function(getter, kwargs.get("getter"))
        and _same_function(setter, kwargs.get("setter"))
    )


def _same_function(a: Optional[Callable], b: Optional[Callable]) -> bool:
    if a is None or b is None:
        return a is b
    return (getattr(a, "__module__", None), getattr(a, "__qualname__", None)) == (b.__module__, b.__qualname__)


# --- entities -----------------------------------------------------------------------


def has_ner_annotation(doc: Doc) -> bool:
    return doc.has_annotation("ENT_IOB")


# --- mentions -----------------------------------------------------------------------


def has_mention_annotation(doc: Doc, spans_key: str = MENTIONS_KEY) -> bool:
    return spans_key in doc.spans


# --- relations ----------------------------------------------------------------------


def has_relation_annotation(doc: Doc) -> bool:
    return doc._.get(RELATIONS_ATTR) is not None


def get_relation_records(doc: Doc) -> Optional[List[RelationRecord]]:
    """The plain relation records, or None if the doc is not annotated for relations."""
    records = doc._.get(RELATIONS_ATTR)
    if records is None:
        return None
    # DocBin reads user data back with tuples: hand out lists, as documented.
    return [list(r) for r in records]


def set_relation_records(doc: Doc, records: Optional[Iterable[Sequence]]) -> None:
    """Store relation records (validated, as lists, sorted by position)."""
    if records is None:
        doc._.set(RELATIONS_ATTR, None)
        return
    clean = []
    for rec in records:
        hs, he, ts, te, label = (int(rec[0]), int(rec[1]), int(rec[2]), int(rec[3]), str(rec[4]))
        score = float(rec[5]) if len(rec) > 5 else 1.0
        for start, end in ((hs, he), (ts, te)):
            if not 0 <= start < end <= len(doc):
                raise ValueError(
                    f"Relation argument [{start}, {end}) is outside the document ({len(doc)} tokens)"
                )
        clean.append([hs, he, ts, te, label, score])
    clean.sort(key=lambda r: (r[0], r[1], r[2], r[3], r[4]))
    doc._.set(RELATIONS_ATTR, LayerRecords(clean))


def _get_relations(doc: Doc) -> Optional[List[Relation]]:
    records = doc._.get(RELATIONS_ATTR)
    if records is None:
        return None
    return [
        Relation(doc[hs:he], doc[ts:te], label, float(score))
        for hs, he, ts, te, label, score in records
    ]


def _set_relations(doc: Doc, relations: Optional[Iterable[Relation]]) -> None:
    if relations is None:
        set_relation_records(doc, None)
    else:
        set_relation_records(doc, [rel.to_record() for rel in relations])


# The Doc extensions of the relation layer (``relations/task.py`` declares them).
RELATION_EXTENSIONS = (
    DocExtension(RELATIONS_ATTR),
    DocExtension(
        "relations",
        getter=_get_relations,
        setter=_set_relations,
        hides="doc._.relations shows that code's value, not the relations hmtl_relations predicts "
        "(read them with spacy_hmtl.annotations.get_relation_records(doc))",
    ),
)


# --- coreference --------------------------------------------------------------------


def has_coref_annotation(doc: Doc) -> bool:
    if doc._.get(COREF_ATTR) is not None:
        return True
    return COREF_MARKER in doc.spans or any(_is_cluster_key(k) for k in doc.spans)


def _is_cluster_key(key: str) -> bool:
    prefix = COREF_PREFIX + "_"
    return key.startswith(prefix) and key[len(prefix):].isdigit()


def get_coref_clusters(doc: Doc) -> Optional[List[List[Tuple[int, int]]]]:
    """Clusters as lists of (start, end) token offsets, or None if not annotated."""
    record = doc._.get(COREF_ATTR)
    if record is not None:
        return [[(int(s), int(e)) for s, e in cluster] for cluster in record]
    if not has_coref_annotation(doc):
        return None
    keys = sorted((k for k in doc.spans if _is_cluster_key(k)), key=lambda k: int(k.rsplit("_", 1)[1]))
    clusters = [sorted((span.start, span.end) for span in doc.spans[k]) for k in keys]
    return [c for c in clusters if c]


def set_coref_clusters(
    doc: Doc, clusters: Optional[Iterable[Iterable[Tuple[int, int]]]], *, span_groups: bool = True
) -> None:
    """Replace the coreference clusters of a doc (None marks it as not annotated).

    Clusters are sorted by their first mention, mentions by position. With
    ``span_groups`` (what the pipe does) they are also written to
    ``doc.spans["coref_clusters_N"]``, numbered from 1 like spacy-experimental's coref.
    """
    for key in [k for k in doc.spans if _is_cluster_key(k) or k == COREF_MARKER]:
        del doc.spans[key]
    if clusters is None:
        doc._.set(COREF_ATTR, None)
        return
    ordered = sorted(
        (sorted({(int(s), int(e)) for s, e in cluster}) for cluster in clusters),
        key=lambda c: c[0] if c else (len(doc), len(doc)),
    )
    ordered = [c for c in ordered if c]
    for cluster in ordered:
        for start, end in cluster:
            if not 0 <= start < end <= len(doc):
                raise ValueError(
                    f"Coreference mention [{start}, {end}) is outside the document ({len(doc)} tokens)"
                )
    doc._.set(COREF_ATTR, LayerRecords([[s, e] for s, e in cluster] for cluster in ordered))
    if span_groups:
        doc.spans[COREF_MARKER] = []
        for i, cluster in enumerate(ordered):
            doc.spans[f"{COREF_PREFIX}_{i + 1}"] = [doc[s:e] for s, e in cluster]


def _get_coref_cluster_spans(doc: Doc) -> Optional[List[List[Span]]]:
    clusters = get_coref_clusters(doc)
    if clusters is None:
        return None
    return [[doc[s:e] for s, e in cluster] for cluster in clusters]


# The Doc extensions of the coreference layer (``coref/task.py`` declares them).
COREF_EXTENSIONS = (
    DocExtension(
        "coref_clusters",
        getter=_get_coref_cluster_spans,
        hides="doc._.coref_clusters shows that code's value, not the clusters hmtl_coref predicts "
        "(read them with spacy_hmtl.annotations.get_coref_clusters(doc) or doc.spans['coref_clusters_N'])",
    ),
    DocExtension(COREF_ATTR),
)
