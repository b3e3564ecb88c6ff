"""prepare_oulu orchestration with a stand-in detector (the real MTCNN path is in test_data_mtcnn.py)."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pandas as pd

from data_prep.prepare import prepare_oulu, read_manifest
from data_prep.raw_trees import OULU_FOLDERS, oulu_sequence


class FakeDetector:
    """Returns one face with fixed eyes for every image that is not all black."""

    def _one(self, img):
        if img.max() == 0:
            return []
        h, w = img.shape[:2]
        return [
            {
                "box": [w // 4, h // 4, w // 2, h // 2],
                "confidence": 0.99,
                "keypoints": {"left_eye": [int(w * 0.4), int(h * 0.4)], "right_eye": [int(w * 0.6), int(h * 0.4)]},
            }
        ]

    def detect_faces(self, images, **kw):
        if isinstance(images, list):
            return [self._one(i) for i in images]
        return self._one(images)


def _oulu_tree(tmp_path):
    rng = np.random.default_rng(0)
    for s in ("P001", "P002", "P003", "P004"):
        for f in OULU_FOLDERS:
            frames = [rng.integers(1, 255, (60, 50, 3), dtype=np.uint8) for _ in range(5)]
            if s == "P004" and f == "Fear":
                frames[4][:] = 0  # "no face"
            oulu_sequence(tmp_path / "raw", s, f, frames)


def test_prepare_oulu_with_stand_in_detector(tmp_path):
    _oulu_tree(tmp_path)
    out = tmp_path / "out"
    summary = prepare_oulu(tmp_path / "raw", out, image_size=40, num_folds=2, progress=False, detector=FakeDetector())
    m = read_manifest(out)
    assert len(m) == 4 * 6 * 4 - 1
    assert summary["rejects_by_reason"] == {"no_face": 1}
    assert summary["expression_classes"] == ["anger", "disgust", "fear", "happy", "sadness", "surprise"]
    assert set(m.loc[m["role"] == "neutral", "expression"]) == {-1}
    assert m["path"].str.startswith("aligned/VL_Strong/P001/").any()
    assert cv2.imread(str(out / m["path"].iloc[0])).shape == (40, 40, 3)
    pairs = pd.read_csv(out / "pairs.csv")
    assert len(pairs) > 0 and set(pairs["kind"]) == {"same_required", "diff_required", "same_other", "diff_other"}
    assert json.loads((out / "summary.json").read_text())["pairs"]["total"] == len(pairs)
    assert summary["settings"]["alignment"] == "box"
    rej = pd.read_csv(out / "rejects.csv")
    assert rej["source"].tolist() == ["VL_Strong/P004/Fear/004.jpeg"]


def test_prepare_oulu_template_alignment_option(tmp_path):
    _oulu_tree(tmp_path)
    out = tmp_path / "out"
    summary = prepare_oulu(
        tmp_path / "raw", out, image_size=40, num_folds=2, progress=False, detector=FakeDetector(), alignment="template"
    )
    assert summary["settings"]["alignment"] == "template" and "eye keypoints" in summary["settings"]["alignment_detail"]
    m = read_manifest(out)
    assert len(m) == 4 * 6 * 4 - 1
    assert cv2.imread(str(out / m["path"].iloc[0])).shape == (40, 40, 3)
