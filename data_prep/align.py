"""Face crops from an MTCNN detection (TF-free, MTCNN-free): the alignment modes and their settings.

Two modes, registered in :data:`ALIGNMENTS` (the single home of the alignment settings; the
CLI, :class:`data_prep.mtcnn_align.AlignConfig` and the prepared datasets' ``summary.json``
all read it):

* ``box`` (default), the authors' crop (facenet ``align_dataset_mtcnn.py`` with the defaults
  Ming et al. used): the detector box grown by ``margin`` *source* pixels in total
  (``margin / 2`` on each side), clipped at the image border (no padding), resized to
  ``image_size`` (182) x 182 with a smoothing filter (:func:`box_interpolation`). The aspect
  ratio of the clipped region is not kept (it is stretched to a square), as in facenet;
* ``template``: a similarity transform putting the two eye keypoints on a fixed template
  (:func:`eye_template`), eyes horizontal, aspect kept, the area outside the image mirrored.
  Its ``margin`` is in *output* pixels at 182 px. The template was fitted to MTCNN boxes
  (inter-eye distance ~0.49 box widths, box aspect ~1.29, eye line ~0.2 box widths above the
  box centre), so it frames faces roughly, not exactly, like ``box``. synthfaces crops use it
  (they have ground-truth eyes, no detector box).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

#: Authors' defaults (facenet align_dataset_mtcnn): margin 44, crop size 182 (training takes 160 px crops).
DEFAULT_MARGIN = 44
DEFAULT_CROP_SIZE = 182
_EYE_DIST_FRAC = 0.38  # inter-eye distance / (size - margin)
_EYE_RAISE_FRAC = 0.155  # eye line above the crop centre / (size - margin)


def eye_template(
    size: int, margin: float = DEFAULT_MARGIN, ref_size: int = DEFAULT_CROP_SIZE
) -> tuple[tuple[float, float], tuple[float, float]]:
    """Return the target pixel positions ``(left_eye, right_eye)`` in a ``size`` x ``size`` crop.

    ``margin`` is given at ``ref_size`` (the authors' 44 px at 182 px) and scaled with ``size``,
    so crops of any size frame the face identically. ``left_eye`` is the eye on the image's left.
    """
    if size <= 0:
        raise ValueError(f"crop size must be positive, got {size}")
    m = margin * size / ref_size
    if not 0 <= m < size:
        raise ValueError(f"margin {margin} (at {ref_size} px) leaves no face in a {size} px crop")
    inner = size - m
    d = _EYE_DIST_FRAC * inner
    y = size / 2.0 - _EYE_RAISE_FRAC * inner
    return (size / 2.0 - d / 2.0, y), (size / 2.0 + d / 2.0, y)


def similarity_from_eyes(
    left_eye, right_eye, size: int, margin: float = DEFAULT_MARGIN, ref_size: int = DEFAULT_CROP_SIZE
) -> np.ndarray:
    """2x3 similarity matrix mapping the source eye centres onto :func:`eye_template`."""
    src = np.asarray([left_eye, right_eye], dtype=np.float64)
    dst = np.asarray(eye_template(size, margin, ref_size), dtype=np.float64)
    sv, dv = src[1] - src[0], dst[1] - dst[0]
    ns = float(np.hypot(*sv))
    if ns < 1e-6:
        raise ValueError(f"eye positions coincide: {left_eye}, {right_eye}")
    scale = float(np.hypot(*dv)) / ns
    ang = np.arctan2(dv[1], dv[0]) - np.arctan2(sv[1], sv[0])
    a, b = scale * np.cos(ang), scale * np.sin(ang)
    rot = np.array([[a, -b], [b, a]])
    src_mid, dst_mid = src.mean(axis=0), dst.mean(axis=0)
    t = dst_mid - rot @ src_mid
    return np.hstack([rot, t[:, None]])


def align_face(
    image: np.ndarray,
    left_eye,
    right_eye,
    size: int = DEFAULT_CROP_SIZE,
    margin: float = DEFAULT_MARGIN,
    ref_size: int = DEFAULT_CROP_SIZE,
    border: int = cv2.BORDER_REFLECT101,
) -> np.ndarray:
    """Warp ``image`` (H x W x C uint8) so the eyes land on :func:`eye_template`; returns size x size.

    When the crop is much smaller than the source face the image is pre-blurred to avoid aliasing.
    """
    mat = similarity_from_eyes(left_eye, right_eye, size, margin, ref_size)
    scale = float(np.hypot(mat[0, 0], mat[1, 0]))
    src = image
    if scale < 0.5:
        sigma = 0.5 / scale * 0.6
        src = cv2.GaussianBlur(image, (0, 0), sigmaX=sigma)
    return cv2.warpAffine(src, mat, (size, size), flags=cv2.INTER_LINEAR, borderMode=border)


# ----------------------------------------------------------------------------- box crop (authors')
def box_crop_region(box, image_shape, margin: float = DEFAULT_MARGIN) -> tuple[int, int, int, int]:
    """Source region ``(x0, y0, x1, y1)`` (x1, y1 exclusive) of the authors' crop of ``box`` = ``[x, y, w, h]``.

    facenet: ``x0 = max(x - margin/2, 0)``, ``y0 = max(y - margin/2, 0)``, ``x1 = min(x + w + margin/2, width)``,
    ``y1 = min(y + h + margin/2, height)``, truncated to integers. ``margin`` is in source pixels.
    """
    if margin < 0:
        raise ValueError(f"margin must be >= 0, got {margin}")
    h, w = image_shape[:2]
    bx, by, bw, bh = (float(v) for v in box)
    half = margin / 2.0
    x0, y0 = int(max(bx - half, 0.0)), int(max(by - half, 0.0))
    x1, y1 = int(min(bx + bw + half, float(w))), int(min(by + bh + half, float(h)))
    if x1 <= x0 or y1 <= y0:
        raise ValueError(f"box {list(box)} with margin {margin} leaves no pixels in a {w}x{h} image")
    return x0, y0, x1, y1


def box_interpolation(region_h: int, region_w: int, size: int) -> int:
    """OpenCV filter that resizes a ``region_h`` x ``region_w`` region to ``size`` like facenet did.

    facenet resized with ``scipy.misc.imresize(..., interp="bilinear")``, i.e. PIL's bilinear
    filter, which is plain bilinear when enlarging and widens its support (antialiases) when
    shrinking. cv2.INTER_LINEAR does not antialias and cv2.INTER_AREA is blocky when enlarging, so:
    INTER_AREA when the region shrinks in both directions (CK+ faces, ~300 px), INTER_LINEAR
    otherwise (Oulu-CASIA VL faces, ~150 px, are enlarged). Both stay within about 1 grey level
    (mean) of PIL's bilinear resize on photos.
    """
    return cv2.INTER_AREA if region_h >= size and region_w >= size else cv2.INTER_LINEAR


def crop_box(
    image: np.ndarray,
    box,
    size: int = DEFAULT_CROP_SIZE,
    margin: float = DEFAULT_MARGIN,
    interpolation: int | None = None,
) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """The authors' crop: :func:`box_crop_region` resized to ``size`` x ``size``; returns ``(crop, region)``.

    ``interpolation`` defaults to :func:`box_interpolation`.
    """
    if size <= 0:
        raise ValueError(f"crop size must be positive, got {size}")
    x0, y0, x1, y1 = box_crop_region(box, image.shape, margin)
    if interpolation is None:
        interpolation = box_interpolation(y1 - y0, x1 - x0, size)
    crop = cv2.resize(np.ascontiguousarray(image[y0:y1, x0:x1]), (size, size), interpolation=interpolation)
    return crop, (x0, y0, x1, y1)


# ----------------------------------------------------------------------------- alignment modes
def _align_box(image: np.ndarray, face: Mapping[str, Any], size: int, margin: float):
    return crop_box(image, face["box"], size, margin)


def _align_template(image: np.ndarray, face: Mapping[str, Any], size: int, margin: float):
    kp = face["keypoints"]
    le, re_ = np.asarray(kp["left_eye"], float), np.asarray(kp["right_eye"], float)
    if le[0] > re_[0]:
        le, re_ = re_, le
    return align_face(image, le, re_, size, margin), None


@dataclass(frozen=True)
class Alignment:
    """One way of turning a detection into a crop.

    ``crop(image, face, size, margin)`` takes an MTCNN face dict (``box`` ``[x, y, w, h]``,
    ``keypoints``) and returns ``(crop, region)``: the ``size`` x ``size`` crop and the source
    region ``(x0, y0, x1, y1)`` it shows (None when it is not an axis-aligned rectangle).
    """

    name: str
    margin_unit: str
    description: str
    crop: Callable[[np.ndarray, Mapping[str, Any], int, float], tuple[np.ndarray, Any]]

    def describe(self, size: int, margin: float) -> str:
        """One line for ``summary.json``, with the actual size and margin."""
        return self.description.format(size=size, margin=margin, half=margin / 2)


ALIGNMENTS: dict[str, Alignment] = {
    "box": Alignment(
        "box",
        "source pixels, in total (margin/2 per side)",
        "authors' crop (facenet align_dataset_mtcnn): MTCNN box + {margin:g} source px ({half:g} per side), "
        "clipped at the image border, resized to {size} px (cv2.INTER_AREA when shrinking, else INTER_LINEAR)",
        _align_box,
    ),
    "template": Alignment(
        "template",
        "output pixels at 182 px (scaled with the crop size)",
        "similarity warp of the two eye keypoints onto a fixed template in a {size} px crop (margin "
        "{margin:g} output px at 182 px), eyes horizontal, area outside the image mirrored",
        _align_template,
    ),
}
DEFAULT_ALIGNMENT = "box"


def get_alignment(name: str) -> Alignment:
    """The registered :class:`Alignment` called ``name`` (ValueError listing the choices otherwise)."""
    try:
        return ALIGNMENTS[name]
    except KeyError:
        raise ValueError(f"alignment must be one of {sorted(ALIGNMENTS)}, got {name!r}") from None
