"""The multi-task binary dataset container shared by the TTC loaders."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

SPLITS = ("train", "val", "test")


@dataclass
class TaskData:
    """Binary multi-task data (Fang et al. 2017 Sec. 4).

    Attributes:
        name: dataset name (``digits``, ``synthattrs``, ``cifar10``, ``celeba``).
        task_names: the T task names (label columns).
        splits: ``{"train"|"val"|"test": (images, labels)}``; images ``(N, H, W, C)`` float32 in [0, 1],
            labels ``(N, T)`` int8 with 1 = positive, 0 = negative, -1 = not labelled for that task.
        meta: free-form provenance (source, ground-truth relatedness, ...); JSON-friendly values.
    """

    name: str
    task_names: list[str]
    splits: dict[str, tuple[np.ndarray, np.ndarray]]
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        self.task_names = [str(t) for t in self.task_names]
        missing = [s for s in SPLITS if s not in self.splits]
        if missing:
            raise ValueError(f"{self.name}: missing splits {missing}")
        shape = None
        for split, (images, labels) in self.splits.items():
            if images.ndim != 4:
                raise ValueError(f"{self.name}/{split}: images must be (N, H, W, C), got {images.shape}")
            if labels.shape != (len(images), len(self.task_names)):
                raise ValueError(
                    f"{self.name}/{split}: labels must be (N, T) = ({len(images)}, {len(self.task_names)}), "
                    f"got {labels.shape}"
                )
            if not np.isin(labels, (-1, 0, 1)).all():
                raise ValueError(f"{self.name}/{split}: labels must be in {{-1, 0, 1}}")
            if shape is not None and images.shape[1:] != shape:
                raise ValueError(f"{self.name}: image shapes differ between splits")
            shape = images.shape[1:]

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(int(d) for d in self.splits["train"][0].shape[1:])

    def summary(self) -> pd.DataFrame:
        """Per task and split: labelled samples, positives and the minority proportion (cf. Table 3)."""
        rows = []
        for split in SPLITS:
            labels = self.splits[split][1]
            for t, name in enumerate(self.task_names):
                y = labels[:, t]
                n, pos = int((y >= 0).sum()), int((y == 1).sum())
                rows.append(
                    dict(
                        task=name,
                        split=split,
                        labelled=n,
                        positives=pos,
                        minority_proportion=round(min(pos, n - pos) / n, 4) if n else float("nan"),
                    )
                )
        return pd.DataFrame(rows)


def stratified_split(labels: np.ndarray, fractions: tuple[float, float, float], rng: np.random.Generator):
    """Index arrays (train, val, test) splitting each class of ``labels`` by ``fractions``."""
    if abs(sum(fractions) - 1.0) > 1e-9 or min(fractions) < 0:
        raise ValueError(f"fractions must be non-negative and sum to 1, got {fractions}")
    parts: list[list[np.ndarray]] = [[], [], []]
    for value in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == value))
        a = int(round(fractions[0] * len(idx)))
        b = a + int(round(fractions[1] * len(idx)))
        for k, chunk in enumerate((idx[:a], idx[a:b], idx[b:])):
            parts[k].append(chunk)
    return tuple(np.sort(np.concatenate(p)) for p in parts)


def pair_task_labels(class_ids: np.ndarray, pairs) -> np.ndarray:
    """Labels ``(N, len(pairs))`` for pair tasks ``(negative_class, positive_class)``; -1 elsewhere."""
    labels = np.full((len(class_ids), len(pairs)), -1, dtype=np.int8)
    for t, (neg, pos) in enumerate(pairs):
        labels[class_ids == neg, t] = 0
        labels[class_ids == pos, t] = 1
    return labels
