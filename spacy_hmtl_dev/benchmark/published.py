"""The figures the benchmark quotes rather than measures: DESIGN.md section 5.

Published: test F1 from the papers. Relation F1 columns: "boundaries" (both argument spans
+ label), "strict" (also both entity types), "macro" (macro-average over relation labels).
Quoted-measured: measured earlier on these machines (2 CPU cores), not in the run.
"""
from typing import Any, Dict, List

PUBLISHED: Dict[str, List[Dict[str, Any]]] = {
    "scierc": [
        {"system": "SciIE (ELMo)", "ents_f": 64.2, "rel_micro_f": 39.3, "coref_f": 48.2},
        {"system": "DyGIE (ELMo)", "ents_f": 65.2, "rel_micro_f": 41.6},
        {"system": "DyGIE++ (SciBERT)", "ents_f": 67.5, "rel_micro_f": 48.4},
        {"system": "PURE (SciBERT)", "ents_f": 68.2, "rel_micro_f": 50.1},
        {"system": "SpERT (SciBERT)", "ents_f": 70.3, "rel_micro_f": 50.8},
    ],
    "conll04": [
        {
            "system": "Multi-head selection (no language model)",
            "ents_f": 83.9,
            "rel_macro_f": 62.0,
            "note": "macro F1 over relation labels",
        },
        {
            "system": "SpERT (BERT)",
            "ents_f": 88.9,
            "rel_strict_f": 71.5,
            "note": "micro F1; SpERT's CoNLL04 evaluation also requires both entity types (strict)",
        },
    ],
}
QUOTED_MEASURED: Dict[str, List[Dict[str, Any]]] = {
    "scierc": [
        {"system": "spaCy stock ner, accuracy config + md vectors", "ents_f": 48.1},
        {"system": "spaCy stock ner, efficiency config", "ents_f": 45.6},
    ],
    "conll04": [
        {"system": "spaCy stock ner, accuracy config + md vectors", "ents_f": 80.0},
        {
            "system": "spaCy rel_component tutorial, gold entities",
            "rel_micro_f": 50.7,
            "note": "entities given: not end to end",
        },
        {
            "system": "spaCy rel_component tutorial, end to end",
            "rel_micro_f": 43.0,
            "rel_strict_f": 41.9,
            "note": "on predicted entities",
        },
    ],
}
QUOTED_STOCK_WPS = 7400  # en_core_web_md through nlp.pipe on the SciERC test text (DESIGN.md §5)
# (score key, column header) of the tables against published results
COMPARISON_COLUMNS = [
    ("ents_f", "entity F1"),
    ("rel_micro_f", "rel F1 boundaries"),
    ("rel_strict_f", "rel F1 strict"),
    ("rel_macro_f", "rel macro F1"),
    ("coref_f", "coref avg F1"),
]
