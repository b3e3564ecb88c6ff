"""Shared fixtures: tiny random face/expression batches and small models."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture
def tiny_batch():
    """A deterministic batch: 16 images of 24x24x3, 5 identities, 4 expressions."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 24, 24, 3)).astype("float32")
    y = {"identity": rng.integers(0, 5, 16).astype("int32"), "expression": rng.integers(0, 4, 16).astype("int32")}
    return x, y


def small_model(weighting="dynamic", image_size=24, num_identities=5, num_expressions=4, **options):
    """A small-CNN face/expression model without dropout (deterministic gradients)."""
    import keras

    import dynamic_mtl as dm

    keras.utils.set_random_seed(options.pop("seed", 0))
    options.setdefault("dropout_rate", 0.0)
    options.setdefault("embedding_size", 16)
    return dm.build_face_expression_model(
        num_identities, num_expressions, backbone="small_cnn", image_size=image_size, weighting=weighting, **options
    )
