"""The length-aware BiLSTM must equal a packed ``nn.LSTM`` (the reference) to float noise."""
import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from spacy_hmtl.layers.bilstm import BiLSTM


def packed_reference(module: BiLSTM, X: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """The same parameters run as a packed bidirectional ``nn.LSTM`` (what the layer replaced)."""
    batch, time = X.shape[:2]
    out = X.new_zeros((batch, time, module.n_out))
    keep = (lengths > 0).nonzero(as_tuple=True)[0]
    if keep.numel() == 0:
        return out
    packed = pack_padded_sequence(X[keep], lengths[keep], batch_first=True, enforce_sorted=False)
    packed_out, _ = module.lstm(packed)
    sub_out, _ = pad_packed_sequence(packed_out, batch_first=True, total_length=time)
    return out.index_copy(0, keep, sub_out)


@pytest.mark.parametrize("depth", [1, 2, 3])
@pytest.mark.parametrize("lengths", [[7, 3, 5], [4, 0, 1, 4], [1], [9, 2, 0, 6, 9]])
def test_bilstm_equals_packed_lstm_outputs_and_gradients(depth, lengths):
    torch.manual_seed(depth)
    lengths = torch.tensor(lengths)
    batch, time, n_in = len(lengths), int(lengths.max()), 6
    X = torch.randn(batch, time, n_in)
    for i, n in enumerate(lengths.tolist()):
        X[i, n:] = 0.0  # padding, as the encoder builds it
    module = BiLSTM(n_in, 5, depth=depth, dropout=0.3).eval()  # eval: no dropout draw
    X_ours = X.clone().requires_grad_(True)
    X_ref = X.clone().requires_grad_(True)
    ours = module(X_ours, lengths)
    ref = packed_reference(module, X_ref, lengths)
    assert ours.shape == (batch, time, 10)
    assert torch.allclose(ours, ref, atol=1e-6), (ours - ref).abs().max()
    # past each length: exact zeros
    for i, n in enumerate(lengths.tolist()):
        assert not ours[i, n:].any()
    # the backward direction really is reversed within the length: its first state
    # depends on the sequence's last real token
    d_out = torch.randn_like(ours)
    params = list(module.parameters())
    grads_ours = torch.autograd.grad((ours * d_out).sum(), [X_ours] + params)
    grads_ref = torch.autograd.grad((ref * d_out).sum(), [X_ref] + params)
    for g_ours, g_ref in zip(grads_ours, grads_ref):
        assert torch.allclose(g_ours, g_ref, atol=1e-5), (g_ours - g_ref).abs().max()


def test_bilstm_padding_does_not_leak_into_real_tokens():
    torch.manual_seed(0)
    module = BiLSTM(4, 3, depth=2).eval()
    X = torch.randn(1, 5, 4)
    alone = module(X, torch.tensor([5]))
    # the same sequence padded with garbage to length 9, beside a longer one
    padded = torch.cat([X, 100 * torch.randn(1, 4, 4)], dim=1)
    batch = torch.cat([padded, torch.randn(1, 9, 4)], dim=0)
    together = module(batch, torch.tensor([5, 9]))
    assert torch.allclose(together[0, :5], alone[0], atol=1e-6)
    assert not together[0, 5:].any()


def test_bilstm_saved_weights_keep_their_names():
    # pipelines saved by earlier releases hold nn.LSTM parameter names under "lstm."
    names = set(BiLSTM(4, 3, depth=2).state_dict())
    assert {"lstm.weight_ih_l0", "lstm.weight_hh_l0_reverse", "lstm.bias_hh_l1", "lstm.weight_ih_l1_reverse"} <= names


def test_bilstm_empty_batch_and_empty_sequences():
    module = BiLSTM(4, 3)
    assert module(torch.zeros(0, 0, 4), torch.zeros(0, dtype=torch.int64)).shape == (0, 0, 6)
    out = module(torch.zeros(2, 3, 4), torch.tensor([0, 0]))
    assert out.shape == (2, 3, 6) and not out.any()


def test_bilstm_dropout_between_layers_only_in_training():
    torch.manual_seed(0)
    module = BiLSTM(4, 3, depth=2, dropout=0.5)
    X, lengths = torch.randn(2, 6, 4), torch.tensor([6, 4])
    module.eval()
    assert torch.equal(module(X, lengths), module(X, lengths))
    module.train()
    torch.manual_seed(1)
    first = module(X, lengths)
    torch.manual_seed(2)
    assert not torch.allclose(first, module(X, lengths))


@pytest.mark.parametrize("call_cost", [0, 16, 10_000])
def test_bilstm_segments_equal_packed_lstm_when_padded_past_the_longest(call_cost, monkeypatch):
    """Rows in any order, a batch padded past its longest row, and every segment plan (one
    segment per distinct length, the default, a single segment) give the packed result."""
    import spacy_hmtl.layers.bilstm as bilstm

    plan = bilstm.plan_segments
    monkeypatch.setattr(bilstm, "plan_segments", lambda lengths, time: plan(lengths, time, call_cost))
    torch.manual_seed(5)
    lengths = torch.tensor([3, 11, 0, 7, 11, 1, 5, 9])
    X = torch.randn(len(lengths), 14, 6)
    for i, n in enumerate(lengths.tolist()):
        X[i, n:] = 0.0
    module = BiLSTM(6, 4, depth=2).eval()
    X_ours, X_ref = X.clone().requires_grad_(True), X.clone().requires_grad_(True)
    ours, ref = module(X_ours, lengths), packed_reference(module, X_ref, lengths)
    assert ours.shape == (8, 14, 8)
    assert torch.allclose(ours, ref, atol=1e-6), (ours - ref).abs().max()
    d_out = torch.randn_like(ours)
    params = list(module.parameters())
    for g_ours, g_ref in zip(
        torch.autograd.grad((ours * d_out).sum(), [X_ours] + params),
        torch.autograd.grad((ref * d_out).sum(), [X_ref] + params),
    ):
        assert torch.allclose(g_ours, g_ref, atol=1e-5), (g_ours - g_ref).abs().max()


def test_plan_segments_covers_the_rows_still_running():
    from spacy_hmtl.layers.bilstm import plan_segments

    lengths = [300, 250, 240, 180, 120, 90, 40]
    segments = plan_segments(lengths, 320)
    assert segments[0][0] == 0 and segments[-1][1] == 300
    for (_s0, e0, _), (s1, _, _) in zip(segments, segments[1:]):
        assert e0 == s1  # contiguous
    for start, _end, rows in segments:
        assert start in [0] + lengths  # boundaries only at a row's end
        assert rows == sum(1 for n in lengths if n > start)  # every running row, no other
    computed = sum(rows * (end - start) for start, end, rows in segments)
    assert computed < 1.2 * sum(lengths) < 0.8 * len(lengths) * 300  # padding mostly skipped
    # with a prohibitive call cost: one segment; with none: one per distinct length
    assert plan_segments(lengths, 320, call_cost=10**9) == [(0, 300, 7)]
    assert len(plan_segments(lengths, 320, call_cost=0)) == len(lengths)
    assert plan_segments([0, 0], 3) == [(0, 1, 1)]
