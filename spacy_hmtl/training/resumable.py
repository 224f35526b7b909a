"""``spacy train`` that can stop and resume: ``python -m spacy_hmtl train``.

Fine-tuning a transformer on a CPU takes hours, longer than a machine or a session may be
held. spaCy's training loop keeps its state (optimizer moments, schedule position, the order
of the batches, random generators) in memory only, and ``model-last`` holds the *averaged*
weights, so a new ``spacy train`` sourcing from it starts a different run. This loop is spaCy's
(``spacy.training.loop``: the same batches, updates, evaluations, logger, ``model-last`` and
``model-best``) plus a checkpoint written at evaluations, from which a killed or stopped run
continues as if it had never stopped (``tests/test_resumable_training.py`` checks that the
resumed run's weights and scores equal the uninterrupted run's).

A checkpoint (``OUTPUT/checkpoint``, replaced atomically) holds:

* ``model/``: the pipeline with its raw (not averaged) weights;
* ``optimizer/``: Adam's moments, the averages and update counts under stable parameter names
  (:mod:`.optimizer_state`), and the schedules' position;
* ``state.json``: the step, the evaluations so far (model selection and patience go on from
  them), the random generators' states (Python, NumPy, torch), the config it was trained from,
  and the lines of the training log written so far.

On resume the batch stream is rebuilt from the seed and advanced past the batches already
trained on (reading examples, not training: seconds), then the random states are restored.

The config must be the checkpoint's, with one exception: ``training.max_steps``. A run that
finished at its ``max_steps`` while its dev curves still rose resumes with a larger one and goes
on as the longer run would have (its checkpoint is written at the last evaluation, before the
loop ends, so nothing of the ending is in it).
"""
import base64
import json
import random
import shutil
import sys
import time
from pathlib import Path
from timeit import default_timer as timer
from typing import IO, Any, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy
import torch
from spacy import util
from spacy.language import Language
from spacy.schemas import ConfigSchemaTraining
from spacy.training.initialize import init_nlp
from spacy.training.loop import (
    clean_output_dir,
    create_before_to_disk_callback,
    create_evaluation_callback,
    create_train_batches,
    subdivide_batch,
    update_meta,
)
from spacy.util import registry, resolve_dot_names
from thinc.api import Config, Optimizer, fix_random_seed
from wasabi import Printer

from ..encoder.quantization import quantize_transformers
from .optimizer_state import restore_optimizer_state, save_optimizer_state

CHECKPOINT = "checkpoint"
MODEL_LAST = "model-last"
MODEL_BEST = "model-best"


class ResumeError(ValueError):
    """A checkpoint that cannot be resumed (missing, or from another config)."""


