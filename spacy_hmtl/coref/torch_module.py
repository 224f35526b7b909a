"""The coreference head's torch module: Lee et al. (2017) span ranking, as used by HMTL.

Plain PyTorch, no spaCy. The component hands it the padded listener output
``X: (batch, time, n_in)`` (``[embeddings ; level 2]`` of the shared encoder), the lengths,
optional sentence ids and, for training, the gold clusters.

Pipeline (per batch, in padded/flattened torch calls, never one doc per call):

1. own BiLSTM over ``X`` -> ``h`` (``2 * lstm_width`` per token);
2. every span of width <= ``max_width`` inside one sentence (and one doc) is a candidate;
   ``g = [h_start ; h_end ; head ; width embedding]`` with ``head`` the attention-weighted sum
   of the span's input vectors ``X`` (attention logits from ``h``);
3. mention score ``s_m = FFNN_m(g)``; the first layer of ``FFNN_m`` is applied as a sum of
   per-token projections (identical maths: a linear layer over a concatenation is a sum of
   linear maps of the parts), so all spans are scored without materializing ``g`` for them;
4. keep the top ``spans_per_word * n_tokens`` spans of each doc, in document order;
5. ``s(i, j) = s_m(i) + s_m(j) + FFNN_a([g_i, g_j, g_i * g_j, phi(distance), psi(match)])``
   for the ``max_antecedents`` kept spans preceding ``i``; the first layer of ``FFNN_a`` is
   computed as ``A g_i + B g_j + C (g_i * g_j) + D phi + E psi``; the dummy antecedent
   scores 0. ``psi`` (optional, ``match_embedding > 0``) embeds whether the two spans have
   the same lowercased words and whether they end in the same word: a string-match signal
   that small corpora (SciERC: 720 training clusters) do not teach ``g_i * g_j`` to carry;
   with ``coarse_antecedents > 0`` (Lee et al. 2018's coarse-to-fine pruning) a cheap
   bilinear score ``s_c(i, j) = (U g_i) . (V g_j)`` (``coarse_width`` wide) plus a learned
   prior per distance bucket ranks the preceding kept spans first, only each span's
   ``coarse_antecedents`` best (by ``s_m(i) + s_m(j) + s_c(i, j) + prior``) get the FFNN,
   and the coarse part joins their score: the window
   can grow (800 kept spans at decoding) while the FFNN runs on a few dozen pairs per span;
6. training: marginal log-likelihood of the gold antecedents (dummy when the span is not a
   gold mention or has no earlier gold mention in the kept spans), plus, with
   ``coarse_loss_weight > 0``, the same on the coarse scores alone over the whole window, so
   that the coarse score learns to rank (what pruning at decoding, fewer candidates than
   training's, needs); inference: greedy best-antecedent links merged into clusters.

Spans and span pairs are processed in chunks of bounded size, so memory stays linear in
the document length at inference (a 20,000-token document runs on a CPU).
"""
import math
from typing import Iterator, List, Optional, Sequence, Tuple, cast

import torch
from torch import nn

from ..layers.bilstm import BiLSTM
from ..layers.distance_buckets import N_DISTANCE_BUCKETS, distance_buckets
from ..layers.dropout import Dropout
from ..layers.inference_precision import ReducedPrecisionModule
from ..layers.span_representation import first_layer_of_spans, pool_all_widths, pool_spans_by_offset
from .antecedent_tiles import best_antecedents
from .coarse_to_fine import best_coarse_antecedents
from .span_pruning import NEG_SCORE, non_crossing_top_spans

# Inference works in pieces whose float32 buffers stay in a CPU core's cache (about 1 MB):
# span starts per piece of mention scoring (x max_width spans x hidden); antecedent scoring's
# tiles: antecedent_tiles.py
_INFERENCE_CHUNK_TOKENS = 256

Clusters = List[List[Tuple[int, int]]]


def check_coarse_settings(coarse_width: int, coarse_antecedents: int, coarse_loss_weight: float = 0.0) -> None:
    """Raise a ValueError unless coarse-to-fine pruning is on (both > 0) or off (both 0),
    and ``coarse_loss_weight`` is >= 0 and only set with it on."""
    if (coarse_width > 0) != (coarse_antecedents > 0):
        raise ValueError(
            "hmtl_coref_ranker: coarse_width and coarse_antecedents go together (both > 0: "
            f"coarse-to-fine pruning; both 0: off), got {coarse_width} and {coarse_antecedents}"
        )
    if coarse_loss_weight < 0 or (coarse_loss_weight > 0 and coarse_width == 0):
        raise ValueError(
            "hmtl_coref_ranker: coarse_loss_weight must be >= 0, and > 0 only with coarse-to-fine "
            f"pruning (coarse_width > 0), got {coarse_loss_weight} with coarse_width {coarse_width}"
        )


