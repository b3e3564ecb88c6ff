"""Paired statistics and verdicts of experiments.statistics, checked against scipy directly."""

from __future__ import annotations

import dataclasses
import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from experiments import statistics as st


@pytest.mark.parametrize("n,confidence,seed", [(2, 0.95, 0), (5, 0.95, 1), (30, 0.95, 2), (12, 0.9, 3), (8, 0.99, 4)])
def test_mean_ci_matches_scipy(n, confidence, seed):
    x = np.random.default_rng(seed).normal(1.5, 2.0, size=n)
    ci = st.mean_ci(x, confidence)
    low, high = stats.t.interval(confidence, n - 1, loc=x.mean(), scale=stats.sem(x))
    ref = stats.ttest_1samp(x, 0.0).confidence_interval(confidence)
    assert ci.n == n
    assert ci.mean == pytest.approx(x.mean())
    assert ci.std == pytest.approx(np.std(x, ddof=1))
    assert ci.confidence == confidence
    assert (ci.low, ci.high) == pytest.approx((low, high), rel=1e-10)
    assert (ci.low, ci.high) == pytest.approx((ref.low, ref.high), rel=1e-10)


def test_mean_ci_ignores_nan_and_small_n():
    x = np.array([1.0, np.nan, 2.0, 4.0, np.nan])
    ci, ref = st.mean_ci(x), st.mean_ci([1.0, 2.0, 4.0])
    assert ci == ref and ci.n == 3
    one = st.mean_ci([np.nan, 3.0])
    assert one.n == 1 and one.mean == 3.0
    assert math.isnan(one.low) and math.isnan(one.high) and math.isnan(one.std)
    empty = st.mean_ci([np.nan])
    assert empty.n == 0 and math.isnan(empty.mean) and math.isnan(empty.low)
    flat = st.mean_ci([2.0, 2.0, 2.0])
    assert (flat.low, flat.mean, flat.high, flat.std) == (2.0, 2.0, 2.0, 0.0)
    with pytest.raises(ValueError):
        st.mean_ci([1.0, 2.0], confidence=1.5)


def test_interval_as_dict_and_format():
    ci = st.Interval(mean=1.234, low=0.4, high=2.06, n=30, std=1.0)
    assert ci.as_dict() == {"mean": 1.234, "ci_low": 0.4, "ci_high": 2.06, "n": 30, "std": 1.0, "confidence": 0.95}
    assert ci.format() == "1.23 [0.40, 2.06], n=30"
    assert ci.format(signed=True) == "+1.23 [0.40, 2.06], n=30"
    with pytest.raises(dataclasses.FrozenInstanceError):
        ci.mean = 0.0


def test_paired_ci_is_one_sample_ci_of_differences_and_p_matches_wilcoxon():
    rng = np.random.default_rng(7)
    a = rng.normal(0.8, 1.0, 25)
    b = a - rng.normal(0.5, 0.7, 25)
    c = st.paired_difference(a, b)
    d = a - b
    ref = stats.ttest_1samp(d, 0.0).confidence_interval(0.95)
    assert c.n == 25
    assert c.mean == pytest.approx(d.mean())
    assert (c.low, c.high) == pytest.approx((ref.low, ref.high), rel=1e-10)
    assert c.p_value == pytest.approx(stats.wilcoxon(a, b).pvalue, rel=1e-12)
    assert c.p_value == pytest.approx(stats.wilcoxon(d, alternative="two-sided").pvalue, rel=1e-12)
    assert c.n_greater == int(np.sum(a > b)) and c.n_less == int(np.sum(a < b))
    assert c.difference == st.mean_ci(d)


def test_paired_p_value_with_large_n_and_some_zeros_matches_wilcoxon():
    rng = np.random.default_rng(11)
    d = np.round(rng.normal(0.2, 1.0, 60) * 4) / 4  # multiples of 0.25: exact, with ties
    d[:3] = 0.0
    b = rng.integers(0, 100, 60).astype(float)
    c = st.paired_difference(b + d, b)
    assert np.array_equal((b + d) - b, d)
    assert c.p_value == pytest.approx(stats.wilcoxon(b + d, b).pvalue, rel=1e-12)
    assert c.p_value == pytest.approx(stats.wilcoxon(d).pvalue, rel=1e-12)
    assert c.n_greater + c.n_less == int(np.sum(d != 0))


