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


def _tree_state(root):
    """(relative path, size, mtime) of every file under ``root``: what a test writing into it would change."""
    from pathlib import Path

    return sorted((str(p.relative_to(root)), p.stat().st_size, p.stat().st_mtime_ns) for p in Path(root).rglob("*"))


@pytest.fixture(scope="session")
def synthfaces_tiny(tmp_path_factory):
    """A 20-identity, 32 px synthfaces set (seed 0) prepared once per session and shared read-only by the
    modules that train on it (runs write under their own results dir, never into the data dir). The
    teardown fails if any test changed it, so sharing cannot hide one test's writes from another."""
    from data_prep.prepare import prepare_synthfaces

    out = tmp_path_factory.mktemp("synthfaces-tiny")
    prepare_synthfaces(out, num_identities=20, seed=0, image_size=32, progress=False)
    before = _tree_state(out)
    yield out
    assert _tree_state(out) == before, f"a test wrote into the shared synthfaces set {out}"


@pytest.fixture(scope="session")
def mirrored_report():
    """One run of tests/mirrored_equivalence.py over every spec the suite checks (its ``SUITE_SPECS``):
    spec -> how far one device and 2 replicas end apart. The weightings' check, the gradient
    strategy's and the partial-labels one each assert on their own rows of it."""
    from mirrored_equivalence import SUITE_SPECS, equivalence_report

    return equivalence_report(SUITE_SPECS, timeout=900)
