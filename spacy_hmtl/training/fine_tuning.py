"""The fine-tuning callback: ``spacy_hmtl.fine_tuning.v1``.

``spacy_hmtl.component_learn_rates.v1`` gives a component a learning rate of its own; this
callback does the same and can also train only the top layers of a transformer component
(``training/transformer_layers.py``)::

    [training.before_update]
    @callbacks = "spacy_hmtl.fine_tuning.v1"
    scales = {"transformer": 0.05}
    top_layers = {"transformer": 2}

It is a ``[training.before_update]`` callback, run before every step, so a resumed run (which
loads the checkpoint's weights, not their ``requires_grad``) freezes the same layers again.
"""
from typing import Any, Callable, Dict, Optional

from spacy.language import Language
from spacy.util import registry

from .learn_rates import make_component_learn_rates
from .transformer_layers import torch_modules, train_top_layers

NAME = "spacy_hmtl.fine_tuning.v1"


@registry.callbacks(NAME)
def make_fine_tuning(
    scales: Dict[str, float], top_layers: Optional[Dict[str, int]] = None
) -> Callable[[Language, Dict[str, Any]], None]:
    """A ``[training.before_update]`` callback for fine-tuning a transformer component.

    scales (Dict[str, float]): component name -> factor on ``[training.optimizer]``'s learning
        rate (as ``spacy_hmtl.component_learn_rates.v1``).
    top_layers (Optional[Dict[str, int]]): component name -> how many of its transformer's
        highest layers train; the layers below and the embeddings get no gradient. A
        component left out (or None) trains every layer.
    RETURNS (Callable[[Language, Dict[str, Any]], None]): the callback.
    """
    top_layers = dict(top_layers or {})
    for name, top in top_layers.items():
        if not isinstance(top, int) or isinstance(top, bool) or top < 1:
            raise ValueError(f"{NAME}: top_layers['{name}'] must be an integer >= 1, not {top!r}")
    scale_learn_rates = make_component_learn_rates(scales)

    def fine_tune(nlp: Language, args: Dict[str, Any]) -> None:
        scale_learn_rates(nlp, args)
        for name, top in top_layers.items():
            if name not in nlp.component_names:
                raise ValueError(f"{NAME}: no component '{name}' in the pipeline (components: {', '.join(nlp.component_names)})")
            modules = list(torch_modules(nlp.get_pipe(name)))
            if not modules:
                raise ValueError(f"{NAME}: '{name}' has no PyTorch model whose top layers could train")
            # every step: a hundred requires_grad flags cost nothing, and a module that was
            # replaced (a resumed run, a reloaded pipe) is frozen again without bookkeeping
            for module in modules:
                train_top_layers(module, top)

    return fine_tune
