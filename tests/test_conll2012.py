"""The CoNLL-2012 converter on small synthetic ``*_conll`` files (OntoNotes columns; no
licensed data): entities, coreference, tags, document parts, directories, the command,
malformed input with file + line + problem, and an NER + mentions + coref pipeline
(configs/litbank.cfg) that trains and evaluates on the converted sample."""
import json
import re
from pathlib import Path

import pytest
import spacy
from spacy.cli.evaluate import evaluate
from spacy.cli.train import train
from spacy.tokens import DocBin

import spacy_hmtl  # noqa: F401  (registers the Doc extensions)
from spacy_hmtl.cli import main
from spacy_hmtl.converters import ConversionError, convert_conll2012, read_conll2012
from spacy_hmtl.graph import entity_graph, resolve_text

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).parent / "data" / "conll2012"
NW = DATA / "nw" / "synth_0001_gold_conll"


def read_docs(path):
    return list(DocBin(store_user_data=True).from_disk(path).get_docs(spacy.blank("en").vocab))


def test_reads_entities_coreference_tags_and_parts():
    docs = {doc._.hmtl_doc_key: doc for doc in read_conll2012(NW)}
    assert list(docs) == ["nw/synth/00/synth_0001_0", "nw/synth/00/synth_0001_1"]
    doc = docs["nw/synth/00/synth_0001_0"]
    assert [s.text for s in doc.sents] == [
        "John Smith works for Acme Corp in Boston .", "He founded it in 1990 .", "Smith likes the city ."
    ]
    assert [(e.text, e.label_) for e in doc.ents] == [
        ("John Smith", "PERSON"), ("Acme Corp", "ORG"), ("Boston", "GPE"), ("1990", "DATE"), ("Smith", "PERSON")
    ]
    assert [(s.text, s.label_) for s in doc.spans["mentions"]] == [(e.text, e.label_) for e in doc.ents]
    assert [[m.text for m in c] for c in doc._.coref_clusters] == [
        ["John Smith", "He", "Smith"], ["Acme Corp", "it"], ["Boston", "the city"]
    ]
    assert [t.tag_ for t in doc[:3]] == ["NNP", "NNP", "VBZ"]
    nested = docs["nw/synth/00/synth_0001_1"]  # "(6|(4)" on "Her": nested mentions
    assert [[m.text for m in c] for c in nested._.coref_clusters] == [
        ["Mary Jones", "She", "Her"], ["Paris", "Paris"], ["Her brother"]
    ]
    assert ("Eiffel Tower", "FAC") in [(e.text, e.label_) for e in nested.ents]
    # gold graph and resolved text from the tags: "Her" is PRP$
    assert [n.name for n in entity_graph(nested).nodes][:2] == ["Mary Jones", "Paris"]
    assert "Mary Jones's brother visited" in resolve_text(nested).text


def test_convert_command_on_a_directory(tmp_path, capsys):
    out = tmp_path / "onto.spacy"
    assert main(["convert", "conll2012", str(DATA), str(out), "--no-progress"]) == 0
    summary = capsys.readouterr().out
    assert "documents  3" in summary and "clusters   8 (18 mentions)" in summary
    docs = read_docs(out)
    assert [d._.hmtl_doc_key for d in docs] == [
        "bc/synth/00/synth_0002_0", "nw/synth/00/synth_0001_0", "nw/synth/00/synth_0001_1"
    ]
    assert docs[0].text.startswith("Acme Corp ( ACME ) hired Mary Jones . They")  # -LRB- and /. mapped
    assert main(["convert", "conll2012", str(DATA), str(out), "--no-progress"]) == 1
    assert "exists already" in capsys.readouterr().err
    assert main(["convert", "conll2012", str(NW), str(NW), "--no-progress", "--overwrite"]) == 1
    assert "is also an input" in capsys.readouterr().err
    summary = convert_conll2012(NW, tmp_path, overwrite=True)  # a directory: <input name>.spacy
    assert summary.outputs == [str(tmp_path / "synth_0001_gold_conll.spacy")]


def line_of(lines, word):
    """The 1-based number of the first token line whose word is `word`."""
    hits = [i for i, line in enumerate(lines) if not line.startswith("#") and line.split()[3:4] == [word]]
    return hits[0] + 1


def edit(word, column, value):
    """A change of the file: set one column of the token line of `word`."""

    def change(lines):
        lineno = line_of(lines, word)
        columns = lines[lineno - 1].split()
        columns[column] = value
        return lines[:lineno - 1] + ["   ".join(columns)] + lines[lineno:]

    return change


def reshape(word, keep=None, extra=()):
    """A change of the file: keep `keep` columns of the line of `word`, add `extra` ones."""

    def change(lines):
        lineno = line_of(lines, word)
        columns = lines[lineno - 1].split()[:keep] + list(extra)
        return lines[:lineno - 1] + ["   ".join(columns)] + lines[lineno:]

    return change


