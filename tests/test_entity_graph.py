"""The entity graph, resolved text and exports on constructed docs (no training): nodes
from clusters and stand-alone spans, edges aggregated over relation mentions (a pronoun
argument attaches to its antecedent), canonical names and types, resolved text whose
offsets map back, export files that parse with their libraries, round trips, missing
layers, the `graph` command, `annotate --output-format graph` and the rendered graph."""
import csv
import io
import json
import pickle

import networkx
import pytest
import spacy
from spacy.tokens import Doc, DocBin, Span

import spacy_hmtl  # noqa: F401  (registers the doc._ layers)
from spacy_hmtl.annotations import set_coref_clusters, set_relation_records
from spacy_hmtl.batch_annotator import AnnotateError, annotate_file, doc_to_json, dumps_line
from spacy_hmtl.cli import main
from spacy_hmtl.graph import EntityGraph, entity_graph, noisy_or, resolve_text
from spacy_hmtl.graph.export import graphml_text, to_networkx, triples_to_csv, write_graph_jsonl
from spacy_hmtl.render import render

TEXT = "John Smith works for Acme Corp in Boston . He founded it in 1990 . Smith likes the city ."
# tokens: 0 John 1 Smith 2 works 3 for 4 Acme 5 Corp 6 in 7 Boston 8 . 9 He 10 founded 11 it
#         12 in 13 1990 14 . 15 Smith 16 likes 17 the 18 city 19 .
JOHN, ACME, BOSTON = [(0, 2), (9, 10), (15, 16)], [(4, 6), (11, 12)], [(7, 8), (17, 19)]


@pytest.fixture(scope="module")
def nlp():
    return spacy.blank("en")


def make_doc(nlp, relations=None, clusters=(JOHN, ACME, BOSTON), ents=True, mentions=True):
    doc = nlp(TEXT)
    if ents:
        doc.ents = [Span(doc, 0, 2, "PER"), Span(doc, 4, 6, "ORG"), Span(doc, 7, 8, "LOC"), Span(doc, 15, 16, "PER")]
    if mentions:
        doc.spans["mentions"] = [Span(doc, 0, 2, "PER"), Span(doc, 9, 10, "PER"), Span(doc, 17, 19, "LOC")]
    if relations is not None:
        set_relation_records(doc, relations)
    if clusters is not None:
        set_coref_clusters(doc, [list(c) for c in clusters])
    return doc


RELATIONS = [
    [0, 2, 4, 6, "Work_For", 0.8],  # John Smith -> Acme Corp
    [9, 10, 11, 12, "Work_For", 0.5],  # He -> it: the same two clusters, through pronouns
    [4, 6, 7, 8, "Located_In", 0.9],
]


def by_name(graph):
    return {node.name: node for node in graph.nodes}


# --- nodes and edges ------------------------------------------------------------------------


def test_mentions_of_one_cluster_become_one_node(nlp):
    graph = entity_graph(make_doc(nlp, RELATIONS))
    assert [n.name for n in graph.nodes] == ["John Smith", "Acme Corp", "Boston"]
    john = by_name(graph)["John Smith"]
    assert [(m.start, m.end) for m in john.mentions] == JOHN
    assert [m.text for m in john.mentions] == ["John Smith", "He", "Smith"]
    assert [m.kind for m in john.mentions] == ["proper", "pronoun", "proper"]  # "Smith" is a name mid-text too
    assert john.type == "PER" and john.type_votes == {"PER": 3} and john.cluster == 0
    assert (john.mentions[1].start_char, john.mentions[1].end_char) == (TEXT.index("He"), TEXT.index("He") + 2)
    assert by_name(graph)["Boston"].mentions[1].text == "the city"


