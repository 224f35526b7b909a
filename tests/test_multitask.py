"""Multi-corpus training: ``spacy_hmtl.MultiTaskCorpus.v1`` + ``spacy_hmtl.task_batcher.v1``.

Two tiny DocBin corpora on disk, both carrying entities *and* mentions, declared with
disjoint tasks (A: NER only, B: mentions only): the reader must strip the undeclared
layer, the batcher must yield single-corpus batches with the chosen frequencies, and a
small HMTL pipeline trained through both must overfit each head on its own corpus.
"""
import random
from collections import Counter

import pytest
import spacy
import torch
from spacy.tokens import Doc, DocBin, Span
from spacy.training import Example
from spacy.util import registry
from thinc.api import Config, fix_random_seed

import spacy_hmtl.training  # noqa: F401  (registers the reader and the batcher)
from spacy_hmtl.annotations import (
    ENTS_OVERFLOW_KEY,
    get_coref_clusters,
    get_relation_records,
    has_coref_annotation,
    has_mention_annotation,
    has_ner_annotation,
    has_relation_annotation,
    set_coref_clusters,
    set_relation_records,
)
from spacy_hmtl.training import (
    CORPUS_TAG,
    TASKS_TAG,
    TaskBatcher,
    get_corpus_name,
    get_corpus_tasks,
    strip_annotation,
    strip_docbin,
)

torch.set_num_threads(1)

# (words, entities, mentions): entities are non-overlapping, mentions include pronouns.
CORPUS_A = [
    ("Alice lives in Paris .", [(0, 1, "PER"), (3, 4, "LOC")], [(0, 1, "PER"), (3, 4, "LOC")]),
    ("Bob visited London yesterday .", [(0, 1, "PER"), (2, 3, "LOC")], [(0, 1, "PER"), (2, 3, "LOC")]),
    ("Paris is far from Alice .", [(0, 1, "LOC"), (4, 5, "PER")], [(0, 1, "LOC"), (4, 5, "PER")]),
    ("London loves Bob .", [(0, 1, "LOC"), (2, 3, "PER")], [(0, 1, "LOC"), (2, 3, "PER")]),
]
CORPUS_B = [
    ("the old man saw her .", [(1, 3, "PER")], [(0, 3, "NOM"), (4, 5, "PRON")]),
    ("she met the young girl .", [(3, 5, "PER")], [(0, 1, "PRON"), (2, 5, "NOM")]),
    ("he thanked the man .", [(3, 4, "PER")], [(0, 1, "PRON"), (2, 4, "NOM")]),
    ("the girl smiled at him .", [(1, 2, "PER")], [(0, 2, "NOM"), (4, 5, "PRON")]),
]


def _doc(vocab, words, ents, mentions) -> Doc:
    doc = Doc(vocab, words=words.split())
    doc.ents = [Span(doc, s, e, label=label) for s, e, label in ents]
    doc.spans["mentions"] = [Span(doc, s, e, label=label) for s, e, label in mentions]
    doc.spans[ENTS_OVERFLOW_KEY] = []
    return doc


@pytest.fixture(scope="module")
def corpus_paths(tmp_path_factory):
    root = tmp_path_factory.mktemp("multitask")
    vocab = spacy.blank("en").vocab
    paths = {}
    for name, data in (("a", CORPUS_A), ("b", CORPUS_B)):
        docs = [_doc(vocab, *row) for row in data]
        paths[name] = root / f"{name}.spacy"
        DocBin(docs=docs, store_user_data=True).to_disk(paths[name])
    return paths


def _reader(corpus_paths, **kwargs):
    config = Config().from_str(
        f"""
        [corpora]
        [corpora.train]
        @readers = "spacy_hmtl.MultiTaskCorpus.v1"
        [corpora.train.corpora]
        [corpora.train.corpora.a]
        path = "{corpus_paths['a']}"
        tasks = ["ner"]
        [corpora.train.corpora.b]
        path = "{corpus_paths['b']}"
        tasks = ["mentions"]
        """
    )
    for key, value in kwargs.items():
        config["corpora"]["train"][key] = value
    return registry.resolve(config)["corpora"]["train"]


# --- the reader -----------------------------------------------------------------------


