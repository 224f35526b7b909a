"""The ``spacy_hmtl.CRFTagger.v1`` architecture of ``hmtl_ner``: a listener + the CRF
tagger torch module."""
from dataclasses import asdict, dataclass
from typing import List

from spacy.tokens import Doc
from spacy.util import registry
from thinc.api import Model
from thinc.types import Floats2d

from ..layers.torch_head import HeadBatch, HeadSettings, LabelSets, build_torch_head
from .torch_module import CRFTagger


@dataclass(frozen=True)
class CRFTaggerSettings(HeadSettings):
    """Hyper-parameters of the NER head: the settings of ``spacy_hmtl.CRFTagger.v1`` and
    the keyword arguments of ``CRFTagger``. Its label set: ``labels`` (entity labels).

    hidden_width (int): hidden layer before the emission scores (0 = linear, as in HMTL).
    dropout (float): dropout on the token vectors.
    """

    hidden_width: int
    dropout: float

    def build_module(self, input_width: int, labels: LabelSets) -> CRFTagger:
        return CRFTagger(input_width, len(labels["labels"]), **asdict(self))


@registry.architectures("spacy_hmtl.CRFTagger.v1")
def build_crf_tagger(
    tok2vec: Model[List[Doc], List[Floats2d]], hidden_width: int, dropout: float
) -> Model[List[Doc], HeadBatch]:
    """HMTL's NER head: per-token emission scores from ``tok2vec`` (level 1 of the
    encoder) and a BIOUL-constrained CRF, decoded with Viterbi.

    tok2vec (Model[List[Doc], List[Floats2d]]): the token vectors (a listener).
    The other arguments: the fields of ``CRFTaggerSettings``, documented there; their
    defaults: the ``hmtl_ner`` factory's config.
    """
    return build_torch_head("hmtl_ner", tok2vec, CRFTaggerSettings.from_arguments(locals()))
