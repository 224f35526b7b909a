"""Time and peak memory of ``hmtl_coref`` inference as the document grows.

Each size runs in a fresh process (peak RSS is per process), with an untrained pipeline
``tok2vec -> hmtl_coref`` (a plain spaCy tok2vec of ``--width`` stands in for the HMTL
encoder's ``[embeddings ; level 2]``) and the head's default sizes.

    python scripts/coref_scaling.py --sizes 1000 5000 20000 --threads 1
"""
import argparse
import json
import resource
import os
import subprocess
import sys
import threading
import time


def current_rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class RSSSampler:
    """Peak of the current RSS while the block runs (sampled every few ms)."""

    def __enter__(self):
        self.peak = self.start = current_rss_mb()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, current_rss_mb())
            time.sleep(0.002)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, current_rss_mb())


def build_nlp(width: int, sentences: bool):
    import spacy
    from spacy.training import Example

    import spacy_hmtl.coref.component  # noqa: F401
    from spacy_hmtl.annotations import set_coref_clusters

    nlp = spacy.blank("en")
    if sentences:
        nlp.add_pipe("sentencizer")
    nlp.add_pipe(
        "tok2vec",
        config={
            "model": {
                "@architectures": "spacy.HashEmbedCNN.v2",
                "width": width,
                "depth": 2,
                "embed_size": 2000,
                "window_size": 1,
                "maxout_pieces": 3,
                "subword_features": True,
                "pretrained_vectors": None,
            }
        },
    )
    nlp.add_pipe(
        "hmtl_coref",
        config={
            "model": {
                "@architectures": "spacy_hmtl.CorefRanker.v1",
                "tok2vec": {"@architectures": "spacy.Tok2VecListener.v1", "width": width, "upstream": "tok2vec"},
            }
        },
    )
    ref = nlp.make_doc("The parser works . It is fast .")
    set_coref_clusters(ref, [[(0, 2), (4, 5)]])
    nlp.initialize(lambda: [Example(nlp.make_doc(ref.text), ref)])
    return nlp


def make_text(n_tokens: int) -> str:
    words = "the parser uses a grammar and it is fast while this method outperforms their baseline".split()
    out = []
    i = 0
    while len(out) < n_tokens:
        out.append(words[(i * 7 + i // 13) % len(words)])
        i += 1
        if i % 20 == 19:
            out.append(".")
    return " ".join(out[:n_tokens])


def run_single(n_tokens: int, width: int, threads: int, sentences: bool) -> dict:
    import torch

    torch.set_num_threads(threads)
    nlp = build_nlp(width, sentences)
    doc = nlp.make_doc(make_text(n_tokens))
    assert len(doc) == n_tokens, len(doc)
    rss_before = current_rss_mb()
    start = time.perf_counter()
    for name, proc in nlp.pipeline:
        if name != "hmtl_coref":
            doc = proc(doc)
    upstream_seconds = time.perf_counter() - start
    with RSSSampler() as sampler:
        start = time.perf_counter()
        doc = nlp.get_pipe("hmtl_coref")(doc)
        coref_seconds = time.perf_counter() - start
    return {
        "tokens": n_tokens,
        "coref_seconds": round(coref_seconds, 2),
        "coref_extra_rss_mb": round(sampler.peak - sampler.start),
        "upstream_seconds": round(upstream_seconds, 2),
        "rss_before_mb": round(rss_before),
        "process_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "clusters": len(doc._.coref_clusters),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000, 20000])
    parser.add_argument("--width", type=int, default=256, help="listener output width")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--sentences", action="store_true", help="add a sentencizer (spans stay inside sentences)")
    parser.add_argument("--single", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.single is not None:
        print(json.dumps(run_single(args.single, args.width, args.threads, args.sentences)))
        return
    for n in args.sizes:
        cmd = [sys.executable, __file__, "--single", str(n), "--width", str(args.width), "--threads", str(args.threads)]
        if args.sentences:
            cmd.append("--sentences")
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
        print(out, flush=True)


if __name__ == "__main__":
    main()
