"""RLW: random loss weighting (Lin, Ye, Zhang and Tsang, TMLR 2022)."""

from __future__ import annotations

import tensorflow as tf
from keras import ops

from dynamic_mtl.weighting.base import SteppedRandomWeighting, register_weighting


@register_weighting("rlw")
class RandomLossWeighting(SteppedRandomWeighting):
    """Random weights ``w = softmax(lambda)``, ``lambda ~ N(0, I)`` drawn anew every step (Lin et al.
    2022, Section 3, the normal-distribution variant), in ``L = sum_i w_i L_i`` (Eq. 1).

    The draw is a stateless normal seeded by ``(seed, step)``: reproducible for a seed, the same
    on every replica, and the same for every call within a step. ``step`` advances in
    ``update_state``. Option: ``seed`` (0).
    """

    def task_weights(self, unit_weights=None):
        draw = tf.random.stateless_normal((self.num_tasks,), seed=self.random_seed(), dtype=tf.float32)
        return ops.softmax(draw)
