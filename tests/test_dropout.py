"""spacy_hmtl.layers.dropout: the cheap CPU mask keeps torch's dropout behaviour."""
import pytest
import torch

from spacy_hmtl.layers.dropout import Dropout, dropout


@pytest.mark.parametrize("p", [0.1, 0.3, 0.5])
def test_drop_rate_and_scaling_match_torch_dropout(p):
    torch.manual_seed(0)
    X = torch.rand(400, 1000) + 0.5  # no zeros, so a zero output means "dropped"
    Y = dropout(X, p)
    dropped = Y == 0
    # 400,000 independent draws: the rate is within 0.005 of p (about 5 standard errors)
    assert abs(dropped.float().mean().item() - p) < 0.005
    # each of the four 16-bit parts of a 64-bit draw drops at the same rate (a generator
    # whose top bit is always 0 would never drop every fourth element)
    for part in range(4):
        assert abs(dropped.flatten()[part::4].float().mean().item() - p) < 0.01
    kept = ~dropped
    torch.testing.assert_close(Y[kept], X[kept] / (1 - p), rtol=1e-4, atol=0)
    # no correlation along a row or a column: every row and column drops some and keeps some
    assert dropped.any(1).all() and kept.any(1).all() and dropped.any(0).all()


def test_gradient_is_the_mask_scaled():
    torch.manual_seed(1)
    X = (torch.rand(50, 60) + 0.5).requires_grad_()
    Y = dropout(X, 0.3)
    G = torch.randn_like(Y)
    (Y * G).sum().backward()
    expected = torch.where(Y != 0, G * (Y.detach() / X.detach()), torch.zeros_like(G))
    torch.testing.assert_close(X.grad, expected)


def test_identity_outside_training_and_at_zero():
    X = torch.randn(7, 5)
    module = Dropout(0.4)
    module.eval()
    assert module(X) is X
    assert dropout(X, 0.0) is X
    assert dropout(torch.zeros(0, 3), 0.5).shape == (0, 3)
    assert torch.count_nonzero(dropout(X, 1.0)) == 0
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        Dropout(1.5)


def test_reproducible_under_manual_seed_and_fresh_per_call():
    X = torch.ones(100, 100)
    torch.manual_seed(3)
    first, second = dropout(X, 0.5), dropout(X, 0.5)
    torch.manual_seed(3)
    assert torch.equal(dropout(X, 0.5), first)
    assert not torch.equal(first, second)


def test_state_dict_is_empty_like_nn_dropout():
    """Saved weights of modules built with nn.Dropout load into modules built with this one."""
    assert Dropout(0.2).state_dict().keys() == torch.nn.Dropout(0.2).state_dict().keys()
