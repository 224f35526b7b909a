"""A linear-chain CRF tagger with BIOUL constraints (plain PyTorch, no spaCy).

Tags are ``O`` (index 0) then ``B-``, ``I-``, ``L-``, ``U-`` for each label. Transitions
that BIOUL forbids (``O -> I-X``, ``B-X -> I-Y``, ...) get a fixed -10,000 added to their
learned score, so Viterbi decoding never returns an invalid sequence and the likelihood
gives them (numerically) no mass.

Gold tags may be missing (``-1``) for some tokens: the loss is then the negative
log-likelihood of *all* paths compatible with the known tags (a partial-label CRF), which
is also what masks documents that carry no entity annotation at all.
"""
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn

from ..layers.dropout import Dropout

FORBIDDEN = -10000.0
PREFIXES = ("B", "I", "L", "U")


def bioul_tag_names(labels: Sequence[str]) -> List[str]:
    return ["O"] + [f"{p}-{label}" for label in labels for p in PREFIXES]


def bioul_constraints(n_labels: int) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Boolean masks (allowed start tags, allowed transitions [from, to], allowed end tags)."""
    names = bioul_tag_names([str(i) for i in range(n_labels)])
    n = len(names)
    split = [(name, None) if name == "O" else tuple(name.split("-", 1)) for name in names]
    start = torch.tensor([p in ("O", "B", "U") for p, _ in split])
    end = torch.tensor([p in ("O", "L", "U") for p, _ in split])
    trans = torch.zeros((n, n), dtype=torch.bool)
    for i, (p1, l1) in enumerate(split):
        for j, (p2, l2) in enumerate(split):
            if p1 in ("O", "L", "U"):
                ok = p2 in ("O", "B", "U")
            else:  # inside an entity: continue it with the same label
                ok = p2 in ("I", "L") and l1 == l2
            trans[i, j] = ok
    return start, trans, end


class CRFTagger(nn.Module):
    """Emission scorer + CRF over BIOUL tags.

    n_in (int): width of the token vectors.
    n_labels (int): number of entity labels (tags = 1 + 4 * n_labels).
    The keyword arguments are the fields of ``CRFTaggerSettings`` (``ner/model.py``),
    documented there.
    """

    def __init__(self, n_in: int, n_labels: int, *, hidden_width: int, dropout: float):
        super().__init__()
        self.n_tags = 1 + 4 * n_labels
        self.dropout = Dropout(dropout)
        self.emit: nn.Module
        if hidden_width:
            self.emit = nn.Sequential(nn.Linear(n_in, hidden_width), nn.ReLU(), nn.Linear(hidden_width, self.n_tags))
        else:
            self.emit = nn.Linear(n_in, self.n_tags)
        self.transitions = nn.Parameter(torch.zeros(self.n_tags, self.n_tags))
        self.start_transitions = nn.Parameter(torch.zeros(self.n_tags))
        self.end_transitions = nn.Parameter(torch.zeros(self.n_tags))
        start, trans, end = bioul_constraints(n_labels)
        self.register_buffer("start_penalty", (~start).float() * FORBIDDEN, persistent=False)
        self.register_buffer("trans_penalty", (~trans).float() * FORBIDDEN, persistent=False)
        self.register_buffer("end_penalty", (~end).float() * FORBIDDEN, persistent=False)

    def emissions(self, X: torch.Tensor) -> torch.Tensor:
        """(batch, time, n_in) -> (batch, time, n_tags)."""
        return self.emit(self.dropout(X))

    def _scores(self):
        return (
            self.start_transitions + self.start_penalty,
            self.transitions + self.trans_penalty,
            self.end_transitions + self.end_penalty,
        )

    def log_partition(self, emissions: torch.Tensor, lengths: torch.Tensor, allowed: torch.Tensor = None) -> torch.Tensor:
        """log Z per sequence (forward algorithm), over the paths whose tag at each position
        is ``allowed`` (bool, batch x time x tags; None = all). Zero-length sequences give 0."""
        start, trans, end = self._scores()
        if allowed is not None:
            emissions = emissions.masked_fill(~allowed, FORBIDDEN)
        batch, time, _ = emissions.shape
        if time == 0:
            return emissions.new_zeros(batch)
        return ForwardAlgorithm.apply(emissions, lengths.to(emissions.device), start, trans, end)

    def neg_log_likelihood(self, emissions: torch.Tensor, lengths: torch.Tensor, tags: torch.Tensor) -> torch.Tensor:
        """Summed NLL of the gold tags (batch x time, ``-1`` = unknown) given the emissions.

        Sequences whose tags are all unknown contribute exactly zero.
        """
        n_tags = emissions.shape[-1]
        batch = emissions.shape[0]
        known = tags >= 0
        allowed = torch.ones(emissions.shape, dtype=torch.bool, device=emissions.device)
        one_hot = torch.nn.functional.one_hot(tags.clamp(min=0), n_tags).bool()
        allowed = torch.where(known.unsqueeze(-1), one_hot, allowed)
        has_gold = known.any(dim=1)
        # both partition functions in one pass: all paths, then the gold-compatible ones
        both = self.log_partition(
            torch.cat([emissions, emissions]), torch.cat([lengths, lengths]), torch.cat([torch.ones_like(allowed), allowed])
        )
        nll = both[:batch] - both[batch:]
        return (nll * has_gold.float()).sum()

    def viterbi(self, emissions: torch.Tensor, lengths: torch.Tensor) -> List[List[int]]:
        """Best tag sequence per sequence (respects the BIOUL constraints).

        Runs in NumPy on the CPU in the emissions' precision: the per-token steps are tiny
        (batch x tags x tags), where torch's per-operator overhead would dominate.
        """
        start, trans, end = (x.detach().cpu().numpy() for x in self._scores())
        scores = emissions.detach().cpu().numpy()
        batch, time, n_tags = scores.shape
        if time == 0:
            return [[] for _ in range(batch)]
        lengths_np = lengths.cpu().numpy()
        score = start + scores[:, 0]
        history = np.empty((max(time - 1, 0), batch, n_tags), dtype=np.int64)
        stay = np.arange(n_tags)[None, :]
        for t in range(1, time):
            total = score[:, :, None] + trans[None]
            idx = total.argmax(axis=1)
            best = np.take_along_axis(total, idx[:, None, :], axis=1)[:, 0]
            active = (t < lengths_np)[:, None]
            score = np.where(active, best + scores[:, t], score)
            history[t - 1] = np.where(active, idx, stay)
        last = (score + end).argmax(axis=1)
        paths: List[List[int]] = []
        for b, n in enumerate(lengths_np.tolist()):
            if n == 0:
                paths.append([])
                continue
            tag = int(last[b])
            path = [tag]
            for t in range(n - 1, 0, -1):
                tag = int(history[t - 1, b, tag])
                path.append(tag)
            paths.append(path[::-1])
        return paths


class ForwardAlgorithm(torch.autograd.Function):
    """log Z of a linear-chain CRF, its gradient from the forward-backward algorithm.

    Why not autograd through the recursion: that records ~10 tiny torch operators per token
    (log-sum-exp over tags x tags) and replays them backwards, which made the CRF a fifth of
    a training step. Here both recursions run in NumPy float64 in *scaled probability space*
    (Rabiner's scaling: each step is a tags x tags matrix product, then the row is
    normalised and the log of the scale accumulated), a few microseconds per token, and the
    backward pass computes the marginals directly: d log Z / d emission = the tag's posterior,
    d log Z / d transition = the expected transition count. If a scale ever underflows
    (emission gaps above ~700 nats), the log-space recursion under autograd is used instead.
    Equal to autograd through the log-space recursion to float noise (``tests/test_ner.py``).

    emissions (batch, time, tags), lengths (batch,), start (tags,), trans (tags, tags), end (tags,)
    -> log Z (batch,); 0 for zero-length sequences.
    """

    @staticmethod
    def forward(ctx, emissions, lengths, start, trans, end):
        scaled = _scaled_forward(*(_to_numpy(x) for x in (emissions, lengths, start, trans, end)))
        ctx.save_for_backward(emissions, lengths, start, trans, end)
        ctx.scaled = scaled
        if scaled is None:
            log_z = log_space_partition(emissions, lengths, start, trans, end)
        else:
            log_z = torch.from_numpy(scaled["log_z"]).to(emissions)
        return torch.where(lengths > 0, log_z, torch.zeros_like(log_z))

    @staticmethod
    def backward(ctx, d_log_z):
        emissions, lengths, start, trans, end = ctx.saved_tensors
        scaled, ctx.scaled = ctx.scaled, None
        grads = None if scaled is None else _scaled_backward(scaled, _to_numpy(d_log_z))
        if grads is None:  # an underflow: differentiate the log-space recursion
            inputs = [x.detach().requires_grad_(True) for x in (emissions, start, trans, end)]
            with torch.enable_grad():
                log_z = log_space_partition(inputs[0], lengths, *inputs[1:])
                log_z = torch.where(lengths > 0, log_z, torch.zeros_like(log_z))
                grads = torch.autograd.grad(log_z, inputs, d_log_z, allow_unused=True)
            grads = [torch.zeros_like(x) if g is None else g for x, g in zip(inputs, grads)]
        else:
            grads = [torch.from_numpy(g).to(x) for g, x in zip(grads, (emissions, start, trans, end))]
        d_emissions, d_start, d_trans, d_end = grads
        return d_emissions, None, d_start, d_trans, d_end


def log_space_partition(emissions, lengths, start, trans, end) -> torch.Tensor:
    """The forward recursion in log space with torch operators (the fallback and reference)."""
    alpha = start + emissions[:, 0]
    for t in range(1, emissions.shape[1]):
        step = torch.logsumexp(alpha.unsqueeze(2) + trans.unsqueeze(0), dim=1) + emissions[:, t]
        alpha = torch.where((t < lengths).unsqueeze(1), step, alpha)
    return torch.logsumexp(alpha + end, dim=1)


def _to_numpy(x: torch.Tensor) -> np.ndarray:
    x = x.detach().cpu()
    return x.numpy() if not x.is_floating_point() else x.to(torch.float64).numpy()


def _scaled_forward(emissions, lengths, start, trans, end) -> Optional[Dict[str, np.ndarray]]:
    """Scaled forward recursion; None if a scale underflows to zero."""
    batch, time, _ = emissions.shape
    shift = emissions.max(axis=2)  # (batch, time)
    probs = np.exp(emissions - shift[:, :, None])
    c_start, c_trans, c_end = start.max(), trans.max(), end.max()
    e_start, e_trans, e_end = np.exp(start - c_start), np.exp(trans - c_trans), np.exp(end - c_end)
    active = np.arange(time)[:, None] < lengths[None, :]  # (time, batch)
    alphas = np.empty((time,) + probs[:, 0].shape)
    alpha = e_start * probs[:, 0]
    total = alpha.sum(1)
    bad = active[0] & ~(total > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        alpha = alpha / total[:, None]
        log_scale = np.log(total) + shift[:, 0] + c_start
        alphas[0] = alpha
        for t in range(1, time):
            step = (alpha @ e_trans) * probs[:, t]
            total = step.sum(1)
            now = active[t]
            bad |= now & ~(total > 0)
            alpha = np.where(now[:, None], step / total[:, None], alpha)
            log_scale = np.where(now, log_scale + np.log(total) + shift[:, t] + c_trans, log_scale)
            alphas[t] = alpha
        closing = (alpha * e_end).sum(1)
        log_z = log_scale + np.log(closing) + c_end
    bad |= (lengths > 0) & ~(closing > 0)
    if bad.any():
        return None
    log_z = np.where(lengths > 0, log_z, 0.0)
    return {"alphas": alphas, "probs": probs, "e_trans": e_trans, "e_end": e_end, "active": active, "lengths": lengths, "log_z": log_z}


def _scaled_backward(scaled: Dict[str, np.ndarray], d_log_z: np.ndarray) -> Optional[List[np.ndarray]]:
    """Scaled backward recursion and the marginals; None if a scale underflows to zero."""
    alphas, probs, e_trans = scaled["alphas"], scaled["probs"], scaled["e_trans"]
    active, lengths = scaled["active"], scaled["lengths"]
    time, batch, n_tags = alphas.shape
    weight = np.where(lengths > 0, d_log_z, 0.0)[None, :] * active  # (time, batch)
    # betas stay at the (normalised) end scores past a sequence's last token
    beta = np.broadcast_to(scaled["e_end"] / scaled["e_end"].sum(), (batch, n_tags)).copy()
    betas = np.empty_like(alphas)
    betas[time - 1] = beta
    bad = np.zeros(batch, dtype=bool)
    with np.errstate(divide="ignore", invalid="ignore"):
        for t in range(time - 2, -1, -1):
            step = (probs[:, t + 1] * beta) @ e_trans.T
            total = step.sum(1)
            now = active[t + 1]
            bad |= now & ~(total > 0)
            beta = np.where(now[:, None], step / total[:, None], beta)
            betas[t] = beta
        gamma = alphas * betas
        norm = gamma.sum(2, keepdims=True)
        bad |= (active & ~(norm[:, :, 0] > 0)).any(0)
        gamma = np.where(active[:, :, None], gamma / norm, 0.0) * weight[:, :, None]
    if bad.any():
        return None
    d_emissions = gamma.transpose(1, 0, 2)
    d_start = gamma[0].sum(0)
    last = np.clip(lengths - 1, 0, None)
    d_end = gamma[last, np.arange(batch)].sum(0)
    if time > 1:
        # expected transitions: alpha_{t-1}(i) T(i,j) p_t(j) beta_t(j), normalised per (t, b)
        forward_part = alphas[:-1]
        backward_part = probs.transpose(1, 0, 2)[1:] * betas[1:]
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.einsum("tbi,ij,tbj->tb", forward_part, e_trans, backward_part)
            scale = np.where(active[1:], weight[1:] / z, 0.0)
        if (active[1:] & ~(z > 0)).any():
            return None
        d_trans = e_trans * np.einsum("tbi,tbj->ij", forward_part * scale[:, :, None], backward_part)
    else:
        d_trans = np.zeros_like(e_trans)
    return [np.ascontiguousarray(d_emissions), d_start, d_trans, d_end]
