"""The embedded large-identity pretraining set: synthfaces in the one-folder-per-identity layout.

A stand-in for CASIA-WebFace / VGGFace2 / MS1M (Section 5.3: the single-task network is pretrained
on a large face set before the multi-task training). Written by :func:`generate_identity_set`::

    OUT/train/synth_00001/synth_00001_0001.png     pretraining identities (default 1,000 x 20 images)
    OUT/heldout/synth_01001/synth_01001_0001.png   held-out identities (default 200 x 10), never trained on
    OUT/pairs.txt                                  LFW-format pairs (10 folds x 300 + 300) of held-out identities
    OUT/identities.csv                             name, split, index
    OUT/summary.json                               config, counts, seconds

Faces come from :func:`data_prep.synthfaces.render_face` (aligned crops, same eye template and
nuisance as the prepared synthfaces crops), one identity per :func:`data_prep.synthfaces.identity_params`
draw. The default ``seed=1000`` makes identities distinct from the Table-2 synthfaces dataset
(``prepare synthfaces``, seed 0), as CASIA-WebFace is distinct from CK+. Expressions are neutral
(``neutral_fraction``) or mild (a random non-neutral class at intensity in [0.15, ``max_intensity``]),
like web photos. Deterministic: image ``j`` of identity ``i`` draws from stream ``data_prep.seeds.WEB_IMAGE`` keyed by ``(i, j)``,
so output does not depend on ``workers``.
"""

from __future__ import annotations

import json
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

from . import seeds


@dataclass(frozen=True)
class IdentitySetConfig:
    """Parameters of :func:`generate_identity_set` (defaults: the embedded ``make pretrain`` set)."""

    num_identities: int = 1000
    images_per_identity: int = 20
    heldout_identities: int = 200
    heldout_images_per_identity: int = 10
    image_size: int = 64
    seed: int = 1000
    neutral_fraction: float = 0.5
    max_intensity: float = 0.5
    num_folds: int = 10
    pairs_per_half: int = 300

    def __post_init__(self) -> None:
        if self.num_identities < 2 or self.images_per_identity < 2:
            raise ValueError("need >= 2 pretraining identities with >= 2 images each")
        if self.heldout_identities < 2 * self.num_folds or self.heldout_images_per_identity < 2:
            raise ValueError(f"need >= {2 * self.num_folds} held-out identities with >= 2 images each")
        if not 0.0 <= self.neutral_fraction <= 1.0 or not 0.15 <= self.max_intensity <= 1.0:
            raise ValueError("neutral_fraction must lie in [0, 1] and max_intensity in [0.15, 1]")
        if self.image_size < 16:
            raise ValueError(f"image_size must be >= 16, got {self.image_size}")


def identity_name(index: int) -> str:
    """``synth_00001`` for index 0 (train and held-out identities share one numbering)."""
    return f"synth_{index + 1:05d}"


def render_identity_image(cfg: IdentitySetConfig, index: int, image: int) -> np.ndarray:
    """Image ``image`` (1-based) of identity ``index``: uint8 RGB, ``cfg.image_size`` square, aligned."""
    from .synthfaces import identity_params, render_face

    rng = seeds.WEB_IMAGE.rng(cfg.seed, index, image)
    expression = 0 if rng.random() < cfg.neutral_fraction else int(rng.integers(1, 8))
    intensity = float(rng.uniform(0.15, cfg.max_intensity)) if expression else 0.0
    return render_face(identity_params(cfg.seed, index), expression, intensity, rng, size=cfg.image_size)


def _write_identity(out: str, split: str, cfg_dict: dict, index: int, count: int) -> int:
    import cv2

    cv2.setNumThreads(1)
    cfg = IdentitySetConfig(**cfg_dict)
    name = identity_name(index)
    folder = Path(out) / split / name
    folder.mkdir(parents=True, exist_ok=True)
    for j in range(1, count + 1):
        path = folder / f"{name}_{j:04d}.png"
        if path.is_file() and path.stat().st_size > 0:
            continue
        rgb = render_identity_image(cfg, index, j)
        ok, buf = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 1])
        if not ok:
            raise OSError(f"PNG encoding failed for {path}")
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(buf.tobytes())
        tmp.replace(path)
    return count


def generate_identity_set(
    out: str | os.PathLike, config: IdentitySetConfig | None = None, workers: int | None = None, progress: bool = True
) -> dict[str, Any]:
    """Write the identity set and its held-out ``pairs.txt`` under ``out``; return (and save) the summary.

    Resumable: images already written are kept. ``workers`` processes (default ``min(2, CPUs)``).
    """
    import pandas as pd
    from tqdm.auto import tqdm

    from .lfw_pairs import generate_pairs, write_pairs

    cfg = config or IdentitySetConfig()
    out_p = Path(out)
    out_p.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    jobs = [("train", i, cfg.images_per_identity) for i in range(cfg.num_identities)]
    jobs += [
        ("heldout", cfg.num_identities + i, cfg.heldout_images_per_identity) for i in range(cfg.heldout_identities)
    ]
    workers = workers if workers is not None else min(2, os.cpu_count() or 1)
    bar = tqdm(total=len(jobs), desc="synthfaces identities", unit="id", disable=not progress)
    if workers <= 1:
        for split, i, n in jobs:
            _write_identity(str(out_p), split, asdict(cfg), i, n)
            bar.update()
    else:
        with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as ex:
            futs = [ex.submit(_write_identity, str(out_p), split, asdict(cfg), i, n) for split, i, n in jobs]
            for fut in as_completed(futs):
                fut.result()
                bar.update()
    bar.close()
    pd.DataFrame([{"name": identity_name(i), "split": s, "index": i, "images": n} for s, i, n in jobs]).to_csv(
        out_p / "identities.csv", index=False
    )
    heldout = {identity_name(i): list(range(1, n + 1)) for s, i, n in jobs if s == "heldout"}
    pairs = generate_pairs(heldout, cfg.num_folds, cfg.pairs_per_half, seed=cfg.seed)
    write_pairs(pairs, out_p / "pairs.txt")
    summary = {
        "dataset": "synthfaces-identities",
        "config": asdict(cfg),
        "train": {"identities": cfg.num_identities, "images": cfg.num_identities * cfg.images_per_identity},
        "heldout": {
            "identities": cfg.heldout_identities,
            "images": cfg.heldout_identities * cfg.heldout_images_per_identity,
        },
        "pairs": {"folds": cfg.num_folds, "pairs_per_half": cfg.pairs_per_half, "total": pairs.num_pairs},
        "seconds": round(time.perf_counter() - t0, 2),
        "workers": workers,
    }
    (out_p / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary
