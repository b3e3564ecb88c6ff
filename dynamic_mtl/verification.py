"""Face-verification metrics: the LFW / facenet protocol, without global state.

Ming et al. 2019 report verification accuracy on CK+ / Oulu-CASIA pairs with facenet's LFW
evaluation (``lfw.evaluate`` -> ``facenet.calculate_roc`` / ``calculate_val``; docs/fidelity.md,
row 22): squared Euclidean distance between L2-normalised embeddings; accuracy at the threshold of
the grid 0..4 step 0.01 that maximises accuracy on the training pairs (the first one on ties);
VAL@FAR=1e-3 at a threshold found on the training pairs with a separate, finer grid 0..4 step 0.001.
The threshold is never chosen on the pairs it is evaluated on. ROC / AUC come from scikit-learn.

The VAL threshold follows ``calculate_val``: the training FAR is computed for every grid threshold;
if its maximum reaches the target, the threshold is the linear interpolation, at the target FAR, of
threshold against FAR (facenet: ``interp1d(far_train, thresholds, kind='slinear')``), otherwise it is
0.0 (nothing is accepted). The FAR curve is a step function, so it has runs of equal values; scipy
before 1.9 (facenet's era) interpolated them as a degree-1 B-spline with knots ``[f0, f..., fN, fN]``
and scipy >= 1.9 refuses duplicates, so :func:`far_threshold` evaluates that spline itself: it
interpolates between the LAST grid threshold whose FAR is <= the target and the next one, which
gives exactly that threshold when its FAR equals the target. In the degenerate case where the
maximum training FAR equals the target and the last two grid thresholds both have it, the knot span
has zero length, the B-spline basis vanishes and facenet's threshold is 0.0; that is mirrored too.

:func:`evaluate_folds` is the LFW cross-fold protocol (threshold from the other folds); the
experiment harness applies :func:`evaluate_fold` with a model's own validation pairs as the
training pairs (``experiments.face_expression.tables.verification_by_fold``).

Differences from facenet: no pairs are dropped to a multiple of 100 (an authors' defect); a set
of pairs without negatives has FAR 0 (facenet divides by zero), so its VAL threshold is 0.0; a
test fold without positives has VAL 0 (facenet divides by zero).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: facenet's accuracy threshold grid for squared distances of unit vectors (range [0, 4]).
DEFAULT_THRESHOLDS = np.arange(0, 4, 0.01)
#: facenet's finer grid for the VAL@FAR threshold (``lfw.evaluate``).
DEFAULT_VAL_THRESHOLDS = np.arange(0, 4, 0.001)


def l2_normalize(x: np.ndarray, eps: float = 1e-10) -> np.ndarray:
    """Row-wise L2 normalisation."""
    x = np.asarray(x, dtype=np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), eps)


def pair_distances(emb_a: np.ndarray, emb_b: np.ndarray, normalize: bool = True) -> np.ndarray:
    """Squared Euclidean distance between rows of ``emb_a`` and ``emb_b`` (L2-normalised first by default)."""
    a, b = np.asarray(emb_a, np.float64), np.asarray(emb_b, np.float64)
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"embeddings must be two (N, D) arrays of the same shape, got {a.shape} and {b.shape}")
    if normalize:
        a, b = l2_normalize(a), l2_normalize(b)
    return np.sum((a - b) ** 2, axis=1)


def _check(dist, issame) -> tuple[np.ndarray, np.ndarray]:
    d = np.asarray(dist, dtype=np.float64).ravel()
    s = np.asarray(issame).astype(bool).ravel()
    if d.shape != s.shape:
        raise ValueError(f"distances ({d.shape[0]}) and issame ({s.shape[0]}) differ in length")
    if d.size == 0:
        raise ValueError("no pairs")
    if not np.all(np.isfinite(d)):
        raise ValueError("distances contain NaN or inf")
    return d, s


def _grid(thresholds, default: np.ndarray) -> np.ndarray:
    th = default if thresholds is None else np.asarray(thresholds, np.float64).ravel()
    if th.size == 0 or np.any(np.diff(th) <= 0):
        raise ValueError("thresholds must be a non-empty, strictly increasing grid")
    return th


def _count_below(values: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """For each threshold, how many ``values`` are strictly below it (facenet predicts "same" on ``d < t``)."""
    return np.searchsorted(np.sort(values), thresholds, side="left")


def accuracy_at(threshold: float, dist, issame) -> float:
    """Accuracy of predicting "same" when ``dist < threshold``."""
    d, s = _check(dist, issame)
    return float(np.mean((d < threshold) == s))


def val_far_at(threshold: float, dist, issame) -> tuple[float, float]:
    """``(VAL, FAR)``: true-accept rate on positives and false-accept rate on negatives at ``threshold``
    (0.0 for a rate whose class is absent)."""
    d, s = _check(dist, issame)
    pred = d < threshold
    n_same, n_diff = int(s.sum()), int((~s).sum())
    val = float((pred & s).sum() / n_same) if n_same else 0.0
    far = float((pred & ~s).sum() / n_diff) if n_diff else 0.0
    return val, far


def accuracy_curve(dist, issame, thresholds: np.ndarray | None = None) -> np.ndarray:
    """Accuracy of ``dist < t`` for every threshold ``t`` of the grid (default 0..4 step 0.01)."""
    d, s = _check(dist, issame)
    th = _grid(thresholds, DEFAULT_THRESHOLDS)
    neg = d[~s]
    correct = _count_below(d[s], th) + (neg.size - _count_below(neg, th))
    return correct / d.size


def far_curve(dist, issame, thresholds: np.ndarray | None = None) -> np.ndarray:
    """False-accept rate of ``dist < t`` for every threshold ``t`` of the grid (default 0..4 step 0.001);
    all zeros when there are no negative pairs."""
    d, s = _check(dist, issame)
    th = _grid(thresholds, DEFAULT_VAL_THRESHOLDS)
    neg = d[~s]
    if neg.size == 0:
        return np.zeros(th.size)
    return _count_below(neg, th) / neg.size


def best_threshold(dist, issame, thresholds: np.ndarray | None = None) -> float:
    """Threshold of the grid with the highest accuracy on these pairs (first one on ties, as facenet)."""
    th = _grid(thresholds, DEFAULT_THRESHOLDS)
    return float(th[int(np.argmax(accuracy_curve(dist, issame, th)))])


def _slinear_at(x: np.ndarray, y: np.ndarray, x_new: float) -> float:
    """``scipy.interpolate.interp1d(x, y, kind='slinear')(x_new)`` as scipy < 1.9 computed it for a
    non-decreasing ``x`` with repeated values: the degree-1 B-spline with knots ``[x0, x..., xN, xN]``
    and coefficients ``y``, evaluated by de Boor's recursion (a zero-length knot span contributes 0)."""
    if x.size < 2:
        raise ValueError("the VAL threshold grid needs at least 2 thresholds")
    if x_new < x[0] or x_new > x[-1]:
        raise ValueError(f"target FAR {x_new} is outside the training FAR range [{x[0]}, {x[-1]}]")
    # knot span: the last sample at or below x_new, but at most the second-to-last sample
    j = min(int(np.searchsorted(x, x_new, side="right")) - 1, x.size - 2)
    lo, hi = float(x[j]), float(x[j + 1])
    if lo == hi:
        return 0.0
    w = 1.0 / (hi - lo)
    return 0.0 + float(y[j]) * (w * (hi - x_new)) + float(y[j + 1]) * (w * (x_new - lo))


