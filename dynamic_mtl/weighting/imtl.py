"""IMTL-G: impartial multi-task learning, gradient part (Liu et al., ICLR 2021)."""

from __future__ import annotations

import tensorflow as tf

from dynamic_mtl.weighting.base import register_weighting
from dynamic_mtl.weighting.gradient_base import GradientWeighting


def imtl_g_weights(gram):
    """Closed form of IMTL-G (Liu et al. 2021, Eq. 9-10) from the Gram matrix.

    With ``u_i = g_i / ||g_i||``, ``D = [g_1 - g_t]_t`` and ``U = [u_1 - u_t]_t`` (t = 2..T),
    ``a_{2:T} = g_1 U^T (D U^T)^-1`` and ``a_1 = 1 - sum_t a_t``: ``g = sum_i a_i g_i`` has
    the same projection on every ``u_i`` and ``sum_i a_i = 1``. Every product is read off
    ``M = G G^T`` (``g_a . u_b = M_ab / ||g_b||``); a pseudo-inverse keeps degenerate cases finite.
    """
    norms = tf.sqrt(tf.maximum(tf.linalg.diag_part(gram), 0.0)) + 1e-20
    g_dot_u = gram / norms[None, :]  # [a, b] = g_a . u_b
    gu_first = g_dot_u[0:1, 1:]  # g_1 . u_t
    d_u = (
        g_dot_u[0:1, 0:1]
        - g_dot_u[0:1, 1:]  # (g_1 - g_k) . (u_1 - u_t)
        - g_dot_u[1:, 0:1]
        + g_dot_u[1:, 1:]
    )
    g_u = g_dot_u[0:1, 0:1] - gu_first  # g_1 . (u_1 - u_t)
    rest = tf.matmul(g_u, tf.linalg.pinv(d_u))[0]
    return tf.concat([[1.0 - tf.reduce_sum(rest)], rest], axis=0)


@register_weighting("imtl_g")
class IMTLGWeighting(GradientWeighting):
    """IMTL-G (Liu et al. 2021, Section 3.2): ``d = sum_i a_i g_i`` whose projections on the unit
    task gradients are all equal, with ``sum_i a_i = 1`` (closed form, ``imtl_g_weights``).

    The paper takes the gradients with respect to the shared feature z; the model's hook gives
    those of the shared parameters. IMTL-L (the learnt loss scales of the full IMTL) is not
    part of this strategy. No options.
    """

    def coefficients(self, gram, task_losses):
        return imtl_g_weights(gram)
