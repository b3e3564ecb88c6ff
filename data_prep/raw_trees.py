"""Writers of small raw dataset trees in the real layouts: CK+, Oulu-CASIA and one folder per identity.

The readers (:mod:`data_prep.ckplus`, :mod:`data_prep.oulu`, the identity-folder pretraining sets) are
exercised on trees written here: by the tests, the benchmarks, the probe of bad inputs
(:mod:`data_prep.probe`) and the rehearsal of the real-data path (:mod:`data_prep.rehearsal`). The
images come from the caller (photos, synthfaces renderings, corrupt bytes); this module only puts them
where the datasets put theirs:

* CK+: ``cohn-kanade-images/S010/001/S010_001_00000001.png`` ... and, for a labelled sequence,
  ``Emotion/S010/001/S010_001_<last frame>_emotion.txt`` (:func:`ckplus_sequence`);
* Oulu-CASIA: ``VL/Strong/P001/Anger/000.jpeg`` ... (:func:`oulu_sequence`);
* identity folders (CASIA-WebFace): ``0000100/001.jpg`` ... (:func:`identity_folder`).

:func:`photo_faces` gives face photos (skimage's astronaut and camera) to draw frames from, and
:func:`ckplus_photo_tree` a whole CK+ tree of given photos. Writing needs OpenCV, nothing else of
the package; :func:`photo_faces` needs scikit-image.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

CK_IMAGES = "cohn-kanade-images"
#: Oulu-CASIA's expression folders, in the dataset's order
OULU_FOLDERS = ("Anger", "Disgust", "Fear", "Happiness", "Sadness", "Surprise")


def write_image(path: str | Path, rgb_or_raw: np.ndarray | bytes, params: Sequence[int] = ()) -> None:
    """An image file (folders created): RGB, RGBA or grayscale arrays through OpenCV with its
    ``params`` (e.g. ``[cv2.IMWRITE_JPEG_QUALITY, 95]``), ``bytes`` as they are (a corrupt file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(rgb_or_raw, bytes):
        path.write_bytes(rgb_or_raw)
        return
    if rgb_or_raw.ndim == 2:
        image = rgb_or_raw
    elif rgb_or_raw.shape[2] == 4:
        image = cv2.cvtColor(rgb_or_raw, cv2.COLOR_RGBA2BGRA)
    else:
        image = cv2.cvtColor(rgb_or_raw, cv2.COLOR_RGB2BGR)
    if not cv2.imwrite(str(path), image, list(params)):
        raise OSError(f"could not write {path}")


def ckplus_sequence(
    root: str | Path, subj: str, seq: str, frames: Sequence, label: int | None, params: Sequence[int] = ()
) -> None:
    """CK+ sequence ``subj/seq``: ``cohn-kanade-images/S010/001/S010_001_0000000k.png`` (k from 1) and,
    unless ``label`` is None, its ``Emotion/S010/001/S010_001_<last frame>_emotion.txt`` holding the
    CK+ code as the dataset writes it (``   5.0000000e+00``)."""
    root = Path(root)
    for k, img in enumerate(frames, start=1):
        write_image(root / CK_IMAGES / subj / seq / f"{subj}_{seq}_{k:08d}.png", img, params)
    if label is not None:
        e = root / "Emotion" / subj / seq / f"{subj}_{seq}_{len(frames):08d}_emotion.txt"
        e.parent.mkdir(parents=True, exist_ok=True)
        e.write_text(f"   {float(label):.7e}\n")


def oulu_sequence(
    root: str | Path,
    subject: str,
    folder: str,
    frames: Sequence,
    spectrum: str = "VL",
    illumination: str = "Strong",
    params: Sequence[int] = (),
) -> None:
    """Oulu-CASIA sequence: ``VL/Strong/P001/Anger/000.jpeg`` ... (k from 0)."""
    for k, img in enumerate(frames):
        write_image(Path(root) / spectrum / illumination / subject / folder / f"{k:03d}.jpeg", img, params)


def identity_folder(
    root: str | Path, identity: str, images: Sequence, suffix: str = ".jpg", params: Sequence[int] = ()
) -> None:
    """One identity of an identity-folder set (CASIA-WebFace): ``0000100/001.jpg`` ... (k from 1)."""
    for k, img in enumerate(images, start=1):
        write_image(Path(root) / identity / f"{k:03d}{suffix}", img, params)


def photo_faces(size: int) -> list[np.ndarray]:
    """Three ``size`` x ``size`` RGB face photos: skimage's astronaut, camera (gray as RGB) and the
    astronaut mirrored (uint8)."""
    from skimage import data

    astro = cv2.resize(data.astronaut()[0:300, 80:380], (size, size), interpolation=cv2.INTER_AREA)
    cam = cv2.resize(np.stack([data.camera()[40:340, 80:380]] * 3, axis=-1), (size, size), interpolation=cv2.INTER_AREA)
    return [astro, cam, astro[:, ::-1].copy()]


def ckplus_photo_tree(root: str | Path, photos: Sequence[np.ndarray], sequences: int, frames: int = 4) -> int:
    """``sequences`` subjects (S100, S101, ...) x 1 labelled sequence ``001`` of ``frames`` photos taken
    in turn from ``photos`` (CK+ code ``1 + s % 7`` for subject s); returns the number of image files."""
    for s in range(sequences):
        images = [photos[(s + k) % len(photos)] for k in range(frames)]
        ckplus_sequence(root, f"S{100 + s:03d}", "001", images, 1 + s % 7)
    return sequences * frames
