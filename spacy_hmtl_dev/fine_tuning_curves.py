"""Dev curves of each fine-tuned config beside its frozen-MiniLM config, from the committed
training logs (``scripts/plot_fine_tuning_curves.py``): the pairs of ``docs/ACCURACY.md``'s
frozen / fine-tuned tables, seed 0 both.
"""
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from .benchmarking import CurvePoint, plot_dev_curves
from .train_log import read_train_log

# corpus -> (panels, [(line name, log file)]): frozen first, then fine-tuned
PAIRS: Dict[str, Tuple[List[Tuple[str, str]], List[Tuple[str, str]]]] = {
    "conll04": (
        [("ents_f", "entities F1"), ("rel_strict_f", "strict relations F1")],
        [
            ("conll04_trf.cfg (frozen)", "conll04_trf_seed0_1000.jsonl"),
            ("conll04_ft.cfg (fine-tuned)", "conll04_ft_seed0_1000.jsonl"),
        ],
    ),
    "scierc": (
        [("ents_f", "entities F1"), ("rel_micro_f", "relations F1 (boundaries)"), ("coref_f", "coref CoNLL avg F1")],
        [
            ("scierc_trf.cfg (frozen)", "scierc_trf_match20_seed0_1400.jsonl"),
            ("scierc_ft.cfg (fine-tuned)", "scierc_ft_seed0_1200.jsonl"),
        ],
    ),
    "litbank": (
        [("coref_f", "coref CoNLL avg F1"), ("ents_f", "entities F1"), ("mentions_f", "mentions F1")],
        [
            ("litbank_trf.cfg (frozen)", "litbank_trf_match20_seed0_2000.jsonl"),
            ("litbank_ft.cfg (fine-tuned)", "litbank_ft_seed0.jsonl"),
        ],
    ),
    # the general pipeline: CoNLL04 dev for entities and relations, LitBank's first 5 dev
    # documents for mentions and coreference
    "mixed": (
        [("ents_f", "entities F1 (CoNLL04)"), ("rel_strict_f", "strict relations F1 (CoNLL04)"), ("mentions_f", "mentions F1 (LitBank)"), ("coref_f", "coref CoNLL avg F1 (LitBank)")],
        [
            ("mixed_trf.cfg (frozen)", "mixed_trf_seed0_2000.jsonl"),
            ("mixed_ft.cfg (fine-tuned)", "mixed_ft_seed0.jsonl"),
        ],
    ),
}


def curves_of(logs: Path, lines: Sequence[Tuple[str, str]], panels: Sequence[Tuple[str, str]]) -> Optional[Dict[str, Dict[str, List[CurvePoint]]]]:
    """line name -> panel key -> (step, seconds, F1 in percent); None when a log is missing."""
    curves: Dict[str, Dict[str, List[CurvePoint]]] = {}
    for name, filename in lines:
        path = logs / filename
        if not path.exists():
            print(f"{path}: not found, skipped", file=sys.stderr)
            return None
        rows = read_train_log(path)
        curves[name] = {
            key: [(float(r["step"] or 0), r.get("seconds"), 100 * float(r[key])) for r in rows if r.get(key) is not None]
            for key, _ in panels
        }
    return curves


def write_plots(logs: Path, output: str) -> List[str]:
    """``OUTPUT_CORPUS_dev_steps.png`` and ``_dev_time.png`` for each corpus whose two logs
    are under ``logs``: the frozen config dashed, the fine-tuned one solid.

    RETURNS (List[str]): the files written ([] without matplotlib or without any pair).
    """
    written: List[str] = []
    for corpus, (panels, lines) in PAIRS.items():
        curves = curves_of(logs, lines, panels)
        if curves is None:
            continue
        written += plot_dev_curves(
            curves, panels, Path(f"{output}_{corpus}"), line_style=lambda name: "--" if "frozen" in name else "-"
        )
    return written
