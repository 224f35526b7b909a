"""The evaluate command's console table shows every head's scores."""
from spacy_hmtl.scores_table import format_scores


def test_every_head_is_printed_in_percent_and_missing_heads_are_left_out():
    scores = {
        "ents_p": 0.5, "ents_r": 0.25, "ents_f": 1 / 3,
        "mentions_p": 1.0, "mentions_r": 0.5, "mentions_f": 2 / 3,
        "rel_micro_p": 0.2, "rel_micro_r": 0.1, "rel_micro_f": 0.4 / 3,
        "rel_strict_p": None, "rel_strict_r": None, "rel_strict_f": None,
        "coref_p": 0.6, "coref_r": 0.3, "coref_f": 0.4,
        "coref_muc_p": 0.7, "coref_muc_r": 0.35, "coref_muc_f": 0.7 * 0.35 * 2 / 1.05,
    }
    table = format_scores(scores).splitlines()
    rows = {line[:42].strip(): line[42:].split() for line in table[1:]}
    assert rows["entities (hmtl_ner)"] == ["50.0", "25.0", "33.3"]
    assert rows["mentions (hmtl_mentions)"] == ["100.0", "50.0", "66.7"]
    assert rows["relations, boundaries (hmtl_relations)"] == ["20.0", "10.0", "13.3"]
    assert rows["coreference, CoNLL avg (hmtl_coref)"] == ["60.0", "30.0", "40.0"]
    assert rows["MUC"] == ["70.0", "35.0", "46.7"]
    assert "relations, strict (hmtl_relations)" not in rows and "B3" not in rows
