"""CelebA face attributes as binary tasks (Fang et al. 2017, Sec. 4: aligned, histogram-equalised
grayscale faces).

Expected under ``ROOT`` (either flat, or the official Drive layout with ``Anno/``, ``Eval/``, ``Img/``)::

    list_attr_celeba.txt        line 1: image count, line 2: 40 attribute names, then "000001.jpg  -1  1 ..."
    list_eval_partition.txt     "000001.jpg 0"  (0 train, 1 val, 2 test)
    img_align_celeba/000001.jpg ...             (178 x 218 aligned crops)

Each image: grayscale, the central 178 x 178 square (rows 20..198), histogram equalisation
(``cv2.equalizeHist``), area resize to ``size`` x ``size``, scaled to [0, 1].
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from data_prep.readers_common import describe_dir
from data_prep.ttc.common import SPLITS, TaskData

#: Table 4's seven attributes (CelebA spelling).
CELEBA_TABLE4_ATTRIBUTES: tuple[str, ...] = (
    "Goatee",
    "Heavy_Makeup",
    "High_Cheekbones",
    "No_Beard",
    "Sideburns",
    "Smiling",
    "Wearing_Lipstick",
)
#: Table 3's two-task groups (the most imbalanced attributes).
CELEBA_TABLE3_GROUPS: tuple[tuple[str, str], ...] = (("Bald", "Wearing_Hat"), ("Mustache", "Goatee"))

_ATTR_FILE, _PARTITION_FILE, _IMAGE_DIR = "list_attr_celeba.txt", "list_eval_partition.txt", "img_align_celeba"


def find_celeba_files(root: str | Path) -> tuple[Path, Path, Path]:
    """(attribute file, partition file, image folder) under ``root``; a clear error naming what is missing."""
    root = Path(root)
    candidates = {
        _ATTR_FILE: [root / _ATTR_FILE, root / "Anno" / _ATTR_FILE],
        _PARTITION_FILE: [root / _PARTITION_FILE, root / "Eval" / _PARTITION_FILE],
        _IMAGE_DIR: [root / _IMAGE_DIR, root / "Img" / _IMAGE_DIR, root / _IMAGE_DIR / _IMAGE_DIR],
    }
    found, missing = {}, []
    for name, paths in candidates.items():
        hit = next((p for p in paths if (p.is_dir() if name == _IMAGE_DIR else p.is_file())), None)
        if hit is None:
            missing.append(name)
        found[name] = hit
    if missing:
        raise FileNotFoundError(
            f"not a CelebA root: {root} lacks {missing}. Expected {_ATTR_FILE}, {_PARTITION_FILE} and "
            f"{_IMAGE_DIR}/ (flat, or under Anno/, Eval/, Img/). {describe_dir(root)}"
        )
    return found[_ATTR_FILE], found[_PARTITION_FILE], found[_IMAGE_DIR]


def read_attributes(path: str | Path) -> pd.DataFrame:
    """``list_attr_celeba.txt`` -> DataFrame indexed by file name, columns = attributes, values in {0, 1}."""
    path = Path(path)
    with open(path) as f:
        lines = f.read().splitlines()
    if len(lines) < 2:
        raise ValueError(f"{path}: too short for a CelebA attribute file")
    try:
        count = int(lines[0].strip())
    except ValueError:
        raise ValueError(f"{path}: line 1 must be the image count, got {lines[0]!r}") from None
    names = lines[1].split()
    rows = [line.split() for line in lines[2:] if line.strip()]
    if len(rows) != count:
        raise ValueError(f"{path}: header says {count} images, found {len(rows)} rows")
    bad = next((r for r in rows if len(r) != len(names) + 1), None)
    if bad is not None:
        raise ValueError(f"{path}: row {bad[0]!r} has {len(bad) - 1} values for {len(names)} attributes")
    values = np.asarray([r[1:] for r in rows], dtype=np.int8)
    if not np.isin(values, (-1, 1)).all():
        raise ValueError(f"{path}: attribute values must be -1 or 1")
    return pd.DataFrame((values > 0).astype(np.int8), index=[r[0] for r in rows], columns=names)


def read_partition(path: str | Path) -> pd.Series:
    """``list_eval_partition.txt`` -> Series file name -> 0 (train) / 1 (val) / 2 (test)."""
    path = Path(path)
    table = pd.read_csv(path, sep=r"\s+", header=None, names=["file", "split"], dtype={"file": str})
    if table["split"].isna().any() or not table["split"].isin([0, 1, 2]).all():
        raise ValueError(f"{path}: every line must be '<file> <0|1|2>'")
    return table.set_index("file")["split"].astype(int)


def load_face(path: str | Path, size: int) -> np.ndarray:
    """Grayscale, central square crop, histogram equalisation, resize; float32 (size, size) in [0, 1]."""
    image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if image is None:
        raise FileNotFoundError(f"cannot read image {path}")
    h, w = image.shape
    side = min(h, w)
    top = (h - side) // 2
    left = (w - side) // 2
    image = cv2.equalizeHist(np.ascontiguousarray(image[top : top + side, left : left + side]))
    image = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
    return image.astype(np.float32) / 255.0


def load_celeba_tasks(
    root: str | Path,
    attributes: Sequence[str] = CELEBA_TABLE4_ATTRIBUTES,
    size: int = 40,
    max_per_split: dict[str, int | None] | None = None,
    seed: int = 0,
    progress: bool = True,
) -> TaskData:
    """CelebA attributes as binary tasks, with the official train/val/test partition.

    Args:
        root: the CelebA folder (see module doc).
        attributes: CelebA attribute names (default: Table 4's seven).
        size: output side of the square grayscale faces.
        max_per_split: optional random subset size per split, e.g. ``{"train": 20000, "test": 5000}``.
        seed: seeds the subsets.
    """
    attr_file, part_file, image_dir = find_celeba_files(root)
    table = read_attributes(attr_file)
    unknown = [a for a in attributes if a not in table.columns]
    if unknown:
        raise KeyError(f"unknown CelebA attributes {unknown}; known: {list(table.columns)}")
    partition = read_partition(part_file)
    missing = table.index.difference(partition.index)
    if len(missing):
        raise ValueError(f"{part_file}: no partition for {len(missing)} images, e.g. {missing[0]}")
    rng = np.random.default_rng(seed)
    limits = dict(max_per_split or {})
    splits = {}
    for code, split in enumerate(SPLITS):
        files = np.asarray(table.index[(partition.loc[table.index] == code).to_numpy()])
        limit = limits.get(split)
        if limit is not None and limit < len(files):
            files = np.sort(rng.choice(files, size=int(limit), replace=False))
        if len(files) == 0:
            raise ValueError(f"CelebA split {split!r} is empty under {root}")
        images = np.stack(
            [load_face(image_dir / f, size) for f in tqdm(files, desc=f"celeba {split}", disable=not progress)]
        )[..., None]
        labels = table.loc[files, list(attributes)].to_numpy(dtype=np.int8)
        splits[split] = (images, labels)
    return TaskData(
        name="celeba",
        task_names=list(attributes),
        splits=splits,
        meta=dict(source=str(Path(root)), size=size, max_per_split=limits, seed=seed),
    )