def test_reader_strips_undeclared_tasks_and_tags_examples(corpus_paths):
    nlp = spacy.blank("en")
    examples = list(_reader(corpus_paths)(nlp))
    assert len(examples) == len(CORPUS_A) + len(CORPUS_B)
    by_corpus = Counter(get_corpus_name(eg) for eg in examples)
    assert by_corpus == {"a": len(CORPUS_A), "b": len(CORPUS_B)}
    for eg in examples:
        ref = eg.reference
        if get_corpus_name(eg) == "a":
            assert get_corpus_tasks(eg) == ["ner"]
            assert has_ner_annotation(ref) and len(ref.ents) == 2
            assert not has_mention_annotation(ref)
        else:
            assert get_corpus_tasks(eg) == ["mentions"]
            assert not has_ner_annotation(ref) and len(ref.ents) == 0
            assert ENTS_OVERFLOW_KEY not in ref.spans
            assert has_mention_annotation(ref) and len(ref.spans["mentions"]) == 2
        assert not has_relation_annotation(ref) and not has_coref_annotation(ref)
        # Documents are whole (max_length = 0 semantics) and the tag is plain data.
        assert len(eg.predicted) == len(ref)
        assert isinstance(ref.user_data[CORPUS_TAG], str)
        assert isinstance(ref.user_data[TASKS_TAG], list)


def test_strip_annotation_marks_every_task_missing():
    nlp = spacy.blank("en")
    doc = _doc(nlp.vocab, "Alice met Bob in Paris and she smiled .", [(0, 1, "PER"), (2, 3, "PER")], [(0, 1, "PER")])
    set_relation_records(doc, [[0, 1, 2, 3, "Knows"]])
    set_coref_clusters(doc, [[(0, 1), (6, 7)]])
    doc.spans["mention_kinds"] = [Span(doc, 0, 1, label="PROP")]
    assert all(f(doc) for f in (has_ner_annotation, has_mention_annotation, has_relation_annotation, has_coref_annotation))
    # Keeping a task keeps its annotation untouched.
    strip_annotation(doc, ["ner", "mentions", "relations", "coref"])
    assert get_relation_records(doc) == [[0, 1, 2, 3, "Knows", 1.0]]
    assert get_coref_clusters(doc) == [[(0, 1), (6, 7)]]
    strip_annotation(doc, ["relations"])
    assert not has_ner_annotation(doc) and not has_mention_annotation(doc) and not has_coref_annotation(doc)
    assert "mention_kinds" not in doc.spans and not any(k.startswith("coref_clusters") for k in doc.spans)
    assert has_relation_annotation(doc)
    strip_annotation(doc, ["ner"])
    assert not has_relation_annotation(doc)
    # Missing survives serialization (what a DocBin written by strip_docbin holds).
    doc2 = Doc(nlp.vocab).from_bytes(doc.to_bytes())
    assert not any(f(doc2) for f in (has_ner_annotation, has_mention_annotation, has_relation_annotation, has_coref_annotation))
    with pytest.raises(ValueError, match="Unknown task"):
        strip_annotation(doc, ["ents"])


def test_strip_docbin(corpus_paths, tmp_path):
    out = tmp_path / "b_view.spacy"
    assert strip_docbin(corpus_paths["b"], out, ["mentions"]) == len(CORPUS_B)
    docs = list(DocBin().from_disk(out).get_docs(spacy.blank("en").vocab))
    assert all(has_mention_annotation(d) and not has_ner_annotation(d) for d in docs)


@pytest.mark.parametrize(
    "spec,match",
    [
        ({"tasks": ["ner"]}, "'path' is required"),
        ({"path": "A", "tasks": ["ents"]}, "unknown task"),
        ({"path": "A", "tasks": []}, "non-empty list"),
        ({"path": "A", "tasks": ["ner"], "max_length": 10}, "unknown setting"),
        ({"path": "/nonexistent/x.spacy", "tasks": ["ner"]}, "does not exist"),
    ],
)
def test_reader_validates_its_settings(corpus_paths, spec, match):
    spec = {k: (str(corpus_paths["a"]) if v == "A" else v) for k, v in spec.items()}
    with pytest.raises(ValueError, match=match):
        registry.readers.get("spacy_hmtl.MultiTaskCorpus.v1")(corpora={"x": spec})


# --- the batcher ----------------------------------------------------------------------