def train_resumable(
    config: Config,
    output_path: Path,
    *,
    resume: bool = False,
    checkpoint_every: int = 1,
    stop_after_step: Optional[int] = None,
    stop_after_minutes: Optional[float] = None,
    stdout: Optional[IO] = None,
    stderr: Optional[IO] = None,
) -> Tuple[Language, bool]:
    """Train as ``spacy train`` does, writing a checkpoint to resume from.

    config (Config): the training config, overrides applied, not interpolated.
    output_path (Path): the output directory (``model-last``, ``model-best``, ``checkpoint``).
    resume (bool): continue from ``output_path/checkpoint`` (which must exist and come from
        the same config) instead of starting afresh.
    checkpoint_every (int): write a checkpoint at every N-th evaluation (and at the end).
    stop_after_step (Optional[int]): stop at the first evaluation at or after this step,
        with a checkpoint, as an interruption would (to split a run across sessions).
    stop_after_minutes (Optional[float]): stop at the first evaluation after this much wall
        time in this process, with a checkpoint.
    stdout (Optional[IO]): where progress goes (None: ``sys.stdout`` at the call, not at import:
        a caller that redirects ``sys.stdout`` gets its output).
    stderr (Optional[IO]): where warnings go (None: ``sys.stderr`` at the call).
    RETURNS (Tuple[Language, bool]): the pipeline and whether training finished (False: stopped
        early by ``stop_after_*``; run again with ``resume``).
    """
    stdout = sys.stdout if stdout is None else stdout
    stderr = sys.stderr if stderr is None else stderr
    msg = Printer(no_print=True)
    checkpoint_dir = output_path / CHECKPOINT
    config_text = config.to_str()
    if resume:
        state = read_state(checkpoint_dir, config_text)
        nlp = util.load_model_from_path(checkpoint_dir / "model")
        # the one setting a resumed run may change (read_state): the loop reads the pipeline's
        # config, which is the checkpoint's
        pipeline_config = nlp.config
        pipeline_config["training"]["max_steps"] = config["training"]["max_steps"]
        nlp.config = pipeline_config
        # loading arms spacy_hmtl.quantize_transformer.v1 where the config names it: training
        # goes on in float32, as it ran before the checkpoint
        quantize_transformers(nlp, enabled=False)
        stdout.write(msg.info(f"Resuming after step {state['step']} from {checkpoint_dir}") + "\n")
    else:
        state = None
        nlp = init_nlp(config)
        stdout.write(msg.good("Initialized pipeline") + "\n")
    interpolated = nlp.config.interpolate()
    interpolated["training"]["logger"] = logger_writing_as_it_goes(interpolated["training"]["logger"])
    seed = interpolated["training"]["seed"]
    if seed is not None:
        fix_random_seed(seed)
    T = registry.resolve(interpolated["training"], schema=ConfigSchemaTraining)
    train_corpus, dev_corpus = resolve_dot_names(interpolated, [T["train_corpus"], T["dev_corpus"]])
    optimizer: Optimizer = T["optimizer"]
    batches = create_train_batches(nlp, train_corpus, T["batcher"], T["max_epochs"])
    start_step = 0
    if state is not None and run_ended(state["step"], state["results"], T):
        # the loop would train one more step past its end and overwrite model-last with it
        stdout.write(msg.good(f"The run ended at step {state['step']} (its max_steps or patience): "
                              f"nothing to train; a larger training.max_steps extends a run that "
                              f"ended at its max_steps") + "\n")
        return nlp, True
    if state is not None:
        restore_optimizer_state(optimizer, nlp, checkpoint_dir / "optimizer")
        start_step = state["step"] + 1
        skip_batches(batches, start_step)
        set_random_states(state["random"])
    else:
        clean_output_dir(output_path)
    before_to_disk = create_before_to_disk_callback(T["before_to_disk"])
    frozen = T["frozen_components"]
    stdout.write(msg.info(f"Pipeline: {nlp.pipe_names}") + "\n")
    stdout.write(msg.info(f"Learn rate at step {start_step}: {optimizer.learn_rate}") + "\n")
    with nlp.select_pipes(disable=frozen):
        log_step, finalize_logger = T["logger"](nlp, stdout, stderr)
    log_file = logger_output_file(interpolated)
    log_prefix = state["log"] if state else ""
    results: List[Tuple[float, int]] = [tuple(r) for r in state["results"]] if state else []  # type: ignore[misc]
    started = time.perf_counter()
    finished = True
    evaluations = 0
    try:
        steps = training_steps(
            nlp, optimizer, batches, create_evaluation_callback(nlp, dev_corpus, T["score_weights"]),
            T, start_step=start_step, results=results, seconds=state["seconds"] if state else 0.0,
            words=state["words"] if state else 0,
        )
        for info, is_best in steps:
            if is_best is None:
                log_step(None)
                continue
            evaluations += 1
            with nlp.select_pipes(disable=frozen):
                update_meta(T, nlp, info)
            with nlp.use_params(optimizer.averages or {}):
                before_to_disk(nlp).to_disk(output_path / MODEL_LAST)
            if is_best:
                if (output_path / MODEL_BEST).exists():
                    shutil.rmtree(output_path / MODEL_BEST)
                shutil.copytree(output_path / MODEL_LAST, output_path / MODEL_BEST)
            info["output_path"] = str(output_path / MODEL_LAST)
            log_step(info)
            stop = (stop_after_step is not None and info["step"] >= stop_after_step) or (
                stop_after_minutes is not None and time.perf_counter() - started >= 60 * stop_after_minutes
            )
            if stop or evaluations % checkpoint_every == 0:
                write_checkpoint(
                    checkpoint_dir, nlp, optimizer, info, config_text,
                    continued_log(log_prefix, read_log(log_file)),
                )
            if stop:
                finished = False
                stdout.write(msg.warn(f"Stopped after step {info['step']}: resume with --resume") + "\n")
                break
    finally:
        finalize_logger()
    if log_prefix and log_file is not None:
        # the logger opened its file afresh: put back the evaluations before the resumption
        log_file.write_text(continued_log(log_prefix, read_log(log_file)), encoding="utf8")
    if finished:
        with nlp.use_params(optimizer.averages or {}):
            before_to_disk(nlp).to_disk(output_path / MODEL_LAST)
        stdout.write(msg.good("Saved pipeline to output directory", output_path / MODEL_LAST) + "\n")
    return nlp, finished


