"""The claims of Ming et al. 2019 that a study checks, each with how it is measured.

One home for the claims: ``CLAIMS`` lists them in the order of ``docs/reproduction.md``.
Each claim is measured over *units* (one unit = one fold of one seed) of a study, from the
per-fold results (``per_fold.csv``) and the per-step logs (``steps/<method>_fold<k>.csv``):

* ``PairedClaim``: method A beats method B on a metric; the per-unit paired difference A - B,
  its 95 % CI and a Wilcoxon signed-rank test (experiments/statistics.py);
* ``ThresholdClaim``: a per-unit statistic of one method lies below/above a threshold (CI);
* ``SweepClaim``: Figure 2's static sweep, whose best weight differs between the tasks.

A claim whose methods the study did not run gets the verdict "not measured".
The paper's task numbering is the other way round from ours in Figures 4-6: its "Task 2"
(face verification) is our ``identity`` task.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from experiments import statistics as st
from experiments.face_expression.methods import parse_method, static_mtl_weights

NOT_MEASURED = "not measured"

#: step-log statistics per (method, fold, seed) unit, computed by :func:`step_statistics`
STEP_STATISTICS = {
    "final_w_identity": "mean weight of face verification over the last quarter of the steps",
    "larger_loss_larger_weight": "share of steps where the task with the larger loss has the larger weight",
    "mean_loss_identity": "mean face-verification loss over all training steps (area under Figure 6's curve)",
    "vanishing_gradient_share": "share of steps with a weight-unit gradient norm below 1e-6",
}


def step_statistics(steps: pd.DataFrame) -> dict[str, float]:
    """The :data:`STEP_STATISTICS` of one step log (columns of ``dynamic_mtl.StepLogger``)."""
    if not len(steps):
        return {name: float("nan") for name in STEP_STATISTICS}
    tail = steps.iloc[-max(1, len(steps) // 4) :]
    larger_loss = steps["loss_identity"] > steps["loss_expression"]
    larger_weight = steps["w_identity"] > steps["w_expression"]
    return {
        "final_w_identity": float(tail["w_identity"].mean()),
        "larger_loss_larger_weight": float((larger_loss == larger_weight).mean()),
        "mean_loss_identity": float(steps["loss_identity"].mean()),
        "vanishing_gradient_share": float((steps["weight_grad_norm"] < 1e-6).mean()),
    }


def _values(units: pd.DataFrame, method: str, metric: str) -> pd.Series | None:
    """``metric`` of ``method`` indexed by (seed, fold), or None when not measured."""
    if metric not in units.columns:
        return None
    part = units[units["method"] == method]
    if not len(part):
        return None
    values = part.set_index(["seed", "fold"])[metric].astype(float)
    return values if values.notna().any() else None


@dataclass(frozen=True)
class Claim:
    """A claim of the paper: ``quote`` is its wording, ``source`` where the paper makes it."""

    key: str
    quote: str
    source: str

    def evaluate(self, units: pd.DataFrame) -> dict:
        raise NotImplementedError

    def _row(self, measurement: str, statistic: str, verdict: str, n: int = 0) -> dict:
        return {
            "claim": self.key,
            "quote": self.quote,
            "source": self.source,
            "measurement": measurement,
            "statistic": statistic,
            "verdict": verdict,
            "units": n,
        }


@dataclass(frozen=True)
class PairedClaim(Claim):
    """``method`` is better than ``baseline`` on ``metric`` (higher is better unless ``expected_sign`` -1)."""

    metric: str = "verification_accuracy"
    method: str = "dynamic"
    baseline: str = "static"
    expected_sign: int = 1
    scale: float = 100.0  # accuracies in points

    def evaluate(self, units: pd.DataFrame) -> dict:
        a, b = _values(units, self.method, self.metric), _values(units, self.baseline, self.metric)
        measurement = f"{self.metric}: {self.method} - {self.baseline}"
        if a is None or b is None:
            return self._row(measurement, "", NOT_MEASURED)
        comparison = st.paired_difference(a * self.scale, b * self.scale)
        means = f"{float(a.mean()) * self.scale:.2f} vs {float(b.mean()) * self.scale:.2f}; "
        return self._row(
            measurement,
            means + st.format_comparison(comparison),
            st.verdict(comparison, self.expected_sign),
            comparison.n,
        )


@dataclass(frozen=True)
class ThresholdClaim(Claim):
    """A per-unit ``metric`` of ``method`` lies ``expected`` ("below"/"above") ``threshold``."""

    metric: str = "final_w_identity"
    method: str = "naive_dynamic"
    threshold: float = 0.2
    expected: str = "below"

    def evaluate(self, units: pd.DataFrame) -> dict:
        values = _values(units, self.method, self.metric)
        measurement = f"{self.metric} of {self.method} {self.expected} {self.threshold:g}"
        if values is None:
            return self._row(measurement, "", NOT_MEASURED)
        interval = st.mean_ci(values)
        return self._row(
            measurement,
            st.format_interval(interval, digits=3),
            st.threshold_verdict(values, self.threshold, self.expected),
            interval.n,
        )


def _static_weights(name: str) -> tuple[float, ...] | None:
    """The fixed weights of a static multi-task row by method name; None for other or unknown names."""
    try:
        return static_mtl_weights(parse_method(name))
    except ValueError:
        return None


@dataclass(frozen=True)
class SweepClaim(Claim):
    """Figure 2: the static weight w1 that is best for verification is not the best for expression.

    Per unit, the best w1 of each task over the static multi-task rows (``static@W`` and ``static`` at its
    default equal weights: :func:`~experiments.face_expression.methods.static_mtl_weights`); the claim
    holds in a unit when they differ. Verdict from the share of units where they differ (CI above / below 0.5).
    """

    def evaluate(self, units: pd.DataFrame) -> dict:
        weights = {m: _static_weights(m) for m in units["method"].astype(str).unique()}
        w1 = {m: w[0] for m, w in weights.items() if w is not None}
        sweep = units[units["method"].isin(list(w1))]
        measurement = "share of units whose best static w1 differs between the two tasks"
        if sweep["method"].nunique() < 3 or "verification_accuracy" not in sweep:
            return self._row(measurement, "", NOT_MEASURED)
        # one row per w1: a static@0.5 row takes the place of "static" at the same weights
        sweep = sweep.assign(w1=sweep["method"].map(w1), sweep_point=sweep["method"] != "static")
        sweep = sweep.sort_values("sweep_point", ascending=False).drop_duplicates(["seed", "fold", "w1"])
        differs = []
        for _, unit in sweep.groupby(["seed", "fold"]):
            if unit["w1"].nunique() < 3:  # e.g. a seed that ran the "static" row only
                continue
            best = {
                m: unit.loc[unit[m].idxmax(), "w1"]
                for m in ("verification_accuracy", "expression_accuracy")
                if unit[m].notna().any()
            }
            if len(best) == 2:
                differs.append(float(not np.isclose(best["verification_accuracy"], best["expression_accuracy"])))
        if not differs:
            return self._row(measurement, "", NOT_MEASURED)
        interval = st.mean_ci(differs)
        return self._row(
            measurement, st.format_interval(interval, digits=2), st.threshold_verdict(differs, 0.5, "above"), interval.n
        )


_TABLE2 = "Table 2"
_TABLE3 = "Table 3 (CK+) / Table 4 (Oulu-CASIA)"

CLAIMS: tuple[Claim, ...] = (
    ThresholdClaim(
        "naive_hard_task_weight",
        "the naive dynamic method gives the face verification task a weight below 0.2",
        "Section 5.4, Figure 4",
        metric="final_w_identity",
        method="naive_dynamic",
        threshold=0.2,
        expected="below",
    ),
    ThresholdClaim(
        "larger_loss_larger_weight",
        "the proposed method gives the larger weight to the task with the "
        "larger loss, and switches when the losses cross",
        "Eq. 10, Figures 4-5",
        metric="larger_loss_larger_weight",
        method="dynamic",
        threshold=0.5,
        expected="above",
    ),
    PairedClaim(
        "faster_hard_task",
        "the proposed method lowers the loss of the hard task (face verification) faster than the naive dynamic method",
        "Figure 6",
        metric="mean_loss_identity",
        method="naive_dynamic",
        baseline="dynamic",
        expected_sign=1,
        scale=1.0,
    ),
    PairedClaim(
        "normalisation_gradient",
        "normalising the a_i removes the vanishing gradient of the weight unit",
        "Section 5.5, Figure 7",
        metric="vanishing_gradient_share",
        method="dynamic_published",
        baseline="dynamic",
        expected_sign=1,
        scale=1.0,
    ),
    PairedClaim(
        "finetuning_beats_pretrained",
        "fine-tuning improves on the pretrained model for verification on expression pairs",
        _TABLE2,
        method="single_task_face_finetuned",
        baseline="pretrained",
    ),
    PairedClaim(
        "static_beats_single_verification",
        "static MTL beats the fine-tuned single-task model on verification",
        _TABLE2,
        method="static",
        baseline="single_task_face_finetuned",
    ),
    PairedClaim(
        "static_beats_single_expression",
        "static MTL beats the single-task model on expression",
        _TABLE3,
        metric="expression_accuracy",
        method="static",
        baseline="single_task_expression_finetuned",
    ),
    PairedClaim(
        "naive_below_static",
        "the naive dynamic method is below static MTL on verification",
        _TABLE2,
        method="static",
        baseline="naive_dynamic",
    ),
    PairedClaim(
        "proposed_beats_static_verification",
        "the proposed method beats static MTL on verification",
        _TABLE2,
        method="dynamic",
        baseline="static",
    ),
    PairedClaim(
        "proposed_beats_naive_verification",
        "the proposed method beats the naive dynamic method on verification",
        _TABLE2,
        method="dynamic",
        baseline="naive_dynamic",
    ),
    PairedClaim(
        "proposed_beats_static_expression",
        "the proposed method beats static MTL on expression",
        _TABLE3,
        metric="expression_accuracy",
        method="dynamic",
        baseline="static",
    ),
    PairedClaim(
        "proposed_beats_naive_expression",
        "the proposed method beats the naive dynamic method on expression",
        _TABLE3,
        metric="expression_accuracy",
        method="dynamic",
        baseline="naive_dynamic",
    ),
    SweepClaim("no_single_static_weight", "no single static weight is best for both tasks", "Figure 2"),
)


def evaluate_claims(units: pd.DataFrame, claims=CLAIMS) -> pd.DataFrame:
    """One row per claim: quote, measurement, statistic and verdict."""
    return pd.DataFrame([claim.evaluate(units) for claim in claims])


#: the proposed method's variants compared with it in the sensitivity section (method, what changes)
SENSITIVITY: tuple[tuple[str, str], ...] = (
    ("dynamic_published", "no Section 5.5 normalisation (the published code's unit)"),
    ("dynamic_unit_lr0.01", "weight-unit learning rate 0.01 instead of 0.1"),
    ("dynamic_unit_lr0.001", "weight-unit learning rate 0.001 instead of 0.1"),
    ("dynamic_no_stop_gradient", "network loss sends gradient through w into the trunk (the code)"),
)
SENSITIVITY_METRICS = ("verification_accuracy", "expression_accuracy", "larger_loss_larger_weight")


def paired_effects(
    units: pd.DataFrame, variants, reference: str = "dynamic", metrics=SENSITIVITY_METRICS
) -> pd.DataFrame:
    """Per ``(method, description)`` of ``variants`` that the study ran and per metric: the paired
    difference method - ``reference`` over units, and whether its CI excludes 0 ("higher", "lower", or
    "no difference detected")."""
    rows = []
    for variant, change in variants:
        for metric in metrics:
            a, b = _values(units, variant, metric), _values(units, reference, metric)
            if a is None or b is None:
                continue
            scale = 100.0 if metric.endswith("accuracy") else 1.0
            comparison = st.paired_difference(a * scale, b * scale)
            sign = st.verdict(comparison, 1)
            effect = {st.REPRODUCED: "higher", st.NOT_REPRODUCED: "lower"}.get(sign, "no difference detected")
            rows.append(
                {
                    "variant": variant,
                    "change": change,
                    "metric": metric,
                    "statistic": st.format_comparison(comparison),
                    "effect": effect,
                    "units": comparison.n,
                }
            )
    return pd.DataFrame(rows, columns=["variant", "change", "metric", "statistic", "effect", "units"])


def evaluate_sensitivity(units: pd.DataFrame, reference: str = "dynamic") -> pd.DataFrame:
    """:func:`paired_effects` of the proposed method's variants (:data:`SENSITIVITY`) against it."""
    return paired_effects(units, SENSITIVITY, reference)


#: the accuracies on which the other weighting methods are compared with the proposed one
COMPARISON_METRICS = ("verification_accuracy", "expression_accuracy")


def evaluate_other_weightings(units: pd.DataFrame, reference: str = "dynamic") -> pd.DataFrame:
    """:func:`paired_effects` of every other weighting method the study ran
    (:data:`experiments.face_expression.methods.OTHER_WEIGHTING_METHODS`) against the proposed method."""
    from experiments.face_expression.methods import OTHER_WEIGHTING_METHODS, parse_method

    ran = set(units["method"].astype(str))
    variants = [(m, parse_method(m).label) for m in OTHER_WEIGHTING_METHODS if m in ran]
    return paired_effects(units, variants, reference, COMPARISON_METRICS)
