"""The hierarchy ablation (``scripts/ablation.py``): does the hierarchy help?

The variants are derived from one training config by ``spacy_hmtl.variants``; here each
(variant, seed) run is trained and scored (``runs``, the test scores in a child process:
``evaluate``), the scores are summarised over seeds with a verdict against ``full``
(``summary``) and written as a report with learning-curve plots (``report``).
"""
