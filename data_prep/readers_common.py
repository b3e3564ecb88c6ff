"""Helpers shared by the dataset readers (root discovery, error messages, frame listing and selection).

A reader never aborts the whole dataset for one bad sequence: problems found while listing a
sequence raise :class:`SequenceProblem` with a reject reason, and the reader turns it into one
``rejects.csv`` row for that sequence. Reasons (:data:`SEQUENCE_REASONS`):

* ``missing_sequence``: a label without an image folder;
* ``unreadable_sequence``: the folder cannot be listed, or is a broken link / symlink loop;
* ``bad_frame_name``: an image file whose name does not end with a frame number;
* ``duplicate_frame``: two files with the same frame number (``..._05.png`` and ``..._05.jpg``),
  which would map to one aligned crop;
* ``short_sequence``: fewer than first + last 3 frames;
* ``bad_label`` / ``unreadable_label``: the label file cannot be parsed / read;
* ``duplicate_sequence``: two folders name the same sequence (Oulu-CASIA, case-insensitive).
"""

from __future__ import annotations

import errno
import os
import re
import stat
from collections import defaultdict
from pathlib import Path

import pandas as pd

#: Columns of a reader's frame table (one row per selected raw frame).
FRAME_COLUMNS = ("subject", "sequence", "frame", "role", "expression", "expression_name", "raw_path", "source")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
#: Reject reasons that name a whole sequence (or label / subject folder) rather than one image file.
SEQUENCE_REASONS = (
    "missing_sequence",
    "unreadable_sequence",
    "bad_frame_name",
    "duplicate_frame",
    "short_sequence",
    "bad_label",
    "unreadable_label",
    "duplicate_sequence",
)


class SequenceProblem(Exception):
    """One sequence cannot be used: ``reason`` (a :data:`SEQUENCE_REASONS` entry) and a one-line ``detail``."""

    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason, self.detail = reason, detail


def describe_dir(path: Path, limit: int = 12) -> str:
    """Short listing of a directory for error messages."""
    if not path.exists():
        return f"{path} does not exist"
    if not path.is_dir():
        return f"{path} is a file, not a directory"
    try:
        names = sorted(p.name + ("/" if p.is_dir() else "") for p in path.iterdir())
    except OSError as err:
        return f"{path} cannot be listed ({err.strerror or err})"
    more = f" ... (+{len(names) - limit} more)" if len(names) > limit else ""
    return f"{path} contains {names[:limit]}{more}" if names else f"{path} is empty"


def find_subdir(root: Path, rel: str, max_depth: int = 2) -> Path | None:
    """Find ``root/rel`` or ``root/<d1>/rel`` ... up to ``max_depth`` levels below ``root``."""
    cand = root / rel
    if cand.is_dir():
        return cand
    level = [root]
    for _ in range(max_depth):
        nxt = []
        for d in level:
            try:
                children = sorted(c for c in d.iterdir() if c.is_dir() and not c.name.startswith("."))
            except OSError:
                continue
            for c in children:
                if (c / rel).is_dir():
                    return c / rel
            nxt.extend(children)
        level = nxt
    return None


def frame_number(path: Path) -> int:
    """Trailing integer of a file stem (``S005_001_00000011`` -> 11, ``012`` -> 12)."""
    m = re.search(r"(\d+)$", path.stem)
    if m is None:
        raise ValueError(f"no frame number at the end of file name {path.name!r}")
    return int(m.group(1))


def list_dir(d: Path) -> list[Path]:
    """Entries of ``d``, sorted by name; raises OSError when ``d`` cannot be listed."""
    return sorted(d.iterdir())


def is_dir(p: Path) -> bool:
    """``p.is_dir()`` that answers False instead of raising (e.g. no search permission)."""
    try:
        return p.is_dir()
    except OSError:
        return False


def is_image_name(p: Path) -> bool:
    """A visible file name with an image suffix (``.DS_Store``, ``._x.png`` are not)."""
    return not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES


def entry_problem(p: Path) -> str | None:
    """None for a regular file; otherwise why it cannot be read (broken link, symlink loop, not a file)."""
    try:
        st = p.stat()
    except OSError as err:
        if p.is_symlink():
            if err.errno == errno.ELOOP:
                return f"{p.name} is a symbolic link loop"
            return f"{p.name} is a broken symbolic link (to {os.readlink(p)})"
        return f"cannot access {p.name} ({err.strerror or err})"
    if not stat.S_ISREG(st.st_mode):
        return f"{p.name} is not a regular file"
    return None


def folder_problem(d: Path) -> str | None:
    """Why an existing path ``d`` cannot serve as a folder (None if it is one, or does not exist at all)."""
    if is_dir(d) or not os.path.lexists(d):
        return None
    return entry_problem(d) or f"{d.name} is a file, not a folder"


