"""The benchmark's one way of comparing two speeds (``spacy_hmtl_dev.benchmark.rounds``: a
ratio per alternating round, its median and spread), the speed measurement's pairing of
each HMTL pipeline with the stock one, and the processes measurement's pieces
(``spacy_hmtl_dev.benchmark.parallel``). Every figure here is computed by hand."""
import json
import os
import subprocess
import sys
import time

import pytest

from spacy_hmtl_dev.benchmark.parallel import (
    ParallelSettings,
    alternating_rounds,
    measure_model,
    parallel_entry,
    run_batch_size,
)
from spacy_hmtl_dev.benchmark.report import PARALLEL_HEADERS, SPEED_HEADERS, parallel_rows, render_parallel, speed_rows
from spacy_hmtl_dev.benchmark.rounds import quartiles, ratio_summary, round_order, spread_text
from spacy_hmtl_dev.benchmark.run import parallel_targets
from spacy_hmtl_dev.benchmark.speed import STOCK, speed_entries, timed_rounds
from spacy_hmtl_dev.benchmarking import TreeMemorySampler, process_tree, tree_memory_mb

# --- rounds: the statistics ----------------------------------------------------------------


def test_quartiles_interpolate_between_the_sorted_values():
    # n = 5: positions 1, 2, 3 of the sorted values [1, 2, 3, 4, 5]
    assert quartiles([5.0, 1.0, 4.0, 2.0, 3.0]) == (2.0, 3.0, 4.0)
    # n = 4: positions 0.75, 1.5, 2.25 of [1, 2, 3, 4]
    assert quartiles([4.0, 3.0, 2.0, 1.0]) == (1.75, 2.5, 3.25)
    # n = 2: positions 0.25, 0.5, 0.75 of [10, 20]
    assert quartiles([20.0, 10.0]) == (12.5, 15.0, 17.5)
    assert quartiles([7.0]) == (7.0, 7.0, 7.0)
    with pytest.raises(ValueError):
        quartiles([])


def test_ratio_summary_of_five_rounds_by_hand():
    # per round 1140/1000, 1000/1000, 1320/1100, 1100/1000, 1150/1000
    s = ratio_summary([1140.0, 1000.0, 1320.0, 1100.0, 1150.0], [1000.0, 1000.0, 1100.0, 1000.0, 1000.0])
    assert s["rounds"] == [1.14, 1.0, 1.2, 1.1, 1.15]  # in round order
    # sorted: 1.0, 1.1, 1.14, 1.15, 1.2
    assert (s["median"], s["min"], s["max"], s["q1"], s["q3"], s["n_rounds"]) == (1.14, 1.0, 1.2, 1.1, 1.15, 5)
    assert spread_text(s) == "1.00–1.20 (IQR 1.10–1.15)"


def test_a_ratio_within_noise_has_a_spread_across_one():
    # 0.995x: rounds 0.98, 1.01, 0.995, 0.97, 1.02 -> sorted 0.97, 0.98, 0.995, 1.01, 1.02
    s = ratio_summary([980.0, 1010.0, 995.0, 970.0, 1020.0], [1000.0] * 5)
    assert (s["median"], s["min"], s["max"], s["q1"], s["q3"]) == (0.995, 0.97, 1.02, 0.98, 1.01)
    assert s["min"] < 1 < s["max"]
    # four rounds: the median and the quartiles fall between two ratios
    s = ratio_summary([1.0, 2.0, 3.0, 4.0], [1.0, 1.0, 1.0, 1.0])
    assert (s["median"], s["q1"], s["q3"]) == (2.5, 1.75, 3.25)


def test_ratio_summary_refuses_what_is_no_measurement():
    with pytest.raises(ValueError):
        ratio_summary([1.0, 2.0], [1.0])
    with pytest.raises(ValueError):
        ratio_summary([], [])
    with pytest.raises(ValueError):
        ratio_summary([1.0], [0.0])


def test_round_order_alternates():
    assert [round_order(r, "a", "b") for r in range(4)] == [("a", "b"), ("b", "a"), ("a", "b"), ("b", "a")]


# --- speed: each HMTL pipeline back to back with the stock one -----------------------------


