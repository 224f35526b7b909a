"""Reliability of the commands (issue 16): one bad record never blocks a corpus, no command
destroys its input or replaces an existing output unasked, and errors name the file.

The policy under test: a record that cannot be processed is reported (file, line, id,
reason) and, with ``--on-error skip`` (the default), left out and listed in the errors
file, the run ending with exit status 3; ``--on-error stop`` stops at it (exit status 1)
after writing the records before it. A fuzz test feeds the annotate command random
Unicode records (lone surrogates, control characters, overlong texts, broken JSON); two
more feed ``graph`` random documents (names and labels with control characters and
formula starts, broken lines) and ``evaluate`` random TEST files and output paths.
"""
import csv
import itertools
import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import networkx
import pytest
import spacy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from spacy.language import Language
from spacy.tokens import Doc, DocBin, Span
from spacy.vocab import Vocab

from spacy_hmtl import batch_annotator, pipeline_loading
from spacy_hmtl.annotations import set_relation_records
from spacy_hmtl.batch_annotator import AnnotateError, annotate_file
from spacy_hmtl.cli import main
from spacy_hmtl.converters import ConversionError, convert_litbank, convert_scierc

from helpers import read_jsonl, reference_docs, wait_for

DATA = Path(__file__).parent / "data" / "converters"
GOOD_TEXTS = ["John Smith works for Acme Corp in Boston .", "Mary Jones lives in Paris .", "Acme Corp hired Mary ."]
SMALL_MAX_LENGTH = 300
EXIT_SKIPPED = 3


@Language.component("hmtl_test_fail_on_boom")
def fail_on_boom(doc):
    """A component that fails on one document, as an unforeseen pipeline bug would."""
    if "BOOM" in doc.text:
        raise RuntimeError("this document breaks the pipeline")
    return doc


@pytest.fixture
def small_max_length(tiny_nlp, monkeypatch):
    """``tiny_nlp`` with a small ``max_length``, so that an overlong text is cheap."""
    monkeypatch.setattr(tiny_nlp, "max_length", SMALL_MAX_LENGTH)
    return tiny_nlp


@pytest.fixture
def tiny_nlp_loaded_by_cli(tiny_nlp, monkeypatch):
    """The CLI's MODEL argument loads ``tiny_nlp`` (no disk read per run)."""
    monkeypatch.setattr(pipeline_loading, "load_pipeline", lambda model, gpu_id=-1: tiny_nlp)
    return tiny_nlp


def write_jsonl(path: Path, lines) -> Path:
    """Write JSONL lines: dicts are dumped, str lines written as they are."""
    raw = [json.dumps(x, ensure_ascii=False) if isinstance(x, dict) else x for x in lines]
    path.write_bytes("".join(line + "\n" for line in raw).encode("utf8", "surrogatepass"))
    return path


def bad_records_input(tmp_path: Path) -> Path:
    return write_jsonl(
        tmp_path / "in.jsonl",
        [
            {"id": "a", "text": GOOD_TEXTS[0]},
            '{"id": "surrogate", "text": "an escaped lone surrogate \\ud800 here"}',
            {"id": "long", "text": "word " * SMALL_MAX_LENGTH},
            {"id": "b", "text": GOOD_TEXTS[1]},
        ],
    )


# --- 1. records that pass validation and then crash every run ---------------------------


def test_bad_records_are_reported_and_skipped_the_others_annotated(tmp_path, small_max_length, capsys):
    inp = bad_records_input(tmp_path)
    out = tmp_path / "out.jsonl"
    summary = annotate_file(small_max_length, inp, out, show_progress=False)  # one batch of 32
    assert [(d["id"], d["text"]) for d in read_jsonl(out)] == [("a", GOOD_TEXTS[0]), ("b", GOOD_TEXTS[1])]
    errors = read_jsonl(tmp_path / "out.errors.jsonl")
    assert [(e["file"], e["line"], e["id"]) for e in errors] == [(str(inp), 2, "surrogate"), (str(inp), 3, "long")]
    assert "lone surrogate" in errors[0]["error"] and "max_length" in errors[1]["error"]
    stderr = capsys.readouterr().err
    assert f"{inp}:2: id 'surrogate'" in stderr and f"{inp}:3: id 'long'" in stderr
    assert summary.n_failed == 2 and summary.exit_code == EXIT_SKIPPED
    # A re-run tries the two again, writes nothing twice, and lists them again.
    again = annotate_file(small_max_length, inp, out, show_progress=False)
    assert again.n_written == 0 and again.n_failed == 2 and len(read_jsonl(out)) == 2


