"""Show a trained pipeline's entity graph on one test document: its JSON, an HTML page
drawn by ``spacy_hmtl.render`` and a PNG screenshot of the graph (headless Chromium).

    python scripts/graph_example.py training/scierc/model-best corpus/scierc/test.spacy \\
        --output-dir docs --image-dir docs/images

CORPUS may also be a .txt file of paragraphs (e.g. ``docs/news_paragraph.txt``, the README's
example on a news-style text that no corpus here contains). The pipeline annotates every test document (gold tokens, its own sentences and layers);
unless ``--doc-key`` or ``--index`` names one, the document shown is the one (of at most
``--max-tokens`` tokens and ``--max-edges`` edges, for a readable picture) with the most
relation edges that coreference joins (an edge between two entities, one of them mentioned
more than once), then the fewest edges from an entity to itself, the fewest edges, the first. Writes
``graph_example.json`` (the document's text, graph and resolved texts) and
``graph_example.html`` (every layer and the graph) to OUTPUT_DIR, and
``graph_example.png`` (the graph alone) to IMAGE_DIR when a ``chromium`` binary is found
(Debian: ``apt-get install -y --no-install-recommends chromium``).
"""
import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import List, Optional, Tuple

import spacy
from spacy.language import Language
from spacy.tokens import Doc, DocBin

import spacy_hmtl  # noqa: F401  (registers the doc._ layers before the DocBin is read)
from spacy_hmtl.graph import entity_graph, resolve_text
from spacy_hmtl.render import render

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
]


def read_documents(nlp: Language, path: Path) -> Tuple[List[Doc], List[Optional[str]]]:
    """The documents of a .spacy corpus (with their keys), or the paragraphs of a .txt file
    (separated by blank lines; tokenized by the pipeline, keyed ``<file stem>-<index>``)."""
    if path.suffix == ".txt":
        paragraphs = [" ".join(p.split()) for p in re.split(r"\n\s*\n", path.read_text(encoding="utf8")) if p.strip()]
        return [nlp.make_doc(text) for text in paragraphs], [f"{path.stem}-{i}" for i in range(len(paragraphs))]
    gold = list(DocBin(store_user_data=True).from_disk(path).get_docs(nlp.vocab))
    return gold, [d._.hmtl_doc_key for d in gold]


def annotate(nlp: Language, gold: List[Doc]) -> List[Doc]:
    """Each document through the pipeline, on its gold tokens."""
    docs = [Doc(nlp.vocab, words=[t.text for t in d], spaces=[bool(t.whitespace_) for t in d]) for d in gold]
    return list(nlp.pipe(docs, batch_size=8))


def interest(doc: Doc) -> Tuple[int, int, int]:
    """(edges between two entities, one of them mentioned more than once; minus the
    edges from an entity to itself; minus the edges)."""
    graph = entity_graph(doc)
    loops = sum(1 for e in graph.edges if e.head == e.tail)
    joined = sum(
        1 for e in graph.edges
        if e.head != e.tail and (len(graph.node(e.head).mentions) > 1 or len(graph.node(e.tail).mentions) > 1)
    )
    return joined, -loops, -len(graph.edges)


def pick(docs: List[Doc], keys: List[Optional[str]], doc_key: Optional[str], index: Optional[int],
         max_tokens: int, max_edges: int) -> int:
    if doc_key is not None:
        if doc_key not in keys:
            sys.exit(f"error: no document with key {doc_key!r}")
        return keys.index(doc_key)
    if index is not None:
        return index
    small = [i for i, d in enumerate(docs) if len(d) <= max_tokens and len(entity_graph(d).edges) <= max_edges]
    candidates = small or list(range(len(docs)))
    return max(candidates, key=lambda i: (interest(docs[i]), -i))


def find_browser() -> Optional[str]:
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    return None


def screenshot(html_text: str, png: Path, width: int, height: int) -> bool:
    """Open the page in headless Chromium and save a PNG of ``width`` x ``height``."""
    browser = find_browser()
    if browser is None:
        print("no chromium binary: PNG skipped (apt-get install -y --no-install-recommends chromium)")
        return False
    with tempfile.TemporaryDirectory() as tmp:
        page = Path(tmp) / "graph.html"
        page.write_text(html_text, encoding="utf8")
        cmd = [browser, *CHROMIUM_FLAGS, f"--user-data-dir={Path(tmp) / 'profile'}", f"--screenshot={png.resolve()}",
               f"--window-size={width},{height}", page.resolve().as_uri()]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if not png.exists():
        print(f"chromium wrote no screenshot: {proc.stderr[-500:]}")
        return False
    return True


def svg_size(markup: str) -> Tuple[int, int]:
    """Width and height of the graph SVG in a page (for the screenshot's window)."""
    match = re.search(r'class="hmtl-graph-svg" width="(\d+)" height="(\d+)"', markup)
    return (int(match.group(1)), int(match.group(2))) if match else (900, 500)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="trained pipeline directory or name")
    parser.add_argument("corpus", help=".spacy test corpus, or a .txt file of paragraphs (blank lines between them)")
    parser.add_argument("--output-dir", default="docs", help="where the JSON and HTML go (default docs)")
    parser.add_argument("--image-dir", default="docs/images", help="where the PNG goes (default docs/images)")
    parser.add_argument("--doc-key", default=None, help="show this document (its hmtl_doc_key)")
    parser.add_argument("--index", type=int, default=None, help="show the document at this position")
    parser.add_argument("--max-tokens", type=int, default=160, help="largest document considered (default 160)")
    parser.add_argument("--max-edges", type=int, default=10, help="most edges of a graph considered (default 10)")
    parser.add_argument("--name", default="graph_example", help="file name stem (default graph_example)")
    args = parser.parse_args(argv)

    nlp = spacy.load(args.model)
    gold, keys = read_documents(nlp, Path(args.corpus))
    docs = annotate(nlp, gold)
    i = pick(docs, keys, args.doc_key, args.index, args.max_tokens, args.max_edges)
    doc, key = docs[i], keys[i] if keys[i] is not None else str(i)
    graph = entity_graph(doc)
    out_dir, image_dir = Path(args.output_dir), Path(args.image_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    image_dir.mkdir(parents=True, exist_ok=True)
    record = {
        "model": str(args.model), "corpus": str(args.corpus), "doc_key": key, "text": doc.text,
        "graph": graph.to_dict(), "resolved_text": resolve_text(doc, graph).text,
        "resolved_text_all_mentions": resolve_text(doc, graph, mode="all").text,
    }
    json_path = out_dir / f"{args.name}.json"
    json_path.write_text(json.dumps(record, ensure_ascii=False, indent=1) + "\n", encoding="utf8")
    html_path = out_dir / f"{args.name}.html"
    html_path.write_text(render(doc, titles=[f"{key} (predicted by {args.model})"]), encoding="utf8")
    graph_page = render(doc, layers=["graph"], titles=[key])
    width, height = svg_size(graph_page)
    png = image_dir / f"{args.name}.png"
    shot = screenshot(graph_page, png, width + 90, height + 160 + 40 * (len(graph.nodes) > len(graph.edges)))
    print(f"document {key} ({len(doc)} tokens): {len(graph.nodes)} entities, {len(graph.edges)} relation edges")
    for head, label, tail in graph.triples():
        print(f"  {head} --{label}--> {tail}")
    print(f"wrote {json_path}, {html_path}" + (f", {png}" if shot else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
