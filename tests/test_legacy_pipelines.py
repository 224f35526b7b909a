"""Pipelines saved by an older release load and predict as that release did.

tests/data/legacy_b6a203a holds the tests' tiny four-head pipeline saved by commit
b6a203a (before the head contract: the torch modules' sizes lived in untyped model
attrs) and the annotations that release predicted with it (written by
tests/data/make_legacy_pipeline.py, which also says how to regenerate it).
"""
import json
from pathlib import Path

import pytest
import spacy

from helpers import load_module

DATA = Path(__file__).parent / "data"
LEGACY = DATA / "legacy_b6a203a"


def _generator():
    return load_module(DATA / "make_legacy_pipeline.py")


def _close(a, b):
    if isinstance(a, float) or isinstance(b, float):
        return a == pytest.approx(b, abs=2e-4)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b))
    return a == b


def test_pipeline_of_an_older_release_predicts_as_it_did():
    gen = _generator()
    nlp = spacy.load(LEGACY / "model", config=gen.OVERRIDES)
    assert nlp.pipe_names == ["hmtl_encoder", "hmtl_ner", "hmtl_mentions", "hmtl_relations", "hmtl_coref"]
    expected = json.loads((LEGACY / "expected.json").read_text(encoding="utf8"))
    # the fixture is not trivial: the older release predicted mentions and relations
    assert any(e["mentions"] for e in expected) and any(e["relations"] for e in expected)
    for i, exp in enumerate(expected):
        got = json.loads(json.dumps(gen.annotations(gen.annotate(nlp, exp["text"], i))))
        for key, value in got.items():
            assert _close(value, exp[key]), (exp["text"], key, value, exp[key])
    # saved run-time settings of that release do not override the config's
    rel = nlp.get_pipe("hmtl_relations")
    assert rel.threshold == 0.0 and "threshold" not in rel.cfg


def test_weights_that_do_not_fit_give_a_clear_error():
    other_config = {"components": {"hmtl_relations": {"model": {"hidden_width": 7}}}}
    with pytest.raises(ValueError, match=r"(?s)hmtl_relations.*size mismatch.*retrain the pipeline"):
        spacy.load(LEGACY / "model", config=other_config)