def test_on_error_stop_keeps_the_documents_before_the_bad_record(tmp_path, small_max_length):
    inp = bad_records_input(tmp_path)
    out = tmp_path / "out.jsonl"
    with pytest.raises(AnnotateError, match=rf"{inp.name}:2: id 'surrogate': .*lone surrogate"):
        annotate_file(small_max_length, inp, out, show_progress=False, on_error="stop")
    assert not out.exists()  # stopped at validation: the bad line is known before any work
    inp = write_jsonl(tmp_path / "in2.jsonl", [{"id": "a", "text": GOOD_TEXTS[0]}, {"id": "long", "text": "x " * 200}])
    with pytest.raises(AnnotateError, match=rf"{inp.name}:2: id 'long': .*max_length"):
        annotate_file(small_max_length, inp, out, show_progress=False, on_error="stop")
    assert [d["id"] for d in read_jsonl(out)] == ["a"]


@pytest.mark.parametrize("n_process", [1, 2])
def test_failing_batch_is_retried_record_by_record(tmp_path, tiny_pipeline_path, n_process, capsys):
    nlp = spacy.load(tiny_pipeline_path)
    nlp.add_pipe("hmtl_test_fail_on_boom")
    texts = GOOD_TEXTS + ["BOOM goes this one ."] + GOOD_TEXTS
    inp = write_jsonl(tmp_path / "in.jsonl", [{"id": i, "text": t} for i, t in enumerate(texts)])
    out = tmp_path / "out.jsonl"
    summary = annotate_file(nlp, inp, out, batch_size=2, n_process=n_process, show_progress=False)
    assert [d["id"] for d in read_jsonl(out)] == [0, 1, 2, 4, 5, 6]
    (error,) = read_jsonl(tmp_path / "out.errors.jsonl")
    assert (error["line"], error["id"]) == (4, 3)
    assert "RuntimeError: this document breaks the pipeline" in error["error"]
    assert summary.exit_code == EXIT_SKIPPED


# --- 2. a command never writes over its own input ------------------------------------------


def test_convert_refuses_to_write_over_its_input(tmp_path, capsys):
    source = tmp_path / "same.json"
    shutil.copy(DATA / "scierc_3.json", source)
    before = source.read_bytes()
    assert main(["convert", "scierc", str(source), str(source), "--no-progress", "--overwrite"]) == 1
    stderr = capsys.readouterr().err
    assert str(source) in stderr and "is also an input" in stderr
    assert source.read_bytes() == before


def test_annotate_and_render_refuse_to_write_over_their_input(tmp_path, capsys):
    inp = write_jsonl(tmp_path / "in.jsonl", [{"id": 1, "text": "a b"}])
    before = inp.read_bytes()
    assert main(["annotate", "no-such-model", str(inp), str(tmp_path / "out.jsonl"), "--errors", str(inp)]) == 1
    assert main(["render", "--jsonl", str(inp), "--output", str(inp), "--overwrite"]) == 1
    stderr = capsys.readouterr().err
    assert "errors file would replace INPUT" in stderr and "is also an input" in stderr
    assert inp.read_bytes() == before


# --- 3. LitBank entities that start or end in whitespace -------------------------------------


def litbank_with_entity(tmp_path: Path, old: str, new: str) -> Path:
    root = tmp_path / "litbank"
    shutil.copytree(DATA / "litbank", root)
    ann = root / "entities" / "brat" / "tiny_b_brat.ann"
    text = ann.read_text()
    assert old in text
    ann.write_text(text.replace(old, new, 1))
    return root


