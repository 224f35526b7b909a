"""A fifth head, registered from the tests alone (``tests/toy_head``: a document topic
classifier on level 1 of the encoder), goes through everything the four heads go through
with no edit outside its folder: it trains, its scores appear in ``nlp.evaluate``, the
evaluate command's table and the tasks' headline scores, ``annotate`` writes its field,
``render`` draws its section, the multi-task reader strips it, and the pipeline round-trips
through ``to_disk`` / ``spacy.load``."""
import json
from pathlib import Path

import pytest
import spacy
from spacy.tokens import Doc, Span
from spacy.training import Example
from thinc.api import Adam, Config

from spacy_hmtl.annotations import register_extensions
from spacy_hmtl.batch_annotator import annotate_file
from spacy_hmtl.cli import main
from spacy_hmtl.doc_json import doc_from_json, doc_to_json
from spacy_hmtl.render import render, render_jsonl, render_layers
from spacy_hmtl.scores_table import format_scores
from spacy_hmtl.tasks import get_task, headline_scores, register_task, task_names, unregister_task
from spacy_hmtl.training import MultiTaskCorpus, strip_annotation

from helpers import TINY_CONFIG, make_examples, read_jsonl, write_docbin
from toy_head import TOPIC_ATTR, TOPIC_SCORE_ATTR, TOPIC_TASK, score_topics

# (words, entities, topic): two topics told apart by their words; one document has no
# topic annotation (it trains NER only)
DOCS = [
    ("The striker scored a late goal in Madrid .".split(), [(7, 8, "LOC")], "sports"),
    ("Our team won the match in Paris .".split(), [(6, 7, "LOC")], "sports"),
    ("The keeper saved a penalty .".split(), [], "sports"),
    ("The protein binds the receptor in Boston .".split(), [(6, 7, "LOC")], "science"),
    ("We measured the enzyme activity .".split(), [], "science"),
    ("The cell divides after mitosis .".split(), [], "science"),
    ("They met in Rome .".split(), [(3, 4, "LOC")], None),
]
TEXTS = [" ".join(words) for words, _, _ in DOCS]
STEPS = 40


@pytest.fixture(scope="module")
def topic_task():
    """The toy task registered (and its Doc extensions) for this module's tests only."""
    register_task(TOPIC_TASK)
    register_extensions()
    try:
        yield TOPIC_TASK
    finally:
        unregister_task(TOPIC_TASK.name)
        for attr in (TOPIC_ATTR, TOPIC_SCORE_ATTR):
            Doc.remove_extension(attr)


def gold_docs(vocab):
    docs = []
    for words, ents, topic in DOCS:
        doc = Doc(vocab, words=words)
        doc.ents = [Span(doc, s, e, label=label) for s, e, label in ents]
        doc._.set(TOPIC_ATTR, topic)
        docs.append(doc)
    return docs


def blank_pipeline():
    """The tiny pipeline's encoder and NER head, and the topic head on level 1."""
    tiny = Config().from_str(TINY_CONFIG, interpolate=False)["components"]
    nlp = spacy.blank("en")
    nlp.add_pipe("hmtl_encoder", config={"model": tiny["hmtl_encoder"]["model"]})
    nlp.add_pipe("hmtl_ner", config={"model": tiny["hmtl_ner"]["model"]})
    nlp.add_pipe("toy_topic")
    return nlp


@pytest.fixture(scope="module")
def trained(topic_task):
    spacy.util.fix_random_seed(0)
    nlp = blank_pipeline()
    examples = make_examples(nlp, gold_docs(nlp.vocab))
    optimizer = Adam(0.01)
    nlp.initialize(lambda: examples, sgd=optimizer)
    for _ in range(STEPS):
        nlp.update(examples, sgd=optimizer)
    return nlp, examples


