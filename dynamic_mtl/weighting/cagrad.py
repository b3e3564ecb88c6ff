"""CAGrad: conflict-averse gradient descent (Liu, Liu, Jin, Stone and Liu, NeurIPS 2021)."""

from __future__ import annotations

import keras
import tensorflow as tf

from dynamic_mtl.weighting.base import register_weighting
from dynamic_mtl.weighting.gradient_base import GradientWeighting, project_to_simplex

RESCALES = (0, 1, 2)


def cagrad_dual_weights(gram, c: float, iterations: int):
    """``w* = argmin_{w in simplex} g_w . g_0 + sqrt(phi) ||g_w||`` (the dual of Eq. 4).

    ``g_0 = mean_i g_i``, ``g_w = sum_i w_i g_i``, ``phi = c^2 ||g_0||^2``. Projected gradient
    descent on the Gram matrix (scaled to unit trace; the minimiser does not change), a fixed
    number of steps with the local step size ``1 / (tr M (1 + sqrt(phi) / ||g_w||))``; the
    authors solve the same problem with scipy's SLSQP.
    """
    T = gram.shape[0]
    gram = gram / tf.maximum(tf.linalg.trace(gram), 1e-30)
    b = tf.fill((T,), tf.constant(1.0 / T, tf.float64))
    g0_norm = tf.sqrt(tf.maximum(tf.tensordot(b, tf.linalg.matvec(gram, b), 1), 0.0) + 1e-20)
    root_phi = c * g0_norm
    linear = tf.linalg.matvec(gram, b)

    def body(_, w):
        m_w = tf.linalg.matvec(gram, w)
        gw_norm = tf.sqrt(tf.maximum(tf.tensordot(w, m_w, 1), 0.0) + 1e-20)
        gradient = linear + root_phi * m_w / gw_norm
        step = 1.0 / (1.0 + root_phi / gw_norm)  # tr M = 1
        return project_to_simplex(w - step * gradient)

    return keras.ops.fori_loop(0, iterations, body, b)


@register_weighting("cagrad")
class CAGradWeighting(GradientWeighting):
    """Conflict-averse gradient (Liu et al. 2021, Eq. 4 and Algorithm 1).

    ``d = g_0 + sqrt(phi) / ||g_w*|| g_w*`` with ``g_0`` the mean gradient, ``phi = c^2 ||g_0||^2``
    and ``w*`` the solution of the dual over the simplex (``cagrad_dual_weights``, ``iterations``
    projected-gradient steps instead of SLSQP). ``c = 0.5`` is the paper's setting for
    multi-task supervised learning. ``rescale`` follows the authors' code: 0 = ``d`` as above
    (Algorithm 1), 1 = ``d / (1 + c^2)`` (their default), 2 = ``d / (1 + c)``. At ``c = 0`` the
    update is the mean gradient. ``task_weights`` are the coefficients of ``d`` on the g_i.
    """

    def __init__(self, c: float = 0.5, rescale: int = 1, iterations: int = 100, **kwargs):
        super().__init__(**kwargs)
        if float(c) < 0:
            raise ValueError(f"c must be >= 0, got {c}")
        if int(rescale) not in RESCALES:
            raise ValueError(f"rescale must be one of {RESCALES}, got {rescale}")
        if int(iterations) < 1:
            raise ValueError(f"iterations must be >= 1, got {iterations}")
        self.c = float(c)
        self.rescale = int(rescale)
        self.iterations = int(iterations)

    def coefficients(self, gram, task_losses):
        T = self.num_tasks
        w = cagrad_dual_weights(gram, self.c, self.iterations)
        b = tf.fill((T,), tf.constant(1.0 / T, tf.float64))
        g0_norm = tf.sqrt(tf.maximum(tf.tensordot(b, tf.linalg.matvec(gram, b), 1), 0.0))
        gw_norm = tf.sqrt(tf.maximum(tf.tensordot(w, tf.linalg.matvec(gram, w), 1), 0.0))
        lam = self.c * g0_norm / (gw_norm + 1e-20)
        coefficients = b + lam * w
        divisor = {0: 1.0, 1: 1.0 + self.c**2, 2: 1.0 + self.c}[self.rescale]
        return coefficients / divisor

    def get_config(self):
        config = super().get_config()
        config.update(c=self.c, rescale=self.rescale, iterations=self.iterations)
        return config
