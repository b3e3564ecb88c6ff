"""Backbones: a trunk function (shared layers) and a branch function (per task)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from dynamic_mtl.backbones.common import ConvSettings, conv_bn
from dynamic_mtl.backbones.inception_resnet_v1 import (
    INCEPTION_SHARED_LAYER,
    inception_resnet_v1_reduced_branch,
    inception_resnet_v1_reduced_trunk,
)
from dynamic_mtl.backbones.small_cnn import SMALL_CNN_SHARED_LAYER, small_cnn_branch, small_cnn_trunk


@dataclass(frozen=True)
class Backbone:
    trunk: Callable
    branch: Callable
    shared_layer: str
    min_image_size: int


BACKBONES = {
    "inception_resnet_v1_reduced": Backbone(
        inception_resnet_v1_reduced_trunk, inception_resnet_v1_reduced_branch, INCEPTION_SHARED_LAYER, 75
    ),
    "small_cnn": Backbone(small_cnn_trunk, small_cnn_branch, SMALL_CNN_SHARED_LAYER, 16),
}


def get_backbone(name: str) -> Backbone:
    try:
        return BACKBONES[name]
    except KeyError:
        raise ValueError(f"unknown backbone {name!r}; choose one of {sorted(BACKBONES)}") from None


__all__ = ["BACKBONES", "Backbone", "ConvSettings", "conv_bn", "get_backbone"]
