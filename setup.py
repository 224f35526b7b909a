"""spacy-hmtl: HMTL (Sanh, Wolf & Ruder 2018) as spaCy v3 pipeline components."""
import sys
from pathlib import Path

from setuptools import find_packages, setup

ROOT = Path(__file__).parent
about: dict = {}
exec((ROOT / "spacy_hmtl" / "about.py").read_text(encoding="utf8"), about)

# Each pipe, architecture, scorer and reader is found by spaCy through these entry
# points, so `spacy.blank("en").add_pipe("hmtl_ner")` works without importing spacy_hmtl.
ENTRY_POINTS = {
    "spacy_factories": [
        "hmtl_encoder = spacy_hmtl.encoder.component:make_hmtl_encoder",
        "hmtl_ner = spacy_hmtl.ner.component:make_hmtl_ner",
        "hmtl_mentions = spacy_hmtl.mentions.component:make_hmtl_mentions",
        "hmtl_relations = spacy_hmtl.relations.component:make_hmtl_relations",
        "hmtl_coref = spacy_hmtl.coref.component:make_hmtl_coref",
    ],
    "spacy_architectures": [
        "spacy_hmtl.HierarchicalEncoder.v1 = spacy_hmtl.encoder.model:build_hierarchical_encoder",
        "spacy_hmtl.HMTLEmbed.v1 = spacy_hmtl.encoder.model:build_hmtl_embed",
        "spacy_hmtl.ConcatEmbed.v1 = spacy_hmtl.encoder.model:build_concat_embed",
        "spacy_hmtl.TransformerFeatures.v1 = spacy_hmtl.encoder.transformer_features:build_transformer_features",
        "spacy_hmtl.HMTLListener.v1 = spacy_hmtl.encoder.listener:build_hmtl_listener",
        "spacy_hmtl.CRFTagger.v1 = spacy_hmtl.ner.model:build_crf_tagger",
        "spacy_hmtl.SpanMentionDetector.v1 = spacy_hmtl.mentions.model:build_span_mention_detector",
        "spacy_hmtl.RelationExtractor.v1 = spacy_hmtl.relations.model:build_relation_extractor",
        "spacy_hmtl.CorefRanker.v1 = spacy_hmtl.coref.model:build_coref_ranker_v1",
        "spacy_hmtl.CorefRanker.v2 = spacy_hmtl.coref.model:build_coref_ranker_v2",
        "spacy_hmtl.CorefRanker.v3 = spacy_hmtl.coref.model:build_coref_ranker",
    ],
    "spacy_scorers": [
        "spacy_hmtl.mentions_scorer.v1 = spacy_hmtl.mentions.scorer:make_mentions_scorer",
        "spacy_hmtl.relation_scorer.v1 = spacy_hmtl.relations.scorer:make_relation_scorer",
        "spacy_hmtl.coref_scorer.v1 = spacy_hmtl.coref.scorer:make_coref_scorer",
    ],
    "spacy_readers": [
        "spacy_hmtl.MultiTaskCorpus.v1 = spacy_hmtl.training.multitask_corpus:create_multitask_corpus",
    ],
    "spacy_callbacks": [
        "spacy_hmtl.cache_frozen_features.v1 = spacy_hmtl.training.feature_cache:make_frozen_feature_cache",
        "spacy_hmtl.component_learn_rates.v1 = spacy_hmtl.training.learn_rates:make_component_learn_rates",
        "spacy_hmtl.fine_tuning.v1 = spacy_hmtl.training.fine_tuning:make_fine_tuning",
        "spacy_hmtl.quantize_transformer.v1 = spacy_hmtl.encoder.quantization:make_quantize_transformer",
        "spacy_hmtl.quantize_transformer.v2 = spacy_hmtl.encoder.quantization:make_quantize_transformer_v2",
        "spacy_hmtl.reduced_precision.v1 = spacy_hmtl.reduced_precision:make_reduced_precision_v1",
        "spacy_hmtl.reduced_precision.v3 = spacy_hmtl.reduced_precision:make_reduced_precision",
        "spacy_hmtl.reduced_precision.v2 = spacy_hmtl.reduced_precision:make_reduced_precision_v2",
    ],
    "spacy_loggers": [
        "spacy_hmtl.TimedConsoleLogger.v1 = spacy_hmtl.training.timed_logger:make_timed_console_logger",
    ],
    "spacy_batchers": [
        "spacy_hmtl.task_batcher.v1 = spacy_hmtl.training.task_batcher:configure_task_batcher",
        "spacy_hmtl.task_batcher.v2 = spacy_hmtl.training.task_batcher:configure_task_batcher_v2",
        "spacy_hmtl.batch_by_length.v1 = spacy_hmtl.training.length_batcher:configure_batch_by_length",
    ],
    "spacy_misc": [
        "spacy_hmtl.installed_model_dir.v1 = spacy_hmtl.encoder.transformer_features:installed_model_dir",
    ],
    # Each head's task description (spacy_hmtl.tasks): what annotate, render, the corpus
    # reader, the score tables and the scripts know of its task. A head in another package
    # registers its own in this group.
    "spacy_hmtl_tasks": [
        "ner = spacy_hmtl.ner.task:NER_TASK",
        "mentions = spacy_hmtl.mentions.task:MENTIONS_TASK",
        "relations = spacy_hmtl.relations.task:RELATIONS_TASK",
        "coref = spacy_hmtl.coref.task:COREF_TASK",
    ],
}