def test_paired_difference_aligns_series_by_index():
    rng = np.random.default_rng(3)
    units = pd.MultiIndex.from_product([range(5), range(3)], names=["fold", "seed"])
    a = pd.Series(rng.normal(1.0, 1.0, len(units)), index=units)
    b = pd.Series(rng.normal(0.0, 1.0, len(units)), index=units)
    ref = st.paired_difference(a.to_numpy(), b.to_numpy())
    shuffled = a.sample(frac=1.0, random_state=0)
    assert not shuffled.index.equals(b.index)
    got = st.paired_difference(shuffled, b)
    assert got.n == ref.n == 15
    assert got.mean == pytest.approx(ref.mean) and got.low == pytest.approx(ref.low)
    assert got.high == pytest.approx(ref.high) and got.p_value == pytest.approx(ref.p_value)
    assert (got.n_greater, got.n_less) == (ref.n_greater, ref.n_less)
    # positional pairing of the shuffled values would give another interval (same mean)
    assert st.paired_difference(shuffled.to_numpy(), b.to_numpy()).low != pytest.approx(ref.low)


def test_paired_difference_drops_missing_and_nan_units():
    a = pd.Series({"u1": 1.0, "u2": 2.0, "u3": np.nan, "u4": 5.0, "u5": 3.0})
    b = pd.Series({"u1": 0.5, "u2": 1.0, "u3": 0.0, "u4": np.nan, "u6": 9.0, "u5": 2.5})
    c = st.paired_difference(a, b)
    kept = np.array([0.5, 1.0, 0.5])  # u1, u2, u5
    assert c.n == 3
    assert c.difference == st.mean_ci(kept)
    assert c.p_value == pytest.approx(stats.wilcoxon(kept).pvalue)
    arr = st.paired_difference([1.0, np.nan, 2.0, 3.0], [0.0, 1.0, np.nan, 1.0])
    assert arr.n == 2 and arr.mean == pytest.approx(1.5)
    with pytest.raises(ValueError):
        st.paired_difference([1.0, 2.0], [1.0])
    with pytest.raises(TypeError):
        st.paired_difference(a, b.to_numpy())
    with pytest.raises(ValueError):
        st.paired_difference(pd.Series([1.0, 2.0], index=["x", "x"]), pd.Series([1.0], index=["x"]))


