"""One pipeline's peak memory, in a fresh process (``speed.measure_speed`` starts it:
``python -m spacy_hmtl_dev.benchmark.rss_probe MODEL TEXTS.json``): the kernel resets the
high-water mark ``VmHWM`` at exec, so the process reports its own peak only
(``benchmarking.peak_rss_mb``). Prints one JSON line.
"""
import argparse
import json
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional

from ..benchmarking import peak_rss_mb
from .speed import set_threads


def rss_probe(model: str, texts_file: str, batch_size: int, threads: int, gpu_id: int) -> Dict[str, Any]:
    """Load ``model``, pipe all texts of ``texts_file`` (text set -> texts) once.

    RETURNS (Dict[str, Any]): the peak RSS (MB) of the process before the load (the
        interpreter with spaCy, spacy-hmtl and torch imported), after it, and in all.
    """
    set_threads(threads)
    import spacy

    import spacy_hmtl  # noqa: F401  (imported by any HMTL pipeline's load: counted before it)

    if gpu_id >= 0:
        spacy.require_gpu(gpu_id)
    base = peak_rss_mb()
    nlp = spacy.load(model)
    loaded = peak_rss_mb()
    texts = json.loads(Path(texts_file).read_text(encoding="utf8"))
    for group in texts.values():
        for _ in nlp.pipe(group, batch_size=batch_size):
            pass
    peak = peak_rss_mb()
    return {"before_load_mb": round(base, 1), "after_load_mb": round(loaded, 1), "peak_rss_mb": round(peak, 1)}


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="a pipeline: package name or directory")
    parser.add_argument("texts_file", help="JSON: text set -> texts")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--gpu-id", type=int, default=-1)
    args = parser.parse_args(argv)
    print(json.dumps(rss_probe(args.model, args.texts_file, args.batch_size, args.threads, args.gpu_id)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
