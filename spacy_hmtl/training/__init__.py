"""Multi-corpus training: ``spacy_hmtl.MultiTaskCorpus.v1`` (reader) and
``spacy_hmtl.task_batcher.v1`` (batcher), HMTL's one-task-per-step regime.

Importing this package registers both (they are also found through the ``spacy_readers``
and ``spacy_batchers`` entry points). See the two modules' docstrings for the design.
"""
from .multitask_corpus import (  # noqa: F401  (public re-export; registers the functions)
    CORPUS_TAG,
    TASKS_TAG,
    MultiTaskCorpus,
    create_multitask_corpus,
    get_corpus_name,
    get_corpus_tasks,
    read_like_dev,
    strip_annotation,
    strip_docbin,
)
from .learn_rates import ScaledOptimizer, make_component_learn_rates, set_learn_rate_scale  # noqa: F401  (public re-export; registers the functions)
from .fine_tuning import make_fine_tuning  # noqa: F401  (public re-export; registers the function)
from .feature_cache import FrozenFeatureCache, make_frozen_feature_cache  # noqa: F401  (public re-export; registers the functions)
from .task_batcher import TaskBatcher, configure_task_batcher  # noqa: F401  (public re-export; registers the functions)
from .length_batcher import configure_batch_by_length  # noqa: F401  (public re-export; registers the functions)
from .timed_logger import make_timed_console_logger  # noqa: F401  (public re-export; registers the functions)

__all__ = [
    "CORPUS_TAG",
    "FrozenFeatureCache",
    "ScaledOptimizer",
    "TASKS_TAG",
    "MultiTaskCorpus",
    "TaskBatcher",
    "configure_batch_by_length",
    "configure_task_batcher",
    "create_multitask_corpus",
    "make_component_learn_rates",
    "make_fine_tuning",
    "make_frozen_feature_cache",
    "make_timed_console_logger",
    "get_corpus_name",
    "get_corpus_tasks",
    "read_like_dev",
    "set_learn_rate_scale",
    "strip_annotation",
    "strip_docbin",
]
