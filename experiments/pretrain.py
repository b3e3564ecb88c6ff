"""``dynamic-mtl pretrain``, ``dynamic-mtl eval-lfw`` and ``dynamic-mtl synthfaces-identities`` (docs/pretraining.md)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from experiments.config import BACKBONE_MIN_IMAGE_SIZE, STANDARDIZATIONS
from experiments.typed_config import ConfigError

#: Where `make pretrain` writes the embedded checkpoint (the Table-2 harness's default).
DEFAULT_CHECKPOINT = "checkpoints/pretrained/synthfaces_small_cnn.keras"
DEFAULT_IDENTITY_DATA = "data/synthfaces_identities"


def _int_list(text: str) -> list[int]:
    try:
        epochs = [int(t) for t in text.split(",") if t.strip()] if text else []
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated epochs such as 6,8, got {text!r}") from None
    if any(e < 1 for e in epochs) or epochs != sorted(set(epochs)):
        raise argparse.ArgumentTypeError(f"expected increasing epochs >= 1, got {text!r}")
    return epochs


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


def _check_crop(crop_fraction: float | None) -> None:
    _require(
        crop_fraction is None or 0.0 < crop_fraction <= 1.0, f"--crop-fraction must lie in (0, 1], got {crop_fraction}"
    )


def check_pretrain_args(a: argparse.Namespace) -> None:
    """Every ``pretrain`` input that can be checked before any work; raises :class:`ConfigError`."""
    _require(Path(a.data).is_dir(), f"--data {a.data}: no such directory (one sub-folder of images per identity)")
    _require(not Path(a.out).is_file(), f"--out {a.out} is a file, not a run folder")
    _require(a.export is None or not Path(a.export).is_dir(), f"--export {a.export} is a directory, not a .keras file")
    minimum = BACKBONE_MIN_IMAGE_SIZE[a.backbone]
    _require(
        a.image_size is None or a.image_size >= minimum,
        f"--image-size must be >= {minimum} for {a.backbone}, got {a.image_size}",
    )
    _require(a.width is None or a.width >= 1, f"--width must be >= 1, got {a.width}")
    _check_crop(a.crop_fraction)
    _require(a.embedding_size >= 0, f"--embedding-size must be >= 0 (0: pooled features), got {a.embedding_size}")
    _require(0.0 <= a.dropout < 1.0, f"--dropout must lie in [0, 1), got {a.dropout}")
    _require(a.weight_decay >= 0 and a.center_loss_weight >= 0, "--weight-decay and --center-loss-weight must be >= 0")
    _require(a.learning_rate > 0, f"--learning-rate must be > 0, got {a.learning_rate}")
    _require(0.0 < a.lr_decay_factor <= 1.0, f"--lr-decay-factor must lie in (0, 1], got {a.lr_decay_factor}")
    _require(a.epochs >= 1, f"--epochs must be >= 1, got {a.epochs}")
    _require(a.batch_size >= 2, f"--batch-size must be >= 2, got {a.batch_size}")
    for flag, value in (
        ("--align-image-size", a.align_image_size),
        ("--align-workers", a.align_workers),
        ("--min-images", a.min_images),
        ("--keep-checkpoints", a.keep_checkpoints),
        ("--logical-cpus", a.logical_cpus),
        ("--stop-after-epochs", a.stop_after_epochs),
    ):
        _require(value is None or value >= 1, f"{flag} must be >= 1, got {value}")


def check_eval_lfw_args(a: argparse.Namespace) -> None:
    """Every ``eval-lfw`` input that can be checked before loading the model; raises :class:`ConfigError`."""
    _require(Path(a.pairs).is_file(), f"--pairs {a.pairs}: no such file")
    _require(Path(a.images).is_dir(), f"--images {a.images}: no such directory")
    _require(Path(a.model).exists(), f"--model {a.model}: no such file or run folder")
    _require(a.out is None or not Path(a.out).is_file(), f"--out {a.out} is a file, not a folder")
    _require(a.batch_size >= 1, f"--batch-size must be >= 1, got {a.batch_size}")
    _require(
        a.image_size is None or a.image_size >= min(BACKBONE_MIN_IMAGE_SIZE.values()),
        f"--image-size must be >= {min(BACKBONE_MIN_IMAGE_SIZE.values())}, got {a.image_size}",
    )
    _check_crop(a.crop_fraction)


def check_identity_set_args(a: argparse.Namespace) -> None:
    """``synthfaces-identities`` inputs; raises :class:`ConfigError`."""
    _require(not Path(a.out).is_file(), f"--out {a.out} is a file, not a folder")
    for flag, value, least in (
        ("--num-identities", a.num_identities, 2),
        ("--images-per-identity", a.images_per_identity, 2),
        ("--heldout-identities", a.heldout_identities, 2),
        ("--heldout-images", a.heldout_images, 2),
        ("--image-size", a.image_size, 16),
        ("--pairs-per-fold-half", a.pairs_per_fold_half, 1),
        ("--workers", a.workers, 1),
    ):
        _require(value is None or value >= least, f"{flag} must be >= {least}, got {value}")


def register(subparsers) -> None:
    """Add ``pretrain``, ``eval-lfw`` and ``synthfaces-identities``."""
    p = subparsers.add_parser(
        "pretrain",
        help="pretrain the single-task face network (trunk + branch 1) on identity folders",
        description="Softmax + center loss (L1, Eq. 2) on DATA/<identity>/<image>. Checkpoints every epoch into "
        "--out (resume with --resume), TensorBoard logs in OUT/tensorboard, the trunk + branch-1 network "
        "in OUT/network.keras (+ --export). See docs/pretraining.md.",
    )
    p.add_argument("--data", required=True, help="folder with one sub-folder of images per identity")
    p.add_argument("--out", required=True, help="run folder (checkpoints, logs, network.keras)")
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--aligned", dest="aligned", action="store_true", help="images are already aligned face crops")
    mode.add_argument(
        "--align",
        dest="aligned",
        action="store_false",
        help="align with MTCNN first (data_prep path; crops in --aligned-dir, resumable)",
    )
    p.add_argument("--aligned-dir", default=None, help="where --align writes crops (default OUT/aligned)")
    p.add_argument("--align-image-size", type=int, default=182, help="MTCNN crop size (default 182, authors')")
    p.add_argument("--align-workers", type=int, default=1, help="MTCNN processes (default 1)")
    p.add_argument("--backbone", choices=tuple(BACKBONE_MIN_IMAGE_SIZE), default="small_cnn")
    p.add_argument(
        "--width",
        type=int,
        default=None,
        help="small_cnn width (backbone option; the quick profile uses 16, default 32)",
    )
    p.add_argument(
        "--image-size",
        type=int,
        default=None,
        help="network input size (default 48 for small_cnn, 160 for inception_resnet_v1_reduced)",
    )
    p.add_argument("--standardize", choices=STANDARDIZATIONS, default="prewhiten")
    p.add_argument(
        "--crop-fraction",
        type=float,
        default=None,
        help="random crop (train) / central crop (eval) fraction before resizing (default 160/182)",
    )
    p.add_argument("--no-flip", dest="flip", action="store_false", help="no random horizontal flips")
    p.add_argument("--embedding-size", type=int, default=128, help="bottleneck size; 0 = pooled features (authors')")
    p.add_argument("--dropout", type=float, default=0.2, help="dropout rate of branch 1 (default 0.2; paper 0.5)")
    p.add_argument("--weight-decay", type=float, default=5e-5)
    p.add_argument("--center-loss-weight", type=float, default=0.01, help="alpha of Eq. 2 (default 0.01)")
    p.add_argument("--optimizer", choices=("adam", "rmsprop", "sgd"), default="adam")
    p.add_argument("--learning-rate", type=float, default=1e-3)
    p.add_argument(
        "--lr-decay-epochs",
        type=_int_list,
        default=[],
        help="comma-separated epochs after which the learning rate is multiplied by --lr-decay-factor",
    )
    p.add_argument("--lr-decay-factor", type=float, default=0.1)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=64, help="global batch size (all replicas)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --out from its last checkpoint (starts fresh if there is none)",
    )
    p.add_argument(
        "--strategy",
        choices=("default", "mirrored", "multiworker"),
        default="default",
        help="tf.distribute strategy: mirrored = all GPUs (else --logical-cpus CPU replicas)",
    )
    p.add_argument("--logical-cpus", type=int, default=None, help="split the CPU into N devices (mirrored on CPU)")
    p.add_argument("--sync-batchnorm", action="store_true", help="synchronised batch norm across replicas")
    p.add_argument("--min-images", type=int, default=2, help="identities with fewer usable images are rejected")
    p.add_argument(
        "--verify",
        choices=("decode", "header", "none"),
        default="decode",
        help="how images are checked before training (default: decode every image once)",
    )
    p.add_argument("--strict", action="store_true", help="fail on any rejected file instead of reporting it")
    p.add_argument("--keep-checkpoints", type=int, default=2, help="epoch checkpoints kept (default 2)")
    p.add_argument("--export", default=None, help=f"also copy the network here (e.g. {DEFAULT_CHECKPOINT})")
    p.add_argument("--progress", choices=("tqdm", "keras", "none"), default="tqdm")
    p.add_argument("--stop-after-epochs", type=int, default=None, help=argparse.SUPPRESS)
    p.set_defaults(func=_pretrain)

    e = subparsers.add_parser(
        "eval-lfw",
        help="10-fold verification on an LFW-format pairs.txt",
        description="Accuracy +- std over the folds (threshold chosen on the other folds), VAL@FAR=1e-3 and AUC. "
        "Writes <model>.eval_lfw.{json,md,csv} next to the model or into --out.",
    )
    e.add_argument("--pairs", required=True, help="LFW pairs.txt (header 'FOLDS PAIRS', same/different lines)")
    e.add_argument("--images", required=True, help="images folder: NAME/NAME_0001.jpg (or .png)")
    e.add_argument("--model", required=True, help="network .keras (pretrain export / OUT/network.keras) or run folder")
    e.add_argument("--flip", action="store_true", help="fuse the embeddings of the mirrored images")
    e.add_argument(
        "--flip-mode",
        choices=("concat", "sum"),
        default="concat",
        help="concat (facenet) or sum of the two unit embeddings, then L2-normalised",
    )
    e.add_argument("--out", default=None, help="results folder (default: the model's folder)")
    e.add_argument(
        "--skip-missing",
        action="store_true",
        help="drop pairs whose images are missing/unreadable (counted in the results) instead of failing",
    )
    e.add_argument("--batch-size", type=int, default=128)
    e.add_argument("--image-size", type=int, default=None, help="override the model's preprocessing")
    e.add_argument("--standardize", choices=STANDARDIZATIONS, default=None)
    e.add_argument("--crop-fraction", type=float, default=None)
    e.set_defaults(func=_eval_lfw)

    s = subparsers.add_parser(
        "synthfaces-identities",
        help="generate the embedded large-identity pretraining set + held-out pairs.txt",
        description="synthfaces in the one-folder-per-identity layout: OUT/train (pretraining identities), "
        "OUT/heldout (never trained on) and OUT/pairs.txt (LFW format, held-out identities).",
    )
    s.add_argument("--out", default=DEFAULT_IDENTITY_DATA)
    s.add_argument("--num-identities", type=int, default=1000)
    s.add_argument("--images-per-identity", type=int, default=20)
    s.add_argument("--heldout-identities", type=int, default=200)
    s.add_argument("--heldout-images", type=int, default=10)
    s.add_argument("--image-size", type=int, default=64, help="crop size (default 64, as prepare synthfaces)")
    s.add_argument("--pairs-per-fold-half", type=int, default=300)
    s.add_argument("--seed", type=int, default=1000, help="identity seed (default 1000: not the Table-2 identities)")
    s.add_argument("--workers", type=int, default=None)
    s.add_argument("--quiet", action="store_true")
    s.set_defaults(func=_synth_identities)


def _pretrain(a: argparse.Namespace) -> int:
    check_pretrain_args(a)
    from data_prep.identity_folders import LayoutError
    from experiments.pretraining.train import PretrainConfig, PretrainError, run_pretrain

    try:
        cfg = PretrainConfig(
            data=a.data,
            out=a.out,
            aligned=a.aligned,
            aligned_dir=a.aligned_dir,
            align_image_size=a.align_image_size,
            align_workers=a.align_workers,
            backbone=a.backbone,
            backbone_options={"width": a.width} if a.width else {},
            image_size=a.image_size,
            standardize=a.standardize,
            flip=a.flip,
            **({} if a.crop_fraction is None else {"crop_fraction": a.crop_fraction}),
            embedding_size=a.embedding_size or None,
            dropout_rate=a.dropout,
            weight_decay=a.weight_decay,
            center_loss_weight=a.center_loss_weight,
            optimizer=a.optimizer,
            learning_rate=a.learning_rate,
            lr_decay_epochs=a.lr_decay_epochs,
            lr_decay_factor=a.lr_decay_factor,
            epochs=a.epochs,
            batch_size=a.batch_size,
            seed=a.seed,
            strategy=a.strategy,
            logical_cpus=a.logical_cpus,
            synchronized_batchnorm=a.sync_batchnorm,
            min_images=a.min_images,
            verify=a.verify,
            strict=a.strict,
            keep_checkpoints=a.keep_checkpoints,
            export=a.export,
            progress=a.progress,
            stop_after_epochs=a.stop_after_epochs,
        )
        summary = run_pretrain(cfg, resume=a.resume)
    except (ValueError, PretrainError, LayoutError, FileNotFoundError) as err:
        print(f"dynamic-mtl pretrain: error: {err}", file=sys.stderr)
        return 2
    final = summary["final"]
    print(
        f"pretrain: {summary['epochs_done']} epochs done ({summary['epochs_this_run']} now), "
        f"accuracy {final.get('accuracy', float('nan')):.4f}, loss {final.get('loss', float('nan')):.4f}, "
        f"{summary['images_per_second_mean']} img/s, {summary['wall_seconds_this_run']} s; "
        f"network: {summary['exported'] or summary['network']}"
    )
    return 0


def _eval_lfw(a: argparse.Namespace) -> int:
    check_eval_lfw_args(a)
    from data_prep.lfw_pairs import MissingPairImagesError, PairsFormatError
    from experiments.pretraining.lfw import EvalLFWConfig, evaluate_lfw

    try:
        cfg = EvalLFWConfig(
            pairs=a.pairs,
            images=a.images,
            model=a.model,
            flip=a.flip,
            flip_mode=a.flip_mode,
            out=a.out,
            skip_missing=a.skip_missing,
            batch_size=a.batch_size,
            image_size=a.image_size,
            standardize=a.standardize,
            crop_fraction=a.crop_fraction,
        )
        res = evaluate_lfw(cfg)
    except (PairsFormatError, MissingPairImagesError, FileNotFoundError, ValueError) as err:
        print(f"dynamic-mtl eval-lfw: error: {err}", file=sys.stderr)
        return 2
    m = res["metrics"]
    print(
        f"eval-lfw: accuracy {100 * m['accuracy_mean']:.2f} +- {100 * m['accuracy_std']:.2f} %, "
        f"VAL@FAR=1e-3 {100 * m['val_mean']:.2f} +- {100 * m['val_std']:.2f} %, AUC {m['auc']:.4f} "
        f"({res['pairs']['used']} pairs, {res['pairs']['folds']} folds, {res['seconds']} s)"
    )
    print("results: " + ", ".join(res["files"]))
    return 0


def _synth_identities(a: argparse.Namespace) -> int:
    check_identity_set_args(a)
    from data_prep.synthfaces_identities import IdentitySetConfig, generate_identity_set

    try:
        cfg = IdentitySetConfig(
            num_identities=a.num_identities,
            images_per_identity=a.images_per_identity,
            heldout_identities=a.heldout_identities,
            heldout_images_per_identity=a.heldout_images,
            image_size=a.image_size,
            seed=a.seed,
            pairs_per_half=a.pairs_per_fold_half,
        )
        summary = generate_identity_set(a.out, cfg, workers=a.workers, progress=not a.quiet)
    except ValueError as err:
        print(f"dynamic-mtl synthfaces-identities: error: {err}", file=sys.stderr)
        return 2
    print(json.dumps({k: summary[k] for k in ("train", "heldout", "pairs", "seconds")}, indent=2))
    return 0
