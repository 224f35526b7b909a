"""A fifth head, written the way a head in another package would be: a document topic
classifier (``toy_topic``) that reads level 1 of the shared encoder.

Its folder holds all of it: the torch module, the architecture, the pipe, the scorer and
the task description (``task.py``). Nothing outside this folder names it: a package would
list its factory, architecture and scorer under spaCy's entry point groups and its task under
``spacy_hmtl_tasks``; the test registers the task in code instead (``spacy_hmtl.tasks.register_task``).
"""
from .component import TopicClassifier, make_toy_topic  # noqa: F401  (registers the factory)
from .model import build_topic_classifier  # noqa: F401  (registers the architecture)
from .scorer import score_topics  # noqa: F401  (registers the scorer)
from .task import TOPIC_ATTR, TOPIC_SCORE_ATTR, TOPIC_TASK  # noqa: F401
