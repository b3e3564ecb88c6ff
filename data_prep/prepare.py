"""Dataset preparation: raw data -> aligned crops + manifest, rejects, folds, pairs, summary.

Each ``prepare_*`` writes into ``out/``:

* ``aligned/...``   aligned crops (PNG);
* ``manifest.csv``  one row per usable image: path (relative to out), subject, sequence, frame, role
  (neutral/peak), expression (class index), expression_name, aligned, aligner, box, confidence,
  num_faces, note, source (raw path relative to the dataset root);
* ``rejects.csv``   source, reason, detail (images and sequences that could not be used);
* ``folds.csv``     subject, fold (10 subject-independent folds by default);
* ``pairs.csv``     verification pairs (see :mod:`data_prep.pairs`);
* ``summary.json``  counts (images, subjects, sequences, by expression, rejects by reason, notes,
  pairs by kind and fold, ``inputs``: every image file under the raw root by fate), expression class
  names, settings (including ``alignment`` and ``alignment_detail``), seconds;
* ``COMPLETE``      written last (:mod:`data_prep.publish`): the protocol files are computed in memory,
  written under temporary names and renamed, so an interrupted prepare leaves a folder that
  loading refuses until a rerun completes it.

Options are checked before any image is generated or aligned (folds vs subjects, alignment settings
of a resumed log, synthfaces settings of a resumed folder), so a refused call changes nothing.

CK+ and Oulu-CASIA go through MTCNN (:mod:`data_prep.mtcnn_align`) with the alignment chosen by
``alignment`` (default ``"box"``, the authors' crop; see :data:`data_prep.align.ALIGNMENTS`);
synthfaces uses the crops its generator aligned with the ground-truth eyes (``template``).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .align import DEFAULT_ALIGNMENT, DEFAULT_CROP_SIZE, DEFAULT_MARGIN, get_alignment
from .folds import assign_folds
from .labels import CKPLUS_EXPRESSIONS, OULU_EXPRESSIONS_6, OULU_EXPRESSIONS_7
from .pairs import PAIR_COLUMNS, make_pairs, pair_counts
from .publish import IncompleteDatasetError, csv_bytes, publish, recreate_command, unpublish
from .readers_common import SEQUENCE_REASONS

MANIFEST_COLUMNS = (
    "path",
    "subject",
    "sequence",
    "frame",
    "role",
    "expression",
    "expression_name",
    "aligned",
    "aligner",
    "box",
    "confidence",
    "num_faces",
    "note",
    "source",
)


def read_manifest(out: str | os.PathLike) -> pd.DataFrame:
    """Read ``out/manifest.csv`` with subject/sequence as strings."""
    p = Path(out) / "manifest.csv"
    if not p.is_file():
        raise FileNotFoundError(f"{p} not found: run `dynamic-mtl prepare synthfaces|ckplus|oulu --out {out}`")
    try:
        return pd.read_csv(
            p,
            dtype={"subject": str, "sequence": str, "path": str, "box": str, "note": str, "source": str},
            keep_default_na=False,
            na_values={"confidence": [""]},
        )
    except (ValueError, UnicodeDecodeError) as err:  # empty or torn file (pandas' parser errors are ValueErrors)
        raise IncompleteDatasetError(
            f"{p} is unreadable ({type(err).__name__}: {str(err).splitlines()[0]}): run `{recreate_command(out)}`"
        ) from err


def check_folds(subjects, num_folds: int, seed: int = 0) -> None:
    """Raise ValueError (one line) unless ``subjects`` can be split into ``num_folds`` folds (>= 2)."""
    assign_folds(subjects, num_folds, seed)


def _account(
    reader_inputs: dict[str, Any] | None, manifest: pd.DataFrame, rejects: pd.DataFrame
) -> dict[str, Any] | None:
    """``summary.json: inputs``; raises if the image files under the root do not add up (nothing dropped unseen)."""
    if reader_inputs is None:
        return None
    f = reader_inputs["files"]
    files = {
        "manifest": int(len(manifest)),
        "rejected": int((~rejects["reason"].isin(SEQUENCE_REASONS)).sum()),
        "in_rejected_sequences": f["in_rejected_sequences"],
        "not_protocol_frames": f["not_protocol_frames"],
        "in_unlabelled_sequences": f["in_unlabelled_sequences"],
        "hidden": f["hidden"],
    }
    if sum(files.values()) != reader_inputs["image_files"]:
        raise RuntimeError(
            f"{reader_inputs['image_files']} image files under the raw root but "
            f"{sum(files.values())} accounted for ({files}): a bug, please report it"
        )
    return {"image_files": reader_inputs["image_files"], "files": files, "sequences": reader_inputs["sequences"]}


def _finish(
    out: Path,
    dataset: str,
    manifest: pd.DataFrame,
    rejects: pd.DataFrame,
    classes: dict[int, str],
    num_folds: int,
    seed: int,
    settings: dict[str, Any],
    t0: float,
    extra: dict | None = None,
    reader_inputs: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Compute every protocol file in memory, then publish them atomically with the marker last."""
    manifest = manifest[list(MANIFEST_COLUMNS)].sort_values(["subject", "sequence", "frame"], kind="stable")
    manifest = manifest.reset_index(drop=True)
    shared = manifest["path"][manifest["path"].duplicated()]
    if len(shared):
        raise RuntimeError(
            f"{dataset}: {len(shared)} manifest rows share an aligned crop, e.g. {shared.iloc[0]}: "
            f"a bug, please report it"
        )
    rejects = rejects.reindex(columns=["source", "reason", "detail"]).fillna("")
    rejects = rejects.sort_values(["source", "reason"], kind="stable").reset_index(drop=True)
    folds = assign_folds(manifest["subject"], num_folds, seed)
    pairs = make_pairs(manifest, folds, seed=seed)
    inputs = _account(reader_inputs, manifest, rejects)
    notes = manifest["note"].fillna("").astype(str)
    summary = {
        "dataset": dataset,
        "images": int(len(manifest)),
        "subjects": int(manifest["subject"].nunique()),
        "sequences": int(manifest.groupby(["subject", "sequence"]).ngroups),
        "by_role": {k: int(v) for k, v in manifest["role"].value_counts().sort_index().items()},
        "by_expression": {k: int(v) for k, v in manifest["expression_name"].value_counts().sort_index().items()},
        "expression_classes": [classes[k] for k in sorted(classes)],
        "rejects": int(len(rejects)),
        "rejects_by_reason": {k: int(v) for k, v in rejects["reason"].value_counts().sort_index().items()},
        "notes": {
            k: int(v)
            for k, v in pd.Series([n.split(":")[0] for s in notes for n in s.split(";") if n], dtype=str)
            .value_counts()
            .sort_index()
            .items()
        },
        "folds": {
            "num_folds": num_folds,
            "seed": seed,
            "subjects_per_fold": {int(k): int(v) for k, v in folds["fold"].value_counts().sort_index().items()},
        },
        "pairs": pair_counts(pairs),
        "settings": settings,
        "seconds": round(time.perf_counter() - t0, 2),
    }
    if inputs is not None:
        summary["inputs"] = inputs
    if extra:
        summary.update(extra)
    publish(
        out,
        dataset,
        {
            "manifest.csv": (csv_bytes(manifest), len(manifest)),
            "rejects.csv": (csv_bytes(rejects), len(rejects)),
            "folds.csv": (csv_bytes(folds[["subject", "fold"]]), len(folds)),
            "pairs.csv": (csv_bytes(pairs[list(PAIR_COLUMNS)]), len(pairs)),
            "summary.json": (json.dumps(summary, indent=2, default=str).encode("utf-8"), None),
        },
    )
    return summary


