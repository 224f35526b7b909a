"""Install a `spacy package` build into a fresh virtual environment and check it there.

Usage:
    python scripts/check_package.py PACKAGE_DIR MODEL [--extras transformers] [--output FILE]

PACKAGE_DIR is what `spacy package` wrote (e.g. packages/en_hmtl_scierc-0.1.0, with the sdist
in dist/), MODEL the pipeline directory it was built from. The script creates a new venv (no
system site-packages), installs torch, spacy-hmtl from this checkout (not editable, so without
the development package spacy_hmtl_dev) and the sdist, then, in that venv, loads the pipeline *by package name* with `spacy.load(name)` and
annotates sample texts. The annotations must equal those of MODEL loaded here. Exit status 0
when they do; a JSON report goes to --output. The code is ``spacy_hmtl_dev.package_check``.
"""
import argparse
import json
import sys
from pathlib import Path

from spacy_hmtl_dev.package_check import check_package, sdists_of


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
    sdists = sdists_of(args.package_dir)
    if len(sdists) != 1:
        print(f"Expected one sdist in {args.package_dir / 'dist'}, found {len(sdists)}", file=sys.stderr)
        return 2
    command = " ".join([Path(sys.executable).name] + sys.argv)
    report = check_package(args.package_dir, sdists[0], args.model, extras=args.extras, torch=args.torch, command=command)
    for what, ok in report["checks"].items():
        print(("✔ " if ok else "✘ ") + what)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(report, indent=2) + "\n", encoding="utf8")
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
