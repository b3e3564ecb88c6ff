"""Raw trees in the CK+, Oulu-CASIA and CASIA-WebFace layouts, for a rehearsal of the real-data path.

CK+, Oulu-CASIA and CASIA-WebFace are licence-restricted, so the flow a researcher runs with them
(pretrain on an identity-folder set -> checkpoint -> ``prepare ckplus`` / ``prepare oulu`` with MTCNN ->
the paper profile from the checkpoint) cannot be run on them here. This module writes stand-ins with the
same folder layouts, file names, image formats and raw frame sizes, drawn by :mod:`data_prep.synthfaces`
and written by :mod:`data_prep.raw_trees`:

* ``raw/CK+/cohn-kanade-images/S100/001/S100_001_00000001.png`` + ``raw/CK+/Emotion/.../*_emotion.txt``:
  640 x 490 PNG frames (the CK+ size), a face on a studio wall, neutral -> peak sequences, CK+ codes;
* ``raw/Oulu-CASIA/VL/Strong/P001/Anger/000.jpeg``: 320 x 240 JPEG frames (the Oulu-CASIA VL size),
  all 6 expression folders per subject;
* ``raw/webface/0000100/001.jpg``: 250 x 250 JPEG photos, one folder per identity (CASIA-WebFace), faces
  roughly centred as in that set, mild random expressions;
* ``paper_rehearsal.yaml``: the paper profile (experiments/configs/paper.yaml) with only what the small trees
  need changed: one fold, one epoch, a batch that fits them, optionally a smaller image size; results under
  ``OUT/results``.

The three sets use different identity seeds, so no person is in two of them (as CASIA-WebFace shares no one
with CK+ or Oulu-CASIA). The faces are found by the real MTCNN ``prepare`` runs: ``summary`` reports how many
were rejected and why. This module imports neither TensorFlow nor MTCNN.

    python -m data_prep.rehearsal write --out results/rehearsal      # the trees + the profile
    python -m data_prep.rehearsal summary --out results/rehearsal    # rehearsal.md from what the flow wrote
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from . import raw_trees, seeds
from . import synthfaces as sf

#: CK+ code of each Oulu-CASIA expression folder (synthfaces draws CK+ codes)
OULU_FOLDER_CODES = {"Anger": 1, "Disgust": 3, "Fear": 4, "Happiness": 5, "Sadness": 6, "Surprise": 7}
CKPLUS_FRAME = (490, 640)  # height, width of a CK+ frame
OULU_FRAME = (240, 320)  # Oulu-CASIA VL frame
WEBFACE_FRAME = (250, 250)  # CASIA-WebFace photo
#: identity seeds of the three sets (none is the Table 2 synthfaces seed 0 or the pretraining seed 1000)
SEEDS = {"ckplus": 2001, "oulu": 2002, "webface": 2003}


@dataclass(frozen=True)
class RehearsalConfig:
    """Sizes of the rehearsal trees and of the derived paper profile."""

    ckplus_subjects: int = 12
    ckplus_sequences: int = 3  # labelled sequences per CK+ subject (1..7)
    oulu_subjects: int = 12
    frames: int = 6  # frames per sequence (>= 4: first + last 3)
    webface_identities: int = 24
    webface_images: int = 12
    image_size: int = 160  # the derived profile's image size (the paper: 160)
    batch_size: int = 16  # the derived profile's batch (the paper's 90 exceeds a small fold)
    num_folds: int = 4  # folds of `prepare` (the paper: 10, for 100+ subjects)

    def __post_init__(self) -> None:
        if self.frames < 4:
            raise ValueError(f"frames must be >= 4 (first + last 3), got {self.frames}")
        if not 1 <= self.ckplus_sequences <= 7:
            raise ValueError(f"ckplus_sequences must be in 1..7, got {self.ckplus_sequences}")
        for name in ("ckplus_subjects", "oulu_subjects"):
            if getattr(self, name) < 3 * self.num_folds:
                raise ValueError(
                    f"{name} must be >= 3 x num_folds ({3 * self.num_folds}) so that every test fold "
                    f"has verification pairs and training identities left after MTCNN's rejects, "
                    f"got {getattr(self, name)}"
                )
        if self.webface_identities < 2 or self.webface_images < 2:
            raise ValueError("webface_identities and webface_images must be >= 2")


def render_raw_frame(
    params: dict,
    code: int,
    intensity: float,
    rng: np.random.Generator,
    height: int,
    width: int,
    centre: np.ndarray,
    scale: float,
    roll: float,
    yaw: float,
) -> np.ndarray:
    """One raw frame: a synthfaces face (CK+ ``code`` at ``intensity``) on a ``height`` x ``width`` wall (uint8 RGB)."""
    background = sf.background(height, width, rng)
    mat = sf.face_transform(centre, scale, roll)
    img, _ = sf.render_frame(params, code, intensity, rng, max(height, width), mat, yaw, None, False, background)
    return camera(img, rng)


def camera(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A camera's nuisance at raw-frame size: illumination gradient and gain, blur and sensor noise (uint8 RGB).

    The blur (sigma 0.6-1 px per 245 px of frame height: about 2 px on a CK+ frame) is there for the detector:
    MTCNN finds the drawn faces less often when their edges are sharp (median best confidence 0.89 unblurred
    vs 0.98 at sigma 2 px, on 24 CK+-size frames)."""
    h, w = img.shape[:2]
    ys = np.linspace(-0.5, 0.5, h, dtype=np.float32)[:, None, None]
    xs = np.linspace(-0.5, 0.5, w, dtype=np.float32)[None, :, None]
    angle = rng.uniform(0, 2 * np.pi)
    out = (
        img.astype(np.float32)
        * rng.uniform(0.85, 1.1)
        * (1.0 + rng.uniform(0.0, 0.4) * (np.cos(angle) * xs + np.sin(angle) * ys))
    )
    out = cv2.GaussianBlur(out, (0, 0), sigmaX=rng.uniform(0.6, 1.0) * h / 245.0)
    out = out + rng.normal(0, rng.uniform(1.0, 4.0), out.shape).astype(np.float32)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def render_sequence(
    params: dict, code: int, frames: int, rng: np.random.Generator, height: int, width: int
) -> list[np.ndarray]:
    """A neutral -> peak sequence of ``frames`` raw frames; the subject sits still (small per-frame drift)."""
    peak = rng.uniform(0.85, 1.0)
    scale = height * rng.uniform(0.15, 0.19)
    centre = np.array([width / 2, height * 0.45]) + rng.normal(0, 0.03 * height, 2)
    roll, yaw = rng.normal(0, np.deg2rad(4)), rng.normal(0, 0.15)
    out = []
    for intensity in sf.intensity_curve(frames, peak):
        drift = centre + rng.normal(0, 0.005 * height, 2)
        out.append(
            render_raw_frame(
                params,
                code,
                float(intensity),
                rng,
                height,
                width,
                drift,
                scale * rng.uniform(0.98, 1.02),
                roll + rng.normal(0, np.deg2rad(1)),
                yaw + rng.normal(0, 0.03),
            )
        )
    return out


