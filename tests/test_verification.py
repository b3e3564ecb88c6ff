"""LFW/facenet verification protocol: thresholds from other folds only, VAL@FAR, sklearn AUC."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from dynamic_mtl import verification as v


def test_pair_distances_normalised():
    a = np.array([[3.0, 0.0], [0.0, 2.0]])
    b = np.array([[1.0, 0.0], [2.0, 0.0]])
    np.testing.assert_allclose(v.pair_distances(a, b), [0.0, 2.0])
    with pytest.raises(ValueError):
        v.pair_distances(a, b[:1])


def test_threshold_chosen_on_train_pairs_only():
    # Train pairs separate at 1.0; test pairs separate at 2.0. Choosing on test pairs would give 100 %.
    train_d = np.array([0.5, 0.6, 0.7, 1.3, 1.4, 1.5])
    train_s = np.array([1, 1, 1, 0, 0, 0], bool)
    test_d = np.array([1.2, 1.5, 1.8, 2.2, 2.5, 2.8])
    test_s = np.array([1, 1, 1, 0, 0, 0], bool)
    r = v.evaluate_fold(train_d, train_s, test_d, test_s)
    assert 0.7 < r["threshold"] <= 1.3
    assert r["accuracy"] == pytest.approx(0.5)          # test positives all above the train threshold
    assert v.best_threshold(test_d, test_s) > 1.8       # the oracle (forbidden) threshold differs
    assert r["auc"] == pytest.approx(1.0)               # AUC is threshold-free


def test_evaluate_folds_uses_other_folds():
    rng = np.random.default_rng(0)
    n = 200
    folds = np.repeat(np.arange(4), n // 4)
    s = rng.random(n) < 0.5
    d = np.where(s, rng.normal(0.8, 0.25, n), rng.normal(1.6, 0.25, n)).clip(0, 4)
    # Fold 3 is shifted: its own best threshold is far from the others'.
    d[folds == 3] += 1.0
    res = v.evaluate_folds(d, s, folds)
    f3 = res.per_fold[3]
    test = folds == 3
    oracle = v.accuracy_at(v.best_threshold(d[test], s[test]), d[test], s[test])
    assert f3["accuracy"] < oracle - 0.2
    expected = v.accuracy_at(v.best_threshold(d[~test], s[~test]), d[test], s[test])
    assert f3["accuracy"] == pytest.approx(expected)
    assert res.accuracy_mean == pytest.approx(np.mean([r["accuracy"] for r in res.per_fold]))
    assert res.auc == pytest.approx(roc_auc_score(s, -d))
    with pytest.raises(ValueError, match="at least 2 folds"):
        v.evaluate_folds(d, s, np.zeros(n))


def test_val_far():
    d = np.array([0.1, 0.2, 0.3, 0.9, 1.0, 1.1, 0.25])
    s = np.array([1, 1, 1, 0, 0, 0, 0], bool)
    thr = v.far_threshold(d, s, far_target=0.0)
    assert thr <= 0.25 + 1e-9
    val, far = v.val_far_at(thr, d, s)
    assert far == 0.0 and val == pytest.approx(2 / 3)
    fpr, tpr, _ = v.roc_curve(d, s)
    assert fpr[0] == 0.0 and tpr[-1] == 1.0
    with pytest.raises(ValueError, match="differ"):
        v.accuracy_at(1.0, d, s[:3])
