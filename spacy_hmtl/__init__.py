"""spacy-hmtl: a hierarchical multi-task encoder (Sanh, Wolf & Ruder 2018) and its
task heads as spaCy v3 pipeline components.

spaCy imports the factory modules through entry points on every ``spacy.blank()`` /
``spacy.load()``, so this package keeps its import cheap: torch-heavy modules are only
imported by the components that need them.
"""
from .about import __version__  # noqa: F401  (public re-export)
from .annotations import register_extensions
from .gold_check import GoldLabelWarning  # noqa: F401  (filter it: warnings.filterwarnings)

register_extensions()
