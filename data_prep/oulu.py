"""Oulu-CASIA NIR&VIS reader (Zhao et al. 2011), as used by Ming et al. 2019 (Section 5.1, Table 1).

Expected layout (``OriginalImg`` or any one/two extra folder levels are tolerated)::

    ROOT/VL/Strong/P001/Anger/000.jpeg ...   (VL|NI) x (Strong|Weak|Dark) x P001..P080 x 6 expressions

Default: VL (visible light), Strong illumination, 6 classes, as the authors. Per sequence the
first frame is the neutral reference and the last 3 frames are the peak: 80 x 6 x 4 = 1920 images.
With ``classes=6`` the neutral frames carry expression code -1 (no class): they are verification
references, but the multi-task harness trains only on rows with an expression label, so they do not
train the identity branch either (docs/fidelity.md, row 18); with ``classes=7`` they are class 0 ("neutral").
"""
from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from .labels import NO_EXPRESSION, OULU_EXPRESSIONS_6, OULU_EXPRESSIONS_7, OULU_FOLDERS
from .readers_common import describe_dir, find_subdir, frame_number, list_images, protocol_frames, to_frame_table

SPECTRA = ("VL", "NI")
ILLUMINATIONS = ("Strong", "Weak", "Dark")


def find_oulu_dir(root: str | os.PathLike, spectrum: str = "VL", illumination: str = "Strong") -> Path:
    """Return ``.../<spectrum>/<illumination>`` under ``root``; FileNotFoundError explains what was found."""
    if spectrum not in SPECTRA:
        raise ValueError(f"spectrum must be one of {SPECTRA}, got {spectrum!r}")
    if illumination not in ILLUMINATIONS:
        raise ValueError(f"illumination must be one of {ILLUMINATIONS}, got {illumination!r}")
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"Oulu-CASIA root {root} is not a directory ({describe_dir(root)})")
    d = find_subdir(root, f"{spectrum}/{illumination}", max_depth=2)
    if d is None:
        raise FileNotFoundError(
            f"Oulu-CASIA root {root}: expected {spectrum}/{illumination}/P001/Anger/000.jpeg (at the root or up to "
            f"two levels below, e.g. OriginalImg/{spectrum}/{illumination}); found: {describe_dir(root)}")
    return d


def read_oulu(root: str | os.PathLike, spectrum: str = "VL", illumination: str = "Strong", classes: int = 6,
              n_peak: int = 3) -> pd.DataFrame:
    """Frame table of Oulu-CASIA (columns :data:`data_prep.readers_common.FRAME_COLUMNS`).

    Subject folders are ``P\\d+``; expression folders are matched case-insensitively
    (Anger, Disgust, Fear, Happiness, Sadness, Surprise). Missing or short sequences are listed in
    ``df.attrs["skipped"]`` with a reason, never dropped silently.
    """
    if classes not in (6, 7):
        raise ValueError(f"classes must be 6 (no neutral class, the authors' default) or 7, got {classes}")
    base = find_oulu_dir(root, spectrum, illumination)
    codes = {v: k for k, v in (OULU_EXPRESSIONS_6 if classes == 6 else OULU_EXPRESSIONS_7).items()}
    subjects = sorted(d for d in base.iterdir() if d.is_dir() and d.name[:1].upper() == "P" and d.name[1:].isdigit())
    if not subjects:
        raise FileNotFoundError(f"no subject folders P001..P080 in {base}; found: {describe_dir(base)}")
    rows: list[dict] = []
    skipped: list[dict] = []
    for subj_dir in subjects:
        folders = {d.name.lower(): d for d in subj_dir.iterdir() if d.is_dir()}
        for folder, name in OULU_FOLDERS.items():
            seq_dir = folders.get(folder)
            source_seq = f"{spectrum}_{illumination}/{subj_dir.name}/{folder.capitalize()}"
            if seq_dir is None:
                skipped.append({"source": source_seq, "reason": "missing_sequence",
                                "detail": f"no folder {folder.capitalize()} in {describe_dir(subj_dir)}"})
                continue
            try:
                chosen = protocol_frames(list_images(seq_dir), n_peak)
            except ValueError as err:
                skipped.append({"source": source_seq, "reason": "short_sequence", "detail": str(err)})
                continue
            for path, role in chosen:
                if role == "neutral":
                    code = NO_EXPRESSION if classes == 6 else codes["neutral"]
                    ename = "neutral"
                else:
                    code, ename = codes[name], name
                rows.append({"subject": subj_dir.name, "sequence": seq_dir.name, "frame": frame_number(path),
                             "role": role, "expression": code, "expression_name": ename,
                             "raw_path": str(path.resolve()),
                             "source": f"{spectrum}_{illumination}/{path.relative_to(base).as_posix()}"})
    if not rows:
        raise FileNotFoundError(f"Oulu-CASIA {base}: no usable sequence; problems: {skipped[:5]}")
    return to_frame_table(rows, skipped)
