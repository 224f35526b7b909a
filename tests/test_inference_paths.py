"""The heads' fast inference paths (eval mode, no autograd) against the implementations
they replaced at inference (issue 31), on SciERC- and LitBank-shaped batches.

Without autograd the BiLSTM, the segments, the encoder hierarchy, the span pooling and the
coreference mention scores take new code paths that must give the old inference path's
numbers bit for bit, the mention classifier its decisions, and its probabilities to float
noise; the references here are copies of the old
code (``reference_*``) or, for element-wise code, the same function run with autograd on
(its unchanged path; a torch LSTM or matrix product may round differently with autograd
on, so those references run without it). Coreference antecedent scoring
(``coref.antecedent_tiles.best_antecedents``) runs its matrix products in another shape and order, so
its scores equal the reference's to float noise: a different antecedent is only allowed
where the two candidates' reference scores tie to that noise.
"""
import math
from typing import List, Optional, Sequence, Tuple

import numpy
import pytest
import torch

from spacy_hmtl.coref.antecedent_tiles import best_antecedents
from spacy_hmtl.coref.coarse_to_fine import best_coarse_antecedents
from spacy_hmtl.coref.torch_module import CorefRanker
from spacy_hmtl.encoder.torch_module import HierarchicalBiLSTM
from spacy_hmtl.layers.bilstm import BiLSTM, plan_segments
from spacy_hmtl.layers.segments import gather_segments, run_per_segment, scatter_segments
from spacy_hmtl.layers.span_representation import (
    pool_spans_by_offset,
    pool_spans_by_width,
    pool_token_spans,
)
from spacy_hmtl.mentions.torch_module import NO_MENTION, SpanClassifier

# what two antecedents' scores may differ by and still count as a tie (float32 noise of
# sums over a few hundred terms of size ~1)
TIE = 1e-4

# --- inputs: SciERC- and LitBank-shaped batches ----------------------------------------


class Batch:
    """Padded token vectors of docs of given lengths, with sentence ids and word keys drawn
    like real text: sentences of 5-40 tokens, words from a small vocabulary so that spans
    repeat (the coreference match feature)."""

    def __init__(self, lengths: Sequence[int], n_in: int, seed: int):
        rng = numpy.random.RandomState(seed)
        self.lengths = torch.tensor(lengths, dtype=torch.int64)
        self.X = torch.zeros((len(lengths), max(lengths), n_in))
        self.sent_ids: List[Optional[numpy.ndarray]] = []
        self.token_keys: List[numpy.ndarray] = []
        for i, n in enumerate(lengths):
            self.X[i, :n] = torch.from_numpy(rng.randn(n, n_in).astype("float32"))
            starts = numpy.zeros(n, dtype=bool)
            position = 0
            while position < n:
                starts[position] = True
                position += rng.randint(5, 41)
            self.sent_ids.append(numpy.cumsum(starts).astype("int64") - 1 if n else None)
            self.token_keys.append(rng.randint(0, 40, size=n).astype("int64"))

    def padded_sent_ids(self) -> torch.Tensor:
        padded = torch.zeros(self.X.shape[:2], dtype=torch.int64)
        for i, ids in enumerate(self.sent_ids):
            if ids is not None:
                padded[i, : len(ids)] = torch.from_numpy(ids + 1)
        return padded

    def segments(self) -> torch.Tensor:
        rows = []
        for i, ids in enumerate(self.sent_ids):
            if ids is None:
                continue
            starts = numpy.flatnonzero(numpy.diff(ids, prepend=-1))
            ends = numpy.append(starts[1:], len(ids))
            rows.extend((i, int(s), int(e - s)) for s, e in zip(starts, ends))
        return torch.tensor(rows, dtype=torch.int64)


SCIERC_LENGTHS = [134, 97, 251, 0, 180, 12, 1, 160]  # abstracts, an empty and a 1-token doc
LITBANK_LENGTHS = [1400, 310]  # a long chapter: far antecedents and wide windows


def real_positions(lengths: torch.Tensor, time: int) -> torch.Tensor:
    return torch.arange(time)[None, :] < lengths[:, None]


