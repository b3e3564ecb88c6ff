"""Helpers shared by the dataset readers (root discovery, error messages, frame selection)."""
from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

#: Columns of a reader's frame table (one row per selected raw frame).
FRAME_COLUMNS = ("subject", "sequence", "frame", "role", "expression", "expression_name",
                 "raw_path", "source")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


def describe_dir(path: Path, limit: int = 12) -> str:
    """Short listing of a directory for error messages."""
    if not path.exists():
        return f"{path} does not exist"
    if not path.is_dir():
        return f"{path} is a file, not a directory"
    names = sorted(p.name + ("/" if p.is_dir() else "") for p in path.iterdir())
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


def list_images(d: Path) -> list[Path]:
    """Image files of a sequence folder, ordered by frame number (hidden files ignored)."""
    files = [p for p in d.iterdir() if p.is_file() and not p.name.startswith(".")
             and p.suffix.lower() in IMAGE_SUFFIXES]
    return sorted(files, key=lambda p: (frame_number(p), p.name))


def protocol_frames(frames: list[Path], n_peak: int = 3) -> list[tuple[Path, str]]:
    """The authors' frame protocol: first frame = neutral, last ``n_peak`` = peak."""
    if len(frames) < n_peak + 1:
        raise ValueError(f"sequence has {len(frames)} frames, needs at least {n_peak + 1}")
    return [(frames[0], "neutral")] + [(f, "peak") for f in frames[-n_peak:]]


def to_frame_table(rows: list[dict], skipped: list[dict]) -> pd.DataFrame:
    """Assemble rows into a DataFrame with :data:`FRAME_COLUMNS`; ``skipped`` goes to ``df.attrs``."""
    df = pd.DataFrame(rows, columns=list(FRAME_COLUMNS))
    df["frame"] = df["frame"].astype("int64")
    df["expression"] = df["expression"].astype("int64")
    df = df.sort_values(["subject", "sequence", "frame"], kind="stable").reset_index(drop=True)
    df.attrs["skipped"] = skipped
    return df
