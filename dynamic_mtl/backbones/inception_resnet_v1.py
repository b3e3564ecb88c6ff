"""The reduced Inception-ResNet-v1 of the authors' code (docs/fidelity.md).

Trunk: stem, 1x block35, reduction-A (Mixed_6a), 1x block17, reduction-B (Mixed_7a,
the split point; 3x3x1792 at 160 px). Each branch: block8 + final block8 (no
activation), average pool. About 13.2M parameters for trunk + two branches + heads.
Layer structure follows facenet's inception_resnet_v1 (Szegedy et al. 2016).
"""

from __future__ import annotations

from keras import layers

from dynamic_mtl.backbones.common import ConvSettings, conv_bn
from dynamic_mtl.layers import ScaledResidual


def _project(x, channels, settings, name):
    reg = settings.regularizer()
    return layers.Conv2D(
        channels,
        1,
        padding="same",
        use_bias=True,
        kernel_initializer="glorot_uniform",
        kernel_regularizer=reg,
        name=f"{name}_up",
    )(x)


def block35(x, settings, name, scale=0.17):
    """35x35 residual block (Inception-ResNet-A)."""
    b0 = conv_bn(x, 32, 1, settings, name=f"{name}_b0")
    b1 = conv_bn(conv_bn(x, 32, 1, settings, name=f"{name}_b1a"), 32, 3, settings, name=f"{name}_b1b")
    b2 = conv_bn(x, 32, 1, settings, name=f"{name}_b2a")
    b2 = conv_bn(b2, 32, 3, settings, name=f"{name}_b2b")
    b2 = conv_bn(b2, 32, 3, settings, name=f"{name}_b2c")
    mixed = layers.Concatenate(name=f"{name}_concat")([b0, b1, b2])
    return ScaledResidual(scale, name=f"{name}_add")([x, _project(mixed, x.shape[-1], settings, name)])


def block17(x, settings, name, scale=0.10):
    """17x17 residual block (Inception-ResNet-B)."""
    b0 = conv_bn(x, 128, 1, settings, name=f"{name}_b0")
    b1 = conv_bn(x, 128, 1, settings, name=f"{name}_b1a")
    b1 = conv_bn(b1, 128, (1, 7), settings, name=f"{name}_b1b")
    b1 = conv_bn(b1, 128, (7, 1), settings, name=f"{name}_b1c")
    mixed = layers.Concatenate(name=f"{name}_concat")([b0, b1])
    return ScaledResidual(scale, name=f"{name}_add")([x, _project(mixed, x.shape[-1], settings, name)])


def block8(x, settings, name, scale=0.20, activation="relu"):
    """8x8 residual block (Inception-ResNet-C)."""
    b0 = conv_bn(x, 192, 1, settings, name=f"{name}_b0")
    b1 = conv_bn(x, 192, 1, settings, name=f"{name}_b1a")
    b1 = conv_bn(b1, 192, (1, 3), settings, name=f"{name}_b1b")
    b1 = conv_bn(b1, 192, (3, 1), settings, name=f"{name}_b1c")
    mixed = layers.Concatenate(name=f"{name}_concat")([b0, b1])
    return ScaledResidual(scale, activation=activation, name=f"{name}_add")(
        [x, _project(mixed, x.shape[-1], settings, name)]
    )


def reduction_a(x, settings, name="mixed_6a"):
    b0 = conv_bn(x, 384, 3, settings, strides=2, padding="valid", name=f"{name}_b0")
    b1 = conv_bn(x, 192, 1, settings, name=f"{name}_b1a")
    b1 = conv_bn(b1, 192, 3, settings, name=f"{name}_b1b")
    b1 = conv_bn(b1, 256, 3, settings, strides=2, padding="valid", name=f"{name}_b1c")
    b2 = layers.MaxPooling2D(3, strides=2, padding="valid", name=f"{name}_pool")(x)
    return layers.Concatenate(name=f"{name}_concat")([b0, b1, b2])


def reduction_b(x, settings, name="mixed_7a"):
    b0 = conv_bn(
        conv_bn(x, 256, 1, settings, name=f"{name}_b0a"),
        384,
        3,
        settings,
        strides=2,
        padding="valid",
        name=f"{name}_b0b",
    )
    b1 = conv_bn(
        conv_bn(x, 256, 1, settings, name=f"{name}_b1a"),
        256,
        3,
        settings,
        strides=2,
        padding="valid",
        name=f"{name}_b1b",
    )
    b2 = conv_bn(x, 256, 1, settings, name=f"{name}_b2a")
    b2 = conv_bn(b2, 256, 3, settings, name=f"{name}_b2b")
    b2 = conv_bn(b2, 256, 3, settings, strides=2, padding="valid", name=f"{name}_b2c")
    b3 = layers.MaxPooling2D(3, strides=2, padding="valid", name=f"{name}_pool")(x)
    return layers.Concatenate(name=f"{name}_concat")([b0, b1, b2, b3])


def inception_resnet_v1_reduced_trunk(x, settings: ConvSettings):
    """Shared layers up to reduction-B (Mixed_7a), the split point."""
    x = conv_bn(x, 32, 3, settings, strides=2, padding="valid", name="conv2d_1a")
    x = conv_bn(x, 32, 3, settings, padding="valid", name="conv2d_2a")
    x = conv_bn(x, 64, 3, settings, name="conv2d_2b")
    x = layers.MaxPooling2D(3, strides=2, padding="valid", name="maxpool_3a")(x)
    x = conv_bn(x, 80, 1, settings, padding="valid", name="conv2d_3b")
    x = conv_bn(x, 192, 3, settings, padding="valid", name="conv2d_4a")
    x = conv_bn(x, 256, 3, settings, strides=2, padding="valid", name="conv2d_4b")
    x = block35(x, settings, name="block35_1")
    x = reduction_a(x, settings)
    x = block17(x, settings, name="block17_1")
    return reduction_b(x, settings)


def inception_resnet_v1_reduced_branch(x, settings: ConvSettings, name: str):
    """Task branch: block8 + final block8 (no activation) + global average pool."""
    x = block8(x, settings, name=f"{name}_block8_1")
    x = block8(x, settings, name=f"{name}_block8_final", scale=1.0, activation=None)
    return layers.GlobalAveragePooling2D(name=f"{name}_pool")(x)


#: name of the last shared layer with weights (GradNorm's W)
INCEPTION_SHARED_LAYER = "mixed_7a_b2c_conv"