@pytest.fixture(scope="module")
def model_path(trained, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("fifth_head") / "model"
    trained[0].to_disk(path)
    return path


def test_the_registry_lists_it_after_the_four(topic_task):
    assert task_names() == ("ner", "mentions", "relations", "coref", "topic")
    assert get_task("topic") is TOPIC_TASK
    assert headline_scores()[-1] == "topic_f"
    assert render_layers()[-2:] == ("topic", "graph")


def test_it_learns_its_labels(trained):
    nlp, _ = trained
    assert nlp.get_pipe("toy_topic").labels == ("science", "sports")
    predicted = [doc._.get(TOPIC_ATTR) for doc in nlp.pipe(TEXTS)]
    assert predicted[:-1] == [topic for _, _, topic in DOCS[:-1]]
    assert all(doc._.get(TOPIC_SCORE_ATTR) > 0.5 for doc in nlp.pipe(TEXTS))


def test_scorer_against_hand_computed_values(topic_task):
    vocab = spacy.blank("en").vocab

    def example(gold, predicted):
        ref, pred = Doc(vocab, words=["a", "b"]), Doc(vocab, words=["a", "b"])
        ref._.set(TOPIC_ATTR, gold)
        pred._.set(TOPIC_ATTR, predicted)
        return Example(pred, ref)

    # 3 annotated documents, 2 given a topic, 1 of them right; the unannotated one is not scored
    examples = [example("A", "A"), example("B", "A"), example("A", None), example(None, "B")]
    assert score_topics(examples) == pytest.approx({"topic_p": 0.5, "topic_r": 1 / 3, "topic_f": 0.4})
    assert score_topics([example(None, "A")]) == {"topic_p": None, "topic_r": None, "topic_f": None}


def test_evaluate_and_the_scores_table_show_it(trained, model_path, tmp_path, capsys):
    nlp, examples = trained
    scores = nlp.evaluate(examples)
    assert scores["topic_p"] == scores["topic_r"] == scores["topic_f"] == 1.0  # 6 of 6 right
    assert "ents_f" in scores
    table = {line[:42].strip(): line[42:].split() for line in format_scores(scores).splitlines()[1:]}
    assert table["topic (toy_topic)"] == ["100.0", "100.0", "100.0"]
    # the evaluate command on a DocBin: the same table, and the score in its JSON
    corpus = write_docbin(tmp_path / "gold.spacy", gold_docs(nlp.vocab))
    assert main(["evaluate", str(model_path), str(corpus), "-o", str(tmp_path / "scores.json")]) == 0
    assert "topic (toy_topic)" in capsys.readouterr().out
    assert json.loads((tmp_path / "scores.json").read_text())["topic_f"] == 1.0


def test_annotate_writes_its_field_and_render_draws_it(trained, model_path, tmp_path):
    nlp, _ = trained
    inp = tmp_path / "docs.jsonl"
    inp.write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in enumerate(TEXTS)), encoding="utf8")
    # the library function, and the command on the saved pipeline
    annotate_file(nlp, inp, tmp_path / "lib.jsonl", batch_size=2, show_progress=False)
    assert main(["annotate", str(model_path), str(inp), str(tmp_path / "cli.jsonl"), "--no-progress"]) == 0
    for name in ("lib.jsonl", "cli.jsonl"):
        lines = read_jsonl(tmp_path / name)
        assert [line["topic"]["label"] for line in lines[:-1]] == [topic for _, _, topic in DOCS[:-1]]
        assert all(0.5 < line["topic"]["score"] <= 1.0 for line in lines)
        assert list(lines[0])[-1] == "topic" and lines[0]["entities"] is not None
    # read back into a Doc, and written again the same
    line = read_jsonl(tmp_path / "lib.jsonl")[0]
    doc = doc_from_json(line, nlp.vocab)
    assert doc._.get(TOPIC_ATTR) == "sports" and doc_to_json(doc, line["id"]) == line
    # an unannotated doc: null, as every layer
    assert doc_to_json(nlp.make_doc("No topic here ."))["topic"] is None
    # rendered from a Doc and from the annotate output
    html = render(nlp(TEXTS[3]))
    assert '<section class="hmtl-layer hmtl-topic"><h3>Topic</h3>' in html and ">science (score" in html
    assert "hmtl-topic" not in render(nlp(TEXTS[3]), layers=["entities"])
    blocks, skipped = render_jsonl(tmp_path / "cli.jsonl")
    assert skipped == 0 and all("hmtl-topic" in block for block in blocks)


def test_the_multitask_reader_strips_it(topic_task, tmp_path):
    doc = gold_docs(spacy.blank("en").vocab)[0]
    assert TOPIC_TASK.is_annotated(doc, None)
    strip_annotation(doc, ["topic"])
    assert doc._.get(TOPIC_ATTR) == "sports" and not doc.has_annotation("ENT_IOB")
    strip_annotation(doc, ["ner"])
    assert not TOPIC_TASK.is_annotated(doc, None)
    # a corpus declaring only the topic: its entities read as missing
    path = write_docbin(tmp_path / "train.spacy", gold_docs(spacy.blank("en").vocab))
    reader = MultiTaskCorpus({"topics": {"path": str(path), "tasks": ["topic"]}})
    refs = [eg.reference for eg in reader(spacy.blank("en"))]
    assert [ref._.get(TOPIC_ATTR) for ref in refs] == [topic for _, _, topic in DOCS]
    assert not any(ref.has_annotation("ENT_IOB") for ref in refs)


def test_round_trip_through_disk(trained, model_path):
    nlp, _ = trained
    loaded = spacy.load(model_path)
    assert loaded.pipe_names == ["hmtl_encoder", "hmtl_ner", "toy_topic"]
    assert loaded.get_pipe("toy_topic").labels == nlp.get_pipe("toy_topic").labels

    def topics(pipeline):
        return [(doc._.get(TOPIC_ATTR), round(doc._.get(TOPIC_SCORE_ATTR), 5)) for doc in pipeline.pipe(TEXTS)]

    assert topics(loaded) == topics(nlp)
    assert [doc_to_json(d) for d in loaded.pipe(TEXTS)] == [doc_to_json(d) for d in nlp.pipe(TEXTS)]


def test_unregistered_it_is_gone_and_the_four_are_unchanged(topic_task):
    unregister_task("topic")
    try:
        assert task_names() == ("ner", "mentions", "relations", "coref")
        assert "topic" not in doc_to_json(spacy.blank("en")("A text ."))
    finally:
        register_task(TOPIC_TASK)
