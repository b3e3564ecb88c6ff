"""tf.data input pipelines over a prepared manifest.

Element of :func:`make_dataset`: ``(images, {"identity": int32[B], "expression": int32[B]})`` with
images float32 ``[B, image_size, image_size, 3]``. Per image: decode PNG/JPEG (grayscale is
expanded to 3 channels), take the central ``crop_fraction`` (training: a random crop of that size,
like the authors' 160-of-182 random crop), resize to ``image_size``, optional random horizontal flip
(training), then standardise:

* ``"prewhiten"`` (default): per-image ``(x - mean) / max(std, 1/sqrt(N))``, facenet's ``prewhiten``
  used by the authors' code;
* ``"unit"``: fixed ``(x - 127.5) / 128`` into about [-1, 1].

Batches use the GLOBAL batch size (all replicas together): pass the dataset to
``strategy.experimental_distribute_dataset`` to split it. Shuffling is seeded.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import tensorflow as tf

#: The authors train at 160 px on 182 px crops.
DEFAULT_CROP_FRACTION = 160.0 / 182.0
STANDARDIZATIONS = ("prewhiten", "unit", "none")


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


def _decode(path: tf.Tensor) -> tf.Tensor:
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
    image_size: int,
    training: bool,
    crop_fraction: float,
    flip: bool,
    standardize: str,
    seed: int | None,
    stateless_seed: tf.Tensor | None = None,
) -> tf.Tensor:
    """Crop (central, or random when training), resize to ``image_size``, flip, standardise.

    ``stateless_seed`` (int32/int64 shape [2], e.g. ``[epoch_seed, element_index]``) makes the
    random crop and flip a pure function of the seed (``tf.image.stateless_*``), so a parallel
    ``map`` gives the same augmentation whatever order its threads run in; otherwise the
    stateful ops use the op ``seed``.
    """
    shape = tf.shape(img)
    h, w = shape[0], shape[1]
    ch = tf.cast(tf.round(tf.cast(h, tf.float32) * crop_fraction), tf.int32)
    cw = tf.cast(tf.round(tf.cast(w, tf.float32) * crop_fraction), tf.int32)
    if training and crop_fraction < 1.0:
        if stateless_seed is not None:
            img = tf.image.stateless_random_crop(img, tf.stack([ch, cw, 3]), seed=stateless_seed)
        else:
            img = tf.image.random_crop(img, tf.stack([ch, cw, 3]), seed=seed)
    else:
        oy, ox = (h - ch) // 2, (w - cw) // 2
        img = img[oy : oy + ch, ox : ox + cw]
    img = tf.image.resize(img, [image_size, image_size], method="bilinear", antialias=True)
    if training and flip:
        if stateless_seed is not None:
            img = tf.image.stateless_random_flip_left_right(img, seed=stateless_seed + 1)
        else:
            img = tf.image.random_flip_left_right(img, seed=seed)
    img = _standardize(img, standardize)
    img.set_shape([image_size, image_size, 3])
    return img


def make_dataset(
    manifest: pd.DataFrame,
    root: str | os.PathLike | None,
    image_size: int,
    batch_size: int,
    training: bool,
    seed: int = 0,
    id_map: dict[str, int] | None = None,
    standardize: str = "prewhiten",
    crop_fraction: float = DEFAULT_CROP_FRACTION,
    flip: bool = True,
    drop_unlabelled: bool = True,
    drop_remainder: bool | None = None,
    repeat: bool = False,
    cache: bool = False,
    shuffle_buffer: int | None = None,
) -> tuple[tf.data.Dataset, dict[str, int]]:
    """Build the two-task dataset from manifest rows; returns ``(dataset, id_map)``.

    ``batch_size`` is the GLOBAL batch size. ``id_map`` (subject -> label) defaults to
    :func:`identity_map` of these rows; rows whose subject is not in a given ``id_map`` raise.
    ``drop_unlabelled`` drops rows with expression < 0 (Oulu 6-class neutral frames).
    Training: shuffled (seeded, reshuffled each epoch), random crop + flip, ``drop_remainder``
    defaults to True; evaluation: manifest order, central crop, all rows kept.
    """
    if standardize not in STANDARDIZATIONS:
        raise ValueError(f"standardize must be one of {STANDARDIZATIONS}, got {standardize!r}")
    if not 0.0 < crop_fraction <= 1.0:
        raise ValueError(f"crop_fraction must be in (0, 1], got {crop_fraction}")
    if batch_size < 1 or image_size < 1:
        raise ValueError(f"batch_size and image_size must be positive, got {batch_size}, {image_size}")
    need = {"path", "subject", "expression"}
    if not need <= set(manifest.columns):
        raise ValueError(f"manifest lacks columns {sorted(need - set(manifest.columns))}")
    m = manifest
    if drop_unlabelled:
        m = m[m["expression"].astype(int) >= 0]
    if m.empty:
        raise ValueError("no rows to build a dataset from")
    subjects = m["subject"].astype(str)
    id_map = dict(id_map) if id_map is not None else identity_map(subjects)
    unknown = sorted(set(subjects) - set(id_map))
    if unknown:
        raise ValueError(f"subjects not in id_map: {unknown[:10]}")
    paths = resolve_paths(m["path"], root)
    ids = np.array([id_map[s] for s in subjects], dtype=np.int32)
    exprs = m["expression"].astype(np.int32).to_numpy()
    ds = tf.data.Dataset.from_tensor_slices((paths, ids, exprs))
    if training:
        ds = ds.shuffle(shuffle_buffer or len(paths), seed=seed, reshuffle_each_iteration=True)
    if cache:
        ds = ds.map(lambda p, i, e: (_decode(p), i, e), num_parallel_calls=tf.data.AUTOTUNE).cache()
    else:
        ds = ds.map(lambda p, i, e: (_decode(p), i, e), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    op_seed = None if seed is None else seed + 1
    ds = ds.map(
        lambda x, i, e: (
            preprocess(x, image_size, training, crop_fraction, flip, standardize, op_seed),
            {"identity": i, "expression": e},
        ),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )
    if repeat:
        ds = ds.repeat()
    ds = ds.batch(batch_size, drop_remainder=training if drop_remainder is None else drop_remainder)
    return ds.prefetch(tf.data.AUTOTUNE), id_map


def make_image_dataset(
    paths: Sequence[str],
    root: str | os.PathLike | None,
    image_size: int,
    batch_size: int,
    standardize: str = "prewhiten",
    crop_fraction: float = DEFAULT_CROP_FRACTION,
) -> tf.data.Dataset:
    """Images only, in the given order, evaluation preprocessing (for embeddings of pair images)."""
    if len(paths) == 0:
        raise ValueError("no paths")
    ds = tf.data.Dataset.from_tensor_slices(resolve_paths(paths, root))
    ds = ds.map(
        lambda p: preprocess(_decode(p), image_size, False, crop_fraction, False, standardize, None),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def pair_image_order(pairs: pd.DataFrame) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Unique pair images and index arrays: ``embeddings[idx_a]`` / ``embeddings[idx_b]`` give each pair's sides."""
    uniq = sorted(set(pairs["path_a"]).union(pairs["path_b"]))
    pos = {p: i for i, p in enumerate(uniq)}
    return uniq, pairs["path_a"].map(pos).to_numpy(), pairs["path_b"].map(pos).to_numpy()
