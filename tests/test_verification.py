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
    assert r["accuracy"] == pytest.approx(0.5)  # test positives all above the train threshold
    assert v.best_threshold(test_d, test_s) > 1.8  # the oracle (forbidden) threshold differs
    assert r["auc"] == pytest.approx(1.0)  # AUC is threshold-free


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


# ---------------------------------------------------------------------------------------------
# Agreement with facenet's lfw.evaluate (facenet.calculate_roc / calculate_val), re-implemented
# here from a reading of facenet's src/facenet.py and src/lfw.py as an independent reference.
# ---------------------------------------------------------------------------------------------


def _facenet_interp1d_slinear(x, y):
    """What ``scipy.interpolate.interp1d(x, y, kind='slinear')`` built before scipy 1.9 (facenet's
    era; scipy >= 1.9 raises on repeated x): x sorted by a stable mergesort, then
    ``make_interp_spline(x, y, k=1)``, whose k=1 shortcut is the B-spline with knots
    ``[x0, x..., xN, xN]`` and coefficients ``y``; calls outside [x0, xN] raise (bounds_error)."""
    from scipy.interpolate import BSpline

    order = np.argsort(x, kind="mergesort")
    x, y = np.asarray(x, float)[order], np.asarray(y, float)[order]
    spline = BSpline.construct_fast(np.r_[x[0], x, x[-1]], np.ascontiguousarray(y), 1)

    def f(x_new):
        if x_new < x[0] or x_new > x[-1]:
            raise ValueError("A value in x_new is outside the interpolation range.")
        return spline(x_new)

    return f


def _facenet_accuracy(threshold, dist, issame):
    predict = np.less(dist, threshold)
    tp = np.sum(predict & issame)
    tn = np.sum(~predict & ~issame)
    return float(tp + tn) / dist.size


def _facenet_val_far(threshold, dist, issame):
    predict = np.less(dist, threshold)
    val = float(np.sum(predict & issame)) / float(np.sum(issame))
    far = float(np.sum(predict & ~issame)) / float(np.sum(~issame))
    return val, far


def _facenet_roc_accuracy(dist, issame, nrof_folds=10):
    """Per-fold accuracy of facenet.calculate_roc (grid 0..4 step 0.01, as lfw.evaluate)."""
    from sklearn.model_selection import KFold

    thresholds = np.arange(0, 4, 0.01)
    accuracy = np.zeros(nrof_folds)
    for k, (train, test) in enumerate(KFold(n_splits=nrof_folds, shuffle=False).split(np.arange(dist.size))):
        acc_train = np.array([_facenet_accuracy(t, dist[train], issame[train]) for t in thresholds])
        accuracy[k] = _facenet_accuracy(thresholds[np.argmax(acc_train)], dist[test], issame[test])
    return accuracy


def _facenet_val(dist, issame, far_target=1e-3, nrof_folds=10):
    """Per-fold (VAL, FAR, threshold) of facenet.calculate_val (grid 0..4 step 0.001, as lfw.evaluate)."""
    from sklearn.model_selection import KFold

    thresholds = np.arange(0, 4, 0.001)
    val, far, thr = np.zeros(nrof_folds), np.zeros(nrof_folds), np.zeros(nrof_folds)
    for k, (train, test) in enumerate(KFold(n_splits=nrof_folds, shuffle=False).split(np.arange(dist.size))):
        far_train = np.array([_facenet_val_far(t, dist[train], issame[train])[1] for t in thresholds])
        if np.max(far_train) >= far_target:
            threshold = float(_facenet_interp1d_slinear(far_train, thresholds)(far_target))
        else:
            threshold = 0.0
        thr[k] = threshold
        val[k], far[k] = _facenet_val_far(threshold, dist[test], issame[test])
    return val, far, thr


def _kfold_ids(n, nrof_folds=10):
    from sklearn.model_selection import KFold

    ids = np.empty(n, int)
    for k, (_, test) in enumerate(KFold(n_splits=nrof_folds, shuffle=False).split(np.arange(n))):
        ids[test] = k
    return ids


def _random_pairs(seed, n):
    rng = np.random.default_rng(seed)
    s = rng.random(n) < 0.5
    d = np.where(s, rng.normal(0.9, 0.35, n), rng.normal(1.7, 0.35, n)).clip(0.0, 3.9999)
    return d, s


def _rare_negative_pairs(seed, n):
    """All negatives at distances >= 3.999 (never accepted on the 0.001 grid) except one close one:
    the training FAR reaches 1e-3 only in the folds whose training pairs contain it."""
    rng = np.random.default_rng(seed)
    s = rng.random(n) < 0.5
    d = np.where(s, rng.uniform(0.2, 1.5, n), rng.uniform(3.9991, 3.9999, n))
    d[np.flatnonzero(~s)[rng.integers((~s).sum())]] = 0.7
    return d, s


