"""Annotation-tool formats (issue 30): the Prodigy, Label Studio and brat readers on
hand-written samples that follow each format's documentation, their errors, and the
export of a pipeline's predictions read back (round trip, F1 = 100 per head), of the tiny
pipeline and of a pipeline trained on SciERC (on real SciERC test documents)."""
import json
import os
from pathlib import Path
from typing import List, Set, Tuple

import pytest
import spacy
from spacy.language import Language
from spacy.tokens import Doc, DocBin
from spacy.training import Example
from spacy.vocab import Vocab

import spacy_hmtl  # noqa: F401  (registers the Doc extensions)
from spacy_hmtl.annotations import (
    ENTS_OVERFLOW_KEY,
    MENTIONS_KEY,
    get_coref_clusters,
    get_relation_records,
    has_coref_annotation,
    has_mention_annotation,
    has_relation_annotation,
)
from spacy_hmtl.batch_annotator import annotate_file, doc_to_json
from spacy_hmtl.converters import ConversionError, convert_brat, convert_labelstudio, convert_prodigy
from spacy_hmtl.converters.tool_layers import link_clusters, parse_layers
from spacy_hmtl.exporters import ExportError, export_file, to_brat, to_labelstudio, to_prodigy, written_format

from helpers import write_scierc_subset

DATA = Path(__file__).parent / "data" / "converters" / "tools"


def load(path: Path) -> List[Doc]:
    return list(DocBin(store_user_data=True).from_disk(path).get_docs(Vocab()))


def texts(spans) -> List[Tuple[str, str]]:
    return [(s.text, s.label_) for s in spans]


def relations(doc: Doc) -> Set[Tuple[str, str, str]]:
    return {(r.head.text, r.label, r.tail.text) for r in doc._.relations}


def clusters(doc: Doc) -> List[List[str]]:
    return [[s.text for s in cluster] for cluster in doc._.coref_clusters]


# --- Prodigy ------------------------------------------------------------------------


def test_prodigy_reader(tmp_path):
    summary = convert_prodigy(DATA / "prodigy.jsonl", tmp_path / "out.spacy")
    docs = {doc._.hmtl_doc_key: doc for doc in load(tmp_path / "out.spacy")}
    # reject and ignore are dropped and counted; the meta id is the doc key
    assert sorted(docs) == ["ada", "curie", "empty", "overlap"]
    assert summary.notes["records answered 'reject' (dropped)"] == 1
    assert summary.notes["records answered 'ignore' (dropped)"] == 1
    curie = docs["curie"]
    assert curie.text == "Marie Curie worked at the University of Paris. She won the Nobel Prize."
    # nested "Paris" in "the University of Paris": a mention, and an overflow entity
    assert texts(curie.ents) == [("Marie Curie", "PER"), ("the University of Paris", "ORG"), ("She", "PER"),
                                 ("the Nobel Prize", "AWARD")]
    assert texts(curie.spans[ENTS_OVERFLOW_KEY]) == [("Paris", "LOC")]
    assert ("Paris", "LOC") in texts(curie.spans[MENTIONS_KEY]) and len(curie.spans[MENTIONS_KEY]) == 5
    # cross-sentence relation and coreference link
    assert len(list(curie.sents)) == 2
    assert relations(curie) == {("Marie Curie", "WORKS_FOR", "the University of Paris"), ("She", "WON", "the Nobel Prize"),
                                ("the University of Paris", "LOCATED_IN", "Paris")}
    assert clusters(curie) == [["Marie Curie", "She"]]
    # no `relations` key: not annotated for relations nor coreference (missing is not empty)
    ada = docs["ada"]
    assert texts(ada.ents) == [("Ada Lovelace", "PER"), ("Charles Babbage", "PER"), ("London", "LOC")]
    assert not has_relation_annotation(ada) and not has_coref_annotation(ada)
    # empty lists: annotated, nothing found
    empty = docs["empty"]
    assert empty.has_annotation("ENT_IOB") and list(empty.ents) == [] and len(empty.spans[MENTIONS_KEY]) == 0
    assert get_relation_records(empty) == [] and get_coref_clusters(empty) == []
    # overlapping (not nested) spans; a relation given by head/child token indices only
    # (Prodigy points at the last token of each span)
    overlap = docs["overlap"]
    assert texts(overlap.ents) == [("New York City", "GPE")]
    assert texts(overlap.spans[ENTS_OVERFLOW_KEY]) == [("City Hall", "FAC")]
    assert relations(overlap) == {("City Hall", "PART_OF", "New York City")}
    assert summary.entities_overflow == 2 and "2 overlapping" in summary.format()


