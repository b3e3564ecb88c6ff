"""Shared pieces of the backbones: conv + batch norm + ReLU, configured once."""

from __future__ import annotations

from dataclasses import dataclass

import keras
from keras import layers


@dataclass(frozen=True)
class ConvSettings:
    """How every conv block is built.

    Args:
        weight_decay: weight decay on kernels (paper Section 5.2: 5e-5) in TF1's convention, as the
            authors' slim code defines it: ``weight_decay * sum(w ** 2) / 2`` is added to the network
            loss (Keras ``L2(weight_decay / 2)``; ``L2(weight_decay)`` would be twice that).
        batchnorm_momentum: moving-average momentum of batch norm (facenet: 0.995).
        synchronized_batchnorm: all-reduce batch statistics across replicas, so a
            MirroredStrategy run normalises by the global batch like one device.
    """

    weight_decay: float = 0.0
    batchnorm_momentum: float = 0.995
    synchronized_batchnorm: bool = False

    def regularizer(self):
        return keras.regularizers.L2(self.weight_decay / 2) if self.weight_decay > 0 else None


def conv_bn(x, filters, kernel_size, settings: ConvSettings, strides=1, padding="same", activation=True, name=None):
    """Conv (no bias, Xavier/Glorot init as in the paper) + batch norm + optional ReLU."""
    x = layers.Conv2D(
        filters,
        kernel_size,
        strides=strides,
        padding=padding,
        use_bias=False,
        kernel_initializer="glorot_uniform",
        kernel_regularizer=settings.regularizer(),
        name=f"{name}_conv" if name else None,
    )(x)
    x = layers.BatchNormalization(
        momentum=settings.batchnorm_momentum,
        epsilon=1e-3,
        scale=False,
        synchronized=settings.synchronized_batchnorm,
        name=f"{name}_bn" if name else None,
    )(x)
    if activation:
        x = layers.Activation("relu", name=f"{name}_relu" if name else None)(x)
    return x