def test_two_relation_mentions_between_two_clusters_are_one_edge(nlp):
    graph = entity_graph(make_doc(nlp, RELATIONS))
    assert len(graph.edges) == 2
    work = [e for e in graph.edges if e.label == "Work_For"][0]
    assert (graph.node(work.head).name, graph.node(work.tail).name) == ("John Smith", "Acme Corp")
    assert len(work.support) == 2
    assert [s.head["text"] for s in work.support] == ["John Smith", "He"]
    assert work.score == pytest.approx(1 - (1 - 0.8) * (1 - 0.5)) and work.max_score == 0.8
    assert list(graph.triples()) == [("John Smith", "Work_For", "Acme Corp"), ("Acme Corp", "Located_In", "Boston")]


def test_relation_with_a_pronoun_argument_attaches_to_the_antecedent(nlp):
    graph = entity_graph(make_doc(nlp, [[9, 10, 11, 12, "Founded", 0.7]]))
    (edge,) = graph.edges
    assert graph.node(edge.head).name == "John Smith" and graph.node(edge.tail).name == "Acme Corp"
    assert edge.support[0].head["text"] == "He" and edge.support[0].tail["text"] == "it"


def test_spans_with_the_same_head_fall_into_one_node(nlp):
    doc = nlp("We train the parser of Smith on the president of France . The parser works .")
    # 0 We 1 train 2 the 3 parser 4 of 5 Smith 6 on 7 the 8 president 9 of 10 France 11 . 12 The 13 parser
    doc.ents = [Span(doc, 3, 4, "Method"), Span(doc, 10, 11, "GPE"), Span(doc, 5, 6, "PER")]
    set_coref_clusters(doc, [[(2, 6), (12, 14)], [(7, 11)]])
    set_relation_records(doc, [[3, 4, 10, 11, "Used_On", 0.6]])
    graph = entity_graph(doc)
    names = [n.name for n in graph.nodes]
    # "parser" (entity) has the head of "the parser of Smith": it labels that mention;
    # "France" is not the head of "the president of France": a node of its own
    assert names == ["the parser of Smith", "Smith", "the president of France", "France"]
    parser = by_name(graph)["the parser of Smith"]
    assert parser.type == "Method" and len(parser.mentions) == 2
    (edge,) = graph.edges
    assert (graph.node(edge.head).name, graph.node(edge.tail).name) == ("the parser of Smith", "France")


def test_canonical_name_and_type_rules(nlp):
    doc = nlp("It was built by the team . The Acme parser beats it . It is fast .")
    # 0 It 1 was 2 built 3 by 4 the 5 team 6 . 7 The 8 Acme 9 parser 10 beats 11 it 12 . 13 It
    doc.spans["mentions"] = [Span(doc, 0, 1, "Method"), Span(doc, 7, 10, "Tool"), Span(doc, 11, 12, "Method")]
    set_coref_clusters(doc, [[(0, 1), (7, 10), (11, 12), (13, 14)]])
    node = entity_graph(doc).nodes[0]
    assert node.name == "The Acme parser" and node.kind == "proper"  # a name over pronouns
    assert node.type == "Method" and node.type_votes == {"Method": 2, "Tool": 1}  # majority, not the name's
    # with POS tags the tags decide: a common noun phrase is nominal
    tagged = nlp("It was built by the team . The Acme parser beats it . It is fast .")
    for token, pos in zip(tagged, "PRON AUX VERB ADP DET NOUN PUNCT DET NOUN NOUN VERB PRON PUNCT PRON".split()):
        token.pos_ = pos
    set_coref_clusters(tagged, [[(0, 1), (4, 6), (11, 12)]])
    node = entity_graph(tagged).nodes[0]
    assert node.name == "the team" and node.kind == "nominal" and node.type is None
    assert [m.kind for m in node.mentions] == ["pronoun", "nominal", "pronoun"]


def test_relation_arguments_outside_every_layer_get_nodes(nlp):
    doc = nlp("Parsers help translation .")
    set_relation_records(doc, [[0, 1, 2, 3, "Used_For", 0.4], [0, 1, 2, 3, "Used_For", 0.3]])
    graph = entity_graph(doc)
    assert [n.name for n in graph.nodes] == ["Parsers", "translation"] and graph.nodes[0].type is None
    assert graph.nodes[0].mentions[0].sources == ("relations",)
    (edge,) = graph.edges
    assert edge.score == pytest.approx(noisy_or([0.4, 0.3])) and len(edge.support) == 2


