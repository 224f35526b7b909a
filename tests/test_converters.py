"""Converters: exact round trips per format, the shipped corpora's totals, malformed
input (message + no output), and the CLI."""
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import List, Set, Tuple

import pytest
from spacy.tokens import Doc, DocBin
from spacy.vocab import Vocab

import spacy_hmtl  # noqa: F401  (registers the Doc extensions)
from spacy_hmtl.annotations import (
    ENTS_OVERFLOW_KEY,
    MENTIONS_KEY,
    get_coref_clusters,
    get_relation_records,
    has_coref_annotation,
    has_relation_annotation,
)
from spacy_hmtl.converters import (
    ConversionError,
    convert_conll,
    convert_conll04,
    convert_litbank,
    convert_scierc,
    read_conll_ner,
    read_fold,
)
from spacy_hmtl.converters.litbank import MENTION_KINDS_KEY
from spacy_hmtl.converters.scierc import PTB_BRACKETS

ROOT = Path(__file__).parent.parent
DATA = Path(__file__).parent / "data" / "converters"
ASSETS = ROOT / "assets"


def load(path: Path) -> List[Doc]:
    """Read a .spacy file back the way spaCy's Corpus does."""
    return list(DocBin(store_user_data=True).from_disk(path).get_docs(Vocab()))


def all_entities(doc: Doc) -> Set[Tuple[int, int, str]]:
    spans = list(doc.ents) + list(doc.spans[ENTS_OVERFLOW_KEY])
    assert len(spans) == len({(s.start, s.end, s.label_) for s in spans})
    return {(s.start, s.end, s.label_) for s in spans}


def span_set(doc: Doc, key: str) -> Set[Tuple[int, int, str]]:
    return {(s.start, s.end, s.label_) for s in doc.spans[key]}


def sent_starts(doc: Doc) -> List[int]:
    return [sent.start for sent in doc.sents]


def check_ents_layout(doc: Doc) -> None:
    """doc.ents is flat; every overflow entity overlaps a doc.ents entity that is at least
    as long (longest first); every non-entity token is O."""
    assert doc.has_annotation("ENT_IOB")
    assert all(token.ent_iob_ in ("B", "I", "O") for token in doc)
    for span in doc.spans[ENTS_OVERFLOW_KEY]:
        assert any(
            ent.start < span.end and span.start < ent.end and len(ent) >= len(span) for ent in doc.ents
        )


# --- SciERC -------------------------------------------------------------------------


def test_scierc_round_trip(tmp_path):
    records = [json.loads(line) for line in (DATA / "scierc_3.json").read_text().splitlines()]
    summary = convert_scierc(DATA / "scierc_3.json", tmp_path / "out.spacy")
    docs = load(tmp_path / "out.spacy")
    assert len(docs) == summary.documents == 3
    n_overflow = 0
    for doc, record in zip(docs, records):
        assert doc._.hmtl_doc_key == record["doc_key"]
        assert doc.has_unknown_spaces  # gold tokenization is kept by spaCy's Corpus
        words = [PTB_BRACKETS.get(w, w) for sent in record["sentences"] for w in sent]
        assert [t.text for t in doc] == words
        lengths = [len(sent) for sent in record["sentences"]]
        assert sent_starts(doc) == [sum(lengths[:i]) for i in range(len(lengths))]
        entities = {(s, e + 1, label) for sent in record["ner"] for s, e, label in sent}
        assert all_entities(doc) == entities
        assert len(doc.ents) + len(doc.spans[ENTS_OVERFLOW_KEY]) == sum(map(len, record["ner"]))
        check_ents_layout(doc)
        n_overflow += len(doc.spans[ENTS_OVERFLOW_KEY])
        assert span_set(doc, MENTIONS_KEY) == entities
        assert len(doc.spans[MENTIONS_KEY]) == len(entities)
        relations = sorted(
            [h0, h1 + 1, t0, t1 + 1, label, 1.0] for sent in record["relations"] for h0, h1, t0, t1, label in sent
        )
        # msgpack gives tuples back for the stored lists (Doc.from_bytes uses use_list=False).
        assert [list(r) for r in get_relation_records(doc)] == relations
        for rel, (h0, h1, t0, t1, label, _) in zip(doc._.relations, relations):
            assert (rel.head.start, rel.head.end, rel.tail.start, rel.tail.end, rel.label) == (h0, h1, t0, t1, label)
        assert has_coref_annotation(doc)
        clusters = sorted(sorted((s, e + 1) for s, e in cluster) for cluster in record["clusters"])
        assert get_coref_clusters(doc) == clusters
        spans = doc._.coref_clusters
        assert [[(s.start, s.end) for s in cluster] for cluster in spans] == clusters
        assert sum(map(len, spans)) == sum(map(len, record["clusters"]))
    # The fixture has one nested entity pair, a doc with brackets and one without clusters.
    assert n_overflow == summary.entities_overflow == 2
    assert any("(" in doc.text for doc in docs)
    assert any(doc._.coref_clusters == [] for doc in docs)