def test_p_value_edge_cases():
    zero = st.paired_difference([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
    assert zero.p_value == 1.0 and zero.mean == 0.0 and zero.n_greater == zero.n_less == 0
    assert st.verdict(zero, +1) == st.INCONCLUSIVE
    single = st.paired_difference([2.0], [1.0])
    assert single.n == 1 and math.isnan(single.p_value) and math.isnan(single.low)
    assert st.verdict(single, +1) == st.INCONCLUSIVE
    empty = st.paired_difference([np.nan], [1.0])
    assert empty.n == 0 and math.isnan(empty.p_value) and math.isnan(empty.mean)


def test_comparison_as_dict_and_format():
    c = st.PairedComparison(st.Interval(1.234, 0.4, 2.06, 30, 1.1), p_value=0.0123, n_greater=25, n_less=5)
    assert c.format() == "+1.23 [0.40, 2.06], p=0.012, n=30"
    assert str(c) == c.format()
    assert st.format_comparison(c, digits=1) == "+1.2 [0.4, 2.1], p=0.012, n=30"
    neg = st.PairedComparison(st.Interval(-0.5, -0.9, -0.1, 10, 0.5), p_value=0.0002, n_greater=1, n_less=9)
    assert neg.format() == "-0.50 [-0.90, -0.10], p<0.001, n=10"
    nan = st.paired_difference([1.0], [0.0])
    assert nan.format() == "+1.00 [n/a, n/a], p=n/a, n=1"
    row = c.as_dict()
    assert row == {
        "mean_difference": 1.234,
        "ci_low": 0.4,
        "ci_high": 2.06,
        "std": 1.1,
        "n": 30,
        "p_value": 0.0123,
        "n_greater": 25,
        "n_less": 5,
        "confidence": 0.95,
    }
    assert pd.DataFrame([row]).shape == (1, 9)


def _cmp(low, high):
    return st.PairedComparison(st.Interval((low + high) / 2, low, high, 10, 1.0), 0.5, 0, 0)


def test_verdict_outcomes():
    assert st.verdict(_cmp(0.1, 0.9), +1) == "reproduced"
    assert st.verdict(_cmp(0.1, 0.9), -1) == "not reproduced"
    assert st.verdict(_cmp(-0.9, -0.1), -1) == "reproduced"
    assert st.verdict(_cmp(-0.9, -0.1), +1) == "not reproduced"
    assert st.verdict(_cmp(-0.1, 0.9), +1) == "inconclusive"
    assert st.verdict(_cmp(-0.1, 0.9), -1) == "inconclusive"
    assert st.verdict(_cmp(0.0, 0.9), +1) == "inconclusive"  # touching 0 does not exclude it
    assert st.verdict(_cmp(math.nan, math.nan), +1) == "inconclusive"
    assert set(st.VERDICTS) == {"reproduced", "not reproduced", "inconclusive"}
    with pytest.raises(ValueError):
        st.verdict(_cmp(0.1, 0.9), 0)


def test_verdict_on_real_data():
    rng = np.random.default_rng(5)
    b = rng.normal(size=30)
    better = st.paired_difference(b + 1.0 + rng.normal(0, 0.3, 30), b)
    assert st.verdict(better, +1) == st.REPRODUCED
    assert st.verdict(better, -1) == st.NOT_REPRODUCED
    noise = st.paired_difference(b + rng.normal(0, 1.0, 30) * 1e-3, b + rng.normal(0, 1.0, 30) * 1e-3)
    assert noise.low < 0 < noise.high
    assert st.verdict(noise, +1) == st.INCONCLUSIVE


def test_threshold_verdict_outcomes():
    low_values = [0.10, 0.12, 0.08, 0.11, 0.09]
    high_values = [0.30, 0.28, 0.33, 0.31, 0.29]
    straddle = [0.05, 0.35, 0.10, 0.30, 0.20]
    assert st.threshold_verdict(low_values, 0.2) == "reproduced"
    assert st.threshold_verdict(high_values, 0.2) == "not reproduced"
    assert st.threshold_verdict(straddle, 0.2) == "inconclusive"
    assert st.threshold_verdict(high_values, 0.2, expected="above") == "reproduced"
    assert st.threshold_verdict(low_values, 0.2, expected="above") == "not reproduced"
    assert st.threshold_verdict(straddle, 0.2, expected="above") == "inconclusive"
    assert st.threshold_verdict([0.1], 0.2) == "inconclusive"  # one unit: no interval
    assert st.threshold_verdict([0.1, np.nan, 0.11, 0.09], 0.2) == "reproduced"
    # the CI, not the mean, decides: mean below 0.2 but interval reaching above it
    wide = [0.0, 0.35, 0.05, 0.3]
    assert np.mean(wide) < 0.2 and st.threshold_verdict(wide, 0.2) == "inconclusive"
    with pytest.raises(ValueError):
        st.threshold_verdict(low_values, 0.2, expected="under")


def _frame():
    rows = []
    base = {(0, 0): 90.0, (0, 1): 91.0, (1, 0): 89.0, (1, 1): 92.0, (2, 0): 90.5, (2, 1): 91.5}
    up = {(0, 0): 1.0, (0, 1): 1.2, (1, 0): 0.9, (1, 1): 1.1, (2, 0): 1.0, (2, 1): 0.8}
    mixed = {(0, 0): 0.5, (0, 1): -0.6, (1, 0): 0.2, (1, 1): -0.1, (2, 0): 0.4, (2, 1): -0.5}
    for (fold, seed), v in base.items():
        rows.append({"fold": fold, "seed": seed, "method": "static", "acc": v})
        rows.append({"fold": fold, "seed": seed, "method": "dynamic", "acc": v + up[(fold, seed)]})
        rows.append({"fold": fold, "seed": seed, "method": "naive", "acc": v - up[(fold, seed)]})
        if (fold, seed) != (2, 1):  # one missing unit for "mixed"
            rows.append({"fold": fold, "seed": seed, "method": "mixed", "acc": v + mixed[(fold, seed)]})
    return pd.DataFrame(rows).sample(frac=1.0, random_state=1).reset_index(drop=True), base, up, mixed


def test_paired_table_on_hand_made_frame():
    frame, base, up, mixed = _frame()
    table = st.paired_table(frame, "acc", baseline="static")
    assert list(table["method"]) == [m for m in dict.fromkeys(frame["method"]) if m != "static"]
    table = table.set_index("method")
    assert set(table.index) == {"dynamic", "naive", "mixed"}
    assert (table["baseline"] == "static").all() and (table["metric"] == "acc").all()

    d_up = np.array([up[k] for k in base])
    ref = stats.ttest_1samp(d_up, 0.0).confidence_interval()
    dyn = table.loc["dynamic"]
    assert dyn["n"] == 6 and dyn["mean_difference"] == pytest.approx(d_up.mean())
    assert (dyn["ci_low"], dyn["ci_high"]) == pytest.approx((ref.low, ref.high))
    assert dyn["p_value"] == pytest.approx(stats.wilcoxon(d_up).pvalue)
    assert dyn["n_greater"] == 6 and dyn["n_less"] == 0
    assert dyn["baseline_mean"] == pytest.approx(np.mean(list(base.values())))
    assert dyn["method_mean"] == pytest.approx(np.mean(list(base.values())) + d_up.mean())
    assert dyn["verdict"] == "reproduced" and dyn["expected_sign"] == 1
    assert dyn["summary"].startswith("+1.00 [") and dyn["summary"].endswith("n=6")

    naive = table.loc["naive"]
    assert naive["mean_difference"] == pytest.approx(-d_up.mean()) and naive["verdict"] == "not reproduced"

    mix = table.loc["mixed"]
    d_mix = np.array([mixed[k] for k in base if k != (2, 1)])
    assert mix["n"] == 5 and mix["mean_difference"] == pytest.approx(d_mix.mean())
    assert mix["verdict"] == "inconclusive"


def test_paired_table_options():
    frame, *_ = _frame()
    signs = {"naive": -1, "dynamic": +1}
    table = st.paired_table(frame, "acc", "static", methods=["naive", "dynamic"], expected_sign=signs)
    assert list(table["method"]) == ["naive", "dynamic"]
    assert list(table["verdict"]) == ["reproduced", "reproduced"]
    assert list(table["expected_sign"]) == [-1, 1]
    flipped = st.paired_table(frame, "acc", "static", methods=["dynamic"], expected_sign=-1)
    assert flipped["verdict"].item() == "not reproduced"
    # a single unit column
    one = frame[frame["seed"] == 0].drop(columns="seed").rename(columns={"method": "m"})
    small = st.paired_table(one, "acc", "static", methods=["dynamic"], unit_cols="fold", method_col="m")
    assert small["n"].item() == 3
    with pytest.raises(KeyError):
        st.paired_table(frame, "acc", "static", methods=["missing"])
    with pytest.raises(KeyError):
        st.paired_table(frame, "loss", "static")
    with pytest.raises(ValueError):
        st.paired_table(pd.concat([frame, frame.iloc[:1]]), "acc", "static")


def test_no_tensorflow_import():
    code = "import sys, experiments.statistics; print('tensorflow' in sys.modules or 'keras' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