def _tagged_examples(counts, words_per_doc=10):
    """Untrained examples tagged with a corpus name (only the tag matters here)."""
    nlp = spacy.blank("en")
    examples = []
    for name, n in counts.items():
        for i in range(n):
            doc = Doc(nlp.vocab, words=[f"w{i}"] * words_per_doc)
            eg = Example(doc, doc.copy())
            eg.reference.user_data[CORPUS_TAG] = name
            examples.append(eg)
    return examples


def _batch_counts(batcher, examples, epochs):
    counts = Counter()
    sequence = []
    for _ in range(epochs):
        for batch in batcher(examples):
            names = {get_corpus_name(eg) for eg in batch}
            assert len(names) == 1, "a batch mixes corpora"
            name = names.pop()
            counts[name] += 1
            sequence.append(name)
    return counts, sequence


# Corpus "big" has 3x the batches of "small" (size 50 words = 5 docs of 10 words).
COUNTS = {"big": 150, "small": 50}


@pytest.mark.parametrize(
    "kwargs,expected",
    [
        ({"sampling": "proportional"}, {"big": 0.75, "small": 0.25}),
        ({"sampling": "uniform"}, {"big": 0.5, "small": 0.5}),
        ({"weights": {"big": 1.0, "small": 4.0}}, {"big": 0.2, "small": 0.8}),
        ({"sampling": "weights", "weights": {"big": 1.0, "small": 0.0}}, {"big": 1.0, "small": 0.0}),
    ],
)
def test_batcher_frequencies_follow_sampling(kwargs, expected):
    examples = _tagged_examples(COUNTS)
    batcher = registry.batchers.get("spacy_hmtl.task_batcher.v1")(size=50, tolerance=0.0, seed=1, **kwargs)
    counts, _ = _batch_counts(batcher, examples, epochs=50)
    total = sum(counts.values())
    # One epoch = the number of batches of one pass (30 + 10).
    assert total == 50 * 40
    for name, p in expected.items():
        assert abs(counts[name] / total - p) < 0.03, (name, counts)


def test_batcher_is_reproducible_and_seeded():
    examples = _tagged_examples(COUNTS)
    make = registry.batchers.get("spacy_hmtl.task_batcher.v1")
    _, seq1 = _batch_counts(make(size=50, seed=3), examples, epochs=3)
    _, seq2 = _batch_counts(make(size=50, seed=3), examples, epochs=3)
    _, seq3 = _batch_counts(make(size=50, seed=4), examples, epochs=3)
    assert seq1 == seq2
    assert seq1 != seq3
    # The batches themselves (not only the corpus draws) are reproducible.
    batches1 = [[id(eg) for eg in b] for b in make(size=50, seed=3)(examples)]
    batches2 = [[id(eg) for eg in b] for b in make(size=50, seed=3)(examples)]
    assert batches1 == batches2


def test_batcher_covers_every_example_and_cycles():
    examples = _tagged_examples({"big": 30, "small": 10})
    batcher = TaskBatcher(size=50, tolerance=0.0, sampling="uniform", seed=0, steps_per_epoch=100)
    batches = list(batcher(examples))
    assert len(batches) == 100
    seen = {id(eg) for b in batches for eg in b}
    assert seen == {id(eg) for eg in examples}
    # Untagged examples form one group: a seeded batch_by_words.
    plain = _tagged_examples({"x": 20})
    for eg in plain:
        del eg.reference.user_data[CORPUS_TAG]
    assert sum(len(b) for b in TaskBatcher(size=50, tolerance=0.0)(plain)) == 20


def test_batcher_validates_its_settings():
    make = registry.batchers.get("spacy_hmtl.task_batcher.v1")
    with pytest.raises(ValueError, match="sampling must be"):
        make(sampling="temperature")
    with pytest.raises(ValueError, match="needs weights"):
        make(sampling="weights")
    with pytest.raises(ValueError, match="only used with"):
        make(sampling="uniform", weights={"a": 1.0})
    with pytest.raises(ValueError, match=">= 0"):
        make(weights={"a": -1.0})
    with pytest.raises(ValueError, match="no weight for"):
        list(make(weights={"big": 1.0})(_tagged_examples({"big": 5, "small": 5})))


def _varied_length_examples(lengths, name):
    nlp = spacy.blank("en")
    examples = []
    for i, n in enumerate(lengths):
        doc = Doc(nlp.vocab, words=[f"w{i}"] * n)
        eg = Example(doc, doc.copy())
        eg.reference.user_data[CORPUS_TAG] = name
        examples.append(eg)
    return examples