def training_steps(
    nlp: Language,
    optimizer: Optimizer,
    batches: Iterator[Tuple[int, Any]],
    evaluate: Any,
    T: Dict[str, Any],
    *,
    start_step: int,
    results: List[Tuple[float, int]],
    seconds: float,
    words: int,
) -> Iterator[Tuple[Dict[str, Any], Optional[bool]]]:
    """spaCy's ``train_while_improving`` starting at ``start_step`` with earlier evaluations.

    Yields ``(info, is_best)`` after each step; ``is_best`` is None when the step was not
    evaluated. Stops at ``max_steps`` or when ``patience`` steps passed without improvement.
    """
    dropout = T["dropout"]
    exclude = T["frozen_components"]
    losses: Dict[str, float] = {}
    start_time = timer() - seconds
    for step, (epoch, batch) in enumerate(batches, start=start_step):
        if T["before_update"]:
            T["before_update"](nlp, {"step": step, "epoch": epoch})
        for subbatch in subdivide_batch(batch, T["accumulate_gradient"]):
            nlp.update(subbatch, drop=dropout, losses=losses, sgd=False, exclude=exclude,  # type: ignore[arg-type]  # sgd=False: spaCy's way to skip the step, not in its stub
                       annotates=T["annotating_components"])
        for name, pipe in nlp.pipeline:
            proc: Any = pipe  # a trainable pipe when it has is_trainable; spaCy types pipes as Callable[[Doc], Doc]
            if name not in exclude and getattr(proc, "is_trainable", False) and proc.model not in (True, False, None):
                proc.finish_update(optimizer)
        optimizer.step_schedules()
        is_best: Optional[bool] = None
        score, other_scores = None, None
        if not step % T["eval_frequency"]:
            with nlp.use_params(optimizer.averages or {}):
                score, other_scores = evaluate()
            results.append((score, step))
            is_best = score == max(results)[0]
        words += sum(len(eg) for eg in batch)
        info = {
            "epoch": epoch, "step": step, "score": score, "other_scores": other_scores,
            "losses": losses, "checkpoints": results, "seconds": int(timer() - start_time), "words": words,
        }
        yield info, is_best
        if is_best is not None:
            losses = {}
        if run_ended(step, results, T):
            break


def run_ended(step: int, results: Sequence[Tuple[float, int]], T: Dict[str, Any]) -> bool:
    """Whether a run ends after ``step``, given its evaluations so far (``(score, step)``):
    ``patience`` steps after its best evaluation (the earliest of equal best scores, as
    spaCy's loop), or at ``max_steps``. The loop stops on it; a resumed run asks it of its
    checkpoint (``state["step"]``, ``state["results"]``) so as not to train past the end."""
    if T["patience"] and results:
        best_step = -max((score, -at) for score, at in results)[1]
        if step - best_step >= T["patience"]:
            return True
    return bool(T["max_steps"]) and step >= T["max_steps"]


def skip_batches(batches: Iterator[Any], count: int) -> None:
    """Advance the batch stream past ``count`` batches (the data order of the stopped run)."""
    for _ in range(count):
        next(batches)


def random_states() -> Dict[str, str]:
    """The states of Python's, NumPy's and torch's global random generators, as text."""
    return {
        "python": json.dumps(random.getstate()),
        "numpy": base64.b64encode(_pickle_free_numpy_state()).decode("ascii"),
        "torch": base64.b64encode(torch.get_rng_state().numpy().tobytes()).decode("ascii"),
    }


