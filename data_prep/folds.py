"""Subject-independent k-fold split (Ming et al. 2019 use 10 folds by subject; docs/fidelity.md).

Deterministic from ``seed`` and independent of input order or Python's set/hash order: the unique
subject ids are sorted, permuted with ``numpy.random.default_rng(seed)``, and dealt round-robin
to the folds, so fold sizes differ by at most one subject. (The authors' folds depended on
Python 2 set order; we do not reproduce that.)
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd


def assign_folds(subjects: Iterable[str], num_folds: int = 10, seed: int = 0) -> pd.DataFrame:
    """Return a DataFrame ``(subject, fold)`` (one row per unique subject, sorted by subject)."""
    uniq = sorted({str(s) for s in subjects})
    if num_folds < 2:
        raise ValueError(f"num_folds must be >= 2, got {num_folds}")
    if len(uniq) < num_folds:
        raise ValueError(
            f"cannot split {len(uniq)} subjects into {num_folds} subject-independent folds; "
            f"use num_folds <= {len(uniq)}"
        )
    order = np.random.default_rng(seed).permutation(len(uniq))
    fold = np.empty(len(uniq), dtype=np.int64)
    fold[order] = np.arange(len(uniq)) % num_folds
    return pd.DataFrame({"subject": uniq, "fold": fold})


def fold_of(folds: pd.DataFrame) -> dict[str, int]:
    """``{subject: fold}`` from a folds table."""
    return dict(zip(folds["subject"].astype(str), folds["fold"].astype(int)))


def split_manifest(manifest: pd.DataFrame, folds: pd.DataFrame, test_fold: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(train, test)`` rows of ``manifest`` for ``test_fold``; raises if a subject has no fold."""
    mapping = fold_of(folds)
    missing = sorted(set(manifest["subject"].astype(str)) - set(mapping))
    if missing:
        raise ValueError(f"subjects without a fold: {missing[:10]}")
    if test_fold not in set(mapping.values()):
        raise ValueError(f"test_fold {test_fold} not in folds {sorted(set(mapping.values()))}")
    f = manifest["subject"].astype(str).map(mapping)
    return manifest[f != test_fold].copy(), manifest[f == test_fold].copy()


def write_folds(folds: pd.DataFrame, path: str | os.PathLike) -> None:
    """Write ``folds.csv`` (subject, fold)."""
    folds[["subject", "fold"]].to_csv(path, index=False)


def read_folds(path: str | os.PathLike) -> pd.DataFrame:
    """Read ``folds.csv``; subject ids stay strings."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"folds file {path} not found (run `dynamic-mtl prepare ...` first)")
    df = pd.read_csv(path, dtype={"subject": str, "fold": "int64"})
    if list(df.columns[:2]) != ["subject", "fold"]:
        raise ValueError(f"{path}: expected columns subject,fold; found {list(df.columns)}")
    if df["subject"].duplicated().any():
        raise ValueError(
            f"{path}: a subject appears in several folds: {sorted(df.loc[df['subject'].duplicated(), 'subject'])[:5]}"
        )
    return df