def list_frames(d: Path) -> list[Path]:
    """Image files of a sequence folder ordered by frame number; raises :class:`SequenceProblem`.

    Hidden files are ignored. Broken links and symlink loops with an image suffix stay in the list
    (in their frame position), so they are rejected instead of letting the next frame take their
    place as the neutral reference.
    """
    try:
        entries = list_dir(d)
    except OSError as err:
        raise SequenceProblem("unreadable_sequence", f"cannot list {d} ({err.strerror or err})") from err
    files = [p for p in entries if is_image_name(p) and not is_dir(p)]
    nameless = [p.name for p in files if re.search(r"(\d+)$", p.stem) is None]
    if nameless:
        raise SequenceProblem(
            "bad_frame_name",
            f"{d}: no frame number at the end of {nameless[:3]}"
            f"{f' (+{len(nameless) - 3} more)' if len(nameless) > 3 else ''}",
        )
    by_number: dict[int, list[str]] = defaultdict(list)
    for p in files:
        by_number[frame_number(p)].append(p.name)
    dup = sorted((n, names) for n, names in by_number.items() if len(names) > 1)
    if dup:
        n, names = dup[0]
        raise SequenceProblem(
            "duplicate_frame", f"{d}: frame {n} appears {len(names)} times: {' and '.join(sorted(names))}"
        )
    return sorted(files, key=lambda p: (frame_number(p), p.name))


def protocol_frames(frames: list[Path], n_peak: int = 3) -> list[tuple[Path, str]]:
    """The authors' frame protocol: first frame = neutral, last ``n_peak`` = peak."""
    if len(frames) < n_peak + 1:
        raise ValueError(f"sequence has {len(frames)} frames, needs at least {n_peak + 1}")
    return [(frames[0], "neutral")] + [(f, "peak") for f in frames[-n_peak:]]


def sequence_frames(seq_dir: Path, n_peak: int = 3) -> tuple[list[Path], dict[Path, str]]:
    """``(every frame of seq_dir, {protocol frame: role})``; a sequence too short for the protocol
    raises :class:`SequenceProblem` ``short_sequence``."""
    frames = list_frames(seq_dir)
    try:
        return frames, dict(protocol_frames(frames, n_peak))
    except ValueError as err:
        raise SequenceProblem("short_sequence", str(err)) from err


def reject_sequence(skipped: list[dict], inventory, source: str, problem: SequenceProblem, folders=()) -> None:
    """Record a rejected sequence: its reject row, the inventory's count, its image folders' files."""
    skipped.append({"source": source, "reason": problem.reason, "detail": problem.detail})
    inventory.sequence("rejected")
    for folder in folders:
        inventory.mark_folder(folder, "in_rejected_sequences")


def use_sequence(
    frames: list[Path],
    chosen: dict[Path, str],
    inventory,
    skipped: list[dict],
    source_of,
    row_of,
) -> list[dict]:
    """The frame rows of a used sequence: an unreadable file is a reject row, a frame outside the
    protocol is counted, each protocol frame becomes ``row_of(path, role)`` (subject, sequence,
    role, expression, expression_name) with ``frame``, ``raw_path`` and ``source`` added."""
    inventory.sequence("used")
    rows = []
    for path in frames:
        source = source_of(path)
        why = entry_problem(path)
        if why:
            skipped.append({"source": source, "reason": "unreadable", "detail": why})
            inventory.mark(path, "rejected_file")
        elif path in chosen:
            rows.append(
                {
                    **row_of(path, chosen[path]),
                    "frame": frame_number(path),
                    "raw_path": str(path.resolve()),
                    "source": source,
                }
            )
            inventory.mark(path, "protocol")
        else:
            inventory.mark(path, "not_protocol_frames")
    return rows


def to_frame_table(rows: list[dict], skipped: list[dict], inventory=None) -> pd.DataFrame:
    """Assemble rows into a DataFrame with :data:`FRAME_COLUMNS`.

    ``df.attrs``: ``skipped`` (the reader's reject rows), and with an
    :class:`data_prep.inventory.Inventory`, ``stray`` (reject rows of image files outside the
    layout) and ``inputs`` (the accounting of every image file under the images root).
    """
    df = pd.DataFrame(rows, columns=list(FRAME_COLUMNS))
    df["frame"] = df["frame"].astype("int64")
    df["expression"] = df["expression"].astype("int64")
    df = df.sort_values(["subject", "sequence", "frame"], kind="stable").reset_index(drop=True)
    df.attrs["skipped"] = skipped
    if inventory is not None:
        inputs, stray = inventory.account()
        df.attrs["inputs"] = inputs
        df.attrs["stray"] = stray
    return df
