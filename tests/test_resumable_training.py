"""``python -m spacy_hmtl train``: spaCy's training, stoppable and resumable.

A run stopped at an evaluation and resumed from its checkpoint must end with the weights, the
dev scores at every evaluation, ``model-best`` and the training log of the run that never
stopped: dropout (random state), averaged weights and a warm-up + decay schedule (optimizer
state) and several epochs (the shuffled batch order) are all on, so that any of them not
restored changes the result.
"""
import json
from pathlib import Path

import pytest
import spacy
from spacy.cli.train import train as spacy_train

from helpers import PIPE_NAMES, TINY_CONFIG, reference_docs, write_docbin
from spacy_hmtl.cli import main
from spacy_hmtl.train_command import EXIT_STOPPED

OPTIMIZER = """[training.optimizer]
@optimizers = "Adam.v1"
learn_rate = 0.01
use_averages = false
grad_clip = 5.0
"""
LOGGER = '@loggers = "spacy.ConsoleLogger.v1"\nprogress_bar = false\n'
SCHEDULED_OPTIMIZER = """[training.optimizer]
@optimizers = "Adam.v1"
use_averages = true
grad_clip = 5.0

[training.optimizer.learn_rate]
@schedules = "warmup_linear.v1"
initial_rate = 0.03
warmup_steps = 4
total_steps = 24
"""


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """train/dev DocBins of the reference docs and the tiny config with dropout, averages and a schedule."""
    root = tmp_path_factory.mktemp("resumable")
    docs = reference_docs(spacy.blank("en").vocab)
    write_docbin(root / "train.spacy", docs)
    write_docbin(root / "dev.spacy", docs)
    assert OPTIMIZER in TINY_CONFIG
    config = TINY_CONFIG.replace(OPTIMIZER, SCHEDULED_OPTIMIZER).replace("dropout = 0.0\naccumulate", "dropout = 0.2\naccumulate")
    # a logger whose JSONL has every evaluation's scores and is written as it goes
    config = config.replace(LOGGER, '@loggers = "spacy_hmtl.TimedConsoleLogger.v1"\nprogress_bar = null\noutput_file = null\n')
    assert "TimedConsoleLogger" in config and "dropout = 0.2" in config
    (root / "tiny.cfg").write_text(config, encoding="utf8")
    return root


def args(corpus: Path, output: Path, *extra: str) -> list:
    return [
        "train", str(corpus / "tiny.cfg"), "--output", str(output),
        "--paths.train", str(corpus / "train.spacy"), "--paths.dev", str(corpus / "dev.spacy"),
        "--training.max_steps", "24", "--training.eval_frequency", "6",
        "--training.logger.output_file", str(output / "log.jsonl"),
        *extra,
    ]


def weights(model_dir: Path) -> dict:
    nlp = spacy.load(model_dir)
    return {name: nlp.get_pipe(name).model.to_bytes() for name in PIPE_NAMES}


def evaluations(log: Path) -> list:
    lines = [json.loads(line) for line in log.read_text(encoding="utf8").splitlines()]
    for line in lines:  # wall time and words/s differ from run to run
        line.pop("seconds")
        line["scores"].pop("speed")
    return lines


def test_a_stopped_and_resumed_run_ends_as_the_uninterrupted_one(corpus, tmp_path):
    whole, split = tmp_path / "whole", tmp_path / "split"
    assert main(args(corpus, whole)) == 0
    assert main(args(corpus, split, "--stop-after-step", "8")) == EXIT_STOPPED
    # stopped at the first evaluation at or after step 8: step 12, with a checkpoint
    assert [e["step"] for e in evaluations(split / "log.jsonl")] == [0, 6, 12]
    assert (split / "checkpoint" / "state.json").exists() and (split / "model-last").exists()
    assert main(args(corpus, split, "--resume")) == 0

    assert weights(split / "model-last") == weights(whole / "model-last")
    assert weights(split / "model-best") == weights(whole / "model-best")
    # every evaluation, the three before the stop included, in one log
    assert evaluations(split / "log.jsonl") == evaluations(whole / "log.jsonl")
    # and its wall time goes on rising across the resumption
    seconds = [json.loads(line)["seconds"] for line in (split / "log.jsonl").read_text(encoding="utf8").splitlines()]
    assert seconds == sorted(seconds)
    assert [e["step"] for e in evaluations(whole / "log.jsonl")] == [0, 6, 12, 18, 24]
    # the scores moved: the comparison is not between two untrained pipelines
    scores = [e["score"] for e in evaluations(whole / "log.jsonl")]
    assert scores[-1] > scores[0]


