"""TTC data: restricted CIFAR-10 unpickler, CIFAR-10 / CelebA readers (layout, errors), digits, synthattrs."""

from __future__ import annotations

import os
import pickle

import cv2
import numpy as np
import pytest

from data_prep.ttc.celeba import load_celeba_tasks
from data_prep.ttc.cifar import TEST_BATCH, TRAIN_BATCHES, load_cifar10_tasks, read_batch, restricted_load
from data_prep.ttc.common import TaskData
from data_prep.ttc.digits import DIGIT_TASKS, load_digits_tasks
from data_prep.ttc.synthattrs import make_synthattrs


def _batch(n: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    return {
        b"batch_label": b"fake batch",
        b"labels": [int(v) for v in rng.integers(0, 10, n)],
        b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
        b"filenames": [f"img_{i}.png".encode() for i in range(n)],
    }


def _write_cifar(root, n=20):
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for k, name in enumerate((*TRAIN_BATCHES, TEST_BATCH)):
        # protocol 2, as the original (Python 2) files: bytes become _codecs.encode calls
        (folder / name).write_bytes(pickle.dumps(_batch(n, k), protocol=2))
    return folder


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_restricted_unpickler_refuses_os_system(tmp_path):
    marker = tmp_path / "pwned"
    payload = pickle.dumps({b"data": _Evil(marker)}, protocol=2)
    with pytest.raises(pickle.UnpicklingError, match="refusing to unpickle global (os|posix|nt).system"):
        restricted_load(payload)
    assert not marker.exists()
    pickle.loads(payload)  # the same payload does run under the plain unpickler (sanity of the test)
    assert marker.exists()


@pytest.mark.parametrize("obj", [eval, print, TaskData, np.load])
def test_restricted_unpickler_refuses_other_globals(obj):
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        restricted_load(pickle.dumps(obj, protocol=2))
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        restricted_load(pickle.dumps(obj, protocol=4))


def test_restricted_unpickler_loads_cifar_structures():
    batch = _batch(5, 0)
    for protocol in (2, 4, 5):
        loaded = restricted_load(pickle.dumps(batch, protocol=protocol))
        np.testing.assert_array_equal(loaded[b"data"], batch[b"data"])
        assert loaded[b"labels"] == batch[b"labels"] and loaded[b"filenames"] == batch[b"filenames"]


def test_cifar_reader_builds_the_five_pair_tasks(tmp_path):
    _write_cifar(tmp_path)
    data = load_cifar10_tasks(tmp_path, val_size=10)
    assert data.task_names == ["airplane.ship", "automobile.truck", "bird.frog", "cat.dog", "deer.horse"]
    x, y = data.splits["train"]
    assert x.shape == (90, 32, 32, 3) and x.dtype == np.float32 and 0 <= x.min() and x.max() <= 1
    assert ((y >= 0).sum(axis=1) == 1).all()  # each image belongs to exactly one task
    raw, labels = read_batch(tmp_path / "cifar-10-batches-py" / TEST_BATCH)
    ship = labels == 8
    np.testing.assert_array_equal(data.splits["test"][1][ship, 0], 1)
    assert load_cifar10_tasks(tmp_path / "cifar-10-batches-py", val_size=10).splits["test"][0].shape[0] == 20


def test_cifar_reader_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="cifar-10-batches-py"):
        load_cifar10_tasks(tmp_path)
    folder = _write_cifar(tmp_path)
    (folder / "test_batch").write_bytes(pickle.dumps({b"data": np.zeros((2, 5), np.uint8), b"labels": [0, 1]}))
    with pytest.raises(ValueError, match="3072"):
        load_cifar10_tasks(tmp_path)


def _write_celeba(root, n=12):
    names = ["Bald", "Goatee", "Smiling"]
    (root / "img_align_celeba").mkdir(parents=True)
    rng = np.random.default_rng(0)
    lines, parts = [str(n), " ".join(names)], []
    for i in range(n):
        f = f"{i + 1:06d}.jpg"
        ramp = np.linspace(100, 140, 178)[None, :, None] + rng.normal(0, 1, (218, 178, 3))  # low contrast
        cv2.imwrite(str(root / "img_align_celeba" / f), np.clip(ramp, 0, 255).astype(np.uint8))
        vals = [1 if (i + k) % 3 == 0 else -1 for k in range(len(names))]
        lines.append(f + "  " + " ".join(f"{v:2d}" for v in vals))
        parts.append(f"{f} {i % 3}")
    (root / "list_attr_celeba.txt").write_text("\n".join(lines) + "\n")
    (root / "list_eval_partition.txt").write_text("\n".join(parts) + "\n")


def test_celeba_reader_grayscale_equalised(tmp_path):
    _write_celeba(tmp_path)
    data = load_celeba_tasks(tmp_path, attributes=["Goatee", "Smiling"], size=20, progress=False)
    x, y = data.splits["train"]
    assert x.shape == (4, 20, 20, 1) and y.shape == (4, 2)
    assert x.min() < 0.05 and x.max() > 0.95  # intensities 100..140 stretched by histogram equalisation
    assert set(np.unique(y)) <= {0, 1}
    with pytest.raises(KeyError, match="Wearing_Hat"):
        load_celeba_tasks(tmp_path, attributes=["Wearing_Hat"], progress=False)


def test_celeba_reader_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a CelebA root.*list_attr_celeba.txt"):
        load_celeba_tasks(tmp_path / "nowhere", progress=False)
    _write_celeba(tmp_path)
    (tmp_path / "img_align_celeba" / "000002.jpg").unlink()
    with pytest.raises(FileNotFoundError, match="000002.jpg"):
        load_celeba_tasks(tmp_path, attributes=["Goatee"], progress=False)
    (tmp_path / "list_attr_celeba.txt").write_text("5\nA B\n000001.jpg 1 -1\n")
    with pytest.raises(ValueError, match="header says 5"):
        load_celeba_tasks(tmp_path, attributes=["A"], progress=False)


