"""Streaming tf.data input for identity classification (pretraining), resumable to the epoch.

Only the list of file paths and labels is held in memory (a few hundred MB for millions of
images); images are read and decoded per batch, so datasets far larger than memory work.

Every random choice is a pure function of ``(seed, epoch, position)``: the epoch's order is
``tf.random.experimental.stateless_shuffle`` with seed ``(seed, epoch)`` and each image's crop and
flip use stateless ops seeded from its global position. A run resumed at epoch ``k`` therefore sees
exactly the batches an uninterrupted run sees from epoch ``k`` on.

Preprocessing is a :class:`data_prep.pipeline.Preprocessing` spec, as in the experiments harness: a
random ``crop_fraction`` crop, random horizontal flip, bilinear antialiased resize to ``image_size``,
then the spec's standardisation. The images stream from files (an identity dataset need not fit in
memory, unlike the harness's :func:`data_prep.pipeline.training_batches`), and the crop and flip keys
are derived from the global position as pretraining has always done (flip before the resize), so
resumed and earlier pretraining runs keep their batches.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from .pipeline import Preprocessing, decode_image, preprocess, steps_per_epoch


def train_preprocess(img: tf.Tensor, seed: tf.Tensor, spec: Preprocessing) -> tf.Tensor:
    """Stateless random crop + flip (``seed``: int64[2]), then resize + standardise as the harness."""
    shape = tf.shape(img)
    ch = tf.cast(tf.round(tf.cast(shape[0], tf.float32) * spec.crop_fraction), tf.int32)
    cw = tf.cast(tf.round(tf.cast(shape[1], tf.float32) * spec.crop_fraction), tf.int32)
    if spec.crop_fraction < 1.0:
        img = tf.image.stateless_random_crop(img, tf.stack([ch, cw, 3]), seed=seed)
    if spec.flip:
        img = tf.image.stateless_random_flip_left_right(img, seed=seed[::-1])
    return preprocess(img, dataclasses.replace(spec, crop_fraction=1.0, flip=False), False)


def make_identity_dataset(
    paths: Sequence[str],
    labels: Sequence[int],
    spec: Preprocessing,
    batch_size: int,
    epochs: int,
    initial_epoch: int = 0,
    seed: int = 0,
    root: str | os.PathLike | None = None,
) -> tf.data.Dataset:
    """Batches ``(images, {"identity": labels})`` for epochs ``initial_epoch .. epochs-1``, in order.

    ``batch_size`` is the GLOBAL batch. Each epoch yields :func:`steps_per_epoch` batches; pass
    ``steps_per_epoch`` to ``fit`` together with ``initial_epoch``.
    """
    if len(paths) != len(labels):
        raise ValueError(f"{len(paths)} paths but {len(labels)} labels")
    full = [str(p) if root is None or os.path.isabs(str(p)) else os.path.join(str(root), str(p)) for p in paths]
    n = len(full)
    steps = steps_per_epoch(n, batch_size)
    used = steps * batch_size
    path_t = tf.constant(full, tf.string)
    label_t = tf.constant(np.asarray(labels, np.int32))
    seed = int(seed)

    def one_epoch(epoch: tf.Tensor) -> tf.data.Dataset:
        order = tf.random.experimental.stateless_shuffle(
            tf.range(n, dtype=tf.int64), seed=tf.stack([tf.constant(seed, tf.int64), epoch])
        )[:used]
        position = epoch * used + tf.range(used, dtype=tf.int64)
        return tf.data.Dataset.from_tensor_slices((tf.gather(path_t, order), tf.gather(label_t, order), position))

    def load(path, label, position):
        img = train_preprocess(decode_image(path), tf.stack([tf.constant(seed + 1, tf.int64), position]), spec)
        return img, {"identity": label}

    ds = tf.data.Dataset.range(initial_epoch, epochs).flat_map(one_epoch)
    ds = ds.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)
