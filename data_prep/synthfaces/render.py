"""Render faces to images: background, face placement, the drawing, and per-image nuisance."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import cv2
import numpy as np

from ..align import DEFAULT_MARGIN, eye_template
from .attributes import ATTRIBUTES, STATE_ATTRIBUTES
from .canvas import ONE, Canvas
from .drawing import draw_face
from .expressions import action_units


def face_transform(center_px, scale_px: float, roll: float) -> np.ndarray:
    """The 2 x 3 face-units -> pixels map: rotate by ``roll`` radians, scale, move the origin to ``center_px``."""
    c, s = np.cos(roll), np.sin(roll)
    return np.array(
        [[scale_px * c, -scale_px * s, center_px[0]], [scale_px * s, scale_px * c, center_px[1]]], dtype=np.float64
    )


def background(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """A low-saturation studio wall with a linear colour gradient (float32 RGB)."""
    base = rng.uniform(70, 200) + rng.normal(0, 12, 3)
    tint = rng.uniform(-35, 35) + rng.normal(0, 8, 3)
    ys = np.linspace(0, 1, height, dtype=np.float32)[:, None, None]
    xs = np.linspace(0, 1, width, dtype=np.float32)[None, :, None]
    angle = rng.uniform(0, 2 * np.pi)
    gradient = np.cos(angle) * xs + np.sin(angle) * ys
    return np.clip(base + tint * gradient, 0, 255).astype(np.float32)


def photometric(image: np.ndarray, rng: np.random.Generator, strength: float = 1.0) -> np.ndarray:
    """Illumination gradient + brightness, colour cast, blur and sensor noise; returns uint8."""
    height, width = image.shape[:2]
    ys = np.linspace(-0.5, 0.5, height, dtype=np.float32)[:, None, None]
    xs = np.linspace(-0.5, 0.5, width, dtype=np.float32)[None, :, None]
    angle = rng.uniform(0, 2 * np.pi)
    gradient = rng.uniform(0.0, 0.7) * strength
    gain = rng.uniform(0.8, 1.15) ** strength
    image = image * (gain * (1.0 + gradient * (np.cos(angle) * xs + np.sin(angle) * ys)))
    colour_cast = 1.0 + rng.normal(0, 0.04 * strength, 3).astype(np.float32)
    image = image * colour_cast
    sigma = rng.uniform(0.0, 0.8) * strength * max(height, width) / 96.0
    if sigma > 0.25:
        image = cv2.GaussianBlur(image, (0, 0), sigmaX=sigma)
    image = image + rng.normal(0, rng.uniform(1.0, 6.0) * strength, image.shape).astype(np.float32)
    return np.clip(image + 0.5, 0, 255).astype(np.uint8)


def render_frame(
    identity: Mapping[str, Any],
    expression: int,
    intensity: float,
    rng: np.random.Generator,
    size: int,
    matrix: np.ndarray,
    yaw: float,
    attributes: Mapping[str, bool] | None,
    nuisance: bool,
    backdrop: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``identity`` on a ``size`` x ``size`` wall (or a copy of ``backdrop``) with the face transform
    ``matrix``; return (uint8 RGB, eye centres in pixels). ``attributes`` override the identity's own;
    without them the state attributes are off. ``nuisance`` adds :func:`photometric`."""
    attrs = dict(identity["attributes"])
    if attributes is not None:
        unknown = set(attributes) - set(ATTRIBUTES)
        if unknown:
            raise ValueError(f"unknown attributes {sorted(unknown)}; known: {ATTRIBUTES}")
        attrs.update(attributes)
    else:
        for a in STATE_ATTRIBUTES:
            attrs[a] = False
    au = action_units(int(expression), float(intensity), float(identity["expressivity"]), attrs)
    image = backdrop.copy() if backdrop is not None else background(size, size, rng)
    canvas = Canvas(image, matrix, yaw)
    eyes = draw_face(canvas, identity, au, attrs)
    eyes_px = canvas.to_pixels(eyes, depth=0.1).astype(np.float64) / ONE
    out = photometric(canvas.image, rng, 1.0) if nuisance else np.clip(canvas.image + 0.5, 0, 255).astype(np.uint8)
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

    ``identity_params`` comes from :func:`data_prep.synthfaces.sample_identity`; ``expression`` is a
    CK+ code 0-7 (:data:`data_prep.synthfaces.EXPRESSIONS`) at ``intensity`` in [0, 1]. ``attributes``
    (names in :data:`data_prep.synthfaces.ATTRIBUTES`) override the identity's own; without it the
    identity's static attributes are drawn and the state attributes (smiling, mouth_slightly_open) are
    off. With ``nuisance`` the crop gets small residual misalignment (roll/scale/shift/yaw as left by a
    detector), illumination, blur and noise. The eyes sit on :func:`data_prep.align.eye_template`
    (same framing as the MTCNN crops).
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
    matrix = face_transform(centre, scale, roll)
    image, _ = render_frame(identity_params, expression, intensity, rng, size, matrix, yaw, attributes, nuisance)
    return image
