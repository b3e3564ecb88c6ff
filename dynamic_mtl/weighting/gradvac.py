"""GradVac: gradient vaccine (Wang, Tsvetkov, Firat and Cao, ICLR 2021)."""

from __future__ import annotations

import tensorflow as tf

from dynamic_mtl.weighting.base import register_weighting
from dynamic_mtl.weighting.gradient_base import GradientWeighting, random_task_orders


@register_weighting("gradvac")
class GradVacWeighting(GradientWeighting):
    """Gradient vaccine (Wang et al. 2021, Algorithm 1 and Eq. 5-6).

    For every task i and each other task j in a random order: with ``phi = cos(g_i', g_j)`` and
    the target ``phi_hat_ij``, if ``phi < phi_hat_ij``:
    ``g_i' <- g_i' + ||g_i'|| (phi_hat sqrt(1 - phi^2) - phi sqrt(1 - phi_hat^2)) /
    (||g_j|| sqrt(1 - phi_hat^2)) g_j`` (after it ``cos(g_i', g_j) = phi_hat``); the target follows
    ``phi_hat_ij <- (1 - beta) phi_hat_ij + beta phi`` (Eq. 6, every step). ``d = sum_i g_i'``.
    Targets start at 0, where the first step is PCGrad's. ``beta = 0.01`` (the paper's
    setting; LibMTL's default is 0.5 and it updates a target only when it was violated).
    The paper applies it per parameter group of the shared network; the hook gives one
    flat vector, so here the whole shared network is one group. ``task_weights`` are the
    coefficients of ``d`` on the g_i. Targets live in ``targets`` (T x T, not trained).
    """

    def __init__(self, beta: float = 0.01, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= float(beta) <= 1.0:
            raise ValueError(f"beta must be in [0, 1], got {beta}")
        self.beta = float(beta)

    def build(self, input_shape=None):
        super().build(input_shape)
        self.targets = self.add_weight(
            name="targets",
            shape=(self.num_tasks, self.num_tasks),
            initializer="zeros",
            trainable=False,
            aggregation="only_first_replica",
        )

    def coefficients(self, gram, task_losses):
        T = self.num_tasks
        orders = random_task_orders(self.random_seed(), T)
        targets = tf.cast(tf.convert_to_tensor(self.targets), tf.float64)
        norms = tf.sqrt(tf.maximum(tf.linalg.diag_part(gram), 0.0))
        eye = tf.eye(T, dtype=tf.float64)
        total = tf.zeros((T,), tf.float64)
        new_targets = targets
        for i in range(T):
            c = eye[i]
            for k in range(T - 1):
                j = orders[i, k]
                dot = tf.tensordot(c, tf.gather(gram, j), 1)
                norm_i = tf.sqrt(tf.maximum(tf.tensordot(c, tf.linalg.matvec(gram, c), 1), 0.0))
                norm_j = tf.gather(norms, j)
                phi = dot / (norm_i * norm_j + 1e-20)
                target = targets[i, j]
                root_target = tf.sqrt(tf.maximum(1.0 - target**2, 0.0))
                weight = (
                    norm_i
                    * (target * tf.sqrt(tf.maximum(1.0 - phi**2, 0.0)) - phi * root_target)
                    / (norm_j * root_target + 1e-20)
                )
                weight = tf.where(phi < target, weight, tf.constant(0.0, tf.float64))
                c = c + weight * tf.one_hot(j, T, dtype=tf.float64)
                index = tf.reshape(tf.stack([tf.constant(i, tf.int32), j]), (1, 2))
                new_targets = tf.tensor_scatter_nd_update(
                    new_targets, index, [(1.0 - self.beta) * target + self.beta * phi]
                )
            total = total + c
        self.targets.assign(tf.cast(new_targets, tf.float32))
        return total

    def get_config(self):
        config = super().get_config()
        config.update(beta=self.beta)
        return config
