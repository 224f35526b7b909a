"""Building blocks shared by the encoder and the heads (plain torch + thinc glue)."""
import os

import torch


def _single_threaded_torch_in_forked_child() -> None:
    # nlp.pipe(n_process=...) forks; a child inheriting the parent's OpenMP pool
    # deadlocks in its first parallel torch op. One thread per worker process is
    # also the right setting when the work is spread over processes.
    torch.set_num_threads(1)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_single_threaded_torch_in_forked_child)
