"""Similarity alignment of a face on its two eye centres (TF-free, MTCNN-free).

The output framing mimics the authors' MTCNN crop (REFERENCE.md section 2: margin 44 at
182 px, training at 160): the detector box plus ``margin`` fills the output, but the
aspect ratio is kept and the eyes are rotated to horizontal. The eye positions of this
template were measured on MTCNN boxes (inter-eye distance ~0.49 box widths, box aspect
~1.29, eye line ~0.2 box widths above the box centre).
"""
from __future__ import annotations

import cv2
import numpy as np

#: Authors' defaults (facenet align_dataset_mtcnn): margin 44 px at crop size 182.
DEFAULT_MARGIN = 44
DEFAULT_CROP_SIZE = 182
_EYE_DIST_FRAC = 0.38   # inter-eye distance / (size - margin)
_EYE_RAISE_FRAC = 0.155  # eye line above the crop centre / (size - margin)


def eye_template(size: int, margin: float = DEFAULT_MARGIN,
                 ref_size: int = DEFAULT_CROP_SIZE) -> tuple[tuple[float, float], tuple[float, float]]:
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


def similarity_from_eyes(left_eye, right_eye, size: int, margin: float = DEFAULT_MARGIN,
                         ref_size: int = DEFAULT_CROP_SIZE) -> np.ndarray:
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


def align_face(image: np.ndarray, left_eye, right_eye, size: int = DEFAULT_CROP_SIZE,
               margin: float = DEFAULT_MARGIN, ref_size: int = DEFAULT_CROP_SIZE,
               border: int = cv2.BORDER_REFLECT101) -> np.ndarray:
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
