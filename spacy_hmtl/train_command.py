"""``python -m spacy_hmtl train``: ``spacy train`` that can stop and resume.

Same config, same overrides (``--paths.train ...``), same output (``model-last``,
``model-best``) and the same training as ``spacy train``; in addition a checkpoint in
``OUTPUT/checkpoint`` lets a stopped or killed run continue with ``--resume`` exactly where it
was (``spacy_hmtl/training/resumable.py``). ``--stop-after-minutes`` ends a run at the first
evaluation after that much time, so that a run longer than a machine is held can be split.
"""
import argparse
import sys
from pathlib import Path
from typing import Any, List

# Exit status of a run that stopped early on purpose (--stop-after-*): resume it.
EXIT_STOPPED = 4


def add_train(subparsers: Any) -> None:
    """Add the ``train`` command's parser to ``subparsers``.

    subparsers: what ``argparse.ArgumentParser.add_subparsers`` returned.
    """
    parser = subparsers.add_parser(
        "train",
        help="spacy train, with checkpoints to resume a stopped run from",
        description=(
            "Train CONFIG as `spacy train` does (config overrides such as --paths.train PATH "
            "are accepted), writing OUTPUT/model-last, OUTPUT/model-best and a checkpoint at "
            "evaluations. --resume continues a stopped or killed run from its checkpoint, with "
            "the same weights, optimizer state, schedule, batch order and random state as if "
            f"it had not stopped. Exit status {EXIT_STOPPED}: stopped by --stop-after-*."
        ),
    )
    parser.add_argument("config", metavar="CONFIG", help="training config (.cfg)")
    parser.add_argument("--output", "-o", metavar="DIR", required=True, help="output directory")
    # an optional value, so that a project command can pass a variable: `--resume ${vars.resume}`
    # with `--vars.resume yes` (weasel reads `--vars.resume=--resume` as the word "resume")
    parser.add_argument(
        "--resume", nargs="?", const="yes", default="no", type=_resume_value, metavar="yes|no|auto",
        help="continue from OUTPUT/checkpoint (--resume alone or --resume yes; --resume no: a fresh run; "
             "--resume auto: continue if OUTPUT has a checkpoint, else a fresh run, for scripts that run "
             "the same command until it ends)",
    )
    parser.add_argument("--checkpoint-every", type=int, default=1, metavar="N",
                        help="write a checkpoint at every N-th evaluation (default 1)")
    parser.add_argument("--stop-after-minutes", type=float, default=None, metavar="M",
                        help="stop (with a checkpoint) at the first evaluation after M minutes")
    parser.add_argument("--stop-after-step", type=int, default=None, metavar="STEP",
                        help="stop (with a checkpoint) at the first evaluation at or after STEP")
    parser.add_argument("--gpu-id", type=int, default=-1, help="GPU to use (default -1: CPU)")
    parser.add_argument("--threads", type=int, default=None, metavar="N",
                        help="torch threads (default: torch's, or OMP_NUM_THREADS); on cores shared with "
                             "other work, 1 (torch's default pool made steps up to ten times slower)")
    parser.set_defaults(handler=run_train, parser=parser, accepts_overrides=True)


def run_train(args: argparse.Namespace) -> int:
    from spacy.cli._util import setup_gpu

    from .training.resumable import ResumeError, has_checkpoint, load_training_config, train_resumable

    if args.checkpoint_every < 1:
        args.parser.error("--checkpoint-every must be at least 1")
    if args.threads is not None:
        if args.threads < 1:
            args.parser.error("--threads must be at least 1")
        import torch

        torch.set_num_threads(args.threads)
    config_path = Path(args.config)
    if not config_path.is_file():
        print(f"error: {config_path}: no such config file", file=sys.stderr)
        return 1
    setup_gpu(args.gpu_id)
    config = load_training_config(config_path, list(args.overrides))
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    try:
        _, finished = train_resumable(
            config,
            output,
            resume=args.resume == "yes" or (args.resume == "auto" and has_checkpoint(output)),
            checkpoint_every=args.checkpoint_every,
            stop_after_step=args.stop_after_step,
            stop_after_minutes=args.stop_after_minutes,
        )
    except ResumeError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0 if finished else EXIT_STOPPED


def check_overrides(argv: List[str]) -> List[str]:
    """Check that ``argv`` (what argparse did not recognise) are ``--section.key value`` pairs."""
    for arg in argv:
        if arg.startswith("--") and "." not in arg.split("=", 1)[0]:
            raise ValueError(f"unrecognized argument: {arg}")
    return argv


def _resume_value(value: str) -> str:
    """``--resume``'s value: "yes", "no" (also true/false, 1/0) or "auto"."""
    word = str(value).strip().lower()
    if word in ("yes", "true", "1"):
        return "yes"
    if word in ("no", "false", "0", ""):
        return "no"
    if word == "auto":
        return "auto"
    raise argparse.ArgumentTypeError(f"--resume takes yes, no or auto, not {value!r}")
