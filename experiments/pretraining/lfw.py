"""``dynamic-mtl eval-lfw``: 10-fold verification on an LFW-format ``pairs.txt``.

Protocol (LFW View 2 / facenet, :mod:`dynamic_mtl.verification`): one embedding per image (the
network's L2-normalised ``embedding``), squared Euclidean distance per pair, for each fold the
threshold (grid 0..4 step 0.01) maximising accuracy on the OTHER 9 folds is applied to it; VAL at
FAR=1e-3 likewise with the threshold chosen on the other folds; AUC (scikit-learn) over all pairs.

Flipped images (``--flip``): each image is also embedded mirrored; ``concat`` (default, as facenet)
concatenates the two unit embeddings, ``sum`` adds them; the result is L2-normalised again, so
distances stay in [0, 4].

Preprocessing (size, standardisation, central crop) comes from the model's sidecar JSON written by
``dynamic-mtl pretrain`` (``network.json`` / ``<export>.json``), else from the input shape with
``prewhiten`` and the 160/182 central crop; CLI flags override.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from data_prep.lfw_pairs import MissingPairImagesError, read_pairs, resolve_pair_images
from data_prep.pipeline import DEFAULT_CROP_FRACTION

FLIP_MODES = ("concat", "sum")


@dataclass
class EvalLFWConfig:
    """Settings of one evaluation (saved in the results JSON)."""

    pairs: str
    images: str
    model: str
    flip: bool = False
    flip_mode: str = "concat"
    out: str | None = None  # default: the model's folder
    skip_missing: bool = False
    batch_size: int = 128
    image_size: int | None = None  # overrides of the sidecar preprocessing
    standardize: str | None = None
    crop_fraction: float | None = None
    far_target: float = 1e-3
    verify: str = "decode"  # check pair images before embedding (decode | header | none)

    def __post_init__(self) -> None:
        if self.flip_mode not in FLIP_MODES:
            raise ValueError(f"flip_mode must be one of {FLIP_MODES}, got {self.flip_mode!r}")


def model_preprocessing(model_path: str | Path, network) -> dict[str, Any]:
    """Preprocessing of a saved network: its sidecar JSON if present, else defaults from its input shape."""
    path = Path(model_path)
    sidecar = (path / "network.json") if path.is_dir() else path.with_suffix(".json")
    meta: dict[str, Any] = {}
    if sidecar.is_file():
        meta = json.loads(sidecar.read_text())
    else:
        print(
            f"eval-lfw: no {sidecar.name} next to the model; assuming prewhiten and the 160/182 central crop",
            file=sys.stderr,
        )
    return {
        "image_size": int(meta.get("image_size") or network.input.shape[1]),
        "standardize": meta.get("standardize", "prewhiten"),
        "crop_fraction": float(meta.get("crop_fraction", DEFAULT_CROP_FRACTION)),
        "sidecar": meta,
    }


def embed_images(
    network,
    paths: list[str],
    image_size: int,
    standardize: str,
    crop_fraction: float,
    batch_size: int = 128,
    flip: bool = False,
    flip_mode: str = "concat",
) -> np.ndarray:
    """L2-normalised embeddings of ``paths`` (evaluation preprocessing), optionally fused with flipped images."""
    import keras
    import tensorflow as tf

    from data_prep.pipeline import Preprocessing, make_image_dataset
    from dynamic_mtl.verification import l2_normalize

    embedder = keras.Model(network.input, network.output["embedding"])
    spec = Preprocessing(image_size, crop_fraction, flip=False, standardize=standardize)
    ds = make_image_dataset(paths, spec, batch_size)
    emb = l2_normalize(embedder.predict(ds, verbose=0))
    if flip:
        flipped = l2_normalize(embedder.predict(ds.map(tf.image.flip_left_right), verbose=0))
        emb = l2_normalize(np.concatenate([emb, flipped], axis=1) if flip_mode == "concat" else emb + flipped)
    return emb


def lfw_metrics(distances: np.ndarray, pairs: pd.DataFrame, far_target: float = 1e-3):
    """:func:`dynamic_mtl.verification.evaluate_folds` with the pairs file's folds (threshold from the other folds)."""
    from dynamic_mtl.verification import evaluate_folds

    return evaluate_folds(distances, pairs["issame"].to_numpy(bool), pairs["fold"].to_numpy(), far_target=far_target)


def _result_stem(cfg: EvalLFWConfig) -> str:
    model = Path(cfg.model)
    stem = "network" if model.is_dir() else model.stem
    return f"{stem}.eval_lfw" + (f"_flip-{cfg.flip_mode}" if cfg.flip else "")


