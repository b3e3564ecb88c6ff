"""The batched MTCNN fast path of data_prep.mtcnn_align (its speed: benchmarks/mtcnn.py) finds the
same faces as ``MTCNN.detect_faces``."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("mtcnn")
skdata = pytest.importorskip("skimage.data")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.mtcnn import make_photos  # noqa: E402
from data_prep.mtcnn_align import AlignConfig, _detect_faces, detect_batch, load_detector  # noqa: E402

KW = dict(threshold_pnet=0.6, threshold_rnet=0.7, threshold_onet=0.3)


@pytest.fixture(scope="module")
def detector():
    return load_detector()


def _same(a: list[dict], b: list[dict]):
    assert len(a) == len(b)
    for fa, fb in zip(sorted(a, key=lambda f: f["box"]), sorted(b, key=lambda f: f["box"])):
        assert fa["box"] == fb["box"]
        assert abs(fa["confidence"] - fb["confidence"]) < 1e-5
        for k in fa["keypoints"]:
            assert np.allclose(fa["keypoints"][k], fb["keypoints"][k], atol=1)


def test_fast_path_matches_detect_faces(detector):
    photos = make_photos(5, seed=1)
    blank = np.full(photos[0].shape, 128, np.uint8)
    batch = photos[:4] + [blank]
    fast = _detect_faces(detector, batch, KW)
    reference = detector.detect_faces(batch, **KW)
    assert len(fast) == len(batch) and [bool(f) for f in fast] == [True] * 4 + [False]
    for a, b in zip(fast, reference):
        _same(a, b)
    _same(_detect_faces(detector, [photos[4]], KW)[0], detector.detect_faces(photos[4], **KW))
    assert _detect_faces(detector, [blank], KW) == [[]]
    assert _detect_faces(detector, [blank, blank], KW) == [[], []]


def test_detect_batch_equals_one_image_at_a_time(detector):
    photos = make_photos(3, seed=2) + [skdata.astronaut()]  # two shapes: batched by shape
    batched = detect_batch(detector, photos, AlignConfig())
    for image, faces in zip(photos, batched):
        _same(faces, detector.detect_faces(image, **KW))
