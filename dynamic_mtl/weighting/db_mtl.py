"""DB-MTL: dual-balancing multi-task learning (Lin, Ye, Xu, Shi and Zhang, 2023)."""

from __future__ import annotations

import tensorflow as tf
from keras import ops

from dynamic_mtl.weighting.base import register_weighting
from dynamic_mtl.weighting.gradient_base import GradientWeighting, as_task_matrix, lazy_state

EPSILON = 1e-8


@register_weighting("db_mtl")
class DBMTLWeighting(GradientWeighting):
    """Dual balancing (Lin et al. 2023, Eq. 2-5): loss-scale balancing by training on ``log L_i``
    and gradient-magnitude balancing of the shared update.

    Per step t: ``h_i = grad log(L_i + eps) = g_i / (L_i + eps)``; the EMA
    ``hbar_i <- h_i + beta_t (hbar_i - h_i)`` with ``beta_t = beta / t^sigma`` (``hbar`` starts
    at 0); ``d = sum_i (max_j ||hbar_j|| / ||hbar_i||) hbar_i``. ``beta = 0.9``,
    ``sigma = 0.5`` (the paper's defaults). The task heads get ``sum_i log(L_i + eps)``
    (``network_loss``). The EMA buffer (T x P, P = shared parameters) is created with the model
    (at the first step when the model cannot count P from its functional network). ``task_weights``
    are the scales ``max_j ||hbar_j|| / ||hbar_i||`` of the buffered log-loss gradients.
    """

    needs_shared_parameter_count = True

    def __init__(self, beta: float = 0.9, sigma: float = 0.5, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= float(beta) < 1.0:
            raise ValueError(f"beta must be in [0, 1), got {beta}")
        if float(sigma) < 0:
            raise ValueError(f"sigma must be >= 0, got {sigma}")
        self.beta = float(beta)
        self.sigma = float(sigma)

    def build_task_gradient_state(self, num_shared_parameters: int) -> None:
        lazy_state(self, "gradient_buffer", (self.num_tasks, int(num_shared_parameters)))

    def network_loss(self, weights, task_losses):
        return ops.sum(weights * ops.log(task_losses + EPSILON))

    def combine_task_gradients(self, task_gradients, task_losses):
        grads = as_task_matrix(task_gradients, self.num_tasks)
        buffer = lazy_state(self, "gradient_buffer", grads.shape)
        if grads.shape[1] is not None and buffer.shape[1] != grads.shape[1]:
            raise ValueError(
                f"DB-MTL's gradient buffer has {buffer.shape[1]} shared parameters but the task gradients "
                f"have {grads.shape[1]}: the task losses reach other network outputs than each task's "
                "logits (and center feature) that the model counted"
            )
        log_grads = grads / (tf.cast(task_losses, tf.float32)[:, None] + EPSILON)
        t = tf.cast(tf.convert_to_tensor(self.step), tf.float32) + 1.0
        beta_t = self.beta / tf.pow(t, self.sigma)
        smoothed = log_grads + beta_t * (tf.convert_to_tensor(buffer) - log_grads)
        buffer.assign(smoothed)
        norms = tf.norm(smoothed, axis=1)
        scales = tf.reduce_max(norms) / (norms + EPSILON)
        return tf.linalg.matvec(smoothed, scales, transpose_a=True), scales

    def load_own_variables(self, store):
        if len(store.keys()) > len(self.variables) and getattr(self, "_lazy_gradient_buffer", None) is None:
            lazy_state(self, "gradient_buffer", store[str(len(self.variables))].shape)
        super().load_own_variables(store)

    def get_config(self):
        config = super().get_config()
        config.update(beta=self.beta, sigma=self.sigma)
        return config
