"""The task registry (``spacy_hmtl.tasks``): the four heads' descriptions come from the
package's entry points, in pipeline order; each one's JSON reads back into the same layer,
its strip makes the layer missing; a registration that would clash is refused."""
from dataclasses import replace

import pytest
import spacy

from spacy_hmtl.doc_json import doc_from_json, doc_to_json
from spacy_hmtl.tasks import (
    ScoreRow,
    Task,
    headline_scores,
    register_task,
    registered_tasks,
    task_names,
    task_of_factory,
    task_registry,
    unregister_task,
)

from helpers import reference_docs


def test_the_four_heads_are_registered_by_entry_point_in_pipeline_order():
    tasks = registered_tasks()
    assert [(t.name, t.factory, t.layer, t.json_key) for t in tasks] == [
        ("ner", "hmtl_ner", "entities", "entities"),
        ("mentions", "hmtl_mentions", "mentions", "mentions"),
        ("relations", "hmtl_relations", "relations", "relations"),
        ("coref", "hmtl_coref", "coref", "coref_clusters"),
    ]
    assert [t.main_score for t in tasks] == ["ents_f", "mentions_f", "rel_micro_f", "coref_f"]
    assert headline_scores() == ("ents_f", "mentions_f", "rel_micro_f", "rel_strict_f", "coref_f")
    assert task_of_factory("hmtl_coref").name == "coref" and task_of_factory("hmtl_encoder") is None
    # the registry is read once: asking again gives the same objects
    assert registered_tasks() is tasks


def test_each_layer_reads_back_from_its_json_and_strips_to_missing():
    vocab = spacy.blank("en").vocab
    for doc in reference_docs(vocab):
        data = doc_to_json(doc, "x")
        assert all(data[t.json_key] is not None for t in registered_tasks())
        again = doc_from_json(data, vocab)
        assert doc_to_json(again, "x") == data
        for task in registered_tasks():
            assert task.is_annotated(again, task.key())
            task.strip(again, task.key())
            assert not task.is_annotated(again, task.key())
            assert doc_to_json(again)[task.json_key] is None
    # the mentions' span group under another key
    doc = reference_docs(vocab)[0]
    doc.spans["predicted"] = doc.spans.pop("mentions")
    assert doc_to_json(doc)["mentions"] is None
    assert doc_to_json(doc, mentions_key="predicted")["mentions"] == doc_to_json(reference_docs(vocab)[0])["mentions"]


def test_clashing_or_malformed_registrations_are_refused():
    ner = registered_tasks()[0]
    with pytest.raises(ValueError, match="json_key 'text'"):
        replace(ner, name="other", json_key="text")
    with pytest.raises(ValueError, match="score_rows is empty"):
        replace(ner, name="other", score_rows=())
    with pytest.raises(TypeError):
        register_task(lambda doc: doc)  # type: ignore[arg-type]
    clash = replace(ner, name="entities2", factory="other_ner", layer="entities2")  # the same JSON field
    register_task(clash)
    try:
        with pytest.raises(ValueError, match="share the json_key 'entities'"):
            registered_tasks()
    finally:
        unregister_task("entities2")
    assert len(registered_tasks()) == 4
    assert isinstance(ner, Task) and ner.score_rows[0] == ScoreRow("ents", "entities")


def test_a_task_registered_by_decorator_on_a_function():
    ner = registered_tasks()[0]

    @task_registry.register("tags")
    def tags_task() -> Task:
        return replace(ner, name="tags", factory="other_tagger", layer="tags", json_key="tags", order=60)

    try:
        assert task_names()[-1] == "tags"
        doc = reference_docs(spacy.blank("en").vocab)[0]
        assert doc_to_json(doc)["tags"] == doc_to_json(doc)["entities"]
    finally:
        unregister_task("tags")
    assert "tags" not in task_names()
