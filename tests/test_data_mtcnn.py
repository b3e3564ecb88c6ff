"""MTCNN alignment on real photos (skimage) and `dynamic-mtl prepare ckplus` end to end."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pandas as pd
import pytest

pytest.importorskip("mtcnn")
skdata = pytest.importorskip("skimage.data")

from data_prep.align import box_interpolation, eye_template  # noqa: E402
from data_prep.mtcnn_align import AlignConfig, ImageReadError, detect_batch, load_detector, load_rgb, process_detections  # noqa: E402
from data_prep.raw_trees import ckplus_sequence, photo_faces, write_image  # noqa: E402


@pytest.fixture(scope="module")
def detector():
    return load_detector()


def test_astronaut_default_is_authors_box_crop(detector):
    img = skdata.astronaut()
    cfg = AlignConfig()
    assert (cfg.alignment, cfg.image_size, cfg.margin) == ("box", 182, 44)
    faces = detect_batch(detector, [img], cfg)[0]
    status, info = process_detections(img, faces, cfg)
    assert status == "ok" and info["num_faces"] == 1 and info["confidence"] > 0.99
    x, y, w, h = json.loads(info["box"])
    H, W = img.shape[:2]
    x0, y0, x1, y1 = info["region"]
    assert (x0, y0, x1, y1) == (max(x - 22, 0), max(y - 22, 0), min(x + w + 22, W), min(y + h + 22, H))
    crop = info["crop"]
    assert crop.shape == (182, 182, 3)
    np.testing.assert_array_equal(
        crop, cv2.resize(img[y0:y1, x0:x1], (182, 182), interpolation=box_interpolation(y1 - y0, x1 - x0, 182))
    )
    # MTCNN finds the face again where the margin put it: 22 source px inside each edge of the crop.
    sx, sy = 182 / (x1 - x0), 182 / (y1 - y0)
    ex0, ey0, ex1, ey1 = (x - x0) * sx, (y - y0) * sy, (x + w - x0) * sx, (y + h - y0) * sy
    bx, by, bw, bh = max(detect_batch(detector, [crop], cfg)[0], key=lambda f: f["confidence"])["box"]
    iw = max(0.0, min(ex1, bx + bw) - max(ex0, bx))
    ih = max(0.0, min(ey1, by + bh) - max(ey0, by))
    iou = iw * ih / ((ex1 - ex0) * (ey1 - ey0) + bw * bh - iw * ih)
    assert iou > 0.8, iou


def test_astronaut_eyes_land_on_template(detector):
    img = skdata.astronaut()
    cfg = AlignConfig(image_size=182, alignment="template")
    faces = detect_batch(detector, [img], cfg)[0]
    status, info = process_detections(img, faces, cfg)
    assert status == "ok" and info["num_faces"] == 1 and info["confidence"] > 0.99
    crop = info["crop"]
    assert crop.shape == (182, 182, 3)
    again = detect_batch(detector, [crop], cfg)[0]
    kp = max(again, key=lambda f: f["confidence"])["keypoints"]
    (lx, ly), (rx, ry) = eye_template(182)
    assert np.hypot(kp["left_eye"][0] - lx, kp["left_eye"][1] - ly) < 4
    assert np.hypot(kp["right_eye"][0] - rx, kp["right_eye"][1] - ry) < 4


def test_load_rgb_conversions(tmp_path):
    a = skdata.astronaut()[:64, :64]
    cv2.imwrite(str(tmp_path / "g.png"), cv2.cvtColor(a, cv2.COLOR_RGB2GRAY))
    cv2.imwrite(str(tmp_path / "a.png"), cv2.cvtColor(a, cv2.COLOR_RGB2BGRA))
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    (tmp_path / "empty.png").write_bytes(b"")
    img, note = load_rgb(tmp_path / "g.png")
    assert img.shape == (64, 64, 3) and note == "grayscale_converted"
    img, note = load_rgb(tmp_path / "a.png")
    assert img.shape == (64, 64, 3) and note == "rgba_converted"
    with pytest.raises(ValueError, match="grayscale"):
        load_rgb(tmp_path / "g.png", convert_channels=False)
    for name in ("bad.png", "empty.png", "missing.png"):
        with pytest.raises(ImageReadError):
            load_rgb(tmp_path / name)


def test_policy_without_detector():
    img = np.zeros((100, 100, 3), np.uint8)
    face = {"box": [30, 30, 40, 50], "confidence": 0.99, "keypoints": {"left_eye": [40, 45], "right_eye": [60, 45]}}
    small = {"box": [0, 0, 10, 12], "confidence": 0.95, "keypoints": {"left_eye": [2, 4], "right_eye": [7, 4]}}
    weak = dict(face, confidence=0.5)
    cfg = AlignConfig(image_size=32)
    assert process_detections(img, [], cfg)[1]["reason"] == "no_face"
    assert process_detections(img, [weak], cfg)[1]["reason"] == "low_confidence"
    st, info = process_detections(img, [small, face, weak], cfg)
    assert st == "ok" and info["note"] == "multiple_faces:2" and json.loads(info["box"]) == face["box"]
    assert process_detections(img, [small, face], AlignConfig(multi_face="reject"))[1]["reason"] == "multiple_faces"


# ------------------------------------------------------------------ CK+-layout tree from real photos
def _make_ckplus_tree(root):
    astro, cam, _ = photo_faces(200)
    bases = {"S010": astro, "S011": cam, "S012": astro[:, ::-1].copy(), "S013": cam[:, ::-1].copy()}
    for i, (subj, base) in enumerate(bases.items()):
        for q, label in (("001", 5), ("002", 1 if i % 2 else 7)):
            frames = [np.clip(base.astype(int) + 6 * k - 10 * int(q), 0, 255).astype(np.uint8) for k in range(5)]
            ckplus_sequence(root, subj, q, frames, label)
    blank = np.full((200, 200, 3), 200, np.uint8)
    coffee = cv2.resize(skdata.coffee(), (200, 150))
    two = np.hstack([astro, astro[:, ::-1]])
    upside = astro[::-1].copy()
    gray = cv2.cvtColor(astro, cv2.COLOR_RGB2GRAY)
    rgba = np.dstack([astro, np.full(astro.shape[:2], 255, np.uint8)])
    # S020/001: corrupt (neutral slot), filler, no face (coffee), grayscale, RGBA
    ckplus_sequence(root, "S020", "001", [b"\x89PNG\r\n\x1a\ncorrupt", astro, coffee, gray, rgba], 5)
    # S021/001: two faces (neutral slot), filler, low confidence (upside down), blank, good
    ckplus_sequence(root, "S021", "001", [two, astro, upside, blank, astro], 7)
    # A label whose images are missing, and an unlabelled sequence.
    e = root / "Emotion" / "S022" / "001"
    e.mkdir(parents=True)
    (e / "S022_001_00000010_emotion.txt").write_text("   6.0000000e+00\n")
    write_image(root / "cohn-kanade-images" / "S010" / "003" / "S010_003_00000001.png", astro)


def test_prepare_ckplus_cli_end_to_end(tmp_path, capsys):
    from experiments.cli import main

    raw, out = tmp_path / "raw", tmp_path / "out"
    _make_ckplus_tree(raw)
    argv = ["prepare", "ckplus", "--root", str(raw), "--out", str(out), "--num-folds", "2"]
    argv += ["--multi-face", "reject", "--quiet", "--image-size", "64"]
    assert main(argv) == 0
    for f in ("manifest.csv", "rejects.csv", "folds.csv", "pairs.csv", "summary.json"):
        assert (out / f).is_file(), f
    man = pd.read_csv(out / "manifest.csv", dtype={"subject": str, "sequence": str}, keep_default_na=False)
    rej = pd.read_csv(out / "rejects.csv", keep_default_na=False)
    reasons = dict(zip(rej["source"], rej["reason"]))
    assert reasons == {
        "S020/001/S020_001_00000001.png": "unreadable",
        "S020/001/S020_001_00000003.png": "no_face",
        "S021/001/S021_001_00000001.png": "multiple_faces",
        "S021/001/S021_001_00000003.png": "low_confidence",
        "S021/001/S021_001_00000004.png": "no_face",
        "S022/001": "missing_sequence",
    }
    notes = dict(zip(man["source"], man["note"]))
    assert notes["S020/001/S020_001_00000004.png"] == "grayscale_converted"
    assert notes["S020/001/S020_001_00000005.png"] == "rgba_converted"
    assert len(man) == 4 * 2 * 4 + 2 + 1
    assert not man["source"].str.contains("S010/003").any()  # unlabelled sequence ignored
    assert all((out / p).is_file() for p in man["path"])
    assert cv2.imread(str(out / man["path"].iloc[0])).shape == (64, 64, 3)
    folds = pd.read_csv(out / "folds.csv", dtype={"subject": str})
    assert folds["subject"].is_unique and set(folds["subject"]) == set(man["subject"])
    pairs = pd.read_csv(out / "pairs.csv")
    assert len(pairs) > 0 and pairs["issame"].sum() == (~pairs["issame"]).sum()
    assert set(pairs["path_a"]) <= set(man["path"]) and set(pairs["path_b"]) <= set(man["path"])
    summary = json.loads((out / "summary.json").read_text())
    assert summary["rejects_by_reason"] == {
        "low_confidence": 1,
        "missing_sequence": 1,
        "multiple_faces": 1,
        "no_face": 2,
        "unreadable": 1,
    }
    assert summary["notes"] == {"grayscale_converted": 1, "rgba_converted": 1}
    assert summary["pairs"]["total"] == len(pairs)
    assert summary["settings"]["alignment"] == "box"
    assert "44 source px (22 per side)" in summary["settings"]["alignment_detail"]
    capsys.readouterr()

    # Resumable: a rerun detects nothing again and yields the same files.
    before = {f: (out / f).read_bytes() for f in ("manifest.csv", "rejects.csv", "pairs.csv")}
    assert main(argv) == 0
    again = json.loads((out / "summary.json").read_text())["alignment_this_run"]
    assert again["done"] == 0 and again["skipped"] == len(man) + 5
    assert before == {f: (out / f).read_bytes() for f in before}

    # Resuming with another framing would mix crops: refused, nothing rewritten.
    assert main(argv + ["--alignment", "template"]) == 2
    assert "other alignment settings" in capsys.readouterr().err
    assert before == {f: (out / f).read_bytes() for f in before}
