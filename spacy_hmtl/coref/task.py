"""The task description of ``hmtl_coref`` (``spacy_hmtl.tasks``): clusters in
``doc._.hmtl_coref_data`` and ``doc.spans["coref_clusters_N"]`` (``doc._.coref_clusters``),
written by ``annotate`` under ``"coref_clusters"``, scored as ``coref_p/r/f`` (the CoNLL
average) with MUC, B3, CEAF-e and LEA beside it."""
from typing import Any, List, Optional

from spacy.tokens import Doc

from ..annotations import COREF_EXTENSIONS, get_coref_clusters, has_coref_annotation, set_coref_clusters
from ..doc_json import span_to_json
from .render import render_coref
from ..tasks import ScoreRow, Task


def _is_annotated(doc: Doc, key: Optional[str]) -> bool:
    return has_coref_annotation(doc)


def _strip(doc: Doc, key: Optional[str]) -> None:
    """The record and the span groups removed."""
    if has_coref_annotation(doc):
        set_coref_clusters(doc, None)


def _to_json(doc: Doc, key: Optional[str]) -> Optional[List[List[dict]]]:
    """The clusters as lists of spans; None when the doc is not annotated for them."""
    clusters = get_coref_clusters(doc)
    return None if clusters is None else [[span_to_json(doc[s:e]) for s, e in cluster] for cluster in clusters]


def _from_json(doc: Doc, value: Any, key: Optional[str]) -> None:
    # with the span groups, as the pipe writes them
    set_coref_clusters(doc, [[(m["start_token"], m["end_token"]) for m in cluster] for cluster in value])


COREF_TASK = Task(
    name="coref",
    factory="hmtl_coref",
    layer="coref",
    json_key="coref_clusters",
    title="Coreference",
    writes=('doc._.hmtl_coref_data (read as doc._.coref_clusters)', 'doc.spans["coref_clusters_N"]'),
    score_prefix="coref_",
    score_rows=(
        ScoreRow("coref", "coreference, CoNLL avg"),
        ScoreRow("coref_muc", "MUC", headline=False),
        ScoreRow("coref_b3", "B3", headline=False),
        ScoreRow("coref_ceafe", "CEAFe", headline=False),
        ScoreRow("coref_lea", "LEA", headline=False),
    ),
    is_annotated=_is_annotated,
    strip=_strip,
    to_json=_to_json,
    from_json=_from_json,
    render=render_coref,
    graph_role="coref",
    extensions=COREF_EXTENSIONS,
    order=40,
)
