"""One-folder-per-identity datasets (CASIA-WebFace, VGGFace2, MS1M in folder form, LFW, synthfaces-identities).

Layout::

    ROOT/<identity>/<image>.jpg|.jpeg|.png|.bmp|.gif

:func:`scan_identity_folders` lists it and accounts for every entry: each file is either a usable
image (``images``: path relative to ROOT, identity, label) or a reject (``rejects``: path, identity,
reason, detail). Reasons:

* ``unreadable``: empty / truncated / undecodable file (``verify="decode"``), or bytes that are not
  PNG / JPEG / BMP / GIF (``verify="header"``);
* ``unsupported_format``: an image suffix TensorFlow cannot decode (TIFF, WebP, ...): convert it, or
  use ``--align`` (the aligner re-encodes to PNG);
* ``not_an_image``: a file without an image suffix;
* ``outside_identity_folder``: a file directly under ROOT;
* ``nested_folder``: a folder inside an identity folder (not descended into);
* ``too_few_images``: every usable image of an identity with fewer than ``min_images`` (default 2:
  a single-image identity gives the softmax a class with no second sample and the center loss a
  center fitted to one image);
* ``empty_identity``: an identity folder with no usable image.

Nothing is dropped silently: :func:`write_scan_report` writes ``images.csv``, ``rejects.csv`` and
``layout_summary.json`` (counts by reason), and ``strict=True`` turns any reject into an error.
Hidden files (``.DS_Store``) are skipped and counted. Labels are 0..K-1 over the sorted usable
identity names. Images are only read to be verified, one at a time (threads), never held.

:func:`align_identity_folders` sends a raw folder through the data_prep MTCNN path
(:func:`data_prep.mtcnn_align.align_files`: resumable, its rejects are merged into the scan's).
"""

from __future__ import annotations

import json
import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .readers_common import IMAGE_SUFFIXES, describe_dir

#: Suffixes ``tf.io.decode_image`` reads.
DECODABLE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
REJECT_REASONS = (
    "unreadable",
    "unsupported_format",
    "not_an_image",
    "outside_identity_folder",
    "nested_folder",
    "too_few_images",
    "empty_identity",
    "no_face",
    "low_confidence",
    "multiple_faces",
    "bad_channels",
    "alignment_failed",
)
VERIFY_MODES = ("decode", "header", "none")
_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"BM", b"GIF87a", b"GIF89a")


class LayoutError(ValueError):
    """The folder is not a usable one-folder-per-identity dataset."""


@dataclass
class IdentityScan:
    """Result of :func:`scan_identity_folders`."""

    root: str
    images: pd.DataFrame  # path (relative to root), identity, label
    rejects: pd.DataFrame  # path, identity, reason, detail
    hidden_files: int = 0
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def num_identities(self) -> int:
        return int(self.images["identity"].nunique())

    @property
    def identities(self) -> list[str]:
        return sorted(self.images["identity"].unique())

    def summary(self) -> dict[str, Any]:
        counts = self.images.groupby("identity").size() if len(self.images) else pd.Series(dtype=int)
        return {
            "root": self.root,
            "identities": self.num_identities,
            "images": int(len(self.images)),
            "images_per_identity": {
                "min": int(counts.min()) if len(counts) else 0,
                "median": float(counts.median()) if len(counts) else 0.0,
                "max": int(counts.max()) if len(counts) else 0,
            },
            "rejects": int(len(self.rejects)),
            "rejects_by_reason": {k: int(v) for k, v in self.rejects["reason"].value_counts().sort_index().items()},
            "rejected_identities": sorted(
                self.rejects.loc[self.rejects["reason"].isin(["too_few_images", "empty_identity"]), "identity"]
                .unique()
                .tolist()
            )[:50],
            "hidden_files_skipped": int(self.hidden_files),
            "settings": self.settings,
        }


def check_image(path: str | os.PathLike, verify: str = "decode") -> str:
    """ "" if the file is a usable image under ``verify``, else the reason it is not (detail text)."""
    if verify == "none":
        return ""
    p = Path(path)
    try:
        with open(p, "rb") as handle:
            head = handle.read(8)
    except OSError as err:
        return f"cannot open: {err.strerror or err}"
    if not head:
        return "empty file"
    if not any(head.startswith(m) for m in _MAGIC):
        return f"not a PNG/JPEG/BMP/GIF file (first bytes {head[:4]!r})"
    if verify == "header":
        return ""
    import cv2

    buf = np.fromfile(p, dtype=np.uint8)
    img = cv2.imdecode(buf, cv2.IMREAD_REDUCED_GRAYSCALE_2) if buf.size else None
    if img is None or img.size == 0:
        return f"cannot decode ({buf.size} bytes)"
    if head.startswith(b"\xff\xd8\xff") and not buf[-2:].tobytes() == b"\xff\xd9":
        # OpenCV decodes truncated JPEGs with a warning; TensorFlow fails on them.
        tail = buf[-64:].tobytes()
        if b"\xff\xd9" not in tail:
            return "truncated JPEG (no end-of-image marker)"
    return ""


