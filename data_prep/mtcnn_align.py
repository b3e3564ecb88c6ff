"""MTCNN face detection + crop of the main face, streamed and resumable.

Ming et al. 2019 (Section 5.2) detect faces with MTCNN and use facenet's crop: box + margin 44
source pixels, clipped at the border, resized to 182 (training at 160). That is the default
alignment here (``AlignConfig.alignment = "box"``); ``"template"`` warps the eyes onto a fixed
template instead. Both are defined in :data:`data_prep.align.ALIGNMENTS`.

The main face among several is chosen as facenet does (:func:`choose_main_face`), but among the
faces with confidence >= ``min_confidence`` only (facenet: all faces its O-Net kept at 0.7).

Every input ends in exactly one of two CSVs under the output directory:

* ``aligned.csv``: source, out_path, box ``[x, y, w, h]``, confidence, num_faces, note
  (``grayscale_converted``, ``rgba_converted``, ``multiple_faces:N``, ...);
* ``rejects.csv``: source, reason, detail, with reasons ``unreadable`` (missing, corrupt, or
  unreadable file: permissions, I/O error),
  ``no_face``, ``low_confidence`` (best face below ``min_confidence``), ``multiple_faces`` (only
  with ``multi_face="reject"``), ``bad_channels`` (only with ``convert_channels=False``) and
  ``alignment_failed``.

The alignment settings (mode, size, margin) are written to ``align_settings.json`` next to the
CSVs; resuming with other settings raises :class:`AlignSettingsError` rather than mixing crops of two
framings.

Rows are appended after every batch, so an interrupted run resumes where it stopped
(inputs already in either CSV are skipped). Images are read batch by batch (nothing is held
for the whole dataset). MTCNN takes a Python list of images as one batch (a 4-D array is not).
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pandas as pd

from .align import DEFAULT_ALIGNMENT, DEFAULT_CROP_SIZE, DEFAULT_MARGIN, get_alignment

ALIGNED_COLUMNS = ("source", "out_path", "box", "confidence", "num_faces", "note")
REJECT_COLUMNS = ("source", "reason", "detail")
SETTINGS_FILE = "align_settings.json"
REJECT_REASONS = ("unreadable", "no_face", "low_confidence", "multiple_faces", "bad_channels", "alignment_failed")


@dataclass(frozen=True)
class AlignConfig:
    """Detection / alignment policy."""

    image_size: int = DEFAULT_CROP_SIZE  # output crop size (authors: 182, then 160 at training)
    margin: float = DEFAULT_MARGIN  # box: source px in total; template: output px at 182
    alignment: str = DEFAULT_ALIGNMENT  # a key of data_prep.align.ALIGNMENTS ("box" = authors')
    min_confidence: float = 0.9  # faces below: low_confidence (or not counted as extra faces)
    detect_thresholds: tuple[float, float, float] = (0.6, 0.7, 0.3)  # P-, R-, O-Net; O-Net low so weak faces are seen
    multi_face: str = "largest"  # "largest": keep the main face and note it; "reject"
    convert_channels: bool = True  # grayscale / RGBA -> RGB (noted) instead of rejecting
    batch_size: int = 16

    def __post_init__(self) -> None:
        get_alignment(self.alignment)
        if self.multi_face not in ("largest", "reject"):
            raise ValueError(f"multi_face must be 'largest' or 'reject', got {self.multi_face!r}")
        if not 0.0 <= self.min_confidence <= 1.0:
            raise ValueError(f"min_confidence must be in [0, 1], got {self.min_confidence}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")


class ImageReadError(Exception):
    """An input image is missing, unreadable or corrupt."""


class AlignSettingsError(ValueError):
    """A resumed run asks for other alignment settings than the crops already in its log."""


def load_detector():
    """A fresh ``mtcnn.MTCNN`` detector (weights ship with the wheel; imports TensorFlow)."""
    from mtcnn import MTCNN

    return MTCNN()


def load_rgb(path: str | os.PathLike, convert_channels: bool = True) -> tuple[np.ndarray, str]:
    """Read an image as RGB uint8; return ``(image, note)``.

    ``note`` is "" or ``grayscale_converted`` / ``rgba_converted`` / ``16bit_converted`` (combined with
    ``;``). Raises :class:`ImageReadError` (missing, corrupt) or ValueError (channels, when
    ``convert_channels`` is False).
    """
    p = Path(path)
    try:
        if not p.is_file():
            raise ImageReadError(f"file not found or not a regular file: {p}")
        buf = np.fromfile(p, dtype=np.uint8)
    except OSError as err:  # permissions, I/O error: this image is rejected, the others go on
        raise ImageReadError(f"cannot read {p.name} ({err.strerror or err})") from err
    try:
        img = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED) if buf.size else None
    except cv2.error as err:
        raise ImageReadError(f"cannot decode {p.name} ({buf.size} bytes): {str(err).strip()[-80:]}") from err
    if img is None:
        raise ImageReadError(f"cannot decode {p.name} ({buf.size} bytes)")
    notes = []
    if img.dtype != np.uint8:
        if not convert_channels:
            raise ValueError(f"{img.dtype} image")
        img = cv2.convertScaleAbs(img, alpha=255.0 / max(float(img.max()), 1.0))
        notes.append("16bit_converted")
    if img.ndim == 2 or (img.ndim == 3 and img.shape[2] == 1):
        if not convert_channels:
            raise ValueError("grayscale image")
        img = cv2.cvtColor(img.reshape(img.shape[:2]), cv2.COLOR_GRAY2RGB)
        notes.append("grayscale_converted")
    elif img.shape[2] == 4:
        if not convert_channels:
            raise ValueError("RGBA image")
        img = cv2.cvtColor(img, cv2.COLOR_BGRA2RGB)
        notes.append("rgba_converted")
    elif img.shape[2] == 3:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    else:
        raise ImageReadError(f"unsupported channel count {img.shape[2]}")
    return np.ascontiguousarray(img), ";".join(notes)


def choose_main_face(faces: list[dict], image_shape: tuple[int, ...]) -> int:
    """Index of the main face: largest box area minus twice the squared offset from the image centre (facenet)."""
    h, w = image_shape[:2]
    best, best_score = 0, -np.inf
    for i, f in enumerate(faces):
        x, y, bw, bh = (float(v) for v in f["box"])
        off = (x + bw / 2 - w / 2) ** 2 + (y + bh / 2 - h / 2) ** 2
        score = bw * bh - 2.0 * off
        if score > best_score:
            best, best_score = i, score
    return best


def process_detections(image: np.ndarray, faces: list[dict], cfg: AlignConfig) -> tuple[str, dict[str, Any]]:
    """Apply the policy to one image's detections.

    Returns ``("ok", {crop, region, box, confidence, num_faces, note})`` or ``("reject", {reason, detail})``;
    ``region`` is the source rectangle ``(x0, y0, x1, y1)`` of a ``box`` crop (None for ``template``).
    """
    if not faces:
        return "reject", {"reason": "no_face", "detail": "MTCNN found no face"}
    confident = [f for f in faces if float(f["confidence"]) >= cfg.min_confidence]
    if not confident:
        c = max(float(f["confidence"]) for f in faces)
        return "reject", {
            "reason": "low_confidence",
            "detail": f"best confidence {c:.3f} < min_confidence {cfg.min_confidence}",
        }
    note = ""
    if len(confident) > 1:
        if cfg.multi_face == "reject":
            return "reject", {
                "reason": "multiple_faces",
                "detail": f"{len(confident)} faces with confidence >= {cfg.min_confidence}",
            }
        note = f"multiple_faces:{len(confident)}"
    face = confident[choose_main_face(confident, image.shape)]
    try:
        crop, region = get_alignment(cfg.alignment).crop(image, face, cfg.image_size, cfg.margin)
    except (ValueError, KeyError) as err:
        return "reject", {"reason": "alignment_failed", "detail": f"{type(err).__name__}: {err}"}
    return "ok", {
        "crop": crop,
        "region": region,
        "box": json.dumps([int(v) for v in face["box"]]),
        "confidence": round(float(face["confidence"]), 6),
        "num_faces": len(confident),
        "note": note,
    }


def detect_batch(detector, images: Sequence[np.ndarray], cfg: AlignConfig) -> list[list[dict]]:
    """Run MTCNN on a Python list of images; returns one list of faces per image (None if MTCNN failed).

    Images are batched by shape: mtcnn pads a mixed-size batch to a common size, which changes
    the detections, so each batch holds images of one shape only (results equal single-image calls).
    """
    p, r, o = cfg.detect_thresholds
    kw = dict(threshold_pnet=p, threshold_rnet=r, threshold_onet=o)
    out: list[list[dict] | None] = [None] * len(images)
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, im in enumerate(images):
        groups.setdefault(tuple(im.shape), []).append(i)
    for idx in groups.values():
        batch = [images[i] for i in idx]
        try:
            res = _detect_faces(detector, batch, kw)
        except Exception:  # noqa: BLE001  a failing batch falls back to one image at a time
            res = []
            for im in batch:
                try:
                    res.append(detector.detect_faces(im, **kw))
                except Exception:  # noqa: BLE001
                    res.append(None)
        for i, faces in zip(idx, res):
            out[i] = list(faces) if faces is not None else None
    return out


def _detect_faces(detector, images: list[np.ndarray], kw: dict) -> list[list[dict]]:
    """``detector.detect_faces(images, **kw)`` for a list of same-shape images, one face list per image.

    For an ``mtcnn.MTCNN`` this runs its stages directly with the normalised batch converted
    once to a float32 tensor: mtcnn 1.0 keeps it as a float64 NumPy array that every P-Net
    pyramid scale and the R-/O-Net crops copy into a new tensor again, which took about 40% of
    a 16-image batch (benchmarks/mtcnn.py). The networks compute in float32 either way; the
    detections match ``detect_faces`` (tests/test_bench_mtcnn.py). Other detectors, or another
    mtcnn layout, go through ``detect_faces``.
    """
    try:
        import tensorflow as tf
        from mtcnn import MTCNN
        from mtcnn.utils.bboxes import fix_bboxes_offsets, limit_bboxes, to_json
        from mtcnn.utils.images import load_images_batch, standarize_batch
    except ImportError:
        MTCNN = None
    if MTCNN is None or not isinstance(detector, MTCNN) or not hasattr(detector, "stages"):
        res = detector.detect_faces(images if len(images) > 1 else images[0], **kw)
        return res if len(images) > 1 else [res]
    with tf.device(detector.device):
        try:
            normalized, shapes, padding = standarize_batch(
                load_images_batch(images), justification="center", normalize=True
            )
            normalized = tf.convert_to_tensor(normalized, dtype=tf.float32)
            boxes = None
            for stage in detector.stages:
                boxes = stage(bboxes_batch=boxes, images_normalized=normalized, images_oshapes=shapes, **kw)
        except tf.errors.InvalidArgumentError:  # mtcnn's signal for "no face in the batch"
            boxes, padding = np.empty((0, 16)), None
        if padding is not None:
            boxes = limit_bboxes(fix_bboxes_offsets(boxes, padding), images_shapes=shapes, limit_landmarks=False)
        return to_json(boxes, images_count=len(images), output_as_width_height=True, input_as_width_height=False)


def _append_csv(path: Path, rows: list[dict], columns: Sequence[str]) -> None:
    if not rows:
        return
    df = pd.DataFrame(rows, columns=list(columns))
    df.to_csv(path, mode="a", header=not path.exists() or path.stat().st_size == 0, index=False)


def _write_png(path: Path, rgb: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, buf = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise OSError(f"PNG encoding failed for {path}")
    path.write_bytes(buf.tobytes())


def align_chunk(
    items: Sequence[tuple[str, str]], out_dir: str, cfg: AlignConfig, detector=None
) -> tuple[list[dict], list[dict]]:
    """Detect + align ``items`` = [(source_path, out_rel_path)]; write crops; return (aligned rows, reject rows)."""
    detector = detector if detector is not None else _worker_detector()
    out_p = Path(out_dir)
    ok_rows, rej_rows = [], []
    images, keep = [], []
    for src, rel in items:
        try:
            img, note = load_rgb(src, cfg.convert_channels)
        except ImageReadError as err:
            rej_rows.append({"source": src, "reason": "unreadable", "detail": str(err)})
            continue
        except ValueError as err:
            rej_rows.append({"source": src, "reason": "bad_channels", "detail": str(err)})
            continue
        images.append(img)
        keep.append((src, rel, note))
    for img, (src, rel, note), faces in zip(images, keep, detect_batch(detector, images, cfg)):
        if faces is None:
            rej_rows.append({"source": src, "reason": "unreadable", "detail": "MTCNN failed on this image"})
            continue
        status, info = process_detections(img, faces, cfg)
        if status == "reject":
            rej_rows.append({"source": src, **info})
            continue
        _write_png(out_p / rel, info.pop("crop"))
        info.pop("region")
        info["note"] = ";".join(n for n in (note, info["note"]) if n)
        ok_rows.append({"source": src, "out_path": rel, **info})
    return ok_rows, rej_rows


# One detector per worker process (created lazily by the pool initializer; never shared).
_WORKER_STATE: dict[str, Any] = {}


def _worker_init() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    cv2.setNumThreads(1)
    _WORKER_STATE["detector"] = load_detector()


def _worker_detector():
    if "detector" not in _WORKER_STATE:
        _WORKER_STATE["detector"] = load_detector()
    return _WORKER_STATE["detector"]


def _worker_run(items, out_dir, cfg_dict):
    return align_chunk(items, out_dir, AlignConfig(**cfg_dict))


def check_settings(log_dir: str | os.PathLike, cfg: AlignConfig) -> None:
    """Refuse (:class:`AlignSettingsError`) to resume a log written with other alignment settings; record these."""
    log_p = Path(log_dir)
    log_p.mkdir(parents=True, exist_ok=True)
    _check_settings(log_p, log_p / "aligned.csv", cfg)


def _check_settings(log_p: Path, aligned_csv: Path, cfg: AlignConfig) -> None:
    want = {"alignment": cfg.alignment, "image_size": int(cfg.image_size), "margin": float(cfg.margin)}
    f = log_p / SETTINGS_FILE
    if f.is_file():
        have = json.loads(f.read_text())
    elif aligned_csv.exists() and aligned_csv.stat().st_size:
        have = {"alignment": "template"}  # logs from before the mode was recorded: the template warp
    else:
        have = {}
    diff = {k: (have[k], want[k]) for k in want if k in have and have[k] != want[k]}
    if diff:
        changed = ", ".join(f"{k}={a!r}, now {b!r}" for k, (a, b) in diff.items())
        raise AlignSettingsError(
            f"{log_p} holds crops made with other alignment settings ({changed}): rerun with "
            f"the same settings, or use a new output directory"
        )
    f.write_text(json.dumps(want, indent=2))


def align_files(
    items: Sequence[tuple[str, str]],
    out_dir: str | os.PathLike,
    config: AlignConfig | None = None,
    workers: int = 1,
    detector=None,
    progress: bool = True,
    log_dir: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """Align ``items`` = [(source image path, output path relative to out_dir)] into ``out_dir``.

    Appends to ``aligned.csv`` and ``rejects.csv`` in ``log_dir`` (default ``out_dir``) after each
    batch; inputs already listed there (by source) are skipped, so a rerun resumes (with the same alignment
    settings, kept in ``align_settings.json``; other settings raise :class:`AlignSettingsError`).
    ``workers`` > 1 runs that many processes, each with its own MTCNN (about 600 MB each). Returns counts
    ``{"done", "skipped", "aligned", "rejected", "rejects_by_reason", "notes"}`` for this call.
    """
    from tqdm.auto import tqdm

    cfg = config or AlignConfig()
    out_p = Path(out_dir)
    out_p.mkdir(parents=True, exist_ok=True)
    log_p = Path(log_dir) if log_dir is not None else out_p
    log_p.mkdir(parents=True, exist_ok=True)
    aligned_csv, rejects_csv = log_p / "aligned.csv", log_p / "rejects.csv"
    _check_settings(log_p, aligned_csv, cfg)
    done: set[str] = set()
    for f, _columns in ((aligned_csv, ALIGNED_COLUMNS), (rejects_csv, REJECT_COLUMNS)):
        if f.exists() and f.stat().st_size:
            prev = pd.read_csv(f, dtype=str, keep_default_na=False)
            if f is aligned_csv:  # an aligned row only counts as done if its crop exists
                prev = prev[[(out_p / r).is_file() for r in prev["out_path"]]]
            done.update(prev["source"])
    todo = [(str(s), str(r)) for s, r in items if str(s) not in done]
    stats: dict[str, Any] = {
        "done": 0,
        "skipped": len(items) - len(todo),
        "aligned": 0,
        "rejected": 0,
        "rejects_by_reason": Counter(),
        "notes": Counter(),
    }
    bs = cfg.batch_size
    chunks = [todo[i : i + bs] for i in range(0, len(todo), bs)]
    bar = tqdm(total=len(todo), desc="mtcnn align", unit="img", disable=not progress)

    def record(ok_rows, rej_rows) -> None:
        _append_csv(aligned_csv, ok_rows, ALIGNED_COLUMNS)
        _append_csv(rejects_csv, rej_rows, REJECT_COLUMNS)
        stats["aligned"] += len(ok_rows)
        stats["rejected"] += len(rej_rows)
        stats["done"] += len(ok_rows) + len(rej_rows)
        stats["rejects_by_reason"].update(r["reason"] for r in rej_rows)
        stats["notes"].update(n.split(":")[0] for r in ok_rows for n in str(r["note"]).split(";") if n)
        bar.update(len(ok_rows) + len(rej_rows))

    if workers <= 1 or len(chunks) <= 1:
        det = detector if detector is not None else (load_detector() if chunks else None)
        for ch in chunks:
            record(*align_chunk(ch, str(out_p), cfg, det))
    else:
        with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn"), initializer=_worker_init) as ex:
            futs = [ex.submit(_worker_run, ch, str(out_p), asdict(cfg)) for ch in chunks]
            for fut in futs:  # in submission order: CSV order does not depend on timing
                record(*fut.result())
    bar.close()
    stats["rejects_by_reason"] = dict(stats["rejects_by_reason"])
    stats["notes"] = dict(stats["notes"])
    return stats
