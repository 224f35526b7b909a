"""The ablation's runs (``spacy_hmtl_dev.ablation.runs``): resumable across sessions, the
"- task" rows on their own step budget, and their comparison with ``full`` on dev at that step.

A plateau-length ablation of ``configs/mixed.cfg`` is about nine hours of two cores, longer
than a session: a run stopped half-way must go on from its checkpoint (not start again), and
its record must count the wall time of every segment.
"""
import json
import subprocess
import sys
from pathlib import Path

import pytest
import spacy
from spacy.util import load_config

from helpers import TINY_CONFIG, reference_docs, write_docbin
from spacy_hmtl.variants import derive_variant_config
from spacy_hmtl_dev.ablation.runs import (
    FINISHED,
    AblationSettings,
    can_resume,
    collect,
    merge_segments,
    run_config,
    run_dir,
    run_one,
)
from spacy_hmtl_dev.ablation.summary import aggregate, comparisons, dev_at_step, summarize


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("ablation_runs")
    docs = reference_docs(spacy.blank("en").vocab)
    write_docbin(root / "train.spacy", docs)
    write_docbin(root / "dev.spacy", docs)
    (root / "tiny.cfg").write_text(TINY_CONFIG, encoding="utf8")
    return root


def settings_for(corpus: Path, workdir: Path, **kwargs) -> AblationSettings:
    base = dict(
        config=str(corpus / "tiny.cfg"), workdir=str(workdir), output=str(workdir / "report"), command="test",
        max_steps=8, seeds=(0,), tests=(str(corpus / "dev.spacy"),), threads=1,
        overrides=("--paths.train", str(corpus / "train.spacy"), "--paths.dev", str(corpus / "dev.spacy")),
    )  # fmt: skip
    base.update(kwargs)
    return AblationSettings(**base)


def test_minus_rows_train_their_own_budget():
    s = AblationSettings(config="c", workdir="w", output="o", command="x", max_steps=1400, seeds=(0,), tests=("t",), minus_max_steps=600)
    assert (s.steps("full"), s.steps("flat"), s.steps("coref"), s.steps("no-coref")) == (1400, 1400, 1400, 600)
    same = AblationSettings(config="c", workdir="w", output="o", command="x", max_steps=1400, seeds=(0,), tests=("t",))
    assert same.steps("no-ner") == same.minus_steps() == 1400


def test_segments_sum_wall_time_and_keep_the_peak_memory():
    first = {"returncode": 4, "wall_s": 100.0, "peak_rss_mb": 900.0}
    second = {"returncode": 0, "wall_s": 50.5, "peak_rss_mb": 800.0}
    merged = merge_segments([first], second)
    assert merged["returncode"] == 0 and merged["wall_s"] == 150.5 and merged["peak_rss_mb"] == 900.0
    assert merged["segments"] == [first, second]
    # a third segment after two: the earlier list is extended, not nested
    third = merge_segments(merged["segments"], {"returncode": 0, "wall_s": 1.0, "peak_rss_mb": 1000.0})
    assert third["wall_s"] == 151.5 and third["peak_rss_mb"] == 1000.0 and len(third["segments"]) == 3
    assert merge_segments([], second) == second
    assert merge_segments([{"wall_s": None}], second)["wall_s"] is None  # unknown stays unknown


def test_minus_rows_are_compared_with_full_on_dev_at_their_step():
    def run(ents_at_4, coref_at_4):
        log = [{"step": 0, "ents_f": 0.0, "coref_f": 0.0}, {"step": 4, "ents_f": ents_at_4, "coref_f": coref_at_4}]
        return {"scores": {"ents_f": 0.9, "coref_f": 0.9}, "dev_log": log}

    runs = {
        "full": {0: run(0.50, 0.40), 1: run(0.54, 0.44)},
        "no-coref": {0: {"scores": {"ents_f": 0.1}, "dev_log": [{"step": 4, "ents_f": 0.60}]},
                     1: {"scores": {"ents_f": 0.1}, "dev_log": [{"step": 4, "ents_f": 0.62}]}},
    }  # fmt: skip
    dev = {v: dev_at_step(by_seed, v, 4) for v, by_seed in runs.items()}
    assert dev["full"]["ents_f"] == summarize([50.0, 54.0]) and "coref_f" not in dev["no-coref"]
    rows = {(r["metric"], r["variant"]): r for r in comparisons(aggregate(runs), dev, 4)}
    # on test no-coref would be 10 - 90 = -80; on dev at step 4 it is 61 - 52 = +9
    assert rows[("ents_f", "no-coref")]["delta"] == 9.0 and rows[("ents_f", "no-coref")]["basis"] == "dev, step 4"
    assert rows[("ents_f", "no-coref")]["verdict"] == "better"  # 9 > sd 2.83 + 1.41
    # a seed without an evaluation at that step is left out of the summary
    assert dev_at_step({0: {"dev_log": [{"step": 8, "ents_f": 0.5}]}}, "ner", 4)["ents_f"]["n"] == 0
    assert comparisons(aggregate(runs))[0]["basis"] == "test"


