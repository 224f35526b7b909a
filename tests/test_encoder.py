"""hmtl_encoder and HMTLListener: the shared-encoder mechanics DESIGN.md section 3 asks for."""
import subprocess
import sys

import numpy
import pytest
import spacy
import torch
from spacy.training import Example
from thinc.api import Adam

from spacy_hmtl.layers.torch_bridge import get_torch_module

SMALL_ENCODER = {"model": {"level_widths": [16, 16], "level_depths": [1, 1], "embed": {"width": 32}}}

DATA = [
    ("Alice lives in Paris .", [(0, 5, "PER"), (15, 20, "LOC")]),
    ("Bob met Carol in Rome today .", [(0, 3, "PER"), (8, 13, "PER"), (17, 21, "LOC")]),
]


def _pipeline(with_mentions: bool = False, with_ner: bool = True):
    nlp = spacy.blank("en")
    nlp.add_pipe("hmtl_encoder", config=SMALL_ENCODER)
    if with_ner:
        nlp.add_pipe("hmtl_ner")
    if with_mentions:
        nlp.add_pipe("hmtl_mentions")
    return nlp


def _examples(nlp, ner: bool = True, mentions: bool = True):
    examples = []
    for text, ents in DATA:
        ref = nlp.make_doc(text)
        if ner:
            ref.set_ents([ref.char_span(s, e, label=label) for s, e, label in ents], default="outside")
        if mentions:
            ref.spans["mentions"] = [ref.char_span(s, e, label=label) for s, e, label in ents]
        examples.append(Example(nlp.make_doc(text), ref))
    return examples


def _levels(nlp):
    hierarchy = get_torch_module(nlp.get_pipe("hmtl_encoder").model.get_ref("hierarchy"))
    return hierarchy.levels


def _grad_norm(module: torch.nn.Module) -> float:
    return sum(float(p.grad.abs().sum()) for p in module.parameters() if p.grad is not None)


def _snapshot(module: torch.nn.Module):
    return [p.detach().clone() for p in module.parameters()]


def _changed(module: torch.nn.Module, before) -> bool:
    return any(not torch.equal(p.detach(), b) for p, b in zip(module.parameters(), before))


