"""Reliability, round three (issue 29): what the newer commands write and what a model file
may hold.

1. ``evaluate`` follows the output rules of the other commands: never over an input (a
   TEST file, a file of MODEL), an existing output only with ``--overwrite``, ``-o DIR``
   refused before any work, atomic writes.
2. Torch weights load as tensors only (``weights_only=True``), whatever
   ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD`` says: a pickled payload planted in a model file
   never runs.
3. A second ``annotate`` run on an OUTPUT that a run is writing stops with an error and
   changes nothing.
4. CSV cells that a spreadsheet would run as a formula are neutralised.
5. GraphML (and the rendered SVG) never hold a character that XML 1.0 forbids; every
   export parses with its library.
6. Every component's files carry SHA-256 checksums: a corrupted file is named at load time.
7. ``evaluate`` refuses a TEST that is not a DocBin corpus and warns when a head shares
   no label with the corpus.
8. A truncated encoder file is named; a ``Doc._`` extension that other code registered
   is warned about.

Each test runs through the public entry points (the CLI, ``spacy.load``), so that it also
runs, and fails, on the code before these fixes.
"""
import csv
import hashlib
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import networkx
import pytest
import spacy
import srsly
import torch
from spacy.tokens import Doc, DocBin, Span

from helpers import DOC_SPECS, ROOT, make_reference_doc, read_jsonl, reference_docs, snapshot, write_docbin, wait_for
from spacy_hmtl import pipeline_loading
from spacy_hmtl.annotations import register_extensions, set_relation_records
from spacy_hmtl.batch_annotator import doc_to_json, dumps_line
from spacy_hmtl.cli import main
from spacy_hmtl.graph.export import graphml_text, triples_to_csv
from spacy_hmtl.render import render

DATA = Path(__file__).parent / "data" / "converters"
CHECKSUMS = "checksums.sha256"
COMPONENTS = ["hmtl_encoder", "hmtl_ner", "hmtl_mentions", "hmtl_relations", "hmtl_coref"]
FORMULAS = ["=cmd|'/C calc'!A0", '@HYPERLINK("http://x.example","y")', "+SUM(1,2)", "-2+3", "-2+"]
XML_FORBIDDEN = ["\x00", "\x01", "\x08", "\x0b", "\x0c", "\x1b", "\x1f", "\ufffe", "\uffff"]
TEXT = "John Smith works for Acme Corp in Boston ."


def copy_pipeline(source: Path, tmp_path: Path) -> Path:
    path = tmp_path / "model"
    shutil.copytree(source, path)
    return path


def rewrite_checksums(directory: Path) -> None:
    """Recompute a component's ``checksums.sha256`` after a test edited its files (what
    an attacker who can write the model files can do too); nothing when it has none."""
    path = directory / CHECKSUMS
    if path.exists():
        names = [line.split("  ", 1)[1] for line in path.read_text(encoding="utf8").splitlines()]
        lines = [f"{hashlib.sha256((directory / n).read_bytes()).hexdigest()}  {n}\n" for n in names]
        path.write_text("".join(lines), encoding="utf8")


def snapshot_files(*paths: Path) -> dict:
    """Every file under ``paths`` -> its bytes."""
    files = {}
    for path in paths:
        for file in [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file()):
            files[file] = file.read_bytes()
    return files


@pytest.fixture
def gold_corpus(tmp_path) -> Path:
    """The reference documents (every layer annotated) as a DocBin."""
    return write_docbin(tmp_path / "test.spacy", reference_docs(spacy.blank("en").vocab))


# --- 1. evaluate's output rules ----------------------------------------------------------------


def test_evaluate_never_writes_over_an_input(tmp_path, tiny_pipeline_path, gold_corpus, capsys):
    model = copy_pipeline(tiny_pipeline_path, tmp_path)
    before = snapshot_files(model, gold_corpus)
    for output in (gold_corpus, model / "config.cfg", model / "hmtl_ner" / "model"):
        assert main(["evaluate", str(model), str(gold_corpus), "-o", str(output), "--overwrite"]) == 1
        stderr = capsys.readouterr().err
        assert f"{output}: is also an input" in stderr and "Traceback" not in stderr
    assert snapshot_files(model, gold_corpus) == before
    spacy.load(model)  # still a pipeline