def _markdown(res: dict) -> str:
    m = res["metrics"]
    lines = [
        f"# LFW-protocol verification: {Path(res['config']['model']).name}",
        "",
        f"- pairs: `{res['config']['pairs']}` ({res['pairs']['used']} pairs used of {res['pairs']['total']}, "
        f"{res['pairs']['skipped_missing']} skipped for missing images; {res['pairs']['folds']} folds)",
        f"- images: `{res['config']['images']}` ({res['images_embedded']} embedded)",
        f"- preprocessing: {res['preprocessing']['image_size']} px, {res['preprocessing']['standardize']}, "
        f"central crop {res['preprocessing']['crop_fraction']:.4f}; flipped images: "
        f"{res['config']['flip_mode'] if res['config']['flip'] else 'no'}",
        "",
        "| accuracy (%) | VAL@FAR=1e-3 (%) | FAR (%) | AUC |",
        "|---|---|---|---|",
        f"| {100 * m['accuracy_mean']:.2f} +- {100 * m['accuracy_std']:.2f} | {100 * m['val_mean']:.2f} +- "
        f"{100 * m['val_std']:.2f} | {100 * m['far_mean']:.3f} | {m['auc']:.4f} |",
        "",
        "Per fold (thresholds chosen on the other folds):",
        "",
        "| fold | pairs | accuracy (%) | threshold | VAL (%) | FAR (%) | AUC |",
        "|---|---|---|---|---|---|---|",
    ]
    for f in m["per_fold"]:
        lines.append(
            f"| {f['fold']} | {f['n_test']} | {100 * f['accuracy']:.2f} | {f['threshold']:.2f} | "
            f"{100 * f['val']:.2f} | {100 * f['far']:.3f} | {f['auc']:.4f} |"
        )
    return "\n".join(lines) + "\n"


def evaluate_lfw(cfg: EvalLFWConfig, progress: bool = True) -> dict[str, Any]:
    """Embed the pair images, run the 10-fold protocol, write ``<stem>.eval_lfw.{json,md,csv}``; return the results."""
    from data_prep.identity_folders import check_image
    from dynamic_mtl.transfer import load_network
    from dynamic_mtl.verification import pair_distances

    t0 = time.perf_counter()
    model_path = Path(cfg.model)
    out = Path(cfg.out) if cfg.out else (model_path if model_path.is_dir() else model_path.parent)
    out.mkdir(parents=True, exist_ok=True)
    stem = _result_stem(cfg)
    parsed = read_pairs(cfg.pairs)
    pairs, missing = resolve_pair_images(parsed, cfg.images)
    unique = sorted({p for p in pairs["path_a"].tolist() + pairs["path_b"].tolist() if p})
    unreadable = {p: why for p in unique if (why := check_image(p, cfg.verify))}
    problems = [{"image": m, "problem": "missing"} for m in missing]
    problems += [{"image": p, "problem": f"unreadable: {why}"} for p, why in sorted(unreadable.items())]
    if problems:
        report = out / f"{stem}_problem_images.csv"
        pd.DataFrame(problems).to_csv(report, index=False)
        if not cfg.skip_missing:
            raise MissingPairImagesError([f"{p['image']} ({p['problem']})" for p in problems], cfg.images, str(report))
        print(f"eval-lfw: {len(problems)} pair images missing or unreadable -> {report}", file=sys.stderr)
    ok = (
        (pairs["path_a"] != "")
        & (pairs["path_b"] != "")
        & ~pairs["path_a"].isin(list(unreadable))
        & ~pairs["path_b"].isin(list(unreadable))
    )
    used = pairs[ok].reset_index(drop=True)
    if used.empty:
        raise MissingPairImagesError(missing, cfg.images)
    network = load_network(model_path)
    prep = model_preprocessing(model_path, network)
    image_size = cfg.image_size or prep["image_size"]
    standardize = cfg.standardize or prep["standardize"]
    crop = cfg.crop_fraction or prep["crop_fraction"]
    images = sorted(set(used["path_a"]).union(used["path_b"]))
    index = {p: i for i, p in enumerate(images)}
    if progress:
        print(
            f"eval-lfw: embedding {len(images)} images ({image_size} px, {standardize}"
            f"{', + flipped (' + cfg.flip_mode + ')' if cfg.flip else ''}) for {len(used)} pairs"
        )
    emb = embed_images(network, images, image_size, standardize, crop, cfg.batch_size, cfg.flip, cfg.flip_mode)
    dist = pair_distances(emb[used["path_a"].map(index).to_numpy()], emb[used["path_b"].map(index).to_numpy()])
    metrics = lfw_metrics(dist, used, cfg.far_target)
    results = {
        "config": asdict(cfg),
        "preprocessing": {"image_size": image_size, "standardize": standardize, "crop_fraction": crop},
        "pairs": {
            "total": parsed.num_pairs,
            "used": int(len(used)),
            "skipped_missing": int((~ok).sum()),
            "problem_images": len(problems),
            "folds": int(used["fold"].nunique()),
            "pairs_per_half": parsed.pairs_per_half,
        },
        "images_embedded": len(images),
        "metrics": metrics.as_dict(),
        "seconds": round(time.perf_counter() - t0, 2),
    }
    per_fold = pd.DataFrame(metrics.per_fold)
    per_fold.to_csv(out / f"{stem}.csv", index=False)
    (out / f"{stem}.json").write_text(json.dumps(results, indent=2, default=float))
    (out / f"{stem}.md").write_text(_markdown(results))
    results["files"] = [str(out / f"{stem}.{ext}") for ext in ("json", "md", "csv")]
    return results
