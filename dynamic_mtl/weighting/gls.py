"""GLS: geometric loss strategy (Chennupati, Sistu, Yogamani and Rawashdeh, CVPR-W 2019)."""

from __future__ import annotations

from keras import ops

from dynamic_mtl.weighting.base import WeightingStrategy, register_weighting


@register_weighting("gls")
class GeometricLossWeighting(WeightingStrategy):
    """The geometric mean of the task losses, ``L = (prod_i L_i)^(1/T)`` (Chennupati et al. 2019).

    Its gradient is ``sum_i L / (T L_i) grad L_i``: a task's effective weight is inversely
    proportional to its loss. Computed as ``exp(mean_i log L_i)`` (losses floored at 1e-12).
    ``task_weights`` are ones (the effective weights depend on the losses, which that hook
    does not see). No options.
    """

    def task_weights(self, unit_weights=None):
        return ops.ones((self.num_tasks,), "float32")

    def network_loss(self, weights, task_losses):
        return ops.exp(ops.mean(ops.log(ops.maximum(task_losses, 1e-12))))