# The runtime package, in every build. spacy_hmtl_dev (the measurements of scripts/ and the
# tests: docs/ARCHITECTURE.md, "The development package") is importable from a checkout, in an
# editable install only (`pip install -e .` builds with the editable_wheel command): a wheel
# or sdist of spacy-hmtl, and so what a pipeline package built by `spacy package` installs,
# carries none of it, and spacy_hmtl never imports it (.importlinter).
PACKAGES = ["spacy_hmtl", "spacy_hmtl.*"]
if "editable_wheel" in sys.argv or "develop" in sys.argv:
    PACKAGES += ["spacy_hmtl_dev", "spacy_hmtl_dev.*"]

setup(
    name="spacy-hmtl",
    version=about["__version__"],
    description=about["__summary__"],
    long_description=(ROOT / "README.md").read_text(encoding="utf8"),
    long_description_content_type="text/markdown",
    license="MIT",
    python_requires=">=3.9",
    packages=find_packages(include=PACKAGES),
    include_package_data=True,
    install_requires=[
        "spacy>=3.8.0,<3.9.0",
        "thinc>=8.3.0,<8.4.0",
        # Only a range: the caller pins the build (README pins the CPU wheel 2.13.0). 2.4 at
        # least: torch.load(weights_only=True) with an allowlist, which every model file
        # of the package is read with (spacy_hmtl.model_files).
        "torch>=2.4",
        "srsly>=2.4.0",
        "numpy>=1.19",
        "scipy>=1.7",
        "tqdm>=4.0",
    ],
    extras_require={
        "transformers": ["spacy-transformers==1.4.0", "transformers<4.53.3"],
        "distributed": ["dask[distributed]>=2023.9"],
        # GraphML export of entity graphs (python -m spacy_hmtl graph --graphml)
        "graph": ["networkx>=3"],
        # learning-curve PNGs of the benchmark and the ablation
        "plots": ["matplotlib>=3.7"],
        # the linters are pinned: a new release's new findings should not fail CI by themselves
        "dev": [
            "pytest>=7", "hypothesis>=6", "dask[distributed]>=2023.9", "networkx>=3", "matplotlib>=3.7",
            "ruff==0.17.6", "mypy==2.4.1", "import-linter==2.17",
        ],
    },
    entry_points=ENTRY_POINTS,
    classifiers=[
        "Framework :: spaCy",
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
