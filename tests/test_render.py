"""HTML rendering: self-contained markup with every layer, the relation arrows' direction,
row breaking, the ``render`` command, and a real browser (headless Chromium) that draws a
non-blank page whose DOM holds the labels.

The browser test needs a ``chromium`` binary (Debian: ``apt-get install -y
--no-install-recommends chromium``). Without one it is skipped, unless ``CI`` is set: on
CI a missing browser fails.
"""
import json
import os
import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import numpy
import pytest
import spacy

from spacy_hmtl.annotations import set_coref_clusters, set_relation_records
from spacy_hmtl.batch_annotator import doc_to_json
from spacy_hmtl.cli import main
from spacy_hmtl.relations.render import _row_breaks, render_relations_svg
from spacy_hmtl.render import render


BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome", "headless_shell")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--hide-scrollbars",
]


@pytest.fixture(scope="module")
def predicted(tiny_nlp, tiny_texts):
    return list(tiny_nlp.pipe(tiny_texts))


def hand_made_doc():
    """Every layer set by hand, with text that needs escaping."""
    nlp = spacy.blank("en")
    doc = nlp("Acme <Corp> hired Mary & Jones . She works there .")
    # tokens: Acme < Corp > hired Mary & Jones . She works there .
    doc.ents = [spacy.tokens.Span(doc, 0, 4, label="ORG"), spacy.tokens.Span(doc, 5, 8, label="PER")]
    doc.spans["mentions"] = spacy.tokens.SpanGroup(
        doc, name="mentions", spans=[doc[5:8], doc[9:10]], attrs={"scores": [0.9, 0.75]}
    )
    for span, label in zip(doc.spans["mentions"], ("PER", "PER")):
        span.label_ = label
    # the head (Mary & Jones) comes after the tail (Acme <Corp>)
    set_relation_records(doc, [[5, 8, 0, 4, "Work_For", 0.875]])
    set_coref_clusters(doc, [[(5, 8), (9, 10)], [(0, 4), (12, 13)]])
    return doc


def test_render_is_self_contained_and_has_every_layer():
    doc = hand_made_doc()
    markup = render(doc)
    assert markup.startswith("<!DOCTYPE html>") and markup.rstrip().endswith("</html>")
    for section in ("hmtl-entities", "hmtl-mentions", "hmtl-relations", "hmtl-coref"):
        assert section in markup
    for label in ("ORG", "PER", "Work_For", "C1", "C2", "0.75"):
        assert label in markup
    # offline: nothing to fetch, no scripts; only the SVG namespace is a URL
    assert not re.search(r"<script|<link|@import|url\(|<img|<iframe", markup, re.I)
    assert set(re.findall(r"https?://[^\s\"']+", markup)) <= {"http://www.w3.org/2000/svg"}
    # text is escaped everywhere
    assert "<Corp>" not in markup and "&lt;Corp&gt;" in markup
    assert "Mary & Jones" not in markup
    # Docs and their JSON (what `annotate` writes) render the same
    assert render(json.loads(json.dumps(doc_to_json(doc)))) == markup
    fragment = render([doc, doc], page=False)
    assert fragment.startswith('<div class="hmtl-render">') and fragment.count('class="hmtl-doc"') == 2


def test_missing_layers_are_left_out_and_empty_ones_say_so():
    nlp = spacy.blank("en")
    doc = nlp("Plain text only .")
    markup = render(doc, page=False)
    assert "hmtl-layer" not in markup and "no annotation" in markup
    doc.ents = []
    set_relation_records(doc, [])
    markup = render(doc, page=False)
    assert "hmtl-entities" in markup and "no entities" in markup
    assert "hmtl-relations" in markup and "no relations" in markup
    assert "hmtl-mentions" not in markup and "hmtl-coref" not in markup
    assert "hmtl-entities" not in render(doc, layers=["relations"])
    with pytest.raises(ValueError, match="unknown layers"):
        render(doc, layers=["deps"])


def test_relation_arrow_points_from_head_to_tail():
    data = doc_to_json(hand_made_doc())
    svg = render_relations_svg(data)
    assert svg.count('class="hmtl-relation"') == 1
    head_x = float(re.search(r'<circle cx="([\d.]+)"', svg).group(1))  # the head end
    tip_x = float(re.search(r'L([\d.]+),[\d.]+ Z', svg).group(1))  # the arrowhead's tip
    assert tip_x < head_x  # the tail (Acme <Corp>) is left of the head
    assert "Mary &amp; Jones \u2192 Work_For \u2192 Acme &lt;Corp&gt; (score 0.875)" in svg


def test_rows_break_only_outside_relations():
    widths = [50.0] * 30
    rels = [{"head": {"start_token": 2, "end_token": 3}, "tail": {"start_token": 12, "end_token": 14}}]
    rows = _row_breaks(30, widths, rels, max_width=200)
    assert rows[0][0] == 0 and rows[-1][1] == 30
    assert all(a[1] == b[0] for a, b in zip(rows, rows[1:]))
    assert any(start <= 2 and 14 <= end for start, end in rows)  # the relation stays in one row
    assert len(rows) > 3


