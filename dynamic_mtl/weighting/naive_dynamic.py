"""The "naive dynamic" baseline (Yin et al., ref. [36] of Ming et al. 2019)."""

from __future__ import annotations

from keras import ops

from dynamic_mtl.weighting.base import WeightingStrategy, register_weighting


@register_weighting("naive_dynamic")
class NaiveDynamicWeighting(WeightingStrategy):
    """Softmax weights from the weight unit, trained by the total loss ``sum_i w_i L_i``.

    Minimising the total loss with respect to ``w`` shrinks the weight of the task with
    the larger loss, the failure mode Ming et al. describe in Section 1 and Figure 4.
    The network loss also sends gradient through ``w`` into the trunk, as in Yin et al.
    The unit takes the softmax of its raw logits (no Section 5.5 normalisation).

    Args:
        weight_optimizer: ``"network"`` (default): the weight unit is a part of the network and
            is stepped by the network's optimizer and learning rate, as in Yin et al. and the
            authors' naive code; ``"separate"``: stepped by the model's weight optimizer.
    """

    uses_weight_unit = True
    weight_unit_defaults = {"normalize_logits": False}
    WEIGHT_OPTIMIZERS = ("network", "separate")

    def __init__(self, weight_optimizer: str = "network", **kwargs):
        super().__init__(**kwargs)
        if weight_optimizer not in self.WEIGHT_OPTIMIZERS:
            raise ValueError(f"weight_optimizer must be one of {self.WEIGHT_OPTIMIZERS}, got {weight_optimizer!r}")
        self.weight_optimizer = weight_optimizer

    @property
    def uses_network_optimizer(self) -> bool:
        return self.weight_optimizer == "network"

    def task_weights(self, unit_weights=None):
        if unit_weights is None:
            raise ValueError("NaiveDynamicWeighting needs the weight unit's output")
        return unit_weights

    def weight_loss(self, weights, task_losses, grad_norms=None):
        return ops.sum(weights * task_losses)

    def get_config(self):
        config = super().get_config()
        config.update(weight_optimizer=self.weight_optimizer)
        return config
