"""Training on one's own data (docs/OWN_DATA.md): the shipped samples (Prodigy, Label
Studio, brat: the same documents and gold), the `split` command, and the `own-data`
workflow of project.yml run end to end (convert -> split -> train -> evaluate -> package)
in CI-sized steps."""
import json
import shutil
from pathlib import Path
from typing import Dict, Tuple

import pytest
from spacy.tokens import DocBin
from spacy.vocab import Vocab

import spacy_hmtl  # noqa: F401  (registers the Doc extensions)
from spacy_hmtl.annotations import get_coref_clusters, get_relation_records
from spacy_hmtl.converters import ConversionError, convert_brat, convert_labelstudio, convert_prodigy
from spacy_hmtl.split_command import split_corpus

ROOT = Path(__file__).resolve().parent.parent
OWN_DATA = ROOT / "assets" / "own_data"
SAMPLE = OWN_DATA / "annotations.jsonl"
# the Prodigy sample in the other formats (the project.yml var own_data for each)
SAMPLES = {"labelstudio": OWN_DATA / "labelstudio.json", "brat": OWN_DATA / "brat"}


def keys(path: Path):
    return [doc._.hmtl_doc_key for doc in DocBin(store_user_data=True).from_disk(path).get_docs(Vocab())]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("own_data") / "all.spacy"
    convert_prodigy(SAMPLE, path)
    return path


def test_sample_has_every_layer(corpus):
    summary = convert_prodigy(SAMPLE, corpus, overwrite=True)
    assert summary.documents >= 30 and summary.entities and summary.mentions
    assert summary.relations and summary.clusters
    assert set(summary.layers) == {"entities", "mentions", "relations", "coref"}
    assert summary.notes["records answered 'reject' (dropped)"] == 1
    docs = list(DocBin(store_user_data=True).from_disk(corpus).get_docs(Vocab()))
    assert all(get_relation_records(doc) is not None and get_coref_clusters(doc) is not None for doc in docs)


def gold_layers(path: Path) -> Dict[str, Tuple]:
    """Each document of a corpus (by key): its text and gold layers in character offsets
    (the readers tokenize differently): entities, mentions, relations, clusters."""
    def offsets(span) -> Tuple[int, int]:
        return span.start_char, span.end_char

    gold = {}
    for doc in DocBin(store_user_data=True).from_disk(path).get_docs(Vocab()):
        gold[doc._.hmtl_doc_key] = (
            doc.text,
            sorted((*offsets(ent), ent.label_) for ent in doc.ents),
            sorted((*offsets(span), span.label_) for span in doc.spans["mentions"]),
            sorted((*offsets(r.head), *offsets(r.tail), r.label) for r in doc._.relations),
            sorted(sorted(map(offsets, cluster)) for cluster in doc._.coref_clusters),
        )
    return gold


@pytest.mark.parametrize("fmt", sorted(SAMPLES))
def test_sample_in_each_format_holds_the_same_gold(tmp_path, corpus, fmt):
    """labelstudio.json and brat/ convert to the Prodigy sample's documents and gold; the
    Label Studio export's cancelled annotation is dropped and counted (Prodigy's reject)."""
    convert = {"labelstudio": convert_labelstudio, "brat": convert_brat}[fmt]
    summary = convert(SAMPLES[fmt], tmp_path / "all.spacy")
    assert set(summary.layers) == {"entities", "mentions", "relations", "coref"}
    if fmt == "labelstudio":
        assert summary.notes["annotations cancelled (dropped)"] == 1
    expected = gold_layers(corpus)
    assert gold_layers(tmp_path / "all.spacy") == expected
    assert all(layers[1] and layers[2] for layers in expected.values())


def test_own_data_convert_step_reads_each_format(tmp_path, corpus):
    """The workflow's convert step with ``--vars.own_data SAMPLE --vars.own_data_format
    FORMAT`` (a brat directory too: weasel hashes it as a dependency)."""
    from weasel.cli.run import project_run

    shutil.copy(ROOT / "project.yml", tmp_path / "project.yml")
    shutil.copytree(OWN_DATA, tmp_path / "assets" / "own_data")
    output = tmp_path / "corpus" / "own_data" / "all.spacy"
    for fmt, path in SAMPLES.items():
        output.unlink(missing_ok=True)
        overrides = {"vars.own_data": str(path.relative_to(ROOT)), "vars.own_data_format": fmt}
        project_run(tmp_path, "own-data-convert", overrides=overrides, capture=True)
        assert keys(output) == keys(corpus)