# --- missing and empty layers, round trips ----------------------------------------------


def test_missing_and_empty_layers(nlp):
    for text in ("", "Nothing annotated here ."):
        graph = entity_graph(nlp(text))
        assert graph.to_dict()["nodes"] == [] and graph.to_dict()["edges"] == []
        assert resolve_text(nlp(text)).text == text
    # (spaCy counts an empty doc as annotated for entities: doc.has_annotation("ENT_IOB"))
    graph = entity_graph(nlp("Nothing annotated here ."))
    assert graph.annotated == {"entities": False, "mentions": False, "relations": False, "coref": False}
    doc = make_doc(nlp, relations=[], clusters=None, mentions=False)
    graph = entity_graph(doc)
    assert graph.annotated == {"entities": True, "mentions": False, "relations": True, "coref": False}
    assert [n.name for n in graph.nodes] == ["John Smith", "Acme Corp", "Boston", "Smith"]  # no clusters: 4 nodes
    assert graph.edges == [] and all(n.cluster is None for n in graph.nodes)
    empty = nlp("")
    set_coref_clusters(empty, [])
    set_relation_records(empty, [])
    assert entity_graph(empty).annotated["coref"] and len(entity_graph(empty)) == 0


def test_graph_survives_round_trips(nlp):
    doc = make_doc(nlp, RELATIONS)
    graph = entity_graph(doc)
    data = json.loads(json.dumps(graph.to_dict()))
    assert EntityGraph.from_dict(data) == graph  # plain data: JSON keeps it
    assert pickle.loads(pickle.dumps(graph)) == graph
    assert entity_graph(Doc(nlp.vocab).from_bytes(doc.to_bytes())) == graph
    docbin = DocBin(store_user_data=True, docs=[doc])
    (loaded,) = DocBin(store_user_data=True).from_bytes(docbin.to_bytes()).get_docs(nlp.vocab)
    assert entity_graph(loaded) == graph
    assert entity_graph(pickle.loads(pickle.dumps(doc))) == graph
    as_json = json.loads(json.dumps(doc_to_json(doc, "d1")))
    assert entity_graph(as_json) == graph  # annotate's JSON gives the same graph
    assert entity_graph({**as_json, "graph": data}) == graph


# --- resolved text ----------------------------------------------------------------------


def test_resolved_text_maps_back_to_the_original_offsets(nlp):
    doc = make_doc(nlp, RELATIONS)
    resolved = resolve_text(doc)
    assert resolved.text == "John Smith works for Acme Corp in Boston . John Smith founded Acme Corp in 1990 . " \
                            "Smith likes the city ."
    assert [(r.text, r.replacement) for r in resolved.replacements] == [("He", "John Smith"), ("it", "Acme Corp")]
    for r in resolved.replacements:
        assert resolved.text[r.resolved_start:r.resolved_end] == r.replacement
        assert resolved.to_original(r.resolved_start, r.resolved_end) == (r.start_char, r.end_char)
        assert resolved.to_original(r.resolved_start + 1) == (r.start_char, r.end_char)  # inside: the mention
        assert resolved.to_resolved(r.start_char, r.end_char) == (r.resolved_start, r.resolved_end)
    replaced = {t.i for r in resolved.replacements for t in doc.char_span(r.start_char, r.end_char)}
    for token in doc:
        if token.i in replaced:
            continue
        start, end = resolved.to_resolved(token.idx, token.idx + len(token))
        assert resolved.text[start:end] == token.text
        assert resolved.to_original(start, end) == (token.idx, token.idx + len(token))
    assert resolved.to_original(len(resolved.text)) == (len(TEXT), len(TEXT))
    with pytest.raises(ValueError):
        resolved.to_original(len(resolved.text) + 1)
    everything = resolve_text(doc, mode="all")
    assert everything.text.endswith("John Smith founded Acme Corp in 1990 . John Smith likes Boston .")
    assert everything.to_original(everything.text.rindex("Boston"), len(everything.text) - 2) == (
        TEXT.index("the city"), TEXT.index("the city") + len("the city"))


