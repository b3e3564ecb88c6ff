"""Uncertainty weighting (Kendall, Gal and Cipolla, CVPR 2018)."""
from __future__ import annotations

import keras
from keras import ops

from dynamic_mtl.weighting.base import WeightingStrategy


@keras.saving.register_keras_serializable(package="dynamic_mtl")
class UncertaintyWeighting(WeightingStrategy):
    """``L = sum_i exp(-s_i) L_i + s_i / 2`` with trainable log-variances ``s_i = log sigma_i^2`` (init 0).

    Kendall et al.'s objective for classification tasks (their Eq. 10: ``L_i / sigma_i^2 +
    log sigma_i``); at its minimum over ``s_i`` the weight is ``exp(-s_i) = 1 / (2 L_i)``.
    The same objective trains the network and ``s``; ``s`` is updated by the model's
    weight optimizer. Reported weights are ``exp(-s_i)``. See docs/fidelity.md, "Baselines".
    """

    def build(self, input_shape=None):
        self.log_vars = self.add_weight(name="log_vars", shape=(self.num_tasks,), initializer="zeros")
        self.built = True

    def task_weights(self, unit_weights=None):
        return ops.exp(-self.log_vars)

    def network_loss(self, weights, task_losses):
        return ops.sum(weights * task_losses + 0.5 * self.log_vars)

    def weight_loss(self, weights, task_losses, grad_norms=None):
        return self.network_loss(weights, task_losses)