def test_digits_tasks_shaped_like_cifar():
    data = load_digits_tasks(size=16)
    assert data.task_names == [f"{a}.{b}" for a, b in DIGIT_TASKS] and len(data.task_names) == 5
    total = sum(len(data.splits[s][0]) for s in ("train", "val", "test"))
    assert total == 1797 and data.input_shape == (16, 16, 1)
    for split in ("train", "val", "test"):
        assert ((data.splits[split][1] >= 0).sum(axis=1) == 1).all()
    summary = data.summary()
    assert (summary.minority_proportion > 0.4).all()


def test_synthattrs_labels_follow_the_generator():
    data = make_synthattrs(
        n_train=60, n_val=10, n_test=10, size=16, tasks=["goatee", "no_beard", "smiling"], progress=False
    )
    x, y = data.splits["train"]
    assert x.shape == (60, 16, 16, 1) and y.shape == (60, 3) and set(np.unique(y)) <= {0, 1}
    assert not ((y[:, 0] == 1) & (y[:, 1] == 1)).all()
    phi = np.asarray(data.meta["phi"])
    assert phi.shape == (3, 3) and phi[0, 1] < -0.3 and abs(phi[0, 2]) < 0.1  # goatee vs no_beard / smiling
    again = make_synthattrs(
        n_train=60, n_val=10, n_test=10, size=16, tasks=["goatee", "no_beard", "smiling"], progress=False
    )
    np.testing.assert_array_equal(again.splits["train"][0], x)  # deterministic
    with pytest.raises(KeyError, match="lipstick"):
        make_synthattrs(tasks=["lipstick"], progress=False)


def test_synthattrs_label_noise_rates():
    """Only no_beard is ever drawn against its label (beards are drawn on male faces only)."""
    from data_prep import synthfaces
    from data_prep.ttc.synthattrs import label_noise_rates

    rates = label_noise_rates(n=50_000)
    assert set(rates) == set(synthfaces.ATTRIBUTES)
    assert 0.003 < rates["no_beard"] < 0.02
    assert all(v == 0.0 for k, v in rates.items() if k != "no_beard")


def test_synthattrs_has_the_papers_seven_attributes_and_removal():
    """Table 4's seven CelebA attributes, Wearing_Lipstick strongly related to Heavy_Makeup as in CelebA, and
    the paper's removal (Sideburns and Wearing_Lipstick)."""
    from data_prep.ttc.celeba import CELEBA_TABLE4_ATTRIBUTES
    from data_prep.ttc.synthattrs import CELEBA_NAME, SYNTH_TASKS
    from experiments.ttc.config import resolve_config

    assert [CELEBA_NAME[t] for t in SYNTH_TASKS] == list(CELEBA_TABLE4_ATTRIBUTES)
    config = resolve_config("synthattrs", "out")
    assert config.tasks == list(SYNTH_TASKS) and config.removed_tasks == ["sideburns", "wearing_lipstick"]
    data = make_synthattrs(n_train=40, n_val=4, n_test=4, size=16, tasks=list(SYNTH_TASKS), progress=False)
    phi = np.asarray(data.meta["phi"])
    lip, makeup, goatee = (SYNTH_TASKS.index(t) for t in ("wearing_lipstick", "heavy_makeup", "goatee"))
    assert phi[lip, makeup] > 0.6 and phi[lip, goatee] < -0.1
    assert data.meta["label_noise"]["wearing_lipstick"] == 0.0


def test_the_ttc_dataset_registry_is_what_the_experiments_read():
    """data_prep.ttc.datasets: every --dataset choice is a registry entry whose loader, root check and paper
    table resolve; the experiments' choices, raw-data datasets and paper rows come from it."""
    from data_prep.ttc.datasets import DATASETS, TTCDataset, ttc_dataset
    from experiments.ttc import cli, config, report

    assert config.DATASETS == tuple(DATASETS) == ("synthattrs", "digits", "celeba", "cifar10")
    assert cli.RAW_DATASETS == ("celeba", "cifar10")
    for entry in DATASETS.values():
        assert callable(entry.load()) and entry.paper_table in ("Table 4", "Table 5")
        assert entry.face_attributes == (entry.paper_table == "Table 4")
    assert report.paper_rows("synthattrs", ["wearing_lipstick", "mustache"]) == ["Wearing_Lipstick", None]
    assert report.paper_rows("digits", ["3.8", "5.9"]) == ["airplane.ship", "automobile.truck"]
    assert report.paper_rows("celeba", ["Smiling", "Bald"]) == ["Smiling", None]
    with pytest.raises(FileNotFoundError):
        ttc_dataset("cifar10").check_root("/no/such/folder")
    with pytest.raises(ValueError, match="embedded"):
        ttc_dataset("digits").check_root("/anywhere")
    with pytest.raises(ValueError, match="choose from"):
        ttc_dataset("mnist")
    with pytest.raises(ValueError, match="find_root"):
        TTCDataset("x", "m:f", {}, needs_data_root=True, tasks="pairs", paper_dataset="X", paper_table="Table 5")
    data = load_digits_tasks(size=8, train_per_class=2)
    from experiments.ttc.runner import load_task_data

    loaded = load_task_data(config.resolve_config("digits", "out", size=8, train_per_class=2), progress=False)
    np.testing.assert_array_equal(loaded.splits["train"][0], data.splits["train"][0])
