"""A small CNN backbone for fast CPU runs (quick profile, tests)."""

from __future__ import annotations

from keras import layers

from dynamic_mtl.backbones.common import ConvSettings, conv_bn


def small_cnn_trunk(x, settings: ConvSettings, width: int = 32):
    """Shared layers: three conv stages, each conv-BN-ReLU then 2x2 max-pool."""
    for stage, filters in enumerate((width, 2 * width, 4 * width), start=1):
        x = conv_bn(x, filters, 3, settings, name=f"trunk_stage{stage}")
        x = layers.MaxPooling2D(2, name=f"trunk_pool{stage}")(x)
    return x


def small_cnn_branch(x, settings: ConvSettings, name: str, width: int = 32):
    """Task branch: two conv-BN-ReLU, global average pool."""
    x = conv_bn(x, 4 * width, 3, settings, name=f"{name}_conv1")
    x = conv_bn(x, 4 * width, 3, settings, name=f"{name}_conv2")
    return layers.GlobalAveragePooling2D(name=f"{name}_pool")(x)


#: name of the last shared layer with weights (GradNorm's W)
SMALL_CNN_SHARED_LAYER = "trunk_stage3_conv"
