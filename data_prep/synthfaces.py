"""``synthfaces``: the embedded, procedurally drawn face dataset.

CK+ and Oulu-CASIA cannot be shipped, so this module draws faces with OpenCV/numpy:

* identities (:func:`sample_identity`) with stable geometry and appearance: face shape, jaw,
  skin tone, hair colour/style/hairline, eye spacing/size/shape/iris colour, brows, nose,
  mouth width and lips, ears, an optional mole, and binary face attributes
  (:func:`sample_attributes`, e.g. beard/goatee/eyeglasses) with a documented correlation structure;
* the 8 CK+ expression classes (0 neutral .. 7 surprise, :data:`EXPRESSIONS`) as FACS-like
  deformations of mouth, brows, eyes, cheeks and nose, at a continuous intensity in [0, 1];
  a strong expression moves exactly the cues that identify a face (eye opening, mouth width,
  brow height), which is the premise of Ming et al. 2019;
* CK+-like sequences from neutral (intensity 0) to peak, so "first frame + last 3 frames" applies;
* per-image nuisance: roll / pseudo-yaw / scale / translation, illumination gradient and
  brightness, Gaussian noise and blur, and eye-landmark noise before alignment.

:func:`generate` writes the exact CK+ layout (``cohn-kanade-images/S001/001/S001_001_00000001.png``
and ``Emotion/S001/001/S001_001_0000000N_emotion.txt``) plus pre-aligned crops of the protocol
frames under ``aligned/`` (same relative names) and ``identities.csv``. The crops are aligned
with the ground-truth eye centres (plus landmark noise) by :func:`data_prep.align.align_face`,
the same template the MTCNN path uses, so no detector is needed for synthetic faces.

Everything is deterministic: identity ``i`` draws from the stream
``data_prep.seeds.IDENTITY`` keyed by ``i``, its sequence ``j`` from ``SEQUENCE`` keyed by ``(i, j)``, so the output does not depend on the
order of generation or the number of worker processes.

This module imports neither TensorFlow nor MTCNN.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from . import seeds
from .align import DEFAULT_MARGIN, align_face, eye_template
from .labels import CKPLUS_EXPRESSIONS

# --------------------------------------------------------------------------------------------
# Labels
# --------------------------------------------------------------------------------------------
#: CK+ emotion codes (Emotion/*_emotion.txt) -> names.
EXPRESSIONS: dict[int, str] = dict(CKPLUS_EXPRESSIONS)
EXPRESSION_CODES: dict[str, int] = {v: k for k, v in EXPRESSIONS.items()}

#: Expression deformations at intensity 1 (FACS-like action units, in face units).
#: Keys: brow_raise (whole brow up), brow_inner (inner ends up: sadness/fear),
#: brow_lower (brows down and together: anger), eye_open (+ wider, - squint), cheek_raise,
#: mouth_corner (+ up), mouth_open (jaw drop), mouth_width (+ wider), upper_lip_raise,
#: lip_press, nose_wrinkle, asym (one-sided corner raise), mouth_stretch (horizontal, fear).
_AU_KEYS = (
    "brow_raise",
    "brow_inner",
    "brow_lower",
    "eye_open",
    "cheek_raise",
    "mouth_corner",
    "mouth_open",
    "mouth_width",
    "upper_lip_raise",
    "lip_press",
    "nose_wrinkle",
    "asym",
    "mouth_stretch",
)
_EXPRESSION_AUS: dict[int, dict[str, float]] = {
    0: {},
    1: dict(
        brow_lower=1.0,
        brow_inner=-0.4,
        eye_open=-0.35,
        lip_press=1.0,
        mouth_width=-0.2,
        mouth_corner=-0.35,
        nose_wrinkle=0.25,
    ),
    2: dict(asym=1.0, eye_open=-0.15, brow_lower=0.15, lip_press=0.3),
    3: dict(
        nose_wrinkle=1.0,
        upper_lip_raise=1.0,
        brow_lower=0.65,
        eye_open=-0.45,
        cheek_raise=0.6,
        mouth_corner=-0.45,
        mouth_open=0.25,
    ),
    4: dict(brow_raise=0.65, brow_inner=0.9, eye_open=0.75, mouth_open=0.5, mouth_stretch=1.0, mouth_corner=-0.3),
    5: dict(mouth_corner=1.0, mouth_width=0.4, cheek_raise=1.0, eye_open=-0.5, mouth_open=0.4, brow_raise=0.1),
    6: dict(brow_inner=1.0, mouth_corner=-1.0, eye_open=-0.3, lip_press=0.35, brow_raise=-0.15),
    7: dict(brow_raise=1.0, eye_open=0.9, mouth_open=1.0, mouth_width=-0.3),
}

# --------------------------------------------------------------------------------------------
# Attributes (ground-truth correlation structure for the TTC / CelebA-like experiments)
# --------------------------------------------------------------------------------------------
#: Binary attributes, CelebA-style names. Static ones are part of an identity's look; the
#: "state" ones (smiling, mouth_slightly_open) are only drawn when passed to render_face.
ATTRIBUTES: tuple[str, ...] = (
    "male",
    "no_beard",
    "goatee",
    "sideburns",
    "mustache",
    "smiling",
    "high_cheekbones",
    "mouth_slightly_open",
    "eyeglasses",
    "bangs",
    "heavy_makeup",
    "pale_skin",
)
STATE_ATTRIBUTES: tuple[str, ...] = ("smiling", "mouth_slightly_open")
#: Groups of related attributes (the relatedness a TTC model should discover):
#: facial hair is driven by ``male``; smiling drives high_cheekbones and an open mouth;
#: makeup is anti-related to ``male``; eyeglasses and pale_skin are independent of all.
ATTRIBUTE_GROUPS: dict[str, tuple[str, ...]] = {
    "facial_hair": ("male", "no_beard", "goatee", "sideburns", "mustache"),
    "smile": ("smiling", "high_cheekbones", "mouth_slightly_open"),
    "grooming": ("heavy_makeup", "bangs"),
    "independent": ("eyeglasses", "pale_skin"),
}
#: Marginal prevalence P(attribute = 1) (roughly CelebA's).
ATTRIBUTE_PREVALENCE: dict[str, float] = {
    "male": 0.42,
    "no_beard": 0.83,
    "goatee": 0.06,
    "sideburns": 0.06,
    "mustache": 0.04,
    "smiling": 0.48,
    "high_cheekbones": 0.45,
    "mouth_slightly_open": 0.48,
    "eyeglasses": 0.07,
    "bangs": 0.15,
    "heavy_makeup": 0.39,
    "pale_skin": 0.04,
}


def _attribute_latent_correlation() -> np.ndarray:
    """Latent Gaussian correlation matrix of :data:`ATTRIBUTES` (a Gaussian copula)."""
    idx = {a: i for i, a in enumerate(ATTRIBUTES)}
    c = np.eye(len(ATTRIBUTES))
    pairs = {
        ("male", "no_beard"): -0.85,
        ("male", "goatee"): 0.8,
        ("male", "sideburns"): 0.8,
        ("male", "mustache"): 0.8,
        ("no_beard", "goatee"): -0.85,
        ("no_beard", "sideburns"): -0.8,
        ("no_beard", "mustache"): -0.8,
        ("goatee", "sideburns"): 0.7,
        ("goatee", "mustache"): 0.75,
        ("sideburns", "mustache"): 0.65,
        ("smiling", "high_cheekbones"): 0.85,
        ("smiling", "mouth_slightly_open"): 0.6,
        ("high_cheekbones", "mouth_slightly_open"): 0.5,
        ("male", "heavy_makeup"): -0.85,
        ("male", "bangs"): -0.35,
        ("heavy_makeup", "bangs"): 0.3,
        ("no_beard", "heavy_makeup"): 0.7,
        ("goatee", "heavy_makeup"): -0.65,
        ("sideburns", "heavy_makeup"): -0.65,
        ("mustache", "heavy_makeup"): -0.65,
        ("male", "high_cheekbones"): -0.25,
        ("heavy_makeup", "high_cheekbones"): 0.25,
    }
    for (a, b), r in pairs.items():
        c[idx[a], idx[b]] = c[idx[b], idx[a]] = r
    # Project to the nearest positive-definite matrix with unit diagonal (tiny adjustment).
    w, v = np.linalg.eigh(c)
    c = (v * np.clip(w, 1e-3, None)) @ v.T
    d = np.sqrt(np.diag(c))
    return c / np.outer(d, d)


#: Ground truth: the latent correlation of the Gaussian copula behind :func:`sample_attributes`.
ATTRIBUTE_LATENT_CORRELATION: np.ndarray = _attribute_latent_correlation()
ATTRIBUTE_LATENT_CORRELATION.setflags(write=False)


def _normal_ppf(p: float) -> float:
    """Inverse standard-normal CDF (Acklam's rational approximation, |err| < 1e-9 after a Newton step)."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"probability must be in (0, 1), got {p}")
    a = [
        -3.969683028665376e01,
        2.209460984245205e02,
        -2.759285104469687e02,
        1.383577518672690e02,
        -3.066479806614716e01,
        2.506628277459239e00,
    ]
    b = [
        -5.447609879822406e01,
        1.615858368580409e02,
        -1.556989798598866e02,
        6.680131188771972e01,
        -1.328068155288572e01,
    ]
    cc = [
        -7.784894002430293e-03,
        -3.223964580411365e-01,
        -2.400758277161838e00,
        -2.549732539343734e00,
        4.374664141464968e00,
        2.938163982698783e00,
    ]
    d = [7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e00, 3.754408661907416e00]
    lo = 0.02425
    if p < lo:
        q = math.sqrt(-2 * math.log(p))
        x = (((((cc[0] * q + cc[1]) * q + cc[2]) * q + cc[3]) * q + cc[4]) * q + cc[5]) / (
            (((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1
        )
    elif p > 1 - lo:
        q = math.sqrt(-2 * math.log(1 - p))
        x = -(((((cc[0] * q + cc[1]) * q + cc[2]) * q + cc[3]) * q + cc[4]) * q + cc[5]) / (
            (((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1
        )
    else:
        q = p - 0.5
        r = q * q
        x = (
            (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5])
            * q
            / (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1)
        )
    e = 0.5 * math.erfc(-x / math.sqrt(2)) - p
    return x - e * math.sqrt(2 * math.pi) * math.exp(x * x / 2)


_ATTR_THRESHOLDS = np.array([_normal_ppf(1.0 - ATTRIBUTE_PREVALENCE[a]) for a in ATTRIBUTES])
_ATTR_CHOL = np.linalg.cholesky(ATTRIBUTE_LATENT_CORRELATION)


def sample_attributes(rng: np.random.Generator) -> dict[str, bool]:
    """Draw one binary attribute vector.

    Gaussian copula: ``z ~ N(0, ATTRIBUTE_LATENT_CORRELATION)``, ``attr_k = z_k > Phi^-1(1 - p_k)``
    with ``p_k = ATTRIBUTE_PREVALENCE[k]``. The ground-truth binary correlations follow from the
    latent ones (:func:`attribute_correlation` estimates them); :data:`ATTRIBUTE_GROUPS` lists the
    related groups.
    """
    z = _ATTR_CHOL @ rng.standard_normal(len(ATTRIBUTES))
    return {a: bool(v) for a, v in zip(ATTRIBUTES, z > _ATTR_THRESHOLDS)}


def attribute_correlation(n: int = 200_000, seed: int = 0) -> np.ndarray:
    """Monte-Carlo estimate of the binary (phi) correlation matrix of :func:`sample_attributes`."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, len(ATTRIBUTES))) @ _ATTR_CHOL.T
    x = (z > _ATTR_THRESHOLDS).astype(np.float64)
    return np.corrcoef(x, rowvar=False)


# --------------------------------------------------------------------------------------------
# Identities
# --------------------------------------------------------------------------------------------
_HAIR_COLOURS = np.array(
    [
        [20, 16, 14],
        [45, 30, 20],
        [85, 55, 30],
        [140, 100, 55],
        [200, 165, 105],
        [120, 45, 20],
        [150, 150, 150],
        [60, 50, 45],
    ],
    float,
)
_IRIS_COLOURS = np.array(
    [[60, 40, 25], [95, 65, 35], [70, 110, 150], [80, 120, 80], [40, 30, 25], [110, 110, 120]], float
)


def sample_identity(rng: np.random.Generator) -> dict[str, Any]:
    """Draw the stable parameters of one identity (geometry, appearance and attributes).

    Units: the nominal inter-eye distance is 1; the eye line is y = 0 and y grows downwards.
    The returned dict is JSON-serialisable (floats, ints, lists, a dict of attribute booleans).
    """
    attrs = sample_attributes(rng)
    male = attrs["male"]
    u = rng.uniform
    tone = u(0.0, 1.0)
    if attrs["pale_skin"]:
        tone = u(0.0, 0.08)
    # Skin tone: a 1-D family from pale to dark, with a small hue jitter.
    light, dark = np.array([250, 218, 196.0]), np.array([92, 58, 40.0])
    skin = (1 - tone) * light + tone * dark + rng.normal(0, 8, 3)
    hair_idx = int(rng.integers(len(_HAIR_COLOURS)))
    hair = _HAIR_COLOURS[hair_idx] + rng.normal(0, 10, 3)
    p: dict[str, Any] = {
        "face_w": u(1.02, 1.3) + (0.06 if male else 0.0),  # half-width at the cheekbones
        "face_top": u(1.55, 1.85),  # crown height above the eye line
        "chin_y": u(1.55, 1.95),  # chin below the eye line
        "jaw_w": u(0.55, 0.95) + (0.12 if male else 0.0),  # half-width of the jaw at the mouth
        "chin_w": u(0.18, 0.42),
        "skin": np.clip(skin, 0, 255).tolist(),
        "hair": np.clip(hair, 0, 255).tolist(),
        "hair_style": int(rng.integers(4)),  # 0 short, 1 long, 2 bald/receding, 3 side part
        "hairline": u(-1.25, -0.85),
        "hair_volume": u(0.05, 0.3),
        "eye_sep": u(0.88, 1.12),
        "eye_w": u(0.36, 0.5),
        "eye_h": u(0.12, 0.2),
        "eye_tilt": u(-0.06, 0.06),
        "iris": np.clip(_IRIS_COLOURS[int(rng.integers(len(_IRIS_COLOURS)))] + rng.normal(0, 8, 3), 0, 255).tolist(),
        "brow_y": u(-0.42, -0.28),
        "brow_thick": u(0.05, 0.1) + (0.025 if male else 0.0),
        "brow_arch": u(-0.02, 0.1),
        "brow_len": u(0.45, 0.62),
        "brow_dark": u(0.3, 0.8),
        "nose_len": u(0.5, 0.78),
        "nose_w": u(0.18, 0.32),
        "mouth_y": u(1.0, 1.25),
        "mouth_w": u(0.36, 0.56),
        "lip_t": u(0.05, 0.1),
        "lip": np.clip(np.array([175, 85, 85.0]) + rng.normal(0, 15, 3), 0, 255).tolist(),
        "ear": u(0.22, 0.36),
        "mole": bool(rng.random() < 0.4),
        "mole_xy": [u(-1.0, 1.0), u(-0.3, 1.4)],
        "cheekbone": u(0.0, 1.0) * 0.5 + (0.5 if attrs["high_cheekbones"] else 0.0),
        "expressivity": u(0.8, 1.15),
        "clothes": rng.uniform(30, 220, 3).tolist(),
        "attributes": attrs,
    }
    if p["hair_style"] == 2 and not male:
        p["hair_style"] = 0
    return p


# --------------------------------------------------------------------------------------------
# Drawing
# --------------------------------------------------------------------------------------------
_SHIFT = 4
_ONE = 1 << _SHIFT


@dataclass
class _Canvas:
    img: np.ndarray  # H x W x 3 float32 RGB in [0, 255]
    mat: np.ndarray  # 2x3 face-units -> pixels
    yaw: float  # pseudo-yaw, face units of feature shift

    def px(self, pts: np.ndarray, depth: float = 0.0) -> np.ndarray:
        pts = np.asarray(pts, dtype=np.float64).reshape(-1, 2).copy()
        pts[:, 0] += self.yaw * depth
        out = pts @ self.mat[:, :2].T + self.mat[:, 2]
        return np.round(out * _ONE).astype(np.int32)

    @property
    def scale(self) -> float:
        return float(np.hypot(self.mat[0, 0], self.mat[1, 0]))

    def poly(self, pts, colour, depth: float = 0.0) -> None:
        cv2.fillPoly(self.img, [self.px(pts, depth)], _col(colour), cv2.LINE_AA, _SHIFT)

    def line(self, pts, colour, width: float, depth: float = 0.0, closed: bool = False) -> None:
        t = max(1, int(round(width * self.scale)))
        cv2.polylines(self.img, [self.px(pts, depth)], closed, _col(colour), t, cv2.LINE_AA, _SHIFT)

    def blend_poly(self, pts, colour, alpha: float, depth: float = 0.0) -> None:
        """Alpha-blended polygon (shading, makeup, blush)."""
        if alpha <= 0:
            return
        p = self.px(pts, depth)
        x0, y0 = np.maximum(p.min(axis=0) // _ONE - 2, 0)
        x1, y1 = p.max(axis=0) // _ONE + 3
        h, w = self.img.shape[:2]
        x1, y1 = min(x1, w), min(y1, h)
        if x1 <= x0 or y1 <= y0:
            return
        mask = np.zeros((y1 - y0, x1 - x0), np.float32)
        cv2.fillPoly(mask, [p - np.array([x0, y0]) * _ONE], 1.0, cv2.LINE_AA, _SHIFT)
        mask = mask[..., None] * alpha
        roi = self.img[y0:y1, x0:x1]
        roi[:] = roi * (1 - mask) + np.asarray(colour, np.float32) * mask


def _col(c) -> tuple[float, float, float]:
    return tuple(float(v) for v in c)


@lru_cache(maxsize=256)
def _unit_arc(a0: float, a1: float, n: int) -> tuple[np.ndarray, np.ndarray]:
    t = np.deg2rad(np.linspace(a0, a1, n))
    return np.cos(t), np.sin(t)


def _ell(cx, cy, ax, ay, a0=0.0, a1=360.0, n=28, rot=0.0) -> np.ndarray:
    c0, s0 = _unit_arc(float(a0), float(a1), int(n))
    x, y = ax * c0, ay * s0
    if rot:
        c, s = np.cos(rot), np.sin(rot)
        x, y = c * x - s * y, s * x + c * y
    return np.stack([cx + x, cy + y], axis=1)


@lru_cache(maxsize=64)
def _bezier_basis(n: int) -> np.ndarray:
    t = np.linspace(0, 1, n)[:, None]
    return np.hstack([(1 - t) ** 2, 2 * (1 - t) * t, t**2])


def _quad(p0, p1, p2, n=12) -> np.ndarray:
    """Quadratic Bezier from p0 to p2 with control p1."""
    return _bezier_basis(int(n)) @ np.array([p0, p1, p2], dtype=np.float64)


def _shade(c, f) -> np.ndarray:
    return np.clip(np.asarray(c, float) * f, 0, 255)


def _expression_aus(
    expression: int, intensity: float, expressivity: float, attributes: Mapping[str, bool] | None
) -> dict[str, float]:
    if expression not in _EXPRESSION_AUS:
        raise ValueError(f"expression must be a CK+ code 0-7, got {expression!r}")
    if not 0.0 <= intensity <= 1.0:
        raise ValueError(f"intensity must be in [0, 1], got {intensity}")
    k = intensity * expressivity
    au = {key: _EXPRESSION_AUS[expression].get(key, 0.0) * k for key in _AU_KEYS}
    if attributes:
        if attributes.get("smiling"):
            au["mouth_corner"] = max(au["mouth_corner"], 0.7)
            au["cheek_raise"] = max(au["cheek_raise"], 0.6)
            au["mouth_width"] = max(au["mouth_width"], 0.25)
            au["eye_open"] = min(au["eye_open"], -0.25)
        if attributes.get("mouth_slightly_open"):
            au["mouth_open"] = max(au["mouth_open"], 0.35)
    return au


def _draw_face(
    cv: _Canvas, p: Mapping[str, Any], au: Mapping[str, float], attrs: Mapping[str, bool]
) -> tuple[np.ndarray, np.ndarray]:
    """Draw the face on ``cv``; return the eye centres in face units (left, right; before yaw)."""
    skin = np.asarray(p["skin"], float)
    hair = np.asarray(p["hair"], float)
    male = bool(attrs.get("male"))
    fw, top, chin = p["face_w"], p["face_top"], p["chin_y"] + 0.28 * au["mouth_open"]
    jaw, chin_w = p["jaw_w"], p["chin_w"]
    my = p["mouth_y"] + 0.12 * au["mouth_open"]

    # Neck and shoulders.
    cv.poly([[-0.55, chin - 0.4], [0.55, chin - 0.4], [0.6, chin + 1.5], [-0.6, chin + 1.5]], _shade(skin, 0.85))
    cv.poly(_ell(0, chin + 1.9, 2.6, 1.0, 180, 360), p["clothes"])
    # Long hair behind the head.
    if p["hair_style"] == 1:
        cv.poly([[-fw - 0.25, -0.4], [fw + 0.25, -0.4], [fw + 0.35, chin + 0.2], [-fw - 0.35, chin + 0.2]], hair)
    # Ears.
    for s in (-1, 1):
        cv.poly(_ell(s * (fw - 0.02), 0.25, 0.18, p["ear"], n=16), _shade(skin, 0.92), depth=-0.1 * s)
    # Face outline: crown ellipse + jaw curve.
    crown = _ell(0, 0.2, fw, top + 0.2, 180, 360, n=30)
    right = _quad([fw, 0.2], [fw * 1.02, (0.2 + my) / 2 + 0.2], [jaw, my + 0.1], n=10)
    chin_c = _quad([jaw, my + 0.1], [jaw * 0.9, chin], [chin_w, chin], n=10)
    bottom = np.vstack([right, chin_c, [[-chin_w, chin]], chin_c[::-1] * [-1, 1], right[::-1] * [-1, 1]])
    outline = np.vstack([crown, bottom])
    cv.poly(outline, skin)
    # Cheekbone highlight and cheek raise (smile / disgust bulge).
    cb = p["cheekbone"]
    for s in (-1, 1):
        cy = 0.55 - 0.15 * au["cheek_raise"] - 0.1 * cb
        cv.blend_poly(_ell(s * 0.62, cy, 0.32, 0.2, n=16), _shade(skin, 1.12), 0.25 + 0.25 * cb, depth=0.08)
        if au["cheek_raise"] > 0.05:
            cv.blend_poly(
                _ell(s * 0.6, cy + 0.05, 0.3, 0.18, n=16),
                np.array([215, 120, 110.0]),
                0.35 * au["cheek_raise"],
                depth=0.08,
            )
    if attrs.get("heavy_makeup"):
        for s in (-1, 1):
            cv.blend_poly(_ell(s * 0.65, 0.6, 0.28, 0.16, n=16), np.array([225, 120, 130.0]), 0.35, depth=0.08)
    # Facial hair (below features, drawn before the mouth).
    beard_col = _shade(hair, 0.9)
    if male and not attrs.get("no_beard", True):
        cv.blend_poly(
            np.vstack(
                [
                    [[jaw + 0.05, my - 0.35]],
                    chin_c,
                    [[-chin_w, chin]],
                    chin_c[::-1] * [-1, 1],
                    [[-jaw - 0.05, my - 0.35]],
                    [[0, my + 0.05]],
                ]
            ),
            beard_col,
            0.85,
        )
    if attrs.get("sideburns"):
        for s in (-1, 1):
            cv.poly([[s * (fw - 0.2), -0.1], [s * fw, -0.1], [s * (fw - 0.02), 0.75], [s * (fw - 0.2), 0.7]], beard_col)
    if attrs.get("goatee"):
        cv.poly(_ell(0, chin - 0.18, chin_w + 0.1, 0.28, n=20), beard_col)

    # Nose.
    nl, nw = p["nose_len"], p["nose_w"]
    nose_dark = _shade(skin, 0.72)
    cv.line(_quad([-0.08, 0.05], [-0.12, nl * 0.6], [-nw * 0.5, nl]), nose_dark, 0.035, depth=0.25)
    for s in (-1, 1):
        cv.poly(_ell(s * nw * 0.45, nl + 0.02, nw * 0.22, 0.055, n=12), _shade(skin, 0.45), depth=0.25)
    cv.line(_quad([-nw * 0.7, nl - 0.08], [0, nl + 0.12], [nw * 0.7, nl - 0.08]), nose_dark, 0.03, depth=0.25)
    if au["nose_wrinkle"] > 0.1:
        for k in range(3):
            y = 0.12 + 0.09 * k
            cv.line(
                [[-0.14, y], [0.0, y - 0.03], [0.14, y]],
                _shade(skin, 0.7),
                0.025 * au["nose_wrinkle"] + 0.01,
                depth=0.2,
            )
    # Nasolabial folds deepen with smile / disgust.
    fold = max(au["cheek_raise"], au["upper_lip_raise"])
    if fold > 0.1:
        for s in (-1, 1):
            cv.line(
                _quad(
                    [s * nw * 0.8, nl - 0.05], [s * (nw + 0.3), my - 0.2], [s * (p["mouth_w"] * 0.6 + 0.12), my + 0.15]
                ),
                _shade(skin, 1.0 - 0.3 * fold),
                0.03,
                depth=0.15,
            )

    # Eyes.
    sep, ew, eh = p["eye_sep"], p["eye_w"], p["eye_h"]
    open_f = float(np.clip(1.0 + au["eye_open"], 0.2, 2.2))
    eyes = np.array([[-sep / 2, 0.0], [sep / 2, 0.0]])
    for i, s in enumerate((-1, 1)):
        cx = eyes[i, 0]
        h = eh * open_f
        rot = -s * p["eye_tilt"]
        if attrs.get("heavy_makeup"):
            cv.blend_poly(
                _ell(cx, -0.08, ew * 0.6, 0.16, 180, 360, n=16, rot=rot), np.array([110, 70, 120.0]), 0.5, depth=0.1
            )
        cv.poly(_ell(cx, 0, ew / 2, h / 2, n=24, rot=rot), np.array([245, 245, 240.0]), depth=0.1)
        r = min(eh * 0.55, ew * 0.28)
        iris = _ell(cx, 0, r, min(r, h / 2 * 0.98), n=16)
        cv.poly(iris, p["iris"], depth=0.12)
        cv.poly(_ell(cx, 0, r * 0.45, min(r * 0.45, h / 2 * 0.9), n=12), [15, 12, 12], depth=0.12)
        cv.line(_ell(cx, 0, ew / 2, h / 2, 180, 360, n=16, rot=rot), _shade(skin, 0.35), 0.04, depth=0.1)
        if au["eye_open"] < -0.2:  # squint: lower-lid bulge
            cv.line(_ell(cx, 0.02, ew / 2, h / 2 + 0.04, 20, 160, n=10), _shade(skin, 0.7), 0.025, depth=0.1)
        if au["eye_open"] > 0.3:  # wide eyes: visible upper-lid crease
            cv.line(_ell(cx, -0.02, ew / 2 * 1.05, h / 2 + 0.08, 200, 340, n=10), _shade(skin, 0.7), 0.02, depth=0.1)

    # Brows: inner, middle, outer points per side.
    by, bl, bt = p["brow_y"], p["brow_len"], p["brow_thick"]
    brow_col = (1 - p["brow_dark"]) * hair + p["brow_dark"] * np.array([25, 20, 18.0])
    for i, s in enumerate((-1, 1)):
        cx = eyes[i, 0]
        lift = -0.22 * au["brow_raise"] + 0.16 * au["brow_lower"]
        inner_lift = -0.2 * au["brow_inner"]
        inner_x = cx - s * bl * 0.5 + s * 0.1 * au["brow_lower"]
        outer_x = cx + s * bl * 0.5
        pts = np.array(
            [
                [inner_x, by + lift + inner_lift + 0.06 * au["brow_lower"]],
                [cx + s * 0.05, by + lift - p["brow_arch"] - 0.3 * inner_lift * 0.3],
                [outer_x, by + lift + 0.05 - 0.03 * au["brow_inner"]],
            ]
        )
        cv.line(_quad(pts[0], pts[1], pts[2], n=10), brow_col, bt, depth=0.1)
    if au["brow_lower"] > 0.3:  # glabella furrows
        for s in (-1, 1):
            cv.line(
                [[s * 0.06, by + 0.02], [s * 0.09, by + 0.2]],
                _shade(skin, 0.7),
                0.02 + 0.015 * au["brow_lower"],
                depth=0.15,
            )
    if au["brow_raise"] > 0.35 or au["brow_inner"] > 0.6:  # forehead lines
        k = max(au["brow_raise"], au["brow_inner"] * 0.7)
        for j in range(3):
            y = by - 0.25 - 0.12 * j
            cv.line(
                _quad([-0.45, y + 0.02], [0, y - 0.04], [0.45, y + 0.02]),
                _shade(skin, 1.0 - 0.25 * k),
                0.02,
                depth=0.05,
            )

    # Mouth: corners move (smile / sadness / contempt), the centre line stays at my.
    mw = p["mouth_w"] * (1 + 0.35 * au["mouth_width"] + 0.25 * au["mouth_stretch"] - 0.12 * au["lip_press"])
    lt = p["lip_t"] * (1 - 0.6 * min(au["lip_press"], 1.0))
    corner = 0.2 * au["mouth_corner"]
    opening = 0.32 * au["mouth_open"]
    ulr = 0.1 * au["upper_lip_raise"]
    lc = np.array([-mw, my - corner])
    rc = np.array([mw + 0.05 * au["asym"], my - corner - 0.16 * au["asym"]])

    def through(mid_y: float, n: int = 12) -> np.ndarray:  # curve corner-to-corner through (0, mid_y)
        ctrl = np.array([0.0, 2 * mid_y - (lc[1] + rc[1]) / 2])
        return _quad(lc, ctrl, rc, n)

    top_in, bot_in = my - ulr - 0.25 * opening, my + opening
    top_out, bot_out = top_in - lt * 1.4, bot_in + lt * 1.8
    if opening > 0.02 or ulr > 0.02:
        cv.poly(np.vstack([through(top_in), through(bot_in)[::-1]]), [60, 20, 25], depth=0.12)
        if au["mouth_corner"] > 0.3 or ulr > 0.05 or opening > 0.12:
            teeth_bot = min(bot_in, top_in + 0.06 + 0.5 * (bot_in - top_in))
            cv.poly(np.vstack([through(top_in), through(teeth_bot)[::-1]]), [235, 232, 220], depth=0.12)
    lip_col = np.asarray(p["lip"], float)
    if attrs.get("heavy_makeup"):
        lip_col = np.array([185, 35, 60.0])
    cupid = np.vstack(
        [
            _quad(lc, [lc[0] * 0.5, top_out - 0.05], [0, top_out + 0.015], n=8),
            _quad([0, top_out + 0.015], [rc[0] * 0.5, top_out - 0.05], rc, n=8),
        ]
    )
    cv.poly(np.vstack([cupid, through(top_in)[::-1]]), lip_col, depth=0.12)
    cv.poly(np.vstack([through(bot_in), through(bot_out)[::-1]]), _shade(lip_col, 1.08), depth=0.12)
    if opening <= 0.02:
        cv.line(through(my), _shade(lip_col, 0.5), 0.025, depth=0.12)
    lower_mid = bot_out
    upper_mid = top_out
    lx, rx, lcy, rcy = lc[0], rc[0], lc[1], rc[1]
    if au["lip_press"] > 0.3:  # chin raiser bulge
        cv.line(_quad([-0.2, lower_mid + 0.2], [0, lower_mid + 0.27], [0.2, lower_mid + 0.2]), _shade(skin, 0.75), 0.02)
    if attrs.get("mustache"):
        cv.poly(
            np.vstack(
                [
                    _quad([lx - 0.05, lcy + 0.05], [0, upper_mid - 0.3], [rx + 0.05, rcy + 0.05], n=12),
                    _quad([rx, rcy - 0.02], [0, upper_mid - 0.02], [lx, lcy - 0.02], n=12),
                ]
            ),
            beard_col,
            depth=0.15,
        )

    # Hair front.
    hl = p["hairline"]
    vol = p["hair_volume"]
    if p["hair_style"] != 2:
        cap = np.vstack(
            [
                _ell(0, 0.2, fw + vol, top + 0.2 + vol, 180, 360, n=30),
                [[fw + vol * 0.5, 0.1]],
                [[fw - 0.05, 0.1]],
                _quad([fw - 0.05, -0.2], [fw * 0.6, hl - 0.1], [0.0 if p["hair_style"] == 3 else fw * 0.2, hl]),
                _quad([-fw * 0.2, hl], [-fw * 0.6, hl - 0.05], [-fw + 0.05, -0.2]),
                [[-fw + 0.05, 0.1]],
                [[-fw - vol * 0.5, 0.1]],
            ]
        )
        cv.poly(cap, hair)
    else:  # receding: only the sides
        for s in (-1, 1):
            cv.poly(
                [
                    [s * (fw + vol * 0.3), -0.6],
                    [s * (fw - 0.12), -0.6],
                    [s * (fw - 0.12), 0.1],
                    [s * (fw + 0.05), 0.15],
                ],
                hair,
            )
    if attrs.get("bangs"):
        cv.poly(
            np.vstack(
                [
                    _ell(0, 0.2, fw + vol, top + 0.2 + vol, 200, 340, n=16),
                    _quad([fw * 0.85, by - 0.25], [0, by - 0.05], [-fw * 0.85, by - 0.25]),
                ]
            ),
            hair,
        )
    if p["mole"]:
        mx, myy = p["mole_xy"]
        cv.poly(_ell(mx * fw * 0.8, myy, 0.045, 0.045, n=10), _shade(skin, 0.45), depth=0.1)
    if attrs.get("eyeglasses"):
        frame = np.array([30, 30, 35.0])
        for i in range(2):
            cv.line(_ell(eyes[i, 0], 0.02, ew * 0.72, 0.24, n=20), frame, 0.045, depth=0.15, closed=True)
        cv.line([[eyes[0, 0] + ew * 0.72, -0.02], [eyes[1, 0] - ew * 0.72, -0.02]], frame, 0.04, depth=0.15)
        for s in (-1, 1):
            cv.line([[s * (sep / 2 + ew * 0.72), 0.0], [s * (fw - 0.02), -0.05]], frame, 0.035, depth=0.05)
    return eyes, np.array([0.12, 0.12])


def _face_transform(center_px, scale_px: float, roll: float) -> np.ndarray:
    c, s = np.cos(roll), np.sin(roll)
    return np.array(
        [[scale_px * c, -scale_px * s, center_px[0]], [scale_px * s, scale_px * c, center_px[1]]], dtype=np.float64
    )


def _background(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    base = rng.uniform(70, 200) + rng.normal(0, 12, 3)  # low-saturation studio wall
    tint = rng.uniform(-35, 35) + rng.normal(0, 8, 3)
    ys = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
    xs = np.linspace(0, 1, w, dtype=np.float32)[None, :, None]
    a = rng.uniform(0, 2 * np.pi)
    g = np.cos(a) * xs + np.sin(a) * ys
    return np.clip(base + tint * g, 0, 255).astype(np.float32)


def _photometric(img: np.ndarray, rng: np.random.Generator, strength: float = 1.0) -> np.ndarray:
    """Illumination gradient + brightness, blur and sensor noise; returns uint8."""
    h, w = img.shape[:2]
    ys = np.linspace(-0.5, 0.5, h, dtype=np.float32)[:, None, None]
    xs = np.linspace(-0.5, 0.5, w, dtype=np.float32)[None, :, None]
    a = rng.uniform(0, 2 * np.pi)
    grad = rng.uniform(0.0, 0.7) * strength
    gain = rng.uniform(0.8, 1.15) ** strength
    img = img * (gain * (1.0 + grad * (np.cos(a) * xs + np.sin(a) * ys)))
    colour_cast = 1.0 + rng.normal(0, 0.04 * strength, 3).astype(np.float32)
    img = img * colour_cast
    sigma = rng.uniform(0.0, 0.8) * strength * max(h, w) / 96.0
    if sigma > 0.25:
        img = cv2.GaussianBlur(img, (0, 0), sigmaX=sigma)
    img = img + rng.normal(0, rng.uniform(1.0, 6.0) * strength, img.shape).astype(np.float32)
    return np.clip(img + 0.5, 0, 255).astype(np.uint8)


def _render_frame(
    p: Mapping[str, Any],
    expression: int,
    intensity: float,
    rng: np.random.Generator,
    size: int,
    mat: np.ndarray,
    yaw: float,
    attributes: Mapping[str, bool] | None,
    nuisance: bool,
    background: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Render on a size x size canvas with the face transform ``mat``; return (uint8 RGB, eye px)."""
    attrs = dict(p["attributes"])
    explicit = attributes is not None
    if explicit:
        unknown = set(attributes) - set(ATTRIBUTES)
        if unknown:
            raise ValueError(f"unknown attributes {sorted(unknown)}; known: {ATTRIBUTES}")
        attrs.update(attributes)
    else:
        for a in STATE_ATTRIBUTES:
            attrs[a] = False
    au = _expression_aus(int(expression), float(intensity), float(p["expressivity"]), attrs)
    img = background.copy() if background is not None else _background(size, size, rng)
    cv = _Canvas(img, mat, yaw)
    eyes, _ = _draw_face(cv, p, au, attrs)
    eyes_px = cv.px(eyes, depth=0.1).astype(np.float64) / _ONE
    out = (
        _photometric(cv.img, rng, 1.0 if nuisance else 0.0)
        if nuisance
        else np.clip(cv.img + 0.5, 0, 255).astype(np.uint8)
    )
    return out, eyes_px


def render_face(
    identity_params: Mapping[str, Any],
    expression: int = 0,
    intensity: float = 1.0,
    rng: np.random.Generator | None = None,
    size: int = 64,
    attributes: Mapping[str, bool] | None = None,
    nuisance: bool = True,
    margin: float = DEFAULT_MARGIN,
) -> np.ndarray:
    """Render one aligned face crop (``size`` x ``size`` x 3, uint8 RGB).

    ``identity_params`` comes from :func:`sample_identity`; ``expression`` is a CK+ code 0-7
    (:data:`EXPRESSIONS`) at ``intensity`` in [0, 1]. ``attributes`` (names in :data:`ATTRIBUTES`)
    override the identity's own; without it the identity's static attributes are drawn and the
    state attributes (smiling, mouth_slightly_open) are off. With ``nuisance`` the crop gets small
    residual misalignment (roll/scale/shift/yaw as left by a detector), illumination, blur and noise.
    The eyes sit on :func:`data_prep.align.eye_template` (same framing as the MTCNN crops).
    """
    rng = rng if rng is not None else np.random.default_rng(0)
    (lx, ly), (rx, ry) = eye_template(size, margin)
    centre = np.array([(lx + rx) / 2, (ly + ry) / 2])
    scale = (rx - lx) / float(identity_params["eye_sep"])
    roll, yaw = 0.0, 0.0
    if nuisance:
        roll = np.deg2rad(rng.normal(0, 3.0))
        scale *= rng.uniform(0.94, 1.06)
        centre = centre + rng.normal(0, 0.02 * size, 2)
        yaw = rng.normal(0, 0.12)
    mat = _face_transform(centre, scale, roll)
    img, _ = _render_frame(identity_params, expression, intensity, rng, size, mat, yaw, attributes, nuisance)
    return img


# --------------------------------------------------------------------------------------------
# Dataset generation in the CK+ layout
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SynthConfig:
    """Parameters of :func:`generate` (defaults: the embedded default dataset)."""

    num_identities: int = 80
    sequences_per_identity: int = 6
    frames_per_sequence: int = 8
    image_size: int = 64  # aligned crop size (px)
    raw_size: int | None = None  # raw frame size; default 2 x image_size
    seed: int = 0
    margin: float = DEFAULT_MARGIN
    align_all_frames: bool = False  # False: crops only for first + last 3 frames (the protocol)
    unlabelled_every: int = 0  # >0: every n-th subject gets one extra sequence without Emotion file

    def __post_init__(self) -> None:
        if self.num_identities < 2:
            raise ValueError(f"num_identities must be >= 2, got {self.num_identities}")
        if not 1 <= self.sequences_per_identity <= 7:
            raise ValueError(
                f"sequences_per_identity must be in 1..7 (one per non-neutral expression), "
                f"got {self.sequences_per_identity}"
            )
        if self.frames_per_sequence < 4:
            raise ValueError(f"frames_per_sequence must be >= 4 (first + last 3), got {self.frames_per_sequence}")
        if self.image_size < 16:
            raise ValueError(f"image_size must be >= 16, got {self.image_size}")


def subject_name(index: int) -> str:
    """CK+-style subject folder name for a 0-based identity index (S001, S002, ...)."""
    return f"S{index + 1:03d}"


def identity_params(seed: int, index: int) -> dict[str, Any]:
    """The deterministic identity ``index`` of the dataset with ``seed``."""
    return sample_identity(seeds.IDENTITY.rng(seed, index))


def subject_expressions(seed: int, index: int, n: int) -> list[int]:
    """The ``n`` distinct non-neutral expressions (CK+ codes) of identity ``index``'s sequences."""
    rng = seeds.EXPRESSIONS.rng(seed, index)
    return [int(e) for e in rng.permutation(np.arange(1, 8))[:n]]


def _intensity_curve(n: int, peak: float) -> np.ndarray:
    t = np.linspace(0.0, 1.0, n)
    s = t * t * (3 - 2 * t)  # smoothstep: neutral -> peak, last frames near the apex
    return peak * np.power(s, 0.7)


def _write_png(path: Path, rgb: np.ndarray, compression: int = 1) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, buf = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, compression])
    if not ok:
        raise OSError(f"PNG encoding failed for {path}")
    path.write_bytes(buf.tobytes())


def _generate_subject(out: str, cfg: SynthConfig, index: int) -> list[dict[str, Any]]:
    cv2.setNumThreads(1)
    out_p = Path(out)
    p = identity_params(cfg.seed, index)
    subj = subject_name(index)
    raw_size = cfg.raw_size or 2 * cfg.image_size
    exprs = subject_expressions(cfg.seed, index, cfg.sequences_per_identity)
    seqs: list[tuple[int, int | None]] = [(j + 1, e) for j, e in enumerate(exprs)]
    if cfg.unlabelled_every and index % cfg.unlabelled_every == 0:
        seqs.append((len(seqs) + 1, None))
    rows: list[dict[str, Any]] = []
    for seq_no, expr in seqs:
        rng = seeds.SEQUENCE.rng(cfg.seed, index, seq_no)
        draw_expr = expr if expr is not None else int(rng.integers(1, 8))
        peak = rng.uniform(0.85, 1.0)
        # Sequence-level pose (the subject sits still, small per-frame drift).
        base_scale = raw_size * rng.uniform(0.15, 0.19)
        base_centre = np.array([raw_size / 2, raw_size * 0.42]) + rng.normal(0, 0.04 * raw_size, 2)
        base_roll = rng.normal(0, np.deg2rad(5))
        base_yaw = rng.normal(0, 0.2)
        seq_id = f"{seq_no:03d}"
        n = cfg.frames_per_sequence
        protocol = {0, n - 3, n - 2, n - 1}
        for f, inten in enumerate(_intensity_curve(n, peak)):
            centre = base_centre + rng.normal(0, 0.01 * raw_size, 2)
            mat = _face_transform(
                centre, base_scale * rng.uniform(0.97, 1.03), base_roll + rng.normal(0, np.deg2rad(1.5))
            )
            yaw = base_yaw + rng.normal(0, 0.05)
            img, eyes = _render_frame(p, draw_expr, float(inten), rng, raw_size, mat, yaw, None, True)
            name = f"{subj}_{seq_id}_{f + 1:08d}.png"
            _write_png(out_p / "cohn-kanade-images" / subj / seq_id / name, img)
            if expr is None or not (cfg.align_all_frames or f in protocol):
                continue
            noisy = eyes + rng.normal(0, 0.03 * base_scale, eyes.shape)  # detector-like landmark error
            crop = align_face(img, noisy[0], noisy[1], cfg.image_size, cfg.margin)
            rel = Path("aligned") / subj / seq_id / name
            _write_png(out_p / rel, crop)
            rows.append(
                {
                    "path": rel.as_posix(),
                    "subject": subj,
                    "sequence": seq_id,
                    "frame": f + 1,
                    "role": "neutral" if f == 0 else ("peak" if f >= n - 3 else "onset"),
                    "expression": 0 if f == 0 else expr,
                    "raw_path": (Path("cohn-kanade-images") / subj / seq_id / name).as_posix(),
                    "intensity": round(float(inten), 4),
                }
            )
        if expr is not None:
            emo = out_p / "Emotion" / subj / seq_id / f"{subj}_{seq_id}_{n:08d}_emotion.txt"
            emo.parent.mkdir(parents=True, exist_ok=True)
            emo.write_text(f"   {float(expr):.7e}\n")
    return rows


def generate(
    out: str | os.PathLike, config: SynthConfig | None = None, workers: int | None = None, progress: bool = True
) -> dict[str, Any]:
    """Write the synthfaces dataset under ``out`` (CK+ layout + ``aligned/`` + ``identities.csv``).

    Returns a summary dict (counts, seconds, config) that is also written to
    ``out/synthfaces.json``. ``workers`` processes (default: ``min(4, os.cpu_count())``) share
    the identities; the bytes written do not depend on ``workers``.
    """
    import pandas as pd
    from tqdm.auto import tqdm

    cfg = config or SynthConfig()
    out_p = Path(out)
    out_p.mkdir(parents=True, exist_ok=True)
    workers = workers if workers is not None else min(4, os.cpu_count() or 1)
    t0 = time.perf_counter()
    results: dict[int, list[dict[str, Any]]] = {}
    ids = range(cfg.num_identities)
    bar = tqdm(total=cfg.num_identities, desc="synthfaces", unit="id", disable=not progress)
    if workers <= 1:
        for i in ids:
            results[i] = _generate_subject(str(out_p), cfg, i)
            bar.update()
    else:
        with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as ex:
            futs = {ex.submit(_generate_subject, str(out_p), cfg, i): i for i in ids}
            from concurrent.futures import as_completed

            for fut in as_completed(futs):
                results[futs[fut]] = fut.result()
                bar.update()
    bar.close()
    rows = [r for i in ids for r in results[i]]
    ident_rows = []
    for i in ids:
        p = identity_params(cfg.seed, i)
        row = {"subject": subject_name(i)}
        row.update({f"attr_{a}": int(v) for a, v in p["attributes"].items()})
        row.update({k: v for k, v in p.items() if isinstance(v, (int, float)) and not isinstance(v, bool)})
        ident_rows.append(row)
    pd.DataFrame(ident_rows).to_csv(out_p / "identities.csv", index=False)
    pd.DataFrame(rows).to_csv(out_p / "aligned_frames.csv", index=False)
    seconds = time.perf_counter() - t0
    n_raw = sum(1 for _ in (out_p / "cohn-kanade-images").rglob("*.png"))
    summary = {
        "dataset": "synthfaces",
        "config": cfg.__dict__,
        "identities": cfg.num_identities,
        "raw_frames": n_raw,
        "aligned_images": len(rows),
        "seconds": round(seconds, 2),
        "workers": workers,
    }
    (out_p / "synthfaces.json").write_text(json.dumps(summary, indent=2))
    return summary


# --------------------------------------------------------------------------------------------
# Contact sheet
# --------------------------------------------------------------------------------------------
def contact_sheet(
    path: str | os.PathLike = "docs/images/synthfaces_contact_sheet.png",
    num_identities: int = 6,
    seed: int = 0,
    size: int = 80,
    nuisance: bool = True,
) -> Path:
    """Write a PNG grid: rows = identities (of the dataset with ``seed``), columns = the 8 expressions at peak."""
    cols = list(EXPRESSIONS)
    label_h = 18
    sheet = np.full((label_h + num_identities * size, len(cols) * size, 3), 255, np.uint8)
    for c in cols:
        cv2.putText(
            sheet, EXPRESSIONS[c][:8], (c * size + 3, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (0, 0, 0), 1, cv2.LINE_AA
        )
    for r in range(num_identities):
        p = identity_params(seed, r)
        for c in cols:
            rng = seeds.CONTACT_SHEET.rng(seed, r, c)
            img = render_face(p, c, 0.0 if c == 0 else 1.0, rng, size, nuisance=nuisance)
            sheet[label_h + r * size : label_h + (r + 1) * size, c * size : (c + 1) * size] = img
    path = Path(path)
    _write_png(path, sheet, compression=9)
    return path
