"""Batch normalisation with one copy of the moving statistics per task (Fang et al. 2017, Sec. 3).

The paper applies batch normalisation "to relieve the range fluctuation of feature values" and trains the
tasks in turns, each from its own pool (Sec. 4.1). With one set of moving statistics, every batch norm is
updated on every task's turn, so a task evaluated on its own images is normalised with statistics of a mix of
all pools. That matters when the pools are disjoint (CIFAR-10 or digits pair tasks).

:class:`TaskBatchNormalization` keeps ``num_copies`` rows of moving mean / variance (``gamma`` and ``beta``
are shared). ``set_copy(c)`` selects row c; in training mode the batch is normalised with its own moments
(as in Keras) and only row c of the moving statistics is updated; in inference mode row c is used. The
networks set the copy to task c on task c's turn and to task i when evaluating task i, so task i's
evaluation depends only on statistics gathered on task i's batches. With ``num_copies=1`` the layer is an
ordinary batch norm (the shared-statistics behaviour).

Like Keras' ``BatchNormalization``, a layer with ``trainable=False`` runs in inference mode.
:meth:`TaskBatchNormalization.estimating` switches a layer (frozen or not) to re-estimating the selected
copy from the batches it sees (an exact running mean of their moments), no gradient involved.
"""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="dynamic_mtl")
class TaskBatchNormalization(keras.layers.Layer):
    """Batch norm over the last axis with ``num_copies`` sets of moving statistics.

    ``y = gamma * (x - mu_c) / sqrt(var_c + eps) + beta`` with ``(mu_c, var_c)`` the batch moments in
    training mode and copy c of the moving statistics otherwise; in training mode copy c is updated as
    ``m_c <- momentum * m_c + (1 - momentum) * mean(x)`` (and the variance alike).

    Args:
        num_copies: copies of the moving statistics (one per task; 1 = ordinary batch norm).
        momentum, epsilon: as in ``keras.layers.BatchNormalization``.
    """

    def __init__(self, num_copies: int = 1, momentum: float = 0.9, epsilon: float = 1e-3, **kwargs):
        super().__init__(**kwargs)
        if int(num_copies) < 1:
            raise ValueError(f"num_copies must be >= 1, got {num_copies}")
        self.num_copies = int(num_copies)
        self.momentum = float(momentum)
        self.epsilon = float(epsilon)
        self._estimate_count = None  # set by estimating(): re-estimation rate of the selected copy

    def build(self, input_shape):
        channels = int(input_shape[-1])
        self.gamma = self.add_weight(name="gamma", shape=(channels,), initializer="ones", trainable=True)
        self.beta = self.add_weight(name="beta", shape=(channels,), initializer="zeros", trainable=True)
        shape = (self.num_copies, channels)
        self.moving_mean = self.add_weight(name="moving_mean", shape=shape, initializer="zeros", trainable=False)
        self.moving_variance = self.add_weight(name="moving_variance", shape=shape, initializer="ones", trainable=False)
        self.copy_index = self.add_weight(
            name="copy_index", shape=(), initializer="zeros", dtype="int32", trainable=False
        )
        self.built = True

    def set_copy(self, index) -> None:
        """Selects the statistics copy (a Python int or an int tensor, so it works inside tf.function).
        Indices beyond the last copy select the last one (one shared copy: always 0)."""
        index = ops.minimum(ops.cast(index, "int32"), self.num_copies - 1)
        self.copy_index.assign(index)

    def estimating(self, rate: float | None) -> None:
        """``rate`` in (0, 1]: the next calls (any mode, frozen or not) normalise with the batch moments and
        fold them into the selected copy as ``m <- m + rate * (batch - m)``; for an exact running mean over
        batches of sizes n_1, n_2, ... pass ``n_k / (n_1 + ... + n_k)`` (1 overwrites the copy). ``None``
        returns to normal behaviour (eager use only: a traced call keeps the mode it was traced with). Inside a
        traced function ``rate`` may be a float tensor (not checked), so one trace serves every rate."""
        if rate is None or ops.is_tensor(rate):
            self._estimate_count = rate
            return
        if not 0.0 < float(rate) <= 1.0:
            raise ValueError(f"rate must lie in (0, 1], got {rate}")
        self._estimate_count = float(rate)

    def _selected(self, table):
        return ops.take(table, self.copy_index, axis=0)

    def call(self, inputs, training=None):
        axes = list(range(len(inputs.shape) - 1))
        estimating = self._estimate_count is not None
        if (training and self.trainable) or estimating:
            mean, variance = ops.moments(inputs, axes=axes)
            mask = ops.expand_dims(ops.one_hot(self.copy_index, self.num_copies, dtype=inputs.dtype), -1)
            rate = self._estimate_count if estimating else 1.0 - self.momentum
            for table, value in ((self.moving_mean, mean), (self.moving_variance, variance)):
                table.assign(table + rate * mask * (ops.expand_dims(value, 0) - table))
        else:
            mean, variance = self._selected(self.moving_mean), self._selected(self.moving_variance)
        scale = self.gamma * ops.rsqrt(variance + self.epsilon)
        return (inputs - mean) * scale + self.beta

    def compute_output_shape(self, input_shape):
        return input_shape

    def copy_statistics(self, source: TaskBatchNormalization, rows) -> None:
        """Copies ``gamma``/``beta`` and the statistics rows ``rows`` of ``source`` (source row ``rows[k]``
        becomes row k here; ``None`` leaves a row as it is)."""
        self.gamma.assign(source.gamma)
        self.beta.assign(source.beta)
        for mine, theirs in ((self.moving_mean, source.moving_mean), (self.moving_variance, source.moving_variance)):
            values = ops.convert_to_numpy(mine).copy()
            src = ops.convert_to_numpy(theirs)
            for k, r in enumerate(rows):
                if r is not None:
                    values[k] = src[r]
            mine.assign(values)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(num_copies=self.num_copies, momentum=self.momentum, epsilon=self.epsilon)
        return config
