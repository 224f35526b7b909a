"""hmtl_ner: the BIOUL CRF against brute force, and the pipe end to end."""
import itertools

import pytest
import spacy
import torch
from spacy.training import Example

from spacy_hmtl.ner.component import tags_to_spans
from spacy_hmtl.ner.torch_module import FORBIDDEN, CRFTagger, bioul_constraints, bioul_tag_names

from helpers import make_head_nlp

TRAIN = [
    ("Alice Smith lives in Paris .", [(0, 11, "PER"), (21, 26, "LOC")]),
    ("Bob works for Acme Corp in London .", [(0, 3, "PER"), (14, 23, "ORG"), (27, 33, "LOC")]),
    ("Nothing to see here .", []),
    ("The New York Times hired Carol .", [(4, 18, "ORG"), (25, 30, "PER")]),
]


def _path_score(crf: CRFTagger, emissions: torch.Tensor, path) -> torch.Tensor:
    start, trans, end = crf._scores()
    score = start[path[0]] + emissions[0, path[0]]
    for t in range(1, len(path)):
        score = score + trans[path[t - 1], path[t]] + emissions[t, path[t]]
    return score + end[path[-1]]


def _is_valid(path, n_labels: int) -> bool:
    start, trans, end = bioul_constraints(n_labels)
    if not path:
        return True
    return bool(start[path[0]]) and bool(end[path[-1]]) and all(bool(trans[a, b]) for a, b in zip(path, path[1:]))


@pytest.fixture
def crf():
    torch.manual_seed(0)
    module = CRFTagger(n_in=4, n_labels=2, hidden_width=0, dropout=0.0)
    with torch.no_grad():
        module.transitions.normal_()
        module.start_transitions.normal_()
        module.end_transitions.normal_()
    return module


def test_log_partition_equals_brute_force(crf):
    n_tags, time = crf.n_tags, 3
    emissions = torch.randn(1, time, n_tags)
    brute = torch.logsumexp(
        torch.stack([_path_score(crf, emissions[0], p) for p in itertools.product(range(n_tags), repeat=time)]), 0
    )
    assert crf.log_partition(emissions, torch.tensor([time]))[0].item() == pytest.approx(brute.item(), abs=1e-4)


def test_likelihood_of_valid_paths_only_and_partial_labels(crf):
    n_tags, time = crf.n_tags, 3
    emissions = torch.randn(1, time, n_tags)
    valid = [p for p in itertools.product(range(n_tags), repeat=time) if _is_valid(p, 2)]
    log_z_valid = torch.logsumexp(torch.stack([_path_score(crf, emissions[0], p) for p in valid]), 0)
    # Forbidden paths carry (numerically) no probability mass.
    assert crf.log_partition(emissions, torch.tensor([time]))[0].item() == pytest.approx(log_z_valid.item(), abs=1e-3)
    names = bioul_tag_names(["A", "B"])
    gold = [names.index("B-A"), names.index("L-A"), names.index("O")]
    nll = crf.neg_log_likelihood(emissions, torch.tensor([time]), torch.tensor([gold]))
    expected = log_z_valid - _path_score(crf, emissions[0], gold)
    assert nll.item() == pytest.approx(expected.item(), abs=1e-3)
    # Unknown tag in the middle: marginalise over every valid completion.
    partial = [gold[0], -1, gold[2]]
    compatible = [p for p in valid if p[0] == gold[0] and p[2] == gold[2]]
    log_num = torch.logsumexp(torch.stack([_path_score(crf, emissions[0], p) for p in compatible]), 0)
    nll_partial = crf.neg_log_likelihood(emissions, torch.tensor([time]), torch.tensor([partial]))
    assert nll_partial.item() == pytest.approx((log_z_valid - log_num).item(), abs=1e-3)
    # A sequence with no gold at all adds nothing.
    none = crf.neg_log_likelihood(emissions, torch.tensor([time]), torch.tensor([[-1, -1, -1]]))
    assert none.item() == 0.0


