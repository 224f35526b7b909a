"""Batch annotation (``python -m spacy_hmtl annotate``): the JSON of a doc, JSONL and
plain-text input, resuming after an interruption (truncated output, partial last line),
malformed input, and ``n_process=2`` (forked workers, ``annotate_processes``) against 1."""
import json
import os
from pathlib import Path

import pytest
import spacy
from spacy.language import Language

from spacy_hmtl.annotate_processes import pipe_chunks, worker_count

from spacy_hmtl.annotations import set_coref_clusters, set_relation_records
from spacy_hmtl.batch_annotator import (
    AnnotateError,
    annotate_file,
    batched,
    doc_to_json,
    dumps_line,
    iter_input,
    pipe_to_lines,
)
from spacy_hmtl.cli import main


EXTRA_TEXTS = [
    "Bob Brown works for Initech in Denver .",
    "Anna Lee lives in Rome . She loves Rome .",
    "Initech hired Bob Brown .",
    "The weather was fine .",
    "",
    "Acme Corp is in Paris . John Smith likes Paris .",
]


@pytest.fixture(scope="module")
def texts(tiny_texts):
    return list(tiny_texts) + EXTRA_TEXTS


@pytest.fixture(scope="module")
def jsonl_input(tmp_path_factory, texts) -> Path:
    path = tmp_path_factory.mktemp("annotate_in") / "docs.jsonl"
    with path.open("w", encoding="utf8") as fileh:
        for i, text in enumerate(texts):
            fileh.write(json.dumps({"id": f"doc-{i}", "text": text, "source": "test"}) + "\n")
    return path


@pytest.fixture(scope="module")
def full_output(tmp_path_factory, tiny_nlp, jsonl_input) -> Path:
    """The reference: one uninterrupted run."""
    out = tmp_path_factory.mktemp("annotate_full") / "out.jsonl"
    summary = annotate_file(tiny_nlp, jsonl_input, out, batch_size=2, show_progress=False)
    assert summary.n_written == len(jsonl_input.read_text().splitlines())
    return out


def lines_of(path: Path):
    return path.read_bytes().splitlines(keepends=True)


# --- doc_to_json ------------------------------------------------------------------------


def check_span(span: dict, data: dict) -> None:
    assert data["text"][span["start_char"]:span["end_char"]] == span["text"]
    toks = data["tokens"][span["start_token"]:span["end_token"]]
    assert toks and toks[0]["start"] == span["start_char"] and toks[-1]["end"] == span["end_char"]
    assert set(span) >= {"start_char", "end_char", "start_token", "end_token", "text", "label"}


def test_doc_to_json_layers_and_offsets(tiny_nlp, tiny_texts):
    found = {"entities": 0, "mentions": 0, "relations": 0, "coref_clusters": 0}
    for doc in tiny_nlp.pipe(tiny_texts):
        data = json.loads(json.dumps(doc_to_json(doc, "x")))  # JSON-serialisable, unchanged
        assert data["id"] == "x" and data["text"] == doc.text
        assert [t["text"] for t in data["tokens"]] == [t.text for t in doc]
        assert all(data["text"][t["start"]:t["end"]] == t["text"] for t in data["tokens"])
        for span in data["entities"] + data["mentions"]:
            check_span(span, data)
            assert span["label"]
        for mention in data["mentions"]:
            assert 0.0 <= mention["score"] <= 1.0
        for rel in data["relations"]:
            check_span(rel["head"], data)
            check_span(rel["tail"], data)
            assert rel["label"] and 0.0 <= rel["score"] <= 1.0
        for cluster in data["coref_clusters"]:
            assert len(cluster) >= 2
            for span in cluster:
                check_span(span, data)
        for key in found:
            found[key] += len(data[key])
        assert [(e.start, e.end, e.label_) for e in doc.ents] == [
            (e["start_token"], e["end_token"], e["label"]) for e in data["entities"]
        ]
        assert [(r.head.start, r.tail.start, r.label) for r in doc._.relations] == [
            (r["head"]["start_token"], r["tail"]["start_token"], r["label"]) for r in data["relations"]
        ]
    # the tiny pipeline was trained on these texts: every layer has predictions
    assert all(found.values()), found


