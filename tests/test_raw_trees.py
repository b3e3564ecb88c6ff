"""data_prep.raw_trees: the writers of small raw trees put files where CK+, Oulu-CASIA and CASIA-WebFace do."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from data_prep.raw_trees import ckplus_photo_tree, ckplus_sequence, identity_folder, oulu_sequence, write_image

RGB = np.zeros((6, 8, 3), np.uint8)
RGB[..., 0] = 200  # red


def _files(root):
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def test_ckplus_sequence_layout_and_label(tmp_path):
    ckplus_sequence(tmp_path, "S010", "001", [RGB] * 3, 5)
    ckplus_sequence(tmp_path, "S010", "009", [RGB] * 2, None)
    assert _files(tmp_path) == [
        "Emotion/S010/001/S010_001_00000003_emotion.txt",
        "cohn-kanade-images/S010/001/S010_001_00000001.png",
        "cohn-kanade-images/S010/001/S010_001_00000002.png",
        "cohn-kanade-images/S010/001/S010_001_00000003.png",
        "cohn-kanade-images/S010/009/S010_009_00000001.png",
        "cohn-kanade-images/S010/009/S010_009_00000002.png",
    ]
    assert (tmp_path / "Emotion/S010/001/S010_001_00000003_emotion.txt").read_text() == "   5.0000000e+00\n"
    bgr = cv2.imread(str(tmp_path / "cohn-kanade-images/S010/001/S010_001_00000001.png"))
    assert bgr.shape == (6, 8, 3) and (bgr[..., 2] == 200).all() and (bgr[..., :2] == 0).all()


def test_oulu_identity_and_photo_tree_layouts(tmp_path):
    oulu_sequence(tmp_path / "oulu", "P001", "Anger", [RGB] * 2)
    oulu_sequence(tmp_path / "oulu", "P001", "Fear", [RGB], spectrum="NI", illumination="Dark")
    assert _files(tmp_path / "oulu") == [
        "NI/Dark/P001/Fear/000.jpeg",
        "VL/Strong/P001/Anger/000.jpeg",
        "VL/Strong/P001/Anger/001.jpeg",
    ]
    identity_folder(tmp_path / "webface", "0000100", [RGB] * 2, ".jpg", (cv2.IMWRITE_JPEG_QUALITY, 95))
    assert _files(tmp_path / "webface") == ["0000100/001.jpg", "0000100/002.jpg"]
    assert ckplus_photo_tree(tmp_path / "ck", [RGB, RGB[:, ::-1].copy()], sequences=2, frames=3) == 6
    assert (tmp_path / "ck/Emotion/S101/001/S101_001_00000003_emotion.txt").read_text() == "   2.0000000e+00\n"


def test_write_image_channels_bytes_and_failure(tmp_path):
    write_image(tmp_path / "g.png", RGB[..., 0])
    write_image(tmp_path / "a.png", np.dstack([RGB, np.full(RGB.shape[:2], 255, np.uint8)]))
    write_image(tmp_path / "bad.png", b"\x89PNG corrupt")
    assert cv2.imread(str(tmp_path / "g.png"), cv2.IMREAD_UNCHANGED).shape == (6, 8)
    assert cv2.imread(str(tmp_path / "a.png"), cv2.IMREAD_UNCHANGED).shape == (6, 8, 4)
    assert (tmp_path / "bad.png").read_bytes() == b"\x89PNG corrupt"
    with pytest.raises((OSError, cv2.error)):
        write_image(tmp_path / "x.unknown-format", RGB)
