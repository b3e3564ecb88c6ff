"""Workarounds for Keras / TensorFlow behaviours that the custom-step models hit.

Each names the upstream behaviour it works around; remove it when the oldest supported version no
longer behaves so.
"""

from __future__ import annotations

from keras import ops

from dynamic_mtl.distribute import check_strategy_devices
from dynamic_mtl.replicas import is_multi_worker


def tape_values(variables) -> list:
    """The backend ``tf.Variable`` of each Keras variable, for ``tf.GradientTape`` sources.

    Keras 3 variables wrap a ``tf.Variable`` (``.value``); ``tf.GradientTape`` needs that variable (its
    TF dtype) to return zeros for an unconnected source.
    """
    return [v.value for v in variables]


def multi_worker_logs(logs: dict, strategy) -> dict:
    """Step logs reshaped to ``(1,)`` under a multi-worker ``MultiWorkerMirroredStrategy``.

    Keras reduces step logs with ``strategy.reduce(MEAN, axis=0)`` there, which fails on scalars
    (keras-team/keras#20585). Other strategies get ``logs`` unchanged.
    """
    if is_multi_worker(strategy):
        return {name: ops.reshape(value, (1,)) for name, value in logs.items()}
    return logs


class PrebuiltModelWorkarounds:
    """Mixin (before ``keras.Model``) for models built at construction whose ``compile`` builds the optimizers.

    * ``_maybe_symbolic_build``: under a ``tf.distribute`` strategy ``fit`` / ``evaluate`` first all-reduce
      one input batch to build the model symbolically; under ``MultiWorkerMirroredStrategy`` that reduce
      fails (keras-team/keras#20585). Such a model has nothing to build, so the step is skipped.
    * ``make_*_function``: ``tf.distribute.MirroredStrategy`` accepts a device that does not exist (soft
      placement runs the replica elsewhere) and the first all-reduce between replicas then waits forever;
      :func:`dynamic_mtl.distribute.check_strategy_devices` raises instead.
    """

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        if (
            self.compiled
            and self.optimizer is not None
            and self.optimizer.built
            and getattr(self, "_compile_metrics", None) is None
            and getattr(self, "_compile_loss", None) is None
        ):
            return
        super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)

    def make_train_function(self, force=False):
        check_strategy_devices(self.distribute_strategy)
        return super().make_train_function(force=force)

    def make_test_function(self, force=False):
        check_strategy_devices(self.distribute_strategy)
        return super().make_test_function(force=force)

    def make_predict_function(self, force=False):
        check_strategy_devices(self.distribute_strategy)
        return super().make_predict_function(force=force)