def test_resolved_text_possessives_case_and_relative_pronouns(nlp):
    doc = nlp("Its results show that the parser , which is fast , works . It wins .")
    # 0 Its 1 results 2 show 3 that 4 the 5 parser 6 , 7 which 8 is 9 fast 10 , 11 works 12 . 13 It
    set_coref_clusters(doc, [[(0, 1), (4, 6), (7, 8), (13, 14)]])
    resolved = resolve_text(doc)
    assert resolved.text == "The parser's results show that the parser , which is fast , works . The parser wins ."
    assert resolved.to_original(0, len("The parser's")) == (0, 3)
    with pytest.raises(ValueError, match="mode"):
        resolve_text(doc, mode="names")


# --- exports ---------------------------------------------------------------------------


def graphs(nlp):
    return [("doc-1", entity_graph(make_doc(nlp, RELATIONS))), (2, entity_graph(make_doc(nlp, [RELATIONS[2]])))]


def test_export_files_parse_with_their_libraries(nlp, tmp_path):
    items = graphs(nlp)
    path = tmp_path / "graphs.jsonl"
    write_graph_jsonl(path, items, {"doc-1": TEXT})
    lines = [json.loads(line) for line in path.read_text(encoding="utf8").splitlines()]
    assert [line["id"] for line in lines] == ["doc-1", 2] and lines[0]["text"] == TEXT
    assert EntityGraph(lines[0]["graph"]) == items[0][1]
    rows = list(csv.DictReader(io.StringIO(triples_to_csv(items))))
    assert [(r["doc_id"], r["head"], r["relation"], r["tail"], r["support"]) for r in rows] == [
        ("doc-1", "John Smith", "Work_For", "Acme Corp", "2"),
        ("doc-1", "Acme Corp", "Located_In", "Boston", "1"),
        ("2", "Acme Corp", "Located_In", "Boston", "1"),
    ]
    assert rows[0]["head_type"] == "PER" and float(rows[0]["score"]) == pytest.approx(0.9)
    graphml = tmp_path / "graph.graphml"
    graphml.write_text(graphml_text(items), encoding="utf8")
    read = networkx.read_graphml(graphml)
    assert read.number_of_nodes() == 6 and read.number_of_edges() == 3
    assert read.nodes["doc-1:0"]["name"] == "John Smith" and read.nodes["doc-1:0"]["mentions"] == 3
    merged = to_networkx(items, merge_names=True)
    assert merged.number_of_nodes() == 3 and merged.nodes["ORG:acme corp"]["docs"] == "doc-1 2"
    assert merged.number_of_edges() == 3