def test_scierc_keep_ptb_brackets(tmp_path):
    convert_scierc(DATA / "scierc_3.json", tmp_path / "out.spacy", keep_ptb_brackets=True)
    words = {t.text for doc in load(tmp_path / "out.spacy") for t in doc}
    assert "-LRB-" in words and "(" not in words


def test_scierc_dev_matches_readme(tmp_path):
    summary = convert_scierc(ASSETS / "scierc" / "dev.json", tmp_path)  # a directory: dev.spacy
    docs = load(tmp_path / "dev.spacy")
    # assets/scierc/README.md: 50 docs, 275 sentences, 6521 tokens, 811 entities, 455 relations,
    # 100 clusters with 272 mentions.
    assert (summary.documents, summary.sentences, summary.tokens) == (50, 275, 6521)
    assert (summary.entities, summary.relations) == (811, 455)
    assert (summary.clusters, summary.cluster_mentions) == (100, 272)
    assert len(docs) == 50
    assert sum(len(list(d.sents)) for d in docs) == 275
    assert sum(len(d.ents) + len(d.spans[ENTS_OVERFLOW_KEY]) for d in docs) == 811
    assert sum(len(d.spans[MENTIONS_KEY]) for d in docs) == 811
    assert sum(len(d._.relations) for d in docs) == 455
    assert sum(len(d._.coref_clusters) for d in docs) == 100
    assert sum(len(c) for d in docs for c in d._.coref_clusters) == 272


def test_scierc_drops_exact_duplicates(tmp_path):
    record = {
        "doc_key": "dup",
        "sentences": [["a", "b", "c", "d"]],
        "ner": [[[0, 0, "X"], [0, 0, "X"], [2, 3, "Y"]]],
        "relations": [[[0, 0, 2, 3, "R"], [0, 0, 2, 3, "R"]]],
        "clusters": [[[0, 0], [0, 0], [2, 3]]],
    }
    path = tmp_path / "dup.json"
    path.write_text(json.dumps(record) + "\n")
    summary = convert_scierc(path, tmp_path / "out.spacy")
    (doc,) = load(tmp_path / "out.spacy")
    assert all_entities(doc) == {(0, 1, "X"), (2, 4, "Y")}
    assert len(doc._.relations) == 1
    assert get_coref_clusters(doc) == [[(0, 1), (2, 4)]]
    assert summary.notes == {
        "duplicate entities dropped": 1,
        "duplicate relations dropped": 1,
        "duplicate coreference mentions dropped": 1,
    }


# --- CoNLL04 ------------------------------------------------------------------------


