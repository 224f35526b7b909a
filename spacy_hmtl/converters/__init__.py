"""Corpus converters: each turns one source format into spaCy's binary ``.spacy`` format
(``DocBin(store_user_data=True)``), keeping every annotation layer the corpus has, in the
data model of ``spacy_hmtl.annotations``.

``convert_<format>(input_path, output_path, **options) -> ConversionSummary`` writes
atomically, never over its input, and over an existing output only with
``overwrite=True``; ``read_<format>(...)`` yields the Docs without writing anything.
"""
from typing import Callable, Dict

from .brat import convert_brat, read_brat
from .common import ConversionError, ConversionSummary
from .conll import convert_conll, read_conll_ner
from .conll04 import convert_conll04, read_conll04
from .conll2012 import convert_conll2012, read_conll2012
from .labelstudio import convert_labelstudio, read_labelstudio
from .litbank import convert_litbank, read_fold, read_litbank, read_litbank_doc
from .prodigy import convert_prodigy, read_prodigy
from .scierc import convert_scierc, read_scierc

# FORMAT name on the command line -> converter.
CONVERTERS: Dict[str, Callable[..., ConversionSummary]] = {
    "scierc": convert_scierc,
    "conll04": convert_conll04,
    "litbank": convert_litbank,
    "conll": convert_conll,
    "conll2012": convert_conll2012,
    # annotation tools (docs/OWN_DATA.md)
    "prodigy": convert_prodigy,
    "labelstudio": convert_labelstudio,
    "brat": convert_brat,
}

__all__ = [
    "CONVERTERS",
    "ConversionError",
    "ConversionSummary",
    "convert_brat",
    "convert_labelstudio",
    "convert_prodigy",
    "convert_conll",
    "convert_conll04",
    "convert_conll2012",
    "convert_litbank",
    "convert_scierc",
    "read_brat",
    "read_conll04",
    "read_conll2012",
    "read_conll_ner",
    "read_fold",
    "read_labelstudio",
    "read_litbank",
    "read_litbank_doc",
    "read_prodigy",
    "read_scierc",
]