def test_v2_sorts_each_corpus_by_length_and_v1_does_not():
    """task_batcher.v2 (pool_size) cuts length-sorted pools: a batch holds sentences of
    similar length, so a fine-tuned transformer pads little; pool_size = 0 is v1 exactly."""
    rng = random.Random(0)
    examples = _varied_length_examples([rng.randint(2, 60) for _ in range(200)], "a")
    examples += _varied_length_examples([rng.randint(2, 60) for _ in range(100)], "b")
    v1 = registry.batchers.get("spacy_hmtl.task_batcher.v1")
    v2 = registry.batchers.get("spacy_hmtl.task_batcher.v2")

    def padding(batches):
        # words a transformer pads: each batch padded to its longest example
        return sum(max(len(eg) for eg in b) * len(b) - sum(len(eg) for eg in b) for b in batches)

    sorted_batches = list(v2(size=200, seed=5, pool_size=100, steps_per_epoch=60)(examples))
    plain_batches = list(v1(size=200, seed=5, steps_per_epoch=60)(examples))
    for batches in (sorted_batches, plain_batches):
        assert all(len({get_corpus_name(eg) for eg in b}) == 1 for b in batches)
    assert padding(sorted_batches) * 5 < padding(plain_batches)
    # one pass over a corpus still yields each of its examples once
    one_pass = TaskBatcher(size=200, seed=5, pool_size=100, sampling="weights", weights={"a": 1.0, "b": 0.0})
    first = [id(eg) for b in one_pass._batches(examples[:200]) for eg in b]
    assert sorted(first) == sorted(id(eg) for eg in examples[:200])
    # reproducible from the seed; pool_size = 0 gives v1's batches
    again = list(v2(size=200, seed=5, pool_size=100, steps_per_epoch=60)(examples))
    assert [[id(eg) for eg in b] for b in again] == [[id(eg) for eg in b] for b in sorted_batches]
    as_v1 = list(v2(size=200, seed=5, pool_size=0, steps_per_epoch=60)(examples))
    assert [[id(eg) for eg in b] for b in as_v1] == [[id(eg) for eg in b] for b in plain_batches]
    with pytest.raises(ValueError, match="pool_size"):
        v2(pool_size=-1)


def test_annealed_sampling_moves_from_proportional_to_its_final_alpha():
    """sampling = "annealed": p(corpus) proportional to batches ** alpha, alpha falling
    linearly from 1 (epoch 0) to final_alpha (epoch anneal_epochs) and staying there."""
    examples = _tagged_examples(COUNTS)  # 30 and 10 batches a pass
    batcher = registry.batchers.get("spacy_hmtl.task_batcher.v2")(
        size=50, tolerance=0.0, seed=2, sampling="annealed", anneal_epochs=4, final_alpha=0.0, steps_per_epoch=4000
    )
    assert [batcher.alpha(e) for e in (0, 1, 2, 4, 9)] == [1.0, 0.75, 0.5, 0.0, 0.0]
    expected = {0: 0.75, 2: 30**0.5 / (30**0.5 + 10**0.5), 5: 0.5}  # share of "big" by epoch
    for epoch in range(6):
        counts = Counter(get_corpus_name(b[0]) for b in batcher(examples))
        if epoch in expected:
            assert abs(counts["big"] / 4000 - expected[epoch]) < 0.025, (epoch, counts)
    with pytest.raises(ValueError, match="anneal_epochs"):
        registry.batchers.get("spacy_hmtl.task_batcher.v2")(sampling="annealed")
    with pytest.raises(ValueError, match="anneal_epochs"):
        registry.batchers.get("spacy_hmtl.task_batcher.v1")(sampling="annealed")
    with pytest.raises(ValueError, match="final_alpha"):
        registry.batchers.get("spacy_hmtl.task_batcher.v2")(sampling="annealed", anneal_epochs=3, final_alpha=1.5)