@pytest.mark.parametrize(
    "case",
    [
        ("random", 0, 1000),
        ("random", 1, 537),
        ("random", 2, 2003),
        ("rare_negative", 3, 600),
        ("rare_negative", 4, 451),
    ],
)
def test_matches_facenet_calculate_roc_and_calculate_val(case):
    kind, seed, n = case
    d, s = (_random_pairs if kind == "random" else _rare_negative_pairs)(seed, n)
    ours = v.evaluate_folds(d, s, _kfold_ids(n))
    ref_acc = _facenet_roc_accuracy(d, s)
    ref_val, ref_far, ref_thr = _facenet_val(d, s)
    assert [r["fold"] for r in ours.per_fold] == list(range(10))
    np.testing.assert_array_equal([r["accuracy"] for r in ours.per_fold], ref_acc)
    np.testing.assert_array_equal([r["val"] for r in ours.per_fold], ref_val)
    np.testing.assert_array_equal([r["far"] for r in ours.per_fold], ref_far)
    np.testing.assert_allclose([r["val_threshold"] for r in ours.per_fold], ref_thr, rtol=1e-12, atol=0)
    # facenet's means: lfw.evaluate reports mean accuracy and calculate_val's mean VAL / std / mean FAR
    assert ours.accuracy_mean == pytest.approx(ref_acc.mean(), abs=1e-15)
    assert ours.val_mean == pytest.approx(ref_val.mean(), abs=1e-15)
    assert ours.val_std == pytest.approx(ref_val.std(), abs=1e-15)
    assert ours.far_mean == pytest.approx(ref_far.mean(), abs=1e-15)
    if kind == "rare_negative":
        # the fold holding the only close negative never reaches the target FAR on its training pairs
        not_reached = [r for r in ours.per_fold if r["val_threshold"] == 0.0]
        assert len(not_reached) == 1 and not_reached[0]["val"] == 0.0
        assert all(0.699 < r["val_threshold"] < 0.7001 for r in ours.per_fold if r is not not_reached[0])


def test_matches_facenet_from_embeddings():
    rng = np.random.default_rng(5)
    n, dim = 700, 16
    ids_a, ids_b = rng.integers(0, 6, n), rng.integers(0, 6, n)
    centres = rng.normal(size=(6, dim))
    a = v.l2_normalize(centres[ids_a] + 0.8 * rng.normal(size=(n, dim)))
    b = v.l2_normalize(centres[ids_b] + 0.8 * rng.normal(size=(n, dim)))
    issame = ids_a == ids_b
    dist = np.sum(np.square(np.subtract(a, b)), 1)  # facenet's distance_metric 0
    ours = v.evaluate_folds(v.pair_distances(a, b), issame, _kfold_ids(n))
    np.testing.assert_array_equal([r["accuracy"] for r in ours.per_fold], _facenet_roc_accuracy(dist, issame))
    np.testing.assert_array_equal([r["val"] for r in ours.per_fold], _facenet_val(dist, issame)[0])


@pytest.mark.parametrize(
    "negatives, target, expected",
    [
        # FAR equals the target on (0.5, 1.0]: the largest grid threshold with that FAR
        ([0.5, 1.0, 1.5, 2.0], 0.25, 1.0),
        # FAR reaches the target only on the last grid thresholds: the B-spline basis vanishes -> 0.0
        ([0.5, 3.9995, 3.9995, 3.9995], 0.25, 0.0),
        # never reached -> 0.0
        ([3.9995, 3.9996], 1e-3, 0.0),
        # between two FAR steps: linear interpolation between the last threshold at FAR 0 and the next
        ([0.5, 1.0, 1.5, 2.0], 0.1, 0.5 + 0.001 * 0.4),
    ],
)
def test_far_threshold_follows_facenet_interp1d(negatives, target, expected):
    d = np.r_[0.1, 0.2, negatives]
    s = np.r_[True, True, np.zeros(len(negatives), bool)]
    thr = v.far_threshold(d, s, far_target=target)
    assert thr == pytest.approx(expected, abs=1e-12)
    th = v.DEFAULT_VAL_THRESHOLDS
    far_train = np.array([_facenet_val_far(t, d, s)[1] for t in th])
    ref = float(_facenet_interp1d_slinear(far_train, th)(target)) if far_train.max() >= target else 0.0
    assert thr == pytest.approx(ref, rel=1e-12, abs=1e-15)


def test_slinear_matches_scipy_interp1d_without_repeats():
    from scipy.interpolate import interp1d

    rng = np.random.default_rng(7)
    x = np.sort(rng.random(50))
    y = np.cumsum(rng.random(50))
    for x_new in np.r_[x[0], x[-1], x[10], rng.uniform(x[0], x[-1], 20)]:
        assert v._slinear_at(x, y, x_new) == pytest.approx(
            float(interp1d(x, y, kind="slinear")(x_new)), rel=1e-13, abs=1e-15
        )
    with pytest.raises(ValueError, match="outside"):
        v._slinear_at(x, y, x[0] - 1.0)


def test_grids_and_val_threshold_grid():
    np.testing.assert_array_equal(v.DEFAULT_THRESHOLDS, np.arange(0, 4, 0.01))
    np.testing.assert_array_equal(v.DEFAULT_VAL_THRESHOLDS, np.arange(0, 4, 0.001))
    d, s = _random_pairs(9, 400)
    coarse = v.evaluate_fold(d, s, d, s, val_thresholds=v.DEFAULT_THRESHOLDS)
    fine = v.evaluate_fold(d, s, d, s)
    assert coarse["threshold"] == fine["threshold"]  # accuracy keeps the 0.01 grid
    assert coarse["val_threshold"] != fine["val_threshold"]
    # no negative pairs: FAR is 0 everywhere, the target is never reached
    assert v.far_threshold(d[s], s[s]) == 0.0
