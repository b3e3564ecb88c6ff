"""CIFAR-10 (python batch format) as the paper's 5 binary tasks (Fang et al. 2017, Sec. 4.2, Table 5).

The batches are pickles. They are read with :func:`restricted_load`, an unpickler that resolves only the
globals a CIFAR-10 batch needs (numpy's array reconstruction, ``numpy.ndarray``, ``numpy.dtype``, and a
latin-1-only ``_codecs.encode`` for bytes written by Python 3 at protocol 2); any other global (``os.system``,
``builtins.eval``, ...) raises :class:`pickle.UnpicklingError` before anything is called. The loaded object
is then checked to be a dict with a uint8 ``data`` array of shape (N, 3072) and N integer ``labels``.

Layout: ``ROOT/cifar-10-batches-py/{data_batch_1..5, test_batch}`` (``ROOT`` may also be that folder).
"""

from __future__ import annotations

import codecs
import io
import pickle
from pathlib import Path

import numpy as np

from data_prep.readers_common import describe_dir
from data_prep.ttc.common import TaskData, pair_task_labels

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
#: The paper's 5 tasks (first class = negative, second = positive).
CIFAR10_TASKS: tuple[tuple[str, str], ...] = (
    ("airplane", "ship"),
    ("automobile", "truck"),
    ("bird", "frog"),
    ("cat", "dog"),
    ("deer", "horse"),
)
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"


def _numpy_reconstruct():
    try:
        from numpy._core.multiarray import _reconstruct  # numpy >= 2
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core.multiarray import _reconstruct
    return _reconstruct


def _numpy_frombuffer():
    try:
        from numpy._core.numeric import _frombuffer  # numpy >= 2
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core.numeric import _frombuffer
    return _frombuffer


#: (module, name) -> factory of the object it may resolve to. Nothing else is importable.
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _numpy_reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _numpy_reconstruct,
    ("numpy.core.numeric", "_frombuffer"): _numpy_frombuffer,
    ("numpy._core.numeric", "_frombuffer"): _numpy_frombuffer,
    ("numpy", "ndarray"): lambda: np.ndarray,
    ("numpy", "dtype"): lambda: np.dtype,
    ("_codecs", "encode"): lambda: _latin1_encode,
}


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    """``_codecs.encode`` as Python 3 writes bytes at protocol 2, limited to the latin-1 codec."""
    if encoding not in ("latin1", "latin-1") or not isinstance(text, str):
        raise pickle.UnpicklingError(f"refusing _codecs.encode with encoding {encoding!r}")
    return codecs.encode(text, "latin1")


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        factory = _ALLOWED_GLOBALS.get((module, name))
        if factory is None:
            raise pickle.UnpicklingError(
                f"refusing to unpickle global {module}.{name}: a CIFAR-10 batch contains only numpy arrays, "
                "dicts, lists, bytes and ints"
            )
        return factory()


def restricted_load(data: bytes | io.IOBase, encoding: str = "bytes"):
    """Unpickles ``data`` (bytes or a binary file) allowing only CIFAR-10's globals (see module doc)."""
    stream = io.BytesIO(data) if isinstance(data, (bytes, bytearray)) else data
    return _RestrictedUnpickler(stream, encoding=encoding).load()


def _key(d: dict, name: str):
    for k in (name.encode(), name):
        if k in d:
            return d[k]
    raise KeyError(name)


def read_batch(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """One batch file -> (images uint8 (N, 32, 32, 3), labels int64 (N,)), validated."""
    path = Path(path)
    with open(path, "rb") as f:
        obj = restricted_load(f)
    if not isinstance(obj, dict):
        raise ValueError(f"{path}: expected a dict, got {type(obj).__name__}")
    try:
        data, labels = _key(obj, "data"), _key(obj, "labels")
    except KeyError as err:
        raise ValueError(f"{path}: not a CIFAR-10 batch (no {err.args[0]!r} entry)") from None
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        raise ValueError(f"{path}: 'data' must be a uint8 array of shape (N, 3072)")
    labels = np.asarray(labels)
    if labels.shape != (len(data),) or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"{path}: 'labels' must hold {len(data)} integers")
    if labels.min(initial=0) < 0 or labels.max(initial=0) > 9:
        raise ValueError(f"{path}: labels must be in 0..9")
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return images, labels.astype(np.int64)


def find_cifar_dir(root: str | Path) -> Path:
    """``root/cifar-10-batches-py`` or ``root`` itself, whichever holds the batches; clear error otherwise."""
    root = Path(root)
    for cand in (root / "cifar-10-batches-py", root):
        if all((cand / b).is_file() for b in (*TRAIN_BATCHES, TEST_BATCH)):
            return cand
    raise FileNotFoundError(
        f"no CIFAR-10 python batches under {root}: expected {root}/cifar-10-batches-py/"
        f"{{data_batch_1..5, test_batch}} (the extracted cifar-10-python.tar.gz). {describe_dir(root)}"
    )


def load_cifar10_tasks(
    root: str | Path,
    val_size: int = 5000,
    seed: int = 0,
    max_train: int | None = None,
    max_test: int | None = None,
) -> TaskData:
    """The paper's 5 binary CIFAR-10 tasks; RGB 32x32 in [0, 1].

    Args:
        root: folder holding ``cifar-10-batches-py/`` (or that folder).
        val_size: images taken from the training batches for validation.
        seed: seeds the val split and the optional subsampling.
        max_train, max_test: optional random subsets (for quick runs).
    """
    folder = find_cifar_dir(root)
    parts = [read_batch(folder / b) for b in TRAIN_BATCHES]
    x_train = np.concatenate([p[0] for p in parts])
    y_train = np.concatenate([p[1] for p in parts])
    x_test, y_test = read_batch(folder / TEST_BATCH)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(x_train))
    val_idx, train_idx = order[:val_size], order[val_size:]
    if max_train is not None:
        train_idx = train_idx[:max_train]
    test_idx = np.arange(len(x_test)) if max_test is None else rng.permutation(len(x_test))[:max_test]
    index = {c: i for i, c in enumerate(CIFAR10_CLASSES)}
    pairs = [(index[a], index[b]) for a, b in CIFAR10_TASKS]

    def part(x, y):
        return x.astype(np.float32) / 255.0, pair_task_labels(y, pairs)

    return TaskData(
        name="cifar10",
        task_names=[f"{a}.{b}" for a, b in CIFAR10_TASKS],
        splits=dict(
            train=part(x_train[np.sort(train_idx)], y_train[np.sort(train_idx)]),
            val=part(x_train[np.sort(val_idx)], y_train[np.sort(val_idx)]),
            test=part(x_test[np.sort(test_idx)], y_test[np.sort(test_idx)]),
        ),
        meta=dict(source=str(folder), val_size=val_size, seed=seed, max_train=max_train, max_test=max_test),
    )
