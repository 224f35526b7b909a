"""Save and restore a thinc optimizer's state across processes.

Thinc's ``Optimizer`` keeps Adam's moments, the weight averages and the update counts under
keys ``(id, parameter name)``, where the id is a thinc node's or a torch shim's number in
*this* process: a new process numbers them differently. The state is therefore saved under
stable names, the path of each parameter in the pipeline (component name, position of the node
in ``model.walk()``, shim number, parameter name), and mapped back to the new process's keys
when it is restored. Arrays go to a ``.npz`` file (loaded without pickle), counts and
schedule positions to JSON.
"""
import json
from pathlib import Path
from typing import Dict, Hashable, Tuple

import numpy
from spacy.language import Language
from thinc.api import Optimizer, get_current_ops
from thinc.backends import get_array_ops

KeyT = Tuple[int, str]
# The optimizer's per-parameter tables that hold arrays, and those that hold counts.
ARRAY_TABLES = ("mom1", "mom2", "averages")
COUNT_TABLES = ("nr_update", "last_seen")


def parameter_names(nlp: Language) -> Dict[KeyT, str]:
    """Map each optimizer key of the pipeline's parameters to a name that is the same in every process.

    nlp (Language): the pipeline.
    RETURNS (Dict[Tuple[int, str], str]): ``(id, name)`` -> ``"component/node index/name"``
        (thinc parameters) or ``"component/node index/shim index/name"`` (torch parameters).
    """
    names: Dict[KeyT, str] = {}
    for component_name, component in nlp.pipeline:
        model = getattr(component, "model", None)
        if model is None or model in (True, False):
            continue
        for node_index, node in enumerate(model.walk()):
            for param_name in node.param_names:
                names.setdefault((node.id, param_name), f"{component_name}/{node_index}/{param_name}")
            for shim_index, shim in enumerate(node.shims):
                torch_model = getattr(shim, "_model", None)
                if torch_model is None or not hasattr(torch_model, "named_parameters"):
                    continue
                for param_name, _ in torch_model.named_parameters():
                    names.setdefault(
                        (shim.id, param_name), f"{component_name}/{node_index}/shim{shim_index}/{param_name}"
                    )
    return names


def save_optimizer_state(optimizer: Optimizer, nlp: Language, path: Path, steps: int) -> None:
    """Write the optimizer's state to the directory ``path`` (``arrays.npz``, ``state.json``).

    optimizer (Optimizer): thinc's optimizer, as ``spacy train`` uses it.
    nlp (Language): the pipeline it trains (for the stable parameter names).
    path (Path): an existing directory.
    steps (int): how many times ``step_schedules`` has been called, so that a restored
        optimizer's schedules (warm-up, decay) continue from the same position.
    """
    names = parameter_names(nlp)
    arrays: Dict[str, numpy.ndarray] = {}
    counts: Dict[str, Dict[str, int]] = {table: {} for table in COUNT_TABLES}
    for table in ARRAY_TABLES:
        values = getattr(optimizer, table) or {}
        for key, value in values.items():
            if key in names:
                arrays[f"{table}::{names[key]}"] = get_array_ops(value).to_numpy(value)
    for table in COUNT_TABLES:
        for key, value in getattr(optimizer, table).items():
            if key in names:
                counts[table][names[key]] = int(value)
    numpy.savez(path / "arrays.npz", **arrays)  # type: ignore[arg-type]  # numpy's stub types savez's **kwds as bool
    state = {"schedule_steps": steps, "counts": counts, "scalars": {name: getattr(optimizer, name) for name in ("learn_rate", "b1", "b2", "eps", "L2", "grad_clip")}}
    (path / "state.json").write_text(json.dumps(state), encoding="utf8")


def restore_optimizer_state(optimizer: Optimizer, nlp: Language, path: Path) -> int:
    """Load what :func:`save_optimizer_state` wrote into a fresh optimizer of the same config.

    The schedules are advanced as many steps as the saved optimizer's had been.

    optimizer (Optimizer): a new optimizer, resolved from the same ``[training.optimizer]``.
    nlp (Language): the restored pipeline it will train.
    path (Path): the directory written by :func:`save_optimizer_state`.
    RETURNS (int): the number of schedule steps restored.
    """
    keys: Dict[str, Hashable] = {name: key for key, name in parameter_names(nlp).items()}
    state = json.loads((path / "state.json").read_text(encoding="utf8"))
    ops = get_current_ops()
    with numpy.load(path / "arrays.npz", allow_pickle=False) as arrays:
        unknown = []
        for stored_name in arrays.files:
            table, name = stored_name.split("::", 1)
            if name not in keys:
                unknown.append(name)
                continue
            table_values = getattr(optimizer, table)
            if table_values is None:  # averages saved, but this optimizer keeps none
                continue
            table_values[keys[name]] = ops.asarray(numpy.ascontiguousarray(arrays[stored_name]))  # type: ignore[arg-type]  # thinc's Ops.asarray stub does not accept a plain ndarray
    if unknown:
        raise ValueError(
            f"{path}: the optimizer state names {len(unknown)} parameters that the pipeline "
            f"does not have (e.g. '{unknown[0]}'): it was saved for another pipeline"
        )
    for table in COUNT_TABLES:
        for name, value in state["counts"][table].items():
            getattr(optimizer, table)[keys[name]] = value
    steps = int(state["schedule_steps"])
    for _ in range(steps):
        optimizer.step_schedules()
    saved_rate = state["scalars"]["learn_rate"]
    if not numpy.isclose(optimizer.learn_rate, saved_rate, rtol=1e-6, atol=0.0):
        raise ValueError(
            f"{path}: after {steps} steps the learning rate is {optimizer.learn_rate}, but the "
            f"saved optimizer's was {saved_rate}: [training.optimizer] differs from the run that saved it"
        )
    return steps
