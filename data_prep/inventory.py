"""Accounting of every image file under a dataset's images root: nothing is dropped unseen.

A reader marks each file it lists (and each sequence folder it decides on) with a fate; a walk of
the images root then gives every file with an image suffix (:data:`IMAGE_SUFFIXES`, broken links
and symlink loops included) exactly one of :data:`FATES`:

* ``protocol``: a selected frame (first + last 3 of a labelled sequence); prepare turns it into a
  manifest row or an image reject row;
* ``rejected_file``: the reader rejected this file (a broken link, a symlink loop);
* ``in_rejected_sequences``: inside a sequence rejected as a whole (one reject row per sequence);
* ``not_protocol_frames``: a middle frame of a used sequence (the protocol does not use it);
* ``in_unlabelled_sequences``: a frame of a sequence without a label (CK+: no Emotion file);
* ``hidden``: a hidden name (``.x.png``, macOS ``._x.png``) or inside a hidden folder;
* ``outside_layout``: anywhere else; each such file becomes a reject row ``outside_layout``.

``summary.json: inputs`` holds the counts, and prepare checks that they add up to the files found.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path, PurePosixPath

from .readers_common import IMAGE_SUFFIXES

FATES = (
    "protocol",
    "rejected_file",
    "in_rejected_sequences",
    "not_protocol_frames",
    "in_unlabelled_sequences",
    "hidden",
    "outside_layout",
)
SEQUENCE_STATUSES = ("used", "rejected", "unlabelled")


class Inventory:
    """Fates of the image files under ``root`` (paths in rows are ``source_prefix`` + path relative to root)."""

    def __init__(self, root: Path, source_prefix: str = "", layout: str = ""):
        self.root = Path(root)
        self.prefix = source_prefix
        self.layout = layout
        self.fate: dict[str, str] = {}
        self.folder_fate: dict[str, str] = {}
        self.sequences: Counter = Counter()

    def rel(self, path: Path) -> str:
        return Path(path).relative_to(self.root).as_posix()

    def mark(self, path: Path, fate: str) -> None:
        """Give one listed file its fate."""
        if fate not in FATES:
            raise ValueError(f"unknown fate {fate!r}; expected one of {FATES}")
        self.fate[self.rel(path)] = fate

    def mark_folder(self, folder: Path, fate: str) -> None:
        """Every file below ``folder`` not marked on its own gets ``fate`` (e.g. a rejected sequence)."""
        if fate not in FATES:
            raise ValueError(f"unknown fate {fate!r}; expected one of {FATES}")
        self.folder_fate[self.rel(folder)] = fate

    def sequence(self, status: str) -> None:
        """Count one sequence folder as ``used``, ``rejected`` or ``unlabelled``."""
        if status not in SEQUENCE_STATUSES:
            raise ValueError(f"unknown sequence status {status!r}; expected one of {SEQUENCE_STATUSES}")
        self.sequences[status] += 1

    def _walk(self) -> set[str]:
        found: set[str] = set()
        for dirpath, dirnames, filenames in os.walk(self.root, followlinks=False):
            dirnames.sort()
            base = Path(dirpath)
            for name in filenames:
                if Path(name).suffix.lower() in IMAGE_SUFFIXES:
                    found.add(self.rel(base / name))
        return found

    def _fate_of(self, rel: str) -> str:
        if rel in self.fate:
            return self.fate[rel]
        p = PurePosixPath(rel)
        if any(part.startswith(".") for part in p.parts):
            return "hidden"
        for parent in p.parents:
            if parent.as_posix() in self.folder_fate:
                return self.folder_fate[parent.as_posix()]
        return "outside_layout"

    def account(self) -> tuple[dict, list[dict]]:
        """``(inputs, stray)``: counts per fate and per sequence status; reject rows of ``outside_layout`` files.

        Files are those found by walking the root (links to folders are not followed) plus those the
        reader listed (through such links), each counted once.
        """
        files = sorted(self._walk() | set(self.fate))
        counts = Counter()
        stray = []
        for rel in files:
            fate = self._fate_of(rel)
            counts[fate] += 1
            if fate == "outside_layout":
                stray.append(
                    {
                        "source": self.prefix + rel,
                        "reason": "outside_layout",
                        "detail": f"not in a sequence folder{': expected ' + self.layout if self.layout else ''}",
                    }
                )
        inputs = {
            "image_files": len(files),
            "files": {f: int(counts[f]) for f in FATES},
            "sequences": {s: int(self.sequences[s]) for s in SEQUENCE_STATUSES},
        }
        return inputs, stray