def test_padding_does_not_change_the_likelihood(crf):
    emissions = torch.randn(2, 5, crf.n_tags)
    tags = torch.tensor([[0, 0, 0, 0, 0], [0, 0, -1, -1, -1]])
    both = crf.neg_log_likelihood(emissions, torch.tensor([5, 2]), tags)
    first = crf.neg_log_likelihood(emissions[:1], torch.tensor([5]), tags[:1])
    second = crf.neg_log_likelihood(emissions[1:, :2], torch.tensor([2]), tags[1:, :2])
    assert both.item() == pytest.approx((first + second).item(), rel=1e-5)


def test_viterbi_is_the_best_valid_path(crf):
    time = 3
    for seed in range(4):
        torch.manual_seed(seed)
        emissions = torch.randn(1, time, crf.n_tags) * 3
        valid = [p for p in itertools.product(range(crf.n_tags), repeat=time) if _is_valid(p, 2)]
        best = max(valid, key=lambda p: _path_score(crf, emissions[0], p).item())
        assert crf.viterbi(emissions, torch.tensor([time]))[0] == list(best)


def test_viterbi_never_returns_an_invalid_sequence():
    torch.manual_seed(1)
    crf = CRFTagger(n_in=4, n_labels=3, hidden_width=0, dropout=0.0)
    with torch.no_grad():  # learned scores that favour forbidden moves must not matter
        crf.transitions.normal_(std=50.0)
    lengths = torch.randint(0, 30, (64,))
    emissions = torch.randn(64, 30, crf.n_tags) * 20
    for path, n in zip(crf.viterbi(emissions, lengths), lengths.tolist()):
        assert len(path) == n
        assert _is_valid(path, 3)
    assert FORBIDDEN < -1000


def test_tags_to_spans():
    assert tags_to_spans(["U-PER", "O", "B-ORG", "I-ORG", "L-ORG", "O"]) == [(0, 1, "PER"), (2, 5, "ORG")]
    assert tags_to_spans([]) == []


# the encoder under the head in these tests: a small hmtl_encoder (hmtl_ner keeps its default
# listener of level 1)
ENCODER_MODEL = {"level_widths": [32, 32], "level_depths": [1, 1], "embed": {"width": 48}}


def _train_ner(steps: int = 80):
    nlp = make_head_nlp("hmtl_ner", encoder=ENCODER_MODEL)
    examples = [Example.from_dict(nlp.make_doc(t), {"entities": e}) for t, e in TRAIN]
    optimizer = nlp.initialize(lambda: examples)
    optimizer.learn_rate = 0.01
    for _ in range(steps):
        nlp.update(examples, sgd=optimizer, drop=0.0)
    return nlp, examples


@pytest.fixture(scope="module")
def trained_nlp_examples():
    """``(nlp, examples)``: an hmtl_encoder + hmtl_ner pipeline overfitted on TRAIN."""
    torch.manual_seed(0)
    return _train_ner()


def test_overfits_to_perfect_entities(trained_nlp_examples):
    nlp, examples = trained_nlp_examples
    scores = nlp.evaluate(examples)
    assert scores["ents_f"] == 1.0
    assert set(nlp.get_pipe("hmtl_ner").labels) == {"LOC", "ORG", "PER"}


def test_round_trips_and_multiprocessing(trained_nlp_examples, tmp_path):
    nlp, _ = trained_nlp_examples
    texts = [t for t, _ in TRAIN] + ["", "x", "Paris"]
    expected = [[(e.start, e.end, e.label_) for e in nlp(t).ents] for t in texts]
    nlp.to_disk(tmp_path / "model")
    loaded = spacy.load(tmp_path / "model")
    assert [[(e.start, e.end, e.label_) for e in d.ents] for d in loaded.pipe(texts)] == expected
    multi = loaded.pipe(texts, n_process=2, batch_size=2)
    assert [[(e.start, e.end, e.label_) for e in d.ents] for d in multi] == expected
    from_bytes = make_head_nlp("hmtl_ner", encoder=ENCODER_MODEL)
    from_bytes.from_bytes(nlp.to_bytes())
    assert [[(e.start, e.end, e.label_) for e in from_bytes(t).ents] for t in texts] == expected


def test_docs_without_entity_annotation_add_no_loss(trained_nlp_examples):
    nlp, _ = trained_nlp_examples
    unannotated = [Example(nlp.make_doc("Alice lives in Paris ."), nlp.make_doc("Alice lives in Paris ."))]
    assert not unannotated[0].reference.has_annotation("ENT_IOB")
    losses = nlp.update(unannotated, sgd=False)
    assert losses["hmtl_ner"] == 0.0


