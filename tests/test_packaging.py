"""`python -m spacy_hmtl package` (`spacy package`, with reduced-precision inference switched
on in the package: `spacy_hmtl.reduced_precision.v3`) on a trained spacy-hmtl pipeline gives a
package that loads by name, and spacy-hmtl's wheel carries the runtime package alone.

The full check (a fresh venv that installs spacy-hmtl and the sdist) is the project's
`check-package` command (scripts/check_package.py, spacy_hmtl_dev.package_check); here the sdist
is installed into a separate directory and loaded by name in another process, which needs no
downloads.
"""
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import spacy

from spacy_hmtl.batch_annotator import doc_to_json, round_scores
from spacy_hmtl.reduced_precision import REDUCED_PRECISION_OVERRIDES
from spacy_hmtl_dev.package_check import CHILD

ROOT = Path(__file__).resolve().parent.parent


def test_the_package_command_builds_an_sdist_that_loads_by_name(tiny_pipeline_path, tiny_nlp, tiny_texts, tmp_path):
    out = tmp_path / "packages"
    out.mkdir()
    command = [sys.executable, "-m", "spacy_hmtl", "package", str(tiny_pipeline_path), str(out),
               "--name", "hmtl_tiny", "--version", "0.0.1"]
    not_a_pipeline = subprocess.run(command[:4] + [str(tmp_path), *command[5:]], capture_output=True, text=True)
    assert not_a_pipeline.returncode == 1 and "not a saved pipeline" in not_a_pipeline.stderr
    first = subprocess.run(command, check=True, capture_output=True, text=True)
    # a vectors pipeline's package runs its BiLSTMs at reduced precision too (bfloat16 where native)
    assert "reduced-precision inference in the package's config: enabled" in first.stdout
    package_dir = out / "en_hmtl_tiny-0.0.1"
    # an existing package is not replaced without --overwrite
    (package_dir / "marker").write_text("kept")
    again = subprocess.run(command, capture_output=True, text=True)
    assert again.returncode == 1 and "--overwrite" in again.stderr
    assert (package_dir / "marker").read_text() == "kept"
    subprocess.run(command + ["--overwrite"], check=True, capture_output=True, text=True)
    assert not (package_dir / "marker").exists()
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
        [sys.executable, "-c", CHILD, "en_hmtl_tiny", json.dumps(texts)],
        check=True, capture_output=True, text=True, env=env, cwd=tmp_path,
    )
    child = json.loads(result.stdout.strip().splitlines()[-1])
    assert child["pipeline_path"].startswith(str(target))
    assert child["after_pipeline_creation"]["@callbacks"] == "spacy_hmtl.reduced_precision.v3"
    # the package annotates as the trained pipeline does at the package's precision
    reduced = spacy.load(tiny_pipeline_path, config=REDUCED_PRECISION_OVERRIDES)
    expected = [doc_to_json(doc) for doc in reduced.pipe(texts)]
    assert round_scores(child["docs"]) == round_scores(expected)
    assert any(doc["relations"] for doc in child["docs"])  # the tiny pipeline predicts something


def test_the_wheel_carries_the_runtime_package_alone(tmp_path):
    # what `pip install spacy-hmtl` (and so a `spacy package` pipeline) installs: spacy_hmtl,
    # without the development package of the checkout (setup.py lists it for editable
    # installs only). Built from a copy: an in-tree build would leave build/ in the checkout.
    source = tmp_path / "source"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for name in ("spacy_hmtl", "spacy_hmtl_dev"):
        shutil.copytree(ROOT / name, source / name, ignore=ignore)
    for name in ("setup.py", "setup.cfg", "README.md"):
        shutil.copy(ROOT / name, source / name)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--disable-pip-version-check", "--no-deps",
         "--no-build-isolation", "--wheel-dir", str(tmp_path / "wheels"), str(source)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    (wheel,) = (tmp_path / "wheels").glob("spacy_hmtl-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    packages = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert packages == {"spacy_hmtl"}
    assert "spacy_hmtl/variants.py" in names and "spacy_hmtl/training/timed_logger.py" in names