def test_litbank_entity_with_surrounding_whitespace_is_trimmed(tmp_path):
    root = litbank_with_entity(tmp_path, "GPE 19 25\tBoston", "GPE 18 26\t Boston ")
    summary = convert_litbank(root, tmp_path / "out")
    (doc,) = DocBin(store_user_data=True).from_disk(tmp_path / "out" / "dev.spacy").get_docs(Vocab())
    assert ("Boston", "GPE") in [(e.text, e.label_) for e in doc.ents]
    assert summary.notes["entities trimmed of surrounding whitespace"] == 1


def test_litbank_entity_of_only_whitespace_names_file_and_line(tmp_path):
    root = litbank_with_entity(tmp_path, "GPE 19 25\tBoston", "GPE 18 19\t ")
    with pytest.raises(ConversionError, match=r"tiny_b_brat\.ann, line 2, document 'tiny_b_brat'.*only whitespace"):
        convert_litbank(root, tmp_path / "out")


# --- 4. resume detects an edited input -------------------------------------------------------


def test_resume_refuses_an_input_edited_since(tmp_path, tiny_nlp):
    inp = tmp_path / "docs.txt"
    inp.write_text("\n".join(GOOD_TEXTS) + "\n", encoding="utf8")
    out = tmp_path / "out.jsonl"
    annotate_file(tiny_nlp, inp, out, show_progress=False)
    before = out.read_bytes()
    inp.write_text("A new first line .\n" + inp.read_text(encoding="utf8"), encoding="utf8")
    edited = r"out\.jsonl:1: id 1 was annotated from another text than .*docs\.txt:1 holds now: the input was edited"
    with pytest.raises(AnnotateError, match=edited):
        annotate_file(tiny_nlp, inp, out, show_progress=False)
    assert out.read_bytes() == before
    annotate_file(tiny_nlp, inp, out, show_progress=False, overwrite=True)
    assert [d["text"] for d in read_jsonl(out)] == ["A new first line ."] + GOOD_TEXTS


def test_resume_refuses_a_jsonl_text_edited_under_the_same_id(tmp_path, tiny_nlp):
    inp = write_jsonl(tmp_path / "in.jsonl", [{"id": "x", "text": GOOD_TEXTS[0]}])
    out = tmp_path / "out.jsonl"
    annotate_file(tiny_nlp, inp, out, show_progress=False)
    write_jsonl(inp, [{"id": "x", "text": GOOD_TEXTS[1]}])
    with pytest.raises(AnnotateError, match=r"id 'x' was annotated from another text"):
        annotate_file(tiny_nlp, inp, out, show_progress=False)


# --- 6. kill -9 of annotate --n-process 2 ---------------------------------------------------


def process_children(pid: int) -> list:
    """Live child processes of ``pid`` (from /proc)."""
    children = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            state = process_state(int(entry))
            if state is not None and state[1] == pid:
                children.append(int(entry))
    return children


