"""Lee et al. (2017)'s distance buckets, shared by the coref head (span to antecedent, in
kept spans) and the relation head (tokens between two arguments). Plain PyTorch."""
import torch

# 0, 1, 2, 3, 4, 5-7, 8-15, 16-31, 32-63, 64+
N_DISTANCE_BUCKETS = 10


def distance_buckets(distances: torch.Tensor) -> torch.Tensor:
    """Bucket indices in ``[0, N_DISTANCE_BUCKETS)`` of int64 distances: exact up to 4, then
    one bucket per power of two up to 64+ (negative distances count as 0)."""
    d = distances.clamp(min=1).float()
    log_bucket = torch.floor(torch.log2(d)).long() + 3
    return torch.where(distances <= 4, distances.clamp(min=0), log_bucket).clamp(max=N_DISTANCE_BUCKETS - 1)
