"""Shared machinery of the per-task gradient methods (PCGrad, MGDA-UB, CAGrad, ...).

Every method here combines the task gradients ``G`` (``(T, P)``, row i = dL_i/dtheta_shared of
the global batch) into one direction ``d = c^T G``. Most of them only need the ``T x T`` Gram
matrix ``M = G G^T`` to find the coefficients ``c``: the work is then ``O(T^2 P)`` for ``M``,
``O(T^3)`` for the method's own maths (done in float64) and ``O(T P)`` for ``d``.
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops

from dynamic_mtl.weighting.base import SteppedRandomWeighting


class GradientWeighting(SteppedRandomWeighting):
    """Base of the gradient methods: ``uses_task_gradients`` and a step counter.

    Subclasses implement ``coefficients(gram, task_losses) -> c`` (float64 ``(T,)``) or override
    ``combine_task_gradients``. The task heads are trained on ``sum_i L_i`` (``task_weights``
    returns ones). ``update_state`` advances ``step``, which seeds the stateless random ops
    (with the ``seed`` option) so that every replica draws the same numbers.
    """

    uses_task_gradients = True

    def task_weights(self, unit_weights=None):
        return ops.ones((self.num_tasks,), "float32")

    def coefficients(self, gram, task_losses):
        raise NotImplementedError

    def build_task_gradient_state(self, num_shared_parameters: int) -> None:
        """Create state whose size is P, the shared parameter count (with
        ``needs_shared_parameter_count``, the model calls this once at construction, so that
        the state exists before any weights are saved or restored)."""

    def combine_task_gradients(self, task_gradients, task_losses):
        """``d = c^T G`` with ``c = coefficients(G G^T, L)``; returns ``(d, c)``."""
        grads = as_task_matrix(task_gradients, self.num_tasks)
        gram = tf.cast(tf.matmul(grads, grads, transpose_b=True), tf.float64)
        coefficients = self.coefficients(gram, tf.cast(task_losses, tf.float64))
        coefficients = tf.cast(coefficients, tf.float32)
        return tf.linalg.matvec(grads, coefficients, transpose_a=True), coefficients


def as_task_matrix(task_gradients, num_tasks: int):
    grads = tf.convert_to_tensor(task_gradients, tf.float32)
    if grads.shape.rank != 2 or (grads.shape[0] is not None and grads.shape[0] != num_tasks):
        raise ValueError(f"task_gradients must have shape ({num_tasks}, P), got {grads.shape}")
    return grads


def random_task_orders(seed, num_tasks: int):
    """For every task i, the other tasks in a random order: int32 ``(T, T - 1)``."""
    keys = tf.random.stateless_uniform((num_tasks, num_tasks), seed=seed, dtype=tf.float32)
    keys = keys + 2.0 * tf.eye(num_tasks)  # task i sorts last in its own row, then is dropped
    return tf.argsort(keys, axis=1)[:, : num_tasks - 1]


def lazy_state(layer: keras.layers.Layer, name: str, shape, initializer="zeros"):
    """A non-trainable state variable created on first use (inside the first trace of the
    train step when its shape is known only then: e.g. a ``(T, P)`` gradient buffer)."""
    existing = getattr(layer, "_lazy_" + name, None)
    if existing is not None:
        return existing
    with tf.init_scope():
        locked = layer._tracker.locked
        layer._tracker.unlock()
        variable = layer.add_weight(
            name=name, shape=tuple(shape), initializer=initializer, trainable=False, aggregation="only_first_replica"
        )
        if locked:
            layer._tracker.lock()
    object.__setattr__(layer, "_lazy_" + name, variable)
    return variable


def project_to_simplex(v):
    """Euclidean projection of the rows of ``v`` (``(T,)``) onto the probability simplex."""
    n = v.shape[-1]
    u = tf.sort(v, direction="DESCENDING")
    css = tf.cumsum(u)
    index = tf.range(1, n + 1, dtype=v.dtype)
    positive = tf.cast(u - (css - 1.0) / index > 0, v.dtype)
    rho = tf.reduce_sum(positive)
    theta = (tf.reduce_sum(u * positive) - 1.0) / rho
    return tf.maximum(v - theta, 0.0)
