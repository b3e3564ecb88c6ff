"""Face-verification metrics: the LFW / facenet protocol, without global state.

Ming et al. 2019 report verification accuracy on CK+ / Oulu-CASIA pairs with the facenet
protocol (REFERENCE.md section 2): squared Euclidean distance between L2-normalised embeddings,
thresholds 0..4 in steps of 0.01, the threshold that maximises accuracy on the OTHER folds' pairs
is applied to the test fold; VAL@FAR=1e-3 likewise with a threshold chosen on the other folds.
The threshold is never chosen on the pairs it is evaluated on. ROC / AUC come from scikit-learn.

Differences from facenet's ``lfw.calculate_val``: the VAL threshold is the largest grid threshold
whose training FAR is <= the target (no interpolation), and no pairs are dropped to a multiple of
100 (an authors' defect).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: facenet's threshold grid for squared distances of unit vectors (range [0, 4]).
DEFAULT_THRESHOLDS = np.arange(0.0, 4.0, 0.01)


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


def accuracy_at(threshold: float, dist, issame) -> float:
    """Accuracy of predicting "same" when ``dist < threshold``."""
    d, s = _check(dist, issame)
    return float(np.mean((d < threshold) == s))


def val_far_at(threshold: float, dist, issame) -> tuple[float, float]:
    """``(VAL, FAR)``: true-accept rate on positives and false-accept rate on negatives at ``threshold``."""
    d, s = _check(dist, issame)
    pred = d < threshold
    n_same, n_diff = int(s.sum()), int((~s).sum())
    val = float((pred & s).sum() / n_same) if n_same else 0.0
    far = float((pred & ~s).sum() / n_diff) if n_diff else 0.0
    return val, far


def best_threshold(dist, issame, thresholds: np.ndarray | None = None) -> float:
    """Threshold of the grid with the highest accuracy on these pairs (first one on ties, as facenet)."""
    d, s = _check(dist, issame)
    th = DEFAULT_THRESHOLDS if thresholds is None else np.asarray(thresholds, np.float64)
    acc = ((d[None, :] < th[:, None]) == s[None, :]).mean(axis=1)
    return float(th[int(np.argmax(acc))])


def far_threshold(dist, issame, far_target: float = 1e-3, thresholds: np.ndarray | None = None) -> float:
    """Largest grid threshold whose FAR on these pairs is <= ``far_target`` (0.0 if none)."""
    d, s = _check(dist, issame)
    th = DEFAULT_THRESHOLDS if thresholds is None else np.asarray(thresholds, np.float64)
    neg = d[~s]
    if neg.size == 0:
        return float(th[-1])
    far = (neg[None, :] < th[:, None]).mean(axis=1)
    ok = np.nonzero(far <= far_target)[0]
    return float(th[ok[-1]]) if ok.size else 0.0


def roc_auc(dist, issame) -> float:
    """ROC AUC of ``-distance`` as a same-identity score (sklearn); NaN if only one class is present."""
    from sklearn.metrics import roc_auc_score

    d, s = _check(dist, issame)
    if s.all() or (~s).all():
        return float("nan")
    return float(roc_auc_score(s, -d))


def roc_curve(dist, issame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(fpr, tpr, distance_thresholds)`` via ``sklearn.metrics.roc_curve`` on ``-distance``."""
    from sklearn.metrics import roc_curve as _roc

    d, s = _check(dist, issame)
    fpr, tpr, thr = _roc(s, -d)
    return fpr, tpr, -thr


def evaluate_fold(train_distances, train_issame, test_distances, test_issame,
                  thresholds: np.ndarray | None = None, far_target: float = 1e-3) -> dict[str, float]:
    """Evaluate one test fold with thresholds chosen on the training pairs only.

    Returns accuracy (threshold = argmax accuracy on the train pairs), VAL and FAR on the test pairs
    at the train threshold for ``far_target``, the test-pair AUC (threshold-free), both thresholds
    and the pair counts.
    """
    thr = best_threshold(train_distances, train_issame, thresholds)
    vthr = far_threshold(train_distances, train_issame, far_target, thresholds)
    val, far = val_far_at(vthr, test_distances, test_issame)
    return {"accuracy": accuracy_at(thr, test_distances, test_issame), "threshold": thr,
            "val": val, "far": far, "val_threshold": vthr, "auc": roc_auc(test_distances, test_issame),
            "n_train": int(np.size(train_distances)), "n_test": int(np.size(test_distances))}


@dataclass
class VerificationResult:
    """Cross-validated verification metrics (means/stds over folds) and the per-fold details."""
    accuracy_mean: float
    accuracy_std: float
    val_mean: float
    val_std: float
    far_mean: float
    auc: float                      # AUC over all pairs pooled (threshold-free)
    per_fold: list[dict] = field(default_factory=list)
    far_target: float = 1e-3

    def as_dict(self) -> dict:
        return {"accuracy_mean": self.accuracy_mean, "accuracy_std": self.accuracy_std,
                "val_mean": self.val_mean, "val_std": self.val_std, "far_mean": self.far_mean,
                "auc": self.auc, "far_target": self.far_target, "per_fold": self.per_fold}


def evaluate_folds(distances, issame, folds, thresholds: np.ndarray | None = None,
                   far_target: float = 1e-3) -> VerificationResult:
    """LFW-style k-fold evaluation: for each fold, thresholds from the other folds' pairs.

    ``folds`` gives each pair's fold id (e.g. the ``fold`` column of pairs.csv).
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
        r = evaluate_fold(d[~test], s[~test], d[test], s[test], thresholds, far_target)
        r["fold"] = int(k) if np.issubdtype(type(k), np.integer) else k
        per_fold.append(r)
    acc = np.array([r["accuracy"] for r in per_fold])
    val = np.array([r["val"] for r in per_fold])
    far = np.array([r["far"] for r in per_fold])
    return VerificationResult(float(acc.mean()), float(acc.std()), float(val.mean()), float(val.std()),
                              float(far.mean()), roc_auc(d, s), per_fold, far_target)
