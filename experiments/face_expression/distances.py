"""The per-fold distance files of a run: ``per_fold/<method>_fold<k>_distances.npz``.

Each holds a (method, fold)'s test and validation pair distances (``test_distances``,
``test_issame``, ``test_kind``, ``validation_distances``, ``validation_issame``) and, when stored,
its test images' expression labels and predictions (``test_expression_true``,
``test_expression_pred``). The tables (experiments/face_expression/tables.py) and the further analyses
(experiments/face_expression/analyses.py) read them here, each file once.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def distances_path(run_dir: str | Path, method: str, fold: int) -> Path:
    """Where ``dynamic-mtl run`` writes the distances of ``(method, fold)``."""
    return Path(run_dir) / "per_fold" / f"{method}_fold{fold}_distances.npz"


def load_distances(run_dir: str | Path, method: str, folds: list[int]) -> dict[int, dict[str, np.ndarray]]:
    """``{fold: {array name: array}}`` of the folds of ``method`` that have a distances file, in
    the order of ``folds`` (every file read once, into memory)."""
    loaded = {}
    for fold in folds:
        path = distances_path(run_dir, method, fold)
        if path.is_file():
            with np.load(path) as z:
                loaded[fold] = {k: z[k] for k in z.files}
    return loaded
