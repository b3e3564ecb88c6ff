"""The typed config of ``dynamic-mtl pretrain``: :class:`PretrainConfig`, read from YAML/JSON files and
``KEY=VALUE`` settings by experiments/typed_config.py, as ``run`` reads ExperimentConfig.

Imports no TensorFlow, so ``pretrain --help``, ``--print-config`` and every input check are fast. Bundled
configs live in experiments/pretraining/configs (``--config synthfaces``: ``make pretrain``).
"""

from __future__ import annotations

import dataclasses
import json
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from experiments.config import BACKBONE_MIN_IMAGE_SIZE, STANDARDIZATIONS
from experiments.rundir import RunError, atomic_save, holds_files
from experiments.typed_config import ConfigError, ConfigNotFoundError, from_mapping, read_file

CONFIG_DIR = Path(__file__).with_name("configs")
#: Image size per backbone when ``image_size`` is not given (small_cnn: the quick profile's size).
DEFAULT_IMAGE_SIZE = {"small_cnn": 48, "inception_resnet_v1_reduced": 160}
#: data_prep.pipeline.DEFAULT_CROP_FRACTION (facenet's 160 of 182), spelt out to import no TensorFlow;
#: tests/test_pretrain_config.py checks that they agree.
DEFAULT_CROP_FRACTION = 160.0 / 182.0
OPTIMIZERS = ("adam", "rmsprop", "sgd")
STRATEGIES = ("default", "mirrored", "multiworker")
VERIFY_MODES = ("decode", "header", "none")
PROGRESS_MODES = ("tqdm", "keras", "none")
#: Fields without a default: a config file, a flag (--data, --out) or --set must give them.
REQUIRED = ("data", "out")


class FieldError(ValueError):
    """A value out of range: ``field`` (dotted for nested keys) and ``text``, the rest of the sentence."""

    def __init__(self, field_name: str, text: str):
        super().__init__(f"{field_name} {text}")
        self.field, self.text = field_name, text


@dataclass
class PretrainConfig:
    """Everything that defines a pretraining run (saved as ``OUT/config.json``, the run's record)."""

    data: str
    out: str
    aligned: bool = True  # False: align data/ with MTCNN first (--align)
    aligned_dir: str | None = None  # where --align writes crops (default OUT/aligned)
    align_image_size: int = 182  # MTCNN crop size (authors: 182, margin 44)
    align_margin: float = 44.0
    align_workers: int = 1
    backbone: str = "small_cnn"
    backbone_options: dict[str, Any] = field(default_factory=dict)  # e.g. {"width": 16} (small_cnn)
    image_size: int | None = None  # None: DEFAULT_IMAGE_SIZE[backbone]
    standardize: str = "prewhiten"
    crop_fraction: float = DEFAULT_CROP_FRACTION
    flip: bool = True
    embedding_size: int | None = 128  # None: pooled features (authors')
    dropout_rate: float = 0.2
    weight_decay: float = 5e-5
    center_loss_weight: float = 0.01
    center_update_rate: float = 0.5
    optimizer: str = "adam"
    learning_rate: float = 1e-3
    lr_decay_epochs: list[int] = field(default_factory=list)
    lr_decay_factor: float = 0.1
    global_clipnorm: float | None = None
    epochs: int = 10
    batch_size: int = 64
    seed: int = 0
    strategy: str = "default"
    logical_cpus: int | None = None
    synchronized_batchnorm: bool = False
    min_images: int = 2
    verify: str = "decode"
    strict: bool = False
    keep_checkpoints: int = 2
    export: str | None = None
    progress: str = "tqdm"  # tqdm | keras | none
    stop_after_epochs: int | None = None  # stop this invocation after N epochs (as if killed; tests)

    def __post_init__(self) -> None:
        if self.image_size is None and self.backbone in DEFAULT_IMAGE_SIZE:
            self.image_size = DEFAULT_IMAGE_SIZE[self.backbone]
        self.validate()

    def validate(self) -> None:
        """Raise :class:`FieldError` (a ``ValueError``) naming the first field out of range."""

        def need(ok: bool, name: str, text: str) -> None:
            if not ok:
                raise FieldError(name, text)

        for name in REQUIRED:
            need(bool(getattr(self, name)), name, "is required (a path)")
        for name, choices in (
            ("backbone", tuple(BACKBONE_MIN_IMAGE_SIZE)),
            ("standardize", STANDARDIZATIONS),
            ("optimizer", OPTIMIZERS),
            ("strategy", STRATEGIES),
            ("verify", VERIFY_MODES),
            ("progress", PROGRESS_MODES),
        ):
            value = getattr(self, name)
            need(value in choices, name, f"must be one of {', '.join(choices)}, got {value!r}")
        if self.backbone_options:
            need(self.backbone == "small_cnn", "backbone_options", f"{self.backbone_options} apply to small_cnn only")
            unknown = sorted(set(self.backbone_options) - {"width"})
            need(not unknown, "backbone_options", f"has unknown small_cnn options {unknown} (known: width)")
            width = self.backbone_options.get("width")
            need(
                width is None or (isinstance(width, int) and not isinstance(width, bool) and width >= 1),
                "backbone_options.width",
                f"must be an integer >= 1, got {width!r}",
            )
        minimum = BACKBONE_MIN_IMAGE_SIZE[self.backbone]
        need(
            self.image_size >= minimum, "image_size", f"must be >= {minimum} for {self.backbone}, got {self.image_size}"
        )
        need(0.0 < self.crop_fraction <= 1.0, "crop_fraction", f"must lie in (0, 1], got {self.crop_fraction}")
        need(
            self.embedding_size is None or self.embedding_size >= 1,
            "embedding_size",
            f"must be >= 1, or null for the pooled features (--embedding-size 0), got {self.embedding_size}",
        )
        need(0.0 <= self.dropout_rate < 1.0, "dropout_rate", f"must lie in [0, 1), got {self.dropout_rate}")
        for name in ("weight_decay", "center_loss_weight", "align_margin"):
            need(getattr(self, name) >= 0, name, f"must be >= 0, got {getattr(self, name)}")
        need(
            0.0 <= self.center_update_rate <= 1.0,
            "center_update_rate",
            f"must lie in [0, 1], got {self.center_update_rate}",
        )
        need(self.learning_rate > 0, "learning_rate", f"must be > 0, got {self.learning_rate}")
        need(0.0 < self.lr_decay_factor <= 1.0, "lr_decay_factor", f"must lie in (0, 1], got {self.lr_decay_factor}")
        need(
            all(e >= 1 for e in self.lr_decay_epochs) and self.lr_decay_epochs == sorted(set(self.lr_decay_epochs)),
            "lr_decay_epochs",
            f"must be increasing epochs >= 1, got {self.lr_decay_epochs}",
        )
        need(
            self.global_clipnorm is None or self.global_clipnorm > 0,
            "global_clipnorm",
            f"must be > 0 or null, got {self.global_clipnorm}",
        )
        need(self.epochs >= 1, "epochs", f"must be >= 1, got {self.epochs}")
        need(self.batch_size >= 2, "batch_size", f"must be >= 2, got {self.batch_size}")
        for name in (
            "align_image_size",
            "align_workers",
            "min_images",
            "keep_checkpoints",
            "logical_cpus",
            "stop_after_epochs",
        ):
            value = getattr(self, name)
            need(value is None or value >= 1, name, f"must be >= 1, got {value}")

    # ------------------------------------------------------------------ I/O
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def save(self, path: str | Path) -> None:
        """``path`` as JSON (``.json``) or YAML, written atomically; :meth:`load` and ``pretrain --config``
        read it back."""
        path = Path(path)
        text = self.to_yaml() if path.suffix in (".yaml", ".yml") else json.dumps(self.to_dict(), indent=2)
        atomic_save(path, lambda tmp: tmp.write_text(text))

    @classmethod
    def load(cls, path: str | Path) -> PretrainConfig:
        """A complete config file (a bundled name, a YAML/JSON file, or a run's ``config.json``); any
        problem raises ``ConfigError`` naming the field, the file and (YAML) the line."""
        path = config_path(path)
        data, lines = read_file(path)
        file_fields(data, str(path), lines)  # types and unknown keys
        missing = [name for name in REQUIRED if name not in data]
        if missing:
            raise ConfigError(f"{path}: {missing[0]} is required and the file does not set it")
        try:
            return from_mapping(cls, data, str(path), lines)
        except FieldError as err:
            raise ConfigError(located(err, str(path), lines)) from None