def set_random_states(states: Dict[str, str]) -> None:
    """Restore what :func:`random_states` returned."""
    version, internal, gauss_next = json.loads(states["python"])
    random.setstate((version, tuple(internal), gauss_next))
    raw = numpy.frombuffer(base64.b64decode(states["numpy"]), dtype=numpy.uint8)
    keys = raw[: 624 * 4].view(numpy.uint32)
    pos, has_gauss = raw[624 * 4 : 624 * 4 + 8].view(numpy.int32)
    cached = float(raw[624 * 4 + 8 :].view(numpy.float64)[0])
    numpy.random.set_state(("MT19937", keys, int(pos), int(has_gauss), cached))
    torch_state = numpy.frombuffer(base64.b64decode(states["torch"]), dtype=numpy.uint8).copy()
    torch.set_rng_state(torch.from_numpy(torch_state))


def _pickle_free_numpy_state() -> bytes:
    _, keys, pos, has_gauss, cached = numpy.random.get_state()
    return (
        numpy.asarray(keys, dtype=numpy.uint32).tobytes()
        + numpy.asarray([pos, has_gauss], dtype=numpy.int32).tobytes()
        + numpy.asarray([cached], dtype=numpy.float64).tobytes()
    )


def write_checkpoint(
    checkpoint_dir: Path,
    nlp: Language,
    optimizer: Optimizer,
    info: Dict[str, Any],
    config_text: str,
    log_text: str,
) -> None:
    """Write the checkpoint to a new directory, then swap it in (a kill leaves the old one whole)."""
    partial = _swap_dir(checkpoint_dir, ".partial")
    if partial.exists():
        shutil.rmtree(partial)
    partial.mkdir(parents=True)
    nlp.to_disk(partial / "model")
    (partial / "optimizer").mkdir()
    save_optimizer_state(optimizer, nlp, partial / "optimizer", steps=info["step"] + 1)
    state = {
        "step": info["step"],
        "epoch": info["epoch"],
        "seconds": info["seconds"],
        "words": info["words"],
        "results": [list(r) for r in info["checkpoints"]],
        "random": random_states(),
        "config": config_text,
        "log": log_text,
    }
    (partial / "state.json").write_text(json.dumps(state), encoding="utf8")
    old = _swap_dir(checkpoint_dir, ".old")
    if old.exists():
        shutil.rmtree(old)
    if checkpoint_dir.exists():
        checkpoint_dir.rename(old)
    partial.rename(checkpoint_dir)
    if old.exists():
        shutil.rmtree(old)


def _swap_dir(checkpoint_dir: Path, suffix: str) -> Path:
    """A directory of the checkpoint swap, beside ``checkpoint_dir``: ``".partial"`` (the
    checkpoint being written) or ``".old"`` (the one it replaces)."""
    return checkpoint_dir.with_name(checkpoint_dir.name + suffix)


def load_training_config(config_path: Path, overrides: List[str]) -> Config:
    """A training config as ``python -m spacy_hmtl train`` reads it and compares it with a
    checkpoint's: dotted ``--section.key value`` overrides applied, not interpolated."""
    from spacy.cli._util import parse_config_overrides

    return util.load_config(config_path, overrides=parse_config_overrides(list(overrides)), interpolate=False)


def has_checkpoint(output_path: Path) -> bool:
    """Whether ``output_path`` holds a checkpoint to resume from (also one whose swap was
    interrupted, which ``read_state`` restores)."""
    checkpoint_dir = Path(output_path) / CHECKPOINT
    return (checkpoint_dir / "state.json").exists() or (_swap_dir(checkpoint_dir, ".old") / "state.json").exists()


