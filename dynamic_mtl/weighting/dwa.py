"""Dynamic Weight Average (Liu, Johns and Davison, CVPR 2019)."""

from __future__ import annotations

from keras import ops

from dynamic_mtl.weighting.base import WeightingStrategy, register_weighting


@register_weighting("dwa")
class DynamicWeightAverageWeighting(WeightingStrategy):
    """``w_i = T softmax_i(r_i / temperature)``, ``r_i = Lbar_i(e-1) / Lbar_i(e-2)``.

    ``Lbar_i(e)`` is the mean loss of task i over epoch e. The first two epochs use
    ``w_i = 1``. No trainable variables; the loss history lives in non-trainable ones.
    """

    def __init__(self, temperature: float = 2.0, **kwargs):
        super().__init__(**kwargs)
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.temperature = float(temperature)

    def build(self, input_shape=None):
        def state(name, init="zeros", shape=(self.num_tasks,)):
            return self.add_weight(
                name=name, shape=shape, initializer=init, trainable=False, aggregation="only_first_replica"
            )

        self.loss_sum = state("epoch_loss_sum")
        self.step_count = state("epoch_steps", shape=())
        self.previous = state("loss_previous_epoch", init="ones")
        self.before_previous = state("loss_epoch_before_previous", init="ones")
        self.epochs_seen = state("epochs_seen", shape=())
        self.built = True

    def task_weights(self, unit_weights=None):
        ratios = self.previous / ops.maximum(self.before_previous, 1e-12)
        dwa = self.num_tasks * ops.softmax(ratios / self.temperature)
        warm = ops.cast(self.epochs_seen >= 2, "float32")
        return warm * dwa + (1.0 - warm) * ops.ones((self.num_tasks,), "float32")

    def update_state(self, task_losses):
        self.loss_sum.assign_add(ops.stop_gradient(ops.cast(task_losses, "float32")))
        self.step_count.assign_add(1.0)

    def on_epoch_end(self):
        if float(self.step_count.numpy()) == 0.0:
            return
        mean = self.loss_sum / self.step_count
        self.before_previous.assign(self.previous)
        self.previous.assign(mean)
        self.epochs_seen.assign_add(1.0)
        self.loss_sum.assign(ops.zeros_like(self.loss_sum))
        self.step_count.assign(0.0)

    def get_config(self):
        config = super().get_config()
        config.update(temperature=self.temperature)
        return config