def test_graph_command(nlp, tmp_path, capsys):
    annotated = tmp_path / "annotated.jsonl"
    docs = [make_doc(nlp, RELATIONS), make_doc(nlp, [], clusters=None)]
    annotated.write_text("".join(dumps_line(doc_to_json(d, i)) for i, d in enumerate(docs)), encoding="utf8")
    out = {kind: tmp_path / f"out.{kind}" for kind in ("jsonl", "csv", "graphml")}
    args = ["graph", str(annotated)] + [a for kind, path in out.items() for a in (f"--{kind}", str(path))]
    assert main(args) == 0
    assert "2 documents, 9 entities, 2 relations" in capsys.readouterr().out
    assert len(out["jsonl"].read_text(encoding="utf8").splitlines()) == 2
    assert networkx.read_graphml(out["graphml"]).number_of_edges() == 2
    assert main(args) == 1 and "exists already" in capsys.readouterr().err  # no --overwrite
    assert main(["graph", str(annotated), "--csv", str(annotated)]) == 1
    assert "is also an input" in capsys.readouterr().err
    # a .spacy corpus (gold layers) reads the same
    corpus = tmp_path / "gold.spacy"
    DocBin(store_user_data=True, docs=docs).to_disk(corpus)
    assert main(["graph", str(corpus), "--csv", str(out["csv"]), "--overwrite"]) == 0
    assert len(out["csv"].read_text(encoding="utf8").splitlines()) == 3  # header + 2 edges
    bad = tmp_path / "bad.jsonl"
    bad.write_text(annotated.read_text(encoding="utf8") + '{"text": "no tokens"}\n', encoding="utf8")
    assert main(["graph", str(bad), "--jsonl", str(tmp_path / "x.jsonl")]) == 1
    assert f"{bad}:3: not a document written by annotate" in capsys.readouterr().err
    assert not (tmp_path / "x.jsonl").exists()
    with pytest.raises(SystemExit):
        main(["graph", str(annotated)])  # no output asked for


def test_annotate_output_format_graph(nlp, tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps({"id": "a", "text": TEXT}) + "\n" + json.dumps({"id": "b", "text": "Hi ."}) + "\n",
                      encoding="utf8")

    def runner(records):  # stands in for the pipeline: hand-made annotations
        for doc_id, text in records:
            doc = make_doc(nlp, RELATIONS) if text == TEXT else nlp(text)
            yield [dumps_line(doc_to_json(doc, doc_id))]

    output = tmp_path / "out.jsonl"
    annotate_file(None, source, output, runner=runner, output_format="graph", show_progress=False)
    lines = [json.loads(line) for line in output.read_text(encoding="utf8").splitlines()]
    assert EntityGraph(lines[0]["graph"]) == entity_graph(make_doc(nlp, RELATIONS))
    assert lines[1]["graph"]["nodes"] == [] and lines[1]["entities"] is None
    with pytest.raises(AnnotateError, match="output-format graph"):
        annotate_file(None, source, output, runner=runner, show_progress=False)  # resumed as "doc"


# --- rendering --------------------------------------------------------------------------


def test_render_draws_the_graph(nlp):
    doc = make_doc(nlp, RELATIONS + [[15, 16, 9, 10, "Same_As", 0.2]])
    doc.ents = list(doc.ents) + [Span(doc, 13, 14, "DATE")]
    markup = render(doc)
    assert 'class="hmtl-layer hmtl-graph"' in markup and "Entity graph" in markup
    svg = markup[markup.index('class="hmtl-graph-svg"'):markup.index("</svg>", markup.index('class="hmtl-graph-svg"'))]
    assert svg.count('class="hmtl-graph-node"') == 3 and svg.count('class="hmtl-graph-edge"') == 3
    for text in ("John Smith", "Acme Corp", "Boston", "Work_For", "Located_In", "Same_As", "PER \u00d73"):
        assert text in svg
    assert "Other entities" in markup and "1990" in markup  # not related: listed under the drawing
    assert render(doc_to_json(doc)) == markup
    assert "hmtl-graph" not in render(nlp("Plain text ."), page=False)
    assert "no entities" in render(make_doc(nlp, [], clusters=[], ents=False, mentions=False), layers=["graph"])


def test_small_graphs_draw(nlp):
    doc = nlp("Parsers help translation .")
    set_relation_records(doc, [[0, 1, 2, 3, "Used_For", 0.4], [2, 3, 0, 1, "Helped_By", 0.3]])
    two = render(doc, layers=["graph"], page=False)
    assert two.count('class="hmtl-graph-node"') == 2 and two.count('class="hmtl-graph-edge"') == 2
    set_relation_records(doc, [[0, 1, 0, 1, "Self", 0.5]])  # one entity, a loop
    loop = render(doc, layers=["graph"], page=False)
    assert loop.count('class="hmtl-graph-node"') == 1 and "Self" in loop