def read_state(checkpoint_dir: Path, config_text: str) -> Dict[str, Any]:
    """The checkpoint's state, checked against the config of the run that resumes it: the same
    config and overrides, except ``training.max_steps``, which may change to any step after the
    checkpoint's (to extend a finished run, or end a run sooner)."""
    if not (checkpoint_dir / "state.json").exists():
        old = _swap_dir(checkpoint_dir, ".old")
        if (old / "state.json").exists():  # killed while swapping checkpoints
            old.rename(checkpoint_dir)
        else:
            raise ResumeError(f"{checkpoint_dir}: no checkpoint to resume from (state.json missing)")
    state = json.loads((checkpoint_dir / "state.json").read_text(encoding="utf8"))
    trained, trained_steps = _split_max_steps(state["config"])
    resuming, max_steps = _split_max_steps(config_text)
    if trained != resuming:
        raise ResumeError(
            f"{checkpoint_dir}: the checkpoint was trained from another config (or other "
            f"overrides); resume with the same config and overrides (training.max_steps may "
            f"differ), or train afresh without --resume"
        )
    if max_steps != trained_steps and max_steps and max_steps <= state["step"]:
        raise ResumeError(
            f"{checkpoint_dir}: the checkpoint is at step {state['step']}; training.max_steps = "
            f"{max_steps} would end the run before it (extend with a larger max_steps)"
        )
    return state


def _split_max_steps(config_text: str) -> Tuple[str, Any]:
    """A config without ``training.max_steps``, and that value."""
    config = Config().from_str(config_text, interpolate=False)
    max_steps = config["training"].pop("max_steps", None)
    return config.to_str(), max_steps


# spaCy's console loggers with a JSONL file: buffered (a checkpoint written while lines wait in
# the buffer would miss them) and refusing a file that exists (a resumed run would log nothing)
_SPACY_CONSOLE_LOGGERS = ("spacy.ConsoleLogger.v2", "spacy.ConsoleLogger.v3")


def logger_writing_as_it_goes(logger: Dict[str, Any]) -> Dict[str, Any]:
    """The logger block this loop runs: spaCy's ``ConsoleLogger.v2`` / ``.v3`` with an
    ``output_file`` becomes ``spacy_hmtl.TimedConsoleLogger.v1`` (the same console table; its
    JSONL, the same lines plus ``seconds``, is flushed at each evaluation and opened afresh,
    so the checkpoint holds every line and a resumed run logs its own). Other loggers as
    they are; the saved pipelines' configs keep the configured one."""
    if logger.get("@loggers") not in _SPACY_CONSOLE_LOGGERS or not logger.get("output_file"):
        return logger
    progress_bar = logger.get("progress_bar")
    if logger["@loggers"] == "spacy.ConsoleLogger.v2":  # a bool there: True = "eval"
        progress_bar = "eval" if progress_bar else None
    return {
        "@loggers": "spacy_hmtl.TimedConsoleLogger.v1",
        "progress_bar": progress_bar,
        "console_output": logger.get("console_output", True),
        "output_file": logger["output_file"],
    }


def logger_output_file(config: Config) -> Optional[Path]:
    """The JSONL file the configured logger writes, if any."""
    output_file = config["training"]["logger"].get("output_file")
    return Path(output_file) if output_file else None


def continued_log(prefix: str, resumed: str) -> str:
    """The log of a resumed run: the evaluations before the resumption (``prefix``), then the
    resumed run's, whose ``seconds`` (counted by the logger from the resumption) continue from
    the last ``seconds`` of the prefix. So a log's ``seconds`` are the run's wall time without
    the pause, as an uninterrupted run's are. Lines that are not JSON objects with a number
    ``seconds`` are kept as they are."""
    offset = 0.0
    for line in prefix.splitlines():
        record = _json_record(line)
        if record is not None and isinstance(record.get("seconds"), (int, float)):
            offset = float(record["seconds"])
    if not offset:
        return prefix + resumed
    lines = []
    for line in resumed.splitlines(keepends=True):
        record = _json_record(line)
        if record is not None and isinstance(record.get("seconds"), (int, float)):
            record["seconds"] = round(float(record["seconds"]) + offset, 2)
            line = json.dumps(record, separators=(",", ":")) + "\n"
        lines.append(line)
    return prefix + "".join(lines)


def _json_record(line: str) -> Optional[Dict[str, Any]]:
    try:
        record = json.loads(line)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def read_log(path: Optional[Path]) -> str:
    """What the logger has written so far ("" when it writes no file)."""
    if path is None or not path.exists():
        return ""
    return path.read_text(encoding="utf8")
