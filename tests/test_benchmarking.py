"""spacy_hmtl_dev.benchmarking: the measuring helpers the measurements share."""
import mmap
import re
import subprocess
import sys
import time

import spacy
from spacy.language import Language

from spacy_hmtl_dev.benchmarking import (
    RSSSampler,
    current_rss_mb,
    format_cell,
    machine_info,
    machine_line,
    md_table,
    peak_rss_mb,
    time_pipes,
)


def test_machine_info_has_the_keys_the_scripts_write():
    # metrics/train_*.json (scripts/timed.py) and the benchmark reports read these keys
    info = machine_info(import_torch=False)
    assert list(info) == ["cpu_model", "logical_cores", "usable_cores", "gpu", "hostname", "platform", "python"]
    assert 1 <= info["usable_cores"] <= info["logical_cores"]
    assert info["python"].count(".") == 2
    assert info["gpu"] is None or all(isinstance(name, str) for name in info["gpu"])
    # the one-line form of the ablation's report
    assert re.fullmatch(r".*, \d+ logical cores, Python \d+\.\d+\.\d+", machine_line())


def test_md_table():
    rows = [["x", 1.234, 12345], [None, 5, "n/a"], ["y", 0.5, 2.0]]
    assert md_table(["name", "value", "count"], rows) == (
        "| name | value | count |\n"
        "|---|---|---|\n"
        "| x | 1.2 | 12,345 |\n"
        "| – | 5 | n/a |\n"
        "| y | 0.5 | 2.0 |"
    )
    assert md_table(["a", "b"], [[1.26, 1234.5]], digits=[0, 2]) == "| a | b |\n|---|---|\n| 1 | 1,234.50 |"
    assert md_table(["a"], []) == "| a |\n|---|"
    assert format_cell(None) == "–" and format_cell(3.14159, 3) == "3.142" and format_cell("-") == "-"


def test_memory():
    assert peak_rss_mb() >= current_rss_mb() - 1  # the high-water mark is never below the RSS
    # an anonymous mapping is always fresh pages; a bytearray can reuse a large free heap
    # chunk that is already resident (seen after a long test session: no RSS growth)
    block = mmap.mmap(-1, 64 * 2**20)
    with RSSSampler() as sampler:
        for offset in range(0, len(block), 4096):  # touch every page: resident
            block[offset] = 1
        time.sleep(0.05)
    block.close()
    assert sampler.peak - sampler.start >= 48
    assert peak_rss_mb() >= sampler.peak - 1


def test_time_pipes():
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")  # has .pipe

    @Language.component("_test_mark_docs")
    def mark(doc):  # a function component: no .pipe
        doc.user_data["marked"] = True
        return doc

    nlp.add_pipe("_test_mark_docs")
    docs = [nlp.make_doc("One sentence. Two sentences."), nlp.make_doc("Three.")]
    entered = []

    class Around:
        def __init__(self, name):
            entered.append(name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            pass

    for batch_size in (None, 1):
        entered.clear()
        out, seconds = time_pipes(nlp, docs, batch_size=batch_size, around=Around)
        assert list(seconds) == ["sentencizer", "_test_mark_docs"] == entered
        assert all(t >= 0 for t in seconds.values())
        assert [len(list(doc.sents)) for doc in out] == [2, 1]
        assert all(doc.user_data["marked"] for doc in out)


def test_import_loads_neither_spacy_nor_the_package():
    # a fresh process: this one has imported them already. scripts/timed.py imports the module
    # after its child has exited; importing the development package itself imports nothing
    code = (
        "import sys, spacy_hmtl_dev.benchmarking, spacy_hmtl_dev.timed; "
        "print(' '.join(m for m in sys.modules if m.split('.')[0] in ('spacy', 'spacy_hmtl', 'thinc', 'torch', 'spacy_hmtl_dev')))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert sorted(loaded) == ["spacy_hmtl_dev", "spacy_hmtl_dev.benchmarking", "spacy_hmtl_dev.timed"]