def test_conll04_round_trip(tmp_path):
    records = json.loads((DATA / "conll04_3.json").read_text())
    summary = convert_conll04(DATA / "conll04_3.json", tmp_path / "out.spacy")
    docs = load(tmp_path / "out.spacy")
    assert len(docs) == summary.documents == 3
    for doc, record in zip(docs, records):
        assert doc._.hmtl_doc_key == f"conll04-{record['orig_id']}"
        assert [t.text for t in doc] == record["tokens"]
        assert sent_starts(doc) == [0]
        entities = [(e["start"], e["end"], e["type"]) for e in record["entities"]]
        assert all_entities(doc) == set(entities)
        assert [(e.start, e.end, e.label_) for e in doc.ents] == sorted(entities)
        assert span_set(doc, MENTIONS_KEY) == set(entities)
        check_ents_layout(doc)
        relations = sorted(
            [*entities[r["head"]][:2], *entities[r["tail"]][:2], r["type"], 1.0] for r in record["relations"]
        )
        assert [list(r) for r in get_relation_records(doc)] == relations
        assert len(doc._.relations) == len(record["relations"])
        assert all(rel.head.text and rel.tail.text for rel in doc._.relations)
        assert not has_coref_annotation(doc) and doc._.coref_clusters is None
    assert summary.relations == sum(len(r["relations"]) for r in records)
    assert "n/a" in summary.format()  # no coreference layer


def test_conll04_sentence_without_relations_is_annotated_empty(tmp_path):
    path = tmp_path / "in.json"
    path.write_text(json.dumps([{"tokens": ["Hello", "."], "entities": [], "relations": [], "orig_id": 1}]))
    convert_conll04(path, tmp_path / "out.spacy")
    (doc,) = load(tmp_path / "out.spacy")
    assert has_relation_annotation(doc) and doc._.relations == []
    assert doc.has_annotation("ENT_IOB") and list(doc.ents) == []
    assert MENTIONS_KEY in doc.spans and len(doc.spans[MENTIONS_KEY]) == 0


# --- LitBank ------------------------------------------------------------------------


def test_litbank_round_trip(tmp_path):
    summary = convert_litbank(DATA / "litbank", tmp_path / "out", fold=0)
    docs = {split: load(tmp_path / "out" / f"{split}.spacy") for split in ("train", "dev", "test")}
    assert {split: len(d) for split, d in docs.items()} == {"train": 1, "dev": 1, "test": 1}
    (a,), (b,), (c,) = docs["train"], docs["dev"], docs["test"]
    assert (a._.hmtl_doc_key, b._.hmtl_doc_key, c._.hmtl_doc_key) == ("tiny_a_brat", "tiny_b_brat", "tiny_c_brat")

    assert a.text.split() == "Mr. Smith of London lived in the old house . He loved it .".split()
    assert sent_starts(a) == [0, 10] and sent_starts(b) == [0, 6, 11] and sent_starts(c) == [0]
    # Coreference: singletons kept, nested mention of another cluster closes on the same token.
    assert get_coref_clusters(a) == [[(0, 4), (10, 11)], [(3, 4)], [(6, 9), (12, 13)]]
    assert [[s.text for s in cl] for cl in b._.coref_clusters] == [["The ship", "her", "She"], ["Boston"], ["Captain Ahab"]]
    assert c._.coref_clusters == [] and has_coref_annotation(c)
    # Mentions typed by entity type, kinds in their own key, the same spans.
    assert span_set(a, MENTIONS_KEY) == {(0, 4, "PER"), (3, 4, "GPE"), (6, 9, "FAC"), (10, 11, "PER"), (12, 13, "FAC")}
    assert span_set(a, MENTION_KINDS_KEY) == {(0, 4, "PROP"), (3, 4, "PROP"), (6, 9, "NOM"), (10, 11, "PRON"), (12, 13, "PRON")}
    assert len(c.spans[MENTIONS_KEY]) == 0 and len(c.spans[MENTION_KINDS_KEY]) == 0
    # Nested brat entities: outermost in doc.ents, the nested one in the overflow key.
    assert [(e.text, e.label_) for e in a.ents] == [("Mr. Smith of London", "PER"), ("the old house", "FAC")]
    assert [(e.text, e.label_) for e in a.spans[ENTS_OVERFLOW_KEY]] == [("London", "GPE")]
    assert [(e.text, e.label_) for e in b.ents] == [("The ship", "VEH"), ("Boston", "GPE"), ("Captain Ahab", "PER")]
    assert [(e.text, e.label_) for e in b.spans[ENTS_OVERFLOW_KEY]] == [("Captain", "PER")]
    assert c.has_annotation("ENT_IOB") and list(c.ents) == []
    for doc in (a, b, c):
        check_ents_layout(doc)
        assert not has_relation_annotation(doc)
    assert (summary.documents, summary.entities, summary.entities_overflow) == (3, 7, 2)
    assert (summary.mentions, summary.clusters, summary.cluster_mentions) == (10, 6, 10)
    assert summary.parts["train"].documents == 1