#: OpenCV settings of the frames: PNG as CK+ (lossless), JPEG at quality 95
PNG = (cv2.IMWRITE_PNG_COMPRESSION, 3)
JPEG = (cv2.IMWRITE_JPEG_QUALITY, 95)


def write_ckplus_tree(root: str | Path, cfg: RehearsalConfig) -> dict:
    """CK+ layout under ``root``: ``cohn-kanade-images/S1xx/00q/*.png`` and ``Emotion/.../*_emotion.txt``."""
    root = Path(root)
    images = 0
    for i in range(cfg.ckplus_subjects):
        subj = f"S{100 + i:03d}"
        params = sf.identity_params(SEEDS["ckplus"], i)
        codes = sf.subject_expressions(SEEDS["ckplus"], i, cfg.ckplus_sequences)
        for q, code in enumerate(codes, start=1):
            seq = f"{q:03d}"
            rng = seeds.SEQUENCE.rng(SEEDS["ckplus"], i, q)
            frames = render_sequence(params, code, cfg.frames, rng, *CKPLUS_FRAME)
            raw_trees.ckplus_sequence(root, subj, seq, frames, code, PNG)
            images += len(frames)
    return {
        "root": str(root),
        "subjects": cfg.ckplus_subjects,
        "sequences": cfg.ckplus_subjects * cfg.ckplus_sequences,
        "images": images,
        "frame": f"{CKPLUS_FRAME[1]}x{CKPLUS_FRAME[0]} PNG",
    }


