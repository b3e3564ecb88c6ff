"""FAMO: fast adaptive multitask optimisation (Liu, Liu, Stone and Liu, NeurIPS 2023)."""

from __future__ import annotations

import tensorflow as tf
from keras import ops

from dynamic_mtl.weighting.base import WeightingStrategy, register_weighting

EPSILON = 1e-8


@register_weighting("famo")
class FAMOWeighting(WeightingStrategy):
    """FAMO (Liu et al. 2023, Algorithm 1): one backward pass of a loss with adaptive weights.

    ``z = softmax(xi)``; the network loss is ``sum_i z_i log(L_i - l_i + eps) / c`` with
    ``c = sum_i z_i / (L_i - l_i + eps)`` held constant (so the effective weights on the L_i sum
    to 1; ``l_i`` = ``min_losses``, 0). The logits follow the change of the log losses:
    ``delta_i = log(L_i^prev + eps) - log(L_i + eps)``, ``xi <- Adam(xi, J_softmax^T delta
    + gamma xi)`` with ``lr = 0.025`` and ``gamma = 1e-3`` (coupled weight decay, as torch's Adam;
    the paper's defaults), Adam's ``beta_1 = 0.9``, ``beta_2 = 0.999``, ``eps = 1e-8``.

    The paper compares the losses of the same batch before and after the update (a second
    forward pass); here ``update_state`` compares consecutive steps' global losses (different
    batches, no extra pass), with the Jacobian taken at the weights that produced the step.
    The logits are state updated by this strategy (not by the model's weight optimizer).
    """

    def __init__(self, learning_rate: float = 0.025, gamma: float = 1e-3, min_losses=None, **kwargs):
        super().__init__(**kwargs)
        if float(learning_rate) <= 0:
            raise ValueError(f"learning_rate must be > 0, got {learning_rate}")
        if float(gamma) < 0:
            raise ValueError(f"gamma must be >= 0, got {gamma}")
        min_losses = [0.0] * self.num_tasks if min_losses is None else [float(v) for v in min_losses]
        if len(min_losses) != self.num_tasks:
            raise ValueError(f"min_losses {min_losses} do not match {self.num_tasks} tasks")
        self.learning_rate = float(learning_rate)
        self.gamma = float(gamma)
        self.min_losses = min_losses

    def build(self, input_shape=None):
        def state(name, shape=(self.num_tasks,)):
            return self.add_weight(
                name=name, shape=shape, initializer="zeros", trainable=False, aggregation="only_first_replica"
            )

        self.logits = state("logits")
        self.adam_m = state("adam_m")
        self.adam_v = state("adam_v")
        self.adam_steps = state("adam_steps", shape=())
        self.previous_losses = state("previous_losses")
        self.previous_weights = state("previous_weights")
        self.has_previous = state("has_previous", shape=())
        self.built = True

    def _gaps(self, task_losses):
        return ops.cast(task_losses, "float32") - ops.convert_to_tensor(self.min_losses, "float32") + EPSILON

    def task_weights(self, unit_weights=None):
        return ops.softmax(ops.convert_to_tensor(self.logits))

    def network_loss(self, weights, task_losses):
        gaps = self._gaps(task_losses)
        c = ops.stop_gradient(ops.sum(weights / gaps))
        return ops.sum(weights * ops.log(gaps)) / c

    def update_state(self, task_losses):
        task_losses = ops.stop_gradient(ops.cast(task_losses, "float32"))
        logits = tf.convert_to_tensor(self.logits)
        z = tf.convert_to_tensor(self.previous_weights)
        delta = ops.log(self._gaps(tf.convert_to_tensor(self.previous_losses))) - ops.log(self._gaps(task_losses))
        gradient = z * (delta - ops.sum(z * delta)) + self.gamma * logits  # J_softmax(z)^T delta + decay
        steps = self.adam_steps + 1.0
        m = 0.9 * self.adam_m + 0.1 * gradient
        v = 0.999 * self.adam_v + 0.001 * ops.square(gradient)
        m_hat = m / (1.0 - ops.power(0.9, steps))
        v_hat = v / (1.0 - ops.power(0.999, steps))
        stepped = logits - self.learning_rate * m_hat / (ops.sqrt(v_hat) + 1e-8)
        take = ops.cast(self.has_previous > 0.5, "float32")
        self.adam_m.assign(take * m + (1.0 - take) * self.adam_m)
        self.adam_v.assign(take * v + (1.0 - take) * self.adam_v)
        self.adam_steps.assign(take * steps + (1.0 - take) * self.adam_steps)
        new_logits = take * stepped + (1.0 - take) * logits
        self.previous_weights.assign(ops.softmax(logits))  # the weights this step trained with
        self.logits.assign(new_logits)
        self.previous_losses.assign(task_losses)
        self.has_previous.assign(1.0)

    def get_config(self):
        config = super().get_config()
        config.update(learning_rate=self.learning_rate, gamma=self.gamma, min_losses=list(self.min_losses))
        return config
