"""Oulu-CASIA NIR&VIS reader (Zhao et al. 2011), as used by Ming et al. 2019 (Section 5.1, Table 1).

Expected layout (``OriginalImg`` or any one/two extra folder levels are tolerated)::

    ROOT/VL/Strong/P001/Anger/000.jpeg ...   (VL|NI) x (Strong|Weak|Dark) x P001..P080 x 6 expressions

Default: VL (visible light), Strong illumination, 6 classes, as the authors. Per sequence the
first frame is the neutral reference and the last 3 frames are the peak: 80 x 6 x 4 = 1920 images.
With ``classes=6`` the neutral frames carry expression code -1 (no class): they are verification
references, but the multi-task harness trains only on rows with an expression label, so they do not
train the identity branch either (docs/fidelity.md, row 18); with ``classes=7`` they are class 0 ("neutral").

One bad sequence never stops the others (reasons in :data:`data_prep.readers_common.SEQUENCE_REASONS`),
and every image file under ``<spectrum>/<illumination>`` is accounted for (:mod:`data_prep.inventory`).
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from .inventory import Inventory
from .labels import NO_EXPRESSION, OULU_EXPRESSIONS_6, OULU_EXPRESSIONS_7, OULU_FOLDERS
from .readers_common import (
    SequenceProblem,
    describe_dir,
    find_subdir,
    folder_problem,
    is_dir,
    list_dir,
    reject_sequence,
    sequence_frames,
    to_frame_table,
    use_sequence,
)

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
            f"two levels below, e.g. OriginalImg/{spectrum}/{illumination}); found: {describe_dir(root)}"
        )
    return d


def _sequence_dir(subj_dir: Path, entries: list[Path], folder: str) -> Path:
    """The one folder of ``subj_dir`` named ``folder`` (any case); raises :class:`SequenceProblem`."""
    named = [e for e in entries if e.name.lower() == folder]
    dirs = [e for e in named if is_dir(e)]
    if len(dirs) > 1:
        raise SequenceProblem(
            "duplicate_sequence",
            f"{subj_dir}: folders {[d.name for d in dirs]} both hold the {folder.capitalize()} sequence",
        )
    if dirs:
        return dirs[0]
    if named:
        raise SequenceProblem("unreadable_sequence", f"{named[0]}: {folder_problem(named[0])}")
    raise SequenceProblem("missing_sequence", f"no folder {folder.capitalize()} in {describe_dir(subj_dir)}")


def read_oulu(
    root: str | os.PathLike, spectrum: str = "VL", illumination: str = "Strong", classes: int = 6, n_peak: int = 3
) -> pd.DataFrame:
    """Frame table of Oulu-CASIA (columns :data:`data_prep.readers_common.FRAME_COLUMNS`).

    Subject folders are ``P\\d+``; expression folders are matched case-insensitively
    (Anger, Disgust, Fear, Happiness, Sadness, Surprise). Sequences and files that cannot be used are
    listed in ``df.attrs["skipped"]`` with a reason, never dropped silently; ``df.attrs["inputs"]``
    accounts for every image file and ``df.attrs["stray"]`` lists those outside the sequence folders.
    """
    if classes not in (6, 7):
        raise ValueError(f"classes must be 6 (no neutral class, the authors' default) or 7, got {classes}")
    base = find_oulu_dir(root, spectrum, illumination)
    prefix = f"{spectrum}_{illumination}/"
    codes = {v: k for k, v in (OULU_EXPRESSIONS_6 if classes == 6 else OULU_EXPRESSIONS_7).items()}
    try:
        subjects = [d for d in list_dir(base) if d.name[:1].upper() == "P" and d.name[1:].isdigit() and is_dir(d)]
    except OSError as err:
        raise FileNotFoundError(f"cannot list the Oulu-CASIA folder {base} ({err.strerror or err})") from err
    if not subjects:
        raise FileNotFoundError(f"no subject folders P001..P080 in {base}; found: {describe_dir(base)}")
    inv = Inventory(base, prefix, layout=f"{spectrum}/{illumination}/P001/Anger/000.jpeg")
    rows: list[dict] = []
    skipped: list[dict] = []
    for subj_dir in subjects:
        try:
            entries = list_dir(subj_dir)
        except OSError as err:
            entries, unlisted = [], f"cannot list {subj_dir} ({err.strerror or err})"
            inv.mark_folder(subj_dir, "in_rejected_sequences")
        else:
            unlisted = None
        for folder, name in OULU_FOLDERS.items():
            source_seq = f"{prefix}{subj_dir.name}/{folder.capitalize()}"
            try:
                if unlisted:
                    raise SequenceProblem("unreadable_sequence", unlisted)
                seq_dir = _sequence_dir(subj_dir, entries, folder)
                frames, chosen = sequence_frames(seq_dir, n_peak)
            except SequenceProblem as p:
                reject_sequence(skipped, inv, source_seq, p, [e for e in entries if e.name.lower() == folder])
                continue

            def row(path: Path, role: str, subj_dir=subj_dir, seq_dir=seq_dir, name=name) -> dict:
                if role == "neutral":
                    code, ename = (NO_EXPRESSION if classes == 6 else codes["neutral"]), "neutral"
                else:
                    code, ename = codes[name], name
                return {
                    "subject": subj_dir.name,
                    "sequence": seq_dir.name,
                    "role": role,
                    "expression": code,
                    "expression_name": ename,
                }

            rows += use_sequence(frames, chosen, inv, skipped, lambda p: prefix + p.relative_to(base).as_posix(), row)
    if not rows:
        raise ValueError(f"Oulu-CASIA {base}: no usable sequence; problems: {skipped[:5]}")
    return to_frame_table(rows, skipped, inv)
