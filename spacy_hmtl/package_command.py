"""``python -m spacy_hmtl package``: ``spacy package`` with reduced-precision CPU inference on
by default in the package.

A pipeline trained from a shipped config (no ``[nlp.after_pipeline_creation]`` callback: the
trained weights and dev scores stay float32) runs in float32 when loaded. The package built
here carries ``spacy_hmtl.reduced_precision.v3`` with ``precision = "auto"`` instead, so
``spacy.load("en_hmtl_...")`` runs the transformer, the encoder's and heads' BiLSTMs, the
coreference head's pair scoring and the mention head's span scoring in bfloat16 on a CPU with native bfloat16 products (the transformer 1.4-1.6x, a vectors
pipeline about 1.1-1.2x faster; every dev score within 0.44 F1 of float32, most within 0.1:
docs/CONFIGS.md, "Faster inference on the CPU") and in float32 elsewhere, on a GPU too (the
weights it carries are the float32 ones): the trained pipeline is copied to a temporary
directory, ``[nlp.after_pipeline_creation]`` is set in the copy's config, and ``spacy
package`` packages the copy. The trained pipeline itself is left as it is; ``--no-quantize``
packages it unchanged.

Pipelines with neither a spacy-transformers pipe nor an HMTL encoder, and configs that already
name an ``after_pipeline_creation`` callback (kept as they are), are packaged unchanged. A user
turns it off at load: ``spacy.load(name, config={"nlp": {"after_pipeline_creation":
{"enabled": False}}})`` or ``SPACY_HMTL_QUANTIZE=0``.
"""
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

import srsly

from .encoder.quantization import CALLBACK as TRANSFORMER_CALLBACK
from .encoder.quantization import CALLBACK_V1 as TRANSFORMER_CALLBACK_V1
from .reduced_precision import CALLBACK

# what the package's config gets (spacy_hmtl.reduced_precision.v3's defaults, spelt out)
QUANTIZE_BLOCK: Dict[str, Any] = {
    "@callbacks": CALLBACK, "enabled": True, "precision": "auto", "transformer_components": None,
    "activation_range": "auto", "lstms": True, "pair_scoring": True, "span_scoring": True,
}
# the pipes whose inference the callback reduces: the transformer, and the BiLSTMs of the
# encoder (a pipeline with heads has one) and the heads, and the coreference pair scoring
_REDUCIBLE_FACTORIES = ("transformer", "hmtl_encoder")


def enable_quantization(config_path: Path) -> str:
    """Set ``[nlp.after_pipeline_creation]`` to ``QUANTIZE_BLOCK`` in a pipeline's config.cfg,
    where the pipeline has a spacy-transformers pipe or an HMTL encoder and names no other
    callback there.

    config_path (Path): the ``config.cfg`` of a saved pipeline (rewritten in place).
    RETURNS (str): what was done ("enabled", "already enabled", "kept <callback>", or
        "nothing to reduce").
    """
    from spacy.util import load_config

    config = load_config(config_path, interpolate=False)
    factories = [block.get("factory") for block in config.get("components", {}).values()]
    if not any(factory in factories for factory in _REDUCIBLE_FACTORIES):
        return "nothing to reduce"
    current: Optional[Dict[str, Any]] = config["nlp"].get("after_pipeline_creation")
    if current:
        name = current.get("@callbacks")
        return "already enabled" if name in (CALLBACK, TRANSFORMER_CALLBACK, TRANSFORMER_CALLBACK_V1) else f"kept {name}"
    config["nlp"]["after_pipeline_creation"] = dict(QUANTIZE_BLOCK)
    config.to_disk(config_path)
    return "enabled"


def package_directory(model: Path, output_dir: Path, name: str, version: str) -> Path:
    """Where ``spacy package`` writes: ``OUTPUT_DIR/<lang>_<name>-<version>``, the language
    from the pipeline's meta.json."""
    meta = srsly.read_json(Path(model) / "meta.json")
    return Path(output_dir) / f"{meta['lang']}_{name}-{version}"


