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
  pairs by kind and fold), expression class names, settings (including ``alignment`` and
  ``alignment_detail``), seconds.

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
from .folds import assign_folds, write_folds
from .labels import CKPLUS_EXPRESSIONS, OULU_EXPRESSIONS_6, OULU_EXPRESSIONS_7
from .pairs import make_pairs, pair_counts, write_pairs

MANIFEST_COLUMNS = ("path", "subject", "sequence", "frame", "role", "expression", "expression_name",
                    "aligned", "aligner", "box", "confidence", "num_faces", "note", "source")


def read_manifest(out: str | os.PathLike) -> pd.DataFrame:
    """Read ``out/manifest.csv`` with subject/sequence as strings."""
    p = Path(out) / "manifest.csv"
    if not p.is_file():
        raise FileNotFoundError(f"{p} not found: run `dynamic-mtl prepare synthfaces|ckplus|oulu --out {out}`")
    return pd.read_csv(p, dtype={"subject": str, "sequence": str, "path": str, "box": str, "note": str,
                                 "source": str}, keep_default_na=False, na_values={"confidence": [""]})


def _finish(out: Path, dataset: str, manifest: pd.DataFrame, rejects: pd.DataFrame, classes: dict[int, str],
            num_folds: int, seed: int, settings: dict[str, Any], t0: float, extra: dict | None = None
            ) -> dict[str, Any]:
    manifest = manifest[list(MANIFEST_COLUMNS)].sort_values(["subject", "sequence", "frame"], kind="stable")
    manifest = manifest.reset_index(drop=True)
    manifest.to_csv(out / "manifest.csv", index=False)
    rejects = rejects.reindex(columns=["source", "reason", "detail"])
    rejects.to_csv(out / "rejects.csv", index=False)
    folds = assign_folds(manifest["subject"], num_folds, seed)
    write_folds(folds, out / "folds.csv")
    pairs = make_pairs(manifest, folds, seed=seed)
    write_pairs(pairs, out / "pairs.csv")
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
        "notes": {k: int(v) for k, v in pd.Series([n.split(":")[0] for s in notes for n in s.split(";") if n],
                                                  dtype=str).value_counts().sort_index().items()},
        "folds": {"num_folds": num_folds, "seed": seed,
                  "subjects_per_fold": {int(k): int(v) for k, v in folds["fold"].value_counts().sort_index().items()}},
        "pairs": pair_counts(pairs),
        "settings": settings,
        "seconds": round(time.perf_counter() - t0, 2),
    }
    if extra:
        summary.update(extra)
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    return summary


def prepare_synthfaces(out: str | os.PathLike, num_identities: int = 80, seed: int = 0, image_size: int = 64,
                       sequences_per_identity: int = 6, frames_per_sequence: int = 8, num_folds: int = 10,
                       workers: int | None = None, progress: bool = True) -> dict[str, Any]:
    """Generate synthfaces into ``out`` (CK+ layout + aligned crops) and write the protocol files.

    The raw tree is read back with the CK+ reader (so the CK+ code path is exercised); crops were
    aligned by the generator on ground-truth eye positions (``aligner = "synthetic"``).
    """
    from .ckplus import read_ckplus
    from .synthfaces import SynthConfig, generate

    t0 = time.perf_counter()
    out_p = Path(out)
    cfg = SynthConfig(num_identities=num_identities, sequences_per_identity=sequences_per_identity,
                      frames_per_sequence=frames_per_sequence, image_size=image_size, seed=seed)
    gen = generate(out_p, cfg, workers=workers, progress=progress)
    frames = read_ckplus(out_p)
    aligned = pd.read_csv(out_p / "aligned_frames.csv", dtype={"subject": str, "sequence": str})
    src_to_path = dict(zip(aligned["raw_path"].str.replace("cohn-kanade-images/", "", n=1), aligned["path"]))
    m = frames.copy()
    m["path"] = m["source"].map(src_to_path)
    missing = m[m["path"].isna()]
    if len(missing):
        raise RuntimeError(f"synthfaces: {len(missing)} protocol frames have no aligned crop, "
                           f"e.g. {missing['source'].iloc[0]}")
    m["source"] = "cohn-kanade-images/" + m["source"]
    m = m.assign(aligned=True, aligner="synthetic", box="", confidence=np.nan, num_faces=1, note="")
    rejects = pd.DataFrame(frames.attrs.get("skipped", []), columns=["source", "reason", "detail"])
    return _finish(out_p, "synthfaces", m, rejects, CKPLUS_EXPRESSIONS, num_folds, seed,
                   {"num_identities": num_identities, "image_size": image_size, "seed": seed,
                    "alignment": "template", "alignment_detail": "synthetic: "
                    + get_alignment("template").describe(image_size, cfg.margin)
                    + " (ground-truth eyes plus landmark noise)",
                    "sequences_per_identity": sequences_per_identity,
                    "frames_per_sequence": frames_per_sequence}, t0,
                   {"generation_seconds": gen["seconds"], "raw_frames": gen["raw_frames"]})


