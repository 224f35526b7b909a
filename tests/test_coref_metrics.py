"""Tests of the coreference metrics (spacy_hmtl.coref.metrics).

The cases in ``data/coref_scorer_cases.json`` are the published test cases of the
CoNLL-2012 reference coreference scorer (conll/reference-coreference-scorers,
``test/DataFiles/*`` and ``test/CorefMetricTestConfig.pm``; Pradhan et al. 2014,
"Scoring Coreference Partitions of Predicted Mentions: A Reference Implementation"), with
the LEA values of ns-moosavi/coval (``unittests.py``; Moosavi & Strube 2016), as shipped in
``../shared/data/coref_scorer_cases``. CEAF-e values there are rounded to 5 decimals.
"""
import json
import re
from pathlib import Path

import pytest

from spacy_hmtl.coref.metrics import CorefEvaluator, b_cubed, ceafe, lea, muc, prf

CASES = json.loads((Path(__file__).parent / "data" / "coref_scorer_cases.json").read_text(encoding="utf8"))["cases"]
METRIC_NAMES = {"muc": "muc", "bcub": "b3", "ceafe": "ceafe", "lea": "lea"}
_CELL_PART = re.compile(r"(\()?(\d+)(\))?")


def parse_conll_column(column: str):
    """Clusters from a space-separated column of CoNLL-2012 coreference cells.

    Mentions are ``(start, end)`` token offsets (end exclusive), ordered by where they
    open; a mention repeated in several clusters stays in the first (the metrics keep the
    first occurrence).
    """
    open_by_id = {}
    mentions = []  # (open order, cluster id, start, end)
    order = 0
    for i, cell in enumerate(column.split()):
        if cell == "-":
            continue
        cell = cell.replace("|", "")
        pos = 0
        while pos < len(cell):
            match = _CELL_PART.match(cell, pos)
            assert match and match.end() > pos and (match.group(1) or match.group(3)), f"bad cell {cell!r}"
            opening, cid, closing = match.group(1), int(match.group(2)), match.group(3)
            if opening and closing:
                mentions.append((order, cid, i, i + 1))
                order += 1
            elif opening:
                open_by_id.setdefault(cid, []).append((order, i))
                order += 1
            else:
                o, start = open_by_id[cid].pop()
                mentions.append((o, cid, start, i + 1))
            pos = match.end()
    assert not any(open_by_id.values()), "unclosed mention"
    clusters = {}
    for _, cid, start, end in sorted(mentions):
        clusters.setdefault(cid, []).append((start, end))
    return list(clusters.values())


def test_parse_conll_column():
    assert parse_conll_column("(0 0) - (1) (1)|(2 2)") == [[(0, 2)], [(3, 4), (4, 5)], [(4, 6)]]
    # nested mentions of one cluster
    assert parse_conll_column("(1 (1 1) 1)") == [[(0, 4), (1, 3)]]


@pytest.mark.parametrize("name", sorted(CASES))
def test_reference_scorer_case(name):
    case = CASES[name]
    key = parse_conll_column(case["key"])
    response = parse_conll_column(case["response"])
    functions = {"muc": muc, "b3": b_cubed, "ceafe": ceafe, "lea": lea}
    for metric, expected in case["expected"].items():
        p, r, f = prf(functions[METRIC_NAMES[metric]](key, response))
        tol = 6e-6 if metric == "ceafe" else 1e-9
        assert (r, p, f) == pytest.approx(tuple(expected), abs=tol), (name, metric)


def test_all_cases_present():
    assert len(CASES) == 36
    assert sum(len(c["expected"]) for c in CASES.values()) > 36


def test_singletons():
    key = [[(0, 1)], [(2, 3), (4, 5)]]
    # Identical clusterings including a singleton: perfect everywhere.
    for fn in (muc, b_cubed, ceafe, lea):
        assert prf(fn(key, key)) == (1.0, 1.0, 1.0)
    # MUC ignores singletons entirely.
    assert muc([[(0, 1)]], [[(0, 1)]]) == (0.0, 0.0, 0.0, 0.0)
    assert prf(muc([[(0, 1)]], [[(0, 1)]])) == (0.0, 0.0, 0.0)
    # B3 / CEAF-e / LEA count singletons: missing the singleton costs recall only.
    response = [[(2, 3), (4, 5)]]
    p, r, f = prf(b_cubed(key, response))
    assert p == 1.0 and r == pytest.approx(2 / 3)
    p, r, f = prf(ceafe(key, response))
    assert p == 1.0 and r == pytest.approx(0.5)
    p, r, f = prf(lea(key, response))
    assert p == 1.0 and r == pytest.approx(2 / 3)


def test_empty_prediction_and_key():
    key = [[(0, 1), (3, 4)]]
    for fn in (muc, b_cubed, ceafe, lea):
        assert prf(fn(key, [])) == (0.0, 0.0, 0.0)
        assert prf(fn([], key)) == (0.0, 0.0, 0.0)
        assert prf(fn([], [])) == (0.0, 0.0, 0.0)
    ev = CorefEvaluator()
    ev.add([], [])
    assert ev.conll_f == 0.0 and ev.conll_p == 0.0 and ev.conll_r == 0.0
    ev.add(key, [])
    assert ev.conll_f == 0.0


def test_duplicates_and_empty_clusters_ignored():
    key = [[(0, 1), (3, 4)]]
    assert muc(key, [[(0, 1), (0, 1), (3, 4)], []]) == muc(key, key)


def _shift(clusters, offset):
    return [[(s + offset, e + offset) for s, e in c] for c in clusters]


def test_micro_average_over_documents():
    docs = [
        ([[(0, 1), (3, 4), (6, 8)], [(10, 11), (12, 13)]], [[(0, 1), (3, 4)], [(6, 8), (10, 11), (12, 13)]]),
        ([[(0, 2), (5, 6)]], [[(0, 2), (5, 6)], [(7, 8), (9, 10)]]),
        ([[(1, 2), (4, 5)], [(7, 8)]], []),
    ]
    per_doc = CorefEvaluator()
    one_doc_key, one_doc_resp = [], []
    for i, (key, resp) in enumerate(docs):
        per_doc.add(key, resp)
        # Disjoint offsets: the concatenation is one document with the same counts.
        one_doc_key += _shift(key, 100 * i)
        one_doc_resp += _shift(resp, 100 * i)
    merged = CorefEvaluator()
    merged.add(one_doc_key, one_doc_resp)
    assert per_doc.n_docs == 3
    for metric in ("muc", "b3", "ceafe", "lea"):
        assert per_doc.counts[metric] == pytest.approx(merged.counts[metric])
        assert per_doc.scores(metric) == pytest.approx(merged.scores(metric))
    # Micro, not macro: the summed counts, not the mean of per-document scores.
    macro = sum(prf(muc(k, r))[1] for k, r in docs) / len(docs)
    assert per_doc.recall("muc") != pytest.approx(macro)
    expected_conll = sum(per_doc.f1(m) for m in ("muc", "b3", "ceafe")) / 3
    assert per_doc.conll_f == pytest.approx(expected_conll)


def test_unknown_metric():
    with pytest.raises(ValueError):
        CorefEvaluator(metrics=("muc", "blanc"))
