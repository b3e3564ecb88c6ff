"""tf.data pipeline: element structure, shapes, dtypes, labels, order."""

from __future__ import annotations

import cv2
import numpy as np
import pandas as pd
import pytest

tf = pytest.importorskip("tensorflow")

from data_prep.pipeline import identity_map, make_dataset, make_image_dataset, pair_image_order  # noqa: E402


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


def test_training_elements(tiny):
    root, m = tiny
    ds, ids = make_dataset(m, root, image_size=24, batch_size=4, training=True, seed=0)
    assert ids == {"S010": 0, "S011": 1, "S012": 2}
    batches = list(ds)
    assert len(batches) == 2  # 9 labelled rows, drop_remainder in training
    x, y = batches[0]
    assert x.shape == (4, 24, 24, 3) and x.dtype == tf.float32
    assert set(y) == {"identity", "expression"}
    assert y["identity"].dtype == tf.int32 and y["expression"].dtype == tf.int32
    assert np.all(y["expression"].numpy() >= 0)
    # prewhiten: per-image zero mean, unit std
    np.testing.assert_allclose(tf.reduce_mean(x, axis=[1, 2, 3]).numpy(), 0, atol=1e-4)
    np.testing.assert_allclose(tf.math.reduce_std(x, axis=[1, 2, 3]).numpy(), 1, atol=1e-3)
    again = [b[1]["identity"].numpy() for b in make_dataset(m, root, 24, 4, True, seed=0)[0]]
    assert all(np.array_equal(a, b[1]["identity"].numpy()) for a, b in zip(again, batches))


def test_eval_order_labels_and_unit_range(tiny):
    root, m = tiny
    ds, ids = make_dataset(
        m, root, 16, 3, training=False, standardize="unit", id_map=identity_map(m["subject"]), drop_unlabelled=False
    )
    xs, idl, ex = [], [], []
    for x, y in ds:
        xs.append(x.numpy())
        idl += y["identity"].numpy().tolist()
        ex += y["expression"].numpy().tolist()
    assert sum(len(a) for a in xs) == 10  # remainder kept
    assert idl == [ids[s] for s in m["subject"]] and ex == m["expression"].tolist()
    x = np.concatenate(xs)
    assert x.min() >= -1.0 and x.max() <= 1.0
    with pytest.raises(ValueError, match="not in id_map"):
        make_dataset(m, root, 16, 3, False, id_map={"S010": 0})


def test_image_dataset_order(tiny):
    root, m = tiny
    paths = m["path"].tolist()[::-1]
    xs = np.concatenate([b.numpy() for b in make_image_dataset(paths, root, 20, 4, standardize="none")])
    assert xs.shape == (10, 20, 20, 3)
    pairs = pd.DataFrame({"path_a": [paths[0], paths[1]], "path_b": [paths[1], paths[2]]})
    uniq, ia, ib = pair_image_order(pairs)
    assert [uniq[i] for i in ia] == [paths[0], paths[1]] and [uniq[i] for i in ib] == [paths[1], paths[2]]
