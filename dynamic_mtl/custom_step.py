"""``CustomStepModel``: what the package's models with their own train step share.

:class:`dynamic_mtl.model.DynamicMultiTaskModel` (two optimizers, Eq. 11-12) and
:class:`dynamic_mtl.single_task.SingleTaskFaceModel` (one optimizer, Eq. 2) are built at construction,
build their optimizers in ``compile``, take their losses from themselves (never ``compile(loss=...)``)
and log the values of their own trackers. This base holds that plumbing: the ``metrics`` of the
trackers, the step logs, the compile config of the optimizers, and the distribution workarounds of
:mod:`dynamic_mtl.compat`.
"""

from __future__ import annotations

import keras
from keras import ops

from dynamic_mtl.compat import PrebuiltModelWorkarounds, multi_worker_logs


class CustomStepModel(PrebuiltModelWorkarounds, keras.Model):
    """Base of a model with its own ``train_step`` and a ``self._trackers`` dict of Keras metrics.

    Subclasses set ``self.network`` (the functional network) and ``self._trackers`` (name -> metric,
    in log order) in ``__init__``, return :meth:`tracked_logs` from their steps, and list their
    optimizers in ``compile_optimizers``.
    """

    #: ``(compile argument, attribute)`` of each optimizer, in the order of the compile config.
    compile_optimizers: tuple[tuple[str, str], ...] = (("optimizer", "optimizer"),)

    @property
    def metrics(self):
        return list(self._trackers.values())

    def network_regularization(self):
        """The sum of ``self.network.losses`` (its weight decay), ``0.0`` when it has none."""
        losses = self.network.losses
        return ops.sum(ops.stack(losses)) if losses else 0.0

    def tracked_logs(self) -> dict:
        """Every tracker's current result, by name (shaped for the strategy's log reduction)."""
        logs = {name: tracker.result() for name, tracker in self._trackers.items()}
        return multi_worker_logs(logs, self.distribute_strategy)

    def get_compile_config(self):
        if not self.compiled:
            return None
        config = {arg: keras.optimizers.serialize(getattr(self, attr)) for arg, attr in self.compile_optimizers}
        config.update(steps_per_execution=self.steps_per_execution, jit_compile=self.jit_compile)
        return config

    def compile_from_config(self, config):
        config = dict(config)
        for arg, _ in self.compile_optimizers:
            config[arg] = keras.optimizers.deserialize(config[arg])
        self.compile(**config)

    @classmethod
    def from_config(cls, config):
        return cls(**config)