def test_prodigy_layer_options(tmp_path):
    summary = convert_prodigy(DATA / "prodigy.jsonl", tmp_path / "m.spacy", span_layer="mentions", layers="mentions,coref")
    doc = {d._.hmtl_doc_key: d for d in load(tmp_path / "m.spacy")}["curie"]
    assert not doc.has_annotation("ENT_IOB") and not has_relation_annotation(doc)
    assert len(doc.spans[MENTIONS_KEY]) == 5 and clusters(doc) == [["Marie Curie", "She"]]
    assert "n/a" in summary.format()
    # coreference labels are configurable: with none, COREF is an ordinary relation
    convert_prodigy(DATA / "prodigy.jsonl", tmp_path / "r.spacy", coref_labels=())
    doc = {d._.hmtl_doc_key: d for d in load(tmp_path / "r.spacy")}["curie"]
    assert ("She", "COREF", "Marie Curie") in relations(doc) and not has_coref_annotation(doc)


def test_prodigy_auto_layers_of_a_rel_manual_export(tmp_path):
    # No COREF anywhere: the corpus is not annotated for coreference (not "no clusters").
    lines = [json.loads(line) for line in (DATA / "prodigy.jsonl").read_text().splitlines()]
    for line in lines:
        line["relations"] = [r for r in line.get("relations", []) if r["label"] != "COREF"]
    (tmp_path / "rel.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    summary = convert_prodigy(tmp_path / "rel.jsonl", tmp_path / "out.spacy")
    assert all(not has_coref_annotation(doc) for doc in load(tmp_path / "out.spacy"))
    assert any("'coref' not read" in note for note in summary.notes)


def test_link_clusters_are_connected_components():
    links = [((5, 6), (0, 1)), ((9, 10), (7, 8)), ((0, 1), (2, 3)), ((12, 13), (12, 13))]
    assert link_clusters(links) == [[(0, 1), (2, 3), (5, 6)], [(7, 8), (9, 10)], [(12, 13)]]
    assert parse_layers("auto") is None and parse_layers("coref,entities") == ("entities", "coref")
    with pytest.raises(ValueError, match="unknown layer"):
        parse_layers("entities,ents")


# --- Label Studio -------------------------------------------------------------------


def test_labelstudio_reader(tmp_path):
    summary = convert_labelstudio(DATA / "labelstudio.json", tmp_path / "out.spacy")
    docs = {doc._.hmtl_doc_key: doc for doc in load(tmp_path / "out.spacy")}
    assert sorted(docs) == ["1", "2", "4"]  # task 3 has only a prediction
    curie = docs["1"]
    assert texts(curie.spans[ENTS_OVERFLOW_KEY]) == [("Paris", "LOC")]
    # direction "left" swaps the arguments; a relation without a label is dropped
    assert relations(curie) == {("Marie Curie", "WORKS_FOR", "the University of Paris"), ("She", "WON", "the Nobel Prize"),
                                ("the University of Paris", "LOCATED_IN", "Paris")}
    assert clusters(curie) == [["Marie Curie", "She"]]
    empty = docs["2"]
    assert list(empty.ents) == [] and get_relation_records(empty) == [] and get_coref_clusters(empty) == []
    # UTF-16 offsets after an emoji; controls named entities/mentions pick the layer;
    # "bi" gives both directions; a region inside a token is expanded to the token
    emoji = docs["4"]
    assert texts(emoji.ents) == [("Tea", "DRINK"), ("Ada Lovelace", "PER")]
    assert texts(emoji.spans[MENTIONS_KEY]) == [("Tea", "DRINK"), ("Bob", "PER")]
    assert relations(emoji) == {("Ada Lovelace", "KNOWS", "Bob"), ("Bob", "KNOWS", "Ada Lovelace")}
    assert summary.notes == {
        "annotations cancelled (dropped)": 1,
        "further annotations of a task (dropped; the first is read)": 1,
        "results of type 'choices' skipped": 1,
        "relations without a label (dropped)": 1,
        "tasks without an annotation (dropped)": 1,
        "regions with UTF-16 offsets (mapped to characters)": 2,
        "regions expanded to token boundaries": 1,
    }
    convert_labelstudio(DATA / "labelstudio.json", tmp_path / "p.spacy", from_predictions=True)
    assert texts({d._.hmtl_doc_key: d for d in load(tmp_path / "p.spacy")}["3"].ents) == [("task", "THING")]


# --- brat ---------------------------------------------------------------------------


def test_brat_reader(tmp_path):
    summary = convert_brat(DATA / "brat", tmp_path / "out.spacy")
    docs = {doc._.hmtl_doc_key: doc for doc in load(tmp_path / "out.spacy")}
    assert sorted(docs) == ["curie", "lovelace", "plain"]
    curie = docs["curie"]
    assert texts(curie.spans[ENTS_OVERFLOW_KEY]) == [("Paris", "LOC")]
    assert len(curie.spans[MENTIONS_KEY]) == 5  # the discontinuous T6 is dropped
    # cross-sentence relations; R4 links the discontinuous span: dropped
    assert relations(curie) == {("Marie Curie", "WORKS_FOR", "the University of Paris"), ("She", "WON", "the Nobel Prize"),
                                ("the University of Paris", "LOCATED_IN", "Paris")}
    assert clusters(curie) == [["Marie Curie", "She"]]  # from the `*\tCOREF` equivalence
    # LitBank-style COREF lines: one cluster per cluster id
    assert clusters(docs["lovelace"]) == [["Ada Lovelace", "her"], ["Babbage", "He"]]
    plain = docs["plain"]  # an empty .ann: annotated, nothing found
    assert plain.has_annotation("ENT_IOB") and list(plain.ents) == [] and get_coref_clusters(plain) == []
    assert summary.notes == {
        "discontinuous spans dropped": 1,
        "links to a discontinuous span dropped": 1,
        "equivalences labelled 'Equiv' skipped (not a coreference label)": 1,
        "events (E lines) skipped": 1,
        "attributes (A lines) skipped": 1,
        "normalizations (N lines) skipped": 1,
        "notes (# lines) skipped": 1,
    }


# --- malformed input ----------------------------------------------------------------


def _prodigy_lines(**changes) -> str:
    lines = [json.loads(line) for line in (DATA / "prodigy.jsonl").read_text().splitlines()]
    lines[3].update(changes)
    return "".join(json.dumps(line) + "\n" for line in lines)


def _ls_tasks(change) -> str:
    tasks = json.loads((DATA / "labelstudio.json").read_text())
    change(tasks)
    return json.dumps(tasks)


MALFORMED = {
    "prodigy-truncated": ("prodigy", lambda: _prodigy_lines()[:-30], ["line 6", "truncated JSON"]),
    "prodigy-bad-answer": ("prodigy", lambda: _prodigy_lines(answer="maybe"), ["line 4", "'answer' must be one of"]),
    "prodigy-no-tokens": ("prodigy", lambda: _prodigy_lines(tokens=None) .replace('"tokens": null, ', ""),
                          ["line 4", "missing key 'tokens'"]),
    "prodigy-span-out-of-range": ("prodigy", lambda: _prodigy_lines(spans=[{"token_start": 5, "token_end": 20, "label": "X"}]),
                                  ["line 4", "'ada'", "out of range"]),
    "prodigy-text-mismatch": ("prodigy", lambda: _prodigy_lines(text="Ada Lovelace met somebody."),
                              ["line 4", "do not spell the record's 'text'"]),
    "prodigy-span-chars-mismatch": ("prodigy", lambda: _prodigy_lines(
        spans=[{"start": 1, "end": 12, "token_start": 0, "token_end": 1, "label": "PER"}]), ["line 4", "does not match its tokens"]),
    "labelstudio-bad-offsets": ("labelstudio", lambda: _ls_tasks(
        lambda t: t[0]["annotations"][1]["result"][0]["value"].update(start=3)), ["task 0 (id 1)", "does not match the task's text"]),
    "labelstudio-unknown-region": ("labelstudio", lambda: _ls_tasks(
        lambda t: t[0]["annotations"][1]["result"][5].update(to_id="zz")), ["task 0 (id 1)", "'zz' is not a labelled region"]),
    "labelstudio-bad-direction": ("labelstudio", lambda: _ls_tasks(
        lambda t: t[0]["annotations"][1]["result"][5].update(direction="up")), ["task 0", "direction must be one of"]),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_tool_input_raises_and_writes_nothing(tmp_path, case):
    fmt, content, expected = MALFORMED[case]
    source = tmp_path / f"input_{fmt}.json"
    source.write_text(content())
    convert = {"prodigy": convert_prodigy, "labelstudio": convert_labelstudio}[fmt]
    with pytest.raises(ConversionError) as err:
        convert(source, tmp_path / "out" / "result.spacy")
    for part in [source.name] + expected:
        assert part in str(err.value), str(err.value)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "file,old,new,expected",
    [
        ("curie.ann", "PER 0 11\tMarie Curie", "PER 0 11\tMarie Curry", ["curie.ann", "line 1", "does not match the .txt"]),
        ("curie.ann", "PER 0 11", "PER 0 999", ["curie.ann", "line 1", "out of range"]),
        ("curie.ann", "Arg2:T2", "Arg2:T9", ["curie.ann", "line 7", "T9 is not a text-bound annotation"]),
        ("curie.ann", "R1\tWORKS_FOR Arg1:T1", "R1\tWORKS_FOR T1", ["curie.ann", "line 7", "a relation line is"]),
        ("lovelace.ann", "COREF\tT1", "CLUSTER\tT1", ["lovelace.ann", "line 5", "unknown annotation line"]),
    ],
)
def test_brat_malformed(tmp_path, file, old, new, expected):
    import shutil

    root = tmp_path / "brat"
    shutil.copytree(DATA / "brat", root)
    text = (root / file).read_text()
    assert old in text
    (root / file).write_text(text.replace(old, new, 1))
    output = tmp_path / "out.spacy"
    output.write_bytes(b"previous")
    with pytest.raises(ConversionError) as err:
        convert_brat(root, output, overwrite=True)
    for part in expected:
        assert part in str(err.value), str(err.value)
    assert output.read_bytes() == b"previous"


def test_cli_convert_tool_formats(tmp_path, capsys):
    from spacy_hmtl.cli import main

    out = tmp_path / "out.spacy"
    assert main(["convert", "prodigy", str(DATA / "prodigy.jsonl"), str(out), "--no-progress",
                 "--span-layer", "mentions", "--layers", "mentions,relations"]) == 0
    stdout = capsys.readouterr().out
    assert "records answered 'reject' (dropped)" in stdout and "output" in stdout
    doc = load(out)[0]
    assert not doc.has_annotation("ENT_IOB") and has_mention_annotation(doc) and not has_coref_annotation(doc)
    assert main(["convert", "prodigy", str(DATA / "prodigy.jsonl"), str(out), "--overwrite", "--layers", "ents"]) == 1
    assert "unknown layer" in capsys.readouterr().err
    with pytest.raises(SystemExit) as usage:  # an option of another format is a usage error
        main(["convert", "prodigy", str(DATA / "prodigy.jsonl"), str(out), "--lang", "de"])
    assert usage.value.code == 2


# --- export and round trip ----------------------------------------------------------


def test_prodigy_export_keeps_missing_layers_apart():
    data = {"id": 7, "text": "A b", "tokens": [{"text": "A", "start": 0, "end": 1}, {"text": "b", "start": 2, "end": 3}],
            "entities": None, "mentions": None, "relations": [], "coref_clusters": [[
                {"start_char": 0, "end_char": 1, "start_token": 0, "end_token": 1, "text": "A", "label": None}]]}
    task = to_prodigy(data)
    assert "spans" not in task and task["meta"] == {"id": 7} and task["id"] == 7
    assert [t["ws"] for t in task["tokens"]] == [True, False]
    # a singleton cluster is a link of its mention to itself
    assert [(r["head"], r["child"], r["label"]) for r in task["relations"]] == [(0, 0, "COREF")]
    assert written_format(task) == "prodigy" and written_format(data) == "doc"
    data["relations"] = [{"head": data["coref_clusters"][0][0], "tail": data["coref_clusters"][0][0], "label": "COREF", "score": 1}]
    with pytest.raises(ExportError, match="coreference label"):
        to_prodigy(data)


def _score_all(nlp, examples) -> dict:
    """Each head's own scorer on the examples."""
    scores = {}
    for name in ("hmtl_ner", "hmtl_mentions", "hmtl_relations", "hmtl_coref"):
        scores.update(nlp.get_pipe(name).score(examples))
    return scores


def _annotate(nlp, texts: List[str], folder: Path, output_format: str = "doc") -> Path:
    """``nlp``'s predictions on ``texts`` (ids d0, d1..., written to FOLDER/texts.jsonl)
    in annotate's ``output_format``: FOLDER/predictions.jsonl."""
    source = folder / "texts.jsonl"
    source.write_text("".join(json.dumps({"id": f"d{i}", "text": t}) + "\n" for i, t in enumerate(texts)))
    annotate_file(nlp, source, folder / "predictions.jsonl", output_format=output_format, show_progress=False)
    return folder / "predictions.jsonl"


def test_prodigy_round_trip_of_predictions(tmp_path, tiny_nlp, tiny_texts):
    """Predictions exported with `annotate --output-format prodigy` and read back with
    `convert prodigy` score F1 = 100 against the pipeline's own output, on every head."""
    exported = _annotate(tiny_nlp, tiny_texts, tmp_path, output_format="prodigy")
    lines = [json.loads(line) for line in exported.read_text().splitlines()]
    assert [line["id"] for line in lines] == [f"d{i}" for i in range(len(tiny_texts))]
    # resuming in another format is refused
    with pytest.raises(Exception, match="written with --output-format prodigy"):
        annotate_file(tiny_nlp, tmp_path / "texts.jsonl", exported, output_format="doc", show_progress=False)
    summary = convert_prodigy(exported, tmp_path / "gold.spacy")
    assert summary.documents == len(tiny_texts)
    _assert_reads_back_predictions(tiny_nlp, tiny_texts, tmp_path / "gold.spacy")


def _assert_reads_back_predictions(nlp, texts: List[str], corpus: Path) -> None:
    """The documents of ``corpus`` (keys d0, d1...) hold what ``nlp`` predicts on
    ``texts``: F1 = 100 on every head, and the same tokens and relation records."""
    gold = {doc._.hmtl_doc_key: doc for doc in load(corpus)}
    predicted = {f"d{i}": doc for i, doc in enumerate(nlp.pipe(texts))}
    assert sorted(gold) == sorted(predicted)
    # the pipeline predicts every layer somewhere, so every head is scored
    assert any(doc.ents for doc in predicted.values())
    assert any(doc.spans[MENTIONS_KEY] for doc in predicted.values())
    assert any(doc._.relations for doc in predicted.values())
    assert any(doc._.coref_clusters for doc in predicted.values())
    examples = [Example(predicted[key], gold[key]) for key in predicted]
    for key, doc in predicted.items():
        assert gold[key].text == doc.text and [t.text for t in gold[key]] == [t.text for t in doc]
        assert sorted(map(json.dumps, doc_to_json(gold[key])["relations"])) == sorted(
            json.dumps(dict(rel, score=1.0)) for rel in doc_to_json(doc)["relations"]
        )
    scores = _score_all(nlp, examples)
    assert scores["ents_f"] == 1.0
    assert scores["mentions_f"] == 1.0
    assert scores["rel_micro_f"] == 1.0 and scores["rel_strict_f"] == 1.0
    assert scores["coref_f"] == pytest.approx(1.0)




def _export_and_read_back(fmt: str, annotated: Path, n_docs: int, folder: Path) -> Path:
    """``annotated`` exported with `export FORMAT` (its output checked) and read back
    with `convert FORMAT`: the corpus."""
    exported = folder / ("predictions" if fmt == "brat" else f"predictions.{fmt}")
    summary = export_file(fmt, annotated, exported)
    assert summary.documents == n_docs and summary.spans and summary.links
    if fmt == "labelstudio":
        tasks = json.loads(exported.read_text())
        assert [task["data"]["doc_id"] for task in tasks] == [f"d{i}" for i in range(n_docs)]
        assert all("annotations" not in task for task in tasks)
        convert_labelstudio(exported, folder / "gold.spacy", from_predictions=True)
    elif fmt == "brat":
        assert sorted(p.name for p in exported.iterdir())[:3] == ["annotation.conf", "d0.ann", "d0.txt"]
        assert "hmtl_layer Arg:<ENTITY>, Value:both|entities|mentions|arguments" in (exported / "annotation.conf").read_text()
        convert_brat(exported, folder / "gold.spacy")
    else:
        assert exported.read_text() == "".join(
            json.dumps(to_prodigy(json.loads(line)), ensure_ascii=False) + "\n" for line in annotated.read_text().splitlines()
        )
        convert_prodigy(exported, folder / "gold.spacy")
    return folder / "gold.spacy"


@pytest.fixture(scope="module")
def annotated(tmp_path_factory, tiny_nlp, tiny_texts) -> Path:
    """The tiny pipeline's predictions on the reference texts: annotate's default output."""
    return _annotate(tiny_nlp, tiny_texts, tmp_path_factory.mktemp("annotated"))


@pytest.mark.parametrize("fmt", ["labelstudio", "brat", "prodigy"])
def test_export_round_trip_of_predictions(tmp_path, tiny_nlp, tiny_texts, annotated, fmt):
    """Predictions exported with `export FORMAT` and read back with `convert FORMAT` score
    F1 = 100 against the pipeline's own output, on every head."""
    corpus = _export_and_read_back(fmt, annotated, len(tiny_texts), tmp_path)
    _assert_reads_back_predictions(tiny_nlp, tiny_texts, corpus)


# SciERC test documents the trained SciERC pipeline annotates for the round trip.
N_SCIERC_DOCS = 20


@pytest.fixture(scope="module")
def scierc_annotated(tmp_path_factory, scierc_pipeline) -> Tuple[Language, List[str], Path]:
    """The trained SciERC pipeline (session fixture), the texts of the first
    ``N_SCIERC_DOCS`` SciERC test documents, and its predictions on them."""
    folder = tmp_path_factory.mktemp("scierc_annotated")
    texts = [doc.text for doc in load(write_scierc_subset("test", N_SCIERC_DOCS, folder / "test.spacy"))]
    nlp = spacy.load(scierc_pipeline.model)
    return nlp, texts, _annotate(nlp, texts, folder)


@pytest.mark.parametrize("fmt", ["labelstudio", "brat", "prodigy"])
def test_export_round_trip_of_scierc_predictions(tmp_path, scierc_annotated, fmt):
    """Issue 30's "done when": the predictions of a pipeline trained on SciERC, on real
    SciERC test documents, exported to each tool's format and read back, score F1 = 100
    against the pipeline's own output on every head (each predicting something)."""
    nlp, texts, annotated = scierc_annotated
    corpus = _export_and_read_back(fmt, annotated, len(texts), tmp_path)
    _assert_reads_back_predictions(nlp, texts, corpus)


# --- export: formats in detail ----------------------------------------------------------


def _doc_json(text: str, ents: List[Tuple[int, int, str]], doc_id: str = "x") -> dict:
    import spacy
    from spacy.tokens import Span

    doc = spacy.blank("en")(text)
    doc.set_ents([Span(doc, s, e, label=label) for s, e, label in ents], default="outside")
    return doc_to_json(doc, doc_id)


def test_labelstudio_export_counts_utf16_and_reads_back(tmp_path):
    from spacy_hmtl.exporters.labelstudio import labelstudio_json

    data = _doc_json("I 🍵 love Ada Lovelace .", [(3, 5, "PER")])
    data["coref_clusters"] = [[data["entities"][0]]]  # a singleton: a link to itself
    task = to_labelstudio(data)
    region = task["predictions"][0]["result"][0]
    # the emoji is two UTF-16 code units: Label Studio's offsets are one more than Python's
    assert (region["value"]["start"], region["value"]["end"]) == (10, 22)
    assert region["from_name"] == "entities" and region["value"]["text"] == "Ada Lovelace"
    assert task["predictions"][0]["result"][1] == {
        "id": "r0", "type": "relation", "from_id": "s0", "to_id": "s0", "direction": "right", "labels": ["COREF"]}
    (tmp_path / "ls.json").write_bytes(labelstudio_json([task]))
    summary = convert_labelstudio(tmp_path / "ls.json", tmp_path / "out.spacy", from_predictions=True)
    doc = load(tmp_path / "out.spacy")[0]
    assert doc._.hmtl_doc_key == "x" and texts(doc.ents) == [("Ada Lovelace", "PER")]
    assert clusters(doc) == [["Ada Lovelace"]] and not has_mention_annotation(doc)
    assert summary.notes["regions with UTF-16 offsets (mapped to characters)"] == 1


def test_brat_export_fragments_labels_and_names():
    from spacy_hmtl.exporters.brat import brat_collection, file_stems

    data = _doc_json("She saw New\nYork today .", [(2, 5, "GPE")], doc_id="a/b")
    data["mentions"] = [dict(data["entities"][0], label=None)]
    brat = to_brat(data)
    # a span over a line break is written in fragments, as brat writes it
    assert brat.ann.splitlines() == [
        "T1\tSPAN 8 11;12 16\tNew York", "A1\thmtl_layer T1 mentions",
        "T2\tGPE 8 11;12 16\tNew York", "A2\thmtl_layer T2 entities",
    ]
    files = brat_collection([brat, to_brat(_doc_json("A b .", [], doc_id="a_b"))])
    assert sorted(files) == ["a_b-2.ann", "a_b-2.txt", "a_b.ann", "a_b.txt", "annotation.conf"]
    assert file_stems(["x", None, ".hidden", "X", "ok-1.2"]) == ["x", "doc-2", "hidden", "X-2", "ok-1.2"]
    data["relations"] = [{"head": data["entities"][0], "tail": data["entities"][0], "label": "LIVES IN"}]
    with pytest.raises(ExportError, match="one word"):
        to_brat(data)


def test_brat_layer_attribute_is_checked(tmp_path):
    root = tmp_path / "brat"
    root.mkdir()
    (root / "a.txt").write_text("Ada met Bob .")
    (root / "a.ann").write_text("T1\tPER 0 3\tAda\nA1\thmtl_layer T1 everywhere\n")
    with pytest.raises(ConversionError, match="line 2.*VALUE one of both, entities, mentions, arguments"):
        convert_brat(root, tmp_path / "out.spacy")
    (root / "a.ann").write_text("T1\tPER 0 3\tAda\nA1\thmtl_layer T1 mentions\nA2\tNegated T1\n")
    summary = convert_brat(root, tmp_path / "out.spacy")
    doc = load(tmp_path / "out.spacy")[0]
    # the span is a mention only, so the corpus is not annotated for entities (auto layers)
    assert not doc.has_annotation("ENT_IOB") and texts(doc.spans[MENTIONS_KEY]) == [("Ada", "PER")]
    assert summary.notes["attributes (A lines) skipped"] == 1


# --- export: the command and its errors ------------------------------------------------


def _lines(path: Path) -> List[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _write_lines(path: Path, lines: List[dict]) -> Path:
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def _break_first_span(lines: List[dict]) -> None:
    span = next(line for line in lines if line["entities"])["entities"][0]
    span["text"] = span["text"] + "x"


BAD_EXPORT_INPUTS = {
    "truncated": (lambda lines: None, lambda text: text[:-20], ["line 4", "invalid or truncated JSON"]),
    "not-an-object": (lambda lines: lines.__setitem__(1, [1, 2]), None, ["line 2", "expected a JSON object"]),
    "prodigy-task": (lambda lines: lines.__setitem__(0, to_prodigy(lines[0])), None,
                     ["line 1", "document 'd0'", "this is a Prodigy task"]),
    "missing-layer": (lambda lines: lines[2].pop("coref_clusters"), None, ["line 3", "missing key(s) 'coref_clusters'"]),
    "span-text": (_break_first_span, None, ["line 1", "is not the text at its offsets"]),
    "coref-relation": (lambda lines: lines[0]["relations"][0].update(label="COREF"), None,
                       ["line 1", "document 'd0'", "the coreference label"]),
}


@pytest.mark.parametrize("fmt", ["labelstudio", "brat"])
@pytest.mark.parametrize("case", sorted(BAD_EXPORT_INPUTS))
def test_export_malformed_input_exits_1_and_writes_nothing(tmp_path, annotated, capsys, case, fmt):
    from spacy_hmtl.cli import main

    change_lines, change_text, expected = BAD_EXPORT_INPUTS[case]
    lines = _lines(annotated)
    assert lines[0]["relations"], "the first document needs a relation"
    change_lines(lines)
    source = _write_lines(tmp_path / "bad.jsonl", lines)
    if change_text is not None:
        source.write_text(change_text(source.read_text()))
    output = tmp_path / "out" / "export"
    assert main(["export", fmt, str(source), str(output)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: {source}") and "Traceback" not in err
    for part in expected:
        assert part in err, err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("fmt", ["labelstudio", "prodigy", "brat"])
def test_export_output_rules(tmp_path, annotated, capsys, fmt):
    from spacy_hmtl.cli import main

    source = tmp_path / "predictions.jsonl"
    source.write_bytes(annotated.read_bytes())
    # never over the input
    assert main(["export", fmt, str(source), str(source), "--overwrite"]) == 1
    assert "is also an input" in capsys.readouterr().err and source.read_bytes() == annotated.read_bytes()
    output = tmp_path / "exported"
    assert main(["export", fmt, str(source), str(output)]) == 0
    assert "documents  4" in capsys.readouterr().out
    before = sorted(p.name for p in output.iterdir()) if fmt == "brat" else output.read_bytes()
    # an existing output is only replaced with --overwrite
    assert main(["export", fmt, str(source), str(output)]) == 1
    assert "exists already; pass --overwrite" in capsys.readouterr().err
    if fmt == "brat":
        (output / "stale.ann").write_text("")
        (output / "stale.txt").write_text("old")
    assert main(["export", fmt, str(source), str(output), "--overwrite"]) == 0
    after = sorted(p.name for p in output.iterdir()) if fmt == "brat" else output.read_bytes()
    assert after == before
    # no temporary file or directory is left beside the output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exported", "predictions.jsonl"]
    with pytest.raises(SystemExit) as usage:
        main(["export", "conll", str(source), str(output)])
    assert usage.value.code == 2


def test_export_brat_replaces_only_a_brat_collection(tmp_path, annotated, capsys):
    from spacy_hmtl.cli import main

    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "thesis.docx").write_text("precious")
    assert main(["export", "brat", str(annotated), str(folder), "--overwrite"]) == 1
    assert "holds thesis.docx, which is not a file of a brat collection" in capsys.readouterr().err
    assert [p.name for p in folder.iterdir()] == ["thesis.docx"]
    # a folder holding the input is never replaced
    source = folder / "predictions.jsonl"
    source.write_bytes(annotated.read_bytes())
    (folder / "thesis.docx").unlink()
    assert main(["export", "brat", str(source), str(folder), "--overwrite"]) == 1
    assert "holds an input of this command" in capsys.readouterr().err and source.exists()
    # a file where the directory should be
    assert main(["export", "brat", str(annotated), str(source), "--overwrite"]) == 1
    assert "is not a directory" in capsys.readouterr().err


def test_export_brat_failure_leaves_no_half_directory(tmp_path, annotated, monkeypatch):
    from spacy_hmtl.exporters import files

    output = tmp_path / "brat"
    # the temporary directory of a killed run (a pid that cannot exist) is removed
    stale = tmp_path / f".brat{files.TEMP_MARK}999999999-0000{files.TEMP_DIR_SUFFIX}"
    stale.mkdir()
    (stale / "d0.txt").write_text("half")
    written = []
    real = files.finish_temp

    def fail_on_third_file(fd: int, temp: str, data: bytes) -> None:
        written.append(temp)
        if len(written) == 3:
            os.close(fd)
            raise OSError("disk full")
        real(fd, temp, data)

    monkeypatch.setattr(files, "finish_temp", fail_on_third_file)
    with pytest.raises(OSError, match="disk full"):
        export_file("brat", annotated, output)
    assert len(written) == 3 and list(tmp_path.iterdir()) == []
    monkeypatch.setattr(files, "finish_temp", real)
    export_file("brat", annotated, output)
    assert (output / "d3.ann").exists() and [p.name for p in tmp_path.iterdir()] == ["brat"]