def test_litbank_fold0_real_assets(tmp_path):
    splits = read_fold(ASSETS / "litbank", 0)
    assert {split: len(stems) for split, stems in splits.items()} == {"train": 80, "dev": 10, "test": 10}
    summary = convert_litbank(ASSETS / "litbank", tmp_path, fold=0)
    parts = summary.parts
    assert {split: parts[split].documents for split in parts} == {"train": 80, "dev": 10, "test": 10}
    # assets/litbank/README.md, fold 0: sentences, tokens, coref mentions, chains, brat entities.
    expected = {
        "train": (6755, 169456, 23218, 6344, 11186),
        "dev": (927, 20438, 3053, 776, 1463),
        "test": (880, 20638, 2832, 807, 1263),
    }
    for split, counts in expected.items():
        part = parts[split]
        assert (part.sentences, part.tokens, part.cluster_mentions, part.clusters, part.entities) == counts
        assert part.mentions == part.cluster_mentions  # every coref mention is typed
    assert summary.notes == {"entities expanded to token boundaries": 21}
    assert len(load(tmp_path / "dev.spacy")) == 10


# --- CoNLL NER ----------------------------------------------------------------------

CONLL_ENTITIES = [
    [("EU", "ORG"), ("German", "MISC"), ("British", "MISC"), ("Peter Blackburn", "PER")],
    [("New York", "LOC"), ("Paris", "LOC"), ("Bank of England", "ORG")],
]


@pytest.mark.parametrize("scheme", ["iob1", "iob2", "bioes"])
@pytest.mark.parametrize("explicit", [False, True])
def test_conll_schemes_round_trip(tmp_path, scheme, explicit):
    options = {"scheme": scheme} if explicit else {}
    summary = convert_conll(DATA / f"ner_{scheme}.conll", tmp_path / "out.spacy", **options)
    docs = load(tmp_path / "out.spacy")
    assert [[(e.text, e.label_) for e in doc.ents] for doc in docs] == CONLL_ENTITIES
    assert [sent_starts(doc) for doc in docs] == [[0, 9], [0]]  # -DOCSTART- splits docs
    for doc in docs:
        assert span_set(doc, MENTIONS_KEY) == {(e.start, e.end, e.label_) for e in doc.ents}
        assert len(doc.spans[ENTS_OVERFLOW_KEY]) == 0
        assert doc.has_unknown_spaces
    assert [doc._.hmtl_doc_key for doc in docs] == [f"ner_{scheme}-0", f"ner_{scheme}-1"]
    assert (summary.documents, summary.sentences, summary.tokens, summary.entities) == (2, 3, 21, 7)
    assert "n/a" in summary.format()  # no relations, no coreference


def test_conll_detects_scheme():
    from spacy_hmtl.converters.conll import _read_documents, detect_scheme

    for scheme in ("iob1", "iob2", "bioes"):
        documents, _ = _read_documents(DATA / f"ner_{scheme}.conll", -1)
        assert detect_scheme([s for d in documents for s in d]) == scheme


def test_conll_groups_sentences_without_docstart(tmp_path):
    summary = convert_conll(DATA / "ner_wnut.conll", tmp_path / "out.spacy", n_sents=2)
    docs = load(tmp_path / "out.spacy")
    assert [len(list(doc.sents)) for doc in docs] == [2, 1]
    assert [(e.text, e.label_) for e in docs[0].ents] == [
        ("Empire State Building", "location"), ("ESB", "location"), ("Star Wars", "creative-work")
    ]
    assert docs[1].has_annotation("ENT_IOB") and list(docs[1].ents) == []
    assert summary.documents == 2
    # Tag column chosen explicitly (column 1 of 2 is the last one).
    assert len(list(read_conll_ner(DATA / "ner_wnut.conll", tag_column=1, n_sents=10))) == 1


