"""The input pipeline: one preprocessing spec and one array pipeline for every harness.

:class:`Preprocessing` (image size, crop fraction, flip, standardisation) is passed as one object.
Per image: take the central ``crop_fraction`` (training: a random crop of that size, like the
authors' 160-of-182 random crop), resize to ``image_size`` (bilinear, antialiased), a random
horizontal flip (training, when ``flip``), then standardise:

* ``"prewhiten"`` (default): per-image ``(x - mean) / max(std, 1/sqrt(N))``, facenet's ``prewhiten``
  used by the authors' code;
* ``"unit"``: fixed ``(x - 127.5) / 128`` into about [-1, 1];
* ``"none"``: the pixel values as they are.

:func:`training_batches` and :func:`evaluation_batches` turn images held in memory (uint8
``[N, H, W, 3]``, e.g. ``experiments.face_expression.data.ImageStore``) into batches: the experiments harness and
``benchmarks/pipeline.py`` run exactly these. Training is one epoch per call, shuffled from a seed,
with every random crop and flip a pure function of ``(epoch seed, position)`` (stateless ops), so a
parallel ``map`` and a resumed run give the same batches. Batches use the GLOBAL batch size (all
replicas together). :func:`make_image_dataset` reads image files for evaluation (LFW pairs).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import tensorflow as tf

#: The authors train at 160 px on 182 px crops.
DEFAULT_CROP_FRACTION = 160.0 / 182.0
STANDARDIZATIONS = ("prewhiten", "unit", "none")


@dataclass(frozen=True)
class Preprocessing:
    """Per-image preprocessing of every pipeline (the authors' 160-of-182 crop and prewhiten by default)."""

    image_size: int
    crop_fraction: float = DEFAULT_CROP_FRACTION
    flip: bool = True
    standardize: str = "prewhiten"

    def __post_init__(self) -> None:
        if not int(self.image_size) == self.image_size or self.image_size < 1:
            raise ValueError(f"image_size must be a positive integer, got {self.image_size!r}")
        if not 0.0 < self.crop_fraction <= 1.0:
            raise ValueError(f"crop_fraction must be in (0, 1], got {self.crop_fraction}")
        if self.standardize not in STANDARDIZATIONS:
            raise ValueError(f"standardize must be one of {STANDARDIZATIONS}, got {self.standardize!r}")

    def training(self, image: tf.Tensor, key: tf.Tensor) -> tf.Tensor:
        """Random crop and flip keyed by ``key`` (int64 ``[2]``, e.g. ``[epoch_seed, position]``)."""
        return preprocess(tf.cast(image, tf.float32), self, True, stateless_seed=key)

    def evaluation(self, image: tf.Tensor) -> tf.Tensor:
        """Central crop, no flip."""
        return preprocess(tf.cast(image, tf.float32), self, False)


def identity_map(subjects: Iterable[str]) -> dict[str, int]:
    """Map subject ids to contiguous labels 0..K-1 (sorted, so independent of input order)."""
    return {s: i for i, s in enumerate(sorted({str(s) for s in subjects}))}


def resolve_paths(paths: Iterable[str], root: str | os.PathLike | None) -> list[str]:
    """Join manifest-relative paths with the prepared dataset root (absolute paths are kept)."""
    out = []
    for p in paths:
        q = Path(str(p))
        out.append(str(q if q.is_absolute() or root is None else Path(root) / q))
    return out


def decode_image(path: tf.Tensor) -> tf.Tensor:
    """A PNG/JPEG file as float32 ``[H, W, 3]`` (grayscale expanded to 3 channels)."""
    img = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
    img.set_shape([None, None, 3])
    return tf.cast(img, tf.float32)


def _standardize(img: tf.Tensor, mode: str) -> tf.Tensor:
    if mode == "prewhiten":
        n = tf.cast(tf.size(img), tf.float32)
        mean = tf.reduce_mean(img)
        std = tf.maximum(tf.math.reduce_std(img), 1.0 / tf.sqrt(n))
        return (img - mean) / std
    if mode == "unit":
        return (img - 127.5) / 128.0
    return img


def preprocess(
    img: tf.Tensor,
    spec: Preprocessing,
    training: bool,
    seed: int | None = None,
    stateless_seed: tf.Tensor | None = None,
) -> tf.Tensor:
    """Crop (central, or random when ``training``), resize to ``spec.image_size``, flip, standardise.

    ``stateless_seed`` (int32/int64 shape [2], e.g. ``[epoch_seed, element_index]``) makes the
    random crop and flip a pure function of the seed (``tf.image.stateless_*``), so a parallel
    ``map`` gives the same augmentation whatever order its threads run in; otherwise the
    stateful ops use the op ``seed``.
    """
    shape = tf.shape(img)
    h, w = shape[0], shape[1]
    ch = tf.cast(tf.round(tf.cast(h, tf.float32) * spec.crop_fraction), tf.int32)
    cw = tf.cast(tf.round(tf.cast(w, tf.float32) * spec.crop_fraction), tf.int32)
    if training and spec.crop_fraction < 1.0:
        if stateless_seed is not None:
            img = tf.image.stateless_random_crop(img, tf.stack([ch, cw, 3]), seed=stateless_seed)
        else:
            img = tf.image.random_crop(img, tf.stack([ch, cw, 3]), seed=seed)
    else:
        oy, ox = (h - ch) // 2, (w - cw) // 2
        img = img[oy : oy + ch, ox : ox + cw]
    img = tf.image.resize(img, [spec.image_size, spec.image_size], method="bilinear", antialias=True)
    if training and spec.flip:
        if stateless_seed is not None:
            img = tf.image.stateless_random_flip_left_right(img, seed=stateless_seed + 1)
        else:
            img = tf.image.random_flip_left_right(img, seed=seed)
    img = _standardize(img, spec.standardize)
    img.set_shape([spec.image_size, spec.image_size, 3])
    return img


@functools.cache
def _image_function(spec: Preprocessing, training: bool):
    """The per-image preprocessing as one ``tf.function`` per spec, so the per-epoch datasets reuse
    its trace instead of tracing the preprocessing again."""
    return tf.function(spec.training if training else spec.evaluation)


def training_batches(
    images: np.ndarray, labels: dict[str, np.ndarray], spec: Preprocessing, batch_size: int, seed: int
) -> tf.data.Dataset:
    """One training epoch of ``(images float32 [B, S, S, 3], labels)`` batches, full batches only.

    The order is ``np.random.default_rng(seed).permutation``; the image at position ``i`` of it is
    cropped and flipped with the stateless key ``(seed, i)``. ``seed`` is the epoch's seed (a function
    of run seed, fold and epoch in the harness), so a resumed run sees the same batches.
    """
    return training_epochs(images, labels, spec, batch_size, [seed])


def steps_per_epoch(num_images: int, batch_size: int) -> int:
    """Training steps of one epoch: full batches only (the remainder of each epoch's shuffled order is
    left out, a new one each epoch), as :func:`training_epochs` and the identity pipeline batch."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    steps = num_images // batch_size
    if steps < 1:
        raise ValueError(f"{num_images} images do not fill one batch of {batch_size}; lower the batch size")
    return steps


def training_epochs(
    images: np.ndarray,
    labels: dict[str, np.ndarray],
    spec: Preprocessing,
    batch_size: int,
    epoch_seeds: Sequence[int],
) -> tf.data.Dataset:
    """Several training epochs as one dataset: epoch ``e`` is exactly
    ``training_batches(images, labels, spec, batch_size, epoch_seeds[e])``, one after another, so one
    ``fit(..., steps_per_epoch=steps_per_epoch(len(images), batch_size))`` trains them all (one input pipeline and
    one ``fit`` call instead of one per epoch).

    The images stay one array that the pipeline indexes; per epoch only the order (and the
    positions' augmentation keys) is materialised, without the remainder that ``drop_remainder``
    would drop.
    """
    n = len(images)
    if any(len(v) != n for v in labels.values()):
        raise ValueError(f"{n} images but labels of lengths { ({k: len(v) for k, v in labels.items()}) }")
    kept = steps_per_epoch(n, batch_size) * batch_size
    orders, keys = [], []
    for seed in epoch_seeds:
        orders.append(np.random.default_rng(seed).permutation(n)[:kept])
        keys.append(np.stack([np.full(kept, seed, np.int64), np.arange(kept, dtype=np.int64)], axis=1))
    order = np.concatenate(orders) if orders else np.zeros(0, np.int64)
    keys = np.concatenate(keys) if keys else np.zeros((0, 2), np.int64)
    pixels = tf.constant(images)
    dataset = tf.data.Dataset.from_tensor_slices((order, {k: v[order] for k, v in labels.items()}, keys))
    augment = _image_function(spec, True)
    dataset = dataset.map(
        lambda index, y, key: (augment(tf.gather(pixels, index), key), y),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )
    return dataset.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)


def evaluation_batches(images: np.ndarray, spec: Preprocessing, batch_size: int) -> tf.data.Dataset:
    """Images only, in the given order, central crop; the last batch may be smaller."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    dataset = tf.data.Dataset.from_tensor_slices(images).map(
        _image_function(spec, False), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
    )
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def make_image_dataset(
    paths: Sequence[str], spec: Preprocessing, batch_size: int, root: str | os.PathLike | None = None
) -> tf.data.Dataset:
    """Image files (relative to ``root``) in the given order, evaluation preprocessing (embeddings of pair images)."""
    if len(paths) == 0:
        raise ValueError("no paths")
    ds = tf.data.Dataset.from_tensor_slices(resolve_paths(paths, root))
    ds = ds.map(lambda p: spec.evaluation(decode_image(p)), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def pair_image_order(pairs: pd.DataFrame) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Unique pair images and index arrays: ``embeddings[idx_a]`` / ``embeddings[idx_b]`` give each pair's sides."""
    uniq = sorted(set(pairs["path_a"]).union(pairs["path_b"]))
    pos = {p: i for i, p in enumerate(uniq)}
    return uniq, pairs["path_a"].map(pos).to_numpy(), pairs["path_b"].map(pos).to_numpy()
