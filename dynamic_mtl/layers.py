"""Small serialisable layers used by the networks (no Lambda layers, so safe_mode loads)."""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="dynamic_mtl")
class L2Normalize(keras.layers.Layer):
    """Divides each sample by its L2 norm along ``axis``, in float32.

    The layer computes in float32 whatever the global dtype policy: in float16 the squared norm
    overflows once the norm passes 256 and the output would be zero.
    """

    def __init__(self, axis: int = -1, epsilon: float = 1e-10, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.axis = axis
        self.epsilon = epsilon

    def call(self, x):
        x = ops.cast(x, "float32")
        return x / ops.sqrt(ops.maximum(ops.sum(ops.square(x), axis=self.axis, keepdims=True), self.epsilon))

    def get_config(self):
        return {**super().get_config(), "axis": self.axis, "epsilon": self.epsilon}


@keras.saving.register_keras_serializable(package="dynamic_mtl")
class ScaledResidual(keras.layers.Layer):
    """``activation(x + scale * residual)``: the residual add of Inception-ResNet blocks."""

    def __init__(self, scale: float, activation: str | None = "relu", **kwargs):
        super().__init__(**kwargs)
        self.scale = float(scale)
        self.activation = keras.activations.get(activation)
        self._activation_name = activation

    def call(self, inputs):
        x, residual = inputs
        return self.activation(x + self.scale * residual)

    def get_config(self):
        return {**super().get_config(), "scale": self.scale, "activation": self._activation_name}