def check_out_folder(out: str | Path, resume: bool) -> None:
    """Refuse (:class:`~experiments.rundir.RunError`) an ``--out`` folder that already holds files, unless the
    run is resumed: the rule of every run directory (experiments/rundir.py)."""
    out = Path(out)
    if resume or not holds_files(out):
        return
    try:
        held = f"a run (epoch {json.loads((out / 'state.json').read_text())['epoch']} done)"
    except (OSError, ValueError, KeyError, TypeError):
        held = "files"
    raise RunError(f"{out} already holds {held}; pass --resume to continue it, or choose another --out")


def located(err: FieldError, source: str, lines: dict[str, int]) -> str:
    """``source:line: field text`` (the line of the field's key, when known)."""
    line = lines.get(err.field) or lines.get(err.field.split(".")[0])
    return f"{source}:{line}: {err}" if line else f"{source}: {err}"


def bundled_configs() -> list[str]:
    """Names of the configs in experiments/pretraining/configs (``pretrain --config synthfaces``)."""
    return sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))


def config_path(name: str | Path) -> Path:
    """``name`` as a file, or a bundled config's name; raises :class:`ConfigNotFoundError`."""
    path = Path(name)
    if not path.exists() and (CONFIG_DIR / f"{path}.yaml").is_file():
        path = CONFIG_DIR / f"{path}.yaml"
    if not path.is_file():
        raise ConfigNotFoundError(f"config {path} not found; bundled pretrain configs: {', '.join(bundled_configs())}")
    return path


def _all_optional() -> type:
    """PretrainConfig's fields and types, every field optional and no checks: for typing one file's keys."""
    hints = typing.get_type_hints(PretrainConfig)
    return dataclasses.make_dataclass(
        "PretrainConfigFile", [(f.name, hints[f.name], field(default=None)) for f in dataclasses.fields(PretrainConfig)]
    )


def file_fields(data: Any, source: str, lines: dict[str, int]) -> dict[str, Any]:
    """The keys of a config file, typed (a bad type or an unknown key raises ``ConfigError`` with
    ``source:line``); values are returned as written in the file, numbers made int or float."""
    typed = from_mapping(_all_optional(), data if data is not None else {}, source, lines)
    return {name: getattr(typed, name) for name in data or {}}


__all__ = [
    "CONFIG_DIR",
    "DEFAULT_CROP_FRACTION",
    "DEFAULT_IMAGE_SIZE",
    "FieldError",
    "OPTIMIZERS",
    "PretrainConfig",
    "REQUIRED",
    "bundled_configs",
    "check_out_folder",
    "config_path",
    "file_fields",
    "located",
]