def test_timed_rounds_pair_every_hmtl_pipeline_with_the_stock_one():
    calls = []
    seconds = {STOCK: iter([1.0, 2.0, 1.0, 2.0]), "hmtl_a": iter([2.0, 2.0]), "hmtl_b": iter([4.0, 8.0])}

    def time_one(key, r):
        calls.append((r, key))
        return next(seconds[key])

    times, paired = timed_rounds([STOCK, "hmtl_a", "hmtl_b"], 2, time_one)
    assert calls == [
        (0, STOCK), (0, "hmtl_a"), (0, STOCK), (0, "hmtl_b"),  # even round: stock first, pipelines in order
        (1, "hmtl_b"), (1, STOCK), (1, "hmtl_a"), (1, STOCK),  # odd round: stock second, reversed
    ]  # fmt: skip
    assert times == {STOCK: [1.0, 2.0, 1.0, 2.0], "hmtl_a": [2.0, 2.0], "hmtl_b": [4.0, 8.0]}
    assert paired == {"hmtl_a": [1.0, 2.0], "hmtl_b": [2.0, 1.0]}

    entries = speed_entries(times, paired, 1000, {STOCK: 10, "hmtl_a": 10, "hmtl_b": 10})
    # hmtl_a: 500 and 500 words/s against 1000 and 500: ratios 0.5 and 1.0
    a = entries["hmtl_a"]
    assert a["ratio_rounds"]["rounds"] == [0.5, 1.0] and a["ratio_vs_stock"] == 0.75
    assert a["median_wps"] == 500.0 and a["stock_median_wps"] == 750.0
    # hmtl_b: 250 and 125 words/s against 500 and 1000: ratios 0.5 and 0.125
    assert entries["hmtl_b"]["ratio_rounds"]["rounds"] == [0.5, 0.125]
    assert entries["hmtl_b"]["ratio_rounds"]["median"] == pytest.approx(0.3125, abs=0.001)
    assert "ratio_rounds" not in entries[STOCK] and entries[STOCK]["median_wps"] == 750.0


def test_without_the_stock_pipeline_each_is_timed_alone():
    times, paired = timed_rounds(["hmtl_a"], 3, lambda key, r: 2.0)
    assert times == {"hmtl_a": [2.0, 2.0, 2.0]} and paired == {"hmtl_a": []}
    assert speed_entries(times, paired, 100, {})["hmtl_a"]["ratio_vs_stock"] is None


def test_speed_rows_show_the_median_ratio_and_its_spread():
    times = {STOCK: [1.0, 1.0], "hmtl_a": [0.5, 1.0]}
    entries = speed_entries(times, {"hmtl_a": [1.0, 1.0]}, 1000, {})
    rows = speed_rows({"texts": {"scierc": entries}})
    assert len(rows[0]) == len(SPEED_HEADERS)
    assert rows[0][0] == STOCK and rows[0][3] == 1000.0 and rows[0][5] == "1 (reference)"
    # 2000 and 1000 words/s against 1000 and 1000
    assert rows[1][3:] == [1500.0, 1000.0, 1.5, "1.00–2.00 (IQR 1.25–1.75)", "2.00 / 1.00"]
    # a report written before the rounds were paired: the ratio of the medians
    old = {"texts": {"scierc": {STOCK: {"n_words": 10, "median_wps": 100.0}, "hmtl_a": {"n_words": 10, "median_wps": 50.0}}}}
    assert speed_rows(old)[1][5] == 0.5 and speed_rows(old)[1][6] is None


# --- parallel: N processes against one -----------------------------------------------------


def test_alternating_rounds_and_the_entry_by_hand():
    calls = []

    def run(processes, r):
        calls.append((r, processes))
        return {1: 2.0, 2: 1.0}[processes] * (1 + r)

    seconds = alternating_rounds(3, 2, run)
    assert calls == [(0, 1), (0, 2), (1, 2), (1, 1), (2, 1), (2, 2)]
    assert seconds == {1: [2.0, 4.0, 6.0], 2: [1.0, 2.0, 3.0]}
    cpu = {1: [(2.0, 0.0), (4.0, 0.0), (6.0, 0.0)], 2: [(0.5, 2.0), (0.1, 4.4), (0.5, 6.5)]}
    entry = parallel_entry(seconds, 2, 1200, cpu)
    assert entry["1"]["words_per_s"] == [600.0, 300.0, 200.0] and entry["1"]["median_wps"] == 300.0
    assert entry["2"]["median_wps"] == 600.0
    assert entry["ratio"]["rounds"] == [2.0, 2.0, 2.0] and entry["ratio"]["median"] == 2.0
    # CPU seconds per 1000 words: 1000 * (2, 4, 6) / 1200 -> median 3.3333; N: (2.5, 4.5, 7.0) -> 3.75
    assert entry["1"]["median_cpu_s_per_1k_words"] == 3.3333 and entry["2"]["median_cpu_s_per_1k_words"] == 3.75
    assert entry["2"]["cpu_parent_s"] == [0.5, 0.1, 0.5] and entry["2"]["cpu_workers_s"] == [2.0, 4.4, 6.5]


def test_run_batch_size_gives_each_process_several_batches():
    assert run_batch_size(100, 64, 2) == 12  # 100 // (4 * 2): 9 batches
    assert run_batch_size(10, 64, 2) == 1  # 10 long LitBank documents: one each
    assert run_batch_size(10_000, 64, 2) == 64
    assert run_batch_size(0, 64, 2) == 1