def package_pipeline(
    model: Path,
    output_dir: Path,
    *,
    name: str,
    version: str,
    quantize: bool = True,
    overwrite: bool = False,
    spacy_args: Sequence[str] = (),
) -> int:
    """``spacy package MODEL OUTPUT_DIR --name NAME --version VERSION`` with reduced-precision
    transformer inference switched on in the package (see the module docstring).

    model (Path): the trained pipeline (left unchanged).
    output_dir (Path): spacy package's output directory.
    name (str): the package name (spaCy prefixes the language).
    version (str): the package version.
    quantize (bool): False: package ``model`` as it is.
    overwrite (bool): replace an existing package directory (all of it); without it an
        existing one is an error, as for every command of this package.
    spacy_args (Sequence[str]): further options for ``spacy package``.
    RETURNS (int): spacy package's exit status (1: MODEL is no saved pipeline, or the package
        directory exists).
    """
    if not (Path(model) / "meta.json").is_file():
        print(f"error: {model} is not a saved pipeline (no meta.json)", file=sys.stderr)
        return 1
    target = package_directory(model, output_dir, name, version)
    if target.exists() and not overwrite:
        print(f"error: {target} exists (--overwrite replaces it)", file=sys.stderr)
        return 1
    Path(output_dir).mkdir(parents=True, exist_ok=True)
    # spacy package writes into a fresh directory beside the target, which then takes the
    # target's place: a failed build leaves no half-written package, and --overwrite leaves
    # no file of the old package behind (spacy package's --force writes over the old files)
    with tempfile.TemporaryDirectory(prefix=".hmtl_package_", dir=output_dir) as tmp:
        staging = Path(tmp) / "out"
        options = [str(staging), "--name", name, "--version", version, *spacy_args]
        source = Path(model)
        if quantize:
            source = Path(tmp) / "pipeline" / Path(model).name
            shutil.copytree(model, source)
            done = enable_quantization(source / "config.cfg")
            print(f"reduced-precision inference in the package's config: {done}", flush=True)
        staging.mkdir()
        status = subprocess.run([sys.executable, "-m", "spacy", "package", str(source), *options]).returncode
        if status != 0:
            return status
        built = staging / target.name
        if target.exists():
            shutil.rmtree(target)
        os.replace(built, target)
    print(f"package: {target}", flush=True)
    return 0


def add_package(subparsers: Any) -> None:
    """Add the ``package`` command's parser to ``subparsers``.

    subparsers: what ``argparse.ArgumentParser.add_subparsers`` returned.
    """
    parser = subparsers.add_parser(
        "package",
        help="spacy package, with bfloat16 inference (transformer, BiLSTMs, coreference pair scoring, mention span scoring) on by default in the package",
        description=(
            "Package MODEL as `spacy package MODEL OUTPUT_DIR --name NAME --version VERSION` "
            "does; the package's [nlp.after_pipeline_creation] gets spacy_hmtl.reduced_precision.v3 "
            "(the transformer, the BiLSTMs, the coreference pair scoring and the mention span scoring in bfloat16 on CPUs that run it natively, else "
            "float32; --no-quantize: as it is). "
            "MODEL is not changed."
        ),
    )
    parser.add_argument("model", metavar="MODEL", type=Path, help="trained pipeline directory")
    parser.add_argument("output_dir", metavar="OUTPUT_DIR", type=Path, help="spacy package's output directory")
    parser.add_argument("--name", required=True, help="package name (spaCy prefixes the language)")
    parser.add_argument("--version", required=True, help="package version")
    parser.add_argument("--no-quantize", action="store_true", help="package MODEL unchanged (float32 inference)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing package directory")
    parser.set_defaults(handler=run_package, parser=parser)


def run_package(args: Any) -> int:
    """Run the ``package`` command. RETURNS (int): spacy package's exit status."""
    return package_pipeline(
        args.model, args.output_dir, name=args.name, version=args.version,
        quantize=not args.no_quantize, overwrite=args.overwrite,
    )
