"""A toy per-task gradient strategy for the tests of the model's gradient hook."""

from __future__ import annotations

import keras
import tensorflow as tf

from dynamic_mtl.weighting import WeightingStrategy


@keras.saving.register_keras_serializable(package="tests")
class ProjectAway(WeightingStrategy):
    """Every other task's gradient with its component along task 0's removed, plus task 0's:
    ``d = g_0 + sum_{i>0} (g_i - c_i g_0)``, ``c_i = g_i.g_0 / |g_0|^2``; so
    ``w_0 = 1 - sum_i c_i`` and ``w_i = 1`` (``d = sum_i w_i g_i``)."""

    uses_task_gradients = True

    def combine_task_gradients(self, task_gradients, task_losses):
        g0, rest = task_gradients[0], task_gradients[1:]
        coefficients = tf.linalg.matvec(rest, g0) / tf.maximum(tf.reduce_sum(g0 * g0), 1e-20)
        direction = g0 + tf.reduce_sum(rest - coefficients[:, None] * g0[None], axis=0)
        weights = tf.concat([[1.0 - tf.reduce_sum(coefficients)], tf.ones_like(coefficients)], axis=0)
        return direction, weights


def project_away(gradients):
    """The same maths in numpy (float64), ``gradients`` (T, P)."""
    import numpy as np

    g = np.asarray(gradients, np.float64)
    c = g[1:] @ g[0] / (g[0] @ g[0])
    return g[0] + (g[1:] - c[:, None] * g[0]).sum(0), np.r_[1.0 - c.sum(), np.ones(len(c))]
