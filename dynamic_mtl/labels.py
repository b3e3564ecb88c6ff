"""Per-task labels: missing-label masks, sample weights and label checks.

A label equal to the sentinel -- ``MISSING_LABEL`` (-1) for integer labels, NaN for float
labels -- means "this sample has no label for this task": the sample then contributes to no
loss or metric of that task. A multi-label row counts as missing when any of its entries is.
"""

from __future__ import annotations

import tensorflow as tf

#: The missing-label sentinel of integer labels (float labels use NaN).
MISSING_LABEL = -1


def _row_any(values):
    """(batch, ...) bool -> (batch,): any over the non-batch axes."""
    if len(values.shape) <= 1:
        return values
    return tf.reduce_any(tf.reshape(values, [tf.shape(values)[0], -1]), axis=-1)


def label_mask(labels):
    """1.0 for samples with a label, 0.0 for samples whose label is the sentinel, shape (batch,)."""
    labels = tf.convert_to_tensor(labels)
    if labels.dtype.is_floating:
        missing = tf.math.is_nan(labels)
    elif labels.dtype.is_integer:
        missing = tf.equal(labels, tf.cast(MISSING_LABEL, labels.dtype))
    else:
        return tf.ones([tf.shape(labels)[0]], tf.float32)
    return 1.0 - tf.cast(_row_any(missing), tf.float32)


def fill_missing(labels, mask):
    """``labels`` with the rows of missing samples set to 0 (so no loss or metric sees a sentinel)."""
    labels = tf.convert_to_tensor(labels)
    keep = tf.reshape(tf.cast(mask, tf.bool), [-1] + [1] * (len(labels.shape) - 1))
    return tf.where(keep, labels, tf.zeros_like(labels))


def sample_weights_for(task_name: str, sample_weight, batch_size):
    """The (batch,) float32 sample weights of one task from ``fit``'s ``sample_weight``:
    None (all ones), one vector for every task, or a dict keyed by task name."""
    if sample_weight is None:
        return tf.ones([batch_size], tf.float32)
    if isinstance(sample_weight, dict):
        if task_name not in sample_weight:
            raise KeyError(f"sample_weight has no entry for task {task_name!r} (has {sorted(sample_weight)})")
        sample_weight = sample_weight[task_name]
    weights = tf.cast(tf.convert_to_tensor(sample_weight), tf.float32)
    if len(weights.shape) > 1:
        weights = tf.reshape(weights, [tf.shape(weights)[0]])
    return weights


def checked_class_labels(task_name: str, labels, num_classes: int):
    """``labels`` after checking they are integers in ``[0, num_classes)`` or the sentinel -1.

    A non-integer dtype raises ``TypeError`` when the step is traced; an out-of-range value
    fails the step with an ``InvalidArgumentError`` naming the task and the bad values
    (instead of failing later inside a gather or segment sum).
    """
    labels = tf.convert_to_tensor(labels)
    if not labels.dtype.is_integer:
        raise TypeError(
            f"task {task_name!r}: class labels must be integers (-1 for a missing label), got dtype {labels.dtype.name}"
        )
    bad = tf.logical_and(
        tf.logical_or(labels < 0, labels >= num_classes), tf.not_equal(labels, tf.cast(MISSING_LABEL, labels.dtype))
    )
    flat_bad = tf.reshape(bad, [-1])
    first = tf.argmax(tf.cast(flat_bad, tf.int32))  # static shapes: also fine under XLA
    check = tf.debugging.Assert(
        tf.logical_not(tf.reduce_any(bad)),
        [
            f"task {task_name}: class labels must lie in [0, {num_classes}) or be {MISSING_LABEL} (missing); got",
            tf.gather(tf.reshape(labels, [-1]), first),
            "at batch position",
            first,
            "and",
            tf.reduce_sum(tf.cast(flat_bad, tf.int32)) - 1,
            "more",
        ],
    )
    with tf.control_dependencies([check]):
        return tf.identity(labels)
