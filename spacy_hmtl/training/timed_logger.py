"""``spacy_hmtl.TimedConsoleLogger.v1``: spaCy's console logger whose JSONL file also
records the wall time of each evaluation.

spaCy's ``ConsoleLogger.v3`` writes one JSON line per evaluation (step, losses, scores) but
no time, so a learning curve against wall time cannot be drawn from it. This logger prints
the same console table (it runs ``ConsoleLogger.v3`` for that) and writes its own JSONL
file with every numeric score of the evaluation (in percent, as v3 does) and ``seconds``:
the wall time since training started, evaluations included. ``read_train_log`` of the
development package (``spacy_hmtl_dev.train_log``, in a checkout) reads both formats.
"""
import time
from pathlib import Path
from typing import IO, Any, Callable, Dict, Optional, Tuple, Union

import srsly
from spacy.language import Language
from spacy.util import registry


@registry.loggers("spacy_hmtl.TimedConsoleLogger.v1")
def make_timed_console_logger(
    progress_bar: Optional[str] = None,
    console_output: bool = True,
    output_file: Optional[Union[str, Path]] = None,
) -> Callable:
    """Create the logger.

    progress_bar (Optional[str]): as ``spacy.ConsoleLogger.v3`` ("train", "eval" or None).
    console_output (bool): print the console table.
    output_file (Optional[Union[str, Path]]): the JSONL file (one line per evaluation, with
        ``seconds``); None writes none.
    """
    console = registry.loggers.get("spacy.ConsoleLogger.v3")(
        progress_bar=progress_bar, console_output=console_output, output_file=None
    )

    def setup(nlp: Language, stdout: IO = None, stderr: IO = None) -> Tuple[Callable, Callable]:
        import sys

        log_console, finalize_console = console(nlp, stdout or sys.stdout, stderr or sys.stderr)
        start = time.perf_counter()
        stream = None
        if output_file is not None:
            path = Path(output_file)
            path.parent.mkdir(parents=True, exist_ok=True)
            stream = path.open("w", encoding="utf8")

        def log_step(info: Optional[Dict[str, Any]]) -> None:
            log_console(info)
            if info is None or stream is None:
                return
            scores = {
                key: float(value) * (1 if key == "speed" else 100)
                for key, value in info["other_scores"].items()
                if isinstance(value, (int, float)) and not isinstance(value, bool)
            }
            record = {
                "epoch": info["epoch"],
                "step": info["step"],
                "seconds": round(time.perf_counter() - start, 2),
                "losses": {name: float(loss) for name, loss in info["losses"].items()},
                "scores": scores,
                "score": float(info["score"]),
            }
            stream.write(srsly.json_dumps(record) + "\n")
            stream.flush()

        def finalize() -> None:
            finalize_console()
            if stream is not None:
                stream.close()

        return log_step, finalize

    return setup
