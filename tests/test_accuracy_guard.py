"""CI-sized accuracy guard on real data: the shipped SciERC config, trained with `spacy
train` for a few minutes' worth of steps on a fixed subset of the SciERC training set
(fixed seed; ``helpers.train_scierc_pipeline``, the session fixture ``scierc_pipeline``
that other tests share), must keep every head above a floor on that subset (how well each
head fits real data in a fixed budget; a dev subset is too noisy at this size). A refactor or a
"speed-up" that quietly costs accuracy fails here.

The floors sit about a third below what this test measured when they were set (the
figures in FLOORS' comment), so float noise across machines does not trip it while a real
loss of accuracy does.
"""
import json

import pytest
import spacy

from helpers import SCIERC_TRAIN_DOCS

# head score -> floor, about two thirds of what this test measured when the floors were set
# (2-core CPU, seed 0): ents_f 0.583, mentions_f 0.697, rel_micro_f 0.226, coref_f 0.558;
# with the relation pair features (context_pooling, distance_embedding) rel_micro_f 0.356
# (ents_f 0.610, mentions_f 0.689, coref_f 0.538), so the relation floor rose with them
FLOORS = {
    "ents_f": 0.40,
    "mentions_f": 0.47,
    "rel_micro_f": 0.24,
    "coref_f": 0.37,
}


@pytest.fixture(scope="module")
def guard_scores(scierc_pipeline) -> dict:
    """The trained SciERC pipeline (the session fixture: ``helpers.train_scierc_pipeline``,
    SCIERC_TRAIN_DOCS documents) scored on its training subset."""
    from spacy.training import Corpus

    nlp = spacy.load(scierc_pipeline.model)
    scores = nlp.evaluate(list(Corpus(str(scierc_pipeline.train))(nlp)))
    (scierc_pipeline.train.parent / "scores.json").write_text(json.dumps({k: scores[k] for k in FLOORS}))
    print(f"accuracy guard ({SCIERC_TRAIN_DOCS} documents):", {k: round(scores[k], 4) for k in FLOORS})
    return scores


@pytest.mark.parametrize("key", sorted(FLOORS))
def test_every_head_stays_above_its_floor(guard_scores, key):
    assert guard_scores[key] is not None
    assert guard_scores[key] >= FLOORS[key], f"{key} = {guard_scores[key]:.4f} < floor {FLOORS[key]}"
