"""``dynamic-mtl pretrain``, ``dynamic-mtl eval-lfw`` and ``dynamic-mtl synthfaces-identities`` (docs/pretraining.md)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from experiments.config import BACKBONE_MIN_IMAGE_SIZE, STANDARDIZATIONS
from experiments.typed_config import (
    ConfigError,
    add_config_argument,
    add_print_config_argument,
    add_seed_argument,
    add_settings_argument,
    from_mapping,
    read_file,
    set_dotted,
)

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


#: ``pretrain`` flags named otherwise than ``--<field-with-dashes>`` (for messages naming where a value came from)
FLAG_NAMES = {
    "backbone_options": "--width",
    "flip": "--no-flip",
    "dropout_rate": "--dropout",
    "synchronized_batchnorm": "--sync-batchnorm",
}
#: PretrainConfig fields set by a flag of the same destination (``--width`` and ``--embedding-size`` are
#: translated; ``--resume`` is how a run starts, not a setting)
FLAG_FIELDS = (
    "data",
    "out",
    "aligned",
    "aligned_dir",
    "align_image_size",
    "align_workers",
    "backbone",
    "image_size",
    "standardize",
    "crop_fraction",
    "flip",
    "dropout_rate",
    "weight_decay",
    "center_loss_weight",
    "optimizer",
    "learning_rate",
    "lr_decay_epochs",
    "lr_decay_factor",
    "epochs",
    "batch_size",
    "seed",
    "strategy",
    "logical_cpus",
    "synchronized_batchnorm",
    "min_images",
    "verify",
    "strict",
    "keep_checkpoints",
    "export",
    "progress",
    "stop_after_epochs",
)


class _Sources:
    """Where each field's value came from: the ``--config`` file (and line), a flag or ``--set``."""

    def __init__(self, args: argparse.Namespace):
        self.args, self.origin, self.source, self.lines = args, {}, None, {}

    def name(self, field: str) -> str:
        """How a message names ``field``: ``--epochs``, ``cfg.yaml:7: epochs``, ``--set: epochs`` or ``epochs``."""
        top = field.split(".")[0]
        where = self.origin.get(top)
        if where == "flag":
            if top == "aligned":
                return "--aligned" if self.args.aligned else "--align"
            return FLAG_NAMES.get(top, "--" + top.replace("_", "-"))
        if where == "file":
            line = self.lines.get(field) or self.lines.get(top)
            return f"{self.source}:{line}: {field}" if line else f"{self.source}: {field}"
        if where == "set":
            return f"--set: {field}"
        return field


def pretrain_config_from_args(a: argparse.Namespace, check_paths: bool = True):
    """The :class:`~experiments.pretraining.config.PretrainConfig` of a ``pretrain`` command line:
    defaults < ``--config`` file < flags < ``--set``. Every problem raises :class:`ConfigError` naming the
    field where its value came from (the flag, or the file and line); with ``check_paths`` the paths too."""
    from experiments.pretraining.config import (
        REQUIRED,
        FieldError,
        PretrainConfig,
        check_out_folder,
        config_path,
        file_fields,
    )
    from experiments.rundir import RunError

    sources, data = _Sources(a), {}
    if a.config:
        path = config_path(a.config)
        raw, lines = read_file(path)
        data = file_fields(raw, str(path), lines)
        sources.source, sources.lines = str(path), lines
        sources.origin.update(dict.fromkeys(data, "file"))
    flags = {name: getattr(a, name) for name in FLAG_FIELDS if getattr(a, name) is not None}
    if a.width is not None:
        flags["backbone_options"] = {**(data.get("backbone_options") or {}), "width": a.width}
    if a.embedding_size is not None:
        flags["embedding_size"] = a.embedding_size or None  # 0: the pooled features
    data.update(flags)
    sources.origin.update(dict.fromkeys(flags, "flag"))
    for assignment in a.settings:
        set_dotted(data, PretrainConfig, assignment)
        sources.origin[assignment.partition("=")[0].strip().split(".")[0]] = "set"
    for name in REQUIRED:
        _require(data.get(name) not in (None, ""), f"--{name} is required (or {name}: in the --config file)")
    _require(
        "aligned" in sources.origin,
        "one of --aligned / --align is required (or aligned: true / false in the --config file)",
    )
    try:
        cfg = from_mapping(PretrainConfig, data, "--set" if a.settings else None)
    except FieldError as err:
        raise ConfigError(f"{sources.name(err.field)} {err.text}") from None
    if check_paths:
        _require(
            Path(cfg.data).is_dir(),
            f"{sources.name('data')} {cfg.data}: no such directory (one sub-folder of images per identity)",
        )
        _require(not Path(cfg.out).is_file(), f"{sources.name('out')} {cfg.out} is a file, not a run folder")
        try:
            check_out_folder(cfg.out, resume=a.resume)
        except RunError as err:
            raise ConfigError(str(err)) from None
        _require(
            cfg.export is None or not Path(cfg.export).is_dir(),
            f"{sources.name('export')} {cfg.export} is a directory, not a .keras file",
        )
    return cfg


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


PRETRAIN_EXAMPLES = """\
examples:
  dynamic-mtl pretrain --config synthfaces --resume        # what `make pretrain` trains
  dynamic-mtl pretrain --config synthfaces --print-config  # the resolved config, no work
  dynamic-mtl pretrain --config study --set seed=1 center_loss_weight=0.1 --out runs/seed1
  dynamic-mtl pretrain --data /data/casia_aligned --aligned --out runs/casia --epochs 40
  dynamic-mtl pretrain --config runs/casia/config.json --resume   # a run's record is a config"""