# --- malformed input ----------------------------------------------------------------

SCIERC_OK = {"doc_key": "d1", "sentences": [["a", "b", "c"], ["d", "e"]], "ner": [[[0, 1, "X"]], [[3, 3, "Y"]]],
             "relations": [[], []], "clusters": [[[0, 1], [3, 3]]]}


def scierc_with(**changes) -> str:
    record = dict(SCIERC_OK, **changes)
    return json.dumps(SCIERC_OK) + "\n" + json.dumps(dict(record, doc_key="d2")) + "\n"


def conll04_with(**changes) -> str:
    ok = {"tokens": ["John", "works", "for", "IBM"], "entities": [{"type": "Peop", "start": 0, "end": 1},
          {"type": "Org", "start": 3, "end": 4}], "relations": [{"type": "Work_For", "head": 0, "tail": 1}],
          "orig_id": 7}
    return json.dumps([dict(ok, orig_id=6), dict(ok, **changes)])


NER_OK = "EU B-ORG\nrejects O\n\nPeter B-PER\nBlackburn I-PER\n"

# (format, file content, options, substrings the message must contain: file name, where, problem)
MALFORMED = {
    "scierc-truncated-json": ("scierc", scierc_with()[:-20], {}, ["line 2", "truncated JSON"]),
    "scierc-wrong-type": ("scierc", scierc_with(ner=[[[0, 1, 5]], []]), {}, ["line 2", "'d2'", "label must be a string"]),
    "scierc-not-a-list": ("scierc", scierc_with(sentences="a b c"), {}, ["line 2", "must be a list"]),
    "scierc-out-of-range": ("scierc", scierc_with(ner=[[[0, 1, "X"]], [[3, 9, "Y"]]]), {}, ["line 2", "'d2'", "out of range"]),
    "scierc-end-before-start": ("scierc", scierc_with(ner=[[[2, 1, "X"]], []]), {}, ["line 2", "'d2'", "end < start"]),
    "scierc-relation-missing-entity": (
        "scierc", scierc_with(relations=[[[0, 1, 2, 2, "R"]], []]), {}, ["line 2", "'d2'", "not one of the document's entities"]
    ),
    "scierc-cluster-out-of-range": ("scierc", scierc_with(clusters=[[[0, 1], [4, 5]]]), {}, ["line 2", "'d2'", "out of range"]),
    "scierc-sentence-relative-offsets": (
        "scierc", scierc_with(ner=[[[0, 1, "X"]], [[0, 0, "Y"]]]), {}, ["line 2", "'d2'", "outside sentence 1"]
    ),
    "scierc-empty-file": ("scierc", "\n\n", {}, ["file is empty"]),
    "conll04-truncated-json": ("conll04", conll04_with()[:-5], {}, ["line 1", "truncated JSON"]),
    "conll04-wrong-type": ("conll04", conll04_with(entities=[{"type": "Peop", "start": "0", "end": 1}]), {},
                           ["sentence 1 (orig_id 7)", "start must be an integer"]),
    "conll04-out-of-range": ("conll04", conll04_with(entities=[{"type": "Peop", "start": 3, "end": 5}]), {},
                             ["sentence 1", "out of range"]),
    "conll04-end-before-start": ("conll04", conll04_with(entities=[{"type": "Peop", "start": 2, "end": 1}]), {},
                                 ["sentence 1", "end < start"]),
    "conll04-relation-missing-entity": ("conll04", conll04_with(relations=[{"type": "Kill", "head": 0, "tail": 2}]), {},
                                        ["sentence 1", "tail 2 points at a missing entity"]),
    "conll04-empty-file": ("conll04", "", {}, ["file is empty"]),
    "conll04-not-utf8": ("conll04", b'[{"tokens": ["caf\xe9"]}]', {}, ["line 1", "not valid UTF-8"]),
    "conll-ragged": ("conll", "EU NNP B-ORG\nrejects O\n", {}, ["line 2", "ragged columns"]),
    "conll-iob2-illegal": ("conll", "EU B-LOC\nPeter I-PER\n", {"scheme": "iob2"}, ["line 2", "I-PER after B-LOC"]),
    "conll-auto-iob2-illegal": ("conll", "EU B-LOC\nPeter I-PER\n", {}, ["line 2", "illegal transition in IOB2"]),
    "conll-bioes-e-without-b": ("conll", "EU S-ORG\nPeter O\nBlackburn E-PER\n", {}, ["line 3", "E-PER after O"]),
    "conll-bioes-unclosed": ("conll", "Peter B-PER\nBlackburn I-PER\n\nx O\n", {"scheme": "bioes"}, ["line 2", "not closed"]),
    "conll-bad-tag": ("conll", "EU X-ORG\n", {}, ["line 1", "malformed tag"]),
    "conll-empty-file": ("conll", "  \n", {}, ["file is empty"]),
    "conll-not-utf8": ("conll", NER_OK.encode() + b"caf\xe9 O\n", {}, ["line 6", "not valid UTF-8"]),
    # issue 16: precise messages, and annotations that used to be accepted silently
    "conll-nbsp-in-token": ("conll", NER_OK + "New\xa0York B-LOC\n", {}, ["line 6", "token 'New\\xa0York'", "U+00A0"]),
    "conll04-unterminated-string": ("conll04", '[{"tokens": ["John', {}, ["line 1", "(Unterminated string starting at: column 14)"]),
    "conll04-self-relation": ("conll04", conll04_with(relations=[{"type": "Kill", "head": 1, "tail": 1}]), {},
                              ["sentence 1", "head and tail are the same entity"]),
    "scierc-self-relation": ("scierc", scierc_with(relations=[[[0, 1, 0, 1, "R"]], []]), {},
                             ["line 2", "'d2'", "head and tail are the same span"]),
    "scierc-mention-in-two-clusters": ("scierc", scierc_with(clusters=[[[0, 1], [3, 3]], [[2, 2], [3, 3]]]), {},
                                       ["line 2", "'d2'", "[3, 3] (cluster 1) is also in cluster 0"]),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_input_raises_and_writes_nothing(tmp_path, case):
    fmt, content, options, expected = MALFORMED[case]
    source = tmp_path / f"input_{fmt}.txt"
    source.write_bytes(content if isinstance(content, bytes) else content.encode("utf8"))
    output = tmp_path / "out" / "result.spacy"
    convert = {"scierc": convert_scierc, "conll04": convert_conll04, "conll": convert_conll}[fmt]
    with pytest.raises(ConversionError) as err:
        convert(source, output, **options)
    message = str(err.value)
    for part in [source.name] + expected:
        assert part in message, message
    assert not (tmp_path / "out").exists()


def test_failed_conversion_keeps_existing_output(tmp_path):
    source = tmp_path / "bad.json"
    source.write_text(scierc_with(ner=[[[2, 1, "X"]], []]))
    output = tmp_path / "result.spacy"
    output.write_bytes(b"previous")
    with pytest.raises(ConversionError, match="end < start"):
        convert_scierc(source, output, overwrite=True)
    assert output.read_bytes() == b"previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.json", "result.spacy"]  # no temp files


