"""Dev curves are read from both formats of a `spacy train` log, as fractions."""
import json

import pytest

from spacy_hmtl.training.train_log import read_train_log, scores_at

CONSOLE = """\x1b[38;5;4mi Initial learn rate: 0.001\x1b[0m
E    #       LOSS HMTL_NER  ENTS_F  REL_MICRO_F  SCORE 
---  ------  -------------  ------  -----------  ------
  0       0        2054.13    0.26         0.00    0.00
  2     100       68553.92   14.31         1.57    0.08
"""


def test_console_and_jsonl_logs_give_the_same_fractions(tmp_path):
    console = tmp_path / "train.log"
    console.write_text(CONSOLE, encoding="utf8")
    jsonl = tmp_path / "train_log.jsonl"
    entries = [
        {"epoch": 0, "step": 0, "losses": {}, "scores": {"ents_f": 0.26, "rel_micro_f": 0.0}, "score": 0.0},
        {"epoch": 2, "step": 100, "losses": {}, "scores": {"ents_f": 14.31, "rel_micro_f": 1.57}, "score": 0.08},
    ]
    jsonl.write_text("".join(json.dumps(e) + "\n" for e in entries), encoding="utf8")
    for path in (console, jsonl):
        log = read_train_log(path)
        assert [e["step"] for e in log] == [0, 100]
        assert log[1]["ents_f"] == pytest.approx(0.1431)
        assert log[1]["rel_micro_f"] == pytest.approx(0.0157)
        assert log[1]["score"] == pytest.approx(0.08)
        assert "loss hmtl_ner" not in log[1]
    assert scores_at(jsonl, 100)["ents_f"] == pytest.approx(0.1431)
    with pytest.raises(ValueError, match="no evaluation at step 50"):
        scores_at(console, 50)