def test_split_by_document(tmp_path, corpus):
    n_train, n_dev = split_corpus(corpus, tmp_path / "train.spacy", tmp_path / "dev.spacy", dev_fraction=0.2, seed=0)
    all_keys = keys(corpus)
    train, dev = keys(tmp_path / "train.spacy"), keys(tmp_path / "dev.spacy")
    assert (n_train, n_dev) == (len(train), len(dev)) and n_dev == round(len(all_keys) * 0.2)
    # a partition, each part in the input order
    assert sorted(train + dev) == sorted(all_keys) and not set(train) & set(dev)
    assert train == [k for k in all_keys if k in train] and dev == [k for k in all_keys if k in dev]
    # the same seed gives the same split, another seed another one
    split_corpus(corpus, tmp_path / "t2.spacy", tmp_path / "d2.spacy", seed=0)
    assert keys(tmp_path / "d2.spacy") == dev
    split_corpus(corpus, tmp_path / "t3.spacy", tmp_path / "d3.spacy", seed=1)
    assert keys(tmp_path / "d3.spacy") != dev
    # the layers travel with the documents
    doc = next(DocBin(store_user_data=True).from_disk(tmp_path / "dev.spacy").get_docs(Vocab()))
    assert get_relation_records(doc) is not None and doc.ents


def test_split_errors(tmp_path, corpus, capsys):
    from spacy_hmtl.cli import main

    train, dev = tmp_path / "train.spacy", tmp_path / "dev.spacy"
    assert main(["split", str(corpus), str(corpus), str(dev)]) == 1
    assert "is also an input" in capsys.readouterr().err and not dev.exists()
    assert main(["split", str(corpus), str(train), str(train)]) == 1
    assert "is also the training output" in capsys.readouterr().err
    dev.write_bytes(b"previous")
    assert main(["split", str(corpus), str(train), str(dev)]) == 1
    assert "exists already; pass --overwrite" in capsys.readouterr().err
    assert dev.read_bytes() == b"previous" and not train.exists()
    assert main(["split", str(SAMPLE), str(train), str(dev), "--overwrite"]) == 1
    assert "not a .spacy file" in capsys.readouterr().err and dev.read_bytes() == b"previous"
    one = tmp_path / "one.spacy"
    DocBin(docs=list(DocBin().from_disk(corpus).get_docs(Vocab()))[:1]).to_disk(one)
    assert main(["split", str(one), str(train), str(dev), "--overwrite"]) == 1
    assert "splitting needs at least 2" in capsys.readouterr().err
    with pytest.raises(SystemExit) as usage:
        main(["split", str(corpus), str(train), str(dev), "--dev-fraction", "1.5"])
    assert usage.value.code == 2
    with pytest.raises(ConversionError, match="file not found"):
        split_corpus(tmp_path / "missing.spacy", tmp_path / "t.spacy", tmp_path / "d.spacy")


def test_own_data_workflow_end_to_end(tmp_path):
    """`spacy project run own-data` on a copy of the project (20 training steps): every
    command of the workflow runs, and the packaged pipeline is built."""
    from weasel.cli.run import project_run
    from weasel.util import load_project_config

    # loaded from the copy: weasel creates the project's directories where it loads it
    shutil.copy(ROOT / "project.yml", tmp_path / "project.yml")
    config = load_project_config(tmp_path)
    steps = config["workflows"]["own-data"]
    assert steps[0] == "own-data-convert" and steps[-1] == "own-data-package"
    config_name = config["vars"]["own_data_config"]
    shutil.copy(ROOT / "configs" / f"{config_name}.cfg", tmp_path / "configs")
    shutil.copytree(ROOT / "assets" / "own_data", tmp_path / "assets" / "own_data")
    project_run(tmp_path, "own-data", overrides={"vars.own_data_max_steps": 20}, capture=True)
    assert (tmp_path / "corpus" / "own_data" / "train.spacy").exists()
    assert (tmp_path / "training" / "own_data" / "model-best" / "config.cfg").exists()
    scores = json.loads((tmp_path / "metrics" / "own_data_dev.json").read_text())
    assert "ents_f" in scores and "coref_f" in json.dumps(scores)
    assert list((tmp_path / "packages").glob("en_hmtl_own_data-*/dist/*.tar.gz"))