def test_a_stopped_run_resumes_from_its_checkpoint_and_is_recorded_whole(corpus, tmp_path):
    settings = settings_for(corpus, tmp_path / "runs", minus_max_steps=4)
    variant_cfg = derive_variant_config(load_config(corpus / "tiny.cfg", interpolate=False), "ner")
    out = run_dir(settings.workdir, "ner", 0)
    out.mkdir(parents=True)
    # a session that ended at step 4 of 8: the config the ablation writes, trained half-way
    cfg_path = out / "config.cfg"
    run_config(variant_cfg, 0, 8, out / "train_log.jsonl").to_disk(cfg_path)
    stopped = subprocess.run(
        [sys.executable, "-m", "spacy_hmtl", "train", str(cfg_path), "--output", str(out), "--stop-after-step", "4", *settings.overrides],
        capture_output=True, text=True,
    )  # fmt: skip
    assert stopped.returncode == 4, stopped.stdout + stopped.stderr
    (out / "train_time.json").write_text(json.dumps({"returncode": 4, "wall_s": 1000.0, "peak_rss_mb": 1.0}))
    assert can_resume(out, cfg_path, settings.overrides)
    assert not can_resume(out, cfg_path)  # without the overrides it is another config
    # another budget: a longer one goes on from the checkpoint (the trainer extends a run as
    # the longer run would have gone), one that ends at or before the checkpoint's step afresh
    run_config(variant_cfg, 0, 16, out / "train_log.jsonl").to_disk(tmp_path / "longer.cfg")
    assert can_resume(out, tmp_path / "longer.cfg", settings.overrides)
    run_config(variant_cfg, 0, 4, out / "train_log.jsonl").to_disk(tmp_path / "shorter.cfg")
    assert not can_resume(out, tmp_path / "shorter.cfg", settings.overrides)
    result = run_one("ner", 0, variant_cfg, settings)
    assert result["status"] == FINISHED, (out / "train.log").read_text()
    assert "Resuming after step 4" in (out / "train.log").read_text()
    timing = json.loads((out / "train_time.json").read_text())
    assert len(timing["segments"]) == 2 and timing["wall_s"] > 1000.0 and timing["returncode"] == 0
    # the reported training time is the dev log's, continued across the two segments (the
    # first segment's 1000 s record above is made up: the log's clock is the real one)
    log_seconds = [e["seconds"] for e in collect(Path(settings.workdir), ["ner"], [0])["ner"][0]["dev_log"]]
    assert result["train_wall_s"] == round(max(log_seconds), 2) and log_seconds == sorted(log_seconds)
    # the dev curve has the evaluations of both segments, once each
    record = collect(Path(settings.workdir), ["ner"], [0])["ner"][0]
    assert [e["step"] for e in record["dev_log"]] == [0, 4, 8]
    assert not (out / "checkpoint").exists()  # deleted once the run is scored
    # a "- task" row trains its own budget
    no_coref = run_one("no-coref", 0, derive_variant_config(load_config(corpus / "tiny.cfg", interpolate=False), "no-coref"), settings)
    assert no_coref["status"] == FINISHED
    assert load_config(run_dir(settings.workdir, "no-coref", 0) / "config.cfg")["training"]["max_steps"] == 4  # the "- task" budget
    assert [e["step"] for e in collect(Path(settings.workdir), ["no-coref"], [0])["no-coref"][0]["dev_log"]] == [0, 4]