def _autograd_log_partition(emissions, lengths, start, trans, end):
    """The forward recursion through autograd (what ForwardAlgorithm's backward replaces)."""
    alpha = start + emissions[:, 0]
    for t in range(1, emissions.shape[1]):
        step = torch.logsumexp(alpha.unsqueeze(2) + trans.unsqueeze(0), dim=1) + emissions[:, t]
        alpha = torch.where((t < lengths).unsqueeze(1), step, alpha)
    log_z = torch.logsumexp(alpha + end, dim=1)
    return torch.where(lengths > 0, log_z, torch.zeros_like(log_z))


@pytest.mark.parametrize("gap", [1.0, 5000.0])
@pytest.mark.parametrize("lengths", [[6, 3, 0, 1, 6], [1], [4, 4]])
def test_forward_algorithm_gradient_equals_autograd(lengths, gap):
    from spacy_hmtl.ner.torch_module import ForwardAlgorithm

    torch.manual_seed(len(lengths))
    lengths = torch.tensor(lengths)
    crf = CRFTagger(n_in=4, n_labels=2, hidden_width=0, dropout=0.0)
    with torch.no_grad():
        crf.transitions.normal_()
        crf.start_transitions.normal_()
        crf.end_transitions.normal_()
    start, trans, end = crf._scores()
    emissions = torch.randn(len(lengths), int(lengths.max()), crf.n_tags, dtype=torch.float64)
    # some positions restricted, as for partial gold tags
    emissions = emissions.masked_fill(torch.rand(emissions.shape) < 0.2, FORBIDDEN)
    # gap 5000: score gaps that underflow even float64 scaling take the log-space fallback
    emissions[:, :, 0] += gap
    emissions[:, :, 1] -= gap
    inputs = [emissions, start.double(), trans.double(), end.double()]
    ours_in = [x.detach().clone().requires_grad_(True) for x in inputs]
    ref_in = [x.detach().clone().requires_grad_(True) for x in inputs]
    ours = ForwardAlgorithm.apply(ours_in[0], lengths, *ours_in[1:])
    ref = _autograd_log_partition(ref_in[0], lengths, *ref_in[1:])
    assert torch.allclose(ours, ref, atol=1e-9)
    weights = torch.randn(len(lengths), dtype=torch.float64)
    d_ours = torch.autograd.grad((ours * weights).sum(), ours_in)
    d_ref = torch.autograd.grad((ref * weights).sum(), ref_in, allow_unused=True)  # one token: no transition
    d_ref = [torch.zeros_like(x) if d is None else d for x, d in zip(ref_in, d_ref)]
    for name, a, b in zip(["emissions", "start", "trans", "end"], d_ours, d_ref):
        assert torch.allclose(a, b, atol=1e-8), (name, (a - b).abs().max())


def test_forward_algorithm_falls_back_to_log_space_when_scaling_underflows():
    from spacy_hmtl.ner.torch_module import ForwardAlgorithm, _scaled_forward, _to_numpy

    crf = CRFTagger(n_in=4, n_labels=1, hidden_width=0, dropout=0.0)
    names = bioul_tag_names(["A"])
    start, trans, end = crf._scores()
    emissions = torch.zeros(1, 2, crf.n_tags, dtype=torch.float64)
    emissions[0, 0] = FORBIDDEN
    emissions[0, 0, names.index("B-A")] = 0.0  # only B-A at t=0
    emissions[0, 1, names.index("L-A")] = -2000.0  # its only continuation, 2000 nats below O
    lengths = torch.tensor([2])
    args = [emissions, lengths, start.double(), trans.double(), end.double()]
    assert _scaled_forward(*(_to_numpy(x) for x in args)) is None
    ours_in = emissions.clone().requires_grad_(True)
    log_z = ForwardAlgorithm.apply(ours_in, *args[1:])
    assert log_z.item() == pytest.approx(-2000.0, abs=1e-6)
    (d_emissions,) = torch.autograd.grad(log_z.sum(), [ours_in])
    assert d_emissions[0, 1, names.index("L-A")].item() == pytest.approx(1.0)
