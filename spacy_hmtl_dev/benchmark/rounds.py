"""The one way the benchmark compares two speeds: alternating rounds, a ratio per round.

Two things timed back to back in a round (``a`` then ``b``, ``b`` then ``a`` in the next
round: a machine that slows down or speeds up during a run favours neither) give one ratio
per round, ``a``'s words/s over ``b``'s. Reported: the median of the per-round ratios and
their spread (min–max and the interquartile range), next to the median words/s of each.
A ratio of medians hides how much the rounds disagree; with the spread beside it, a 1.14x
whose rounds all lie above 1 reads differently from a 0.995x whose rounds straddle it.
On a machine running other work the rounds scatter widely: read the spread before the median.

Used by ``speed`` (each HMTL pipeline against the stock pipeline) and ``parallel`` (N
processes against one). Standard library only.
"""
import statistics
from typing import Any, Dict, Sequence, Tuple, TypeVar

T = TypeVar("T")


def round_order(round_index: int, first: T, second: T) -> Tuple[T, T]:
    """The two things of a round in the order to time them: ``first`` first in even
    rounds (0, 2, ...), ``second`` first in odd ones."""
    return (first, second) if round_index % 2 == 0 else (second, first)


def quartiles(values: Sequence[float]) -> Tuple[float, float, float]:
    """The first quartile, median and third quartile of ``values``, interpolated linearly
    between the sorted values (``numpy.percentile``'s default; ``statistics.quantiles``'
    "inclusive" method): for n values, quartile q sits at position ``q * (n - 1) / 4``
    counting from 0. One value is its own quartiles.

    RAISES ValueError: no values.
    """
    if not values:
        raise ValueError("quartiles of no values")
    if len(values) == 1:
        return float(values[0]), float(values[0]), float(values[0])
    q1, q2, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return float(q1), float(q2), float(q3)


def ratio_summary(wps: Sequence[float], reference_wps: Sequence[float], digits: int = 3) -> Dict[str, Any]:
    """The per-round ratios ``wps[i] / reference_wps[i]`` and their summary.

    wps (Sequence[float]): words/s of the thing measured, one per round.
    reference_wps (Sequence[float]): words/s of the reference in the same rounds.
    digits (int): decimals of the ratios reported.
    RETURNS (Dict[str, Any]): ``rounds`` (the ratios, in round order), ``n_rounds``,
        ``median``, ``min``, ``max``, ``q1``, ``q3`` (computed from the unrounded ratios).
    RAISES ValueError: no rounds, the two of different lengths, or a words/s that is not
        positive.
    """
    if len(wps) != len(reference_wps):
        raise ValueError(f"{len(wps)} rounds against {len(reference_wps)} rounds of the reference")
    if not wps:
        raise ValueError("a ratio of no rounds")
    if min(list(wps) + list(reference_wps)) <= 0:
        raise ValueError("words/s must be positive")
    ratios = [a / b for a, b in zip(wps, reference_wps)]
    q1, median, q3 = quartiles(ratios)
    return {
        "rounds": [round(r, digits) for r in ratios],
        "n_rounds": len(ratios),
        "median": round(median, digits),
        "min": round(min(ratios), digits),
        "max": round(max(ratios), digits),
        "q1": round(q1, digits),
        "q3": round(q3, digits),
    }


def spread_text(summary: Dict[str, Any], digits: int = 2) -> str:
    """A ratio summary's spread as a table cell: ``min–max (IQR q1–q3)``."""

    def f(x: float) -> str:
        return f"{x:.{digits}f}"

    return f"{f(summary['min'])}–{f(summary['max'])} (IQR {f(summary['q1'])}–{f(summary['q3'])})"

