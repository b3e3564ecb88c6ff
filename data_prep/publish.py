"""Publishing a prepared dataset: all of its protocol files or none.

``prepare`` computes every protocol file in memory, then writes each one under a temporary name in
the output folder and renames it into place (``os.replace`` is atomic), and writes the marker
``COMPLETE`` last. Every prepare first removes the marker (:func:`unpublish`), so a prepare that is
killed or fails at any point leaves a folder that :func:`require_complete` refuses, until a rerun
completes it. The marker records each file's size and row count; loading checks them, and
:func:`check_counts` checks the tables against the counts in ``summary.json`` (images, subjects per
fold, pairs per fold, rejects).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pandas as pd

from .datasets import DATASETS

MARKER = "COMPLETE"
PROTOCOL_FILES = ("manifest.csv", "rejects.csv", "folds.csv", "pairs.csv", "summary.json")


class IncompleteDatasetError(FileNotFoundError):
    """A prepared-dataset folder is missing, half-made, or changed since it was prepared (one-line message)."""


def _tmp(path: Path) -> Path:
    return path.with_name(f".{path.name}.partial")


def unpublish(out: str | os.PathLike) -> None:
    """Mark ``out`` incomplete before anything in it is (re)written: remove the marker and stale temporaries."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).unlink(missing_ok=True)
    for name in (*PROTOCOL_FILES, MARKER):
        _tmp(out / name).unlink(missing_ok=True)


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary name next to ``path``, flush it to disk, rename it to ``path``."""
    tmp = _tmp(path)
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def csv_bytes(df: pd.DataFrame) -> bytes:
    """The bytes ``df.to_csv(path, index=False)`` would write."""
    return df.to_csv(index=False, lineterminator="\n").encode("utf-8")


def publish(out: str | os.PathLike, dataset: str, files: dict[str, tuple[bytes, int | None]]) -> None:
    """Write every :data:`PROTOCOL_FILES` entry of ``files`` (name -> (bytes, rows)) atomically, then the marker."""
    out = Path(out)
    missing = [n for n in PROTOCOL_FILES if n not in files]
    if missing:
        raise ValueError(f"publish: protocol files {missing} not given")
    for name in PROTOCOL_FILES:
        write_atomic(out / name, files[name][0])
    marker = {
        "dataset": dataset,
        "files": {n: {"bytes": len(files[n][0]), "rows": files[n][1]} for n in PROTOCOL_FILES},
    }
    write_atomic(out / MARKER, (json.dumps(marker, indent=2) + "\n").encode("utf-8"))
    try:  # the renames themselves reach the disk
        fd = os.open(out, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        pass


def is_complete(out: str | os.PathLike) -> bool:
    """Whether ``out`` holds the marker of a finished prepare (contents not checked)."""
    return (Path(out) / MARKER).is_file()


def recreate_command(out: str | os.PathLike, dataset: str | None = None) -> str:
    """The command that (re)makes ``out``, with ``--root`` when summary.json still says where the raw data is."""
    out = Path(out)
    root = None
    try:
        summary = json.loads((out / "summary.json").read_text())
        dataset = dataset or summary.get("dataset")
        root = summary.get("settings", {}).get("root")
    except (OSError, ValueError, AttributeError):
        pass
    cmd = f"dynamic-mtl prepare {dataset or '|'.join(DATASETS)}"
    if dataset in DATASETS and DATASETS[dataset].needs_raw_root:
        cmd += f" --root {root or '/path/to/raw/' + dataset}"
    return f"{cmd} --out {out}"


def _hint(out: Path, dataset: str | None) -> str:
    return f"run `{recreate_command(out, dataset)}` (with the options it was first prepared with)"


def require_complete(out: str | os.PathLike, dataset: str | None = None) -> dict[str, Any]:
    """Return ``summary.json`` of a complete prepared dataset; otherwise raise :class:`IncompleteDatasetError`.

    Complete: the marker exists and every file it lists has the size it recorded.
    """
    out = Path(out)
    how = _hint(out, dataset)
    if not out.is_dir():
        raise IncompleteDatasetError(f"{out} is not a prepared dataset (no such folder): {how}")
    marker_p = out / MARKER
    if not marker_p.is_file():
        missing = [n for n in PROTOCOL_FILES if not (out / n).is_file()]
        what = f"{missing} and the {MARKER} marker are missing" if missing else f"the {MARKER} marker is missing"
        raise IncompleteDatasetError(
            f"{out} is not a complete prepared dataset ({what}: its prepare was interrupted "
            f"or made by an older version): {how}"
        )
    try:
        marker = json.loads(marker_p.read_text())
        listed = dict(marker["files"])
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise IncompleteDatasetError(f"{marker_p} is unreadable ({err}): {how}") from err
    for name in PROTOCOL_FILES:
        p = out / name
        if name not in listed or not p.is_file():
            raise IncompleteDatasetError(f"{out}: {name} is missing or not listed in {MARKER}: {how}")
        size = p.stat().st_size
        if size != listed[name].get("bytes"):
            raise IncompleteDatasetError(
                f"{out}: {name} has {size} bytes, {listed[name].get('bytes')} when it was "
                f"prepared (changed since): {how}"
            )
    try:
        return json.loads((out / "summary.json").read_text())
    except (OSError, ValueError) as err:
        raise IncompleteDatasetError(f"{out}/summary.json is unreadable ({err}): {how}") from err


def check_counts(
    out: str | os.PathLike,
    summary: dict[str, Any],
    manifest: pd.DataFrame,
    folds: pd.DataFrame,
    pairs: pd.DataFrame,
    rejects: pd.DataFrame | None = None,
) -> None:
    """Raise :class:`IncompleteDatasetError` unless the tables match ``summary.json``.

    Checked: manifest rows = ``images``; subjects per fold = ``folds.subjects_per_fold``; pairs per
    fold = ``pairs.by_fold`` (and ``pairs.total``); rejects rows = ``rejects`` (when given).
    """

    def per_fold(series: pd.Series) -> dict[int, int]:
        return {int(k): int(v) for k, v in series.value_counts().items()}

    def as_ints(d: dict) -> dict[int, int]:
        return {int(k): int(v) for k, v in d.items() if int(v)}

    problems = []
    try:
        if len(manifest) != summary["images"]:
            problems.append(f"manifest.csv has {len(manifest)} rows, summary.json says {summary['images']} images")
        want = as_ints(summary["folds"]["subjects_per_fold"])
        have = per_fold(folds["fold"])
        if have != want:
            problems.append(f"folds.csv has subjects per fold {have}, summary.json says {want}")
        want = as_ints(summary["pairs"]["by_fold"])
        have = per_fold(pairs["fold"])
        for fold in sorted(set(want) | set(have)):
            if have.get(fold, 0) != want.get(fold, 0):
                problems.append(
                    f"pairs.csv has {have.get(fold, 0)} pairs in fold {fold}, summary.json says {want.get(fold, 0)}"
                )
        if len(pairs) != summary["pairs"]["total"]:
            problems.append(f"pairs.csv has {len(pairs)} rows, summary.json says {summary['pairs']['total']}")
        if rejects is not None and len(rejects) != summary["rejects"]:
            problems.append(f"rejects.csv has {len(rejects)} rows, summary.json says {summary['rejects']}")
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        problems.append(f"summary.json lacks the counts to check ({type(err).__name__}: {err})")
    if problems:
        dataset = summary.get("dataset") if isinstance(summary, dict) else None
        more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
        raise IncompleteDatasetError(
            f"{out}: {problems[0]}{more}; the dataset is half-made or was changed: {_hint(Path(out), dataset)}"
        )
