"""Bjontegaard delta rate (BD-rate): how much more rate one codec spends than another for the same
quality, averaged over the quality range both reach (VCEG-M33, the measure codec comparisons quote).

Each codec's points (rate, metric) become a curve log(rate) = P(metric), P a least-squares
polynomial of degree 3 (fewer with fewer than 4 points, as in the original); the mean gap between
the two curves over the metric range both cover, exp(mean gap) - 1, is the BD-rate in percent:
-50 means the test codec needs half the reference's rate for the same metric, +100 twice it.
The metric may be better high (PSNR, CSIM) or better low (AKD): the gap is taken at equal metric
values either way. Where the ranges do not overlap, or a codec has fewer than two distinct metric
values, there is no number, and `note` says why instead.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MAX_DEGREE = 3


@dataclass
class BdRate:
    percent: float | None            # None: no overlap or too few points (see note)
    overlap: tuple[float, float] | None
    note: str


def _fit(rates: np.ndarray, metric: np.ndarray) -> np.ndarray:
    """Polynomial coefficients of log(rate) against metric (highest power first)."""
    degree = min(MAX_DEGREE, len(np.unique(metric)) - 1)
    return np.polyfit(metric, np.log(rates), degree)


def _mean_over(coef: np.ndarray, lo: float, hi: float) -> float:
    integral = np.polyint(coef)
    return float((np.polyval(integral, hi) - np.polyval(integral, lo)) / (hi - lo))


def bd_rate(reference: list[tuple[float, float]], test: list[tuple[float, float]], metric: str = "metric") -> BdRate:
    """reference, test: [(rate, metric value), ...] (rates > 0; points with a None metric are left
    out) -> the test's BD-rate against the reference in percent, or None with the reason."""
    curves = []
    for name, points in (("reference", reference), ("test", test)):
        kept = np.array([(r, m) for r, m in points if m is not None and r is not None and r > 0 and np.isfinite(m)],
                        dtype=float).reshape(-1, 2)
        if len(np.unique(kept[:, 1])) < 2:
            return BdRate(None, None, f"the {name} has {len(np.unique(kept[:, 1]))} distinct {metric} value(s): "
                                      "a curve needs two or more")
        curves.append(kept)
    (ref, tst) = curves
    lo, hi = max(ref[:, 1].min(), tst[:, 1].min()), min(ref[:, 1].max(), tst[:, 1].max())
    if lo >= hi:
        return BdRate(None, None, f"the {metric} ranges do not overlap (reference {ref[:, 1].min():.4g}..{ref[:, 1].max():.4g}, "
                                  f"test {tst[:, 1].min():.4g}..{tst[:, 1].max():.4g})")
    gap = _mean_over(_fit(tst[:, 0], tst[:, 1]), lo, hi) - _mean_over(_fit(ref[:, 0], ref[:, 1]), lo, hi)
    return BdRate(float(100 * (np.exp(gap) - 1)), (float(lo), float(hi)),
                  f"over {metric} {lo:.4g}..{hi:.4g}, where both curves lie")