def write_oulu_tree(root: str | Path, cfg: RehearsalConfig) -> dict:
    """Oulu-CASIA layout under ``root``: ``VL/Strong/P0xx/<Expression>/000.jpeg``, all 6 expressions per subject."""
    root = Path(root)
    images = 0
    for i in range(cfg.oulu_subjects):
        subj = f"P{i + 1:03d}"
        params = sf.identity_params(SEEDS["oulu"], i)
        for q, (folder, code) in enumerate(OULU_FOLDER_CODES.items(), start=1):
            rng = seeds.SEQUENCE.rng(SEEDS["oulu"], i, q)
            frames = render_sequence(params, code, cfg.frames, rng, *OULU_FRAME)
            raw_trees.oulu_sequence(root, subj, folder, frames, params=JPEG)
            images += len(frames)
    return {
        "root": str(root),
        "subjects": cfg.oulu_subjects,
        "sequences": cfg.oulu_subjects * 6,
        "images": images,
        "frame": f"{OULU_FRAME[1]}x{OULU_FRAME[0]} JPEG",
    }


def write_webface_tree(root: str | Path, cfg: RehearsalConfig) -> dict:
    """CASIA-WebFace layout under ``root``: ``<7-digit identity>/<nnn>.jpg``, faces roughly centred."""
    root = Path(root)
    h, w = WEBFACE_FRAME
    for i in range(cfg.webface_identities):
        params = sf.identity_params(SEEDS["webface"], i)
        rng = seeds.EXPRESSIONS.rng(SEEDS["webface"], i)
        photos = []
        for _ in range(cfg.webface_images):
            code = 0 if rng.random() < 0.5 else int(rng.integers(1, 8))
            centre = np.array([w / 2, h * 0.47]) + rng.normal(0, 0.03 * h, 2)
            img = render_raw_frame(
                params,
                code,
                float(rng.uniform(0.15, 0.5)),
                rng,
                h,
                w,
                centre,
                h * rng.uniform(0.19, 0.23),
                rng.normal(0, np.deg2rad(6)),
                rng.normal(0, 0.2),
            )
            photos.append(img)
        raw_trees.identity_folder(root, f"{100 + i:07d}", photos, ".jpg", JPEG)
    return {
        "root": str(root),
        "identities": cfg.webface_identities,
        "images": cfg.webface_identities * cfg.webface_images,
        "frame": f"{w}x{h} JPEG",
    }


def write_profile(
    path: str | Path, cfg: RehearsalConfig, results_dir: str | Path, methods: list[str] | None = None
) -> Path:
    """The paper profile with one fold, one epoch, ``cfg.batch_size`` and ``cfg.image_size`` (and only ``methods``
    when given); results under ``results_dir``."""
    import yaml

    from experiments.face_expression.config import CONFIG_DIR

    data = yaml.safe_load((CONFIG_DIR / "paper.yaml").read_text())
    data.update(
        name="paper_rehearsal",
        folds=[0],
        epochs=1,
        batch_size=cfg.batch_size,
        image_size=cfg.image_size,
        results_dir=str(results_dir),
    )
    if methods:
        data["methods"] = list(methods)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "# Written by `python -m data_prep.rehearsal write`: experiments/configs/paper.yaml with one fold,\n"
        "# one epoch, a batch that fits the rehearsal's small folds and its image size.\n"
        + yaml.safe_dump(data, sort_keys=False)
    )
    return path


def write_all(out: str | Path, cfg: RehearsalConfig | None = None, methods: list[str] | None = None) -> dict:
    """Write the three raw trees and the derived profile under ``out``; returns (and saves) what was written."""
    cfg = cfg or RehearsalConfig()
    out = Path(out)
    raw = out / "raw"
    written = {
        "config": asdict(cfg),
        "ckplus": write_ckplus_tree(raw / "CK+", cfg),
        "oulu": write_oulu_tree(raw / "Oulu-CASIA", cfg),
        "webface": write_webface_tree(raw / "webface", cfg),
        "profile": str(write_profile(out / "paper_rehearsal.yaml", cfg, out / "results", methods)),
    }
    (out / "rehearsal.json").write_text(json.dumps(written, indent=2))
    return written


# ------------------------------------------------------------------------------------------- summary
def _latest_run(results: Path) -> Path | None:
    runs = sorted((p.parent for p in results.glob("*/per_fold.csv")), key=lambda p: p.stat().st_mtime)
    return runs[-1] if runs else None