def scan_identity_folders(
    root: str | os.PathLike,
    min_images: int = 2,
    verify: str = "decode",
    workers: int | None = None,
    progress: bool = True,
    strict: bool = False,
) -> IdentityScan:
    """List ``root`` (one folder per identity), verify the images and account for every entry.

    Raises :class:`LayoutError` when ``root`` is missing or has fewer than 2 usable identities, and,
    with ``strict``, when anything was rejected.
    """
    from tqdm.auto import tqdm

    if verify not in VERIFY_MODES:
        raise ValueError(f"verify must be one of {VERIFY_MODES}, got {verify!r}")
    if min_images < 1:
        raise ValueError(f"min_images must be >= 1, got {min_images}")
    root_p = Path(root)
    if not root_p.is_dir():
        raise LayoutError(f"dataset folder not found: {describe_dir(root_p)}")
    rejects: list[dict] = []
    candidates: list[tuple[str, str]] = []  # (relative path, identity)
    hidden = 0
    folders = []
    for entry in sorted(root_p.iterdir(), key=lambda e: e.name):
        if entry.name.startswith("."):
            hidden += 1
        elif entry.is_dir():
            folders.append(entry)
        else:
            rejects.append(
                {
                    "path": entry.name,
                    "identity": "",
                    "reason": "outside_identity_folder",
                    "detail": "files must sit in ROOT/<identity>/",
                }
            )
    if not folders:
        raise LayoutError(
            f"no identity folders in {root_p}: expected ROOT/<identity>/<image>.jpg; {describe_dir(root_p)}"
        )
    for folder in tqdm(folders, desc="scan folders", unit="id", disable=not progress, leave=False):
        ident = folder.name
        for entry in sorted(os.scandir(folder), key=lambda e: e.name):
            rel = f"{ident}/{entry.name}"
            if entry.name.startswith("."):
                hidden += 1
            elif entry.is_dir():
                rejects.append(
                    {
                        "path": rel,
                        "identity": ident,
                        "reason": "nested_folder",
                        "detail": "sub-folders of an identity folder are not read",
                    }
                )
            elif Path(entry.name).suffix.lower() in DECODABLE_SUFFIXES:
                candidates.append((rel, ident))
            elif Path(entry.name).suffix.lower() in IMAGE_SUFFIXES or Path(entry.name).suffix.lower() == ".webp":
                rejects.append(
                    {
                        "path": rel,
                        "identity": ident,
                        "reason": "unsupported_format",
                        "detail": f"{Path(entry.name).suffix} is not decodable by TensorFlow; convert to "
                        "PNG/JPEG or use --align",
                    }
                )
            else:
                rejects.append(
                    {
                        "path": rel,
                        "identity": ident,
                        "reason": "not_an_image",
                        "detail": f"suffix {Path(entry.name).suffix or '(none)'}",
                    }
                )
    if verify != "none" and candidates:
        n_workers = workers or min(4, os.cpu_count() or 1)
        with ThreadPoolExecutor(max_workers=n_workers) as pool:
            results = list(
                tqdm(
                    pool.map(lambda c: check_image(root_p / c[0], verify), candidates, chunksize=64),
                    total=len(candidates),
                    desc=f"verify images ({verify})",
                    unit="img",
                    disable=not progress,
                    leave=False,
                )
            )
    else:
        results = [""] * len(candidates)
    good: list[tuple[str, str]] = []
    for (rel, ident), problem in zip(candidates, results):
        if problem:
            rejects.append({"path": rel, "identity": ident, "reason": "unreadable", "detail": problem})
        else:
            good.append((rel, ident))
    per_id = Counter(ident for _, ident in good)
    for folder in folders:
        if per_id.get(folder.name, 0) == 0:
            rejects.append(
                {
                    "path": folder.name,
                    "identity": folder.name,
                    "reason": "empty_identity",
                    "detail": "no usable image in this identity folder",
                }
            )
    few = {i for i, n in per_id.items() if n < min_images}
    kept = []
    for rel, ident in good:
        if ident in few:
            rejects.append(
                {
                    "path": rel,
                    "identity": ident,
                    "reason": "too_few_images",
                    "detail": f"identity has {per_id[ident]} usable image(s), min_images={min_images}",
                }
            )
        else:
            kept.append((rel, ident))
    images = pd.DataFrame(kept, columns=["path", "identity"])
    labels = {name: i for i, name in enumerate(sorted(images["identity"].unique()))}
    images["label"] = images["identity"].map(labels).astype("int64")
    rej = pd.DataFrame(rejects, columns=["path", "identity", "reason", "detail"])
    scan = IdentityScan(str(root_p), images, rej, hidden, {"min_images": min_images, "verify": verify})
    if strict and len(rej):
        counts = ", ".join(f"{k}: {v}" for k, v in rej["reason"].value_counts().items())
        raise LayoutError(
            f"{root_p}: {len(rej)} rejected entries ({counts}), e.g. "
            f"{rej.iloc[0]['path']} ({rej.iloc[0]['reason']}: {rej.iloc[0]['detail']}); "
            "drop --strict to train on the rest (rejects are written to rejects.csv)"
        )
    if len(labels) < 2:
        raise LayoutError(
            f"{root_p}: {len(labels)} usable identit{'y' if len(labels) == 1 else 'ies'} "
            f"(>= {min_images} readable images each) out of {len(folders)} folders; need >= 2. "
            f"Rejects: {dict(rej['reason'].value_counts())}"
        )
    return scan