# --- BiLSTM, segments, encoder hierarchy: bit for bit --------------------------------


def reference_bilstm(module: BiLSTM, X: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """``BiLSTM.forward`` on a CPU before issue 31: the padded batch, sorted by length."""
    batch, time = X.shape[0], X.shape[1]
    if batch == 0 or time == 0:
        return X.new_zeros((batch, time, module.n_out))
    if batch == 1:
        return module._forward_sorted(X, lengths, [(0, time, batch)])
    order = torch.argsort(lengths, descending=True, stable=True)
    sorted_lengths = lengths[order]
    segments = plan_segments(sorted_lengths.tolist(), time)
    return module._forward_sorted(X[order], sorted_lengths, segments)[torch.argsort(order)]


@pytest.mark.parametrize("depth", [1, 2])
@pytest.mark.parametrize("lengths", [SCIERC_LENGTHS, [5], [3, 0, 7, 7]])
def test_bilstm_inference_equals_the_padded_path(depth, lengths):
    torch.manual_seed(depth)
    batch = Batch(lengths, 12, seed=depth)
    module = BiLSTM(12, 8, depth=depth, dropout=0.3).eval()
    inside = real_positions(batch.lengths, batch.X.shape[1])
    with torch.no_grad():
        reference = reference_bilstm(module, batch.X, batch.lengths)
        fast = module(batch.X, batch.lengths)
        flat = module.forward_flat(batch.X[inside], batch.lengths)
    assert torch.equal(fast[inside], reference[inside])
    assert torch.equal(flat, reference[inside])
    assert not fast[~inside].any()


def test_per_sentence_segments_inference_equals_the_padded_path():
    torch.manual_seed(0)
    batch = Batch(SCIERC_LENGTHS, 10, seed=1)
    module = BiLSTM(10, 6).eval()
    segments = batch.segments()
    with torch.no_grad():
        gathered, lengths = gather_segments(batch.X, segments)
        padded = reference_bilstm(module, gathered, lengths)
        reference = scatter_segments(padded, segments, batch.X.shape[0], batch.X.shape[1])
        fast = run_per_segment(module, batch.X, segments, flat_layer=module.forward_flat)
    assert torch.equal(fast, reference)


@pytest.mark.parametrize("context", ["doc", "sentence"])
def test_encoder_hierarchy_inference_equals_the_padded_path(context):
    torch.manual_seed(0)
    batch = Batch(SCIERC_LENGTHS, 16, seed=2)
    module = HierarchicalBiLSTM(16, [8, 8], [2, 2], dropout=0.2, context=context).eval()
    segments = batch.segments()

    def reference_levels(X, lengths):
        outputs, below = [X], None
        for level in module.levels:
            below = reference_bilstm(level, X if below is None else torch.cat([X, below], -1), lengths)
            outputs.append(below)
        return torch.cat(outputs, -1)

    with torch.no_grad():
        if context == "sentence":
            gathered, lengths = gather_segments(batch.X, segments)
            reference = scatter_segments(reference_levels(gathered, lengths), segments, *batch.X.shape[:2])
        else:
            reference = reference_levels(batch.X, batch.lengths)
        fast = module(batch.X, batch.lengths, segments)
    inside = real_positions(batch.lengths, batch.X.shape[1])
    assert torch.equal(fast[inside], reference[inside])


# --- span pooling: bit for bit ---------------------------------------------------------


def test_pool_token_spans_equals_pool_spans_by_width():
    torch.manual_seed(0)
    lengths = torch.tensor([9, 4, 12])
    scores, values = torch.randn(3, 12), torch.randn(3, 12, 7)
    doc_idx = torch.tensor([0, 0, 1, 2, 2, 2, 0])
    starts = torch.tensor([0, 3, 1, 5, 0, 11, 8])
    ends = torch.tensor([2, 3, 3, 9, 7, 11, 8])
    inside = real_positions(lengths, 12)
    first = torch.cumsum(lengths, 0) - lengths
    flat = pool_token_spans(scores[inside], values[inside], first[doc_idx] + starts, first[doc_idx] + ends)
    assert torch.equal(flat, pool_spans_by_width(scores, values, doc_idx, starts, ends))


def test_pool_spans_by_offset_inference_equals_the_autograd_path():
    torch.manual_seed(0)
    scores, values = torch.randn(40), torch.randn(40, 9)
    start = torch.tensor([[0, 5, 30, 0], [39, 12, 7, 0]])
    width = torch.tensor([[0, 4, 2, 0], [0, 7, 3, 0]])
    with torch.enable_grad():
        reference = pool_spans_by_offset(scores, values, start, width, 8)
    with torch.no_grad():
        assert torch.equal(pool_spans_by_offset(scores, values, start, width, 8), reference)


# --- the mention classifier -------------------------------------------------------------


def reference_mention_decode(module, X, doc_idx, starts, ends, threshold, chunk_size):
    """``SpanClassifier.decode`` before issue 31: padded features, ``forward`` per chunk."""
    kept, labels, scores = [], [], []
    features = module.token_features(X)
    for begin in range(0, int(doc_idx.shape[0]), chunk_size):
        end = min(begin + chunk_size, int(doc_idx.shape[0]))
        logits = module.forward(X, doc_idx[begin:end], starts[begin:end], ends[begin:end], features)
        probs = torch.softmax(logits.float(), dim=-1)
        best_prob, best = probs[:, 1:].max(dim=-1)
        keep = probs.argmax(dim=-1) != NO_MENTION if threshold is None else best_prob >= threshold
        idx = keep.nonzero(as_tuple=True)[0]
        kept.append(idx + begin)
        labels.append(best[idx])
        scores.append(best_prob[idx])
    return torch.cat(kept), torch.cat(labels), torch.cat(scores)


@pytest.mark.parametrize("lengths", [SCIERC_LENGTHS, LITBANK_LENGTHS])
@pytest.mark.parametrize("threshold", [None, 0.2])
def test_mention_decode_equals_the_reference(lengths, threshold):
    from spacy_hmtl.candidates import enumerate_spans

    torch.manual_seed(0)
    batch = Batch(lengths, 24, seed=3)
    module = SpanClassifier(24, 4, max_width=8, hidden_width=30, width_embedding=6, dropout=0.2).eval()
    # a bias towards mentions, so that a good share of the candidates is kept
    with torch.no_grad():
        module.ffnn[-1].bias[NO_MENTION] -= 1.0
    doc_idx, starts, ends = enumerate_spans(batch.lengths, 8, batch.padded_sent_ids())
    with torch.no_grad():
        reference = reference_mention_decode(module, batch.X, doc_idx, starts, ends, threshold, 20000)
        for chunk_size in (20000, 777):
            kept, labels, scores = module.decode(batch.X, doc_idx, starts, ends, threshold, chunk_size)
            assert len(kept) > 50
            assert torch.equal(kept, reference[0])
            assert torch.equal(labels, reference[1])
            # the projections run over the real tokens only, a product of another shape:
            # float noise at most (none at the shipped widths, measured)
            assert torch.allclose(scores, reference[2], rtol=1e-5, atol=1e-7)


# --- coreference -----------------------------------------------------------------------


def coref_module(seed: int, **overrides) -> CorefRanker:
    settings = dict(
        lstm_width=8,
        max_width=8,
        spans_per_word=0.4,
        max_antecedents=50,
        hidden_width=30,
        width_embedding=6,
        dropout=0.3,
        mention_loss_weight=1.0,
        product_width=12,
        antecedent_depth=1,
        non_crossing=True,
        match_embedding=5,
    )
    settings.update(overrides)
    torch.manual_seed(seed)
    return CorefRanker(20, **settings).eval()


COREF_VARIANTS = [
    {},  # the shipped CPU configs' shape: product projection, depth 1, match feature
    {"product_width": 0, "match_embedding": 0, "antecedent_depth": 2, "non_crossing": False},
    {"hidden_width": 32},  # a hidden width that needs no padding
]


def kept_span_inputs(module: CorefRanker, batch: Batch):
    """The kept spans of a batch and what antecedent scoring reads of them: ``(B, K)`` g,
    mention scores, validity, match keys (the steps before it are tested bit for bit)."""
    with torch.no_grad():
        mask, _, x_flat, h_flat, sent = module._encode(batch.X, batch.lengths, batch.sent_ids)
        scores = module._mention_scores(x_flat, h_flat, sent)
        start, width, m_scores, valid, _ = module._prune(scores, mask, batch.lengths)
        g = module._span_embeddings(x_flat, h_flat, start, width)
        match_keys = module._span_match_keys(batch.token_keys, batch.lengths, start, width)
    return (g, m_scores, valid), match_keys


def reference_antecedent_scores(module, g, m_scores, valid, window, match_keys, fine=None) -> torch.Tensor:
    """``(B, K, K)`` score of span i linking to span j (-1e30: not a candidate), from the
    training path's scorer (what decoding used before issue 31); ``fine``: the coarse-to-fine
    candidates per span, when not the module's own."""
    B, K = valid.shape
    dense = torch.full((B, K, K), -1e30)
    with torch.no_grad():
        for rows, scores, ant, ok in module._antecedent_scores(g, m_scores, valid, window, match_keys, fine):
            for local, i in enumerate(range(rows.start, rows.stop)):
                for b in range(B):
                    j = ant[b, local]
                    keep = ok[b, local] & (j >= 0)
                    dense[b, i, j[keep]] = scores[b, local][keep]
    return dense


def assert_same_picks(best, reference, valid, threshold):
    """``best`` (an inference scorer's picks) are the reference scores' best above
    ``threshold``, except at score ties (the first of equal scores is the farthest), and
    differ for at most one kept span in 1,000."""
    top, arg = reference.max(-1)
    expected = torch.where(top > threshold, arg, torch.full_like(arg, -1))
    differ = (best != expected) & valid
    for b, i in differ.nonzero().tolist():
        j_new, j_ref = int(best[b, i]), int(expected[b, i])
        score_new = float(reference[b, i, j_new]) if j_new >= 0 else threshold
        score_ref = float(reference[b, i, j_ref]) if j_ref >= 0 else threshold
        assert abs(score_new - score_ref) < TIE, (b, i, j_new, j_ref, score_new, score_ref)
    assert differ.sum() <= max(1, valid.sum() // 1000)


@pytest.mark.parametrize("variant", COREF_VARIANTS)
@pytest.mark.parametrize("lengths,window", [(SCIERC_LENGTHS, 50), (SCIERC_LENGTHS, 800), (LITBANK_LENGTHS, 800)])
def test_best_antecedents_equal_the_reference_scorer(variant, lengths, window):
    module = coref_module(1, **variant)
    batch = Batch(lengths, 20, seed=4)
    (g, m_scores, valid), match_keys = kept_span_inputs(module, batch)
    reference = reference_antecedent_scores(module, g, m_scores, valid, window, match_keys)
    for threshold in (0.0, -1.0, -50.0):
        with torch.no_grad():
            best = torch.full(valid.shape, -1, dtype=torch.long)
            best[valid] = best_antecedents(
                module,
                g[valid],
                m_scores[valid],
                valid.sum(1).tolist(),
                window,
                None if match_keys is None else (match_keys[0][valid], match_keys[1][valid]),
                threshold,
            )
        assert_same_picks(best, reference, valid, threshold)
        if threshold == -50.0:  # every span after a doc's first links
            assert int((best >= 0).sum()) == int(valid.sum()) - int((valid.sum(1) > 0).sum())


@pytest.mark.parametrize("variant", COREF_VARIANTS)
def test_bfloat16_pair_scoring_picks_antecedents_as_good_as_float32(variant, monkeypatch):
    """``product_dtype=bfloat16`` (``spacy_hmtl.reduced_precision.v2`` and ``.v3``) rounds the tiles'
    products: an antecedent it picks scores (in float32) within bfloat16's rounding of the
    best, and nearly every pick is the float32 one."""
    module = coref_module(1, **variant)
    batch = Batch(LITBANK_LENGTHS, 20, seed=4)
    (g, m_scores, valid), match_keys = kept_span_inputs(module, batch)
    reference = reference_antecedent_scores(module, g, m_scores, valid, 800, match_keys)
    # the tiles' products must really run in bfloat16 (near and far tiles both)
    seen = set()
    for name in ("mm", "bmm"):
        product = getattr(torch, name)
        monkeypatch.setattr(torch, name, lambda a, b, *args, _p=product, _n=name, **kw: seen.add((_n, a.dtype, b.dtype)) or _p(a, b, *args, **kw))
    with torch.no_grad():
        best = torch.full(valid.shape, -1, dtype=torch.long)
        best[valid] = best_antecedents(
            module, g[valid], m_scores[valid], valid.sum(1).tolist(), 800,
            None if match_keys is None else (match_keys[0][valid], match_keys[1][valid]),
            -50.0, torch.bfloat16,
        )
    monkeypatch.undo()
    assert {("mm", torch.bfloat16, torch.bfloat16), ("bmm", torch.bfloat16, torch.bfloat16)} <= seen
    top, arg = reference.max(-1)
    first = torch.arange(valid.shape[1])[None, :] == 0
    picked = reference.gather(-1, best.clamp(min=0)[..., None])[..., 0]
    assert bool(((best >= 0) | first)[valid].all())
    # how far a pick may fall below the best: bfloat16's relative rounding of the scores
    tolerance = 2 ** -7 * float(top[valid & ~first].abs().max()) + TIE
    assert float((top - picked)[valid & ~first].max()) <= tolerance
    assert int(((best != arg) & valid).sum()) <= max(2, int(valid.sum()) // 50)


def test_training_a_coref_ranker_drops_its_reduced_precision():
    """A training call (the loss in training mode) drops it for good; train() alone does
    not: thinc's PyTorchShim.predict puts modules back in training mode after each call."""
    module = coref_module(1)
    module.inference_dtype = torch.bfloat16
    assert module.reduced_dtype(torch.device("cpu")) == torch.bfloat16
    assert module.reduced_dtype(torch.device("meta")) is None  # CPU inference only
    module.train()
    module.eval()
    assert module.inference_dtype == torch.bfloat16
    batch = Batch(SCIERC_LENGTHS[:2], 20, seed=5)
    module.train()
    module.loss(batch.X, batch.lengths, [[[(0, 1), (3, 4)]], []], batch.sent_ids, batch.token_keys).backward()
    assert module.inference_dtype is None
    module.eval()
    assert module.reduced_dtype(torch.device("cpu")) is None


def reference_predict(module, X, lengths, sent_ids, singletons, link_threshold, max_antecedents, token_keys):
    """``CorefRanker.predict`` before issue 31 (its steps before antecedent scoring are
    tested bit for bit on their own)."""
    B = X.shape[0]
    with torch.no_grad():
        mask, offsets, x_flat, h_flat, sent = module._encode(X, lengths, sent_ids)
        if h_flat.shape[0] == 0:
            return [[] for _ in range(B)]
        scores_flat = module._mention_scores(x_flat, h_flat, sent)
        pruned = module._prune(scores_flat, mask, lengths)
        if pruned is None:
            return [[] for _ in range(B)]
        start, width, m_scores, valid, local_start = pruned
        K = start.shape[1]
        best = torch.full((B, K), -1, dtype=torch.long)
        if K >= 2:
            g = module._span_embeddings(x_flat, h_flat, start, width)
            match_keys = module._span_match_keys(token_keys, lengths, start, width)
            for rows, scores, ant, _ok in module._antecedent_scores(g, m_scores, valid, max_antecedents, match_keys):
                top, arg = scores.max(-1)
                chosen = ant.gather(-1, arg[..., None]).squeeze(-1)
                best[:, rows] = torch.where(top > link_threshold, chosen, torch.full_like(chosen, -1))
    is_mention, local_start = (m_scores > 0).tolist(), local_start.tolist()
    width, valid, best_list = width.tolist(), valid.tolist(), best.tolist()
    results = []
    for b in range(B):
        cluster_of: dict = {}
        clusters: List[List[Tuple[int, int]]] = []
        for i in range(K):
            j = best_list[b][i]
            if not valid[b][i] or j < 0:
                continue
            span_j = (local_start[b][j], local_start[b][j] + width[b][j] + 1)
            span_i = (local_start[b][i], local_start[b][i] + width[b][i] + 1)
            if span_j not in cluster_of:
                cluster_of[span_j] = len(clusters)
                clusters.append([span_j])
            c = cluster_of[span_j]
            if span_i not in cluster_of:
                cluster_of[span_i] = c
                clusters[c].append(span_i)
        found = [sorted(c) for c in clusters if len(c) >= 2]
        if singletons:
            linked = {span for c in found for span in c}
            for i in range(K):
                span_i = (local_start[b][i], local_start[b][i] + width[b][i] + 1)
                if valid[b][i] and is_mention[b][i] and span_i not in linked:
                    found.append([span_i])
                    linked.add(span_i)
            found.sort()
        results.append(found)
    return results


@pytest.mark.parametrize("variant", COREF_VARIANTS[:2])
@pytest.mark.parametrize("singletons,link_threshold,max_antecedents", [(False, 0.0, None), (True, -1.0, 800)])
def test_coref_predict_equals_the_reference(variant, singletons, link_threshold, max_antecedents):
    module = coref_module(2, **variant)
    batch = Batch(SCIERC_LENGTHS[:5], 20, seed=5)
    args = (batch.X, batch.lengths, batch.sent_ids, singletons, link_threshold, max_antecedents, batch.token_keys)
    expected = reference_predict(module, *args)
    assert any(len(clusters) for clusters in expected)
    assert module.predict(*args) == expected


def test_coref_mention_scores_and_kept_spans_inference_bit_for_bit():
    module = coref_module(3)
    batch = Batch(LITBANK_LENGTHS, 20, seed=6)
    with torch.no_grad():
        mask, _, x_flat, h_flat, sent = module._encode(batch.X, batch.lengths, batch.sent_ids)
        reference_h = reference_bilstm(module.lstm, batch.X, batch.lengths)[mask]
        assert torch.equal(h_flat, reference_h) and torch.equal(x_flat, batch.X[mask])
    with torch.enable_grad():  # the chunked path of training
        reference = module._mention_scores(x_flat, h_flat, sent).detach()
    with torch.no_grad():
        assert torch.equal(module._mention_scores(x_flat, h_flat, sent), reference)
    kept = module.kept_spans(batch.X, batch.lengths, batch.sent_ids)
    assert [len(spans) for spans in kept] == [math.floor(0.4 * n) for n in LITBANK_LENGTHS]


def test_non_crossing_pruning_equals_the_reference_loop():
    from spacy_hmtl.coref.span_pruning import non_crossing_top_spans

    def reference(flat_scores, ks, K, W):  # the loop before issue 31
        B, TW = flat_scores.shape
        T = TW // W
        top_idx = torch.zeros((B, K), dtype=torch.int64)
        valid = torch.zeros((B, K), dtype=torch.bool)
        for b in range(B):
            if not ks[b]:
                continue
            row = flat_scores[b]
            order = torch.argsort(row, descending=True, stable=True)
            order = order[row[order] > -1e30 / 2].tolist()
            max_end_from, min_start_to, chosen = [-1] * T, [T] * T, []
            for idx in order:
                start = idx // W
                end = start + idx % W
                if any(max_end_from[s2] > end for s2 in range(start + 1, end + 1)):
                    continue
                if any(min_start_to[e2] < start for e2 in range(start, end)):
                    continue
                chosen.append(idx)
                max_end_from[start] = max(max_end_from[start], end)
                min_start_to[end] = min(min_start_to[end], start)
                if len(chosen) == ks[b]:
                    break
            top_idx[b, : len(chosen)] = torch.tensor(chosen, dtype=torch.int64)
            valid[b, : len(chosen)] = True
        return top_idx, valid

    rng = numpy.random.RandomState(0)
    T, W = 300, 8
    scores = torch.from_numpy(rng.randn(3, T * W).astype("float32"))
    scores[torch.from_numpy(rng.rand(3, T * W) < 0.2)] = -1e30  # some non-candidates
    ends = numpy.arange(T * W) // W + numpy.arange(T * W) % W
    scores[:, torch.from_numpy(ends >= T)] = -1e30  # past the doc's end
    ks = [120, 0, 40]
    got, expected = non_crossing_top_spans(scores, ks, 120, W), reference(scores, ks, 120, W)
    assert torch.equal(got[0], expected[0]) and torch.equal(got[1], expected[1])


@pytest.mark.parametrize(
    "lengths,window,coarse,fine",
    [(SCIERC_LENGTHS, 50, 5, None), (LITBANK_LENGTHS, 800, 20, None), (LITBANK_LENGTHS, 30, 50, None),
     (LITBANK_LENGTHS, 250, 250, 12)],
)  # fmt: skip
def test_coarse_to_fine_decoding_equals_the_training_path(lengths, window, coarse, fine):
    """``coarse_to_fine.best_coarse_antecedents`` picks what the training path's coarse
    ranking and scores pick (the reference), to float noise and score ties; also with fewer
    candidates at decoding (``fine``) than the module trained with (``coarse``)."""
    module = coref_module(1, coarse_width=8, coarse_antecedents=coarse)
    with torch.no_grad():
        module.coarse_distance.weight.normal_()  # a trained prior (it starts at zero)
    batch = Batch(lengths, 20, seed=4)
    (g, m_scores, valid), match_keys = kept_span_inputs(module, batch)
    reference = reference_antecedent_scores(module, g, m_scores, valid, window, match_keys, fine)
    # the reference scores at most `coarse` (or `fine`) candidates per span
    assert int((reference > -1e29).sum(-1).max()) == min(coarse if fine is None else fine, window)
    for threshold in (0.0, -50.0):
        with torch.no_grad():
            best = torch.full(valid.shape, -1, dtype=torch.long)
            best[valid] = best_coarse_antecedents(
                module, g[valid], m_scores[valid], valid.sum(1).tolist(), window,
                None if match_keys is None else (match_keys[0][valid], match_keys[1][valid]), threshold,
                fine=fine,
            )
        assert_same_picks(best, reference, valid, threshold)


def test_coarse_to_fine_in_bfloat16_picks_antecedents_as_good_as_float32(monkeypatch):
    """``product_dtype=bfloat16``: the FFNN's first-layer product runs in bfloat16 (a spy on
    torch.mm), the coarse ranking stays float32 (the same candidates), and a pick scores (in
    float32) within bfloat16's rounding of the float32 path's best."""
    module = coref_module(1, coarse_width=8, coarse_antecedents=20)
    with torch.no_grad():
        module.coarse_distance.weight.normal_()
    batch = Batch(LITBANK_LENGTHS, 20, seed=4)
    (g, m_scores, valid), match_keys = kept_span_inputs(module, batch)
    reference = reference_antecedent_scores(module, g, m_scores, valid, 800, match_keys)
    args = (
        module, g[valid], m_scores[valid], valid.sum(1).tolist(), 800,
        None if match_keys is None else (match_keys[0][valid], match_keys[1][valid]), -50.0,
    )  # fmt: skip
    seen = set()
    product = torch.mm
    monkeypatch.setattr(torch, "mm", lambda a, b, *rest, **kw: seen.add((a.dtype, b.dtype)) or product(a, b, *rest, **kw))
    with torch.no_grad():
        best = torch.full(valid.shape, -1, dtype=torch.long)
        best[valid] = best_coarse_antecedents(*args, torch.bfloat16)
    monkeypatch.undo()
    assert (torch.bfloat16, torch.bfloat16) in seen
    top, arg = reference.max(-1)
    first = torch.arange(valid.shape[1])[None, :] == 0
    picked = reference.gather(-1, best.clamp(min=0)[..., None])[..., 0]
    # every span after a doc's first links (threshold -50), to one of its coarse candidates
    assert bool(((best >= 0) | first)[valid].all())
    assert bool((picked > -1e29)[valid & ~first].all())
    tolerance = 2 ** -7 * float(top[valid & ~first].abs().max()) + TIE
    assert float((top - picked)[valid & ~first].max()) <= tolerance
    assert int(((best != arg) & valid).sum()) <= max(2, int(valid.sum()) // 50)