def litbank_copy(tmp_path: Path) -> Path:
    root = tmp_path / "litbank"
    shutil.copytree(DATA / "litbank", root)
    return root


@pytest.mark.parametrize(
    "path,old,new,expected",
    [
        ("entities/brat/tiny_b_brat.ann", "\tBoston", "\tBostin", ["tiny_b_brat.ann", "line 2", "'tiny_b_brat'", "does not match"]),
        ("entities/brat/tiny_b_brat.ann", "GPE 19 25", "GPE 19 99", ["tiny_b_brat.ann", "line 2", "out of range"]),
        ("coref/tsv/tiny_b_brat.ann", "\tBoston\t", "\tBoston harbour\t", ["tiny_b_brat.ann", "line 2", "does not match the tokens"]),
        ("coref/tsv/tiny_b_brat.ann", "MENTION\tT1\t0\t4\t0\t4", "MENTION\tT1\t0\t4\t0\t9", ["tiny_b_brat.ann", "line 2", "out of range"]),
        ("coref/conll/tiny_b_brat.conll", "\t(7)\n", "\t(7\n", ["tiny_b_brat.conll", "line 6", "never closed"]),
        ("coref/conll/tiny_b_brat.conll", "\t(7)\n", "\t8)\n", ["tiny_b_brat.conll", "line 6", "never opened"]),
        ("coref/conll/tiny_b_brat.conll", "\t(7)\n", "\t_\t(7)\n", ["tiny_b_brat.conll", "line 6", "ragged columns"]),
        ("coref/conll/tiny_b_brat.conll", "#end document\n", "", ["tiny_b_brat.conll", "'tiny_b_brat'", "truncated"]),
        ("entities/brat/tiny_b_brat.txt", "Boston", "Bostan", ["tiny_b_brat.txt", "line 1", "does not match the conll tokens"]),
        ("litbank_tenfold_splits/0/test.ids", "tiny_c_brat.tsv\n", "", ["test.ids", "file is empty"]),
    ],
)
def test_litbank_malformed_writes_no_split(tmp_path, path, old, new, expected):
    root = litbank_copy(tmp_path)
    target = root / path
    text = target.read_text()
    assert old in text
    target.write_text(text.replace(old, new, 1))
    output = tmp_path / "out"
    output.mkdir()
    (output / "train.spacy").write_bytes(b"previous")
    with pytest.raises(ConversionError) as err:
        convert_litbank(root, output, overwrite=True)
    for part in expected:
        assert part in str(err.value), str(err.value)
    # All three files or none: the old train.spacy is untouched, nothing else appeared.
    assert sorted(p.name for p in output.iterdir()) == ["train.spacy"]
    assert (output / "train.spacy").read_bytes() == b"previous"