class FFNN(nn.Module):
    """``Linear -> ReLU -> Dropout`` x depth, then ``Linear(hidden, 1)``."""

    def __init__(self, n_in: int, hidden: int, depth: int, dropout: float):
        super().__init__()
        self.first = nn.Linear(n_in, hidden)
        self.rest = nn.ModuleList(nn.Linear(hidden, hidden) for _ in range(depth - 1))
        self.out = nn.Linear(hidden, 1)
        self.dropout = Dropout(dropout)

    def from_first(self, pre_activation: torch.Tensor) -> torch.Tensor:
        """Finish the network from the first layer's pre-activation; drops the last dim."""
        hidden = self.dropout(torch.relu(pre_activation))
        for layer in self.rest:
            hidden = self.dropout(torch.relu(layer(hidden)))
        return self.out(hidden).squeeze(-1)

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        return self.from_first(self.first(X))


def _coarse_parts(ranker, g: torch.Tensor, A: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """What the coarse scores of a batch need, computed once: the bilinear score of every
    pair of kept spans of a doc, ``(U g) (V g)^T`` ``(B, K, K)`` (one product: cheaper than
    gathering ``V g`` for each candidate of each span, forwards and backwards), and the
    distance prior of each distance ``1..A``."""
    assert ranker.coarse_i is not None and ranker.coarse_j is not None and ranker.coarse_distance is not None
    bilinear = ranker.coarse_i(g) @ ranker.coarse_j(g).transpose(1, 2)
    back = torch.arange(1, A + 1, device=g.device)
    return bilinear, ranker.coarse_distance.weight[distance_buckets(back), 0]


def _coarse_totals(coarse, mention_scores, rows: slice, ant_rows: torch.Tensor, ok: torch.Tensor) -> torch.Tensor:
    """``(B, n, A)`` coarse scores ``s_m(i) + s_m(j) + s_c(i, j) + prior(i - j)`` of the spans
    ``rows`` against their candidates ``ant_rows`` ``(n, A)``; NEG_SCORE where not ``ok``.
    ``coarse``: ``_coarse_parts``' output."""
    bilinear, prior = coarse
    pairs = bilinear[:, rows]  # (B, n, K)
    totals = pairs.gather(2, ant_rows[None].expand(pairs.shape[0], -1, -1)) + prior
    totals = totals + mention_scores[:, rows, None] + mention_scores[:, ant_rows]
    return totals.masked_fill(~ok, NEG_SCORE)


def _marginal_nll(scores: torch.Tensor, is_gold: torch.Tensor, row_valid: torch.Tensor) -> torch.Tensor:
    """Negative marginal log-likelihood of the gold antecedents (Lee et al. 2017), summed
    over the valid rows: ``scores`` ``(B, n, A)`` of the candidates, beside the "no
    antecedent" option scoring 0, which is gold where no candidate is."""
    dummy_gold = ~is_gold.any(-1, keepdim=True)
    full = torch.cat([scores.new_zeros(scores.shape[:-1] + (1,)), scores], -1)
    gold_mask = torch.cat([dummy_gold, is_gold], -1)
    log_norm = torch.logsumexp(full, -1)
    log_gold = torch.logsumexp(full.masked_fill(~gold_mask, NEG_SCORE), -1)
    return ((log_norm - log_gold) * row_valid).sum()


class CorefRanker(ReducedPrecisionModule):
    """Span-ranking coreference resolver (Lee et al. 2017) over a padded batch.

    n_in (int): width of the listener output.
    The keyword arguments are the fields of ``CorefRankerSettings`` (``coref/model.py``),
    documented there, and these, which no config sets:
    distance_embedding (int): size of the antecedent distance-bucket embedding.
    chunk_tokens (int): span start positions scored per chunk (bounds memory).
    chunk_pairs (int): span pairs scored per chunk (bounds memory).
    """

    # the antecedent scorer's matrix products at CPU inference run at ``inference_dtype``
    # (layers.inference_precision)
    precision_part = "pair_scoring"

    def __init__(
        self,
        n_in: int,
        *,
        lstm_width: int,
        max_width: int,
        spans_per_word: float,
        max_antecedents: int,
        hidden_width: int,
        width_embedding: int,
        dropout: float,
        mention_loss_weight: float,
        product_width: int,
        antecedent_depth: int,
        non_crossing: bool,
        distance_embedding: int = 20,
        match_embedding: int = 0,
        coarse_width: int = 0,
        coarse_antecedents: int = 0,
        coarse_loss_weight: float = 0.0,
        chunk_tokens: int = 4096,
        chunk_pairs: int = 8192,
    ):
        super().__init__()
        self.non_crossing = bool(non_crossing)
        if n_in <= 0:
            raise ValueError(f"hmtl_coref_ranker: n_in must be positive, got {n_in}")
        self.n_in = n_in
        self.max_width = int(max_width)
        self.spans_per_word = float(spans_per_word)
        self.max_antecedents = int(max_antecedents)
        self.chunk_tokens = int(chunk_tokens)
        self.chunk_pairs = int(chunk_pairs)
        self.mention_loss_weight = float(mention_loss_weight)
        self.lstm = BiLSTM(n_in, lstm_width)
        self.h_dim = 2 * lstm_width
        self.g_dim = 2 * self.h_dim + n_in + width_embedding
        self.input_dropout = Dropout(dropout)
        self.lstm_dropout = Dropout(dropout)
        self.attention = nn.Linear(self.h_dim, 1)
        self.width_embedding = nn.Embedding(self.max_width, width_embedding)
        self.distance_embedding = nn.Embedding(N_DISTANCE_BUCKETS, distance_embedding)
        self.match_width = int(match_embedding)
        # 4 = (same words?) x (same last word?); absent when 0, so older weights still load
        self.match_embedding = nn.Embedding(4, self.match_width) if self.match_width else None
        self.mention_ffnn = FFNN(self.g_dim, hidden_width, 2, dropout)
        self.product_width = int(product_width) or self.g_dim
        self.product_projection = nn.Linear(self.g_dim, self.product_width, bias=False) if product_width else None
        check_coarse_settings(int(coarse_width), int(coarse_antecedents), float(coarse_loss_weight))
        self.coarse_antecedents = int(coarse_antecedents)
        self.coarse_loss_weight = float(coarse_loss_weight)
        # absent when off, so the weights of a pipeline without it still load
        self.coarse_i = nn.Linear(self.g_dim, int(coarse_width), bias=False) if coarse_width else None
        self.coarse_j = nn.Linear(self.g_dim, int(coarse_width), bias=False) if coarse_width else None
        # the coarse score's distance prior, a learned score per distance bucket (e2e-coref's
        # "use_prior"): without it a wide window's far spans with high mention scores crowd
        # out the near ones; zero at the start
        self.coarse_distance = nn.Embedding(N_DISTANCE_BUCKETS, 1) if coarse_width else None
        if self.coarse_distance is not None:
            nn.init.zeros_(self.coarse_distance.weight)
        self.antecedent_ffnn = FFNN(
            2 * self.g_dim + self.product_width + distance_embedding + self.match_width,
            hidden_width,
            int(antecedent_depth),
            dropout,
        )

    # --- encoding -------------------------------------------------------------------

    def _encode(self, X: torch.Tensor, lengths: torch.Tensor, sent_ids: Optional[Sequence]):
        """Flatten the batch: per-token states of all docs, concatenated."""
        device = X.device
        T = X.shape[1]
        lengths_dev = lengths.to(device)
        mask = torch.arange(T, device=device)[None, :] < lengths_dev[:, None]
        X = self.input_dropout(X)
        if device.type == "cpu" and not (self.training or torch.is_grad_enabled()):
            # inference: the BiLSTM over the real tokens only (the same states)
            x_flat = X[mask]
            h_flat = self.lstm.forward_flat(x_flat, lengths)
        else:
            H = self.lstm_dropout(self.lstm(X, lengths))
            x_flat = X[mask]
            h_flat = H[mask]
        offsets = torch.cumsum(lengths_dev, 0) - lengths_dev
        # Globally unique sentence ids: doc boundaries are sentence boundaries.
        parts = []
        base = 0
        for b, n in enumerate(lengths.tolist()):
            if n == 0:
                continue
            local = None if sent_ids is None else sent_ids[b]
            if local is None:
                ids = torch.zeros(n, dtype=torch.long)
            else:
                ids = torch.as_tensor(local, dtype=torch.long)
                if ids.numel() != n:
                    raise ValueError(f"hmtl_coref_ranker: {ids.numel()} sentence ids for a doc of {n} tokens")
            parts.append(ids + base)
            base += int(ids.max()) + 1
        sent = torch.cat(parts).to(device) if parts else torch.zeros(0, dtype=torch.long, device=device)
        return mask, offsets, x_flat, h_flat, sent

    def _mention_scores(self, x_flat, h_flat, sent) -> torch.Tensor:
        """Mention scores ``(N, max_width)`` of all spans (start, width); -1e30 if invalid."""
        N, W = h_flat.shape[0], self.max_width
        first = self.mention_ffnn.first
        h = self.h_dim
        w_start, w_end = first.weight[:, :h], first.weight[:, h : 2 * h]
        w_head = first.weight[:, 2 * h : 2 * h + self.n_in]
        w_width = first.weight[:, 2 * h + self.n_in :]
        proj_start = h_flat @ w_start.t()
        proj_end = h_flat @ w_end.t()
        proj_head = x_flat @ w_head.t()
        width_term = self.width_embedding.weight @ w_width.t() + first.bias  # (W, hidden)
        attn = self.attention(h_flat).squeeze(-1)
        if not (self.training or torch.is_grad_enabled()):
            return self._mention_scores_inference(proj_start, proj_end, proj_head, width_term, attn, sent)
        offsets = torch.arange(W, device=h_flat.device)
        chunks = []
        for a in range(0, N, max(1, self.chunk_tokens)):
            starts = torch.arange(a, min(N, a + self.chunk_tokens), device=h_flat.device)
            idx = starts[:, None] + offsets[None, :]  # (n, W): the end token of width index w
            idx_c = idx.clamp(max=N - 1)
            valid = (idx < N) & (sent[idx_c] == sent[starts][:, None])
            head = pool_all_widths(attn, proj_head, starts, W)  # (n, W, hidden)
            pre = first_layer_of_spans(proj_start[starts][:, None, :], proj_end[idx_c], head, width_term[None])
            scores = self.mention_ffnn.from_first(pre)
            chunks.append(scores.masked_fill(~valid, NEG_SCORE))
        if not chunks:
            return h_flat.new_zeros((0, W))
        return torch.cat(chunks, 0)

    def _mention_scores_inference(self, proj_start, proj_end, proj_head, width_term, attn, sent) -> torch.Tensor:
        """``_mention_scores`` without autograd, bit for bit: the same sums in the same
        order, in place, over chunks of ``_INFERENCE_CHUNK_TOKENS`` starts whose
        ``(n, max_width, hidden)`` buffers stay in the CPU cache (the training chunks of
        4,096 starts allocate 20 MB per temporary, and the adds then run at memory speed)."""
        N, W = proj_start.shape[0], self.max_width
        device = proj_start.device
        hidden = proj_start.shape[1]
        offsets = torch.arange(W, device=device)
        scores = proj_start.new_empty((N, W))
        chunk = max(1, min(self.chunk_tokens, _INFERENCE_CHUNK_TOKENS))
        buffer = proj_start.new_empty((chunk * W, hidden))
        for a in range(0, N, chunk):
            b = min(N, a + chunk)
            starts = torch.arange(a, b, device=device)
            idx = starts[:, None] + offsets[None, :]  # (n, W): the end token of width index w
            idx_c = idx.clamp(max=N - 1)
            valid = (idx < N) & (sent[idx_c] == sent[a:b][:, None])
            pre = buffer[: (b - a) * W]
            # first_layer_of_spans' sum, ((start + end) + head) + width: a float sum of two
            # terms does not depend on their order
            torch.index_select(proj_end, 0, idx_c.reshape(-1), out=pre)
            pre = pre.view(b - a, W, hidden)
            pre += proj_start[a:b, None, :]
            pre += pool_all_widths(attn, proj_head, starts, W)
            pre += width_term
            out = pre.relu_().view(-1, hidden)
            for layer in self.mention_ffnn.rest:
                linear = cast(nn.Linear, layer)
                out = nn.functional.linear(out, linear.weight, linear.bias).relu_()
            chunk_scores = nn.functional.linear(out, self.mention_ffnn.out.weight, self.mention_ffnn.out.bias)
            scores[a:b] = chunk_scores.view(b - a, W).masked_fill_(~valid, NEG_SCORE)
        return scores

    def _prune(self, scores_flat, mask, lengths):
        """Top spans per doc in document order: flat starts, widths, scores, validity."""
        B, T = mask.shape
        W = self.max_width
        device = scores_flat.device
        padded = scores_flat.new_full((B, T, W), NEG_SCORE)
        padded[mask] = scores_flat
        ks = [min(n * W, max(1, int(math.floor(self.spans_per_word * n)))) if n else 0 for n in lengths.tolist()]
        K = max(ks, default=0)
        if K == 0:
            return None
        flat = padded.view(B, T * W)
        if self.non_crossing:
            top_idx, valid = non_crossing_top_spans(flat.detach().cpu(), ks, K, W)
            top_idx, valid = top_idx.to(device), valid.to(device)
            top_scores = flat.gather(1, top_idx)
        else:
            top_scores, top_idx = flat.topk(K, dim=1)
            k_t = torch.tensor(ks, device=device)
            valid = (torch.arange(K, device=device)[None, :] < k_t[:, None]) & (top_scores > NEG_SCORE / 2)
        order_key = torch.where(valid, top_idx, torch.full_like(top_idx, T * W))
        order = order_key.argsort(dim=1)
        top_idx = top_idx.gather(1, order)
        valid = valid.gather(1, order)
        top_scores = top_scores.gather(1, order).masked_fill(~valid, 0.0)
        offsets = torch.cumsum(lengths.to(device), 0) - lengths.to(device)
        local_start = torch.div(top_idx, W, rounding_mode="floor")
        width = top_idx % W
        start = torch.where(valid, offsets[:, None] + local_start, torch.zeros_like(local_start))
        width = torch.where(valid, width, torch.zeros_like(width))
        return start, width, top_scores, valid, local_start

    def _span_embeddings(self, x_flat, h_flat, start, width) -> torch.Tensor:
        """``g`` of the kept spans ``(B, K, g_dim)``."""
        end = start + width
        attn = self.attention(h_flat).squeeze(-1)
        head = pool_spans_by_offset(attn, x_flat, start, width, self.max_width)
        return torch.cat([h_flat[start], h_flat[end], head, self.width_embedding(width)], -1)

    def _span_match_keys(
        self, token_keys: Optional[Sequence], lengths: torch.Tensor, start: torch.Tensor, width: torch.Tensor
    ) -> Optional[Tuple[torch.Tensor, torch.Tensor]]:
        """Per kept span ``(B, K)``: an id shared by spans with the same word keys, and the
        key of its last word; None when the match feature is off."""
        if self.match_embedding is None:
            return None
        if token_keys is None:
            raise ValueError("hmtl_coref_ranker: match_embedding > 0 needs the token keys of each doc")
        parts = []
        for b, n in enumerate(lengths.tolist()):
            keys = torch.as_tensor(token_keys[b], dtype=torch.long).reshape(-1)
            if keys.numel() != n:
                raise ValueError(f"hmtl_coref_ranker: {keys.numel()} token keys for a doc of {n} tokens")
            parts.append(keys)
        device = start.device
        keys_flat = torch.cat(parts).to(device) if parts else torch.zeros(0, dtype=torch.long, device=device)
        if keys_flat.numel() == 0:
            zeros = torch.zeros_like(start)
            return zeros, zeros
        W = self.max_width
        pos = start[..., None] + torch.arange(W, device=device)  # (B, K, W)
        inside = torch.arange(W, device=device) <= width[..., None]
        words = torch.where(inside, keys_flat[pos.clamp(max=keys_flat.numel() - 1)], torch.full_like(pos, -1))
        _, text_id = torch.unique(words.reshape(-1, W), dim=0, return_inverse=True)
        return text_id.reshape(start.shape), keys_flat[start + width]

    def _antecedent_scores(
        self, g, mention_scores, valid, window: Optional[int] = None, match_keys=None, fine: Optional[int] = None
    ):
        """Scores ``(B, n, A)`` of each kept span's candidate antecedents (-1e30 where
        invalid), yielded in chunks of rows ``(rows, scores, ant, ok)``: ``ant`` ``(B, n, A)``
        the candidates' kept-span indices (< 0: none), ``ok`` which are real. The candidates
        are the ``A`` preceding kept spans, or with coarse-to-fine pruning the
        ``coarse_antecedents`` best of them by the coarse score. ``window`` replaces
        ``max_antecedents`` (decoding with a wider window), ``fine`` replaces
        ``coarse_antecedents`` (decoding with fewer candidates than training saw)."""
        B, K, G = g.shape
        fine = self.coarse_antecedents if fine is None else fine
        A = min(self.max_antecedents if window is None else window, K - 1)
        parts = self.pair_parts(g.reshape(B * K, G), A, match_keys is not None)
        coarse = _coarse_parts(self, g, A) if self.coarse_i is not None else None
        flat_keys = None if match_keys is None else (match_keys[0].reshape(-1), match_keys[1].reshape(-1))
        row_base = torch.arange(B, device=g.device)[:, None, None] * K
        for rows, ant, ant_rows, ok in self._candidate_chunks(valid, A):
            candidates = ant[None].expand(B, -1, -1)
            coarse_scores = None
            if coarse is not None:
                # every candidate's coarse score; the FFNN sees the best few of each row
                totals = _coarse_totals(coarse, mention_scores, rows, ant_rows, ok)
                kept, keep = totals.topk(min(fine, A), dim=-1)
                ok = ok.gather(-1, keep)
                candidates = candidates.gather(-1, keep)
                coarse_scores = kept
            # Score only the real pairs: padding spans and the missing antecedents of the
            # first spans are about half of the (B, n, A) grid on SciERC batches.
            b_idx, r_idx, c_idx = ok.nonzero(as_tuple=True)
            i_flat = row_base[b_idx, 0, 0] + r_idx + rows.start
            j_flat = row_base[b_idx, 0, 0] + candidates[b_idx, r_idx, c_idx]
            pair_scores = self.score_pairs(parts, i_flat, j_flat, flat_keys)
            if coarse_scores is not None:
                # s_m(i) + s_m(j) + s_c(i, j) + prior(i - j), as the coarse ranking had it
                pair_scores = pair_scores + coarse_scores[b_idx, r_idx, c_idx]
            else:
                m_flat = mention_scores.reshape(-1)
                pair_scores = pair_scores + m_flat[i_flat] + m_flat[j_flat]
            scores = pair_scores.new_full(ok.shape, NEG_SCORE).index_put((b_idx, r_idx, c_idx), pair_scores)
            yield rows, scores, torch.where(ok, candidates, torch.full_like(candidates, -1)), ok

    def _candidate_chunks(self, valid: torch.Tensor, A: int) -> Iterator[Tuple[slice, torch.Tensor, torch.Tensor, torch.Tensor]]:
        """The kept spans ``valid`` ``(B, K)`` in chunks of rows (about ``chunk_pairs`` pairs
        each), with their ``A`` preceding kept spans as candidates: yields ``(rows, ant,
        ant_rows, ok)``, ``ant`` ``(n, A)`` the candidates' indices (< 0 before a doc's first
        span), ``ant_rows`` the same clamped at 0 (to gather with), ``ok`` ``(B, n, A)`` the real
        pairs (both spans kept)."""
        B, K = valid.shape
        back = torch.arange(1, A + 1, device=valid.device)
        ant = torch.arange(K, device=valid.device)[:, None] - back[None, :]  # (K, A)
        ant_c = ant.clamp(min=0)
        step = max(1, self.chunk_pairs // max(1, B * A))
        for a in range(0, K, step):
            rows = slice(a, min(K, a + step))
            ok = (ant[rows] >= 0)[None] & valid[:, rows, None] & valid[:, ant_c[rows]]
            yield rows, ant[rows], ant_c[rows], ok

    def pair_parts(self, g: torch.Tensor, window: int, with_match: bool) -> Tuple[torch.Tensor, ...]:
        """What scoring pairs of the spans ``g`` ``(S, g_dim)`` needs, computed once per
        batch: the first FFNN layer's per-span terms ``A g + bias`` and ``B g``, the
        product projections, the product weights, the distance term of each distance
        ``1..window`` ``(window, hidden)`` (row ``d - 1``) and the match term ``(4,
        hidden)`` (empty without the match feature)."""
        G = self.g_dim
        first = self.antecedent_ffnn.first
        P, D = self.product_width, self.distance_embedding.embedding_dim
        proj_i = g @ first.weight[:, :G].t() + first.bias
        proj_j = g @ first.weight[:, G : 2 * G].t()
        g_prod = g if self.product_projection is None else self.product_projection(g)
        w_prod = first.weight[:, 2 * G : 2 * G + P]
        w_dist = first.weight[:, 2 * G + P : 2 * G + P + D]
        # distances 1..window, one row each (row d - 1), as the scores were always computed
        distances = torch.arange(1, window + 1, device=g.device)
        dist_term = self.distance_embedding(distance_buckets(distances)) @ w_dist.t()
        match_term = proj_i.new_zeros((0, proj_i.shape[1]))
        if with_match and self.match_embedding is not None:
            match_term = self.match_embedding.weight @ first.weight[:, 2 * G + P + D :].t()
        return proj_i, proj_j, g_prod, w_prod, dist_term, match_term

    def score_pairs(
        self,
        parts: Tuple[torch.Tensor, ...],
        i_idx: torch.Tensor,
        j_idx: torch.Tensor,
        match_keys: Optional[Tuple[torch.Tensor, torch.Tensor]] = None,
    ) -> torch.Tensor:
        """``FFNN_a`` of the pairs (span ``i_idx``, antecedent ``j_idx``) of the spans
        ``pair_parts`` was computed for, their index distance its distance feature (mention
        and coarse scores not included)."""
        proj_i, proj_j, g_prod, w_prod, dist_term, match_term = parts
        prod = g_prod[i_idx] * g_prod[j_idx]
        distance = (i_idx - j_idx).clamp(min=1, max=dist_term.shape[0])
        pre = proj_i[i_idx] + proj_j[j_idx] + prod @ w_prod.t() + dist_term[distance - 1]
        if match_keys is not None and match_term.shape[0]:
            text_id, last_key = match_keys
            same_text = text_id[i_idx] == text_id[j_idx]
            same_last = last_key[i_idx] == last_key[j_idx]
            pre = pre + match_term[same_text.long() * 2 + same_last.long()]
        return self.antecedent_ffnn.from_first(pre)

    # --- public API -----------------------------------------------------------------

    def loss(
        self,
        X: torch.Tensor,
        lengths: torch.Tensor,
        gold_clusters: Sequence[Clusters],
        sent_ids: Optional[Sequence] = None,
        token_keys: Optional[Sequence] = None,
    ) -> torch.Tensor:
        """Negative marginal log-likelihood of the gold antecedents, summed over the
        kept spans of all docs.

        X (torch.Tensor): ``(batch, time, n_in)`` listener output.
        lengths (torch.Tensor): ``(batch,)`` doc lengths.
        gold_clusters: per doc, the clusters as lists of (start, end) token offsets.
        sent_ids: per doc, a sentence index per token (or None: one sentence).
        token_keys: per doc, an integer key per token (e.g. the lowercased word's hash);
            needed when ``match_embedding > 0``.
        """
        self.reduced_dtype(X.device)  # a call in training mode drops the reduced precision for good
        mask, offsets, x_flat, h_flat, sent = self._encode(X, lengths, sent_ids)
        zero = X.sum() * 0.0
        N = h_flat.shape[0]
        if N == 0:
            return zero
        W = self.max_width
        gold = torch.full((N, W), -1, dtype=torch.long)
        cid = 0
        for b, clusters in enumerate(gold_clusters):
            off, n = int(offsets[b]), int(lengths[b])
            for cluster in clusters:
                for s, e in cluster:
                    if 0 <= s < e <= n and e - s <= W:
                        gold[off + s, e - s - 1] = cid
                cid += 1
        gold = gold.to(X.device)
        scores_flat = self._mention_scores(x_flat, h_flat, sent)
        total = zero
        if self.mention_loss_weight:
            candidate = scores_flat > NEG_SCORE / 2
            total = total + self.mention_loss_weight * nn.functional.binary_cross_entropy_with_logits(
                scores_flat[candidate], (gold[candidate] >= 0).float(), reduction="sum"
            )
        pruned = self._prune(scores_flat, mask, lengths)
        if pruned is None:
            return total
        start, width, m_scores, valid, _ = pruned
        if start.shape[1] < 2:
            return total
        g = self._span_embeddings(x_flat, h_flat, start, width)
        span_gold = gold[start, width].masked_fill(~valid, -1)  # (B, K)
        match_keys = self._span_match_keys(token_keys, lengths, start, width)
        for rows, scores, ant, ok in self._antecedent_scores(g, m_scores, valid, match_keys=match_keys):
            ant_gold = span_gold.gather(1, ant.clamp(min=0).flatten(1)).view(ant.shape)  # (B, n, A)
            mine = span_gold[:, rows, None]
            is_gold = ok & (mine >= 0) & (ant_gold == mine)
            total = total + _marginal_nll(scores, is_gold, valid[:, rows])
        if self.coarse_loss_weight:
            total = total + self.coarse_loss_weight * self._coarse_loss(g, m_scores, valid, span_gold)
        return total

    def _coarse_loss(self, g, mention_scores, valid, span_gold) -> torch.Tensor:
        """The same marginal log-likelihood on the coarse scores alone, over every candidate
        of the window: trains the coarse score to rank the gold antecedents first, as the
        pruning at decoding needs (``coarse_loss_weight``)."""
        A = min(self.max_antecedents, g.shape[1] - 1)
        coarse = _coarse_parts(self, g, A)
        total = g.new_zeros(())
        for rows, _, ant_rows, ok in self._candidate_chunks(valid, A):
            totals = _coarse_totals(coarse, mention_scores, rows, ant_rows, ok)
            mine = span_gold[:, rows, None]
            is_gold = ok & (mine >= 0) & (span_gold[:, ant_rows] == mine)
            total = total + _marginal_nll(totals, is_gold, valid[:, rows])
        return total

    @torch.no_grad()
    def kept_spans(
        self, X: torch.Tensor, lengths: torch.Tensor, sent_ids: Optional[Sequence] = None
    ) -> List[List[Tuple[int, int]]]:
        """The candidate spans that survive mention pruning, as (start, end) token offsets
        per doc, in document order: the only spans the antecedent scorer sees (for
        diagnostics; ``scripts/coref_diagnostics.py``)."""
        B = X.shape[0]
        mask, offsets, x_flat, h_flat, sent = self._encode(X, lengths, sent_ids)
        if h_flat.shape[0] == 0:
            return [[] for _ in range(B)]
        pruned = self._prune(self._mention_scores(x_flat, h_flat, sent), mask, lengths)
        if pruned is None:
            return [[] for _ in range(B)]
        _, width, _, valid, local_start = pruned
        return [
            [(s, s + w + 1) for s, w, ok in zip(starts, widths, oks) if ok]
            for starts, widths, oks in zip(local_start.tolist(), width.tolist(), valid.tolist())
        ]

    @torch.no_grad()
    def predict(
        self,
        X: torch.Tensor,
        lengths: torch.Tensor,
        sent_ids: Optional[Sequence] = None,
        singletons: bool = False,
        link_threshold: float = 0.0,
        max_antecedents: Optional[int] = None,
        token_keys: Optional[Sequence] = None,
        coarse_antecedents: Optional[int] = None,
    ) -> List[Clusters]:
        """Clusters (as (start, end) token offsets) for each doc: of >= 2 mentions, plus,
        when ``singletons``, each kept span with a positive mention score that is in no
        cluster as a one-mention cluster. A span links to its best antecedent when that
        score exceeds ``link_threshold`` (the dummy's score is 0, so 0 is the trained
        decision; below 0 trades precision for recall). ``max_antecedents`` replaces the
        trained window (``None`` keeps it). ``coarse_antecedents`` replaces the trained
        number of candidates per span that get the antecedent FFNN under coarse-to-fine
        pruning (``None`` keeps it; ignored without it). ``token_keys``: as in ``loss``."""
        B = X.shape[0]
        mask, offsets, x_flat, h_flat, sent = self._encode(X, lengths, sent_ids)
        if h_flat.shape[0] == 0:
            return [[] for _ in range(B)]
        scores_flat = self._mention_scores(x_flat, h_flat, sent)
        pruned = self._prune(scores_flat, mask, lengths)
        if pruned is None:
            return [[] for _ in range(B)]
        start, width, m_scores, valid, local_start = pruned
        K = start.shape[1]
        best = torch.full((B, K), -1, dtype=torch.long, device=X.device)
        if K >= 2 and self.training:
            # dropout in the FFNNs: score through the training path
            g = self._span_embeddings(x_flat, h_flat, start, width)
            match_keys = self._span_match_keys(token_keys, lengths, start, width)
            scored = self._antecedent_scores(g, m_scores, valid, max_antecedents, match_keys, coarse_antecedents)
            for rows, scores, ant, _ok in scored:
                top, arg = scores.max(-1)
                chosen = ant.gather(-1, arg[..., None]).squeeze(-1)
                best[:, rows] = torch.where(top > link_threshold, chosen, torch.full_like(chosen, -1))
        elif K >= 2:
            # the kept spans of a doc come first in its row: score only those, doc by doc
            kept_start, kept_width = start[valid][None], width[valid][None]
            g = self._span_embeddings(x_flat, h_flat, kept_start, kept_width)[0]
            match_keys = self._span_match_keys(token_keys, lengths, kept_start, kept_width)
            args = (
                self,
                g,
                m_scores[valid],
                valid.sum(1).tolist(),
                self.max_antecedents if max_antecedents is None else max_antecedents,
                None if match_keys is None else (match_keys[0][0], match_keys[1][0]),
                link_threshold,
            )
            dtype = self.reduced_dtype(X.device)
            if self.coarse_antecedents:
                best[valid] = best_coarse_antecedents(*args, dtype, fine=coarse_antecedents)
            else:
                best[valid] = best_antecedents(*args, dtype)
        is_mention = (m_scores > 0).tolist()
        local_start = local_start.tolist()
        width = width.tolist()
        valid = valid.tolist()
        best = best.tolist()  # type: ignore[assignment]  # re-bound to its list form on purpose
        results = []
        for b in range(B):
            cluster_of = {}
            clusters: List[List[Tuple[int, int]]] = []
            for i in range(K):
                j = best[b][i]
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