def _check_synth_settings(out: Path, cfg) -> None:
    """Refuse to generate into a folder that holds synthfaces made with other settings (they would mix)."""
    f = out / "synthfaces.json"
    if not f.is_file():
        return
    try:
        have = json.loads(f.read_text())["config"]
    except (OSError, ValueError, KeyError, TypeError):
        return  # an unreadable record: the generator rewrites every file of these settings anyway
    want = json.loads(json.dumps(cfg.__dict__))
    diff = [f"{k}={have.get(k)!r}, now {v!r}" for k, v in want.items() if have.get(k) != v]
    if diff:
        raise ValueError(
            f"{out} holds synthfaces generated with other settings ({'; '.join(diff)}): "
            f"use the same settings or a new --out"
        )


def prepare_synthfaces(
    out: str | os.PathLike,
    num_identities: int = 80,
    seed: int = 0,
    image_size: int = 64,
    sequences_per_identity: int = 6,
    frames_per_sequence: int = 8,
    num_folds: int = 10,
    workers: int | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Generate synthfaces into ``out`` (CK+ layout + aligned crops) and write the protocol files.

    The raw tree is read back with the CK+ reader (so the CK+ code path is exercised); crops were
    aligned by the generator on ground-truth eye positions (``aligner = "synthetic"``).
    """
    from .ckplus import read_ckplus
    from .synthfaces import SynthConfig, generate, subject_name

    t0 = time.perf_counter()
    out_p = Path(out)
    cfg = SynthConfig(
        num_identities=num_identities,
        sequences_per_identity=sequences_per_identity,
        frames_per_sequence=frames_per_sequence,
        image_size=image_size,
        seed=seed,
    )
    check_folds([subject_name(i) for i in range(num_identities)], num_folds, seed)
    _check_synth_settings(out_p, cfg)
    unpublish(out_p)
    gen = generate(out_p, cfg, workers=workers, progress=progress)
    frames = read_ckplus(out_p)
    aligned = pd.read_csv(out_p / "aligned_frames.csv", dtype={"subject": str, "sequence": str})
    src_to_path = dict(zip(aligned["raw_path"].str.replace("cohn-kanade-images/", "", n=1), aligned["path"]))
    m = frames.copy()
    m["path"] = m["source"].map(src_to_path)
    missing = m[m["path"].isna()]
    if len(missing):
        raise RuntimeError(
            f"synthfaces: {len(missing)} protocol frames have no aligned crop, e.g. {missing['source'].iloc[0]}"
        )
    m["source"] = "cohn-kanade-images/" + m["source"]
    m = m.assign(aligned=True, aligner="synthetic", box="", confidence=np.nan, num_faces=1, note="")
    rejects = _reader_rejects(frames)
    return _finish(
        out_p,
        "synthfaces",
        m,
        rejects,
        CKPLUS_EXPRESSIONS,
        num_folds,
        seed,
        {
            "num_identities": num_identities,
            "image_size": image_size,
            "seed": seed,
            "alignment": "template",
            "alignment_detail": "synthetic: "
            + get_alignment("template").describe(image_size, cfg.margin)
            + " (ground-truth eyes plus landmark noise)",
            "sequences_per_identity": sequences_per_identity,
            "frames_per_sequence": frames_per_sequence,
        },
        t0,
        {"generation_seconds": gen["seconds"], "raw_frames": gen["raw_frames"]},
        frames.attrs.get("inputs"),
    )


def _reader_rejects(frames: pd.DataFrame) -> pd.DataFrame:
    """The reader's reject rows: sequences and files it skipped, image files outside the layout."""
    rows = list(frames.attrs.get("skipped", [])) + list(frames.attrs.get("stray", []))
    return pd.DataFrame(rows, columns=["source", "reason", "detail"])


def _drop_duplicate_sources(frames: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Frames whose raw file is the same file as an earlier frame's (links) become ``duplicate_file`` rejects."""
    first = dict(zip(frames["raw_path"][::-1], frames["source"][::-1]))
    dup = frames["raw_path"].duplicated()
    rejects = pd.DataFrame(
        {
            "source": frames.loc[dup, "source"],
            "reason": "duplicate_file",
            "detail": [f"same file as {first[r]}" for r in frames.loc[dup, "raw_path"]],
        },
        columns=["source", "reason", "detail"],
    )
    kept = frames[~dup].copy()
    kept.attrs = frames.attrs
    return kept, rejects


def _prepare_raw(
    frames: pd.DataFrame,
    out: Path,
    dataset: str,
    classes: dict[int, str],
    num_folds: int,
    seed: int,
    align_cfg,
    workers: int,
    progress: bool,
    settings: dict,
    t0: float,
    detector=None,
) -> dict[str, Any]:
    from .mtcnn_align import align_files, check_settings

    log_dir = out / "align_log"  # resumable per-image logs (absolute sources)
    check_folds(frames["subject"], num_folds, seed)  # before any image is aligned
    check_settings(log_dir, align_cfg)  # before anything changes: a refused resume leaves the folder as it was
    unpublish(out)
    frames, duplicates = _drop_duplicate_sources(frames)
    items = [
        (rp, "aligned/" + Path(src).with_suffix(".png").as_posix())
        for rp, src in zip(frames["raw_path"], frames["source"])
    ]
    crops = pd.Series([o for _, o in items], dtype=str)
    if crops.duplicated().any():  # list_frames rejects duplicate frame numbers, so this is a bug
        raise RuntimeError(
            f"two inputs map to one aligned crop {crops[crops.duplicated()].iloc[0]}: a bug, please report it"
        )
    stats = align_files(items, out, align_cfg, workers=workers, detector=detector, progress=progress, log_dir=log_dir)
    ali = _read_log(log_dir / "aligned.csv", ["source", "out_path", "box", "confidence", "num_faces", "note"])
    rej = _read_log(log_dir / "rejects.csv", ["source", "reason", "detail"])
    ali = ali.drop_duplicates("source", keep="last").set_index("source")
    m = frames[frames["raw_path"].isin(ali.index)].copy()
    a = ali.loc[m["raw_path"]]
    m["path"] = a["out_path"].to_numpy()
    m["box"] = a["box"].to_numpy()
    m["confidence"] = a["confidence"].astype(float).to_numpy()
    m["num_faces"] = a["num_faces"].astype(int).to_numpy()
    m["note"] = a["note"].to_numpy()
    m = m.assign(aligned=True, aligner="mtcnn")
    # Rejects of this dataset's images (sources relative to the root) + sequences the reader skipped.
    rel = dict(zip(frames["raw_path"], frames["source"]))
    rej = rej[rej["source"].isin(rel) & ~rej["source"].isin(ali.index)].drop_duplicates("source", keep="last")
    rej = rej.assign(source=rej["source"].map(rel))
    rejects = pd.concat(
        [df for df in (rej, _reader_rejects(frames), duplicates) if len(df)] or [rej], ignore_index=True
    )
    return _finish(
        out,
        dataset,
        m,
        rejects,
        classes,
        num_folds,
        seed,
        settings,
        t0,
        {"alignment_this_run": stats},
        frames.attrs.get("inputs"),
    )


def _align_settings(cfg) -> dict[str, Any]:
    return {
        "alignment": cfg.alignment,
        "alignment_detail": get_alignment(cfg.alignment).describe(cfg.image_size, cfg.margin),
    }


def _read_log(path: Path, columns: list[str]) -> pd.DataFrame:
    if path.exists() and path.stat().st_size:
        return pd.read_csv(path, dtype=str, keep_default_na=False)
    return pd.DataFrame(columns=columns, dtype=str)


def _prepare_from_raw(
    dataset: str,
    read,
    root: str | os.PathLike,
    out: str | os.PathLike,
    classes: dict[int, str],
    reader_settings: dict[str, Any],
    *,
    image_size: int,
    margin: float,
    min_confidence: float,
    multi_face: str,
    convert_channels: bool,
    num_folds: int,
    seed: int,
    workers: int,
    batch_size: int,
    progress: bool,
    detector,
    alignment: str,
) -> dict[str, Any]:
    """The steps every raw dataset shares: ``read(root)`` its frame table, MTCNN-align the protocol
    frames and publish the protocol files, with ``summary.json``'s settings (``root``, the reader's
    own settings, then the alignment's)."""
    from .mtcnn_align import AlignConfig

    t0 = time.perf_counter()
    cfg = AlignConfig(
        image_size=image_size,
        margin=margin,
        min_confidence=min_confidence,
        multi_face=multi_face,
        convert_channels=convert_channels,
        batch_size=batch_size,
        alignment=alignment,
    )
    frames = read(root)
    settings = {
        "root": str(Path(root).resolve()),
        **reader_settings,
        "image_size": image_size,
        "margin": margin,
        "min_confidence": min_confidence,
        "multi_face": multi_face,
        "convert_channels": convert_channels,
        **_align_settings(cfg),
    }
    return _prepare_raw(
        frames, Path(out), dataset, classes, num_folds, seed, cfg, workers, progress, settings, t0, detector
    )


def prepare_ckplus(
    root: str | os.PathLike,
    out: str | os.PathLike,
    image_size: int = DEFAULT_CROP_SIZE,
    margin: float = DEFAULT_MARGIN,
    min_confidence: float = 0.9,
    multi_face: str = "largest",
    convert_channels: bool = True,
    num_folds: int = 10,
    seed: int = 0,
    workers: int = 1,
    batch_size: int = 16,
    progress: bool = True,
    detector=None,
    alignment: str = DEFAULT_ALIGNMENT,
) -> dict[str, Any]:
    """CK+: read labelled sequences (first + last 3 frames), MTCNN-align, write the protocol files.

    ``alignment``: ``"box"`` (authors' crop, ``margin`` in source pixels) or ``"template"``.
    """
    from .ckplus import read_ckplus

    return _prepare_from_raw(
        "ckplus",
        read_ckplus,
        root,
        out,
        CKPLUS_EXPRESSIONS,
        {},
        image_size=image_size,
        margin=margin,
        min_confidence=min_confidence,
        multi_face=multi_face,
        convert_channels=convert_channels,
        num_folds=num_folds,
        seed=seed,
        workers=workers,
        batch_size=batch_size,
        progress=progress,
        detector=detector,
        alignment=alignment,
    )


def prepare_oulu(
    root: str | os.PathLike,
    out: str | os.PathLike,
    spectrum: str = "VL",
    illumination: str = "Strong",
    classes: int = 6,
    image_size: int = DEFAULT_CROP_SIZE,
    margin: float = DEFAULT_MARGIN,
    min_confidence: float = 0.9,
    multi_face: str = "largest",
    convert_channels: bool = True,
    num_folds: int = 10,
    seed: int = 0,
    workers: int = 1,
    batch_size: int = 16,
    progress: bool = True,
    detector=None,
    alignment: str = DEFAULT_ALIGNMENT,
) -> dict[str, Any]:
    """Oulu-CASIA (default VL / Strong, 6 classes): read, MTCNN-align, write the protocol files.

    ``alignment``: ``"box"`` (authors' crop, ``margin`` in source pixels) or ``"template"``.
    """
    from .oulu import read_oulu

    return _prepare_from_raw(
        "oulu",
        lambda r: read_oulu(r, spectrum, illumination, classes),
        root,
        out,
        OULU_EXPRESSIONS_6 if classes == 6 else OULU_EXPRESSIONS_7,
        {"spectrum": spectrum, "illumination": illumination, "classes": classes},
        image_size=image_size,
        margin=margin,
        min_confidence=min_confidence,
        multi_face=multi_face,
        convert_channels=convert_channels,
        num_folds=num_folds,
        seed=seed,
        workers=workers,
        batch_size=batch_size,
        progress=progress,
        detector=detector,
        alignment=alignment,
    )
