"""Delta-m, EER, accuracy by pair kind and the confusion matrix of experiments/face_expression/analyses.py."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dynamic_mtl import verification
from experiments.face_expression import analyses
from experiments.face_expression.methods import parse_method


def _brute_force_eer(d, s):
    """min over thresholds of max(FAR, FRR), accepting distance <= t (the EER up to one pair's step)."""
    best = 1.0
    for t in np.concatenate([[-np.inf], np.sort(d)]):
        far = np.mean(d[~s] <= t)
        frr = np.mean(d[s] > t)
        best = min(best, max(far, frr))
    return best


def test_equal_error_rate_where_false_accepts_equal_false_rejects():
    s = np.array([True] * 4 + [False] * 4)
    d = np.array([0.1, 0.2, 0.3, 0.6, 0.4, 0.5, 0.7, 0.8])
    assert verification.equal_error_rate(d, s) == pytest.approx(0.25)
    assert verification.equal_error_rate(np.r_[0.1, 0.2, 0.8, 0.9], np.r_[True, True, False, False]) == 0.0
    assert np.isnan(verification.equal_error_rate(d[:4], s[:4]))
    rng = np.random.default_rng(0)
    s = rng.random(400) < 0.5
    d = rng.normal(np.where(s, 0.8, 1.2), 0.3)
    assert verification.equal_error_rate(d, s) == pytest.approx(_brute_force_eer(d, s), abs=1 / 150)


def _per_fold(with_finetuned=False):
    rows = [
        ("single_task_face", 0, 0.8, np.nan),
        ("single_task_face", 1, 0.9, np.nan),
        ("single_task_expression", 0, np.nan, 0.5),
        ("single_task_expression", 1, np.nan, 0.6),
        ("static", 0, 0.88, 0.55),
        ("static", 1, 0.9, 0.54),
    ]
    if with_finetuned:
        rows += [
            ("single_task_face_finetuned", 0, 0.88, np.nan),
            ("single_task_face_finetuned", 1, 0.9, np.nan),
            ("single_task_expression_finetuned", 0, np.nan, 0.55),
            ("single_task_expression_finetuned", 1, np.nan, 0.54),
        ]
    return pd.DataFrame(rows, columns=["method", "fold", "verification_accuracy", "expression_accuracy"])


def test_delta_m_is_the_mean_relative_change_per_fold_against_single_task():
    dm = analyses.delta_m(_per_fold(), ["static"]).set_index("method")
    # fold 0: 50 * (0.08/0.8 + 0.05/0.5) = 10; fold 1: 50 * (0 - 0.06/0.6) = -5
    assert dm.loc["static", "delta_m"] == pytest.approx(2.5)
    assert dm.loc["static", "folds"] == 2
    assert dm.loc["static", "ci_low"] < 2.5 < dm.loc["static", "ci_high"]
    assert dm.loc["static", "baselines"] == "single_task_face / single_task_expression"
    finetuned = analyses.delta_m(_per_fold(with_finetuned=True), ["static"]).set_index("method")
    assert finetuned.loc["static", "delta_m"] == pytest.approx(0.0)  # identical to the fine-tuned rows
    assert analyses.delta_m(_per_fold().query("method != 'single_task_face'"), ["static"]).empty


def _write_fold(run_dir, method, fold):
    (run_dir / "per_fold").mkdir(exist_ok=True)
    # validation pairs put the threshold at 0.96; required test pairs are all on the right side of it,
    # "other" pairs: one of 4 (the same pair at 1.2) on the wrong side
    np.savez(
        run_dir / "per_fold" / f"{method}_fold{fold}_distances.npz",
        test_distances=np.array([0.5, 1.5, 0.6, 1.4, 0.7, 1.1, 1.2, 1.3]),
        test_issame=np.array([1, 0, 1, 0, 1, 0, 1, 0], bool),
        test_kind=np.array(["same_required", "diff_required"] * 2 + ["same_other", "diff_other"] * 2),
        validation_distances=np.array([0.9, 0.95, 1.05, 1.8]),
        validation_issame=np.array([1, 1, 0, 0], bool),
        test_expression_true=np.array([0, 0, 1, 2, -1]),
        test_expression_pred=np.array([0, 1, 1, 2, 0]),
    )


def test_run_analyses_write_files_and_score_pair_kinds(tmp_path):
    for fold in (0, 1):
        for method in ("single_task_face", "static"):
            _write_fold(tmp_path, method, fold)
    details = analyses.verification_details(tmp_path, "static", [0, 1])
    assert details["accuracy_required_pairs"].tolist() == [1.0, 1.0]
    assert details["accuracy_other_pairs"].tolist() == [0.75, 0.75]  # 1.2 is a same pair above the threshold
    matrix = analyses.confusion(tmp_path, "static", [0, 1], num_classes=3)
    assert matrix.tolist() == [[2, 2, 0], [0, 2, 0], [0, 0, 2]]  # the unlabelled image (-1) is left out
    methods = [parse_method(m) for m in ("single_task_face", "single_task_expression", "static")]
    text = analyses.write_analyses(tmp_path, _per_fold(), methods, [0, 1], ["a", "b", "c"])
    for name in (
        "delta_m.csv",
        "verification_details.csv",
        "roc.png",
        "method_comparison.png",
        "confusion_static.csv",
        "confusion_static.png",
    ):
        assert (tmp_path / "analyses" / name).is_file(), name
    assert "| Static MTL | +2.50 |" in text
    # EER: FAR = FRR = 1/4 between the diff pair at 1.1 and the same pair at 1.2 (both folds alike)
    assert "| Static MTL | 25.00 | 100.00 | 75.00 |" in text
