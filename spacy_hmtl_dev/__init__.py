"""spacy-hmtl's development code: the measurements, studies and checks behind ``scripts/``
and the benchmark reports, as tested functions (the scripts parse their arguments and call
them).

It lives in the checkout, not in what users install: ``setup.py`` lists this package only
for an editable install (``pip install -e .``), so a wheel or sdist of spacy-hmtl, and so
every pipeline package built by ``spacy package`` (which depends on spacy-hmtl), carries
none of it. The dependency goes one way: this package imports ``spacy_hmtl``, never the
reverse (an import-linter contract, ``.importlinter``).

Importing this package imports nothing: ``scripts/timed.py`` measures its child's memory
and must not grow before the child exits (``benchmarking``).
"""
