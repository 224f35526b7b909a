"""`spacy package` on a trained spacy-hmtl pipeline gives a package that loads by name.

The full check (a fresh venv that installs spacy-hmtl and the sdist) is the project's
`check-package` command (scripts/check_package.py); here the sdist is installed into a
separate directory and loaded by name in another process, which needs no downloads.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

from spacy_hmtl.batch_annotator import doc_to_json, round_scores

from helpers import load_module

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "check_package.py"


def load_check_package():
    return load_module(SCRIPT)


def test_spacy_package_builds_an_sdist_that_loads_by_name(tiny_pipeline_path, tiny_nlp, tiny_texts, tmp_path):
    out = tmp_path / "packages"
    out.mkdir()
    subprocess.run(
        [sys.executable, "-m", "spacy", "package", str(tiny_pipeline_path), str(out),
         "--name", "hmtl_tiny", "--version", "0.0.1", "--force"],
        check=True, capture_output=True, text=True,
    )
    package_dir = out / "en_hmtl_tiny-0.0.1"
    meta = json.loads((package_dir / "meta.json").read_text(encoding="utf8"))
    # spaCy found the plugin behind the factories: installing the package pulls spacy-hmtl
    assert any(req.startswith("spacy-hmtl") for req in meta["requirements"])
    (sdist,) = (package_dir / "dist").glob("*.tar.gz")

    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps",
         "--no-build-isolation", "--target", str(target), str(sdist)],
        check=True, capture_output=True, text=True,
    )
    texts = tiny_texts + ["", "x"]
    env = dict(os.environ, PYTHONPATH=str(target))
    result = subprocess.run(
        [sys.executable, "-c", load_check_package().CHILD, "en_hmtl_tiny", json.dumps(texts)],
        check=True, capture_output=True, text=True, env=env, cwd=tmp_path,
    )
    child = json.loads(result.stdout.strip().splitlines()[-1])
    assert child["pipeline_path"].startswith(str(target))
    expected = [doc_to_json(doc) for doc in tiny_nlp.pipe(texts)]
    assert round_scores(child["docs"]) == round_scores(expected)
    assert any(doc["relations"] for doc in child["docs"])  # the tiny pipeline predicts something
