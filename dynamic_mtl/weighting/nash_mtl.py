"""Nash-MTL: multi-task learning as a bargaining game (Navon et al., ICML 2022)."""

from __future__ import annotations

import keras
import tensorflow as tf

from dynamic_mtl.weighting.base import register_weighting
from dynamic_mtl.weighting.gradient_base import GradientWeighting


def nash_weights(gram, iterations: int, ridge: float = 1e-8):
    """The positive solution of ``M a = 1 / a`` (Navon et al. 2022, Eq. 3), ``M = G G^T``.

    It is the minimiser of the strictly convex, self-concordant ``f(a) = a^T M a / 2 - sum_i
    log a_i`` (its gradient is ``M a - 1/a``), found by damped Newton steps
    ``a <- a - H^-1 grad / (1 + lambda)`` (``H = M + diag(1/a^2)``, ``lambda`` the Newton
    decrement), which stay in ``a > 0`` and converge quadratically near the solution. A fixed
    number of ``iterations``; starts at ``a = 1 sqrt(T / 1^T M 1)``. ``ridge * tr(M) / T`` is
    added to the diagonal so that a singular M still has a solution.
    """
    T = gram.shape[0]
    gram = gram + ridge * tf.linalg.trace(gram) / T * tf.eye(T, dtype=gram.dtype) + 1e-30 * tf.eye(T, dtype=gram.dtype)
    total = tf.reduce_sum(gram)
    alpha0 = tf.fill((T,), tf.sqrt(T / tf.maximum(total, 1e-30)))

    def body(_, alpha):
        gradient = tf.linalg.matvec(gram, alpha) - 1.0 / alpha
        hessian = gram + tf.linalg.diag(1.0 / tf.square(alpha))
        newton = tf.linalg.solve(hessian, gradient[:, None])[:, 0]
        decrement = tf.sqrt(tf.maximum(tf.tensordot(gradient, newton, 1), 0.0))
        return alpha - newton / (1.0 + decrement)

    return keras.ops.fori_loop(0, iterations, body, alpha0)


@register_weighting("nash_mtl")
class NashMTLWeighting(GradientWeighting):
    """Nash bargaining solution (Navon et al. 2022, Eq. 3 and Algorithm 1): ``d = sum_i a_i g_i``
    with ``a > 0`` solving ``(G G^T a)_i = 1 / a_i``.

    The paper solves it by a sequence of convex programs (CCP, cvxpy/ECOS, at most
    ``optim_niter = 20``); here ``nash_weights`` runs ``iterations = 20`` damped Newton steps on
    the equivalent convex problem, in TensorFlow inside the train step (same solution, no
    host round trip; the authors' solver also stops early). Options of the authors' code:
    ``normalize_gram`` (True: solve with ``M / ||M||_F``, as their code does, which scales
    ``d`` by ``sqrt(||M||_F)``; False: the paper's equation on M), ``max_norm = 1.0`` (the
    update's norm is clipped to it, as their ``clip_grad_norm_`` of the shared parameters;
    0 turns clipping off). ``update_weights_every = 1`` of their code is the only behaviour.
    ``task_weights`` are the ``a_i`` (after clipping).
    """

    def __init__(self, iterations: int = 20, normalize_gram: bool = True, max_norm: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        if int(iterations) < 1:
            raise ValueError(f"iterations must be >= 1, got {iterations}")
        if float(max_norm) < 0:
            raise ValueError(f"max_norm must be >= 0, got {max_norm}")
        self.iterations = int(iterations)
        self.normalize_gram = bool(normalize_gram)
        self.max_norm = float(max_norm)

    def coefficients(self, gram, task_losses):
        solve_on = gram
        if self.normalize_gram:
            solve_on = gram / tf.maximum(tf.norm(gram), 1e-30)
        alpha = nash_weights(solve_on, self.iterations)
        if self.max_norm > 0:
            norm = tf.sqrt(tf.maximum(tf.tensordot(alpha, tf.linalg.matvec(gram, alpha), 1), 0.0))
            alpha = alpha * tf.minimum(self.max_norm / tf.maximum(norm, 1e-30), 1.0)
        return alpha

    def get_config(self):
        config = super().get_config()
        config.update(iterations=self.iterations, normalize_gram=self.normalize_gram, max_norm=self.max_norm)
        return config