def test_litbank_missing_fold(tmp_path):
    with pytest.raises(ConversionError, match="fold 3 not found"):
        convert_litbank(DATA / "litbank", tmp_path / "out", fold=3)
    assert not (tmp_path / "out").exists()


# --- CLI ----------------------------------------------------------------------------


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "spacy_hmtl", *args], capture_output=True, text=True, cwd=ROOT, timeout=120
    )


def test_cli_convert(tmp_path):
    result = run_cli("convert", "scierc", str(DATA / "scierc_3.json"), str(tmp_path / "out.spacy"))
    assert result.returncode == 0, result.stderr
    lines = dict(line.split(None, 1) for line in result.stdout.splitlines() if not line.startswith("note"))
    assert lines["documents"] == "3"
    assert lines["entities"].startswith("28 (2 overlapping")
    assert lines["relations"] == "14"
    assert lines["clusters"] == "3 (6 mentions)"
    assert "sentences" in lines and "tokens" in lines and "mentions" in lines
    assert len(load(tmp_path / "out.spacy")) == 3


def test_cli_error(tmp_path, capsys):
    # In-process (same code path as `python -m spacy_hmtl`, without another interpreter start).
    from spacy_hmtl.cli import main

    source = tmp_path / "bad.json"
    source.write_text(conll04_with(relations=[{"type": "Kill", "head": 0, "tail": 2}]))
    assert main(["convert", "conll04", str(source), str(tmp_path / "out.spacy"), "--no-progress"]) == 1
    stderr = capsys.readouterr().err
    assert stderr.startswith("error: ") and "Traceback" not in stderr
    assert "bad.json" in stderr and "sentence 1" in stderr and "missing entity" in stderr
    assert not (tmp_path / "out.spacy").exists()
    with pytest.raises(SystemExit) as usage:  # an option of another format is a usage error
        main(["convert", "conll04", str(source), str(tmp_path / "out.spacy"), "--fold", "1"])
    assert usage.value.code == 2
