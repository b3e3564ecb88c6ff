"""Writers of raw dataset trees in the layouts the readers expect (data_prep/ckplus.py,
data_prep/oulu.py), for tests and benchmarks: one home instead of a copy per test file.

    from raw_trees import ckplus_sequence, oulu_sequence, write_image   # tests/ is on sys.path
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

CK_IMAGES = "cohn-kanade-images"


def write_image(path: Path, rgb_or_raw: np.ndarray | bytes) -> None:
    """An image file: RGB, RGBA or grayscale arrays through OpenCV, ``bytes`` as they are."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(rgb_or_raw, bytes):
        path.write_bytes(rgb_or_raw)
    elif rgb_or_raw.ndim == 2:
        cv2.imwrite(str(path), rgb_or_raw)
    elif rgb_or_raw.shape[2] == 4:
        cv2.imwrite(str(path), cv2.cvtColor(rgb_or_raw, cv2.COLOR_RGBA2BGRA))
    else:
        cv2.imwrite(str(path), cv2.cvtColor(rgb_or_raw, cv2.COLOR_RGB2BGR))


def ckplus_sequence(root: Path, subj: str, seq: str, frames: Sequence, label: int | None) -> None:
    """CK+ sequence ``subj/seq``: ``cohn-kanade-images/S010/001/S010_001_0000000k.png`` and, unless
    ``label`` is None, its ``Emotion/S010/001/S010_001_<last frame>_emotion.txt``."""
    for k, img in enumerate(frames, start=1):
        write_image(Path(root) / CK_IMAGES / subj / seq / f"{subj}_{seq}_{k:08d}.png", img)
    if label is not None:
        e = Path(root) / "Emotion" / subj / seq / f"{subj}_{seq}_{len(frames):08d}_emotion.txt"
        e.parent.mkdir(parents=True, exist_ok=True)
        e.write_text(f"   {float(label):.7e}\n")


def oulu_sequence(
    root: Path, subject: str, folder: str, frames: Sequence, spectrum: str = "VL", illumination: str = "Strong"
) -> None:
    """Oulu-CASIA sequence ``VL/Strong/P001/Anger/000.jpeg`` ..."""
    for k, img in enumerate(frames):
        write_image(Path(root) / spectrum / illumination / subject / folder / f"{k:03d}.jpeg", img)


def ckplus_photo_tree(root: Path, photos: Sequence[np.ndarray], sequences: int, frames: int = 4) -> int:
    """``sequences`` subjects (S100, S101, ...) x 1 labelled sequence of ``frames`` photos taken
    in turn from ``photos``; returns the number of image files."""
    for s in range(sequences):
        images = [photos[(s + k) % len(photos)] for k in range(frames)]
        ckplus_sequence(root, f"S{100 + s:03d}", "001", images, 1 + s % 7)
    return sequences * frames
