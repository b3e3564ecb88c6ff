"""Identities: the stable geometry and appearance of one synthetic person, drawn from a seed.

Units: the nominal inter-eye distance is 1; the eye line is y = 0 and y grows downwards.
Identity ``i`` of the dataset with ``seed`` draws from the stream ``data_prep.seeds.IDENTITY`` and its
expressions from ``EXPRESSIONS``, both keyed by ``i``, so neither depends on generation order.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import seeds
from .attributes import sample_attributes

HAIR_COLOURS = np.array(
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
IRIS_COLOURS = np.array(
    [[60, 40, 25], [95, 65, 35], [70, 110, 150], [80, 120, 80], [40, 30, 25], [110, 110, 120]], float
)
#: Skin tone is a 1-D family from pale (tone 0) to dark (tone 1), with a small hue jitter.
PALE_SKIN, DARK_SKIN = np.array([250, 218, 196.0]), np.array([92, 58, 40.0])
#: ``hair_style`` codes.
SHORT_HAIR, LONG_HAIR, RECEDING_HAIR, SIDE_PART = 0, 1, 2, 3


def sample_identity(rng: np.random.Generator, lipstick_rng: np.random.Generator | None = None) -> dict[str, Any]:
    """Draw the stable parameters of one identity (geometry, appearance and attributes).

    The returned dict is JSON-serialisable (floats, ints, lists, a dict of attribute booleans); its
    numeric keys are the columns of ``identities.csv``. The draw order is part of the dataset: a
    new parameter goes at the end, or every identity changes. ``lipstick_rng`` adds ``wearing_lipstick``
    to the attributes (:func:`~data_prep.synthfaces.attributes.sample_attributes`); ``rng``'s draws, and so
    every other parameter, are the same with or without it.
    """
    attrs = sample_attributes(rng, lipstick_rng)
    male = attrs["male"]
    u = rng.uniform
    tone = u(0.0, 1.0)
    if attrs["pale_skin"]:
        tone = u(0.0, 0.08)
    skin = (1 - tone) * PALE_SKIN + tone * DARK_SKIN + rng.normal(0, 8, 3)
    hair = HAIR_COLOURS[int(rng.integers(len(HAIR_COLOURS)))] + rng.normal(0, 10, 3)
    p: dict[str, Any] = {
        "face_w": u(1.02, 1.3) + (0.06 if male else 0.0),  # half-width at the cheekbones
        "face_top": u(1.55, 1.85),  # crown height above the eye line
        "chin_y": u(1.55, 1.95),  # chin below the eye line
        "jaw_w": u(0.55, 0.95) + (0.12 if male else 0.0),  # half-width of the jaw at the mouth
        "chin_w": u(0.18, 0.42),  # half-width of the chin
        "skin": np.clip(skin, 0, 255).tolist(),
        "hair": np.clip(hair, 0, 255).tolist(),
        "hair_style": int(rng.integers(4)),  # SHORT_HAIR, LONG_HAIR, RECEDING_HAIR, SIDE_PART
        "hairline": u(-1.25, -0.85),
        "hair_volume": u(0.05, 0.3),
        "eye_sep": u(0.88, 1.12),  # distance between the eye centres
        "eye_w": u(0.36, 0.5),
        "eye_h": u(0.12, 0.2),
        "eye_tilt": u(-0.06, 0.06),  # radians
        "iris": np.clip(IRIS_COLOURS[int(rng.integers(len(IRIS_COLOURS)))] + rng.normal(0, 8, 3), 0, 255).tolist(),
        "brow_y": u(-0.42, -0.28),
        "brow_thick": u(0.05, 0.1) + (0.025 if male else 0.0),
        "brow_arch": u(-0.02, 0.1),
        "brow_len": u(0.45, 0.62),
        "brow_dark": u(0.3, 0.8),  # mix of the hair colour towards near-black
        "nose_len": u(0.5, 0.78),
        "nose_w": u(0.18, 0.32),
        "mouth_y": u(1.0, 1.25),
        "mouth_w": u(0.36, 0.56),  # half-width of the mouth
        "lip_t": u(0.05, 0.1),  # lip thickness
        "lip": np.clip(np.array([175, 85, 85.0]) + rng.normal(0, 15, 3), 0, 255).tolist(),
        "ear": u(0.22, 0.36),  # ear half-height
        "mole": bool(rng.random() < 0.4),
        "mole_xy": [u(-1.0, 1.0), u(-0.3, 1.4)],
        "cheekbone": u(0.0, 1.0) * 0.5 + (0.5 if attrs["high_cheekbones"] else 0.0),
        "expressivity": u(0.8, 1.15),  # scales every expression's action units
        "clothes": rng.uniform(30, 220, 3).tolist(),
        "attributes": attrs,
    }
    if p["hair_style"] == RECEDING_HAIR and not male:
        p["hair_style"] = SHORT_HAIR
    return p


def identity_params(seed: int, index: int) -> dict[str, Any]:
    """The deterministic identity ``index`` of the dataset with ``seed``."""
    return sample_identity(seeds.IDENTITY.rng(seed, index))


def subject_expressions(seed: int, index: int, n: int) -> list[int]:
    """The ``n`` distinct non-neutral expressions (CK+ codes) of identity ``index``'s sequences."""
    rng = seeds.EXPRESSIONS.rng(seed, index)
    return [int(e) for e in rng.permutation(np.arange(1, 8))[:n]]