def far_threshold(dist, issame, far_target: float = 1e-3, thresholds: np.ndarray | None = None) -> float:
    """facenet's VAL threshold on these pairs: the grid threshold (default 0..4 step 0.001) interpolated
    at FAR = ``far_target`` on the FAR-vs-threshold curve, or 0.0 when the FAR never reaches the target."""
    th = _grid(thresholds, DEFAULT_VAL_THRESHOLDS)
    far = far_curve(dist, issame, th)
    if far.max() < far_target:
        return 0.0
    return _slinear_at(far, th, float(far_target))


def roc_auc(dist, issame) -> float:
    """ROC AUC of ``-distance`` as a same-identity score (sklearn); NaN if only one class is present."""
    from sklearn.metrics import roc_auc_score

    d, s = _check(dist, issame)
    if s.all() or (~s).all():
        return float("nan")
    return float(roc_auc_score(s, -d))


def equal_error_rate(dist, issame) -> float:
    """The equal error rate: where the ROC's false-accept rate equals its false-reject rate
    (1 - TPR), linearly interpolated between the two ROC points that bracket the crossing; NaN if
    only one class is present."""
    d, s = _check(dist, issame)
    if s.all() or (~s).all():
        return float("nan")
    fpr, tpr, _ = roc_curve(d, s)
    fnr = 1.0 - tpr
    k = int(np.flatnonzero(fpr >= fnr)[0])  # fpr rises from 0 and fnr falls to 0: they cross once
    if k == 0:
        return float(fpr[0])
    d0, d1 = fnr[k - 1] - fpr[k - 1], fnr[k] - fpr[k]  # > 0 before the crossing, <= 0 at k
    t = d0 / (d0 - d1)
    return float(fpr[k - 1] + t * (fpr[k] - fpr[k - 1]))