def test_doc_to_json_missing_vs_empty():
    nlp = spacy.blank("en")
    doc = nlp("Nothing ran on this .")
    data = doc_to_json(doc)
    assert "id" not in data
    assert data["entities"] is None and data["mentions"] is None
    assert data["relations"] is None and data["coref_clusters"] is None
    doc.ents = []
    doc.spans["mentions"] = []
    set_relation_records(doc, [])
    set_coref_clusters(doc, [])
    data = doc_to_json(doc, 3)
    assert data["id"] == 3
    assert data["entities"] == [] and data["mentions"] == [] and data["relations"] == [] and data["coref_clusters"] == []
    # a relation argument that is an entity carries its label; one that is not, null
    doc.ents = [spacy.tokens.Span(doc, 0, 1, label="X")]
    set_relation_records(doc, [[0, 1, 3, 4, "R", 0.25]])
    rel = doc_to_json(doc)["relations"][0]
    assert rel["head"]["label"] == "X" and rel["tail"]["label"] is None and rel["score"] == 0.25


# --- input ------------------------------------------------------------------------------


def test_jsonl_run_keeps_ids_order_and_texts(full_output, texts):
    data = [json.loads(line) for line in lines_of(full_output)]
    assert [d["id"] for d in data] == [f"doc-{i}" for i in range(len(texts))]
    assert [d["text"] for d in data] == texts
    assert data[len(texts) - 2]["tokens"] == []  # the empty text


def test_plain_text_input(tmp_path, tiny_nlp, tiny_texts, full_output):
    inp = tmp_path / "docs.txt"
    first_three = tiny_texts[:3]  # the first documents of full_output, one per line
    inp.write_text(first_three[0] + "\n\n" + first_three[1] + "\r\n" + first_three[2], encoding="utf8")
    out = tmp_path / "out.jsonl"
    annotate_file(tiny_nlp, inp, out, batch_size=2, show_progress=False)
    data = [json.loads(line) for line in lines_of(out)]
    assert [d["id"] for d in data] == [1, 3, 4]  # line numbers; the blank line is skipped
    assert [d["text"] for d in data] == list(first_three)
    reference = [json.loads(line) for line in lines_of(full_output)][:3]
    for got, ref in zip(data, reference):
        got.pop("id"), ref.pop("id")
        assert got == ref
    # --format overrides the extension: a .jsonl read as text
    as_text = tmp_path / "lines.jsonl"
    as_text.write_text('{"text": "not parsed"}\n', encoding="utf8")
    assert [r[:2] for r in iter_input(as_text, "text")] == [(1, '{"text": "not parsed"}')]


def test_jsonl_keys_and_default_ids(tmp_path):
    inp = tmp_path / "docs.ndjson"
    inp.write_text('{"body": "a b"}\n{"body": "c", "key": 7}\n', encoding="utf8")
    assert list(iter_input(inp, text_key="body", id_key="key")) == [(1, "a b", 1), (7, "c", 2)]


@pytest.mark.parametrize(
    "content,message",
    [
        ('{"text": "ok"}\n{"text": "broken"\n', ":2: not valid JSON"),
        ('{"text": "ok"}\n\n["a list"]\n', ":3: expected a JSON object"),
        ('{"id": 1}\n', ":1: id 1: no 'text' field"),
        ('{"text": 5}\n', ":1: id 1: 'text' must be a string"),
        ('{"text": "a", "id": [1]}\n', ":1: 'id' must be a string or an integer"),
        ('{"text": "a", "id": "x"}\n{"text": "b", "id": "x"}\n', ":2: id 'x': already used on line 1"),
        ('{"text": "a"}\n{"text": "a", "id": 1}\n', ":2: id 1: already used on line 1"),
    ],
)
def test_malformed_jsonl_names_file_and_line(tmp_path, content, message):
    inp = tmp_path / "bad.jsonl"
    inp.write_text(content, encoding="utf8")
    out = tmp_path / "out.jsonl"
    with pytest.raises(AnnotateError) as err:
        # the model is never loaded: the input is checked first
        annotate_file("no-such-model", inp, out, show_progress=False, on_error="stop")
    assert str(inp) + message in str(err.value)
    assert not out.exists()


def test_malformed_text_encoding(tmp_path):
    inp = tmp_path / "bad.txt"
    inp.write_bytes(b"fine\nnot \xff utf8\n")
    with pytest.raises(AnnotateError, match=r"bad\.txt:2: not valid UTF-8"):
        annotate_file("no-such-model", inp, tmp_path / "out.jsonl", show_progress=False, on_error="stop")


def test_cli_reports_malformed_input(tmp_path, capsys):
    inp = tmp_path / "bad.jsonl"
    inp.write_text('{"text": "ok"}\nnope\n', encoding="utf8")
    args = ["annotate", "no-such-model", str(inp), str(tmp_path / "o.jsonl"), "--no-progress"]
    assert main(args + ["--on-error", "stop"]) == 1
    assert f"{inp}:2: not valid JSON" in capsys.readouterr().err


