"""Uncertainty weighting (Kendall, Gal and Cipolla, CVPR 2018)."""

from __future__ import annotations

from keras import ops

from dynamic_mtl.weighting.base import WeightingStrategy, register_weighting


@register_weighting("uncertainty")
class UncertaintyWeighting(WeightingStrategy):
    """``L = sum_i exp(-s_i) L_i + s_i / 2`` with trainable log-variances ``s_i = log sigma_i^2`` (init 0).

    Kendall et al.'s objective for classification tasks (their Eq. 10: ``L_i / sigma_i^2 +
    log sigma_i``); at its minimum over ``s_i`` the weight is ``exp(-s_i) = 1 / (2 L_i)``.
    The same objective trains the network and ``s``; ``s`` is updated by the model's
    weight optimizer. Reported weights are ``exp(-s_i)``. See docs/fidelity.md, "Baselines".

    ``s`` is used clipped to ``[-log_var_bound, log_var_bound]`` (default 10: weights in
    ``[4.5e-5, 2.2e4]``): a task whose loss is exactly 0 drives ``s`` down without limit
    (the objective's slope in ``s`` is then 1/2), and ``exp(-s)`` would reach inf. Past the
    bound the clipped ``s`` has no gradient, so ``s`` stops there.
    """

    def __init__(self, log_var_bound: float = 10.0, **kwargs):
        super().__init__(**kwargs)
        if not log_var_bound > 0:
            raise ValueError(f"log_var_bound must be > 0, got {log_var_bound}")
        self.log_var_bound = float(log_var_bound)

    def build(self, input_shape=None):
        self.log_vars = self.add_weight(name="log_vars", shape=(self.num_tasks,), initializer="zeros")
        self.built = True

    def clipped_log_vars(self):
        """``s`` clipped to ``[-log_var_bound, log_var_bound]``."""
        return ops.clip(self.log_vars, -self.log_var_bound, self.log_var_bound)

    def task_weights(self, unit_weights=None):
        return ops.exp(-self.clipped_log_vars())

    def network_loss(self, weights, task_losses):
        return ops.sum(weights * task_losses + 0.5 * self.clipped_log_vars())

    def weight_loss(self, weights, task_losses, grad_norms=None):
        return self.network_loss(weights, task_losses)

    def get_config(self):
        config = super().get_config()
        config.update(log_var_bound=self.log_var_bound)
        return config