def test_batcher_in_spacy_training_loop_with_max_epochs_0():
    """spaCy's loop calls the batcher once per epoch, forever when max_epochs = 0."""
    from spacy.training.loop import create_train_batches

    examples = _tagged_examples({"big": 30, "small": 10})
    batcher = TaskBatcher(size=50, tolerance=0.0, seed=0)
    nlp = spacy.blank("en")
    stream = create_train_batches(nlp, lambda nlp: iter(examples), batcher, max_epochs=0)
    epochs = [next(stream)[0] for _ in range(25)]  # 8 batches per epoch
    assert epochs[0] == 0 and epochs[-1] == 3


# --- training through both --------------------------------------------------------------

SMALL_ENCODER = {
    "model": {
        "level_widths": [32, 32],
        "level_depths": [1, 1],
        "dropout": 0.0,
        "embed": {"width": 32, "rows": [500, 200, 200, 200]},
    }
}


def test_both_heads_learn_from_their_own_corpus(corpus_paths):
    fix_random_seed(0)
    torch.manual_seed(0)
    nlp = spacy.blank("en")
    nlp.add_pipe("hmtl_encoder", config=SMALL_ENCODER)
    nlp.add_pipe("hmtl_ner", config={"model": {"dropout": 0.0}})
    nlp.add_pipe(
        "hmtl_mentions",
        config={"model": {"hidden_width": 32, "width_embedding": 8, "max_width": 4, "dropout": 0.0}},
    )
    reader = _reader(corpus_paths)
    examples = list(reader(nlp))
    nlp.initialize(lambda: reader(nlp))
    # Labels come only from the corpus declaring the task.
    assert set(nlp.get_pipe("hmtl_ner").labels) == {"PER", "LOC"}
    assert set(nlp.get_pipe("hmtl_mentions").labels) == {"NOM", "PRON"}

    batcher = TaskBatcher(size=12, tolerance=0.2, seed=0)  # about 2 docs per batch
    optimizer = nlp.create_optimizer()
    rng = random.Random(0)
    seen = Counter()
    scores = {}
    for epoch in range(60):
        rng.shuffle(examples)
        for batch in batcher(examples):
            seen[get_corpus_name(batch[0])] += 1
            nlp.update(batch, sgd=optimizer, drop=0.0)
        if epoch >= 20 and epoch % 10 == 9:
            scores = nlp.evaluate(examples)
            if scores["ents_f"] == 1.0 and scores["mentions_f"] == 1.0:
                break
    assert seen["a"] > 0 and seen["b"] > 0
    # Each scorer only saw the docs annotated for its task (the other corpus is stripped),
    # so a perfect score means each head learnt its own corpus.
    assert scores["ents_f"] == 1.0, scores
    assert scores["mentions_f"] == 1.0, scores
    a_only = [eg for eg in examples if get_corpus_name(eg) == "a"]
    assert nlp.evaluate(a_only)["mentions_f"] is None


# --- the shipped config -------------------------------------------------------------------


def test_mixed_config_resolves(corpus_paths):
    """configs/mixed.cfg validates through confection (paths replaced by the tiny corpora)."""
    from pathlib import Path

    cfg_path = Path(__file__).parent.parent / "configs" / "mixed.cfg"
    overrides = {
        "paths.conll04_train": str(corpus_paths["a"]),
        "paths.conll04_dev": str(corpus_paths["a"]),
        "paths.litbank_train": str(corpus_paths["b"]),
        "paths.litbank_dev": str(corpus_paths["b"]),
    }
    config = spacy.util.load_config(cfg_path, overrides=overrides, interpolate=True)
    corpora = registry.resolve(config["corpora"])
    assert corpora["train"].specs["conll04"]["tasks"] == ["ner", "relations"]
    assert corpora["dev"].specs["litbank"]["tasks"] == ["mentions", "coref"]
    batcher = registry.resolve({"b": config["training"]["batcher"]})["b"]
    # CoNLL04 and LitBank drawn 1:2, each task's single-corpus plateau budget in 3,000 steps
    assert isinstance(batcher, TaskBatcher) and batcher.sampling == "weights"
    assert batcher.weights == {"conll04": 1.0, "litbank": 2.0}
    nlp = spacy.blank("en")
    names = Counter(get_corpus_name(eg) for eg in corpora["train"](nlp))
    assert names == {"conll04": len(CORPUS_A), "litbank": len(CORPUS_B)}


# --- evaluation sets read like the dev set ----------------------------------------------


