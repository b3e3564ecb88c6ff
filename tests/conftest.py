"""Shared fixtures: tiny random face/expression batches and small models."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
if os.environ.get("PYTEST_XDIST_WORKER"):
    # `make test` runs 2 xdist workers on 2 cores: one TensorFlow intra-op thread each instead of one per core
    # per worker, whose thread pools would compete for the cores (measured on test_serialization.py and
    # test_mixed_precision.py with -n 2: 148 s -> 132 s).
    # Inter-op parallelism stays on: a MirroredStrategy's replicas run their collectives side by side.
    os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

#: the longest tests and groups (``pytest --durations``), started first so that no worker of
#: ``pytest -n 2 --dist loadgroup`` begins one of them while the other is about to finish
LONGEST_FIRST = (
    "tests/test_real_flow.py::test_rehearsal_of_the_real_flow_through_make",
    "tests/test_distributed.py",
    "tests/test_ttc_cli.py",
    "tests/test_experiments.py::test_a_killed_run_resumes_to_the_same_results",
    "tests/test_study.py::test_study_command_end_to_end",
    "tests/test_weighting_methods_training.py::test_mirrored_two_replicas_match_one_device",
)


def _start_rank(item) -> int:
    """Where ``item`` starts: the listed longest ones in their order, then the other slow ones, then the rest."""
    for rank, prefix in enumerate(LONGEST_FIRST):
        if item.nodeid.startswith(prefix):
            return rank
    return len(LONGEST_FIRST) + (0 if item.get_closest_marker("slow") else 1)


def pytest_collection_modifyitems(config, items):
    """Longest first (a stable sort, so the order within a rank stays the collection order)."""
    items.sort(key=_start_rank)


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


@pytest.fixture(autouse=True)
def ttc_graph_rewrites(request):
    """The TTC tests (``test_ttc_*``) run as the TTC runs do: without TensorFlow's graph rewriting
    (``experiments.ttc.runner.GRAPH_REWRITES``); every other test with TensorFlow's default."""
    if not request.module.__name__.rsplit(".", 1)[-1].startswith("test_ttc"):
        yield
        return
    from experiments.ttc.runner import graph_rewrites

    with graph_rewrites():
        yield
