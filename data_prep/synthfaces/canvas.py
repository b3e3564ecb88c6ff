"""A float RGB canvas that draws shapes given in face units, and the curve primitives the face is made of."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

#: OpenCV draws with sub-pixel precision: coordinates are fixed-point with this many fractional bits.
SHIFT = 4
ONE = 1 << SHIFT


@dataclass
class Canvas:
    """``image`` (H x W x 3 float32 RGB in [0, 255]) with the face-units -> pixels map ``matrix`` (2 x 3).

    ``yaw`` fakes a head turn: a point at ``depth`` (face units towards the camera) shifts by
    ``yaw * depth`` horizontally before the map, so the nose moves more than the ears.
    """

    image: np.ndarray
    matrix: np.ndarray
    yaw: float

    def to_pixels(self, points, depth: float = 0.0) -> np.ndarray:
        """Fixed-point (``SHIFT`` fractional bits) int32 pixel coordinates of face-unit ``points``."""
        points = np.asarray(points, dtype=np.float64).reshape(-1, 2).copy()
        points[:, 0] += self.yaw * depth
        out = points @ self.matrix[:, :2].T + self.matrix[:, 2]
        return np.round(out * ONE).astype(np.int32)

    @property
    def scale(self) -> float:
        """Pixels per face unit."""
        return float(np.hypot(self.matrix[0, 0], self.matrix[1, 0]))

    def fill(self, points, colour, depth: float = 0.0) -> None:
        """Filled, anti-aliased polygon."""
        cv2.fillPoly(self.image, [self.to_pixels(points, depth)], _colour(colour), cv2.LINE_AA, SHIFT)

    def stroke(self, points, colour, width: float, depth: float = 0.0, closed: bool = False) -> None:
        """Anti-aliased polyline ``width`` face units thick (at least 1 px)."""
        thickness = max(1, int(round(width * self.scale)))
        cv2.polylines(
            self.image, [self.to_pixels(points, depth)], closed, _colour(colour), thickness, cv2.LINE_AA, SHIFT
        )

    def blend(self, points, colour, alpha: float, depth: float = 0.0) -> None:
        """Alpha-blended polygon (shading, makeup, blush)."""
        if alpha <= 0:
            return
        pixels = self.to_pixels(points, depth)
        x0, y0 = np.maximum(pixels.min(axis=0) // ONE - 2, 0)
        x1, y1 = pixels.max(axis=0) // ONE + 3
        height, width = self.image.shape[:2]
        x1, y1 = min(x1, width), min(y1, height)
        if x1 <= x0 or y1 <= y0:
            return
        mask = np.zeros((y1 - y0, x1 - x0), np.float32)
        cv2.fillPoly(mask, [pixels - np.array([x0, y0]) * ONE], 1.0, cv2.LINE_AA, SHIFT)
        mask = mask[..., None] * alpha
        roi = self.image[y0:y1, x0:x1]
        roi[:] = roi * (1 - mask) + np.asarray(colour, np.float32) * mask


def _colour(c) -> tuple[float, float, float]:
    return tuple(float(v) for v in c)


@lru_cache(maxsize=256)
def _unit_arc(start: float, end: float, n: int) -> tuple[np.ndarray, np.ndarray]:
    t = np.deg2rad(np.linspace(start, end, n))
    return np.cos(t), np.sin(t)


def ellipse(cx, cy, ax, ay, start=0.0, end=360.0, n=28, rotation=0.0) -> np.ndarray:
    """``n`` points of the ellipse arc centred at (cx, cy) with half-axes (ax, ay), from ``start`` to
    ``end`` degrees (0 = +x, 90 = down), rotated by ``rotation`` radians."""
    cos0, sin0 = _unit_arc(float(start), float(end), int(n))
    x, y = ax * cos0, ay * sin0
    if rotation:
        c, s = np.cos(rotation), np.sin(rotation)
        x, y = c * x - s * y, s * x + c * y
    return np.stack([cx + x, cy + y], axis=1)


@lru_cache(maxsize=64)
def _bezier_basis(n: int) -> np.ndarray:
    t = np.linspace(0, 1, n)[:, None]
    return np.hstack([(1 - t) ** 2, 2 * (1 - t) * t, t**2])


def bezier(p0, p1, p2, n=12) -> np.ndarray:
    """``n`` points of the quadratic Bezier curve from ``p0`` to ``p2`` with control point ``p1``."""
    return _bezier_basis(int(n)) @ np.array([p0, p1, p2], dtype=np.float64)


def shade(colour, factor) -> np.ndarray:
    """``colour`` scaled by ``factor`` (darker below 1), clipped to [0, 255]."""
    return np.clip(np.asarray(colour, float) * factor, 0, 255)
