"""The per-fold training histories of a run: ``per_fold/<method>_fold<k>_history.csv``.

One row per epoch: the training logs (losses, weights, training accuracies) and the validation scores
of model selection (docs/run.md). A row that trains no epoch (the ``pretrained`` network) has an empty
file. The study's curves (experiments/face_expression/study.py) and the learning-curve plots
(experiments/face_expression/learning_curve.py) read them here.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd

_SUFFIX = "_history.csv"


def history_path(run_dir: str | Path, method: str, fold: int) -> Path:
    """Where ``dynamic-mtl run`` writes the history of ``(method, fold)``."""
    return Path(run_dir) / "per_fold" / f"{method}_fold{fold}{_SUFFIX}"


def read_histories(run_dir: str | Path) -> Iterator[tuple[str, int, pd.DataFrame]]:
    """``(method, fold, history)`` of every (method, fold) of ``run_dir`` that trained at least one epoch."""
    for path in sorted((Path(run_dir) / "per_fold").glob(f"*_fold*{_SUFFIX}")):
        method, fold = path.name[: -len(_SUFFIX)].rsplit("_fold", 1)
        try:
            history = pd.read_csv(path)
        except pd.errors.EmptyDataError:  # a row that trains no epoch
            continue
        if len(history):
            yield method, int(fold), history
