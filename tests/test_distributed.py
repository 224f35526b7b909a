"""Distributed annotation on Dask: a LocalCluster of two worker processes (one thread each)
writes the same JSONL as the single-process run, resumes the same way, and loads the
pipeline once per worker. Skipped when dask.distributed is not installed
(``pip install 'spacy-hmtl[distributed]'``)."""
import json
import logging

import pytest

distributed = pytest.importorskip("distributed")
import dask  # noqa: E402

from spacy_hmtl.batch_annotator import annotate_file  # noqa: E402
from spacy_hmtl.cli import main  # noqa: E402
from spacy_hmtl.distributed import annotate_file_dask  # noqa: E402


EXTRA_TEXTS = [
    "Bob Brown works for Initech in Denver .",
    "Anna Lee lives in Rome . She loves Rome .",
    "Initech hired Bob Brown .",
    "",
    "Acme Corp is in Paris . John Smith likes Paris .",
]


@pytest.fixture(scope="module")
def dask_input(tmp_path_factory, tiny_texts):
    path = tmp_path_factory.mktemp("dask_in") / "docs.jsonl"
    texts = (list(tiny_texts) + EXTRA_TEXTS) * 2
    path.write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in enumerate(texts)), encoding="utf8")
    return path


@pytest.fixture(scope="module")
def single_process_output(tmp_path_factory, tiny_nlp, dask_input):
    out = tmp_path_factory.mktemp("dask_ref") / "out.jsonl"
    annotate_file(tiny_nlp, dask_input, out, batch_size=2, show_progress=False)
    return out


@pytest.fixture(scope="module")
def client():
    # Workers forked from this process start without importing spaCy and torch again
    # (minutes saved on two busy cores); the CLI's own clusters use dask's default.
    with dask.config.set({"distributed.worker.multiprocessing-method": "fork"}):
        cluster = distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",  # random port: never collides with a running dashboard
            scheduler_kwargs={"dashboard": False},
            silence_logs=logging.ERROR,
        )
    with distributed.Client(cluster) as dask_client:
        yield dask_client
    cluster.close()


def test_dask_output_equals_single_process(
    tmp_path, client, tiny_pipeline_path, dask_input, single_process_output, assert_same_jsonl
):
    out = tmp_path / "out.jsonl"
    summary = annotate_file_dask(
        tiny_pipeline_path, dask_input, out, client=client, batch_size=2, partition_size=3,
        torch_threads=1, show_progress=False,
    )
    n_docs = len(dask_input.read_text().splitlines())
    assert summary.n_written == n_docs
    assert_same_jsonl(out, single_process_output)
    # the pipeline was loaded by each worker's plugin, once, and reused by every task
    loaded = client.run(lambda: sorted(k[0] for k in __import__("spacy_hmtl.distributed").distributed._PIPELINES))
    assert len(loaded) == 2 and all(v == [str(tiny_pipeline_path.resolve())] for v in loaded.values())

    # resume on dask too: cut mid-line, rerun, same documents (the re-run batches differ,
    # so scores may differ in the last float digits: compared to 4 decimals)
    full = out.read_bytes().splitlines(keepends=True)
    reference = tmp_path / "full.jsonl"
    reference.write_bytes(b"".join(full))
    out.write_bytes(b"".join(full[:5]) + full[5][:10])
    summary = annotate_file_dask(
        tiny_pipeline_path, dask_input, out, client=client, batch_size=2, torch_threads=1, show_progress=False
    )
    assert summary.n_skipped == 5 and summary.repaired
    assert out.read_bytes().splitlines(keepends=True)[:5] == full[:5]
    assert_same_jsonl(out, reference)


def test_cli_scheduler_and_option_checks(
    tmp_path, client, tiny_pipeline_path, dask_input, single_process_output, assert_same_jsonl, capsys
):
    out = tmp_path / "out.jsonl"
    base = ["annotate", str(tiny_pipeline_path), str(dask_input), str(out), "--batch-size", "2", "--no-progress"]
    with pytest.raises(SystemExit):
        main(base + ["--dask-local-workers", "2", "--n-process", "2"])
    with pytest.raises(SystemExit):
        main(base + ["--dask-local-workers", "2", "--dask-scheduler", "tcp://127.0.0.1:1"])
    with pytest.raises(SystemExit):
        main(base + ["--dask-partition-size", "4"])
    # --dask-local-workers N starts a cluster like the fixture's (slow to start: not run here)
    assert main(base + ["--dask-scheduler", client.scheduler.address, "--dask-partition-size", "5"]) == 0
    assert "annotated" in capsys.readouterr().out
    assert_same_jsonl(out, single_process_output)


def test_cli_local_workers(tmp_path, tiny_pipeline_path, dask_input, single_process_output, assert_same_jsonl):
    out = tmp_path / "out.jsonl"
    args = ["annotate", str(tiny_pipeline_path), str(dask_input), str(out), "--batch-size", "2", "--no-progress"]
    # fork: see the client fixture (the CLI keeps dask's default start method)
    with dask.config.set({"distributed.worker.multiprocessing-method": "fork"}):
        assert main(args + ["--dask-local-workers", "2"]) == 0
    assert_same_jsonl(out, single_process_output)
