"""A learning rate of its own for a component: ``spacy_hmtl.component_learn_rates.v1``.

Fine-tuning a transformer under the heads needs a learning rate for the transformer's
parameters far below the heads' (fine-tuned systems run their encoder at 1e-5 to 5e-5, heads
at 1e-3). spaCy trains every component with the one optimizer of ``[training.optimizer]``, and
a listener's ``grad_factor`` does not help: under Adam a step is normalised by the gradient's
own scale, so a smaller gradient barely changes the step (measured in docs/ACCURACY.md).

This ``[training.before_update]`` callback gives each named component a constant factor on the
optimizer's learning rate. spaCy's training loop calls ``component.finish_update(optimizer)``
once per step; before the first step (and again in a resumed run, which is why it is not an
``[initialize]`` callback) the callback replaces that bound method on the component *instance*
by one that passes a :class:`ScaledOptimizer` instead: every parameter update of that component goes
through thinc's own optimizer with ``lr_scale`` set, so the schedule (warm-up, decay),
gradient clipping, Adam's moments and the weight averages stay the optimizer's. Nothing is
saved with the pipeline: the factor only exists while training.
"""
from typing import Any, Callable, Dict, Tuple

from spacy.language import Language
from spacy.util import registry
from thinc.api import Optimizer


class ScaledOptimizer:
    """An optimizer seen through a constant learning-rate factor.

    Thinc's models and shims update a parameter by calling ``optimizer(key, weights,
    gradient)``; this object forwards the call with ``lr_scale`` multiplied by ``scale``.
    Every other attribute (``averages``, ``learn_rate``, ``step_schedules`` ...) is the
    wrapped optimizer's.
    """

    def __init__(self, optimizer: Optimizer, scale: float) -> None:
        self.optimizer = optimizer
        self.scale = scale

    def __call__(self, key: Tuple[int, str], weights: Any, gradient: Any, *, lr_scale: float = 1.0) -> Any:
        return self.optimizer(key, weights, gradient, lr_scale=lr_scale * self.scale)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.optimizer, name)


@registry.callbacks("spacy_hmtl.component_learn_rates.v1")
def make_component_learn_rates(scales: Dict[str, float]) -> Callable[[Language, Dict[str, Any]], None]:
    """A ``[training.before_update]`` callback that scales the learning rate of components.

    scales (Dict[str, float]): component name -> factor on ``[training.optimizer]``'s learning
        rate at every step, e.g. ``{"transformer": 0.05}`` trains the transformer at 5e-5 while
        the heads train at 1e-3 (and both follow the optimizer's schedule). 0 stops the
        component's updates, like ``frozen_components`` but with the gradient still flowing
        through it.
    RETURNS (Callable[[Language, Dict[str, Any]], None]): the callback.
    """
    for name, scale in scales.items():
        if not isinstance(scale, (int, float)) or scale < 0:
            raise ValueError(f"spacy_hmtl.component_learn_rates.v1: the factor for '{name}' must be a number >= 0, not {scale!r}")

    def scale_component_learn_rates(nlp: Language, args: Dict[str, Any]) -> None:
        for name, scale in scales.items():
            if name not in nlp.component_names:
                raise ValueError(
                    f"spacy_hmtl.component_learn_rates.v1: no component '{name}' in the pipeline "
                    f"(components: {', '.join(nlp.component_names)})"
                )
            component = nlp.get_pipe(name)
            if not hasattr(component, "finish_update"):
                raise ValueError(f"spacy_hmtl.component_learn_rates.v1: '{name}' is not trainable")
            if getattr(component, "learn_rate_scale", None) != scale:
                set_learn_rate_scale(component, float(scale))

    return scale_component_learn_rates


def set_learn_rate_scale(component: Any, scale: float) -> None:
    """Make ``component.finish_update(optimizer)`` update it at ``scale`` times the learning rate.

    Calling it again replaces the factor (the class's own ``finish_update`` is always the one
    that runs underneath).
    """
    class_finish_update = type(component).finish_update

    def finish_update(sgd: Optimizer) -> None:
        class_finish_update(component, ScaledOptimizer(sgd, scale))

    component.finish_update = finish_update
    component.learn_rate_scale = scale
