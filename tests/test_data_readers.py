"""CK+ and Oulu-CASIA readers: protocol frames, labels, clear errors on wrong roots."""

from __future__ import annotations

import numpy as np
import pytest

from data_prep.ckplus import read_ckplus
from data_prep.labels import NO_EXPRESSION
from data_prep.oulu import read_oulu
from data_prep.raw_trees import CK_IMAGES, OULU_FOLDERS, ckplus_sequence, oulu_sequence

PIX = np.full((8, 8, 3), 128, np.uint8)


def _ck_seq(root, subj, seq, n, label=None):
    ckplus_sequence(root, subj, seq, [PIX] * n, label)
    (root / CK_IMAGES / subj / seq / ".DS_Store").write_bytes(b"junk")


def test_ckplus_protocol(tmp_path):
    _ck_seq(tmp_path, "S005", "001", 12, label=3)
    _ck_seq(tmp_path, "S005", "002", 6)  # unlabelled: ignored
    _ck_seq(tmp_path, "S010", "004", 10, label=5)
    _ck_seq(tmp_path, "S011", "001", 3, label=7)  # too short: skipped with a reason
    e = tmp_path / "Emotion" / "S012" / "001"  # label without images
    e.mkdir(parents=True)
    (e / "S012_001_00000009_emotion.txt").write_text("   1.0000000e+00\n")
    df = read_ckplus(tmp_path)
    assert len(df) == 8
    s5 = df[df["subject"] == "S005"]
    assert s5["frame"].tolist() == [1, 10, 11, 12]
    assert s5["role"].tolist() == ["neutral", "peak", "peak", "peak"]
    assert s5["expression"].tolist() == [0, 3, 3, 3]
    assert s5["expression_name"].tolist() == ["neutral", "disgust", "disgust", "disgust"]
    assert s5["source"].iloc[0] == "S005/001/S005_001_00000001.png"
    reasons = {d["source"]: d["reason"] for d in df.attrs["skipped"]}
    assert reasons == {"S011/001": "short_sequence", "S012/001": "missing_sequence"}


def test_ckplus_nested_root(tmp_path):
    _ck_seq(tmp_path / "extended", "S005", "001", 5, label=5)
    (tmp_path / "Emotion_labels").mkdir()
    (tmp_path / "extended" / "Emotion").rename(tmp_path / "Emotion_labels" / "Emotion")
    assert len(read_ckplus(tmp_path)) == 4


def test_ckplus_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a directory"):
        read_ckplus(tmp_path / "nope")
    (tmp_path / "cohn-kanade-images").mkdir()
    (tmp_path / "README.txt").write_text("x")
    with pytest.raises(FileNotFoundError, match=r"incomplete.*\['Emotion'\].*README.txt"):
        read_ckplus(tmp_path)
    (tmp_path / "Emotion").mkdir()
    with pytest.raises(FileNotFoundError, match="no labelled sequences"):
        read_ckplus(tmp_path)
    _ck_seq(tmp_path, "S005", "001", 5, label=5)
    (tmp_path / "Emotion/S005/001/S005_001_00000005_emotion.txt").write_text("happy")
    with pytest.raises(ValueError, match="emotion code"):
        read_ckplus(tmp_path)


def _oulu(root, subjects=("P001", "P002"), folders=OULU_FOLDERS, n=6):
    for s in subjects:
        for f in folders:
            oulu_sequence(root / "OriginalImg", s, f, [PIX] * n)


def test_oulu_protocol(tmp_path):
    _oulu(tmp_path)
    (tmp_path / "OriginalImg/VL/Strong/P002/Fear").rename(tmp_path / "OriginalImg/VL/Strong/P002/fear_x")
    df = read_oulu(tmp_path)
    assert len(df) == (6 + 5) * 4
    p1 = df[(df["subject"] == "P001") & (df["sequence"] == "Happiness")]
    assert p1["frame"].tolist() == [0, 3, 4, 5]
    assert p1["expression"].tolist() == [NO_EXPRESSION, 3, 3, 3]
    assert p1["expression_name"].tolist() == ["neutral", "happy", "happy", "happy"]
    assert p1["source"].iloc[0] == "VL_Strong/P001/Happiness/000.jpeg"
    assert [d["reason"] for d in df.attrs["skipped"]] == ["missing_sequence"]
    df7 = read_oulu(tmp_path, classes=7)
    assert set(df7.loc[df7["role"] == "neutral", "expression"]) == {0}
    assert set(df7["expression"]) == set(range(7))


def test_oulu_errors(tmp_path):
    _oulu(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"NI/Strong.*found.*OriginalImg"):
        read_oulu(tmp_path, spectrum="NI")
    with pytest.raises(ValueError, match="illumination"):
        read_oulu(tmp_path, illumination="Bright")
    with pytest.raises(ValueError, match="classes"):
        read_oulu(tmp_path, classes=8)
