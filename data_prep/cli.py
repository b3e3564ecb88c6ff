"""``dynamic-mtl prepare <dataset>`` (registered by experiments/cli.py; datasets: data_prep/datasets.py)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import datasets


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise ValueError(message)


def _fail(a: argparse.Namespace, err: Exception) -> int:
    print(f"dynamic-mtl prepare {a.dataset}: error: {err}", file=sys.stderr)
    return 2


def check_common(a: argparse.Namespace) -> None:
    """Inputs of every ``prepare`` sub-command, checked before any work; raises ``ValueError``."""
    _require(not Path(a.out).is_file(), f"--out {a.out} is a file, not a directory")
    _require(a.num_folds >= 2, f"--num-folds must be >= 2, got {a.num_folds}")
    _require(a.image_size >= 16, f"--image-size must be >= 16, got {a.image_size}")
    _require(a.workers is None or a.workers >= 1, f"--workers must be >= 1, got {a.workers}")


def check_synthfaces(a: argparse.Namespace) -> None:
    check_common(a)
    _require(
        a.num_identities >= a.num_folds,
        f"--num-identities {a.num_identities} cannot fill --num-folds {a.num_folds} subject-independent folds",
    )
    _require(1 <= a.sequences <= 7, f"--sequences must lie in 1-7 (one per expression), got {a.sequences}")
    _require(a.frames >= 2, f"--frames must be >= 2 (neutral to peak), got {a.frames}")
    _require(
        a.contact_sheet is None or Path(a.contact_sheet).resolve().parent.is_dir(),
        f"--contact-sheet {a.contact_sheet}: its directory does not exist",
    )


def check_raw(a: argparse.Namespace) -> None:
    check_common(a)
    root, out = Path(a.root), Path(a.out)
    _require(root.is_dir(), f"--root {a.root}: no such directory (the raw dataset)")
    _require(out.resolve() != root.resolve(), "--out must not be the raw dataset's --root")
    _require(a.margin >= 0, f"--margin must be >= 0, got {a.margin}")
    _require(0.0 <= a.min_confidence <= 1.0, f"--min-confidence must lie in [0, 1], got {a.min_confidence}")
    _require(a.batch_size >= 1, f"--batch-size must be >= 1, got {a.batch_size}")


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--out",
        required=True,
        help="output directory (aligned/, manifest.csv, rejects.csv, folds.csv, pairs.csv, summary.json)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the folds and pairs (default 0)")
    p.add_argument("--num-folds", type=int, default=10, help="subject-independent folds (default 10)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _raw(p: argparse.ArgumentParser) -> None:
    from .align import ALIGNMENTS, DEFAULT_ALIGNMENT, DEFAULT_CROP_SIZE, DEFAULT_MARGIN

    p.add_argument("--root", required=True, help="root of the raw dataset")
    p.add_argument(
        "--alignment",
        choices=tuple(ALIGNMENTS),
        default=DEFAULT_ALIGNMENT,
        help="how the detected face is cropped, with the default size and margin: "
        + "; ".join(f"{k}: {a.describe(DEFAULT_CROP_SIZE, DEFAULT_MARGIN)}" for k, a in ALIGNMENTS.items()).replace(
            "%", "%%"
        )
        + f" (default {DEFAULT_ALIGNMENT}; see docs/data.md)",
    )
    p.add_argument(
        "--image-size",
        type=int,
        default=DEFAULT_CROP_SIZE,
        help=f"aligned crop size (default {DEFAULT_CROP_SIZE}, authors')",
    )
    p.add_argument(
        "--margin",
        type=float,
        default=DEFAULT_MARGIN,
        help=f"margin (default {DEFAULT_MARGIN}, authors'); "
        + "; ".join(f"{k}: {a.margin_unit}" for k, a in ALIGNMENTS.items()),
    )
    p.add_argument(
        "--min-confidence", type=float, default=0.9, help="faces below are rejected as low_confidence (default 0.9)"
    )
    p.add_argument(
        "--multi-face",
        choices=("largest", "reject"),
        default="largest",
        help="several faces: keep the main one and note it (default) or reject the image",
    )
    p.add_argument(
        "--reject-non-rgb", action="store_true", help="reject grayscale/RGBA inputs instead of converting them"
    )
    p.add_argument("--workers", type=int, default=1, help="MTCNN processes (each ~600 MB; default 1)")
    p.add_argument("--batch-size", type=int, default=16, help="images per MTCNN call (default 16)")


def _print(summary: dict) -> int:
    keys = ("dataset", "images", "subjects", "sequences", "rejects", "rejects_by_reason", "notes", "seconds")
    print(
        json.dumps(
            {k: summary[k] for k in keys if k in summary}
            | {"pairs": summary["pairs"]["total"], "pairs_by_kind": summary["pairs"]["by_kind"]},
            indent=2,
        )
    )
    return 0


def _run_synthfaces(a: argparse.Namespace) -> int:
    try:
        check_synthfaces(a)
    except ValueError as err:
        return _fail(a, err)
    from .prepare import prepare_synthfaces

    if a.contact_sheet:
        from .synthfaces import contact_sheet

        print(f"contact sheet: {contact_sheet(a.contact_sheet, seed=a.seed)}")
    return _print(
        prepare_synthfaces(
            a.out,
            num_identities=a.num_identities,
            seed=a.seed,
            image_size=a.image_size,
            sequences_per_identity=a.sequences,
            frames_per_sequence=a.frames,
            num_folds=a.num_folds,
            workers=a.workers,
            progress=not a.quiet,
        )
    )


def _raw_kwargs(a: argparse.Namespace) -> dict:
    return dict(
        alignment=a.alignment,
        image_size=a.image_size,
        margin=a.margin,
        min_confidence=a.min_confidence,
        multi_face=a.multi_face,
        convert_channels=not a.reject_non_rgb,
        num_folds=a.num_folds,
        seed=a.seed,
        workers=a.workers,
        batch_size=a.batch_size,
        progress=not a.quiet,
    )


def _run_raw(a: argparse.Namespace) -> int:
    """``prepare <dataset>`` of a raw dataset: its prepare function with the common raw options and
    its own (:attr:`data_prep.datasets.DatasetSpec.cli_options`)."""
    try:
        check_raw(a)
    except ValueError as err:
        return _fail(a, err)
    from .mtcnn_align import AlignSettingsError

    spec = datasets.get(a.dataset)
    own = {option.dest: getattr(a, option.dest) for option in spec.cli_options}
    try:
        return _print(spec.prepare_function()(a.root, a.out, **own, **_raw_kwargs(a)))
    except AlignSettingsError as err:
        return _fail(a, err)


def register(subparsers) -> None:
    """Add ``prepare`` with one sub-command per dataset of data_prep/datasets.py (synthfaces's
    generator options are its own; a raw dataset gets the MTCNN options and its ``cli_options``)."""
    prep = subparsers.add_parser(
        "prepare",
        help="prepare a dataset (aligned crops, manifest, folds, pairs)",
        description="Prepare a dataset: aligned crops, manifest.csv, rejects.csv, "
        "folds.csv, pairs.csv, summary.json. See docs/data.md.",
    )
    sub = prep.add_subparsers(dest="dataset", metavar="DATASET")
    sub.required = True

    synthfaces = datasets.get("synthfaces")
    s = sub.add_parser(synthfaces.name, help=synthfaces.help)
    _common(s)
    s.add_argument("--num-identities", type=int, default=80, help="identities (default 80)")
    s.add_argument("--image-size", type=int, default=64, help="aligned crop size (default 64)")
    s.add_argument("--sequences", type=int, default=6, help="sequences (expressions) per identity, 1-7 (default 6)")
    s.add_argument("--frames", type=int, default=8, help="frames per sequence, neutral to peak (default 8)")
    s.add_argument("--workers", type=int, default=None, help="generator processes (default min(4, CPUs))")
    s.add_argument(
        "--contact-sheet",
        metavar="PNG",
        default=None,
        help="also write a contact sheet (identities x expressions), e.g. docs/images/synthfaces_contact_sheet.png",
    )
    s.set_defaults(func=_run_synthfaces)

    for spec in datasets.DATASETS.values():
        if not spec.needs_raw_root:
            continue
        p = sub.add_parser(spec.name, help=spec.help)
        _common(p)
        _raw(p)
        for option in spec.cli_options:
            p.add_argument(option.flag, dest=option.dest, **option.kwargs)
        p.set_defaults(func=_run_raw)