def test_skipped_malformed_lines_are_listed(tmp_path, tiny_nlp, capsys):
    inp = tmp_path / "bad.jsonl"
    inp.write_text('{"text": "ok ."}\nnope\n{"text": 5}\n', encoding="utf8")
    out = tmp_path / "out.jsonl"
    summary = annotate_file(tiny_nlp, inp, out, show_progress=False)
    assert [d["id"] for d in map(json.loads, lines_of(out))] == [1]
    errors = [json.loads(line) for line in lines_of(tmp_path / "out.errors.jsonl")]
    assert [(e["line"], e["id"]) for e in errors] == [(2, None), (3, 3)]
    assert summary.exit_code == 3 and f"{inp}:2: not valid JSON" in capsys.readouterr().err
    # a file of which no line is a document is an error, whatever --on-error says
    inp.write_text("nope\n", encoding="utf8")
    with pytest.raises(AnnotateError, match="no line is a document"):
        annotate_file(tiny_nlp, inp, out, show_progress=False, overwrite=True)


# --- resume -----------------------------------------------------------------------------


def test_resume_after_truncation_mid_file(tmp_path, tiny_nlp, jsonl_input, full_output):
    full = lines_of(full_output)
    out = tmp_path / "out.jsonl"
    cut = 4
    # an interrupted run: 4 whole lines and part of the 5th
    out.write_bytes(b"".join(full[:cut]) + full[cut][: len(full[cut]) // 2])
    summary = annotate_file(tiny_nlp, jsonl_input, out, batch_size=2, show_progress=False)
    assert summary.n_skipped == cut and summary.repaired
    assert summary.n_written == len(full) - cut
    assert lines_of(out) == full  # nothing lost, nothing duplicated, same order


def test_resume_complete_output_is_a_no_op(tmp_path, tiny_nlp, jsonl_input, full_output):
    out = tmp_path / "out.jsonl"
    out.write_bytes(full_output.read_bytes())
    summary = annotate_file(tiny_nlp, jsonl_input, out, batch_size=2, show_progress=False)
    assert summary.n_written == 0 and summary.n_skipped == len(lines_of(full_output)) and not summary.repaired
    assert out.read_bytes() == full_output.read_bytes()


@pytest.mark.parametrize("partial", [b"{", b'{"id": "doc-0", "text": "John Smith works'])
def test_partial_first_line_is_dropped(tmp_path, tiny_nlp, jsonl_input, full_output, partial):
    out = tmp_path / "out.jsonl"
    out.write_bytes(partial)
    summary = annotate_file(tiny_nlp, jsonl_input, out, batch_size=2, show_progress=False)
    assert summary.repaired and summary.n_skipped == 0
    assert out.read_bytes() == full_output.read_bytes()


def test_interrupted_run_keeps_flushed_batches(tmp_path, tiny_nlp, jsonl_input, full_output):
    """Kill-safety: every batch is flushed as it is written; an interruption keeps them."""
    out = tmp_path / "out.jsonl"

    def interrupted(records):
        lines = pipe_to_lines(tiny_nlp, records, batch_size=2)
        for i, batch in enumerate(batched(lines, 2)):
            if i == 2:
                # the output already holds the two flushed batches
                assert len(lines_of(out)) == 4
                raise KeyboardInterrupt
            yield batch

    with pytest.raises(KeyboardInterrupt):
        annotate_file(tiny_nlp, jsonl_input, out, batch_size=2, show_progress=False, runner=interrupted)
    assert lines_of(out) == lines_of(full_output)[:4]
    summary = annotate_file(tiny_nlp, jsonl_input, out, batch_size=2, show_progress=False)
    assert summary.n_skipped == 4
    assert out.read_bytes() == full_output.read_bytes()


def test_output_from_another_run_is_refused(tmp_path, tiny_nlp, jsonl_input, full_output):
    out = tmp_path / "out.jsonl"
    out.write_text(dumps_line({"id": "other", "text": "x"}), encoding="utf8")
    with pytest.raises(AnnotateError, match=r"out\.jsonl:1: id 'other' is not in the input"):
        annotate_file(tiny_nlp, jsonl_input, out, show_progress=False)
    full = lines_of(full_output)
    out.write_bytes(full[0] + b"garbage\n" + full[1])
    with pytest.raises(AnnotateError, match=r"out\.jsonl:2: not a complete JSON line"):
        annotate_file(tiny_nlp, jsonl_input, out, show_progress=False)
    out.write_bytes(full[0] + full[0])
    with pytest.raises(AnnotateError, match=r"out\.jsonl:2: id 'doc-0' is written twice"):
        annotate_file(tiny_nlp, jsonl_input, out, show_progress=False)
    # --overwrite starts again
    annotate_file(tiny_nlp, jsonl_input, out, batch_size=2, show_progress=False, overwrite=True)
    assert out.read_bytes() == full_output.read_bytes()


# --- processes and the CLI --------------------------------------------------------------


def test_cli_n_process_2_equals_single_process(tmp_path, tiny_pipeline_path, jsonl_input, full_output, assert_same_jsonl, capsys):
    out = tmp_path / "out.jsonl"
    args = ["annotate", str(tiny_pipeline_path), str(jsonl_input), str(out), "--batch-size", "2", "--n-process", "2"]
    assert main(args) == 0
    assert "annotated" in capsys.readouterr().out
    assert_same_jsonl(out, full_output)


@Language.component("hmtl_test_worker_dies_on_die")
def worker_dies_on_die(doc):
    """A component whose worker process dies on one document (as the OOM killer would kill
    it); never in the test's own process."""
    if "DIE" in doc.text and os.getpid() != TEST_PID:
        os._exit(9)
    return doc


TEST_PID = os.getpid()


def pipe_calls(nlp, monkeypatch) -> list:
    """The ``n_process`` of every ``nlp.pipe`` call made in this process from now on."""
    calls = []
    pipe = nlp.pipe

    def recording_pipe(*args, **kwargs):
        calls.append(kwargs.get("n_process", 1))
        return pipe(*args, **kwargs)

    monkeypatch.setattr(nlp, "pipe", recording_pipe)
    return calls


def test_n_process_2_writes_what_one_process_writes_in_forked_workers(tmp_path, tiny_pipeline_path, texts, monkeypatch):
    """``--n-process 2`` runs the pipeline in forked workers that send back finished lines
    (this process never calls ``nlp.pipe``), in batches that are the one-process run's even
    around a text too long to annotate: OUTPUT and the errors file are the same, byte for byte."""
    nlp = spacy.load(tiny_pipeline_path)
    nlp.max_length = 80
    records = [{"id": f"doc-{i}", "text": t} for i, t in enumerate(texts)]
    records.insert(3, {"id": "long", "text": "word " * 40})
    inp = tmp_path / "in.jsonl"
    inp.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf8")
    one, two = tmp_path / "one.jsonl", tmp_path / "two.jsonl"
    first = annotate_file(nlp, inp, one, batch_size=2, show_progress=False, report_errors=False)
    calls = pipe_calls(nlp, monkeypatch)
    second = annotate_file(nlp, inp, two, batch_size=2, n_process=2, show_progress=False, report_errors=False)
    assert calls == []  # every document went through a worker's nlp.pipe
    assert (second.n_written, second.n_failed) == (first.n_written, first.n_failed) == (len(texts), 1)
    assert two.read_bytes() == one.read_bytes()
    errors = [json.loads(line) for line in (tmp_path / "two.errors.jsonl").read_text().splitlines()]
    assert [(e["id"], e["line"]) for e in errors] == [("long", 4)]


def test_a_dead_worker_stops_the_run_with_an_error_and_keeps_what_is_written(tmp_path, tiny_pipeline_path):
    nlp = spacy.load(tiny_pipeline_path)
    nlp.add_pipe("hmtl_test_worker_dies_on_die")
    texts = ["Bob Brown works for Initech ."] * 12 + ["DIE here ."] + ["Anna Lee lives in Rome ."] * 3
    inp = tmp_path / "in.jsonl"
    inp.write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in enumerate(texts)), encoding="utf8")
    out = tmp_path / "out.jsonl"
    with pytest.raises(AnnotateError, match="a worker process died"):
        annotate_file(nlp, inp, out, batch_size=2, n_process=2, show_progress=False)
    written = [json.loads(line)["id"] for line in out.read_text().splitlines()]
    assert written == list(range(len(written))) and len(written) <= 12  # in order, none after the bad one


def test_pipe_chunks_hold_one_batch_of_texts_the_pipeline_takes():
    records = [(0, "aa"), (1, "bb"), (2, "too long"), (3, "cc"), (4, "dd"), (5, "ee")]
    chunks = list(pipe_chunks(iter(records), 2, max_length=3))
    assert chunks == [[(0, "aa"), (1, "bb")], [(2, "too long"), (3, "cc"), (4, "dd")], [(5, "ee")]]
    assert list(pipe_chunks([], 2, 3)) == []
    assert list(pipe_chunks([(0, "x" * 9)], 2, 3)) == [[(0, "x" * 9)]]  # nothing to pipe: still reported
    assert worker_count(3) == 3 and worker_count(-1) == (os.cpu_count() or 1)
