"""Write the dataset in the CK+ layout (raw sequences, Emotion files, aligned crops, CSVs) and a contact sheet.

Sequence ``j`` of identity ``i`` draws from the stream ``data_prep.seeds.SEQUENCE`` keyed by ``(i, j)``, so the bytes written do
not depend on the order of generation or the number of worker processes.
"""

from __future__ import annotations

import json
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from .. import seeds
from ..align import DEFAULT_MARGIN, align_face
from .expressions import EXPRESSIONS
from .identity import identity_params, subject_expressions
from .render import face_transform, render_face, render_frame


@dataclass(frozen=True)
class SynthConfig:
    """Parameters of :func:`generate` (defaults: the embedded default dataset)."""

    num_identities: int = 80
    sequences_per_identity: int = 6
    frames_per_sequence: int = 8
    image_size: int = 64  # aligned crop size (px)
    raw_size: int | None = None  # raw frame size; default 2 x image_size
    seed: int = 0
    margin: float = DEFAULT_MARGIN
    align_all_frames: bool = False  # False: crops only for first + last 3 frames (the protocol)
    unlabelled_every: int = 0  # >0: every n-th subject gets one extra sequence without Emotion file

    def __post_init__(self) -> None:
        if self.num_identities < 2:
            raise ValueError(f"num_identities must be >= 2, got {self.num_identities}")
        if not 1 <= self.sequences_per_identity <= 7:
            raise ValueError(
                f"sequences_per_identity must be in 1..7 (one per non-neutral expression), "
                f"got {self.sequences_per_identity}"
            )
        if self.frames_per_sequence < 4:
            raise ValueError(f"frames_per_sequence must be >= 4 (first + last 3), got {self.frames_per_sequence}")
        if self.image_size < 16:
            raise ValueError(f"image_size must be >= 16, got {self.image_size}")


def subject_name(index: int) -> str:
    """CK+-style subject folder name for a 0-based identity index (S001, S002, ...)."""
    return f"S{index + 1:03d}"


def intensity_curve(n: int, peak: float) -> np.ndarray:
    """Expression intensity of the ``n`` frames of a sequence: smoothstep from neutral (0) to ``peak``,
    the last frames near the apex (as in CK+)."""
    t = np.linspace(0.0, 1.0, n)
    s = t * t * (3 - 2 * t)
    return peak * np.power(s, 0.7)


def write_png(path: Path, rgb: np.ndarray, compression: int = 1) -> None:
    """Write a uint8 RGB image as PNG (creating the folders)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, buf = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, compression])
    if not ok:
        raise OSError(f"PNG encoding failed for {path}")
    path.write_bytes(buf.tobytes())


def _generate_subject(out: str, cfg: SynthConfig, index: int) -> list[dict[str, Any]]:
    """Write identity ``index``'s sequences; return the rows of its aligned crops."""
    cv2.setNumThreads(1)
    out_p = Path(out)
    identity = identity_params(cfg.seed, index)
    subject = subject_name(index)
    raw_size = cfg.raw_size or 2 * cfg.image_size
    expressions = subject_expressions(cfg.seed, index, cfg.sequences_per_identity)
    sequences: list[tuple[int, int | None]] = [(j + 1, e) for j, e in enumerate(expressions)]
    if cfg.unlabelled_every and index % cfg.unlabelled_every == 0:
        sequences.append((len(sequences) + 1, None))
    rows: list[dict[str, Any]] = []
    n = cfg.frames_per_sequence
    protocol = {0, n - 3, n - 2, n - 1}  # first frame + last 3
    for seq_no, expression in sequences:
        rng = seeds.SEQUENCE.rng(cfg.seed, index, seq_no)
        drawn = expression if expression is not None else int(rng.integers(1, 8))
        peak = rng.uniform(0.85, 1.0)
        # Sequence-level pose (the subject sits still, small per-frame drift).
        base_scale = raw_size * rng.uniform(0.15, 0.19)
        base_centre = np.array([raw_size / 2, raw_size * 0.42]) + rng.normal(0, 0.04 * raw_size, 2)
        base_roll = rng.normal(0, np.deg2rad(5))
        base_yaw = rng.normal(0, 0.2)
        seq_id = f"{seq_no:03d}"
        for f, intensity in enumerate(intensity_curve(n, peak)):
            centre = base_centre + rng.normal(0, 0.01 * raw_size, 2)
            matrix = face_transform(
                centre, base_scale * rng.uniform(0.97, 1.03), base_roll + rng.normal(0, np.deg2rad(1.5))
            )
            yaw = base_yaw + rng.normal(0, 0.05)
            image, eyes = render_frame(identity, drawn, float(intensity), rng, raw_size, matrix, yaw, None, True)
            name = f"{subject}_{seq_id}_{f + 1:08d}.png"
            raw_rel = Path("cohn-kanade-images") / subject / seq_id / name
            write_png(out_p / raw_rel, image)
            if expression is None or not (cfg.align_all_frames or f in protocol):
                continue
            noisy = eyes + rng.normal(0, 0.03 * base_scale, eyes.shape)  # detector-like landmark error
            crop = align_face(image, noisy[0], noisy[1], cfg.image_size, cfg.margin)
            rel = Path("aligned") / subject / seq_id / name
            write_png(out_p / rel, crop)
            rows.append(
                {
                    "path": rel.as_posix(),
                    "subject": subject,
                    "sequence": seq_id,
                    "frame": f + 1,
                    "role": "neutral" if f == 0 else ("peak" if f >= n - 3 else "onset"),
                    "expression": 0 if f == 0 else expression,
                    "raw_path": raw_rel.as_posix(),
                    "intensity": round(float(intensity), 4),
                }
            )
        if expression is not None:
            emotion = out_p / "Emotion" / subject / seq_id / f"{subject}_{seq_id}_{n:08d}_emotion.txt"
            emotion.parent.mkdir(parents=True, exist_ok=True)
            emotion.write_text(f"   {float(expression):.7e}\n")
    return rows