def summarize(out: str | Path) -> str:
    """A markdown summary of a finished rehearsal under ``out`` (trees, MTCNN rejects, pretraining, both runs)."""
    import pandas as pd

    out = Path(out)
    written = json.loads((out / "rehearsal.json").read_text())
    lines = [
        "# Rehearsal of the real-data path",
        "",
        "Written by `python -m data_prep.rehearsal summary` after `make rehearse-real-flow`. Data: the stand-in "
        "trees of `data_prep.rehearsal` (synthetic faces in the CK+, Oulu-CASIA and CASIA-WebFace layouts), "
        "NOT the real datasets: the scores say that the flow runs, not how well the method does.",
        "",
        "| step | result |",
        "|---|---|",
    ]
    for key in ("ckplus", "oulu", "webface"):
        w = written[key]
        lines.append(
            f"| raw tree `{key}` | {w['images']} images ({w['frame']}), "
            f"{w.get('subjects', w.get('identities'))} {'identities' if key == 'webface' else 'subjects'} |"
        )
    for key in ("ckplus", "oulu"):
        summary_path = out / "data" / key / "summary.json"
        if summary_path.is_file():
            s = json.loads(summary_path.read_text())
            rejects = s.get("rejects_by_reason", {})
            lines.append(
                f"| `prepare {key}` (MTCNN) | {s.get('images', '?')} protocol images kept, rejects "
                f"{json.dumps(rejects) if rejects else 'none'} |"
            )
    pretrain = out / "pretrain" / "summary.json"
    if pretrain.is_file():
        s = json.loads(pretrain.read_text())
        keep = {
            k: s[k]
            for k in ("identities", "images", "rejects_by_reason", "epochs_done", "train_seconds_total")
            if k in s
        }
        lines.append(f"| `pretrain --align` (MTCNN, paper network) | {json.dumps(keep)} |")
    sidecar = out / "checkpoints" / "face.json"
    if sidecar.is_file():
        meta = json.loads(sidecar.read_text())
        lines.append(
            f"| checkpoint sidecar | backbone {meta['backbone']}, image_size {meta['image_size']}, "
            f"standardize {meta['standardize']} |"
        )
    for key in ("ckplus", "oulu"):
        run = _latest_run(out / "results" / key)
        if run is None:
            lines.append(f"| paper profile on `{key}` | no finished run |")
            continue
        frame = pd.read_csv(run / "per_fold.csv")
        env = json.loads((run / "environment.json").read_text())
        cols = [
            c
            for c in ("method", "fold", "expression_accuracy", "verification_accuracy", "train_seconds")
            if c in frame.columns
        ]
        rows = "; ".join(
            ", ".join(f"{r[c]:.3f}" if isinstance(r[c], float) else str(r[c]) for c in cols)
            for _, r in frame[cols].iterrows()
        )
        lines.append(
            f"| paper profile on `{key}` (`{run.name}`, {env.get('machine', 'unknown machine')}) | pretrained from "
            f"`{env.get('pretrained_checkpoint')}`; skipped {env.get('skipped_methods') or 'none'}; "
            f"{len(frame)} (method, fold) rows |"
        )
        lines.append(f"| `{key}` rows ({', '.join(cols)}) | {rows} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m data_prep.rehearsal", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    w = sub.add_parser("write", help="write the raw CK+ / Oulu-CASIA / CASIA-WebFace trees and the derived profile")
    w.add_argument("--out", required=True, help="rehearsal folder (raw/, paper_rehearsal.yaml, rehearsal.json)")
    for field, default in asdict(RehearsalConfig()).items():
        w.add_argument(f"--{field.replace('_', '-')}", type=int, default=default, help=f"default {default}")
    w.add_argument("--methods", nargs="+", help="only these rows of the paper profile (default: all)")
    s = sub.add_parser("summary", help="print (and write OUT/rehearsal.md) the summary of a finished rehearsal")
    s.add_argument("--out", required=True)
    s.add_argument("--publish", help="also write the summary to this file (e.g. docs/paper-profile/rehearsal.md)")
    args = parser.parse_args(argv)
    try:
        if args.command == "write":
            cfg = RehearsalConfig(**{f: getattr(args, f) for f in asdict(RehearsalConfig())})
            written = write_all(args.out, cfg, args.methods)
            print(json.dumps({k: v for k, v in written.items() if k != "config"}, indent=2))
        else:
            text = summarize(args.out)
            (Path(args.out) / "rehearsal.md").write_text(text)
            if args.publish:
                Path(args.publish).parent.mkdir(parents=True, exist_ok=True)
                Path(args.publish).write_text(text)
            print(text, end="")
    except (ValueError, FileNotFoundError) as err:
        print(f"data_prep.rehearsal: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