def test_render_command(tmp_path, tiny_pipeline_path, tiny_texts, predicted, capsys):
    page = tmp_path / "page.html"
    assert main(["render", str(tiny_pipeline_path), tiny_texts[0], tiny_texts[1], "--output", str(page)]) == 0
    markup = page.read_text(encoding="utf8")
    assert markup == render(predicted[:2])
    annotated = tmp_path / "annotated.jsonl"
    annotated.write_text("".join(json.dumps(doc_to_json(d, i)) + "\n" for i, d in enumerate(predicted)), encoding="utf8")
    assert main(["render", "--jsonl", str(annotated), "--limit", "2", "-o", str(page), "--overwrite"]) == 0
    assert page.read_text(encoding="utf8").count('class="hmtl-doc"') == 2
    assert main(["render", "--jsonl", str(annotated), "--layers", "relations"]) == 0
    out = capsys.readouterr().out
    assert "hmtl-relations" in out and "hmtl-entities" not in out


# --- a real browser -------------------------------------------------------------------------


def find_browser():
    override = os.environ.get("CHROMIUM_BIN")
    if override:
        return override
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    return None


def png_pixels(path: Path):
    """(width, height, channels, flat list-like of bytes) of an 8-bit PNG."""
    try:
        from PIL import Image
    except ImportError:
        return _decode_png(path.read_bytes())
    with Image.open(path) as image:
        rgb = image.convert("RGB")
        return rgb.width, rgb.height, 3, rgb.tobytes()


def _decode_png(data: bytes):
    """A minimal PNG decoder (8-bit grey/RGB/RGBA, no interlacing): zlib and the five filters."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, b"", None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", chunk)
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    width, height, depth, color, _, _, interlace = header
    assert depth == 8 and interlace == 0 and color in (0, 2, 6), header
    bpp = {0: 1, 2: 3, 6: 4}[color]
    raw = numpy.frombuffer(zlib.decompress(idat), dtype=numpy.uint8).reshape(height, width * bpp + 1)
    out = numpy.zeros((height, width * bpp), dtype=numpy.uint8)
    prev = numpy.zeros(width * bpp, dtype=numpy.uint8)
    for y in range(height):
        kind, line = raw[y, 0], raw[y, 1:]
        if kind == 0:
            cur = line.copy()
        elif kind == 1:  # Sub: a running sum per channel
            cur = (numpy.cumsum(line.reshape(width, bpp).astype(numpy.int64), axis=0) & 255).astype(numpy.uint8).ravel()
        elif kind == 2:  # Up
            cur = line + prev
        else:  # Average and Paeth depend on the pixel just decoded: byte by byte
            cur_list, up = line.tolist(), prev.tolist()
            for i in range(len(cur_list)):
                a = cur_list[i - bpp] if i >= bpp else 0
                b = up[i]
                if kind == 3:
                    pred = (a + b) >> 1
                else:
                    c = up[i - bpp] if i >= bpp else 0
                    p = a + b - c
                    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                    pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                cur_list[i] = (cur_list[i] + pred) & 255
            cur = numpy.array(cur_list, dtype=numpy.uint8)
        out[y] = cur
        prev = cur
    return width, height, bpp, out.tobytes()


def run_browser(browser: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    user_dir = tmp_path / f"chromium-profile-{len(list(tmp_path.iterdir()))}"
    cmd = [browser, *CHROMIUM_FLAGS, f"--user-data-dir={user_dir}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def test_page_renders_in_headless_chromium(tmp_path, predicted):
    browser = find_browser()
    if browser is None:
        if os.environ.get("CI"):
            pytest.fail("no chromium binary on CI: apt-get install -y --no-install-recommends chromium")
        pytest.skip("no chromium binary (set CHROMIUM_BIN or install chromium)")
    page = tmp_path / "page.html"
    page.write_text(render(predicted), encoding="utf8")
    url = page.resolve().as_uri()

    shot = tmp_path / "shot.png"
    proc = run_browser(browser, tmp_path, f"--screenshot={shot}", "--window-size=1200,800", url)
    assert shot.exists(), proc.stderr[-2000:]
    width, height, channels, pixels = png_pixels(shot)
    assert (width, height) == (1200, 800)
    # luminance statistics on a grid of pixels: a blank page is one flat colour
    values = []
    for y in range(0, height, 4):
        for x in range(0, width, 4):
            i = (y * width + x) * channels
            values.append(sum(pixels[i:i + min(channels, 3)]) / min(channels, 3))
    mean = sum(values) / len(values)
    variance = sum((v - mean) ** 2 for v in values) / len(values)
    dark = sum(v < 128 for v in values) / len(values)
    assert variance > 50, f"blank screenshot? variance {variance:.1f}"
    assert 0.001 < dark < 0.5, f"dark pixel share {dark:.4f}"

    proc = run_browser(browser, tmp_path, "--dump-dom", url)
    dom = proc.stdout
    assert 'class="hmtl-relations-svg"' in dom, proc.stderr[-2000:]
    labels = {e.label_ for d in predicted for e in d.ents}
    labels |= {r.label for d in predicted for r in d._.relations}
    labels |= {f"C{i + 1}" for d in predicted for i in range(len(d._.coref_clusters))}
    assert labels and all(label in dom for label in labels), labels
