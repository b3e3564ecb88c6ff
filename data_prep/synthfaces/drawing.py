"""Draw one face on a :class:`~data_prep.synthfaces.canvas.Canvas`, back to front.

:func:`draw_face` paints, in this order: neck and shoulders, long hair behind the head, ears, the
face outline, cheeks, facial hair, nose, eyes, brows, mouth, the hair in front, a mole and
eyeglasses. Each part reads the identity's colours, the :class:`FaceGeometry` and the action units
(:mod:`data_prep.synthfaces.expressions`). The order and every constant are part of the dataset's
bytes (tests/test_synthfaces_golden.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .canvas import Canvas, bezier, ellipse, shade
from .geometry import FaceGeometry
from .identity import LONG_HAIR, RECEDING_HAIR, SIDE_PART

SIDES = (-1, 1)  # viewer's left, right
MIRROR = np.array([-1, 1])  # multiply points by this to reflect them across the face's axis
WHITE_OF_EYE = np.array([245, 245, 240.0])
PUPIL = [15, 12, 12]
MOUTH_INSIDE = [60, 20, 25]
TEETH = [235, 232, 220]
BLUSH = np.array([215, 120, 110.0])
MAKEUP_BLUSH = np.array([225, 120, 130.0])
EYESHADOW = np.array([110, 70, 120.0])
LIPSTICK = np.array([185, 35, 60.0])  # the lips of heavy makeup on faces without ``wearing_lipstick``
WEARING_LIPSTICK = np.array([150, 15, 45.0])  # ``wearing_lipstick``: darker than LIPSTICK ...
LIPSTICK_FULLNESS = 1.4  # ... on fuller lips, so it shows after grayscale + histogram equalisation at 20 px
BROW_DARK = np.array([25, 20, 18.0])
GLASSES_FRAME = np.array([30, 30, 35.0])


def draw_face(
    canvas: Canvas, identity: Mapping[str, Any], au: Mapping[str, float], attrs: Mapping[str, bool]
) -> np.ndarray:
    """Draw the face of ``identity`` with action units ``au`` and attributes ``attrs``; return the eye
    centres in face units (left, right; before yaw)."""
    g = FaceGeometry.of(identity, au)
    skin = np.asarray(identity["skin"], float)
    hair = np.asarray(identity["hair"], float)
    male = bool(attrs.get("male"))
    _neck_and_shoulders(canvas, g, skin, identity["clothes"])
    if identity["hair_style"] == LONG_HAIR:
        _long_hair_behind(canvas, g, hair)
    _ears(canvas, g, skin, identity["ear"])
    canvas.fill(g.outline(), skin)
    _cheeks(canvas, skin, identity["cheekbone"], au, bool(attrs.get("heavy_makeup")))
    beard_colour = shade(hair, 0.9)
    _facial_hair(canvas, g, beard_colour, male, attrs)
    _nose(canvas, g, skin, au)
    _eyes(canvas, g, skin, identity["iris"], au, bool(attrs.get("heavy_makeup")))
    _brows(canvas, g, skin, hair, identity["brow_dark"], identity["brow_arch"], au)
    _mouth(canvas, g, skin, identity["lip"], identity["lip_t"], au, beard_colour, attrs)
    _hair_front(canvas, g, hair, identity["hair_style"], bool(attrs.get("bangs")))
    if identity["mole"]:
        mole_x, mole_y = identity["mole_xy"]
        canvas.fill(ellipse(mole_x * g.half_width * 0.8, mole_y, 0.045, 0.045, n=10), shade(skin, 0.45), depth=0.1)
    if attrs.get("eyeglasses"):
        _eyeglasses(canvas, g)
    return g.eye_centres


def _neck_and_shoulders(canvas: Canvas, g: FaceGeometry, skin: np.ndarray, clothes) -> None:
    chin = g.chin_y
    canvas.fill([[-0.55, chin - 0.4], [0.55, chin - 0.4], [0.6, chin + 1.5], [-0.6, chin + 1.5]], shade(skin, 0.85))
    canvas.fill(ellipse(0, chin + 1.9, 2.6, 1.0, 180, 360), clothes)


def _long_hair_behind(canvas: Canvas, g: FaceGeometry, hair: np.ndarray) -> None:
    w, chin = g.half_width, g.chin_y
    canvas.fill([[-w - 0.25, -0.4], [w + 0.25, -0.4], [w + 0.35, chin + 0.2], [-w - 0.35, chin + 0.2]], hair)


def _ears(canvas: Canvas, g: FaceGeometry, skin: np.ndarray, ear_half_height: float) -> None:
    for s in SIDES:
        canvas.fill(
            ellipse(s * (g.half_width - 0.02), 0.25, 0.18, ear_half_height, n=16), shade(skin, 0.92), depth=-0.1 * s
        )


def _cheeks(canvas: Canvas, skin: np.ndarray, cheekbone: float, au: Mapping[str, float], makeup: bool) -> None:
    """Cheekbone highlight, the cheek raise of a smile or disgust, and makeup blush."""
    for s in SIDES:
        cy = 0.55 - 0.15 * au["cheek_raise"] - 0.1 * cheekbone
        canvas.blend(ellipse(s * 0.62, cy, 0.32, 0.2, n=16), shade(skin, 1.12), 0.25 + 0.25 * cheekbone, depth=0.08)
        if au["cheek_raise"] > 0.05:
            canvas.blend(ellipse(s * 0.6, cy + 0.05, 0.3, 0.18, n=16), BLUSH, 0.35 * au["cheek_raise"], depth=0.08)
    if makeup:
        for s in SIDES:
            canvas.blend(ellipse(s * 0.65, 0.6, 0.28, 0.16, n=16), MAKEUP_BLUSH, 0.35, depth=0.08)


def _facial_hair(canvas: Canvas, g: FaceGeometry, colour: np.ndarray, male: bool, attrs: Mapping[str, bool]) -> None:
    """Beard (male faces only), sideburns and goatee; drawn below the features."""
    jaw, chin, mouth_y = g.jaw_half_width, g.chin_y, g.mouth_y
    if male and not attrs.get("no_beard", True):
        chin_curve = g.chin_curve()
        beard = np.vstack(
            [
                [[jaw + 0.05, mouth_y - 0.35]],
                chin_curve,
                [[-g.chin_half_width, chin]],
                chin_curve[::-1] * MIRROR,
                [[-jaw - 0.05, mouth_y - 0.35]],
                [[0, mouth_y + 0.05]],
            ]
        )
        canvas.blend(beard, colour, 0.85)
    if attrs.get("sideburns"):
        w = g.half_width
        for s in SIDES:
            canvas.fill([[s * (w - 0.2), -0.1], [s * w, -0.1], [s * (w - 0.02), 0.75], [s * (w - 0.2), 0.7]], colour)
    if attrs.get("goatee"):
        canvas.fill(ellipse(0, chin - 0.18, g.chin_half_width + 0.1, 0.28, n=20), colour)


def _nose(canvas: Canvas, g: FaceGeometry, skin: np.ndarray, au: Mapping[str, float]) -> None:
    """Bridge, nostrils and tip; wrinkles (disgust); nasolabial folds that deepen with a smile or disgust."""
    length, width = g.nose_length, g.nose_width
    dark = shade(skin, 0.72)
    canvas.stroke(bezier([-0.08, 0.05], [-0.12, length * 0.6], [-width * 0.5, length]), dark, 0.035, depth=0.25)
    for s in SIDES:
        canvas.fill(ellipse(s * width * 0.45, length + 0.02, width * 0.22, 0.055, n=12), shade(skin, 0.45), depth=0.25)
    canvas.stroke(
        bezier([-width * 0.7, length - 0.08], [0, length + 0.12], [width * 0.7, length - 0.08]), dark, 0.03, depth=0.25
    )
    if au["nose_wrinkle"] > 0.1:
        for k in range(3):
            y = 0.12 + 0.09 * k
            canvas.stroke(
                [[-0.14, y], [0.0, y - 0.03], [0.14, y]], shade(skin, 0.7), 0.025 * au["nose_wrinkle"] + 0.01, depth=0.2
            )
    fold = max(au["cheek_raise"], au["upper_lip_raise"])
    if fold > 0.1:
        mouth_y = g.mouth_y
        for s in SIDES:
            canvas.stroke(
                bezier(
                    [s * width * 0.8, length - 0.05],
                    [s * (width + 0.3), mouth_y - 0.2],
                    [s * (g.mouth_half_width * 0.6 + 0.12), mouth_y + 0.15],
                ),
                shade(skin, 1.0 - 0.3 * fold),
                0.03,
                depth=0.15,
            )


def _eyes(
    canvas: Canvas, g: FaceGeometry, skin: np.ndarray, iris_colour, au: Mapping[str, float], makeup: bool
) -> None:
    """Eyeshadow, white, iris, pupil and upper lid; a lower-lid bulge when squinting, a crease when wide."""
    half_w = g.eye_width / 2
    for cx, s in zip(g.eye_centres[:, 0], SIDES):
        height = g.eye_height * g.eye_opening
        rotation = -s * g.eye_tilt
        if makeup:
            canvas.blend(
                ellipse(cx, -0.08, g.eye_width * 0.6, 0.16, 180, 360, n=16, rotation=rotation),
                EYESHADOW,
                0.5,
                depth=0.1,
            )
        canvas.fill(ellipse(cx, 0, half_w, height / 2, n=24, rotation=rotation), WHITE_OF_EYE, depth=0.1)
        radius = min(g.eye_height * 0.55, g.eye_width * 0.28)
        canvas.fill(ellipse(cx, 0, radius, min(radius, height / 2 * 0.98), n=16), iris_colour, depth=0.12)
        pupil = ellipse(cx, 0, radius * 0.45, min(radius * 0.45, height / 2 * 0.9), n=12)
        canvas.fill(pupil, PUPIL, depth=0.12)
        upper_lid = ellipse(cx, 0, half_w, height / 2, 180, 360, n=16, rotation=rotation)
        canvas.stroke(upper_lid, shade(skin, 0.35), 0.04, depth=0.1)
        if au["eye_open"] < -0.2:  # squint: lower-lid bulge
            canvas.stroke(
                ellipse(cx, 0.02, half_w, height / 2 + 0.04, 20, 160, n=10), shade(skin, 0.7), 0.025, depth=0.1
            )
        if au["eye_open"] > 0.3:  # wide eyes: visible upper-lid crease
            crease = ellipse(cx, -0.02, half_w * 1.05, height / 2 + 0.08, 200, 340, n=10)
            canvas.stroke(crease, shade(skin, 0.7), 0.02, depth=0.1)


def _brows(
    canvas: Canvas,
    g: FaceGeometry,
    skin: np.ndarray,
    hair: np.ndarray,
    darkness: float,
    arch: float,
    au: Mapping[str, float],
) -> None:
    """Each brow as a curve through its inner, middle and outer points; glabella furrows (anger) and
    forehead lines (surprise, fear)."""
    brow_y, length = g.brow_y, g.brow_length
    colour = (1 - darkness) * hair + darkness * BROW_DARK
    for cx, s in zip(g.eye_centres[:, 0], SIDES):
        lift = -0.22 * au["brow_raise"] + 0.16 * au["brow_lower"]
        inner_lift = -0.2 * au["brow_inner"]
        inner_x = cx - s * length * 0.5 + s * 0.1 * au["brow_lower"]
        outer_x = cx + s * length * 0.5
        points = np.array(
            [
                [inner_x, brow_y + lift + inner_lift + 0.06 * au["brow_lower"]],
                [cx + s * 0.05, brow_y + lift - arch - 0.3 * inner_lift * 0.3],
                [outer_x, brow_y + lift + 0.05 - 0.03 * au["brow_inner"]],
            ]
        )
        canvas.stroke(bezier(points[0], points[1], points[2], n=10), colour, g.brow_thickness, depth=0.1)
    if au["brow_lower"] > 0.3:  # glabella furrows
        for s in SIDES:
            canvas.stroke(
                [[s * 0.06, brow_y + 0.02], [s * 0.09, brow_y + 0.2]],
                shade(skin, 0.7),
                0.02 + 0.015 * au["brow_lower"],
                depth=0.15,
            )
    if au["brow_raise"] > 0.35 or au["brow_inner"] > 0.6:  # forehead lines
        k = max(au["brow_raise"], au["brow_inner"] * 0.7)
        for j in range(3):
            y = brow_y - 0.25 - 0.12 * j
            canvas.stroke(
                bezier([-0.45, y + 0.02], [0, y - 0.04], [0.45, y + 0.02]),
                shade(skin, 1.0 - 0.25 * k),
                0.02,
                depth=0.05,
            )


def _mouth(
    canvas: Canvas,
    g: FaceGeometry,
    skin: np.ndarray,
    lip_colour,
    lip_thickness: float,
    au: Mapping[str, float],
    beard_colour: np.ndarray,
    attrs: Mapping[str, bool],
) -> None:
    """Lips, the open mouth and teeth, a chin-raiser bulge and a mustache.

    The corners move (smile, sadness, contempt's one-sided raise); the lips' centre line stays at
    ``g.mouth_y`` and the lower lip drops with the jaw.
    """
    mouth_y = g.mouth_y
    half_width = g.mouth_half_width * (
        1 + 0.35 * au["mouth_width"] + 0.25 * au["mouth_stretch"] - 0.12 * au["lip_press"]
    )
    lipstick = _lipstick(attrs)
    thickness = lip_thickness * (1 - 0.6 * min(au["lip_press"], 1.0))
    if lipstick == "wearing_lipstick":
        thickness *= LIPSTICK_FULLNESS
    corner_lift = 0.2 * au["mouth_corner"]
    opening = 0.32 * au["mouth_open"]
    upper_lip_raise = 0.1 * au["upper_lip_raise"]
    left = np.array([-half_width, mouth_y - corner_lift])
    right = np.array([half_width + 0.05 * au["asym"], mouth_y - corner_lift - 0.16 * au["asym"]])

    def through(mid_y: float, n: int = 12) -> np.ndarray:
        """Curve from corner to corner through (0, mid_y)."""
        control = np.array([0.0, 2 * mid_y - (left[1] + right[1]) / 2])
        return bezier(left, control, right, n)

    top_inner, bottom_inner = mouth_y - upper_lip_raise - 0.25 * opening, mouth_y + opening
    top_outer, bottom_outer = top_inner - thickness * 1.4, bottom_inner + thickness * 1.8
    if opening > 0.02 or upper_lip_raise > 0.02:
        canvas.fill(np.vstack([through(top_inner), through(bottom_inner)[::-1]]), MOUTH_INSIDE, depth=0.12)
        if au["mouth_corner"] > 0.3 or upper_lip_raise > 0.05 or opening > 0.12:
            teeth_bottom = min(bottom_inner, top_inner + 0.06 + 0.5 * (bottom_inner - top_inner))
            canvas.fill(np.vstack([through(top_inner), through(teeth_bottom)[::-1]]), TEETH, depth=0.12)
    colour = {"wearing_lipstick": WEARING_LIPSTICK, "heavy_makeup": LIPSTICK}.get(
        lipstick, np.asarray(lip_colour, float)
    )
    cupid_bow = np.vstack(
        [
            bezier(left, [left[0] * 0.5, top_outer - 0.05], [0, top_outer + 0.015], n=8),
            bezier([0, top_outer + 0.015], [right[0] * 0.5, top_outer - 0.05], right, n=8),
        ]
    )
    canvas.fill(np.vstack([cupid_bow, through(top_inner)[::-1]]), colour, depth=0.12)
    canvas.fill(np.vstack([through(bottom_inner), through(bottom_outer)[::-1]]), shade(colour, 1.08), depth=0.12)
    if opening <= 0.02:
        canvas.stroke(through(mouth_y), shade(colour, 0.5), 0.025, depth=0.12)
    if au["lip_press"] > 0.3:  # chin raiser bulge
        bulge = bezier([-0.2, bottom_outer + 0.2], [0, bottom_outer + 0.27], [0.2, bottom_outer + 0.2])
        canvas.stroke(bulge, shade(skin, 0.75), 0.02)
    if attrs.get("mustache"):
        (lx, ly), (rx, ry) = left, right
        mustache = np.vstack(
            [
                bezier([lx - 0.05, ly + 0.05], [0, top_outer - 0.3], [rx + 0.05, ry + 0.05], n=12),
                bezier([rx, ry - 0.02], [0, top_outer - 0.02], [lx, ly - 0.02], n=12),
            ]
        )
        canvas.fill(mustache, beard_colour, depth=0.15)


def _lipstick(attrs: Mapping[str, bool]) -> str | None:
    """Which lipstick the lips wear: ``"wearing_lipstick"`` (darker, fuller lips) when the attributes carry
    ``wearing_lipstick`` and it is set (the attribute-task faces; heavy makeup then leaves the lips alone);
    on faces whose attributes do not carry it (identities drawn without it, as in the CK+-layout dataset),
    ``"heavy_makeup"`` (the makeup's red lips, as they have always been drawn) when heavy makeup is set;
    else None."""
    if "wearing_lipstick" in attrs:
        return "wearing_lipstick" if attrs["wearing_lipstick"] else None
    return "heavy_makeup" if attrs.get("heavy_makeup") else None


def _hair_front(canvas: Canvas, g: FaceGeometry, hair: np.ndarray, style: int, bangs: bool) -> None:
    """The hair cap down to the hairline (or only the sides when receding), and bangs."""
    w, volume, hairline = g.half_width, g.hair_volume, g.hairline_y
    crown_height = g.crown_height
    if style != RECEDING_HAIR:
        cap = np.vstack(
            [
                ellipse(0, 0.2, w + volume, crown_height + 0.2 + volume, 180, 360, n=30),
                [[w + volume * 0.5, 0.1]],
                [[w - 0.05, 0.1]],
                bezier([w - 0.05, -0.2], [w * 0.6, hairline - 0.1], [0.0 if style == SIDE_PART else w * 0.2, hairline]),
                bezier([-w * 0.2, hairline], [-w * 0.6, hairline - 0.05], [-w + 0.05, -0.2]),
                [[-w + 0.05, 0.1]],
                [[-w - volume * 0.5, 0.1]],
            ]
        )
        canvas.fill(cap, hair)
    else:
        for s in SIDES:
            canvas.fill(
                [[s * (w + volume * 0.3), -0.6], [s * (w - 0.12), -0.6], [s * (w - 0.12), 0.1], [s * (w + 0.05), 0.15]],
                hair,
            )
    if bangs:
        fringe = np.vstack(
            [
                ellipse(0, 0.2, w + volume, crown_height + 0.2 + volume, 200, 340, n=16),
                bezier([w * 0.85, g.brow_y - 0.25], [0, g.brow_y - 0.05], [-w * 0.85, g.brow_y - 0.25]),
            ]
        )
        canvas.fill(fringe, hair)


def _eyeglasses(canvas: Canvas, g: FaceGeometry) -> None:
    """Two rims, the bridge and the temples."""
    eyes, rim = g.eye_centres, g.eye_width * 0.72
    for i in range(2):
        canvas.stroke(ellipse(eyes[i, 0], 0.02, rim, 0.24, n=20), GLASSES_FRAME, 0.045, depth=0.15, closed=True)
    canvas.stroke([[eyes[0, 0] + rim, -0.02], [eyes[1, 0] - rim, -0.02]], GLASSES_FRAME, 0.04, depth=0.15)
    for s in SIDES:
        temple = [[s * (g.eye_separation / 2 + rim), 0.0], [s * (g.half_width - 0.02), -0.05]]
        canvas.stroke(temple, GLASSES_FRAME, 0.035, depth=0.05)