def test_entry_points_register_everything_without_importing_the_package():
    code = (
        "import sys, spacy\n"
        "assert 'spacy_hmtl' not in sys.modules\n"
        "nlp = spacy.blank('en')\n"
        "for name in ['hmtl_encoder', 'hmtl_ner', 'hmtl_mentions', 'hmtl_relations', 'hmtl_coref']:\n"
        "    nlp.add_pipe(name)\n"
        "from spacy.util import registry\n"
        "for arch in ['spacy_hmtl.HierarchicalEncoder.v1', 'spacy_hmtl.HMTLListener.v1', 'spacy_hmtl.CRFTagger.v1',\n"
        "             'spacy_hmtl.SpanMentionDetector.v1', 'spacy_hmtl.RelationExtractor.v1', 'spacy_hmtl.CorefRanker.v1',\n"
        "             'spacy_hmtl.CorefRanker.v2', 'spacy_hmtl.CorefRanker.v3']:\n"
        "    registry.architectures.get(arch)\n"
        "for scorer in ['spacy_hmtl.mentions_scorer.v1', 'spacy_hmtl.relation_scorer.v1', 'spacy_hmtl.coref_scorer.v1']:\n"
        "    registry.scorers.get(scorer)\n"
        "print(nlp.pipe_names)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "hmtl_coref" in out.stdout


def test_listeners_are_linked_with_their_level_widths():
    nlp = _pipeline(with_mentions=True)
    nlp.initialize(lambda: _examples(nlp))
    encoder = nlp.get_pipe("hmtl_encoder")
    assert set(encoder.listening_components) == {"hmtl_ner", "hmtl_mentions"}
    widths = encoder.model.attrs["level_widths"]
    assert nlp.get_pipe("hmtl_ner").model.get_ref("tok2vec").get_dim("nO") == widths[1]
    assert nlp.get_pipe("hmtl_mentions").model.get_ref("tok2vec").get_dim("nO") == widths[0] + widths[2]


def test_level_1_head_only_reaches_level_1_and_embeddings():
    nlp = _pipeline()
    nlp.initialize(lambda: _examples(nlp))
    level1, level2 = _levels(nlp)
    nlp.update(_examples(nlp), sgd=False)
    assert _grad_norm(level1) > 0
    assert _grad_norm(level2) == 0


def test_level_2_head_reaches_both_levels():
    nlp = _pipeline(with_mentions=True, with_ner=False)
    nlp.initialize(lambda: _examples(nlp))
    level1, level2 = _levels(nlp)
    nlp.update(_examples(nlp, ner=False), sgd=False)
    assert _grad_norm(level2) > 0
    assert _grad_norm(level1) > 0  # through level 2's input: lower levels learn from the tasks above


def test_a_head_without_gold_does_not_drop_the_other_heads_gradients():
    """The trap of copying Tok2Vec: with no NER gold the NER head never calls back.
    The encoder must still learn from the mention head (flushed at finish_update)."""
    nlp = _pipeline(with_mentions=True)
    nlp.initialize(lambda: _examples(nlp))
    level1, level2 = _levels(nlp)
    before1, before2 = _snapshot(level1), _snapshot(level2)
    optimizer = Adam(0.01)
    losses = nlp.update(_examples(nlp, ner=False), sgd=False, losses={})
    assert losses["hmtl_ner"] == 0.0 and losses["hmtl_mentions"] > 0
    # spacy train: every update first, then every finish_update
    for _, proc in nlp.pipeline:
        proc.finish_update(optimizer)
    assert _changed(level2, before2)
    assert _changed(level1, before1)


def _all_parameters(nlp) -> list:
    """Every thinc and torch parameter of the pipeline, as numpy arrays."""
    params = []
    for _, proc in nlp.pipeline:
        for node in proc.model.walk():
            params.extend(numpy.asarray(node.get_param(name)).copy() for name in node.param_names)
            for shim in node.shims:
                params.extend(p.detach().numpy().copy() for p in shim._model.parameters())
    return params


def _train_both_ways(n_batches: int):
    """The same batches through ``nlp.update(sgd=...)`` and through ``spacy train``'s
    path (``update(sgd=False)``, then every pipe's ``finish_update``)."""
    from spacy.util import fix_random_seed

    results = []
    for path in ("nlp.update", "spacy train"):
        fix_random_seed(0)
        nlp = _pipeline(with_mentions=True)
        nlp.initialize(lambda: _examples(nlp))  # noqa: B023  (called at once, inside the iteration)
        optimizer = Adam(0.01, L2=0.0)
        for step in range(n_batches):
            # every third batch has no NER gold: hmtl_ner declines it
            examples = _examples(nlp, ner=step % 3 != 2)
            if path == "nlp.update":
                nlp.update(examples, sgd=optimizer, drop=0.1)
            else:
                nlp.update(examples, sgd=False, drop=0.1)
                for _, proc in nlp.pipeline:
                    proc.finish_update(optimizer)
        results.append(_all_parameters(nlp))
    return results


@pytest.mark.parametrize("n_batches", [1, 4])
def test_nlp_update_with_sgd_equals_the_spacy_train_path(n_batches):
    via_update, via_train = _train_both_ways(n_batches)
    assert len(via_update) == len(via_train) > 0
    for a, b in zip(via_update, via_train):
        numpy.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_nlp_update_applies_the_last_batch_to_the_encoder():
    nlp = _pipeline()
    nlp.initialize(lambda: _examples(nlp))
    level1, _ = _levels(nlp)
    before = _snapshot(level1)
    nlp.update(_examples(nlp), sgd=Adam(0.01, L2=0.0))
    assert _changed(level1, before)


def test_use_params_swaps_the_optimizer_averages_into_every_torch_module():
    # spacy train evaluates and saves under nlp.use_params(optimizer.averages); thinc's own
    # PyTorchShim never found the averages of a torch module (other key format)
    nlp = _pipeline()
    optimizer = Adam(0.05, L2=0.0, use_averages=True)
    nlp.initialize(lambda: _examples(nlp), sgd=optimizer)
    for _ in range(5):
        nlp.update(_examples(nlp), sgd=optimizer)
    modules = [get_torch_module(nlp.get_pipe("hmtl_encoder").model.get_ref("hierarchy")),
               get_torch_module(nlp.get_pipe("hmtl_ner").model.get_ref("torch_head"))]
    current = [{n: p.detach().clone() for n, p in m.named_parameters()} for m in modules]
    texts = [text for text, _ in DATA]
    plain = [[(e.start, e.end, e.label_) for e in doc.ents] for doc in nlp.pipe(texts)]
    with nlp.use_params(optimizer.averages):
        for module, before in zip(modules, current):
            shim_id = next(s.id for s in _shims(nlp) if s._model is module)
            for name, param in module.named_parameters():
                expected = optimizer.averages[(shim_id, name)]
                numpy.testing.assert_allclose(param.detach().numpy(), expected, rtol=1e-6, atol=1e-7)
                assert not torch.equal(param, before[name]), name
    for module, before in zip(modules, current):  # restored afterwards
        for name, param in module.named_parameters():
            assert torch.equal(param, before[name]), name
    assert [[(e.start, e.end, e.label_) for e in doc.ents] for doc in nlp.pipe(texts)] == plain


def _shims(nlp):
    return [shim for _, proc in nlp.pipeline for node in proc.model.walk() for shim in node.shims]


def test_grad_factor_scales_what_a_head_sends_to_the_encoder():
    norms = []
    for factor in (1.0, 0.0):
        nlp = spacy.blank("en")
        nlp.add_pipe("hmtl_encoder", config=SMALL_ENCODER)
        nlp.add_pipe("hmtl_ner", config={"model": {"tok2vec": {"grad_factor": factor}}})
        torch.manual_seed(0)
        nlp.initialize(lambda: _examples(nlp))  # noqa: B023  (called at once, inside the iteration)
        nlp.update(_examples(nlp), sgd=False)
        norms.append(_grad_norm(_levels(nlp)[0]))
    assert norms[0] > 0 and norms[1] == 0


def test_inference_states_and_empty_docs():
    nlp = _pipeline()
    nlp.initialize(lambda: _examples(nlp))
    width = nlp.get_pipe("hmtl_encoder").model.get_dim("nO")
    docs = list(nlp.pipe(["", "Hello", "Alice lives in Paris ."]))
    assert [d.tensor.shape for d in docs] == [(0, width), (1, width), (5, width)]
    assert list(nlp.pipe(["", ""]))[0].tensor.shape == (0, width)
    losses = nlp.update([Example(nlp.make_doc(""), nlp.make_doc(""))], sgd=False)
    assert losses["hmtl_ner"] == 0.0


def test_listener_without_states_fails_loudly():
    nlp = _pipeline()
    nlp.initialize(lambda: _examples(nlp))
    doc = nlp.make_doc("Alice lives in Paris .")
    with pytest.raises(ValueError, match="no encoder states"):
        nlp.get_pipe("hmtl_ner")(doc)


def test_listener_level_the_encoder_lacks_is_a_clear_error():
    nlp = spacy.blank("en")
    nlp.add_pipe("hmtl_encoder", config=SMALL_ENCODER)
    with pytest.raises(ValueError, match="levels 0 .* to 2.*level 3"):
        nlp.add_pipe("hmtl_ner", config={"model": {"tok2vec": {"level": 3}}})
        nlp.initialize(lambda: _examples(nlp))


def test_listener_with_missing_upstream_is_a_clear_error():
    nlp = spacy.blank("en")
    nlp.add_pipe("hmtl_ner")
    with pytest.raises(ValueError, match="listens to 'hmtl_encoder'.*not in the pipeline"):
        nlp.initialize(lambda: _examples(nlp))


def test_encoder_output_is_embeddings_then_levels():
    nlp = _pipeline()
    nlp.initialize(lambda: _examples(nlp))
    encoder = nlp.get_pipe("hmtl_encoder")
    doc = nlp.make_doc("Alice lives in Paris .")
    states = encoder.predict([doc])[0]
    embed = encoder.model.get_ref("embed").predict([doc])[0]
    widths = encoder.model.attrs["level_widths"]
    numpy.testing.assert_allclose(states[:, : widths[0]], embed, rtol=1e-5, atol=1e-6)
    assert states.shape[1] == sum(widths)
