"""A linear-chain CRF tagger with BIOUL constraints (plain PyTorch, no spaCy).

Tags are ``O`` (index 0) then ``B-``, ``I-``, ``L-``, ``U-`` for each label. Transitions
that BIOUL forbids (``O -> I-X``, ``B-X -> I-Y``, ...) get a fixed -10,000 added to their
learned score, so Viterbi decoding never returns an invalid sequence and the likelihood
gives them (numerically) no mass.

Gold tags may be missing (``-1``) for some tokens: the loss is then the negative
log-likelihood of *all* paths compatible with the known tags (a partial-label CRF), which
is also what masks documents that carry no entity annotation at all.
"""
from typing import List, Sequence, Tuple

import torch
from torch import nn

from ..layers.torch_bridge import register_torch_module

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


@register_torch_module("hmtl_crf_tagger")
class CRFTagger(nn.Module):
    """Emission scorer + CRF over BIOUL tags.

    n_in (int): width of the token vectors.
    n_labels (int): number of entity labels (tags = 1 + 4 * n_labels).
    hidden_width (int): hidden layer of the emission scorer (0 = linear).
    dropout (float): dropout on the token vectors.
    """

    def __init__(self, n_in: int, n_labels: int, hidden_width: int = 0, dropout: float = 0.2):
        super().__init__()
        self.n_tags = 1 + 4 * n_labels
        self.dropout = nn.Dropout(dropout)
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
        lengths = lengths.to(emissions.device)
        alpha = start + emissions[:, 0]
        for t in range(1, time):
            step = torch.logsumexp(alpha.unsqueeze(2) + trans.unsqueeze(0), dim=1) + emissions[:, t]
            alpha = torch.where((t < lengths).unsqueeze(1), step, alpha)
        log_z = torch.logsumexp(alpha + end, dim=1)
        return torch.where(lengths > 0, log_z, torch.zeros_like(log_z))

    def neg_log_likelihood(self, emissions: torch.Tensor, lengths: torch.Tensor, tags: torch.Tensor) -> torch.Tensor:
        """Summed NLL of the gold tags (batch x time, ``-1`` = unknown) given the emissions.

        Sequences whose tags are all unknown contribute exactly zero.
        """
        n_tags = emissions.shape[-1]
        known = tags >= 0
        allowed = torch.ones(emissions.shape, dtype=torch.bool, device=emissions.device)
        one_hot = torch.nn.functional.one_hot(tags.clamp(min=0), n_tags).bool()
        allowed = torch.where(known.unsqueeze(-1), one_hot, allowed)
        has_gold = known.any(dim=1)
        nll = self.log_partition(emissions, lengths) - self.log_partition(emissions, lengths, allowed)
        return (nll * has_gold.float()).sum()

    def viterbi(self, emissions: torch.Tensor, lengths: torch.Tensor) -> List[List[int]]:
        """Best tag sequence per sequence (respects the BIOUL constraints)."""
        start, trans, end = self._scores()
        batch, time, _ = emissions.shape
        if time == 0:
            return [[] for _ in range(batch)]
        lengths_dev = lengths.to(emissions.device)
        score = start + emissions[:, 0]
        history = []
        for t in range(1, time):
            total = score.unsqueeze(2) + trans.unsqueeze(0)
            best, idx = total.max(dim=1)
            active = (t < lengths_dev).unsqueeze(1)
            score = torch.where(active, best + emissions[:, t], score)
            history.append(torch.where(active, idx, torch.arange(idx.shape[1], device=idx.device).expand_as(idx)))
        score = score + end
        last = score.argmax(dim=1)
        # Backtrack on CPU in numpy (cheap integer lookups).
        history_np = torch.stack(history).cpu().numpy() if history else None
        last = last.cpu().numpy()
        paths = []
        for b, n in enumerate(lengths.tolist()):
            if n == 0:
                paths.append([])
                continue
            tag = int(last[b])
            path = [tag]
            for t in range(n - 1, 0, -1):
                tag = int(history_np[t - 1, b, tag])
                path.append(tag)
            paths.append(path[::-1])
        return paths
