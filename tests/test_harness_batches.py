"""The harness's input pipeline gives bit-identical batches to the ones recorded before it moved to
``data_prep.pipeline`` (so the numbers of every run stay the same)."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

#: Recorded with TensorFlow 2.21.0 from ``FoldRunner.training_dataset`` / ``evaluation_dataset`` as
#: they were before the shared pipeline: (number of batches, sha256 of the batches' bytes).
RECORDED_TF = "2.21.0"
RECORDED = {
    "train epoch 0": (42, "4884d102af0671316b6ad9636087be7603500636aefe3b3f52d76c60ecb2e971"),
    "train epoch 1": (42, "9822037e3ba57d2d83b88d3a1739bc5cd1f68c62861bc9f4c2c2b9518c16bb65"),
    "validation": (6, "72f419645cb45245083e63cc4897fabef86104b5ad79e67f8c233c1572ab4c2d"),
    "test": (3, "2d134dd619812733c2fb6af7a398b145875018dcc6fd855761302ea110baf57e"),
}


def _digest(dataset) -> tuple[int, str]:
    h, n = hashlib.sha256(), 0
    for element in dataset:
        if isinstance(element, tuple):
            x, y = element
            for array in (x, y["identity"], y["expression"]):
                h.update(array.numpy().tobytes())
        else:
            h.update(element.numpy().tobytes())
        n += 1
    return n, h.hexdigest()


def harness_digests(data_dir, work) -> dict[str, tuple[int, str]]:
    from data_prep import seeds
    from data_prep.pipeline import identity_map
    from experiments.face_expression.config import ExperimentConfig
    from experiments.face_expression.data import load_prepared
    from experiments.face_expression.training import FoldRunner

    config = ExperimentConfig.load("tiny").override(data_dir=str(data_dir), results_dir=str(work), batch_size=4)
    data = load_prepared(config)
    split = data.split(0, config.validation_subjects, config.seed)
    runner = FoldRunner(config, data, work / "run", tf.distribute.get_strategy(), len(split.train_subjects), None)
    # fixed pixels, so the record depends on the pipeline and the split, not on the face generator
    store = runner.store.images
    runner.store.images = np.random.default_rng(0).integers(0, 256, store.shape, dtype=np.uint8)
    id_map = identity_map(split.train_subjects)
    out = {
        f"train epoch {e}": _digest(runner.training_dataset(split, id_map, seeds.EPOCH_ORDER.seed(config.seed, 0, e)))
        for e in (0, 1)
    }
    out["validation"] = _digest(runner.evaluation_dataset(split.validation))
    out["test"] = _digest(runner.evaluation_dataset(split.test))
    return out


@pytest.mark.slow
def test_harness_batches_are_the_recorded_ones(tmp_path):
    from data_prep.prepare import prepare_synthfaces

    if tf.__version__ != RECORDED_TF:
        pytest.skip(f"batches recorded with TensorFlow {RECORDED_TF}, this is {tf.__version__}")
    prepare_synthfaces(tmp_path / "data", num_identities=10, seed=0, image_size=32, progress=False, workers=1)
    assert harness_digests(tmp_path / "data", tmp_path) == RECORDED


if __name__ == "__main__":  # print the digests to record
    import sys
    import tempfile
    from pathlib import Path

    from data_prep.prepare import prepare_synthfaces

    work = Path(tempfile.mkdtemp())
    prepare_synthfaces(work / "data", num_identities=10, seed=0, image_size=32, progress=False, workers=1)
    for key, value in harness_digests(work / "data", work).items():
        print(f"{key!r}: {value!r},", file=sys.stdout)