# (name, change, the word on the line the error names or "#begin" for the document's first
# line, the problem)
MALFORMED = [
    ("ragged columns", reshape("works", extra=["*"]), "works", "ragged columns: 14 columns where this sentence has 13"),
    ("too few columns", reshape("likes", keep=8), "likes", "expected at least 12 columns (CoNLL-2012), found 8"),
    ("bad entity field", edit("Boston", 10, "(GPE*)*"), "Boston", "malformed named-entity field '(GPE*)*'"),
    ("entity never closed", edit("Boston", 10, "(GPE*"), "Boston",
     "named entity GPE is not closed by the end of its sentence"),
    ("entity closes unopened", edit("works", 10, "*)"), "works", "named entity closes ('*)') but none is open"),
    ("entities nest", edit("Smith", 10, "(NORP*"), "Smith", "named entity NORP opens inside PERSON"),
    ("bad coref field", edit("works", -1, "(x)"), "works", "malformed coreference field '(x)'"),
    ("coref closes unopened", edit("works", -1, "9)"), "works",
     "coreference mention of cluster 9 closes but was never opened"),
    ("coref never closed", edit("works", -1, "(9"), "works", "coreference mention of cluster 9 is never closed"),
    ("mention in two clusters", edit("He", -1, "(1)|(2)"), "#begin",
     "coreference mention [9, 10) is in clusters 1 and 2"),
    ("word index", edit("works", 2, "7"), "works", "word index '7' should be 2"),
    ("document id", edit("works", 0, "nw/other"), "works",
     "document id 'nw/other' differs from the '#begin document' name"),
    ("part number", edit("works", 1, "3"), "works", "part number '3' differs"),
    ("no end", lambda ls: [line for line in ls if not line.startswith("#end")], "#begin",
     "'#begin document' inside document"),
    ("truncated", lambda ls: ls[:line_of(ls, "likes")], "#begin", "is not closed by '#end document' (truncated file?)"),
    ("token outside a document", lambda ls: ls[1:], "John", "token line outside '#begin document'"),
    ("bad begin line", lambda ls: ["#begin document"] + ls[1:], "#begin", "malformed '#begin document' line"),
]


@pytest.mark.parametrize("name,change,where,problem", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_input_names_file_line_and_problem(tmp_path, name, change, where, problem):
    lines = NW.read_text(encoding="utf8").split("\n")
    bad = change(lines)
    path = tmp_path / "bad_gold_conll"
    path.write_text("\n".join(bad), encoding="utf8")
    out = tmp_path / "out.spacy"
    with pytest.raises(ConversionError) as info:
        convert_conll2012(path, out)
    message = str(info.value)
    assert message.startswith(str(path)) and problem in message, message
    if where == "#begin":  # the '#begin document' line of the document (the second one for "no end")
        begins = [i + 1 for i, line in enumerate(bad) if line.startswith("#begin")]
        expected = begins[1] if name == "no end" else begins[0]
    else:
        expected = line_of(bad, where)
    assert re.search(f", line {expected}[,:]", message), message
    assert not out.exists()  # atomic: nothing written


def test_other_input_problems(tmp_path):
    with pytest.raises(ConversionError, match="file not found"):
        list(read_conll2012(tmp_path / "missing_gold_conll"))
    with pytest.raises(ConversionError, match="no \\*_conll files"):
        list(read_conll2012(tmp_path))
    (tmp_path / "empty_gold_conll").write_text("\n", encoding="utf8")
    with pytest.raises(ConversionError, match="file is empty"):
        list(read_conll2012(tmp_path / "empty_gold_conll"))
    latin1 = NW.read_text(encoding="utf8").replace("Acme", "Acm\u00e9").encode("latin-1")
    (tmp_path / "latin1_gold_conll").write_bytes(latin1)
    with pytest.raises(ConversionError, match="not valid UTF-8"):
        list(read_conll2012(tmp_path / "latin1_gold_conll"))
    copy = tmp_path / "copy"
    copy.mkdir()
    (copy / "a_gold_conll").write_text(NW.read_text(encoding="utf8"), encoding="utf8")
    (copy / "b_gold_conll").write_text(NW.read_text(encoding="utf8"), encoding="utf8")
    with pytest.raises(ConversionError, match="appears twice"):
        list(read_conll2012(copy))


def test_converted_sample_trains_and_evaluates(tmp_path):
    """NER + mentions + coreference (configs/litbank.cfg) on the converted sample, end to end."""
    corpus = tmp_path / "onto.spacy"
    assert main(["convert", "conll2012", str(DATA), str(corpus), "--no-progress"]) == 0
    overrides = {"paths.train": str(corpus), "paths.dev": str(corpus), "training.max_steps": 2,
                 "training.eval_frequency": 2}
    train(ROOT / "configs" / "litbank.cfg", tmp_path / "model", overrides=overrides)
    scores = evaluate(str(tmp_path / "model" / "model-last"), corpus, output=tmp_path / "scores.json")
    assert {"ents_f", "mentions_f", "coref_f"} <= set(scores)
    written = json.loads((tmp_path / "scores.json").read_text(encoding="utf8"))
    assert written["ents_f"] == pytest.approx(scores["ents_f"])
    nlp = spacy.load(tmp_path / "model" / "model-last")
    doc = nlp("Mary Jones lives in Paris . She loves Paris .")
    assert doc._.coref_clusters is not None and entity_graph(doc).annotated["coref"]
