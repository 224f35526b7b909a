"""thinc's ``Maxout`` with its inference product computed by torch.

spaCy's ``MultiHashEmbed`` (the lexical part of ``spacy_hmtl.HMTLEmbed.v1``) mixes its hash
embeddings and static vectors with one ``Maxout`` layer: on the CPU, one
``(tokens, 480) x (480, 288)`` product per batch through thinc's ``NumpyOps.gemm``. Profiled on
LitBank's chapters that product was a tenth of a vectors pipeline's time, and torch's float32
product of the same matrices (MKL / oneDNN) ran it 2 to 2.5 times faster on the same core.

``use_torch_maxout_inference`` gives the ``Maxout`` nodes of a model an inference forward that
computes ``X W^T + b`` and the maximum over the pieces with torch on the same float32 numpy
arrays (no copies of the weights, equal to float noise: ``tests/test_maxout_inference.py``).
Training (``is_train``) and any other array type (cupy on a GPU) run thinc's own forward,
unchanged, so gradients and saved weights are exactly thinc's.
"""
from typing import Callable, Tuple

import numpy
import torch
from thinc.api import Model
from thinc.layers import maxout as thinc_maxout
from thinc.types import Floats2d

# thinc names the node "maxout" (``thinc.layers.maxout.Maxout``)
MAXOUT_NAME = "maxout"


def maxout_forward(model: Model[Floats2d, Floats2d], X: Floats2d, is_train: bool) -> Tuple[Floats2d, Callable]:
    """thinc's ``maxout.forward``, with torch's product at inference on numpy arrays."""
    if is_train or not isinstance(X, numpy.ndarray) or X.dtype != numpy.float32:
        return thinc_maxout.forward(model, X, is_train)
    nO, nP, nI = model.get_dim("nO"), model.get_dim("nP"), model.get_dim("nI")
    W = torch.from_numpy(numpy.ascontiguousarray(model.get_param("W")).reshape(nO * nP, nI))
    b = torch.from_numpy(numpy.ascontiguousarray(model.get_param("b")).reshape(nO * nP))
    x = torch.from_numpy(numpy.ascontiguousarray(X))
    with torch.no_grad():
        Y = torch.addmm(b, x, W.t())
        best = Y.view(-1, nO, nP).amax(dim=-1)

    def backprop(dY: Floats2d) -> Floats2d:
        raise ValueError("maxout_inference: an inference call (is_train=False) has no backward pass")

    return best.numpy(), backprop


def use_torch_maxout_inference(model: Model) -> int:
    """Give every thinc ``Maxout`` node of ``model`` ``maxout_forward`` (in place).

    model (Model): e.g. ``MultiHashEmbed``'s output.
    RETURNS (int): how many nodes now use it.
    """
    count = 0
    for node in model.walk():
        if node.name == MAXOUT_NAME and node._func in (thinc_maxout.forward, maxout_forward):
            node._func = maxout_forward
            count += 1
    return count