def test_parallel_rows_and_markdown():
    entry = parallel_entry({1: [2.0, 2.0], 2: [1.0, 1.25]}, 2, 1000, None)
    entry["batch_size"] = 12
    entry["memory"] = {"1": {"peak_rss_sum_mb": 700.0, "peak_pss_sum_mb": 690.0}, "2": {"peak_rss_sum_mb": 2000.0, "peak_pss_sum_mb": 760.4}}
    entry["same_output"] = True
    parallel = {
        "settings": {"processes": 2, "rounds": 2, "batch_size": 64, "threads": 1},
        "pipelines": {"hmtl_mixed": {"texts": {"scierc": {"annotate": entry}}}, "hmtl_broken": {"error": "exit status 1"}},
    }
    rows = parallel_rows(parallel)
    assert all(len(row) == len(PARALLEL_HEADERS) for row in rows)
    # 500 words/s against 1000 and 800: ratios 2.0 and 1.6
    assert rows[0][:9] == ["hmtl_mixed", "scierc", "annotate --n-process 2", 12, 500.0, 900.0, 1.8, "1.60–2.00 (IQR 1.70–1.90)", "2.00 / 1.60"]
    assert rows[0][9:] == [None, "700 / 2,000", "690 / 760", "yes"]
    assert rows[1][:3] == ["hmtl_broken", None, "error: exit status 1"]
    md = "\n".join(render_parallel(parallel, {"usable_cores": 2}))
    assert "## 2 processes against one" in md and "| hmtl_mixed | scierc | annotate --n-process 2 | 12 |" in md


def test_parallel_targets_pick_by_name():
    targets = {STOCK: STOCK, "hmtl_scierc": "training/scierc/model-best", "hmtl_mixed": "training/mixed/model-best"}
    assert parallel_targets(targets, "") == targets
    assert parallel_targets(targets, "mixed, stock") == {STOCK: STOCK, "hmtl_mixed": "training/mixed/model-best"}
    assert parallel_targets(targets, "litbank") == {}  # not trained: nothing to measure
    with pytest.raises(ValueError, match="unknown"):
        parallel_targets(targets, "mixd")


def test_settings_modes_are_checked():
    assert ParallelSettings(modes="pipe, annotate").mode_list() == ["pipe", "annotate"]
    with pytest.raises(ValueError, match="unknown modes"):
        ParallelSettings(modes="annotate,threads").mode_list()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_tree_memory_counts_the_children():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        deadline = time.time() + 10
        while child.pid not in process_tree(os.getpid()) and time.time() < deadline:
            time.sleep(0.05)
        assert child.pid in process_tree(os.getpid())
        alone, both = tree_memory_mb(child.pid), tree_memory_mb()
        assert alone["processes"] == 1 and both["processes"] >= 2
        assert both["rss_mb"] > alone["rss_mb"] > 1
        if both["pss_mb"] is not None:
            assert 0 < both["pss_mb"] <= both["rss_mb"] + 1
        with TreeMemorySampler(interval=0.01) as sampler:
            time.sleep(0.05)
        assert sampler.max_processes >= 2 and sampler.peak_rss_mb >= sampler.start_rss_mb
    finally:
        child.kill()
        child.wait()


def test_measure_model_runs_both_ways_with_two_processes(tmp_path, tiny_pipeline_path, tiny_texts):
    """The child's measurement end to end on the tiny pipeline: two rounds of annotate and
    nlp.pipe with one and two processes, the memory of the process tree, the same output.
    Enough texts that the workers live for many of the memory sampler's 20 ms intervals
    (with 16 texts a loaded machine once sampled the tree before the second worker existed)."""
    texts = list(tiny_texts) * 40
    info = {"tiny": {"texts": texts, "n_words": sum(len(t.split()) for t in texts)}}
    settings = ParallelSettings(rounds=2, batch_size=2, warmup_docs=2)
    result = json.loads(json.dumps(measure_model(str(tiny_pipeline_path), info, settings, tmp_path)))
    for mode in ("annotate", "pipe"):
        entry = result["texts"]["tiny"][mode]
        assert entry["ratio"]["n_rounds"] == 2 and entry["1"]["median_wps"] > 0 and entry["2"]["median_wps"] > 0
        assert len(entry["2"]["cpu_workers_s"]) == 2 and entry["1"]["cpu_workers_s"] == [0.0, 0.0]
        assert all(w > 0 for w in entry["2"]["cpu_workers_s"])  # the work was the workers'
        assert entry["memory"]["2"]["max_processes"] >= 3  # this process and its two workers
        assert entry["memory"]["2"]["peak_rss_sum_mb"] > entry["memory"]["1"]["peak_rss_sum_mb"]
    assert result["texts"]["tiny"]["annotate"]["same_output"] is True