def _identity_row(seed: int, index: int) -> dict[str, Any]:
    """One row of ``identities.csv``: subject, ``attr_*`` flags and the identity's numeric parameters."""
    identity = identity_params(seed, index)
    row: dict[str, Any] = {"subject": subject_name(index)}
    row.update({f"attr_{a}": int(v) for a, v in identity["attributes"].items()})
    row.update({k: v for k, v in identity.items() if isinstance(v, (int, float)) and not isinstance(v, bool)})
    return row


def generate(
    out: str | os.PathLike, config: SynthConfig | None = None, workers: int | None = None, progress: bool = True
) -> dict[str, Any]:
    """Write the synthfaces dataset under ``out`` (CK+ layout + ``aligned/`` + ``identities.csv``).

    Returns a summary dict (counts, seconds, config) that is also written to
    ``out/synthfaces.json``. ``workers`` processes (default: ``min(4, os.cpu_count())``) share
    the identities; the bytes written do not depend on ``workers``.
    """
    import pandas as pd
    from tqdm.auto import tqdm

    cfg = config or SynthConfig()
    out_p = Path(out)
    out_p.mkdir(parents=True, exist_ok=True)
    workers = workers if workers is not None else min(4, os.cpu_count() or 1)
    t0 = time.perf_counter()
    results: dict[int, list[dict[str, Any]]] = {}
    ids = range(cfg.num_identities)
    bar = tqdm(total=cfg.num_identities, desc="synthfaces", unit="id", disable=not progress)
    if workers <= 1:
        for i in ids:
            results[i] = _generate_subject(str(out_p), cfg, i)
            bar.update()
    else:
        with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as ex:
            futures = {ex.submit(_generate_subject, str(out_p), cfg, i): i for i in ids}
            for future in as_completed(futures):
                results[futures[future]] = future.result()
                bar.update()
    bar.close()
    rows = [r for i in ids for r in results[i]]
    pd.DataFrame([_identity_row(cfg.seed, i) for i in ids]).to_csv(out_p / "identities.csv", index=False)
    pd.DataFrame(rows).to_csv(out_p / "aligned_frames.csv", index=False)
    seconds = time.perf_counter() - t0
    n_raw = sum(1 for _ in (out_p / "cohn-kanade-images").rglob("*.png"))
    summary = {
        "dataset": "synthfaces",
        "config": cfg.__dict__,
        "identities": cfg.num_identities,
        "raw_frames": n_raw,
        "aligned_images": len(rows),
        "seconds": round(seconds, 2),
        "workers": workers,
    }
    (out_p / "synthfaces.json").write_text(json.dumps(summary, indent=2))
    return summary


def contact_sheet(
    path: str | os.PathLike = "docs/images/synthfaces_contact_sheet.png",
    num_identities: int = 6,
    seed: int = 0,
    size: int = 80,
    nuisance: bool = True,
) -> Path:
    """Write a PNG grid: rows = identities (of the dataset with ``seed``), columns = the 8 expressions at peak."""
    cols = list(EXPRESSIONS)
    label_h = 18
    sheet = np.full((label_h + num_identities * size, len(cols) * size, 3), 255, np.uint8)
    for c in cols:
        cv2.putText(
            sheet, EXPRESSIONS[c][:8], (c * size + 3, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (0, 0, 0), 1, cv2.LINE_AA
        )
    for r in range(num_identities):
        identity = identity_params(seed, r)
        for c in cols:
            rng = seeds.CONTACT_SHEET.rng(seed, r, c)
            img = render_face(identity, c, 0.0 if c == 0 else 1.0, rng, size, nuisance=nuisance)
            sheet[label_h + r * size : label_h + (r + 1) * size, c * size : (c + 1) * size] = img
    path = Path(path)
    write_png(path, sheet, compression=9)
    return path
