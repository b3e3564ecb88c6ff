"""Where the parts of one face sit for one expression, in face units.

Face units: the nominal inter-eye distance is 1, the eye line is y = 0 and y grows downwards,
x = 0 is the face's vertical axis (a "side" ``s`` is -1 for the viewer's left, +1 for the right).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .canvas import bezier, ellipse


@dataclass(frozen=True)
class FaceGeometry:
    """An identity's proportions (:func:`data_prep.synthfaces.sample_identity`) with the jaw drop and eye
    opening of the current action units applied."""

    half_width: float  # at the cheekbones
    crown_height: float  # top of the skull above the eye line
    chin_y: float  # lowered by a jaw drop
    jaw_half_width: float  # at the mouth
    chin_half_width: float
    mouth_y: float  # the lips' centre line, lowered by a jaw drop
    mouth_half_width: float  # at rest
    eye_separation: float
    eye_width: float
    eye_height: float  # at rest
    eye_opening: float  # factor on eye_height (< 1 squint, > 1 wide)
    eye_tilt: float  # radians
    brow_y: float
    brow_length: float
    brow_thickness: float
    nose_length: float
    nose_width: float
    hairline_y: float
    hair_volume: float

    @classmethod
    def of(cls, identity: Mapping[str, Any], au: Mapping[str, float]) -> FaceGeometry:
        """The geometry of ``identity`` under the action units ``au``."""
        return cls(
            half_width=identity["face_w"],
            crown_height=identity["face_top"],
            chin_y=identity["chin_y"] + 0.28 * au["mouth_open"],
            jaw_half_width=identity["jaw_w"],
            chin_half_width=identity["chin_w"],
            mouth_y=identity["mouth_y"] + 0.12 * au["mouth_open"],
            mouth_half_width=identity["mouth_w"],
            eye_separation=identity["eye_sep"],
            eye_width=identity["eye_w"],
            eye_height=identity["eye_h"],
            eye_opening=float(np.clip(1.0 + au["eye_open"], 0.2, 2.2)),
            eye_tilt=identity["eye_tilt"],
            brow_y=identity["brow_y"],
            brow_length=identity["brow_len"],
            brow_thickness=identity["brow_thick"],
            nose_length=identity["nose_len"],
            nose_width=identity["nose_w"],
            hairline_y=identity["hairline"],
            hair_volume=identity["hair_volume"],
        )

    @property
    def eye_centres(self) -> np.ndarray:
        """(left, right) eye centres, shape (2, 2)."""
        return np.array([[-self.eye_separation / 2, 0.0], [self.eye_separation / 2, 0.0]])

    def cheek_curve(self) -> np.ndarray:
        """Right side of the face from the cheekbone down to the jaw corner below the mouth."""
        w, m = self.half_width, self.mouth_y
        return bezier([w, 0.2], [w * 1.02, (0.2 + m) / 2 + 0.2], [self.jaw_half_width, m + 0.1], n=10)

    def chin_curve(self) -> np.ndarray:
        """Right jaw corner to the right end of the chin."""
        jaw = self.jaw_half_width
        return bezier([jaw, self.mouth_y + 0.1], [jaw * 0.9, self.chin_y], [self.chin_half_width, self.chin_y], n=10)

    def outline(self) -> np.ndarray:
        """Closed face outline: crown ellipse, right cheek and jaw, chin, left jaw and cheek."""
        crown = ellipse(0, 0.2, self.half_width, self.crown_height + 0.2, 180, 360, n=30)
        cheek, chin = self.cheek_curve(), self.chin_curve()
        mirror = [-1, 1]
        bottom = np.vstack(
            [cheek, chin, [[-self.chin_half_width, self.chin_y]], chin[::-1] * mirror, cheek[::-1] * mirror]
        )
        return np.vstack([crown, bottom])
