"""STCH: smooth Tchebycheff scalarisation (Lin, Zhang, Yang, Liu and Zhang, ICML 2024)."""

from __future__ import annotations

from keras import ops

from dynamic_mtl.weighting.base import WeightingStrategy, register_weighting

EPSILON = 1e-20


@register_weighting("stch")
class STCHWeighting(WeightingStrategy):
    """Smooth Tchebycheff scalarisation (Lin et al. 2024, Eq. 8):
    ``g_mu(L | lambda) = mu log sum_i exp(lambda_i (f_i - z*_i) / mu)``.

    As in the authors' multi-task recipe: ``f_i = log(L_i / n_i)`` with the nadir-style
    normaliser ``n_i`` = the mean loss of task i over the last warm-up epoch, ideal point
    ``z* = 0`` and preferences ``lambda = 1``; the loss is ``T g_mu``. During the first
    ``warmup_epochs + 1`` epochs the loss is ``sum_i log L_i`` (the last of them also averages
    the losses into ``n``). Options: ``mu = 1.0``, ``warmup_epochs = 4``.

    Epochs are counted by ``on_epoch_end`` (which ``DynamicMultiTaskModel.fit`` calls; a custom
    loop must call it). ``task_weights`` are ones.
    """

    def __init__(self, mu: float = 1.0, warmup_epochs: int = 4, **kwargs):
        super().__init__(**kwargs)
        if float(mu) <= 0:
            raise ValueError(f"mu must be > 0, got {mu}")
        if int(warmup_epochs) < 0:
            raise ValueError(f"warmup_epochs must be >= 0, got {warmup_epochs}")
        self.mu = float(mu)
        self.warmup_epochs = int(warmup_epochs)

    def build(self, input_shape=None):
        def state(name, shape=(self.num_tasks,), init="zeros"):
            return self.add_weight(
                name=name, shape=shape, initializer=init, trainable=False, aggregation="only_first_replica"
            )

        self.epochs_seen = state("epochs_seen", shape=())
        self.loss_sum = state("warmup_loss_sum")
        self.loss_count = state("warmup_steps", shape=())
        self.nadir = state("nadir", init="ones")
        self.built = True

    def task_weights(self, unit_weights=None):
        return ops.ones((self.num_tasks,), "float32")

    def network_loss(self, weights, task_losses):
        losses = ops.cast(task_losses, "float32")
        warm = ops.cast(self.epochs_seen <= self.warmup_epochs, "float32")
        log_sum = ops.sum(ops.log(losses + EPSILON))
        scaled = ops.log(losses / ops.maximum(self.nadir, EPSILON) + EPSILON) / self.mu
        smooth = self.num_tasks * self.mu * ops.logsumexp(scaled)
        return warm * log_sum + (1.0 - warm) * smooth

    def update_state(self, task_losses):
        averaging = ops.cast(ops.equal(self.epochs_seen, float(self.warmup_epochs)), "float32")
        self.loss_sum.assign_add(averaging * ops.stop_gradient(ops.cast(task_losses, "float32")))
        self.loss_count.assign_add(averaging)

    def on_epoch_end(self):
        if float(self.epochs_seen.numpy()) == self.warmup_epochs and float(self.loss_count.numpy()) > 0:
            self.nadir.assign(self.loss_sum / self.loss_count)
        self.epochs_seen.assign_add(1.0)

    def get_config(self):
        config = super().get_config()
        config.update(mu=self.mu, warmup_epochs=self.warmup_epochs)
        return config
