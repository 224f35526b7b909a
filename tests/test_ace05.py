"""The documented ACE05 workflow on a tiny synthetic DyGIE-style file (no licensed data):
`convert scierc` reads it (extra keys such as "dataset" are ignored, no clusters means
coreference is not annotated), configs/ace05.cfg trains on it for a few steps with
`spacy train` and the result evaluates and annotates end to end."""
import json
from pathlib import Path

import pytest
import spacy
from spacy.cli.evaluate import evaluate
from spacy.cli.train import train
from spacy.tokens import DocBin

import spacy_hmtl  # noqa: F401  (registers the Doc extensions)
from spacy_hmtl.cli import main
from spacy_hmtl.graph import entity_graph

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = Path(__file__).parent / "data" / "ace05" / "synthetic_dygie.json"
ACE_TYPES = {"PER", "ORG", "GPE", "LOC", "FAC", "VEH", "WEA"}
ACE_RELATIONS = {"PHYS", "PART-WHOLE", "ART", "ORG-AFF", "PER-SOC", "GEN-AFF"}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("ace05") / "ace05.spacy"
    assert main(["convert", "scierc", str(SAMPLE), str(path), "--no-progress"]) == 0
    return path


def test_dygie_ace05_converts(corpus):
    docs = list(DocBin(store_user_data=True).from_disk(corpus).get_docs(spacy.blank("en").vocab))
    records = [json.loads(line) for line in SAMPLE.read_text(encoding="utf8").splitlines()]
    assert [d._.hmtl_doc_key for d in docs] == [r["doc_key"] for r in records]
    assert {e.label_ for d in docs for e in d.ents} == ACE_TYPES
    assert {r.label for d in docs for r in d._.relations} == ACE_RELATIONS
    assert sum(len(d._.relations) for d in docs) == sum(len(s) for r in records for s in r["relations"])
    assert all(d._.coref_clusters is None for d in docs)  # no "clusters" key: not annotated
    graph = entity_graph(docs[0])  # gold graph: relations between stand-alone entities
    assert ("president", "ORG-AFF", "Acme Corp") in set(graph.triples())


def test_ace05_config_trains_and_evaluates(corpus, tmp_path):
    overrides = {"paths.train": str(corpus), "paths.dev": str(corpus), "training.max_steps": 3,
                 "training.eval_frequency": 3}
    train(ROOT / "configs" / "ace05.cfg", tmp_path, overrides=overrides)
    model = tmp_path / "model-last"
    nlp = spacy.load(model)
    assert nlp.pipe_names == ["sentencizer", "hmtl_encoder", "hmtl_ner", "hmtl_mentions", "hmtl_relations"]
    assert set(nlp.get_pipe("hmtl_ner").labels) == ACE_TYPES
    scores = evaluate(str(model), corpus)
    assert {"ents_f", "mentions_f", "rel_micro_f", "rel_strict_f"} <= set(scores)
    doc = nlp("The president of Acme Corp met reporters in Boston .")
    assert doc._.relations is not None and doc._.coref_clusters is None
    assert entity_graph(doc).annotated == {"entities": True, "mentions": True, "relations": True, "coref": False}
