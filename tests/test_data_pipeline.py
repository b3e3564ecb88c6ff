"""The input pipeline: the preprocessing spec, training and evaluation batches, image files in order."""

from __future__ import annotations

import cv2
import numpy as np
import pandas as pd
import pytest

tf = pytest.importorskip("tensorflow")

from data_prep.pipeline import (  # noqa: E402
    Preprocessing,
    evaluation_batches,
    make_image_dataset,
    pair_image_order,
    training_batches,
)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("pipe")
    rows = []
    rng = np.random.default_rng(0)
    for i in range(10):
        subj = f"S{(i % 3) + 10:03d}"
        rel = f"aligned/{subj}/img{i}.png" if i != 9 else f"aligned/{subj}/img{i}.jpg"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        img = rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)
        img[:, :, 0] = i * 20  # encodes the row index in the red channel
        if i == 4:
            img = img[:, :, 1]  # grayscale file (random, not constant: prewhiten needs a spread)
        cv2.imwrite(str(root / rel), img)
        rows.append({"path": rel, "subject": subj, "expression": -1 if i == 8 else i % 4})
    return root, pd.DataFrame(rows)


def test_preprocessing_spec_refuses_bad_values():
    with pytest.raises(ValueError, match="crop_fraction must be in"):
        Preprocessing(24, crop_fraction=0.0)
    with pytest.raises(ValueError, match="standardize must be one of"):
        Preprocessing(24, standardize="whiten")
    with pytest.raises(ValueError, match="image_size must be a positive integer"):
        Preprocessing(0)


def _arrays(n=10, side=40):
    images = np.random.default_rng(1).integers(0, 256, (n, side, side, 3), dtype=np.uint8)
    labels = {"identity": np.arange(n, dtype=np.int32), "expression": (np.arange(n) % 4).astype(np.int32)}
    return images, labels


def test_training_batches_follow_the_seeded_order_and_repeat_exactly():
    images, labels = _arrays()
    spec = Preprocessing(24)
    batches = list(training_batches(images, labels, spec, batch_size=4, seed=7))
    assert len(batches) == 2  # 10 images, full batches only
    x, y = batches[0]
    assert x.shape == (4, 24, 24, 3) and x.dtype == tf.float32
    assert set(y) == {"identity", "expression"} and y["identity"].dtype == tf.int32
    order = np.concatenate([b[1]["identity"].numpy() for b in batches])
    np.testing.assert_array_equal(order, np.random.default_rng(7).permutation(10)[:8])
    np.testing.assert_array_equal(np.concatenate([b[1]["expression"].numpy() for b in batches]), order % 4)
    # prewhiten: per-image zero mean, unit std
    np.testing.assert_allclose(tf.reduce_mean(x, axis=[1, 2, 3]).numpy(), 0, atol=1e-4)
    np.testing.assert_allclose(tf.math.reduce_std(x, axis=[1, 2, 3]).numpy(), 1, atol=1e-3)
    again = list(training_batches(images, labels, spec, batch_size=4, seed=7))
    for (xa, _), (xb, _) in zip(batches, again):
        np.testing.assert_array_equal(xa.numpy(), xb.numpy())
    other = np.concatenate([b[1]["identity"].numpy() for b in training_batches(images, labels, spec, 4, seed=8)])
    assert not np.array_equal(order, other)
    with pytest.raises(ValueError, match="10 images but labels"):
        training_batches(images, {"identity": labels["identity"][:9]}, spec, 4, seed=7)


def test_training_augmentation_is_keyed_by_epoch_seed_and_position():
    """The crop and flip of one position are the same whatever else is in the dataset: an image moved to
    position 0 of another array gets the same augmentation as at position 0 before."""
    images, labels = _arrays()
    spec = Preprocessing(24, standardize="none")
    first = next(iter(training_batches(images, labels, spec, 1, seed=3)))[0].numpy()[0]
    start = np.random.default_rng(3).permutation(10)[0]
    alone = images[[start] * 10]  # every position holds that image, so position 0 is it whatever the order
    again = next(iter(training_batches(alone, labels, spec, 1, seed=3)))[0].numpy()[0]
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, spec.evaluation(tf.constant(images[start])).numpy())  # it was augmented


def test_evaluation_batches_keep_order_and_remainder_in_unit_range():
    images, _ = _arrays()
    spec = Preprocessing(16, standardize="unit")
    xs = [b.numpy() for b in evaluation_batches(images, spec, batch_size=3)]
    assert [len(x) for x in xs] == [3, 3, 3, 1]
    x = np.concatenate(xs)
    assert x.min() >= -1.0 and x.max() <= 1.0
    np.testing.assert_array_equal(x[4], spec.evaluation(tf.constant(images[4])).numpy())


def test_image_dataset_order(tiny):
    root, m = tiny
    paths = m["path"].tolist()[::-1]
    spec = Preprocessing(20, standardize="none")
    xs = np.concatenate([b.numpy() for b in make_image_dataset(paths, spec, 4, root=root)])
    assert xs.shape == (10, 20, 20, 3)
    pairs = pd.DataFrame({"path_a": [paths[0], paths[1]], "path_b": [paths[1], paths[2]]})
    uniq, ia, ib = pair_image_order(pairs)
    assert [uniq[i] for i in ia] == [paths[0], paths[1]] and [uniq[i] for i in ib] == [paths[1], paths[2]]