def _prepare_raw(frames: pd.DataFrame, out: Path, dataset: str, classes: dict[int, str], num_folds: int,
                 seed: int, align_cfg, workers: int, progress: bool, settings: dict, t0: float,
                 detector=None) -> dict[str, Any]:
    from .mtcnn_align import align_files

    log_dir = out / "align_log"   # resumable per-image logs (absolute sources)
    items = [(rp, "aligned/" + Path(src).with_suffix(".png").as_posix())
             for rp, src in zip(frames["raw_path"], frames["source"])]
    stats = align_files(items, out, align_cfg, workers=workers, detector=detector, progress=progress,
                        log_dir=log_dir)
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
    skipped = pd.DataFrame(frames.attrs.get("skipped", []), columns=["source", "reason", "detail"])
    rejects = pd.concat([rej, skipped], ignore_index=True)
    return _finish(out, dataset, m, rejects, classes, num_folds, seed, settings, t0,
                   {"alignment_this_run": stats})


def _align_settings(cfg) -> dict[str, Any]:
    return {"alignment": cfg.alignment, "alignment_detail": get_alignment(cfg.alignment).describe(cfg.image_size,
                                                                                                    cfg.margin)}


def _read_log(path: Path, columns: list[str]) -> pd.DataFrame:
    if path.exists() and path.stat().st_size:
        return pd.read_csv(path, dtype=str, keep_default_na=False)
    return pd.DataFrame(columns=columns, dtype=str)


def prepare_ckplus(root: str | os.PathLike, out: str | os.PathLike, image_size: int = DEFAULT_CROP_SIZE,
                   margin: float = DEFAULT_MARGIN, min_confidence: float = 0.9, multi_face: str = "largest",
                   convert_channels: bool = True, num_folds: int = 10, seed: int = 0, workers: int = 1,
                   batch_size: int = 16, progress: bool = True, detector=None,
                   alignment: str = DEFAULT_ALIGNMENT) -> dict[str, Any]:
    """CK+: read labelled sequences (first + last 3 frames), MTCNN-align, write the protocol files.

    ``alignment``: ``"box"`` (authors' crop, ``margin`` in source pixels) or ``"template"``.
    """
    from .ckplus import read_ckplus
    from .mtcnn_align import AlignConfig

    t0 = time.perf_counter()
    frames = read_ckplus(root)
    cfg = AlignConfig(image_size=image_size, margin=margin, min_confidence=min_confidence, multi_face=multi_face,
                      convert_channels=convert_channels, batch_size=batch_size, alignment=alignment)
    settings = {"root": str(Path(root).resolve()), "image_size": image_size, "margin": margin,
                "min_confidence": min_confidence, "multi_face": multi_face, "convert_channels": convert_channels,
                **_align_settings(cfg)}
    out_p = Path(out)
    return _prepare_raw(frames, out_p, "ckplus", CKPLUS_EXPRESSIONS, num_folds, seed, cfg, workers, progress,
                        settings, t0, detector)


def prepare_oulu(root: str | os.PathLike, out: str | os.PathLike, spectrum: str = "VL",
                 illumination: str = "Strong", classes: int = 6, image_size: int = DEFAULT_CROP_SIZE,
                 margin: float = DEFAULT_MARGIN, min_confidence: float = 0.9, multi_face: str = "largest",
                 convert_channels: bool = True, num_folds: int = 10, seed: int = 0, workers: int = 1,
                 batch_size: int = 16, progress: bool = True, detector=None,
                 alignment: str = DEFAULT_ALIGNMENT) -> dict[str, Any]:
    """Oulu-CASIA (default VL / Strong, 6 classes): read, MTCNN-align, write the protocol files.

    ``alignment``: ``"box"`` (authors' crop, ``margin`` in source pixels) or ``"template"``.
    """
    from .mtcnn_align import AlignConfig
    from .oulu import read_oulu

    t0 = time.perf_counter()
    frames = read_oulu(root, spectrum, illumination, classes)
    cfg = AlignConfig(image_size=image_size, margin=margin, min_confidence=min_confidence, multi_face=multi_face,
                      convert_channels=convert_channels, batch_size=batch_size, alignment=alignment)
    settings = {"root": str(Path(root).resolve()), "spectrum": spectrum, "illumination": illumination,
                "classes": classes, "image_size": image_size, "margin": margin, "min_confidence": min_confidence,
                "multi_face": multi_face, "convert_channels": convert_channels, **_align_settings(cfg)}
    out_p = Path(out)
    return _prepare_raw(frames, out_p, "oulu", OULU_EXPRESSIONS_6 if classes == 6 else OULU_EXPRESSIONS_7,
                        num_folds, seed, cfg, workers, progress, settings, t0, detector)
