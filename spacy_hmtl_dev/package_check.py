"""A ``spacy package`` build installed into a fresh virtual environment and checked there
(``scripts/check_package.py``).

The venv (no system site-packages) gets torch, spacy-hmtl from this checkout (not
editable: what a user installs, without this development package) and the sdist; in it, the
pipeline is loaded *by package name* with ``spacy.load(name)`` and annotates sample texts,
which must equal the annotations of the pipeline it was built from, loaded here (with the
package's ``[nlp.after_pipeline_creation]``: ``python -m spacy_hmtl package`` switches
reduced-precision inference on in the package, not in the trained pipeline).
"""
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

from spacy_hmtl.doc_json import doc_to_json, round_scores

from .paths import ROOT

SAMPLES = [
    "We present a statistical parser that uses a maximum entropy model . The parser is evaluated "
    "on the Penn Treebank , and it outperforms previous approaches in accuracy and speed .",
    "",
    "Parsing",
]

# Runs inside the fresh venv: load by name, annotate, print JSON (and whether the
# development package came along: a wheel of spacy-hmtl must not carry it).
CHILD = """
import importlib.util, json, sys
import spacy, spacy_hmtl
from spacy_hmtl.doc_json import doc_to_json
name, samples = sys.argv[1], json.loads(sys.argv[2])
nlp = spacy.load(name)
print(json.dumps({
    "spacy_hmtl_file": spacy_hmtl.__file__,
    "spacy_hmtl_dev_found": importlib.util.find_spec("spacy_hmtl_dev") is not None,
    "pipeline_path": str(nlp.path) if nlp.path else None,
    "pipe_names": nlp.pipe_names,
    "after_pipeline_creation": nlp.config["nlp"].get("after_pipeline_creation"),
    "docs": [doc_to_json(doc) for doc in nlp.pipe(samples)],
}))
"""


def run(cmd: List[str], **kwargs: Any) -> subprocess.CompletedProcess:
    """Run ``cmd`` (shown first, long arguments cut), raising on failure."""
    shown = [arg if len(arg) < 200 and "\n" not in arg else arg.strip().splitlines()[0] + " ..." for arg in cmd]
    print("$", " ".join(shown), flush=True)
    return subprocess.run(cmd, check=True, text=True, **kwargs)


def annotate_here(model: Path, after_pipeline_creation: Optional[Dict[str, Any]] = None) -> List[Dict[str, Any]]:
    """``SAMPLES`` annotated by ``model`` loaded in this process (the expected output), with
    the package's ``[nlp.after_pipeline_creation]`` callback when it names one."""
    import spacy

    overrides = {"nlp": {"after_pipeline_creation": after_pipeline_creation}} if after_pipeline_creation else {}
    nlp = spacy.load(model, config=overrides)
    return [doc_to_json(doc) for doc in nlp.pipe(SAMPLES)]


def sdists_of(package_dir: Path) -> List[Path]:
    """The sdists ``spacy package`` wrote to ``PACKAGE_DIR/dist`` (one is expected)."""
    return sorted((package_dir / "dist").glob("*.tar.gz"))


def check_package(
    package_dir: Path, sdist: Path, model: Path, *, extras: Optional[str], torch: str, command: str
) -> Dict[str, Any]:
    """Install and check the package (see the module docstring); progress goes to stdout.

    package_dir (Path): what ``spacy package`` wrote (``meta.json``, the sdist in ``dist/``).
    sdist (Path): the sdist (``sdists_of(package_dir)``).
    model (Path): the pipeline directory it was built from.
    extras (Optional[str]): spacy-hmtl extras to install; None: "transformers" when the
        package requires spacy-transformers.
    torch (str): the torch requirement.
    command (str): the command line, as the report shows it.
    RETURNS (Dict[str, Any]): the report: what was installed, each check, ``passed``.
    """
    meta = json.loads((package_dir / "meta.json").read_text(encoding="utf8"))
    name = f"{meta['lang']}_{meta['name']}"
    if extras is None:
        needs_trf = any(req.startswith("spacy-transformers") for req in meta.get("requirements", []))
        extras = "transformers" if needs_trf else ""
    report: Dict[str, Any] = {
        "command": command,
        "machine": f"{platform.machine()} {platform.platform()}",
        "package": name,
        "sdist": str(sdist),
        "requirements": meta.get("requirements", []),
    }
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="hmtl_pkg_venv_") as tmp:
        venv = Path(tmp) / "venv"
        print(f"[1/3] fresh venv in {venv}", flush=True)
        run([sys.executable, "-m", "venv", str(venv)])
        python = str(venv / "bin" / "python")
        hmtl = str(ROOT) + (f"[{extras}]" if extras else "")
        print("[2/3] installing torch, spacy-hmtl (from this checkout) and the package", flush=True)
        run([python, "-m", "pip", "install", "-qq", "--disable-pip-version-check", torch, hmtl])
        run([python, "-m", "pip", "install", "-qq", "--disable-pip-version-check", str(sdist)])
        report["install_s"] = round(time.perf_counter() - start, 1)
        print(f"[3/3] spacy.load('{name}') in the venv", flush=True)
        # a neutral working directory, so nothing in the checkout is importable
        env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1", PYTHONPATH="")
        out = run([python, "-c", CHILD, name, json.dumps(SAMPLES)], capture_output=True, cwd=tmp, env=env)
        child = json.loads(out.stdout.strip().splitlines()[-1])
    expected = annotate_here(model, child.get("after_pipeline_creation"))
    checks = {
        "spacy_hmtl installed in the venv, not this checkout": not child["spacy_hmtl_file"].startswith(str(ROOT)),
        "the runtime package alone (no spacy_hmtl_dev in the venv)": not child["spacy_hmtl_dev_found"],
        "pipeline loaded from the installed package": bool(child["pipeline_path"])
        and "site-packages" in child["pipeline_path"],
        "same annotations as the trained pipeline here": round_scores(child["docs"]) == round_scores(expected),
    }
    report.update(
        pipe_names=child["pipe_names"],
        installed_spacy_hmtl=child["spacy_hmtl_file"],
        loaded_from=child["pipeline_path"],
        entities_in_sample=[e["text"] for e in child["docs"][0]["entities"] or []],
        checks=checks,
        passed=all(checks.values()),
        total_s=round(time.perf_counter() - start, 1),
    )
    return report