def register(subparsers) -> None:
    """Add ``pretrain``, ``eval-lfw`` and ``synthfaces-identities``."""
    from experiments.pretraining.config import bundled_configs

    p = subparsers.add_parser(
        "pretrain",
        help="pretrain the single-task face network (trunk + branch 1) on identity folders",
        description="Softmax + center loss (L1, Eq. 2) on DATA/<identity>/<image>. Checkpoints every epoch into "
        "--out (resume with --resume), TensorBoard logs in OUT/tensorboard, the trunk + branch-1 network "
        "in OUT/network.keras (+ --export), the resolved config in OUT/config.json. Settings: the --config "
        "file, then the flags, then --set (every flag is optional where the config sets its field). "
        f"Bundled configs: {', '.join(bundled_configs())}. See docs/pretraining.md.\n\n{PRETRAIN_EXAMPLES}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_config_argument(p, "synthfaces (`make pretrain`), study (`make pretrain-study`); also a run's OUT/config.json")
    p.add_argument(
        "--data", help="folder with one sub-folder of images per identity (required unless --config sets it)"
    )
    p.add_argument("--out", help="run folder: checkpoints, logs, network.keras (required unless --config sets it)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument(
        "--aligned",
        dest="aligned",
        action="store_true",
        default=None,
        help="images are already aligned face crops (this or --align is required unless --config sets aligned)",
    )
    mode.add_argument(
        "--align",
        dest="aligned",
        action="store_false",
        default=None,
        help="align with MTCNN first (data_prep path; crops in --aligned-dir, resumable)",
    )
    p.add_argument("--aligned-dir", help="where --align writes crops (default OUT/aligned)")
    p.add_argument("--align-image-size", type=int, help="MTCNN crop size (default 182, authors')")
    p.add_argument("--align-workers", type=int, help="MTCNN processes (default 1)")
    p.add_argument("--backbone", choices=tuple(BACKBONE_MIN_IMAGE_SIZE), help="trunk (default small_cnn)")
    p.add_argument(
        "--width", type=int, help="small_cnn width (backbone_options.width; the quick profile uses 16, default 32)"
    )
    p.add_argument(
        "--image-size",
        type=int,
        help="network input size (default 48 for small_cnn, 160 for inception_resnet_v1_reduced)",
    )
    p.add_argument("--standardize", choices=STANDARDIZATIONS, help="per-image standardisation (default prewhiten)")
    p.add_argument(
        "--crop-fraction",
        type=float,
        help="random crop (train) / central crop (eval) fraction before resizing (default 160/182)",
    )
    p.add_argument("--no-flip", dest="flip", action="store_false", default=None, help="no random horizontal flips")
    p.add_argument("--embedding-size", type=int, help="bottleneck size (default 128); 0 = pooled features (authors')")
    p.add_argument(
        "--dropout", dest="dropout_rate", type=float, help="dropout rate of branch 1 (default 0.2; paper 0.5)"
    )
    p.add_argument("--weight-decay", type=float, help="default 5e-5")
    p.add_argument("--center-loss-weight", type=float, help="alpha of Eq. 2 (default 0.01)")
    p.add_argument("--optimizer", choices=("adam", "rmsprop", "sgd"), help="default adam")
    p.add_argument("--learning-rate", type=float, help="default 1e-3")
    p.add_argument(
        "--lr-decay-epochs",
        type=_int_list,
        help="comma-separated epochs after which the learning rate is multiplied by --lr-decay-factor (default none)",
    )
    p.add_argument("--lr-decay-factor", type=float, help="default 0.1")
    p.add_argument("--epochs", type=int, help="default 10")
    p.add_argument("--batch-size", type=int, help="global batch size, all replicas (default 64)")
    add_seed_argument(p, "initialisation, input order, augmentation and dropout", default="0")
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --out from its last checkpoint (starts fresh if there is none)",
    )
    p.add_argument(
        "--strategy",
        choices=("default", "mirrored", "multiworker"),
        help="tf.distribute strategy: mirrored = all GPUs (else --logical-cpus CPU replicas); default: none",
    )
    p.add_argument("--logical-cpus", type=int, help="split the CPU into N devices (mirrored on CPU)")
    p.add_argument(
        "--sync-batchnorm",
        dest="synchronized_batchnorm",
        action="store_true",
        default=None,
        help="synchronised batch norm across replicas",
    )
    p.add_argument("--min-images", type=int, help="identities with fewer usable images are rejected (default 2)")
    p.add_argument(
        "--verify",
        choices=("decode", "header", "none"),
        help="how images are checked before training (default decode: every image once)",
    )
    p.add_argument(
        "--strict",
        action="store_true",
        default=None,
        help="fail on any rejected file instead of reporting it",
    )
    p.add_argument("--keep-checkpoints", type=int, help="epoch checkpoints kept (default 2)")
    p.add_argument("--export", help=f"also copy the network here (e.g. {DEFAULT_CHECKPOINT})")
    p.add_argument("--progress", choices=("tqdm", "keras", "none"), help="default tqdm")
    p.add_argument("--stop-after-epochs", type=int, help=argparse.SUPPRESS)
    add_settings_argument(
        p,
        "override any PretrainConfig field, also those without a flag (align_margin, center_update_rate, "
        "global_clipnorm); the value is read as YAML and checked against the field's type "
        "(e.g. --set lr_decay_epochs=[6] backbone_options.width=16)",
    )
    add_print_config_argument(p)
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
    cfg = pretrain_config_from_args(a, check_paths=not a.print_config)  # ConfigError: one line, exit 2
    if a.print_config:
        print(cfg.to_yaml(), end="")
        return 0
    from data_prep.identity_folders import LayoutError
    from experiments.pretraining.train import run_pretrain
    from experiments.rundir import RunError

    try:
        summary = run_pretrain(cfg, resume=a.resume)
    except (ValueError, RunError, LayoutError, FileNotFoundError) as err:
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
