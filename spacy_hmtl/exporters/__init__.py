"""Exporters: a pipeline's predictions (or any document's layers) in the formats of the
annotation tools, so that a model pre-annotates and a person corrects; ``convert
<format>`` reads the corrected export back.

Every exporter takes ``spacy_hmtl.doc_json.doc_to_json``'s dict of a document
(one ``annotate`` output line). ``annotate --output-format FORMAT`` uses
``line_exporter(FORMAT)`` on each line it writes (Prodigy's JSONL is line by line, so
``annotate`` writes it and resumes it), and ``written_format`` to refuse to resume an
output written in another format. ``python -m spacy_hmtl export FORMAT`` (``export_file``)
turns a finished ``annotate`` output into any tool's import file: Prodigy JSONL, Label
Studio's JSON array or a brat directory, which are whole files, not lines.
"""
from typing import Any, Callable, Dict

from .brat import to_brat
from .common import ExportError
from .files import EXPORT_FORMATS, ExportSummary, export_file
from .labelstudio import to_labelstudio
from .prodigy import is_prodigy_line, prodigy_line, to_prodigy

# annotate --output-format -> (annotate line -> exported line, "is a line of this format").
LINE_EXPORTERS: Dict[str, Callable[[str], str]] = {"prodigy": prodigy_line}
_DETECTORS: Dict[str, Callable[[Dict[str, Any]], bool]] = {"prodigy": is_prodigy_line}


def line_exporter(output_format: str) -> Callable[[str], str]:
    """The function that turns an ``annotate`` line into a line of ``output_format``.

    RAISES KeyError: not an export format.
    """
    return LINE_EXPORTERS[output_format]


def written_format(obj: Dict[str, Any], default: str = "doc") -> str:
    """The export format an output line (parsed) was written in, or ``default``."""
    for name, detect in _DETECTORS.items():
        if detect(obj):
            return name
    return default


__all__ = [
    "EXPORT_FORMATS",
    "ExportError",
    "ExportSummary",
    "LINE_EXPORTERS",
    "export_file",
    "line_exporter",
    "to_brat",
    "to_labelstudio",
    "to_prodigy",
    "written_format",
]
