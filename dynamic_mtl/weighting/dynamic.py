"""The proposed dynamic weighting of Ming et al. 2019 (Section 4, Eq. 1, 7-12)."""

from __future__ import annotations

from keras import ops

from dynamic_mtl.weighting.base import WeightingStrategy, register_weighting


@register_weighting("dynamic")
class DynamicWeighting(WeightingStrategy):
    """Weights from the weight unit, trained by ``L3 = sum_i w_i / (L_i + sigma)`` (Eq. 7).

    ``L_i`` is held constant in L3 (Eq. 7: Theta_i and Psi are disjoint), so
    ``dL3/dpsi_i = (1/L_i) dw_i/dpsi_i`` (Eq. 8) and the task with the larger loss
    gets the larger weight (Eq. 10).

    Args:
        sigma: added to each ``L_i`` in L3 so that a loss reaching 0 cannot produce an
            infinite gradient. Default 0.01, as in the authors' code; the paper has no sigma.
        stop_gradient_weights: use ``stop_gradient(w_i)`` in the network loss
            ``sum_i w_i L_i``. True (default) matches the paper's analysis: Theta is updated
            by Eq. 11 with ``w`` as given, and Psi only by L3 (Eq. 12). False reproduces the
            authors' code, where the network loss also pushes gradient through ``w`` into
            the trunk (the two updates are kept apart only by their variable lists).
    """

    uses_weight_unit = True

    def __init__(self, sigma: float = 0.01, stop_gradient_weights: bool = True, **kwargs):
        super().__init__(**kwargs)
        if sigma < 0:
            raise ValueError(f"sigma must be >= 0, got {sigma}")
        self.sigma = float(sigma)
        self.stop_gradient_weights = bool(stop_gradient_weights)

    def task_weights(self, unit_weights=None):
        if unit_weights is None:
            raise ValueError("DynamicWeighting needs the weight unit's output")
        return unit_weights

    def network_loss(self, weights, task_losses):
        if self.stop_gradient_weights:
            weights = ops.stop_gradient(weights)
        return ops.sum(weights * task_losses)

    def weight_loss(self, weights, task_losses, grad_norms=None):
        # L_i is a constant of L3 (Eq. 7); a tiny floor keeps sigma = 0 finite too.
        denominators = ops.maximum(ops.stop_gradient(task_losses) + self.sigma, 1e-12)
        return ops.sum(weights / denominators)

    def get_config(self):
        config = super().get_config()
        config.update(sigma=self.sigma, stop_gradient_weights=self.stop_gradient_weights)
        return config
