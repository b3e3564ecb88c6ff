"""Alignment modes (data_prep.align): the authors' box crop geometry, the registry, resume safety (no MTCNN)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from data_prep.align import ALIGNMENTS, DEFAULT_ALIGNMENT, box_crop_region, box_interpolation, crop_box, get_alignment
from data_prep.mtcnn_align import AlignConfig, AlignSettingsError, align_files, process_detections


def _ramp(h=200, w=240):
    """Channel 0 = column index, channel 1 = row index: a crop shows which source pixels it holds."""
    yy, xx = np.mgrid[0:h, 0:w]
    return np.dstack([xx, yy, np.full_like(xx, 128)]).astype(np.uint8)


def test_box_region_is_box_plus_half_margin_each_side():
    assert box_crop_region([50, 40, 60, 80], (200, 240, 3)) == (28, 18, 132, 142)  # default margin 44
    assert box_crop_region([50, 40, 60, 80], (200, 240), margin=0) == (50, 40, 110, 120)
    assert box_crop_region([50, 40, 60, 80], (200, 240), margin=45) == (27, 17, 132, 142)  # truncated, as facenet


@pytest.mark.parametrize(
    "box, region",
    [
        ([10, 5, 30, 40], (0, 0, 62, 67)),  # top-left corner
        ([200, 150, 35, 45], (178, 128, 240, 200)),  # bottom-right corner
        ([-4, 60, 20, 20], (0, 38, 38, 102)),  # box itself outside the image
    ],
)
def test_box_region_clipped_at_border(box, region):
    assert box_crop_region(box, (200, 240, 3)) == region


def test_box_crop_size_content_and_no_padding():
    img = _ramp()
    for box in ([50, 40, 60, 80], [10, 5, 30, 40], [200, 150, 35, 45], [0, 0, 240, 200]):
        crop, (x0, y0, x1, y1) = crop_box(img, box)
        assert crop.shape == (182, 182, 3) and crop.dtype == np.uint8
        ref = cv2.resize(img[y0:y1, x0:x1], (182, 182), interpolation=box_interpolation(y1 - y0, x1 - x0, 182))
        np.testing.assert_array_equal(crop, ref)
        # The crop spans exactly the clipped region: first/last columns and rows are its edges (no mirrored pixels).
        c = crop.astype(int)
        assert abs(c[:, 0, 0].mean() - x0) <= 1 and abs(c[:, -1, 0].mean() - (x1 - 1)) <= 1
        assert abs(c[0, :, 1].mean() - y0) <= 1 and abs(c[-1, :, 1].mean() - (y1 - 1)) <= 1
    crop, _ = crop_box(img, [50, 40, 60, 80], size=64)
    assert crop.shape == (64, 64, 3)
    with pytest.raises(ValueError, match="no pixels"):
        box_crop_region([300, 10, 20, 20], (200, 240), margin=0)


def test_box_interpolation_smooths_like_facenet_bilinear():
    assert box_interpolation(300, 260, 182) == cv2.INTER_AREA  # shrinking: antialiased
    assert box_interpolation(150, 130, 182) == cv2.INTER_LINEAR  # enlarging: bilinear
    img = np.zeros((400, 400, 3), np.uint8)
    img[:, ::2] = 255  # 1-px stripes alias without smoothing
    crop, _ = crop_box(img, [22, 22, 356, 356], margin=44)
    assert abs(float(crop.mean()) - 127.5) < 3 and crop.std() < 20


def test_registry_is_the_single_home():
    assert DEFAULT_ALIGNMENT == "box" and set(ALIGNMENTS) == {"box", "template"}
    assert AlignConfig().alignment == "box"
    with pytest.raises(ValueError, match="alignment must be one of"):
        get_alignment("eyes")
    with pytest.raises(ValueError, match="alignment must be one of"):
        AlignConfig(alignment="eyes")
    assert "44 source px (22 per side)" in ALIGNMENTS["box"].describe(182, 44.0)


def test_policy_default_box_and_template_option():
    img = _ramp()
    face = {
        "box": [200, 150, 35, 45],
        "confidence": 0.99,
        "keypoints": {"left_eye": [225, 165], "right_eye": [210, 166]},
    }
    st, info = process_detections(img, [face], AlignConfig())
    assert st == "ok" and info["region"] == (178, 128, 240, 200) and info["crop"].shape == (182, 182, 3)
    st, info = process_detections(img, [face], AlignConfig(alignment="template", image_size=64))
    assert st == "ok" and info["region"] is None and info["crop"].shape == (64, 64, 3)
    no_kp = {"box": face["box"], "confidence": 0.99}
    assert process_detections(img, [no_kp], AlignConfig())[0] == "ok"
    assert process_detections(img, [no_kp], AlignConfig(alignment="template"))[1]["reason"] == "alignment_failed"


class _OneFace:
    def detect_faces(self, images, **kw):
        def one(im):
            return [
                {
                    "box": [10, 10, 20, 20],
                    "confidence": 0.99,  # noqa: E731
                    "keypoints": {"left_eye": [15, 15], "right_eye": [25, 15]},
                }
            ]

        return [one(i) for i in images] if isinstance(images, list) else one(images)


def test_resume_refuses_other_alignment_settings(tmp_path):
    src = tmp_path / "a.png"
    cv2.imwrite(str(src), _ramp(60, 50))
    items = [(str(src), "a.png")]
    out = tmp_path / "out"
    assert align_files(items, out, AlignConfig(image_size=32), detector=_OneFace(), progress=False)["aligned"] == 1
    assert align_files(items, out, AlignConfig(image_size=32), detector=_OneFace(), progress=False)["skipped"] == 1
    for other in (
        AlignConfig(image_size=32, alignment="template"),
        AlignConfig(image_size=40),
        AlignConfig(image_size=32, margin=20),
    ):
        with pytest.raises(AlignSettingsError, match="other alignment settings"):
            align_files(items, out, other, detector=_OneFace(), progress=False)
    # A log written before the mode was recorded holds template crops.
    (out / "align_settings.json").unlink()
    with pytest.raises(AlignSettingsError, match="alignment='template', now 'box'"):
        align_files(items, out, AlignConfig(image_size=32), detector=_OneFace(), progress=False)
    (out / "align_settings.json").unlink(missing_ok=True)
    st = align_files(items, out, AlignConfig(image_size=32, alignment="template"), detector=_OneFace(), progress=False)
    assert st["skipped"] == 1
