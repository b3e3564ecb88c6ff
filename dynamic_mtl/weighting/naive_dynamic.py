"""The "naive dynamic" baseline (Yin et al., ref. [36] of Ming et al. 2019)."""
from __future__ import annotations

import keras
from keras import ops

from dynamic_mtl.weighting.base import WeightingStrategy


@keras.saving.register_keras_serializable(package="dynamic_mtl")
class NaiveDynamicWeighting(WeightingStrategy):
    """Softmax weights from the weight unit, trained by the total loss ``sum_i w_i L_i``.

    Minimising the total loss with respect to ``w`` shrinks the weight of the task with
    the larger loss, the failure mode Ming et al. describe in Section 1 and Figure 4.
    The network loss also sends gradient through ``w`` into the trunk, as in Yin et al.
    """

    uses_weight_unit = True

    def task_weights(self, unit_weights=None):
        if unit_weights is None:
            raise ValueError("NaiveDynamicWeighting needs the weight unit's output")
        return unit_weights

    def weight_loss(self, weights, task_losses, grad_norms=None):
        return ops.sum(weights * task_losses)
