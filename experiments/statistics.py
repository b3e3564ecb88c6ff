"""Paired statistics and reproduction verdicts for the paper's claims.

Design: methods are compared over *units* (one unit = one fold x seed). Within a unit both
methods start from the same initial weights and see the same batches, so the comparison is
paired: we look at the per-unit differences ``a - b``, summarise them by their mean with a
t-based confidence interval, and test them with the Wilcoxon signed-rank test.

A claim gets one of three verdicts:

* ``"reproduced"``: the confidence interval excludes 0 (or the threshold) on the side the
  paper claims;
* ``"not reproduced"``: the interval excludes 0 (or the threshold) on the other side;
* ``"inconclusive"``: the interval contains 0 (or the threshold), or cannot be computed.

Pure numpy / scipy / pandas: no TensorFlow import.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

REPRODUCED = "reproduced"
NOT_REPRODUCED = "not reproduced"
INCONCLUSIVE = "inconclusive"
VERDICTS = (REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE)

__all__ = [
    "REPRODUCED",
    "NOT_REPRODUCED",
    "INCONCLUSIVE",
    "VERDICTS",
    "Interval",
    "PairedComparison",
    "mean_ci",
    "paired_difference",
    "wilcoxon_p",
    "verdict",
    "threshold_verdict",
    "paired_table",
    "format_interval",
    "format_comparison",
]


def _fmt_number(x: float, digits: int, signed: bool) -> str:
    if x is None or not math.isfinite(x):
        return "n/a" if x is None or math.isnan(x) else f"{x}"
    return f"{x:+.{digits}f}" if signed else f"{x:.{digits}f}"


def _fmt_p(p: float) -> str:
    if p is None or math.isnan(p):
        return "p=n/a"
    return "p<0.001" if p < 0.001 else f"p={p:.3f}"


@dataclass(frozen=True)
class Interval:
    """A mean over ``n`` units with its two-sided t confidence interval ``[low, high]``.

    ``std`` is the sample standard deviation (ddof=1). With ``n < 2`` the bounds (and std)
    are NaN; with ``n == 0`` the mean is NaN too.
    """

    mean: float
    low: float
    high: float
    n: int
    std: float
    confidence: float = 0.95

    def as_dict(self) -> dict[str, Any]:
        """Flat dict for a CSV row: mean, ci_low, ci_high, n, std, confidence."""
        return {
            "mean": self.mean,
            "ci_low": self.low,
            "ci_high": self.high,
            "n": self.n,
            "std": self.std,
            "confidence": self.confidence,
        }

    def format(self, digits: int = 2, signed: bool = False) -> str:
        """Markdown text such as ``1.23 [0.40, 2.06], n=30``."""
        return format_interval(self, digits=digits, signed=signed)

    def __str__(self) -> str:
        return self.format()


@dataclass(frozen=True)
class PairedComparison:
    """Paired comparison of ``a`` against ``b`` over the units present in both.

    ``difference`` is the :class:`Interval` of the per-unit differences ``a - b``;
    ``p_value`` the two-sided Wilcoxon signed-rank p-value (see :func:`wilcoxon_p`);
    ``n_greater`` / ``n_less`` the numbers of units with ``a > b`` / ``a < b``.
    """

    difference: Interval
    p_value: float
    n_greater: int
    n_less: int

    @property
    def mean(self) -> float:
        return self.difference.mean

    @property
    def low(self) -> float:
        return self.difference.low

    @property
    def high(self) -> float:
        return self.difference.high

    @property
    def n(self) -> int:
        return self.difference.n

    @property
    def confidence(self) -> float:
        return self.difference.confidence

    def as_dict(self) -> dict[str, Any]:
        """Flat dict for a CSV row: mean_difference, ci_low, ci_high, std, n, p_value, ..."""
        return {
            "mean_difference": self.mean,
            "ci_low": self.low,
            "ci_high": self.high,
            "std": self.difference.std,
            "n": self.n,
            "p_value": self.p_value,
            "n_greater": self.n_greater,
            "n_less": self.n_less,
            "confidence": self.confidence,
        }

    def format(self, digits: int = 2) -> str:
        """Markdown text such as ``+1.23 [0.40, 2.06], p=0.012, n=30``."""
        return format_comparison(self, digits=digits)

    def __str__(self) -> str:
        return self.format()


def format_interval(interval: Interval, digits: int = 2, signed: bool = False) -> str:
    """``"1.23 [0.40, 2.06], n=30"`` (``signed=True`` gives ``"+1.23 ..."``); NaN shows as n/a."""
    return (
        f"{_fmt_number(interval.mean, digits, signed)} "
        f"[{_fmt_number(interval.low, digits, False)}, {_fmt_number(interval.high, digits, False)}]"
        f", n={interval.n}"
    )


def format_comparison(comparison: PairedComparison, digits: int = 2) -> str:
    """``"+1.23 [0.40, 2.06], p=0.012, n=30"``; p below 0.001 shows as ``p<0.001``."""
    d = comparison.difference
    return (
        f"{_fmt_number(d.mean, digits, True)} "
        f"[{_fmt_number(d.low, digits, False)}, {_fmt_number(d.high, digits, False)}]"
        f", {_fmt_p(comparison.p_value)}, n={d.n}"
    )


def _check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")


def mean_ci(values: Iterable[float] | np.ndarray | pd.Series, confidence: float = 0.95) -> Interval:
    """Mean of ``values`` (NaN ignored) with a two-sided Student-t confidence interval.

    ``mean ± t_{(1+confidence)/2, n-1} * std / sqrt(n)``, std with ddof=1. Fewer than two
    values give NaN bounds and std. A zero std gives the degenerate interval ``[mean, mean]``.
    """
    _check_confidence(confidence)
    x = np.asarray(values, dtype=float).ravel()
    x = x[~np.isnan(x)]
    n = int(x.size)
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, 0, math.nan, confidence)
    mean = float(np.mean(x))
    if n < 2:
        return Interval(mean, math.nan, math.nan, n, math.nan, confidence)
    std = float(np.std(x, ddof=1))
    half = float(stats.t.ppf(0.5 + confidence / 2.0, df=n - 1)) * std / math.sqrt(n)
    return Interval(mean, mean - half, mean + half, n, std, confidence)


def wilcoxon_p(differences: Iterable[float] | np.ndarray) -> float:
    """Two-sided Wilcoxon signed-rank p-value of paired differences (NaN ignored).

    Calls ``scipy.stats.wilcoxon(d)`` with its defaults (zero differences dropped,
    ``zero_method="wilcox"``). Edge cases: fewer than 2 units -> NaN (no test possible);
    every difference exactly 0 -> 1.0 (no evidence of any difference).
    """
    d = np.asarray(differences, dtype=float).ravel()
    d = d[~np.isnan(d)]
    if d.size < 2:
        return math.nan
    if np.all(d == 0):
        return 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy warns about zeros / ties / small samples
        return float(stats.wilcoxon(d, alternative="two-sided").pvalue)


def _aligned(a, b) -> tuple[np.ndarray, np.ndarray]:
    a_series, b_series = isinstance(a, pd.Series), isinstance(b, pd.Series)
    if a_series != b_series:
        raise TypeError("a and b must both be pandas Series (aligned by index) or both arrays")
    if a_series:
        for name, s in (("a", a), ("b", b)):
            if s.index.has_duplicates:
                raise ValueError(f"{name} has duplicate units in its index")
        both = pd.concat([a.rename("a"), b.rename("b")], axis=1, join="inner")
        x, y = both["a"].to_numpy(dtype=float), both["b"].to_numpy(dtype=float)
    else:
        x, y = np.asarray(a, dtype=float).ravel(), np.asarray(b, dtype=float).ravel()
        if x.shape != y.shape:
            raise ValueError(f"a and b have different lengths: {x.size} vs {y.size}")
    keep = ~(np.isnan(x) | np.isnan(y))
    return x[keep], y[keep]


def paired_difference(
    a: Sequence[float] | np.ndarray | pd.Series, b: Sequence[float] | np.ndarray | pd.Series, confidence: float = 0.95
) -> PairedComparison:
    """Paired comparison of ``a - b`` over units.

    ``a`` and ``b`` are either position-aligned arrays of equal length or pandas Series
    indexed by unit (aligned on the index; units missing from either are dropped). Units
    where either value is NaN are dropped. Returns the mean difference with its t CI
    (:func:`mean_ci` of the differences), the Wilcoxon p-value (:func:`wilcoxon_p`: NaN for
    fewer than 2 units, 1.0 if all differences are 0) and the counts of ``a > b`` / ``a < b``.
    """
    x, y = _aligned(a, b)
    d = x - y
    return PairedComparison(
        difference=mean_ci(d, confidence),
        p_value=wilcoxon_p(d),
        n_greater=int(np.sum(d > 0)),
        n_less=int(np.sum(d < 0)),
    )


def verdict(comparison: PairedComparison | Interval, expected_sign: int = 1) -> str:
    """Verdict of a paired claim "a - b has sign ``expected_sign``" (+1 or -1).

    ``"reproduced"`` if the CI excludes 0 on the expected side, ``"not reproduced"`` if it
    excludes 0 on the opposite side, ``"inconclusive"`` if it contains 0 or is NaN.
    """
    if expected_sign not in (1, -1):
        raise ValueError(f"expected_sign must be +1 or -1, got {expected_sign!r}")
    low, high = comparison.low, comparison.high
    if math.isnan(low) or math.isnan(high):
        return INCONCLUSIVE
    if low > 0:
        observed = 1
    elif high < 0:
        observed = -1
    else:
        return INCONCLUSIVE
    return REPRODUCED if observed == expected_sign else NOT_REPRODUCED


def threshold_verdict(
    values: Iterable[float] | np.ndarray | pd.Series,
    threshold: float,
    expected: str = "below",
    confidence: float = 0.95,
) -> str:
    """Verdict of a one-sample claim "the mean of ``values`` is ``expected`` ``threshold``".

    ``expected`` is ``"below"`` or ``"above"``. Uses :func:`mean_ci`: ``"reproduced"`` if the
    whole CI lies strictly on the expected side, ``"not reproduced"`` if it lies strictly on
    the other side, ``"inconclusive"`` otherwise (CI contains the threshold, or NaN).
    """
    if expected not in ("below", "above"):
        raise ValueError(f"expected must be 'below' or 'above', got {expected!r}")
    ci = mean_ci(values, confidence)
    if math.isnan(ci.low) or math.isnan(ci.high):
        return INCONCLUSIVE
    below, above = ci.high < threshold, ci.low > threshold
    if not (below or above):
        return INCONCLUSIVE
    return REPRODUCED if (below if expected == "below" else above) else NOT_REPRODUCED


def paired_table(
    per_unit: pd.DataFrame,
    metric: str,
    baseline: str,
    methods: Iterable[str] | None = None,
    unit_cols: Sequence[str] | str = ("fold", "seed"),
    method_col: str = "method",
    expected_sign: int | Mapping[str, int] = 1,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """One row per method: paired comparison of ``metric`` (method - baseline) over units.

    ``per_unit`` is long-format: one row per (unit, method) with columns ``unit_cols``,
    ``method_col`` and ``metric``. ``methods`` defaults to every method except the baseline,
    in order of appearance. ``expected_sign`` is +1 ("method is higher"), -1, or a mapping
    method -> sign. Columns: method, baseline, metric, method_mean, baseline_mean (over the
    paired units), mean_difference, ci_low, ci_high, std, n, p_value, n_greater, n_less,
    confidence, expected_sign, verdict, summary (Markdown text).
    """
    unit_cols = [unit_cols] if isinstance(unit_cols, str) else list(unit_cols)
    if not unit_cols:
        raise ValueError("unit_cols must name at least one column")
    missing_cols = [c for c in [*unit_cols, method_col, metric] if c not in per_unit.columns]
    if missing_cols:
        raise KeyError(f"per_unit lacks columns {missing_cols}")
    keys = [*unit_cols, method_col]
    if per_unit.duplicated(keys).any():
        raise ValueError(f"per_unit has several rows for the same {keys}")
    present = list(dict.fromkeys(per_unit[method_col]))
    methods = [m for m in present if m != baseline] if methods is None else list(methods)
    absent = [m for m in [baseline, *methods] if m not in present]
    if absent:
        raise KeyError(f"methods not in per_unit[{method_col!r}]: {absent}")

    def series(method: str) -> pd.Series:
        rows = per_unit[per_unit[method_col] == method]
        return rows.set_index(unit_cols)[metric].astype(float)

    base = series(baseline)
    rows = []
    for method in methods:
        sign = expected_sign.get(method, 1) if isinstance(expected_sign, Mapping) else expected_sign
        values = series(method)
        comparison = paired_difference(values, base, confidence)
        paired = pd.concat([values.rename("m"), base.rename("b")], axis=1, join="inner").dropna()
        rows.append(
            {
                "method": method,
                "baseline": baseline,
                "metric": metric,
                "method_mean": float(paired["m"].mean()) if len(paired) else math.nan,
                "baseline_mean": float(paired["b"].mean()) if len(paired) else math.nan,
                **comparison.as_dict(),
                "expected_sign": int(sign),
                "verdict": verdict(comparison, sign),
                "summary": comparison.format(),
            }
        )
    columns = [
        "method",
        "baseline",
        "metric",
        "method_mean",
        "baseline_mean",
        "mean_difference",
        "ci_low",
        "ci_high",
        "std",
        "n",
        "p_value",
        "n_greater",
        "n_less",
        "confidence",
        "expected_sign",
        "verdict",
        "summary",
    ]
    return pd.DataFrame(rows, columns=columns)
