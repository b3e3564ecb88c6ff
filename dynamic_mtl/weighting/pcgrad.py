"""PCGrad: projecting conflicting gradients (Yu et al., NeurIPS 2020)."""

from __future__ import annotations

import tensorflow as tf

from dynamic_mtl.weighting.base import register_weighting
from dynamic_mtl.weighting.gradient_base import GradientWeighting, random_task_orders


@register_weighting("pcgrad")
class PCGradWeighting(GradientWeighting):
    """Gradient surgery (Yu et al. 2020, Algorithm 1).

    For every task i, ``g_i^PC = g_i``; then for each other task j in a random order, if
    ``g_i^PC . g_j < 0``: ``g_i^PC <- g_i^PC - (g_i^PC . g_j) / ||g_j||^2 g_j`` (Eq. 1's projection
    onto the normal plane of ``g_j``, with the original ``g_j``). The update is
    ``d = sum_i g_i^PC``. Every ``g_i^PC`` is a combination of the rows of G, so the work is
    done on the coefficients with the Gram matrix; the reported ``task_weights`` are the exact
    coefficients c of ``d = sum_j c_j g_j`` (1 for every task when nothing conflicts).

    The random orders are drawn from stateless ops seeded by ``(seed, step)``: the same on
    every replica, reproducible for a seed. The paper has no other option.
    """

    def coefficients(self, gram, task_losses):
        T = self.num_tasks
        orders = random_task_orders(self.random_seed(), T)
        eye = tf.eye(T, dtype=tf.float64)
        total = tf.zeros((T,), tf.float64)
        for i in range(T):
            c = eye[i]
            for k in range(T - 1):
                j = orders[i, k]
                g_j = tf.gather(gram, j)  # (M_j1..M_jT) = g_j . g_*
                dot = tf.tensordot(c, g_j, 1)  # g_i^PC . g_j
                norm2 = tf.gather(g_j, j)
                step = tf.where(dot < 0.0, dot / (norm2 + 1e-20), tf.constant(0.0, tf.float64))
                c = c - step * tf.one_hot(j, T, dtype=tf.float64)
            total = total + c
        return total
