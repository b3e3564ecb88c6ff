"""Static (hand-set) task weights: the paper's "static MTL" and single-task baselines."""

from __future__ import annotations

from keras import ops

from dynamic_mtl.weighting.base import WeightingStrategy, register_weighting


@register_weighting("static")
class StaticWeighting(WeightingStrategy):
    """Fixed weights ``w`` in ``L = sum_i w_i L_i`` (Eq. 1).

    ``StaticWeighting([1, 0])`` is single-task training of task 1 (Section 4 (I)).
    Figure 2 sweeps ``w1`` from 0 to 1 with ``w2 = 1 - w1``.
    """

    def __init__(self, weights=(0.5, 0.5), **kwargs):
        weights = [float(w) for w in weights]
        if any(w < 0 for w in weights) or sum(weights) <= 0:
            raise ValueError(f"static weights must be >= 0 with a positive sum, got {weights}")
        kwargs["num_tasks"] = len(weights)
        super().__init__(**kwargs)
        self.static_weights = weights

    def task_weights(self, unit_weights=None):
        return ops.convert_to_tensor(self.static_weights, dtype="float32")

    def get_config(self):
        config = super().get_config()
        config.pop("num_tasks")
        config.update(weights=list(self.static_weights))
        return config
