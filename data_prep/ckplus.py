"""CK+ reader (Lucey et al. 2010), as used by Ming et al. 2019 (Section 5.1, Table 1).

Expected layout (the official archives unpacked under one root; one extra folder level such as
``extended-cohn-kanade-images/`` or ``Emotion_labels/`` is tolerated)::

    ROOT/cohn-kanade-images/S005/001/S005_001_00000001.png ...
    ROOT/Emotion/S005/001/S005_001_00000011_emotion.txt      (content e.g. "   3.0000000e+00")

Only labelled sequences (with an Emotion file) are used: 327 in CK+. Per sequence the first
frame is the neutral reference (expression 0) and the last 3 frames are the peak (the label),
i.e. 327 x 4 = 1308 images (docs/fidelity.md).

One bad sequence never stops the others: a label that cannot be read or parsed, a folder that
cannot be listed, frame names without a number, two files with one frame number, too few frames
each reject that sequence (reasons in :data:`data_prep.readers_common.SEQUENCE_REASONS`), and a
broken link among the frames rejects that file. Unlabelled sequences are counted
(``df.attrs["inputs"]``), so every image file under ``cohn-kanade-images`` is accounted for
(:mod:`data_prep.inventory`).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import pandas as pd

from .inventory import Inventory
from .labels import CKPLUS_EXPRESSIONS
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

LABEL_SUFFIX = "_emotion.txt"


class LabelError(ValueError):
    """A CK+ emotion file cannot be read (``unreadable_label``) or parsed (``bad_label``); names the file."""

    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason, self.detail = reason, detail


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
            f"{root}/Emotion/S005/001/S005_001_00000011_emotion.txt; found: {describe_dir(root)}"
        )
    return images, emotion


def read_emotion_file(path: Path) -> int:
    """Parse a CK+ ``*_emotion.txt`` (a float such as ``3.0000000e+00``) into a code 0-7.

    Raises :class:`LabelError` naming the file: ``unreadable_label`` (permissions, I/O error, symlink
    loop) or ``bad_label`` (not UTF-8, empty, not a number, NaN, not an integer code 0-7).
    """
    try:
        raw = Path(path).read_bytes()
    except OSError as err:
        raise LabelError("unreadable_label", f"cannot read label {path} ({err.strerror or err})") from err
    try:
        text = raw.decode("utf-8").strip()
    except UnicodeDecodeError as err:
        raise LabelError(
            "bad_label",
            f"{path}: not UTF-8 text (byte {raw[err.start]:#04x} at offset {err.start}); "
            f"expected an emotion code like '3.0000000e+00'",
        ) from err
    try:
        value = float(text.split()[0])
    except (ValueError, IndexError) as err:
        raise LabelError(
            "bad_label", f"{path}: expected an emotion code like '3.0000000e+00', found {text[:40]!r}"
        ) from err
    if not math.isfinite(value) or abs(value - round(value)) > 1e-6 or int(round(value)) not in CKPLUS_EXPRESSIONS:
        raise LabelError(
            "bad_label", f"{path}: emotion code {text.split()[0][:40]!r} is not one of {sorted(CKPLUS_EXPRESSIONS)}"
        )
    return int(round(value))


def _visible_dirs(d: Path) -> list[Path]:
    return [c for c in list_dir(d) if not c.name.startswith(".") and is_dir(c)]


def _find_labels(emotion_dir: Path) -> tuple[dict[str, Path], dict[str, SequenceProblem]]:
    """``({"S005/001": label file}, {"S005/001" or "S005": problem})`` from the Emotion tree."""
    try:
        subjects = _visible_dirs(emotion_dir)
    except OSError as err:
        raise FileNotFoundError(f"cannot list the CK+ label folder {emotion_dir} ({err.strerror or err})") from err
    labels: dict[str, Path] = {}
    problems: dict[str, SequenceProblem] = {}
    for subj in subjects:
        try:
            sequences = _visible_dirs(subj)
        except OSError as err:
            problems[subj.name] = SequenceProblem(
                "unreadable_label", f"cannot list label folder {subj} ({err.strerror or err})"
            )
            continue
        for seq in sequences:
            key = f"{subj.name}/{seq.name}"
            try:
                files = [p for p in list_dir(seq) if p.name.endswith(LABEL_SUFFIX) and not p.name.startswith(".")]
            except OSError as err:
                problems[key] = SequenceProblem(
                    "unreadable_label", f"cannot list label folder {seq} ({err.strerror or err})"
                )
                continue
            if len(files) > 1:
                problems[key] = SequenceProblem(
                    "bad_label", f"{seq}: {len(files)} label files {[p.name for p in files]}, expected one"
                )
            elif files:
                labels[key] = files[0]
    return labels, problems


def read_ckplus(root: str | os.PathLike, n_peak: int = 3) -> pd.DataFrame:
    """Frame table of CK+ (columns :data:`data_prep.readers_common.FRAME_COLUMNS`).

    ``raw_path`` is absolute; ``source`` is relative to ``cohn-kanade-images``. Sequences and files
    that cannot be used are not dropped silently: they are listed in ``df.attrs["skipped"]`` (dicts
    with source, reason, detail) and prepare writes them to rejects.csv; ``df.attrs["inputs"]``
    accounts for every image file (including unlabelled sequences) and ``df.attrs["stray"]`` lists
    image files outside the sequence folders.
    """
    images_dir, emotion_dir = find_ckplus_dirs(root)
    labels, label_problems = _find_labels(emotion_dir)
    if not labels and not label_problems:
        raise FileNotFoundError(
            f"no labelled sequences: expected {emotion_dir}/SXXX/NNN/*{LABEL_SUFFIX}; "
            f"found: {describe_dir(emotion_dir)}"
        )
    inv = Inventory(images_dir, layout="cohn-kanade-images/SXXX/NNN/SXXX_NNN_<frame>.png")
    try:
        subjects = _visible_dirs(images_dir)
    except OSError as err:
        raise FileNotFoundError(f"cannot list the CK+ image folder {images_dir} ({err.strerror or err})") from err
    image_seqs: dict[str, Path] = {}
    subject_problems: dict[str, SequenceProblem] = {}
    for subj in subjects:
        try:
            for seq in _visible_dirs(subj):
                image_seqs[f"{subj.name}/{seq.name}"] = seq
        except OSError as err:
            subject_problems[subj.name] = SequenceProblem(
                "unreadable_sequence", f"cannot list {subj} ({err.strerror or err})"
            )
            inv.mark_folder(subj, "in_rejected_sequences")
    keys = set(labels) | {k for k in label_problems if "/" in k} | set(image_seqs)
    # A label subject folder that cannot be listed: reject its image sequences (or the folder itself).
    for subj in label_problems:
        if "/" not in subj and not any(k.startswith(subj + "/") for k in keys):
            keys.add(subj)
    rows: list[dict] = []
    skipped: list[dict] = []
    for key in sorted(keys):
        subj = key.split("/")[0]
        seq_dir = images_dir / key
        labelled = key in labels or key in label_problems or subj in label_problems
        if not labelled:
            inv.sequence("unlabelled")
            inv.mark_folder(seq_dir, "in_unlabelled_sequences")
            continue
        try:
            for problem in (subject_problems.get(subj), label_problems.get(subj), label_problems.get(key)):
                if problem is not None:
                    raise problem
            label = labels[key]
            try:
                code = read_emotion_file(label)
            except LabelError as err:
                raise SequenceProblem(err.reason, err.detail) from err
            if key not in image_seqs:
                why = folder_problem(seq_dir)
                if why:
                    raise SequenceProblem("unreadable_sequence", f"image folder {seq_dir}: {why}")
                raise SequenceProblem("missing_sequence", f"label {label.name} has no image folder {seq_dir}")
            frames, chosen = sequence_frames(seq_dir, n_peak)
        except SequenceProblem as p:
            reject_sequence(skipped, inv, key, p, [seq_dir] if key in image_seqs else [])
            continue

        def row(path: Path, role: str, subj=subj, seq_dir=seq_dir, code=code) -> dict:
            expr = 0 if role == "neutral" else code
            return {
                "subject": subj,
                "sequence": seq_dir.name,
                "role": role,
                "expression": expr,
                "expression_name": CKPLUS_EXPRESSIONS[expr],
            }

        rows += use_sequence(frames, chosen, inv, skipped, lambda p: p.relative_to(images_dir).as_posix(), row)
    if not rows:
        raise ValueError(
            f"CK+ root {root}: {len(labels) + len(label_problems)} labels but no usable sequence; "
            f"problems: {skipped[:5]}"
        )
    return to_frame_table(rows, skipped, inv)
