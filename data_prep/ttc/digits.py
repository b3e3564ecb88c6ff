"""scikit-learn's bundled digits as 5 binary tasks shaped like the paper's CIFAR-10 split (Table 5).

Real data (1797 8x8 handwritten digits shipped inside scikit-learn), no download. Like CIFAR-10 in the
paper, the 10 classes form 5 disjoint pair tasks; we pair digits that are often confused (3/8, 5/9, 1/7,
4/6, 0/2) so that the tasks are not all at ceiling. Each image is labelled for exactly one task.
"""

from __future__ import annotations

import cv2
import numpy as np
from sklearn.datasets import load_digits

from data_prep.ttc.common import TaskData, pair_task_labels, stratified_split

#: (negative digit, positive digit) per task, named "neg.pos" like the paper's "cat.dog".
DIGIT_TASKS: tuple[tuple[int, int], ...] = ((3, 8), (5, 9), (1, 7), (4, 6), (0, 2))


def load_digits_tasks(
    size: int = 16,
    fractions: tuple[float, float, float] = (0.5, 0.15, 0.35),
    seed: int = 0,
    pairs: tuple[tuple[int, int], ...] = DIGIT_TASKS,
    train_per_class: int | None = None,
) -> TaskData:
    """Loads the digits, upsampled to ``size`` x ``size`` (bilinear), in [0, 1], one channel.

    Args:
        size: output side (the native 8 is allowed).
        fractions: train / val / test fractions, stratified by digit.
        seed: split seed.
        pairs: the pair tasks.
        train_per_class: keep only this many training images per digit (a few-shot regime; with all
            ~90 per digit every model is at 99-100 %). Validation and test splits are unaffected.
    """
    if size < 1:
        raise ValueError(f"size must be >= 1, got {size}")
    if train_per_class is not None and train_per_class < 1:
        raise ValueError(f"train_per_class must be >= 1, got {train_per_class}")
    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)
    if size != 8:
        images = np.stack([cv2.resize(im, (size, size), interpolation=cv2.INTER_LINEAR) for im in images])
    images = np.clip(images, 0.0, 1.0)[..., None]
    target = digits.target
    labels = pair_task_labels(target, pairs)
    rng = np.random.default_rng(seed)
    train, val, test = stratified_split(target, fractions, rng)
    if train_per_class is not None:
        train = np.sort(
            np.concatenate([rng.permutation(train[target[train] == d])[:train_per_class] for d in np.unique(target)])
        )
    return TaskData(
        name="digits",
        task_names=[f"{a}.{b}" for a, b in pairs],
        splits={k: (images[i], labels[i]) for k, i in (("train", train), ("val", val), ("test", test))},
        meta=dict(
            source="sklearn.datasets.load_digits (UCI optdigits test set, 1797 images)",
            pairs=[list(p) for p in pairs],
            size=size,
            seed=seed,
            train_per_class=train_per_class,
        ),
    )