def roc_curve(dist, issame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(fpr, tpr, distance_thresholds)`` via ``sklearn.metrics.roc_curve`` on ``-distance``."""
    from sklearn.metrics import roc_curve as _roc

    d, s = _check(dist, issame)
    fpr, tpr, thr = _roc(s, -d)
    return fpr, tpr, -thr


def evaluate_fold(
    train_distances,
    train_issame,
    test_distances,
    test_issame,
    thresholds: np.ndarray | None = None,
    far_target: float = 1e-3,
    val_thresholds: np.ndarray | None = None,
) -> dict[str, float]:
    """Evaluate one test fold with thresholds chosen on the training pairs only.

    Returns accuracy (threshold = argmax accuracy on the train pairs over ``thresholds``, default
    0..4 step 0.01), VAL and FAR on the test pairs at the train threshold for ``far_target``
    (:func:`far_threshold` over ``val_thresholds``, default 0..4 step 0.001), the test-pair AUC
    (threshold-free), both thresholds and the pair counts.
    """
    thr = best_threshold(train_distances, train_issame, thresholds)
    vthr = far_threshold(train_distances, train_issame, far_target, val_thresholds)
    val, far = val_far_at(vthr, test_distances, test_issame)
    return {
        "accuracy": accuracy_at(thr, test_distances, test_issame),
        "threshold": thr,
        "val": val,
        "far": far,
        "val_threshold": vthr,
        "auc": roc_auc(test_distances, test_issame),
        "n_train": int(np.size(train_distances)),
        "n_test": int(np.size(test_distances)),
    }


@dataclass
class VerificationResult:
    """Cross-validated verification metrics (means/stds over folds) and the per-fold details."""

    accuracy_mean: float
    accuracy_std: float
    val_mean: float
    val_std: float
    far_mean: float
    auc: float  # AUC over all pairs pooled (threshold-free)
    per_fold: list[dict] = field(default_factory=list)
    far_target: float = 1e-3

    def as_dict(self) -> dict:
        return {
            "accuracy_mean": self.accuracy_mean,
            "accuracy_std": self.accuracy_std,
            "val_mean": self.val_mean,
            "val_std": self.val_std,
            "far_mean": self.far_mean,
            "auc": self.auc,
            "far_target": self.far_target,
            "per_fold": self.per_fold,
        }


def evaluate_folds(
    distances,
    issame,
    folds,
    thresholds: np.ndarray | None = None,
    far_target: float = 1e-3,
    val_thresholds: np.ndarray | None = None,
) -> VerificationResult:
    """LFW-style k-fold evaluation: for each fold, thresholds from the other folds' pairs.

    ``folds`` gives each pair's fold id (e.g. the ``fold`` column of pairs.csv); with the fold ids of
    ``sklearn.model_selection.KFold(10, shuffle=False)`` the per-fold numbers are facenet's.
    """
    d, s = _check(distances, issame)
    f = np.asarray(folds).ravel()
    if f.shape != d.shape:
        raise ValueError(f"folds ({f.shape[0]}) and distances ({d.shape[0]}) differ in length")
    ids = np.unique(f)
    if ids.size < 2:
        raise ValueError("need pairs from at least 2 folds (the threshold is chosen on the other folds)")
    per_fold = []
    for k in ids:
        test = f == k
        r = evaluate_fold(d[~test], s[~test], d[test], s[test], thresholds, far_target, val_thresholds)
        r["fold"] = k.item() if isinstance(k, np.generic) else k
        per_fold.append(r)
    acc = np.array([r["accuracy"] for r in per_fold])
    val = np.array([r["val"] for r in per_fold])
    far = np.array([r["far"] for r in per_fold])
    return VerificationResult(
        float(acc.mean()),
        float(acc.std()),
        float(val.mean()),
        float(val.std()),
        float(far.mean()),
        roc_auc(d, s),
        per_fold,
        far_target,
    )