def write_scan_report(scan: IdentityScan, out_dir: str | os.PathLike) -> dict[str, Any]:
    """Write ``images.csv``, ``rejects.csv`` and ``layout_summary.json`` into ``out_dir``; return the summary."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    scan.images.to_csv(out / "images.csv", index=False)
    scan.rejects.to_csv(out / "rejects.csv", index=False)
    summary = scan.summary()
    (out / "layout_summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def read_scan_report(out_dir: str | os.PathLike, root: str) -> IdentityScan:
    """Read back what :func:`write_scan_report` wrote (a resumed run keeps its labels)."""
    out = Path(out_dir)
    images = pd.read_csv(out / "images.csv", dtype={"path": str, "identity": str}, keep_default_na=False)
    rejects = pd.read_csv(out / "rejects.csv", dtype=str, keep_default_na=False)
    summary = json.loads((out / "layout_summary.json").read_text())
    return IdentityScan(root, images, rejects, summary.get("hidden_files_skipped", 0), summary.get("settings", {}))


def align_identity_folders(
    root: str | os.PathLike,
    aligned_dir: str | os.PathLike,
    image_size: int = 182,
    margin: float = 44,
    min_confidence: float = 0.9,
    workers: int = 1,
    batch_size: int = 16,
    progress: bool = True,
) -> pd.DataFrame:
    """MTCNN-align every image of ``root/<identity>/`` into ``aligned_dir/<identity>/<stem>.png``.

    Uses :func:`data_prep.mtcnn_align.align_files` (resumable: a rerun skips what is done; its log is
    ``<aligned_dir>_align_log/``). Returns the rejects (path relative to ``root``, identity, reason,
    detail): the aligner's (``unreadable``, ``no_face``, ...) and the entries that are not images in
    identity folders, for the scan report.
    """
    from .mtcnn_align import AlignConfig, align_files

    root_p, out_p = Path(root), Path(aligned_dir)
    if not root_p.is_dir():
        raise LayoutError(f"dataset folder not found: {describe_dir(root_p)}")
    items, skipped = [], []
    for entry in sorted(root_p.iterdir()):
        if entry.name.startswith("."):
            continue
        if not entry.is_dir():
            skipped.append(
                {
                    "path": entry.name,
                    "identity": "",
                    "reason": "outside_identity_folder",
                    "detail": "files must sit in ROOT/<identity>/",
                }
            )
            continue
        for f in sorted(entry.iterdir()):
            rel = f"{entry.name}/{f.name}"
            if f.name.startswith("."):
                continue
            if f.is_dir():
                skipped.append(
                    {
                        "path": rel,
                        "identity": entry.name,
                        "reason": "nested_folder",
                        "detail": "sub-folders of an identity folder are not read",
                    }
                )
            elif f.suffix.lower() in IMAGE_SUFFIXES + (".webp",):
                items.append((str(f), f"{entry.name}/{f.stem}.png"))
            else:
                skipped.append(
                    {
                        "path": rel,
                        "identity": entry.name,
                        "reason": "not_an_image",
                        "detail": f"suffix {f.suffix or '(none)'}",
                    }
                )
    if not items:
        raise LayoutError(f"no images in {root_p}/<identity>/: {describe_dir(root_p)}")
    log_dir = out_p.parent / f"{out_p.name}_align_log"
    cfg = AlignConfig(image_size=image_size, margin=margin, min_confidence=min_confidence, batch_size=batch_size)
    align_files(items, out_p, cfg, workers=workers, progress=progress, log_dir=log_dir)
    columns = ["path", "identity", "reason", "detail"]
    rej_csv = log_dir / "rejects.csv"
    aligner = pd.DataFrame(columns=columns)
    if rej_csv.is_file() and rej_csv.stat().st_size:
        rej = pd.read_csv(rej_csv, dtype=str, keep_default_na=False)
        rej = rej[rej["source"].isin({src for src, _ in items})]
        rel = [os.path.relpath(s, root_p) for s in rej["source"]]
        aligner = pd.DataFrame(
            {
                "path": rel,
                "identity": [Path(r).parts[0] for r in rel],
                "reason": rej["reason"].tolist(),
                "detail": rej["detail"].tolist(),
            }
        )
    return pd.concat([aligner, pd.DataFrame(skipped, columns=columns)], ignore_index=True)
