"""GradNorm (Chen, Badrinarayanan, Lee and Rabinovich, ICML 2018)."""

from __future__ import annotations

from keras import ops

from dynamic_mtl.weighting.base import WeightingStrategy, register_weighting


@register_weighting("gradnorm")
class GradNormWeighting(WeightingStrategy):
    """Trainable weights ``w_i`` (init 1) balancing task-gradient norms.

    ``L_grad = sum_i | w_i g_i - mean_j(w_j g_j) r_i^alpha |`` where ``g_i`` is the norm of
    ``dL_i/dW`` for the last shared layer W, ``r_i = (L_i/L_i(0)) / mean_j(L_j/L_j(0))``,
    and the target is a constant. After each update ``w`` is renormalised to sum to T.
    The network loss is ``sum_i stop_gradient(w_i) L_i``.
    """

    requires_grad_norms = True

    def __init__(self, alpha: float = 1.5, **kwargs):
        super().__init__(**kwargs)
        self.alpha = float(alpha)

    def build(self, input_shape=None):
        self.task_weight_vars = self.add_weight(name="task_weights", shape=(self.num_tasks,), initializer="ones")
        self.initial_losses = self.add_weight(
            name="initial_losses",
            shape=(self.num_tasks,),
            initializer="zeros",
            trainable=False,
            aggregation="only_first_replica",
        )
        self.built = True

    def task_weights(self, unit_weights=None):
        return ops.convert_to_tensor(self.task_weight_vars)

    def network_loss(self, weights, task_losses):
        return ops.sum(ops.stop_gradient(weights) * task_losses)

    def update_state(self, task_losses):
        unset = ops.all(ops.equal(self.initial_losses, 0.0))
        self.initial_losses.assign(ops.where(unset, ops.stop_gradient(task_losses), self.initial_losses))

    def weight_loss(self, weights, task_losses, grad_norms=None):
        if grad_norms is None:
            raise ValueError("GradNormWeighting needs the task gradient norms")
        initial = ops.where(ops.equal(self.initial_losses, 0.0), task_losses, self.initial_losses)
        ratio = task_losses / ops.maximum(initial, 1e-12)
        relative = ratio / ops.maximum(ops.mean(ratio), 1e-12)
        weighted_norms = weights * grad_norms
        target = ops.stop_gradient(ops.mean(weighted_norms) * relative**self.alpha)
        return ops.sum(ops.abs(weighted_norms - target))

    def after_weight_update(self):
        w = ops.maximum(self.task_weight_vars, 1e-6)
        self.task_weight_vars.assign(self.num_tasks * w / ops.sum(w))

    def get_config(self):
        config = super().get_config()
        config.update(alpha=self.alpha)
        return config