def test_evaluate_needs_overwrite_to_replace_its_output(tmp_path, tiny_pipeline_path, gold_corpus, capsys):
    output = tmp_path / "scores.json"
    output.write_text("previous")
    args = ["evaluate", str(tiny_pipeline_path), str(gold_corpus), "-o", str(output)]
    assert main(args) == 1
    assert f"{output}: exists already; pass --overwrite" in capsys.readouterr().err
    assert output.read_text() == "previous"
    assert main(args + ["--overwrite"]) == 0
    assert "ents_f" in json.loads(output.read_text(encoding="utf8"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scores.json", "test.spacy"]  # no temporary file


def test_evaluate_output_directory_fails_before_any_work(tmp_path, gold_corpus, monkeypatch, capsys):
    loaded = []
    monkeypatch.setattr(pipeline_loading, "load_pipeline", lambda model, gpu_id=-1: loaded.append(model))
    for output, problem in ((tmp_path, "is a directory"), (gold_corpus / "scores.json", "is a file, not a directory")):
        assert main(["evaluate", "some-model", str(gold_corpus), "-o", str(output)]) == 1
        stderr = capsys.readouterr().err
        assert f"{output}: " in stderr and problem in stderr and "Traceback" not in stderr
    assert loaded == []  # refused before the model was loaded


def test_evaluate_write_that_fails_keeps_the_old_output(tmp_path, tiny_pipeline_path, gold_corpus, monkeypatch, capsys):
    from spacy_hmtl import safe_io

    def disk_full(fd, temp, data):
        os.close(fd)
        raise OSError(28, "No space left on device")

    output = tmp_path / "scores.json"
    output.write_text("previous")
    monkeypatch.setattr(safe_io, "finish_temp", disk_full)
    assert main(["evaluate", str(tiny_pipeline_path), str(gold_corpus), "-o", str(output), "--overwrite"]) == 1
    captured = capsys.readouterr()
    assert "No space left" in captured.err and "entities (hmtl_ner)" in captured.out  # the scores are still printed
    assert output.read_text() == "previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scores.json", "test.spacy"]


# --- 2. weights load as tensors only -------------------------------------------------------------


class _Payload:
    """Pickled, it calls ``open(marker, "w")`` when unpickled: the marker file is the sign
    that loading ran code from the model file."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def plant_payload(model_file: Path, marker: Path) -> None:
    """Replace the torch state of every shim in a thinc model file by a pickled payload."""
    msg = srsly.msgpack_loads(model_file.read_bytes())
    planted = 0
    for shims in msg["shims"]:
        for i, shim_bytes in enumerate(shims):
            shim = srsly.msgpack_loads(shim_bytes)
            buffer = io.BytesIO()
            torch.save({"weight": _Payload(marker)}, buffer)
            shim["state"] = buffer.getvalue()
            shims[i] = srsly.msgpack_dumps(shim)
            planted += 1
    assert planted
    model_file.write_bytes(srsly.msgpack_dumps(msg))


def test_planted_pickle_payload_never_runs(tmp_path, tiny_pipeline_path, monkeypatch):
    model = copy_pipeline(tiny_pipeline_path, tmp_path)
    marker = tmp_path / "payload-ran"
    target = model / "hmtl_ner" / "model"
    plant_payload(target, marker)
    rewrite_checksums(target.parent)  # the checksums are no defence against whoever wrote the file
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    with pytest.raises(ValueError) as err:
        spacy.load(model)
    assert not marker.exists()
    message = str(err.value)
    assert "[hmtl_ner]" in message and str(target) in message and "objects other than tensors" in message


def test_setup_requires_a_torch_that_loads_weights_only():
    (floor,) = re.findall(r'"torch>=([0-9.]+)"', (ROOT / "setup.py").read_text(encoding="utf8"))
    assert tuple(int(part) for part in floor.split(".")[:2]) >= (2, 4)


# --- 3. one run at a time on an OUTPUT --------------------------------------------------------------


def has_a_line(path: Path) -> bool:
    return path.exists() and b"\n" in path.read_bytes()


@pytest.mark.skipif(not hasattr(signal, "SIGSTOP"), reason="needs SIGSTOP")
def test_second_annotate_run_on_the_same_output_is_refused(tmp_path, tiny_pipeline_path, capsys):
    inp = tmp_path / "docs.txt"
    inp.write_text((TEXT + "\n") * 1000, encoding="utf8")
    out = tmp_path / "out.jsonl"
    args = ["annotate", str(tiny_pipeline_path), str(inp), str(out), "--batch-size", "2", "--no-progress"]
    first = subprocess.Popen([sys.executable, "-m", "spacy_hmtl", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert wait_for(lambda: has_a_line(out), timeout=120), "the first run wrote nothing"
        first.send_signal(signal.SIGSTOP)  # frozen mid-run: it holds OUTPUT
        before = out.read_bytes()
        assert main(args) == 1
        stderr = capsys.readouterr().err
        assert f"{out}: another run is writing this output" in stderr and "Traceback" not in stderr
        assert out.read_bytes() == before  # the second run changed nothing
        first.send_signal(signal.SIGCONT)
        _, first_err = first.communicate(timeout=300)
    finally:
        first.send_signal(signal.SIGCONT)
        first.kill()
    assert first.returncode == 0, first_err.decode()[-2000:]
    assert [d["id"] for d in read_jsonl(out)] == list(range(1, 1001))  # the first run was unaffected
    assert sorted(p.name for p in tmp_path.iterdir()) == ["docs.txt", "out.jsonl"]  # its lock is gone


def test_held_lock_names_the_output_and_a_killed_holder_releases_it(tmp_path, tiny_nlp, monkeypatch, capsys):
    from spacy_hmtl.safe_io import output_lock

    monkeypatch.setattr(pipeline_loading, "load_pipeline", lambda model, gpu_id=-1: tiny_nlp)
    inp = tmp_path / "docs.txt"
    inp.write_text(TEXT + "\n", encoding="utf8")
    out = tmp_path / "out.jsonl"
    args = ["annotate", "model", str(inp), str(out), "--no-progress"]
    with output_lock(out):
        assert main(args) == 1
    assert f"another run is writing this output (process {os.getpid()}" in capsys.readouterr().err
    assert not out.exists()
    # A holder killed by SIGKILL leaves its lock file behind; the kernel released the lock.
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys; from spacy_hmtl.safe_io import output_lock\n"
         "with output_lock(sys.argv[1]):\n    print('locked', flush=True); sys.stdin.read()", str(out)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout.readline().strip() == b"locked"
        assert main(args) == 1
        holder.kill()
        holder.wait(timeout=30)
    finally:
        holder.kill()
    assert main(args) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["docs.txt", "out.jsonl"]


# --- 4 and 5. exports that are safe to open and parse ----------------------------------------------


def formula_doc(nlp, words, doc_labels=("PER", "ORG"), relation="Work_For") -> Doc:
    """A doc whose first and last words are entities, linked by a relation."""
    doc = Doc(nlp.vocab, words=words)
    doc.ents = [Span(doc, 0, 1, doc_labels[0]), Span(doc, len(doc) - 1, len(doc), doc_labels[1])]
    set_relation_records(doc, [[0, 1, len(doc) - 1, len(doc), relation, 0.75]])
    return doc


def run_graph(tmp_path: Path, lines, capsys):
    """``graph`` over JSONL ``lines``, every output asked for: (exit status, stderr, outputs)."""
    inp = tmp_path / "annotated.jsonl"
    inp.write_bytes("".join(lines).encode("utf8", "surrogatepass"))
    outputs = {kind: tmp_path / f"graphs.{kind}" for kind in ("jsonl", "csv", "graphml")}
    args = ["graph", str(inp)] + [arg for kind, path in outputs.items() for arg in (f"--{kind}", str(path))]
    code = main(args + ["--overwrite"])
    return code, capsys.readouterr().err, outputs


def test_csv_cells_that_a_spreadsheet_would_run_are_neutralised(tmp_path, capsys):
    nlp = spacy.blank("en")
    docs = [
        ("-2+3", formula_doc(nlp, [FORMULAS[0], "likes", FORMULAS[1]], ("+PER", "@ORG"), "=1+1")),
        (7, formula_doc(nlp, [FORMULAS[2], "and", FORMULAS[3], FORMULAS[4]])),
    ]
    code, stderr, outputs = run_graph(tmp_path, [dumps_line(doc_to_json(d, i)) for i, d in docs], capsys)
    assert code == 0, stderr
    rows = list(csv.DictReader(outputs["csv"].open(encoding="utf8", newline="")))
    assert [(r["doc_id"], r["head"], r["head_type"], r["relation"], r["tail"], r["tail_type"]) for r in rows] == [
        ("'-2+3", "'" + FORMULAS[0], "'+PER", "'=1+1", "'" + FORMULAS[1], "'@ORG"),
        ("7", "'" + FORMULAS[2], "PER", "Work_For", "'" + FORMULAS[4], "ORG"),
    ]
    # the numbers the export computes stay numbers
    assert [(r["head_id"], r["tail_id"], float(r["score"]), r["support"]) for r in rows] == [
        ("0", "1", 0.75, "1"), ("0", "1", 0.75, "1")
    ]
    # TAB and CR first (OWASP's rule) too
    graph = {"nodes": [{"id": 0, "name": "\tcmd", "type": "\rX", "kind": "nominal", "mentions": []},
                       {"id": 1, "name": "ok", "type": None, "kind": "nominal", "mentions": []}],
             "edges": [{"head": 0, "tail": 1, "label": "r", "score": 0.5, "max_score": 0.5, "support": []}]}
    (row,) = csv.DictReader(io.StringIO(triples_to_csv([("d", graph)]), newline=""))
    assert (row["head"], row["head_type"]) == ("'\tcmd", "'\rX")


def test_graphml_holds_no_character_that_xml_forbids(tmp_path, capsys):
    nlp = spacy.blank("en")
    names = [f"A{char}B" for char in XML_FORBIDDEN]
    docs = [formula_doc(nlp, [name, "likes", "C\x02D"], ("P\x00", "O"), "R\x1b") for name in names]
    lines = [dumps_line(doc_to_json(doc, f"doc\x07{i}")) for i, doc in enumerate(docs)]
    code, stderr, outputs = run_graph(tmp_path, lines, capsys)
    assert code == 0, stderr
    graph = networkx.read_graphml(outputs["graphml"])  # well-formed
    assert sorted(data["name"] for _, data in graph.nodes(data=True) if data["name"].startswith("A")) == sorted(
        "A\ufffdB" for _ in names
    )
    assert {data["label"] for _, _, data in graph.edges(data=True)} == {"R\ufffd"}
    assert len(list(csv.DictReader(outputs["csv"].open(encoding="utf8", newline="")))) == len(names)
    records = read_jsonl(outputs["jsonl"])
    assert [r["graph"]["nodes"][0]["name"] for r in records] == names  # JSON keeps every character
    # a lone surrogate (only an escaped one gets through JSON) is refused with its line ...
    bad = lines + ['{"id": "s", "text": "x\\ud800", "tokens": []}\n']
    (tmp_path / "bad").mkdir()
    code, stderr, _ = run_graph(tmp_path / "bad", bad, capsys)
    assert code == 1 and f"annotated.jsonl:{len(bad)}: " in stderr and "lone surrogate" in stderr
    assert "Traceback" not in stderr
    # ... and replaced when a graph built in Python holds one
    graph = {"nodes": [{"id": 0, "name": "x\ud800", "type": "T\uffff", "kind": "nominal", "mentions": []}],
             "edges": []}
    path = tmp_path / "direct.graphml"
    path.write_text(graphml_text([("d\udfff", graph)]), encoding="utf8")
    assert networkx.read_graphml(path).nodes["d\ufffd:0"]["name"] == "x\ufffd"


def test_rendered_svg_is_well_formed_xml():
    data = doc_to_json(formula_doc(spacy.blank("en"), ["A\x00B", "likes", "C\x1bD"]), "d\x01")
    page = render(data)
    svgs = re.findall(r"<svg.*?</svg>", page, flags=re.S)
    assert svgs
    for svg in svgs:
        ET.fromstring(svg)


# --- 6. checksums ---------------------------------------------------------------------------------


def test_every_component_saves_the_checksums_of_its_files(tiny_pipeline_path):
    for name in COMPONENTS:
        directory = tiny_pipeline_path / name
        listed = {}
        for line in (directory / CHECKSUMS).read_text(encoding="utf8").splitlines():
            digest, file_name = line.split("  ", 1)  # sha256sum's format
            listed[file_name] = digest
        assert sorted(listed) == ["cfg", "model"]
        for file_name, digest in listed.items():
            assert hashlib.sha256((directory / file_name).read_bytes()).hexdigest() == digest


@pytest.mark.parametrize("name", ["hmtl_ner", "hmtl_encoder"])
def test_overwritten_bytes_in_a_model_file_are_named(tmp_path, tiny_pipeline_path, name):
    model = copy_pipeline(tiny_pipeline_path, tmp_path)
    target = model / name / "model"
    data = bytearray(target.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 200] = bytes(b ^ 0xFF for b in data[middle : middle + 200])
    target.write_bytes(bytes(data))
    with pytest.raises(ValueError) as err:
        spacy.load(model)
    message = str(err.value)
    assert f"[{name}]" in message and str(target) in message and "truncated or corrupted" in message


def test_pipeline_saved_without_checksums_loads_as_before(tmp_path, tiny_pipeline_path, tiny_nlp, tiny_texts):
    model = copy_pipeline(tiny_pipeline_path, tmp_path)
    for path in model.glob(f"*/{CHECKSUMS}"):
        path.unlink()
    nlp = spacy.load(model)
    assert [snapshot(doc) for doc in nlp.pipe(tiny_texts)] == [snapshot(doc) for doc in tiny_nlp.pipe(tiny_texts)]


# --- 7. evaluate's inputs ----------------------------------------------------------------------------


def test_evaluate_refuses_a_test_file_that_is_not_a_docbin(tmp_path, tiny_pipeline_path, capsys):
    json_corpus = tmp_path / "test.json"
    shutil.copy(DATA / "scierc_3.json", json_corpus)
    disguised = tmp_path / "disguised.spacy"
    shutil.copy(DATA / "scierc_3.json", disguised)
    empty = tmp_path / "empty.spacy"
    DocBin().to_disk(empty)
    output = tmp_path / "scores.json"
    for path, problem in ((json_corpus, "not a .spacy file"), (disguised, "not a DocBin"), (empty, "no documents")):
        assert main(["evaluate", str(tiny_pipeline_path), str(path), "-o", str(output)]) == 1
        stderr = capsys.readouterr().err
        assert f"{path}: " in stderr and problem in stderr
        assert not output.exists()


def test_evaluate_warns_when_a_head_shares_no_label_with_the_corpus(tmp_path, tiny_pipeline_path, capsys):
    vocab = spacy.blank("en").vocab
    other = []
    for words, starts, ents, mentions, relations, clusters in DOC_SPECS:
        ents = [(s, e, "PER") for s, e, _ in ents]
        relations = [(*r[:4], "Work_For") for r in relations]
        other.append(make_reference_doc(vocab, (words, starts, ents, mentions, relations, clusters)))
    corpus = write_docbin(tmp_path / "conll04_like.spacy", other)
    assert main(["evaluate", str(tiny_pipeline_path), str(corpus)]) == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning:")]
    assert [line.split(":")[1].strip() for line in warnings] == ["hmtl_ner", "hmtl_relations"]
    assert "PER" in warnings[0] and "Method" in warnings[0] and "share none" in warnings[0]


def test_evaluate_on_its_own_labels_does_not_warn(tiny_pipeline_path, gold_corpus, capsys):
    assert main(["evaluate", str(tiny_pipeline_path), str(gold_corpus)]) == 0
    assert "warning" not in capsys.readouterr().err


# --- 8. smaller points --------------------------------------------------------------------------------


@pytest.mark.parametrize("with_checksums", [True, False])
def test_truncated_encoder_model_file_is_named(tmp_path, tiny_pipeline_path, with_checksums):
    model = copy_pipeline(tiny_pipeline_path, tmp_path)
    if not with_checksums:  # saved before checksums existed
        (model / "hmtl_encoder" / CHECKSUMS).unlink(missing_ok=True)
    target = model / "hmtl_encoder" / "model"
    target.write_bytes(target.read_bytes()[: len(target.read_bytes()) // 2])
    with pytest.raises(ValueError) as err:
        spacy.load(model)
    message = str(err.value)
    assert "[hmtl_encoder]" in message and str(target) in message and "truncated or corrupted" in message
    assert "another configuration" not in message


@pytest.fixture
def foreign_relations_extension():
    """``Doc._.relations`` registered by other code (restored to spacy_hmtl's afterwards)."""
    Doc.set_extension("relations", default="not the pipe's", force=True)
    try:
        yield
    finally:
        Doc.remove_extension("relations")
        register_extensions()


def test_extension_registered_by_other_code_is_warned_about(foreign_relations_extension, tiny_pipeline_path):
    with pytest.warns(UserWarning, match=r"Doc\._\.relations .*get_relation_records"):
        nlp = spacy.load(tiny_pipeline_path)
    doc = nlp(TEXT)
    assert doc._.relations == "not the pipe's"
    assert doc._.hmtl_relations_data is not None  # the pipe's output is still there


def test_extension_registered_before_the_import_is_warned_about():
    code = (
        "import warnings\n"
        "warnings.simplefilter('always')\n"
        "from spacy.tokens import Doc\n"
        "Doc.set_extension('relations', default='mine')\n"
        "import spacy_hmtl\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Doc._.relations" in result.stderr and "get_relation_records" in result.stderr
