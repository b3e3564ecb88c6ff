"""MGDA-UB: multi-task learning as multi-objective optimisation (Sener and Koltun, NeurIPS 2018)."""

from __future__ import annotations

import keras
import tensorflow as tf

from dynamic_mtl.weighting.base import register_weighting
from dynamic_mtl.weighting.gradient_base import GradientWeighting

NORMALIZATIONS = ("none", "l2", "loss", "loss+")


def min_norm_weights(gram, iterations: int):
    """Frank-Wolfe (Sener and Koltun, Algorithm 2) for ``min_{a in simplex} ||sum_i a_i g_i||^2``.

    Works on the Gram matrix ``M`` (float64 ``(T, T)``). Each iteration moves ``a`` towards the
    vertex ``e_t`` with ``t = argmin_r (M a)_r`` by the exact line search of Algorithm 1:
    ``gamma = clip((v2.v2 - v1.v2) / ||v1 - v2||^2, 0, 1)`` with ``v1 = G^T a``, ``v2 = g_t``.
    It starts, as the authors' code, from the best of the closed-form min-norm points of every
    pair of gradients. A fixed number of iterations (no early stop), so the graph is static.
    """
    T = gram.shape[0]
    diagonal = tf.linalg.diag_part(gram)
    m_ii, m_jj = diagonal[:, None], diagonal[None, :]
    denominator = m_ii + m_jj - 2.0 * gram
    gamma = tf.clip_by_value((m_jj - gram) / tf.maximum(denominator, 1e-30), 0.0, 1.0)  # weight of g_i
    cost = gamma**2 * m_ii + (1.0 - gamma) ** 2 * m_jj + 2.0 * gamma * (1.0 - gamma) * gram
    cost = tf.where(tf.eye(T, dtype=tf.bool), tf.constant(float("inf"), tf.float64), cost)
    best = tf.argmin(tf.reshape(cost, (-1,)), output_type=tf.int32)
    i, j = best // T, best % T
    g = tf.reshape(gamma, (-1,))[best]
    alpha0 = g * tf.one_hot(i, T, dtype=tf.float64) + (1.0 - g) * tf.one_hot(j, T, dtype=tf.float64)

    def body(_, alpha):
        m_alpha = tf.linalg.matvec(gram, alpha)
        t = tf.argmin(m_alpha, output_type=tf.int32)
        v1v1 = tf.tensordot(alpha, m_alpha, 1)
        v1v2 = m_alpha[t]
        v2v2 = gram[t, t]
        denominator = v1v1 + v2v2 - 2.0 * v1v2
        gamma = tf.where(
            denominator > 1e-30, (v1v1 - v1v2) / tf.maximum(denominator, 1e-30), tf.constant(0.0, tf.float64)
        )
        gamma = tf.clip_by_value(gamma, 0.0, 1.0)  # the weight of the vertex e_t
        return (1.0 - gamma) * alpha + gamma * tf.one_hot(t, T, dtype=tf.float64)

    return keras.ops.fori_loop(0, iterations, body, alpha0)


@register_weighting("mgda")
class MGDAWeighting(GradientWeighting):
    """The min-norm point of the convex hull of the task gradients (Sener and Koltun 2018, Eq. 3).

    ``a* = argmin_{a in simplex} ||sum_i a_i g_i||^2`` solved by Frank-Wolfe (Algorithm 2) with
    ``iterations`` steps from the best pairwise solution (the authors' code: at most 250,
    stopping early at a change < 1e-5);
    the shared variables step along ``d = sum_i a_i g_i`` and ``task_weights = a``.

    MGDA-UB (Section 3.3) takes the gradients with respect to the shared representation Z
    (an upper bound, one backward pass); the model's hook gives the gradients with respect to
    the shared *parameters*, so this is MGDA on the exact objective. ``normalization``
    (the authors' code's ``normalization_type``): scale each g_i before solving by 1 ("none",
    default), ``||g_i||`` ("l2"), ``L_i`` ("loss") or ``L_i ||g_i||`` ("loss+"); as in their
    code the weights found are then applied to the unnormalised gradients.
    """

    def __init__(self, iterations: int = 250, normalization: str = "none", **kwargs):
        super().__init__(**kwargs)
        if int(iterations) < 1:
            raise ValueError(f"iterations must be >= 1, got {iterations}")
        if normalization not in NORMALIZATIONS:
            raise ValueError(f"normalization must be one of {NORMALIZATIONS}, got {normalization!r}")
        self.iterations = int(iterations)
        self.normalization = normalization

    def coefficients(self, gram, task_losses):
        norms = tf.sqrt(tf.maximum(tf.linalg.diag_part(gram), 0.0))
        scale = {"none": tf.ones_like(norms), "l2": norms, "loss": task_losses, "loss+": task_losses * norms}[
            self.normalization
        ]
        scale = tf.maximum(scale, 1e-20)
        normalised = gram / (scale[:, None] * scale[None, :])
        return min_norm_weights(normalised, self.iterations)

    def get_config(self):
        config = super().get_config()
        config.update(iterations=self.iterations, normalization=self.normalization)
        return config