def test_a_resumed_logs_seconds_continue_from_the_evaluations_before_it():
    from spacy_hmtl.training.resumable import continued_log

    prefix = '{"step":0,"seconds":10.0,"score":0.1}\n{"step":6,"seconds":70.5,"score":0.2}\n'
    resumed = '{"step":12,"seconds":40.25,"score":0.3}\nnot json\n'
    lines = continued_log(prefix, resumed).splitlines()
    assert lines[:2] == prefix.splitlines()
    assert json.loads(lines[2]) == {"step": 12, "seconds": 110.75, "score": 0.3}
    assert lines[3] == "not json"
    # nothing before the resumption (or no seconds in it): the resumed lines as they are
    assert continued_log("", resumed) == resumed


def test_a_run_resumed_twice_ends_as_the_uninterrupted_one(corpus, tmp_path):
    whole, split = tmp_path / "whole", tmp_path / "split"
    assert main(args(corpus, whole)) == 0
    assert main(args(corpus, split, "--stop-after-step", "6")) == EXIT_STOPPED
    assert main(args(corpus, split, "--resume", "--stop-after-step", "18")) == EXIT_STOPPED
    assert main(args(corpus, split, "--resume")) == 0
    assert weights(split / "model-last") == weights(whole / "model-last")
    assert evaluations(split / "log.jsonl") == evaluations(whole / "log.jsonl")


def test_the_loop_trains_as_spacy_train(corpus, tmp_path):
    assert main(args(corpus, tmp_path / "ours")) == 0
    overrides = {
        "paths.train": str(corpus / "train.spacy"), "paths.dev": str(corpus / "dev.spacy"),
        "training.max_steps": 24, "training.eval_frequency": 6,
        "training.logger.output_file": str(tmp_path / "spacy" / "log.jsonl"),
    }
    spacy_train(corpus / "tiny.cfg", tmp_path / "spacy", overrides=overrides)
    assert weights(tmp_path / "ours" / "model-last") == weights(tmp_path / "spacy" / "model-last")
    assert evaluations(tmp_path / "ours" / "log.jsonl") == evaluations(tmp_path / "spacy" / "log.jsonl")


def test_resuming_refuses_another_config_or_a_missing_checkpoint(corpus, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(args(corpus, out, "--resume")) == 1
    assert "no checkpoint to resume from" in capsys.readouterr().err
    assert main(args(corpus, out, "--stop-after-step", "0")) == EXIT_STOPPED
    assert main(args(corpus, out, "--resume", "--training.dropout", "0.3")) == 1
    assert "trained from another config" in capsys.readouterr().err
    # the refused resume changed nothing: resuming with the right config still works
    assert main(args(corpus, out, "--resume")) == 0


def test_resume_auto_starts_fresh_without_a_checkpoint_and_resumes_with_one(corpus, tmp_path):
    """--resume auto: the same command runs a fresh run, then, once stopped, continues it; the
    run ends as the uninterrupted one (model-last weight for weight)."""
    out = tmp_path / "auto"
    assert main(args(corpus, out, "--resume", "auto", "--stop-after-step", "6")) == EXIT_STOPPED
    assert (out / "checkpoint" / "state.json").exists()
    assert main(args(corpus, out, "--resume", "auto")) == 0
    assert main(args(corpus, tmp_path / "whole")) == 0
    assert weights(out / "model-last") == weights(tmp_path / "whole" / "model-last")


def test_a_finished_run_extended_with_more_steps_ends_as_the_longer_run(corpus, tmp_path, capsys):
    whole, extended = tmp_path / "whole", tmp_path / "extended"
    assert main(args(corpus, whole)) == 0
    # a run that finished at 12 steps (not stopped), then given 24
    assert main(args(corpus, extended, "--training.max_steps", "12")) == 0
    last_at_12 = weights(extended / "model-last")
    assert main(args(corpus, extended, "--resume")) == 0
    assert weights(extended / "model-last") != last_at_12
    assert weights(extended / "model-last") == weights(whole / "model-last")
    assert weights(extended / "model-best") == weights(whole / "model-best")
    assert evaluations(extended / "log.jsonl") == evaluations(whole / "log.jsonl")
    # the saved pipeline's config says how long it trained
    assert spacy.load(extended / "model-last").config["training"]["max_steps"] == 24
    capsys.readouterr()
    # resuming a run that ended trains nothing (not one step past its end) and writes nothing
    written = {path: path.stat().st_mtime_ns for path in extended.rglob("*") if path.is_file()}
    assert main(args(corpus, extended, "--resume")) == 0
    assert {path: path.stat().st_mtime_ns for path in extended.rglob("*") if path.is_file()} == written
    # a max_steps at or before the checkpoint's step is refused, not silently one step more
    assert main(args(corpus, extended, "--resume", "--training.max_steps", "18")) == 1
    assert "would end the run before it" in " ".join(capsys.readouterr().err.split())


def test_a_run_logged_by_spacys_console_logger_keeps_every_evaluation_across_a_resume(corpus, tmp_path):
    # spaCy's ConsoleLogger.v3 buffers its JSONL and will not write to a file that exists:
    # the loop runs it as TimedConsoleLogger, so the stopped run's lines reach the checkpoint
    # and the resumed run's are written
    spacy_logger = '@loggers = "spacy.ConsoleLogger.v3"\nprogress_bar = null\noutput_file = null\n'
    config = (corpus / "tiny.cfg").read_text(encoding="utf8").replace(
        '@loggers = "spacy_hmtl.TimedConsoleLogger.v1"\nprogress_bar = null\noutput_file = null\n', spacy_logger
    )
    assert spacy_logger in config
    (tmp_path / "spacy_logger.cfg").write_text(config, encoding="utf8")
    run = args(corpus, tmp_path / "run")
    run[1] = str(tmp_path / "spacy_logger.cfg")
    assert main(run + ["--stop-after-step", "8"]) == EXIT_STOPPED
    state = json.loads((tmp_path / "run" / "checkpoint" / "state.json").read_text(encoding="utf8"))
    assert [json.loads(line)["step"] for line in state["log"].splitlines()] == [0, 6, 12]
    assert main(run + ["--resume"]) == 0
    lines = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text(encoding="utf8").splitlines()]
    assert [line["step"] for line in lines] == [0, 6, 12, 18, 24]
    # spaCy's lines (scores in percent), plus the wall time
    assert {"epoch", "step", "losses", "scores", "score", "seconds"} <= set(lines[-1])
    # the saved pipeline's config keeps the logger it was given
    assert spacy.load(tmp_path / "run" / "model-last").config["training"]["logger"]["@loggers"] == "spacy.ConsoleLogger.v3"


