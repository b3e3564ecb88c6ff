"""CK+ reader (Lucey et al. 2010), as used by Ming et al. 2019 (Section 5.1, Table 1).

Expected layout (the official archives unpacked under one root; one extra folder level such as
``extended-cohn-kanade-images/`` or ``Emotion_labels/`` is tolerated)::

    ROOT/cohn-kanade-images/S005/001/S005_001_00000001.png ...
    ROOT/Emotion/S005/001/S005_001_00000011_emotion.txt      (content e.g. "   3.0000000e+00")

Only labelled sequences (with an Emotion file) are used: 327 in CK+. Per sequence the first
frame is the neutral reference (expression 0) and the last 3 frames are the peak (the label),
i.e. 327 x 4 = 1308 images (docs/fidelity.md).
"""
from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from .labels import CKPLUS_EXPRESSIONS
from .readers_common import (describe_dir, find_subdir, frame_number, list_images, protocol_frames,
                             to_frame_table)


def find_ckplus_dirs(root: str | os.PathLike) -> tuple[Path, Path]:
    """Return ``(images_dir, emotion_dir)`` under ``root``; raise FileNotFoundError explaining what is missing."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"CK+ root {root} is not a directory ({describe_dir(root)})")
    images = find_subdir(root, "cohn-kanade-images")
    emotion = find_subdir(root, "Emotion")
    missing = [n for n, d in (("cohn-kanade-images", images), ("Emotion", emotion)) if d is None]
    if missing:
        raise FileNotFoundError(
            f"CK+ root {root} is incomplete: expected folders {missing} (at the root or one level below), "
            f"e.g. {root}/cohn-kanade-images/S005/001/S005_001_00000001.png and "
            f"{root}/Emotion/S005/001/S005_001_00000011_emotion.txt; found: {describe_dir(root)}")
    return images, emotion


def read_emotion_file(path: Path) -> int:
    """Parse a CK+ ``*_emotion.txt`` (a float such as ``3.0000000e+00``) into a code 0-7."""
    text = path.read_text().strip()
    try:
        value = float(text.split()[0])
    except (ValueError, IndexError) as err:
        raise ValueError(f"{path}: expected an emotion code like '3.0000000e+00', found {text!r}") from err
    code = int(round(value))
    if code not in CKPLUS_EXPRESSIONS or abs(value - code) > 1e-6:
        raise ValueError(f"{path}: emotion code {value} is not one of {sorted(CKPLUS_EXPRESSIONS)}")
    return code


def read_ckplus(root: str | os.PathLike, n_peak: int = 3) -> pd.DataFrame:
    """Frame table of CK+ (columns :data:`data_prep.readers_common.FRAME_COLUMNS`).

    ``raw_path`` is absolute; ``source`` is relative to ``cohn-kanade-images``. Labelled sequences
    whose image folder is missing or too short are not dropped silently: they are listed in
    ``df.attrs["skipped"]`` (dicts with source and reason) and prepare writes them to rejects.csv.
    """
    images_dir, emotion_dir = find_ckplus_dirs(root)
    emo_files = sorted(emotion_dir.glob("*/*/*_emotion.txt"))
    if not emo_files:
        raise FileNotFoundError(f"no labelled sequences: expected {emotion_dir}/SXXX/NNN/*_emotion.txt; "
                                f"found: {describe_dir(emotion_dir)}")
    rows: list[dict] = []
    skipped: list[dict] = []
    for emo in emo_files:
        subject, sequence = emo.parent.parent.name, emo.parent.name
        code = read_emotion_file(emo)
        seq_dir = images_dir / subject / sequence
        if not seq_dir.is_dir():
            skipped.append({"source": f"{subject}/{sequence}", "reason": "missing_sequence",
                            "detail": f"label {emo.name} has no image folder {seq_dir}"})
            continue
        frames = list_images(seq_dir)
        try:
            chosen = protocol_frames(frames, n_peak)
        except ValueError as err:
            skipped.append({"source": f"{subject}/{sequence}", "reason": "short_sequence", "detail": str(err)})
            continue
        for path, role in chosen:
            expr = 0 if role == "neutral" else code
            rows.append({"subject": subject, "sequence": sequence, "frame": frame_number(path),
                         "role": role, "expression": expr, "expression_name": CKPLUS_EXPRESSIONS[expr],
                         "raw_path": str(path.resolve()), "source": path.relative_to(images_dir).as_posix()})
    if not rows:
        raise FileNotFoundError(f"CK+ root {root}: {len(emo_files)} labels but no usable sequence; "
                                f"problems: {skipped[:5]}")
    return to_frame_table(rows, skipped)
