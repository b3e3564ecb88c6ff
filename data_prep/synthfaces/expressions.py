"""The 8 CK+ expression classes as FACS-like action units (deformations in face units)."""

from __future__ import annotations

from collections.abc import Mapping

from ..labels import CKPLUS_EXPRESSIONS

#: CK+ emotion codes (Emotion/*_emotion.txt) -> names.
EXPRESSIONS: dict[int, str] = dict(CKPLUS_EXPRESSIONS)
EXPRESSION_CODES: dict[str, int] = {v: k for k, v in EXPRESSIONS.items()}

#: Action units the drawing understands: brow_raise (whole brow up), brow_inner (inner ends up:
#: sadness/fear), brow_lower (brows down and together: anger), eye_open (+ wider, - squint),
#: cheek_raise, mouth_corner (+ up), mouth_open (jaw drop), mouth_width (+ wider), upper_lip_raise,
#: lip_press, nose_wrinkle, asym (one-sided corner raise), mouth_stretch (horizontal, fear).
ACTION_UNITS: tuple[str, ...] = (
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
#: Each expression's action units at intensity 1.
EXPRESSION_ACTION_UNITS: dict[int, dict[str, float]] = {
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


def action_units(
    expression: int, intensity: float, expressivity: float, attributes: Mapping[str, bool] | None
) -> dict[str, float]:
    """Every action unit's amount for ``expression`` (CK+ code) at ``intensity`` in [0, 1].

    The expression's units scale with ``intensity * expressivity`` (the identity's own range); the
    state attributes ``smiling`` and ``mouth_slightly_open`` set a floor on the units they show.
    """
    if expression not in EXPRESSION_ACTION_UNITS:
        raise ValueError(f"expression must be a CK+ code 0-7, got {expression!r}")
    if not 0.0 <= intensity <= 1.0:
        raise ValueError(f"intensity must be in [0, 1], got {intensity}")
    k = intensity * expressivity
    au = {key: EXPRESSION_ACTION_UNITS[expression].get(key, 0.0) * k for key in ACTION_UNITS}
    if attributes:
        if attributes.get("smiling"):
            au["mouth_corner"] = max(au["mouth_corner"], 0.7)
            au["cheek_raise"] = max(au["cheek_raise"], 0.6)
            au["mouth_width"] = max(au["mouth_width"], 0.25)
            au["eye_open"] = min(au["eye_open"], -0.25)
        if attributes.get("mouth_slightly_open"):
            au["mouth_open"] = max(au["mouth_open"], 0.35)
    return au
