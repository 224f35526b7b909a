"""Install a `spacy package` build into a fresh virtual environment and check it there.

Usage:
    python scripts/check_package.py PACKAGE_DIR MODEL [--extras transformers] [--output FILE]

PACKAGE_DIR is what `spacy package` wrote (e.g. packages/en_hmtl_scierc-0.1.0, with the sdist
in dist/), MODEL the pipeline directory it was built from. The script creates a new venv (no
system site-packages), installs torch, spacy-hmtl from this checkout (not editable) and the
sdist, then, in that venv, loads the pipeline *by package name* with `spacy.load(name)` and
annotates sample texts. The annotations must equal those of MODEL loaded here. Exit status 0
when they do; a JSON report goes to --output.
"""
import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List

from spacy_hmtl.batch_annotator import doc_to_json, round_scores

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = [
    "We present a statistical parser that uses a maximum entropy model . The parser is evaluated "
    "on the Penn Treebank , and it outperforms previous approaches in accuracy and speed .",
    "",
    "Parsing",
]

# Runs inside the fresh venv: load by name, annotate, print JSON.
CHILD = """
import json, sys
import spacy, spacy_hmtl
from spacy_hmtl.batch_annotator import doc_to_json
name, samples = sys.argv[1], json.loads(sys.argv[2])
nlp = spacy.load(name)
print(json.dumps({
    "spacy_hmtl_file": spacy_hmtl.__file__,
    "pipeline_path": str(nlp.path) if nlp.path else None,
    "pipe_names": nlp.pipe_names,
    "docs": [doc_to_json(doc) for doc in nlp.pipe(samples)],
}))
"""


def run(cmd: List[str], **kwargs: Any) -> subprocess.CompletedProcess:
    shown = [arg if len(arg) < 200 and "\n" not in arg else arg.strip().splitlines()[0] + " ..." for arg in cmd]
    print("$", " ".join(shown), flush=True)
    return subprocess.run(cmd, check=True, text=True, **kwargs)


def annotate_here(model: Path) -> List[Dict[str, Any]]:
    import spacy

    nlp = spacy.load(model)
    return [doc_to_json(doc) for doc in nlp.pipe(SAMPLES)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("package_dir", type=Path)
    parser.add_argument("model", type=Path)
    parser.add_argument(
        "--extras", default=None,
        help="spacy-hmtl extras to install (default: 'transformers' when the package requires spacy-transformers)",
    )
    parser.add_argument("--torch", default="torch==2.13.0", help="torch requirement (the CPU wheel here)")
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args()

    meta = json.loads((args.package_dir / "meta.json").read_text(encoding="utf8"))
    name = f"{meta['lang']}_{meta['name']}"
    sdists = sorted((args.package_dir / "dist").glob("*.tar.gz"))
    if len(sdists) != 1:
        print(f"Expected one sdist in {args.package_dir / 'dist'}, found {len(sdists)}", file=sys.stderr)
        return 2
    if args.extras is None:
        needs_trf = any(req.startswith("spacy-transformers") for req in meta.get("requirements", []))
        args.extras = "transformers" if needs_trf else ""
    report: Dict[str, Any] = {
        "command": " ".join([Path(sys.executable).name] + sys.argv),
        "machine": f"{platform.machine()} {platform.platform()}",
        "package": name,
        "sdist": str(sdists[0]),
        "requirements": meta.get("requirements", []),
    }
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="hmtl_pkg_venv_") as tmp:
        venv = Path(tmp) / "venv"
        print(f"[1/3] fresh venv in {venv}", flush=True)
        run([sys.executable, "-m", "venv", str(venv)])
        python = str(venv / "bin" / "python")
        hmtl = str(ROOT) + (f"[{args.extras}]" if args.extras else "")
        print("[2/3] installing torch, spacy-hmtl (from this checkout) and the package", flush=True)
        run([python, "-m", "pip", "install", "-qq", "--disable-pip-version-check", args.torch, hmtl])
        run([python, "-m", "pip", "install", "-qq", "--disable-pip-version-check", str(sdists[0])])
        report["install_s"] = round(time.perf_counter() - start, 1)
        print(f"[3/3] spacy.load('{name}') in the venv", flush=True)
        # a neutral working directory, so nothing in the checkout is importable
        env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1", PYTHONPATH="")
        out = run([python, "-c", CHILD, name, json.dumps(SAMPLES)], capture_output=True, cwd=tmp, env=env)
        child = json.loads(out.stdout.strip().splitlines()[-1])
    expected = annotate_here(args.model)
    checks = {
        "spacy_hmtl installed in the venv, not this checkout": not child["spacy_hmtl_file"].startswith(str(ROOT)),
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
    for what, ok in checks.items():
        print(("✔ " if ok else "✘ ") + what)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(report, indent=2) + "\n", encoding="utf8")
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