def process_state(pid: int):
    """(state letter, parent pid), or None when the process is gone or a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as fileh:
            fields = fileh.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return None if fields[0] in ("Z", "X") else (fields[0], int(fields[1]))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_kill_9_of_annotate_n_process_2_takes_its_workers_along(tmp_path, tiny_pipeline_path):
    inp = tmp_path / "docs.txt"
    inp.write_text((GOOD_TEXTS[0] + "\n") * 20000, encoding="utf8")
    cmd = [sys.executable, "-m", "spacy_hmtl", "annotate", str(tiny_pipeline_path), str(inp),
           str(tmp_path / "out.jsonl"), "--n-process", "2", "--batch-size", "4", "--no-progress"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    workers: list = []
    try:
        assert wait_for(lambda: len(process_children(proc.pid)) >= 2, timeout=120), "no workers started"
        workers = process_children(proc.pid)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        assert wait_for(lambda: all(process_state(pid) is None for pid in workers), timeout=20)
    finally:
        proc.kill()
        for pid in workers:  # the processes this test started, if they outlived it
            if process_state(pid) is not None:
                os.kill(pid, signal.SIGKILL)


# --- 7. converters: existing outputs and temporary files -------------------------------------


def test_convert_needs_overwrite_to_replace_an_output(tmp_path, capsys):
    output = tmp_path / "out.spacy"
    args = ["convert", "scierc", str(DATA / "scierc_3.json"), str(output), "--no-progress"]
    assert main(args) == 0
    output.write_bytes(b"previous")
    assert main(args) == 1
    assert f"{output}: exists already; pass --overwrite" in capsys.readouterr().err
    assert output.read_bytes() == b"previous"
    assert main(args + ["--overwrite"]) == 0
    assert len(list(DocBin().from_disk(output).get_docs(Vocab()))) == 3


def test_temporary_file_of_a_killed_conversion_is_removed_by_the_next(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f".out.spacy.hmtl-tmp-{int(dead.stdout)}-abc.tmp"  # what SIGKILL leaves
    stale.write_bytes(b"half a DocBin")
    convert_scierc(DATA / "scierc_3.json", tmp_path / "out.spacy")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.spacy"]


def test_sigterm_during_a_conversion_removes_the_temporary_file(tmp_path, monkeypatch):
    from spacy_hmtl.converters import common
    from spacy_hmtl.safe_io import sigterm_exits

    def terminated_while_writing(fd, temp, data):
        os.close(fd)
        os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(common, "finish_temp", terminated_while_writing)
    with pytest.raises(SystemExit) as exit_info, sigterm_exits():
        convert_scierc(DATA / "scierc_3.json", tmp_path / "out.spacy")
    assert exit_info.value.code == 128 + signal.SIGTERM
    assert list(tmp_path.iterdir()) == []


# --- 8. corrupted model files ---------------------------------------------------------------


@pytest.mark.parametrize(
    "name,problem", [("model", "truncated or corrupted"), ("cfg", "cannot read the saved settings")]
)
def test_truncated_model_file_is_named(tmp_path, tiny_pipeline_path, name, problem):
    path = tmp_path / "pipeline"
    shutil.copytree(tiny_pipeline_path, path)
    target = path / "hmtl_relations" / name
    target.write_bytes(target.read_bytes()[: len(target.read_bytes()) // 2])
    with pytest.raises(ValueError) as err:
        spacy.load(path)
    message = str(err.value)
    assert "[hmtl_relations]" in message and str(target) in message and problem in message
    assert "another configuration" not in message


# --- 9. smaller points ---------------------------------------------------------------------


def test_render_jsonl_skips_malformed_records(tmp_path, tiny_nlp, capsys):
    good = batch_annotator.doc_to_json(tiny_nlp(GOOD_TEXTS[0]), "good")
    broken_entity = dict(good, id="broken", entities=[{"label": "X"}])
    inp = write_jsonl(tmp_path / "a.jsonl", [good, {"id": 5, "text": "no tokens"}, "[1, 2]", broken_entity])
    page = tmp_path / "page.html"
    assert main(["render", "--jsonl", str(inp), "-o", str(page)]) == EXIT_SKIPPED
    stderr = capsys.readouterr().err
    assert "Traceback" not in stderr
    for where in (f"{inp}:2: id 5: no list 'tokens'", f"{inp}:3: expected a JSON object", f"{inp}:4: id 'broken'"):
        assert where in stderr
    assert page.read_text(encoding="utf8").count('class="hmtl-doc"') == 1
    assert main(["render", "--jsonl", str(inp), "-o", str(tmp_path / "p2.html"), "--on-error", "stop"]) == 1
    assert f"{inp}:2: id 5" in capsys.readouterr().err and not (tmp_path / "p2.html").exists()


def test_render_needs_overwrite_to_replace_its_output(tmp_path, tiny_nlp, capsys):
    inp = write_jsonl(tmp_path / "a.jsonl", [batch_annotator.doc_to_json(tiny_nlp(GOOD_TEXTS[0]), 1)])
    page = tmp_path / "page.html"
    page.write_text("previous")
    assert main(["render", "--jsonl", str(inp), "-o", str(page)]) == 1
    assert "exists already" in capsys.readouterr().err and page.read_text() == "previous"
    assert main(["render", "--jsonl", str(inp), "-o", str(page), "--overwrite"]) == 0


def test_scierc_json_string_with_a_raw_line_separator(tmp_path):
    record = json.loads((DATA / "scierc_3.json").read_text().splitlines()[0])
    record["doc_key"] = "a\u2028b"
    source = tmp_path / "in.json"
    source.write_text(json.dumps(record, ensure_ascii=False) + "\n", encoding="utf8")
    convert_scierc(source, tmp_path / "out.spacy")
    (doc,) = DocBin(store_user_data=True).from_disk(tmp_path / "out.spacy").get_docs(Vocab())
    assert doc._.hmtl_doc_key == "a\u2028b"


def test_unpickled_doc_reads_its_layers_without_importing_the_package(tiny_nlp):
    doc = tiny_nlp(GOOD_TEXTS[0] + " He likes it .")
    code = (
        "import pickle, sys\n"
        "assert 'spacy_hmtl' not in sys.modules\n"
        "doc = pickle.loads(sys.stdin.buffer.read())\n"
        "print(len(doc._.relations), len(doc._.coref_clusters))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], input=pickle.dumps(doc), capture_output=True, timeout=120)
    assert result.returncode == 0, result.stderr.decode()[-500:]
    assert result.stdout.split() == [str(len(doc._.relations)).encode(), str(len(doc._.coref_clusters)).encode()]


def test_unloadable_model_leaves_the_output_as_it_was(tmp_path, capsys):
    inp = write_jsonl(tmp_path / "in.jsonl", [{"id": 1, "text": "a b"}])
    out = tmp_path / "out.jsonl"
    assert main(["annotate", str(tmp_path / "no-model"), str(inp), str(out), "--no-progress"]) == 1
    assert "no-model" in capsys.readouterr().err
    assert not out.exists()
    out.write_text("kept\n")
    assert main(["annotate", str(tmp_path / "no-model"), str(inp), str(out), "--overwrite", "--no-progress"]) == 1
    assert out.read_text() == "kept\n"


# --- the fuzz test ---------------------------------------------------------------------------

ANY_CHAR = st.characters(min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=())
VALID_CHAR = st.characters(min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=("Cs",))
# (kind, payload): "good" and "surrogate" carry a text; "raw" a line that is never a JSON
# object; "control" a JSON line with a raw control character; "long" and "duplicate" nothing.
RECORD = st.one_of(
    st.tuples(st.just("good"), st.text(VALID_CHAR, max_size=60)),
    st.tuples(st.just("surrogate"), st.text(ANY_CHAR, max_size=20), st.integers(0xD800, 0xDFFF), st.booleans()),
    st.tuples(st.just("raw"), st.text(ANY_CHAR.filter(lambda c: c not in "\n}"), max_size=30)),
    st.tuples(st.just("control"), st.integers(0, 0x1F).filter(lambda c: c != 0x0A)),
    st.tuples(st.just("long")),
    st.tuples(st.just("duplicate")),
)


def fuzz_lines(records: list):
    """JSONL lines for the drawn records, and the expected outcome: the good records
    (line, id, text), the bad lines, and those of them that only the pipeline refuses."""
    lines, good, bad, late = [], [], [], []
    for i, (kind, *payload) in enumerate(records):
        line_no = i + 1
        if kind == "good":
            lines.append(json.dumps({"id": i, "text": payload[0]}, ensure_ascii=False))
            good.append((line_no, i, payload[0]))
            continue
        if kind == "duplicate" and good:
            lines.append(json.dumps({"id": good[0][1], "text": "again"}))
        elif kind == "surrogate":  # escaped ("\\udc00") or raw (then not UTF-8)
            text, surrogate, escaped = payload
            record = {"id": i, "text": text + "x" + chr(surrogate) + "x"}
            lines.append(json.dumps(record, ensure_ascii=escaped))
        elif kind == "raw":
            lines.append("{" + payload[0])
        elif kind == "control":
            lines.append('{"id": %d, "text": "a%sb"}' % (i, chr(payload[0])))
        else:  # long, or a duplicate with nothing to repeat
            lines.append(json.dumps({"id": i, "text": "ab " * (SMALL_MAX_LENGTH // 3 + 1)}))
            late.append(line_no)
        bad.append(line_no)
    return lines, good, bad, late


def test_fuzz_annotate_cli(tmp_path, small_max_length, tiny_nlp_loaded_by_cli, capsys):
    runs = itertools.count()

    @settings(max_examples=30, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(records=st.lists(RECORD, min_size=1, max_size=8))
    def check(records):
        run_dir = tmp_path / str(next(runs))
        run_dir.mkdir()
        lines, good, bad, late = fuzz_lines(records)
        inp = write_jsonl(run_dir / "in.jsonl", lines)
        out = run_dir / "out.jsonl"
        capsys.readouterr()
        code = main(["annotate", "model", str(inp), str(out), "--no-progress", "--batch-size", "3"])
        stderr = capsys.readouterr().err
        assert "Traceback" not in stderr
        if not good and not late:  # no line is a document: an error, nothing written
            assert code == 1 and f"{inp}: no line is a document" in stderr and not out.exists()
            return
        assert code == (EXIT_SKIPPED if bad else 0), stderr
        assert [(d["id"], d["text"]) for d in read_jsonl(out)] == [(i, text) for _, i, text in good]
        errors_path = run_dir / "out.errors.jsonl"
        reported = sorted(e["line"] for e in read_jsonl(errors_path)) if errors_path.exists() else []
        assert reported == bad
        for line_no in bad:
            assert f"{inp}:{line_no}: " in stderr

    check()


# --- the fuzz test, extended to graph and evaluate --------------------------------------------

# A cell a spreadsheet would run as a formula starts with one of these (OWASP).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
LABEL = st.one_of(
    st.sampled_from(["=1+1", "@SUM(A1)", "+x", "-2+", "\tT", "\rR", "ORG", "X\x00Y", "\ufffe\x1b"]),
    st.text(VALID_CHAR, min_size=1, max_size=6),
)
# (kind, payload): "doc" a document of two to five words whose first and last are linked
# entities; "surrogate" an escaped lone surrogate; "raw" a line that is never a JSON
# object; "duplicate" the first document's line again.
GRAPH_RECORD = st.one_of(
    st.tuples(st.just("doc"), st.lists(st.text(VALID_CHAR, min_size=1, max_size=8), min_size=2, max_size=5),
              LABEL, LABEL, LABEL, LABEL),
    st.tuples(st.just("surrogate"), st.integers(0xD800, 0xDFFF)),
    st.tuples(st.just("raw"), st.text(ANY_CHAR.filter(lambda c: c not in "\n}"), max_size=30)),
    st.tuples(st.just("duplicate")),
)


def graph_fuzz_lines(records: list):
    """JSONL lines for the drawn records, the number of documents and the first bad line."""
    nlp = spacy.blank("en")
    lines, first_bad = [], None
    for i, (kind, *payload) in enumerate(records):
        if kind == "doc":
            words, head_type, tail_type, relation, id_prefix = payload
            doc = Doc(nlp.vocab, words=words)
            doc.ents = [Span(doc, 0, 1, head_type), Span(doc, len(doc) - 1, len(doc), tail_type)]
            set_relation_records(doc, [[0, 1, len(doc) - 1, len(doc), relation, 0.5]])
            lines.append(batch_annotator.dumps_line(batch_annotator.doc_to_json(doc, f"{i}:{id_prefix}")))
            continue
        if kind == "surrogate":
            lines.append('{"id": %d, "text": "x\\u%04x", "tokens": []}\n' % (i, payload[0]))
        elif kind == "duplicate" and lines and first_bad is None:
            lines.append(lines[0])
        else:
            lines.append("{" + (payload[0] if payload else "") + "\n")
        first_bad = first_bad or i + 1
    return lines, len(lines) if first_bad is None else None, first_bad


def check_graph_exports(outputs: dict, n_docs: int) -> None:
    """Each export parses with its library, and no CSV cell would run as a formula."""
    assert len(read_jsonl(outputs["jsonl"])) == n_docs
    rows = list(csv.DictReader(outputs["csv"].open(encoding="utf8", newline="")))
    assert len(rows) == n_docs
    for row in rows:
        for key in ("doc_id", "head", "head_type", "relation", "tail", "tail_type"):
            assert not row[key].startswith(FORMULA_STARTS), (key, row[key])
        assert 0.0 <= float(row["score"]) <= 1.0 and int(row["support"]) == 1
    graph = networkx.read_graphml(outputs["graphml"])
    assert graph.number_of_nodes() == 2 * n_docs and graph.number_of_edges() == n_docs


def test_fuzz_graph_cli(tmp_path, capsys):
    runs = itertools.count()

    @settings(max_examples=30, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(records=st.lists(GRAPH_RECORD, min_size=1, max_size=6))
    def check(records):
        run_dir = tmp_path / str(next(runs))
        run_dir.mkdir()
        lines, n_docs, first_bad = graph_fuzz_lines(records)
        inp = run_dir / "annotated.jsonl"
        inp.write_bytes("".join(lines).encode("utf8", "surrogatepass"))
        outputs = {kind: run_dir / f"out.{kind}" for kind in ("jsonl", "csv", "graphml")}
        capsys.readouterr()
        code = main(["graph", str(inp)] + [arg for kind, path in outputs.items() for arg in (f"--{kind}", str(path))])
        stderr = capsys.readouterr().err
        assert "Traceback" not in stderr
        if first_bad is not None:  # a bad line stops the command before anything is written
            assert code == 1 and f"{inp}:{first_bad}: " in stderr, stderr
            assert not any(path.exists() for path in outputs.values())
            return
        assert code == 0, stderr
        check_graph_exports(outputs, n_docs)

    check()


TEST_KINDS = ("docbin", "empty", "json", "garbage", "missing")
OUTPUT_KINDS = (None, "new", "existing", "overwrite", "dir", "test", "model_file", "under_test")


def evaluate_fuzz_paths(run_dir: Path, model: Path, test_kind: str, out_kind, garbage: bytes):
    """The TEST file and the output of one fuzz run, made as their kinds say."""
    test = run_dir / ("test.json" if test_kind == "json" else "test.spacy")
    if test_kind in ("docbin", "empty"):
        DocBin(store_user_data=True, docs=reference_docs(Vocab()) if test_kind == "docbin" else []).to_disk(test)
    elif test_kind == "json":
        shutil.copy(DATA / "scierc_3.json", test)
    elif test_kind == "garbage":
        test.write_bytes(garbage)
    output = {
        None: None, "new": run_dir / "sub" / "scores.json", "existing": run_dir / "old.json",
        "overwrite": run_dir / "old.json", "dir": run_dir, "test": test, "model_file": model / "config.cfg",
        "under_test": test / "scores.json",
    }[out_kind]
    if out_kind in ("existing", "overwrite"):
        output.write_text("previous")
    return test, output


def test_fuzz_evaluate_cli(tmp_path, tiny_pipeline_path, tiny_nlp_loaded_by_cli, capsys):
    model = tmp_path / "model"
    shutil.copytree(tiny_pipeline_path, model)
    runs = itertools.count()

    @settings(max_examples=25, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(test_kind=st.sampled_from(TEST_KINDS), out_kind=st.sampled_from(OUTPUT_KINDS),
           garbage=st.binary(max_size=64))
    def check(test_kind, out_kind, garbage):
        run_dir = tmp_path / str(next(runs))
        run_dir.mkdir()
        test, output = evaluate_fuzz_paths(run_dir, model, test_kind, out_kind, garbage)
        before = {p: p.read_bytes() for p in [*model.rglob("*"), *run_dir.rglob("*")] if p.is_file()}
        args = ["evaluate", str(model), str(test)] + ([] if output is None else ["-o", str(output)])
        capsys.readouterr()
        code = main(args + (["--overwrite"] if out_kind == "overwrite" else []))
        stderr = capsys.readouterr().err
        assert "Traceback" not in stderr
        after = {p: p.read_bytes() for p in [*model.rglob("*"), *run_dir.rglob("*")] if p.is_file()}
        if test_kind == "docbin" and out_kind in (None, "new", "overwrite"):
            assert code == 0, stderr
            assert output is None or "ents_f" in json.loads(output.read_text(encoding="utf8"))
            assert {p: b for p, b in after.items() if p != output} == {p: b for p, b in before.items() if p != output}
            return
        output_refused = out_kind in ("existing", "dir", "test", "model_file") or (
            out_kind == "under_test" and test_kind != "missing"
        )
        assert code == 1 and f"{output if output_refused else test}: " in stderr, stderr
        assert after == before  # nothing written, no input touched

    check()
