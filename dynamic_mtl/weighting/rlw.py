"""RLW: random loss weighting (Lin, Ye, Zhang and Tsang, TMLR 2022)."""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops

from dynamic_mtl.weighting.base import WeightingStrategy


@keras.saving.register_keras_serializable(package="dynamic_mtl")
class RandomLossWeighting(WeightingStrategy):
    """Random weights ``w = softmax(lambda)``, ``lambda ~ N(0, I)`` drawn anew every step (Lin et al.
    2022, Section 3, the normal-distribution variant), in ``L = sum_i w_i L_i`` (Eq. 1).

    The draw is a stateless normal seeded by ``(seed, step)``: reproducible for a seed, the same
    on every replica, and the same for every call within a step. ``step`` advances in
    ``update_state``. Option: ``seed`` (0).
    """

    def __init__(self, seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.seed = int(seed)

    def build(self, input_shape=None):
        self.step = self.add_weight(
            name="step", shape=(), dtype="int64", initializer="zeros", trainable=False, aggregation="only_first_replica"
        )
        self.built = True

    def task_weights(self, unit_weights=None):
        seed = tf.stack([tf.constant(self.seed, tf.int64), tf.cast(tf.convert_to_tensor(self.step), tf.int64)])
        return ops.softmax(tf.random.stateless_normal((self.num_tasks,), seed=seed, dtype=tf.float32))

    def update_state(self, task_losses):
        self.step.assign_add(1)

    def get_config(self):
        config = super().get_config()
        config.update(seed=self.seed)
        return config
