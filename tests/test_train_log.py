"""Dev curves are read from both formats of a `spacy train` log, as fractions (spacy_hmtl_dev.train_log);
two logs are compared value by value (spacy_hmtl_dev.train_log_comparison)."""
import json

import pytest

from spacy_hmtl_dev.train_log import read_train_log, scores_at

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


def test_timed_console_logger_writes_wall_time_and_every_score(tmp_path):
    import io

    import spacy
    from spacy.util import registry

    from spacy_hmtl_dev.train_log import read_train_log

    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    path = tmp_path / "logs" / "train.jsonl"
    setup = registry.loggers.get("spacy_hmtl.TimedConsoleLogger.v1")(output_file=str(path))
    stdout = io.StringIO()
    log_step, finalize = setup(nlp, stdout, io.StringIO())
    log_step(None)  # no evaluation at this step: nothing written
    info = {
        "epoch": 1,
        "step": 200,
        "score": 0.5,
        "losses": {"sentencizer": 0.0},
        "other_scores": {"sents_f": 0.9, "sents_per_type": {"x": 1}, "speed": 1234.0, "flag": True},
        "checkpoints": [],
    }
    log_step(info)
    finalize()
    lines = path.read_text(encoding="utf8").splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert record["step"] == 200 and record["epoch"] == 1 and record["seconds"] >= 0
    # percent like ConsoleLogger.v3, speed as is; non-numeric scores left out
    assert record["scores"] == {"sents_f": 90.0, "speed": 1234.0}
    entries = read_train_log(path)
    assert entries == [{"step": 200, "score": 0.5, "sents_f": 0.9, "speed": 1234.0, "seconds": record["seconds"]}]
    assert "200" in stdout.getvalue()  # the console table is still printed


def test_two_logs_compared_value_by_value(tmp_path):
    # scripts/compare_train_logs.py: are two fixed-seed trainings the same?
    from spacy_hmtl_dev.train_log_comparison import compare, read_log, write_comparison

    entry = {"step": 100, "losses": {"hmtl_ner": 12.5}, "scores": {"ents_f": 40.0, "ents_per_type": {}}, "score": 0.4}
    before, after, other = tmp_path / "before.jsonl", tmp_path / "after.jsonl", tmp_path / "other.jsonl"
    for path, ents in ((before, 40.0), (after, 40.0), (other, 41.5)):
        path.write_text(json.dumps(dict(entry, scores={"ents_f": ents})) + "\n\n", encoding="utf8")
    assert read_log(before) == {100: {"loss hmtl_ner": 12.5, "ents_f": 40.0, "score": 0.4}}
    same = compare(read_log(before), read_log(after))
    assert same["identical"] and same["max_abs_diff"] == 0.0 and same["n_values"] == 3
    differ = compare(read_log(before), read_log(other))
    assert not differ["identical"] and differ["max_abs_diff"] == 1.5
    # a value one log lacks has no difference, and the logs are not identical
    assert not compare({1: {"a": 1.0}}, {1: {"a": 1.0, "b": 2.0}})["identical"]
    assert not compare({}, {})["identical"]  # nothing compared: no verdict of "identical"
    report = write_comparison(before, other, tmp_path / "cmp", before_label="old", after_label="new",
                              training_command="spacy train x", command="cmd")  # fmt: skip
    assert not report["identical"]
    assert (tmp_path / "cmp.md").read_text().startswith("# Same training before and after: DIFFERENT (largest difference 1.5)")
    assert json.loads((tmp_path / "cmp.json").read_text())["before"] == {"label": "old", "log": str(before)}
