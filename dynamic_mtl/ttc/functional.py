"""TTC and cross-stitch networks as functional dict-output networks for ``DynamicMultiTaskModel``.

:func:`multitask_network` wraps a :class:`TTCNetwork` or :class:`CrossStitchNetwork` (Fang et al.
2017, Sec. 3) in a functional ``keras.Model`` whose outputs are one ``(B, 1)`` logit per task (key:
the task's name) and ``shared``: the concatenation of every task's last mixed hidden feature (the
FC layer after its TTC), the input a dynamic weight unit can read. Every task is then a binary
``TaskSpec(name, name, kind="multilabel")`` (Eq. 6: sigmoid cross-entropy), -1 marking a sample
that has no label for it, and any weighting trains it through ``fit``.
"""

from __future__ import annotations

import keras
from keras import ops

SHARED_OUTPUT = "shared"


@keras.saving.register_keras_serializable(package="dynamic_mtl")
class MultiSubnetOutputs(keras.layers.Layer):
    """Runs a multi-subnet network; returns its logits ``(B, T)`` and the concatenated last
    mixed hidden features of its tasks ``(B, T * F)``."""

    def __init__(self, network, **kwargs):
        super().__init__(**kwargs)
        if isinstance(network, dict):
            network = keras.saving.deserialize_keras_object(network)
        if not hasattr(network, "task_features"):
            raise ValueError(f"expected a TTCNetwork or CrossStitchNetwork, got {type(network).__name__}")
        self.network = network

    def build(self, input_shape):
        if not self.network.built:
            self.network.build(input_shape)
        self.built = True

    def call(self, inputs, training=None):
        logits, features = self.network._forward(self.network._split_inputs(inputs), training=training, collect=True)
        return logits, ops.concatenate([ops.cast(f, logits.dtype) for f in features[-1]], axis=-1)

    def get_config(self):
        config = super().get_config()
        config.update(network=keras.saving.serialize_keras_object(self.network))
        return config


def multitask_network(network, image_shape, name: str | None = None) -> keras.Model:
    """A functional network with outputs ``{task_name: (B, 1) logit, ..., "shared": Z}``.

    Args:
        network: a ``TTCNetwork`` or ``CrossStitchNetwork``.
        image_shape: ``(H, W, C)`` of the input images.
    """
    if SHARED_OUTPUT in network.task_names:
        raise ValueError(f"a task may not be named {SHARED_OUTPUT!r}")
    inputs = keras.Input(tuple(image_shape), name="image")
    logits, shared = MultiSubnetOutputs(network, name=f"{network.name}_outputs")(inputs)
    outputs = {task: logits[:, i : i + 1] for i, task in enumerate(network.task_names)}
    outputs[SHARED_OUTPUT] = shared
    return keras.Model(inputs, outputs, name=name or f"{network.name}_multitask")