def test_the_end_of_a_run_is_max_steps_or_patience():
    from spacy_hmtl.training.resumable import run_ended

    results = [(0.1, 0), (0.5, 6), (0.4, 12)]
    assert run_ended(12, results, {"max_steps": 12, "patience": 0})
    assert not run_ended(12, results, {"max_steps": 24, "patience": 0})
    assert not run_ended(12, results, {"max_steps": 0, "patience": 7})  # best at 6: 6 steps since
    assert run_ended(12, results, {"max_steps": 0, "patience": 6})
    # equal best scores: the earliest counts, as spaCy's loop's patience
    assert run_ended(12, [(0.5, 0), (0.5, 6)], {"max_steps": 0, "patience": 12})


def test_train_rejects_options_that_are_not_config_overrides(corpus, tmp_path):
    with pytest.raises(SystemExit):
        main(args(corpus, tmp_path / "run", "--no-such-option"))
    with pytest.raises(SystemExit):  # only `train` takes overrides
        main(["evaluate", "model", "test.spacy", "--paths.train", "x"])


def test_resume_takes_the_value_a_project_variable_passes():
    """project.yml runs `--resume ${vars.resume}` ("no" by default, `--vars.resume yes` to
    continue): `--resume` alone, `--resume yes` and `--resume no` parse, anything else is a
    usage error before any work."""
    from spacy_hmtl.cli import build_parser

    parser = build_parser()

    def resume(*extra: str) -> str:
        args, _ = parser.parse_known_args(["train", "c.cfg", "--output", "out", *extra])
        return args.resume

    assert resume() == "no"
    assert resume("--resume") == "yes"
    assert resume("--resume", "--training.dropout", "0.3") == "yes"
    assert resume("--resume", "yes") == "yes"
    assert resume("--resume", "no") == "no"
    assert resume("--resume", "auto") == "auto"
    with pytest.raises(SystemExit):
        resume("--resume", "maybe")


def test_train_threads_sets_torchs_threads_and_refuses_zero(tmp_path, capsys):
    """`python -m spacy_hmtl train --threads N` sets torch's thread count before any work
    (here the missing config ends the run); 0 is a usage error."""
    import torch

    from spacy_hmtl.cli import main

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        assert main(["train", str(tmp_path / "none.cfg"), "--output", str(tmp_path / "out"), "--threads", "1"]) == 1
        assert torch.get_num_threads() == 1
        assert "no such config file" in capsys.readouterr().err
        with pytest.raises(SystemExit):
            main(["train", str(tmp_path / "none.cfg"), "--output", str(tmp_path / "out"), "--threads", "0"])
        assert "--threads must be at least 1" in capsys.readouterr().err
    finally:
        torch.set_num_threads(before)
