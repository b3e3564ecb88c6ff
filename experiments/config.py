"""What every harness's config shares: the backbones a config may name and the image standardisations.

The names are listed here without importing TensorFlow, so ``--help`` and config validation stay fast
(tests/test_cli_inputs.py checks them against :mod:`dynamic_mtl.backbones` and :mod:`data_prep.pipeline`).
The face/expression harness's typed config is :mod:`experiments.face_expression.config`; the
pretraining command's options are checked against the same names.
"""

from __future__ import annotations

#: backbones of dynamic_mtl.backbones with their smallest input side (the names without importing TensorFlow)
BACKBONE_MIN_IMAGE_SIZE = {"small_cnn": 16, "inception_resnet_v1_reduced": 75}
#: per-image standardisations of data_prep.pipeline
STANDARDIZATIONS = ("prewhiten", "unit", "none")

__all__ = ["BACKBONE_MIN_IMAGE_SIZE", "STANDARDIZATIONS"]