def _dev_like_setup(corpus_paths, root, components: str = ""):
    """Corpora a (NER) and b (mentions) each in a directory with dev.spacy and test.spacy,
    and a pipeline whose ``[corpora.dev]`` is a MultiTaskCorpus over the two dev sets."""
    import shutil

    for name in ("a", "b"):
        (root / name).mkdir()
        for split in ("dev", "test"):
            shutil.copy(corpus_paths[name], root / name / f"{split}.spacy")
    pipeline = "[]" if not components else '["entity_ruler"]'
    config = Config().from_str(
        f"""
        [nlp]
        lang = "en"
        pipeline = {pipeline}
        [components]
        {components}
        [corpora]
        [corpora.dev]
        @readers = "spacy_hmtl.MultiTaskCorpus.v1"
        [corpora.dev.corpora]
        [corpora.dev.corpora.a]
        path = "{root / 'a' / 'dev.spacy'}"
        tasks = ["ner"]
        limit = 1
        [corpora.dev.corpora.b]
        path = "{root / 'b' / 'dev.spacy'}"
        tasks = ["mentions"]
        """
    )
    nlp = spacy.util.load_model_from_config(config, auto_fill=True)
    return nlp, [root / "b" / "test.spacy", root / "a" / "test.spacy"]


def test_read_like_dev_strips_what_each_dev_corpus_does_not_declare(corpus_paths, tmp_path):
    """Test sets pair with the dev corpus in their directory and keep only its tasks:
    corpus b's entities (a task it does not declare) are stripped, as on dev."""
    from spacy_hmtl.training import read_like_dev

    nlp, tests = _dev_like_setup(corpus_paths, tmp_path)
    examples = read_like_dev(nlp, tests)
    # in path order, every document (the dev limit does not apply to the test set)
    assert [get_corpus_name(eg) for eg in examples] == ["b"] * len(CORPUS_B) + ["a"] * len(CORPUS_A)
    for eg in examples:
        if get_corpus_name(eg) == "b":
            assert not has_ner_annotation(eg.reference) and has_mention_annotation(eg.reference)
        else:
            assert has_ner_annotation(eg.reference) and not has_mention_annotation(eg.reference)
    # the plain reader keeps corpus b's entities: this is what the dev-like read avoids
    plain = spacy.blank("en")
    assert all(has_ner_annotation(eg.reference) for eg in read_like_dev(plain, tests))
    with pytest.raises(ValueError, match="no corpus of the pipeline's multi-task dev reader"):
        read_like_dev(nlp, [corpus_paths["a"]])


def test_evaluate_command_scores_each_test_set_with_its_corpus_tasks(corpus_paths, tmp_path, capsys):
    """``python -m spacy_hmtl evaluate`` on a saved pipeline: corpus a's 8 entities are all
    found; corpus b's 4 PER entities (a task b does not declare) are not counted as misses,
    which ``spacy evaluate``'s plain read would do (recall 8/12, F 0.8)."""
    import json

    from spacy_hmtl.cli import main

    nlp, tests = _dev_like_setup(corpus_paths, tmp_path, "[components.entity_ruler]\n        factory = \"entity_ruler\"")
    nlp.get_pipe("entity_ruler").add_patterns(
        [{"label": "PER", "pattern": name} for name in ("Alice", "Bob")]
        + [{"label": "LOC", "pattern": name} for name in ("Paris", "London")]
    )
    nlp.to_disk(tmp_path / "model")
    output = tmp_path / "metrics" / "scores.json"
    assert main(["evaluate", str(tmp_path / "model"), *map(str, tests), "--output", str(output)]) == 0
    scores = json.loads(output.read_text(encoding="utf8"))
    assert (scores["ents_p"], scores["ents_r"], scores["ents_f"]) == (1.0, 1.0, 1.0)
    assert "entities (hmtl_ner)" in capsys.readouterr().out
    plain = nlp.evaluate([eg for path in tests for eg in spacy.training.Corpus(path)(nlp)])
    assert plain["ents_r"] == pytest.approx(8 / 12) and plain["ents_f"] == pytest.approx(0.8)
    # a test set the dev reader does not know, and a missing file: a message, exit status 1
    assert main(["evaluate", str(tmp_path / "model"), str(corpus_paths["a"])]) == 1
    assert "no corpus of the pipeline's multi-task dev reader" in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path / "model"), str(tmp_path / "nope.spacy")]) == 1
    assert "no such file" in capsys.readouterr().err
