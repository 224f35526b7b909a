__title__ = "spacy-hmtl"
__version__ = "0.1.0"
__summary__ = "Hierarchical multi-task learning (HMTL) components for spaCy v3: NER, mentions, relations, coreference"
