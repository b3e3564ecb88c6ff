"""The face/expression harness's configuration: one typed dataclass, loaded from and saved to YAML or JSON.

Field types are the schema (experiments/typed_config.py): a wrong type, an unknown key or a value out
of range raises :class:`ConfigError` naming the field, and the file and line it came from.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from data_prep import datasets
from experiments.config import BACKBONE_MIN_IMAGE_SIZE, STANDARDIZATIONS
from experiments.face_expression.methods import STATIC_DEFAULT_WEIGHTS, expand_method_names, parse_method
from experiments.optimizers import WEIGHT_UNIT_RMSPROP
from experiments.typed_config import ConfigError, ConfigNotFoundError, from_mapping, read_file, set_dotted

#: the bundled profiles (experiments/configs)
CONFIG_DIR = Path(__file__).parents[1] / "configs"

#: Keras optimizers a config may name (case-insensitive, as keras.optimizers.get accepts them).
OPTIMIZERS = ("Adadelta", "Adafactor", "Adagrad", "Adam", "AdamW", "Adamax", "Ftrl", "Lion", "Nadam", "RMSprop", "SGD")
#: dataset names (the registry in data_prep/datasets.py)
DATASETS = tuple(datasets.DATASETS)

__all__ = [
    "BACKBONE_MIN_IMAGE_SIZE",
    "CONFIG_DIR",
    "ConfigError",
    "DATASETS",
    "ExperimentConfig",
    "OPTIMIZERS",
    "OptimizerConfig",
    "STANDARDIZATIONS",
    "bundled_configs",
]


def _locate(message: str, source: str | None, lines: dict[str, int] | None) -> str:
    """Prefix ``message`` with ``source:line:`` of the longest config key it names."""
    if not source:
        return message
    named = [k for k in (lines or {}) if re.search(rf"(?<![\w.]){re.escape(k)}(?![\w.])", message)]
    line = lines[max(named, key=len)] if named else None
    return f"{source}:{line}: {message}" if line else f"{source}: {message}"


def bundled_configs() -> list[str]:
    """Names of the configs in experiments/configs (``--config quick``)."""
    return sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))


@dataclass
class OptimizerConfig:
    """A Keras optimizer by class name, with optional step decay of the learning rate."""

    name: str = "RMSprop"
    learning_rate: float = 1e-3
    options: dict[str, Any] = field(default_factory=dict)
    #: epochs at which the learning rate is divided by 10 (paper Section 5.2: "decay by 10")
    decay_epochs: list[int] = field(default_factory=list)

    def build(self, steps_per_epoch: int):
        """The Keras optimizer (learning rate divided by 10 at each of ``decay_epochs``)."""
        from experiments.optimizers import make_optimizer

        rates = [self.learning_rate / 10**i for i in range(len(self.decay_epochs) + 1)]
        return make_optimizer(
            self.name,
            rates if self.decay_epochs else self.learning_rate,
            self.options,
            decay_epochs=[int(e) for e in self.decay_epochs],
            steps_per_epoch=steps_per_epoch,
        )

    def validate(self, key: str) -> None:
        """Raise ``ValueError`` naming ``key`` (the config field holding this optimizer)."""
        if self.name.lower() not in {n.lower() for n in OPTIMIZERS}:
            raise ValueError(f"{key}.name: unknown optimizer {self.name!r}; choose from {', '.join(OPTIMIZERS)}")
        if not self.learning_rate > 0:
            raise ValueError(f"{key}.learning_rate must be > 0, got {self.learning_rate}")
        if any(e < 1 for e in self.decay_epochs) or self.decay_epochs != sorted(set(self.decay_epochs)):
            raise ValueError(f"{key}.decay_epochs must be increasing epochs >= 1, got {self.decay_epochs}")


@dataclass
class ExperimentConfig:
    """Everything a Table 2-4 / Figure 2 / Figure 7 run needs. Saved with its results.

    Paths are relative to the working directory. ``data_dir`` holds a prepared dataset
    (``dynamic-mtl prepare``); if it has no manifest, synthfaces is generated there, and
    CK+ / Oulu-CASIA are prepared from ``data_root``.
    """

    name: str = "quick"
    dataset: str = "synthfaces"  # one of DATASETS
    data_dir: str = "data/synthfaces"
    data_root: str | None = None  # raw CK+ / Oulu-CASIA tree (real datasets)
    synthfaces_identities: int = 80
    expression_protocol: str = "dataset"  # dataset | oulu6 (6 classes, neutral frames unlabelled)
    results_dir: str = "results"
    run_id: str | None = None
    methods: list[str] = field(
        default_factory=lambda: [
            "single_task_face",
            "single_task_expression",
            "pretrained",
            "single_task_face_finetuned",
            "single_task_expression_finetuned",
            "static",
            "naive_dynamic",
            "dynamic",
            "dynamic_published",
            "uncertainty",
            "gradnorm",
            "dwa",
        ]
    )
    #: ``dynamic-mtl study`` only: methods run with the first seed only (every fold), beside ``methods``
    #: on every seed, when the budget does not allow every row on every seed (``run`` ignores it)
    single_seed_methods: list[str] = field(default_factory=list)
    #: methods run on ``reduced_folds`` only (every seed, after ``methods``), when the budget does not
    #: allow them on every fold; comparisons with them are paired over the units both rows have
    reduced_methods: list[str] = field(default_factory=list)
    reduced_folds: list[int] = field(default_factory=list)
    folds: list[int] | None = None  # None: every fold of folds.csv
    validation_subjects: float = 0.12  # share of training subjects held out for model selection
    seed: int = 0
    backbone: str = "small_cnn"
    backbone_options: dict[str, Any] = field(default_factory=dict)  # e.g. {width: 16} for small_cnn
    image_size: int = 48
    standardize: str = "prewhiten"
    embedding_size: int | None = 128
    dropout_rate: float = 0.2
    weight_decay: float = 5e-5
    center_loss_weight: float = 1e-4
    center_loss_input: str = "bottleneck"  # bottleneck (X1, paper) | embedding (normalised, authors' code)
    static_weights: list[float] = field(default_factory=lambda: list(STATIC_DEFAULT_WEIGHTS))
    dynamic_sigma: float = 0.01
    stop_gradient_weights: bool = True
    weight_unit: dict[str, Any] = field(default_factory=dict)
    batch_size: int = 32
    epochs: int = 6
    network_optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    #: the network optimizer of the rows that start from the pretrained checkpoint (fine-tuned single
    #: task and every multi-task row when a checkpoint is given); None: ``network_optimizer`` for every row
    finetune_optimizer: OptimizerConfig | None = None
    weight_optimizer: OptimizerConfig = field(
        default_factory=lambda: OptimizerConfig("RMSprop", 0.1, dict(WEIGHT_UNIT_RMSPROP))
    )
    pretrained_checkpoint: str | None = "auto"  # auto: the `make pretrain` default if it exists
    strategy: str = "default"  # default | mirrored | multiworker
    #: XLA for the train step: False, True, or "auto" (Keras's rule: on for one GPU, off on
    #: CPU-only machines and under tf.distribute strategies; docs/performance.md section 4)
    jit_compile: bool | str = False
    steps_per_execution: int = 1
    #: compute the network in float16 (Keras "mixed_float16"; for GPUs with tensor cores). The weight
    #: unit, task losses, L3 and center-loss centers stay float32 (tests/test_mixed_precision.py).
    mixed_precision: bool = False
    figure2_weights: list[float] = field(default_factory=lambda: [round(0.1 * i, 1) for i in range(11)])
    log_flush_every: int = 64

    # ------------------------------------------------------------------ I/O
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    @classmethod
    def from_dict(
        cls, data: dict[str, Any], source: str | None = None, lines: dict[str, int] | None = None
    ) -> ExperimentConfig:
        """A validated config; ``source`` (a file, ``--set``) and ``lines`` locate problems in the message."""
        config = from_mapping(cls, data or {}, source, lines)
        try:
            config.validate()
        except ValueError as err:
            raise ConfigError(_locate(str(err), source, lines)) from None
        return config

    @classmethod
    def load(cls, path: str | Path) -> ExperimentConfig:
        """Load a YAML or JSON file. A bare name (``quick``) is looked up in experiments/configs."""
        path = Path(path)
        if not path.exists() and (CONFIG_DIR / f"{path}.yaml").exists():
            path = CONFIG_DIR / f"{path}.yaml"
        if not path.is_file():
            raise ConfigNotFoundError(f"config {path} not found; bundled configs: {', '.join(bundled_configs())}")
        data, lines = read_file(path)
        return cls.from_dict(data or {}, source=str(path), lines=lines)

    def save(self, path: str | Path) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix == ".json":
            path.write_text(json.dumps(self.to_dict(), indent=2))
        else:
            path.write_text(self.to_yaml())

    def override(self, **changes) -> ExperimentConfig:
        """A copy with the non-None ``changes`` applied (CLI flags)."""
        data = self.to_dict()
        data.update({k: v for k, v in changes.items() if v is not None})
        return ExperimentConfig.from_dict(data)

    def with_settings(self, assignments: list[str]) -> ExperimentConfig:
        """A copy with ``KEY=VALUE`` settings applied (``--set epochs=2 network_optimizer.learning_rate=1e-3``):
        each value is parsed as YAML and checked against the field's type."""
        data = self.to_dict()
        for assignment in assignments:
            set_dotted(data, ExperimentConfig, assignment)
        return ExperimentConfig.from_dict(data, source="--set")

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first field out of range."""
        datasets.get(self.dataset)  # one-line ValueError naming the registered datasets
        datasets.protocol_owner(self.expression_protocol)  # likewise for the expression protocols
        if self.center_loss_input not in ("bottleneck", "embedding"):
            raise ValueError(f"center_loss_input must be 'bottleneck' or 'embedding', got {self.center_loss_input!r}")
        if self.strategy not in ("default", "mirrored", "multiworker"):
            raise ValueError(f"strategy must be default, mirrored or multiworker, got {self.strategy!r}")
        if self.backbone not in BACKBONE_MIN_IMAGE_SIZE:
            raise ValueError(f"unknown backbone {self.backbone!r}; choose from {', '.join(BACKBONE_MIN_IMAGE_SIZE)}")
        if self.image_size < BACKBONE_MIN_IMAGE_SIZE[self.backbone]:
            raise ValueError(
                f"image_size must be >= {BACKBONE_MIN_IMAGE_SIZE[self.backbone]} for {self.backbone}, "
                f"got {self.image_size}"
            )
        if self.standardize not in STANDARDIZATIONS:
            raise ValueError(f"standardize must be one of {', '.join(STANDARDIZATIONS)}, got {self.standardize!r}")
        if not 0.0 < self.validation_subjects < 0.5:
            raise ValueError(f"validation_subjects must lie in (0, 0.5), got {self.validation_subjects}")
        if self.epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {self.epochs}")
        if self.batch_size < 2:
            raise ValueError(f"batch_size must be >= 2, got {self.batch_size}")
        if self.synthfaces_identities < 2:
            raise ValueError(f"synthfaces_identities must be >= 2, got {self.synthfaces_identities}")
        if self.embedding_size is not None and self.embedding_size < 1:
            raise ValueError(f"embedding_size must be >= 1 or null, got {self.embedding_size}")
        if not 0.0 <= self.dropout_rate < 1.0:
            raise ValueError(f"dropout_rate must lie in [0, 1), got {self.dropout_rate}")
        for name in ("weight_decay", "center_loss_weight", "dynamic_sigma"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if len(self.static_weights) != 2:
            raise ValueError(f"static_weights must hold 2 weights (face, expression), got {self.static_weights}")
        if self.folds is not None and (not self.folds or min(self.folds) < 0 or len(set(self.folds)) < len(self.folds)):
            raise ValueError(f"folds must be distinct fold numbers >= 0 (or null for all), got {self.folds}")
        if not self.methods:
            raise ValueError("methods is empty")
        if self.jit_compile not in (True, False, "auto"):
            raise ValueError(f"jit_compile must be true, false or 'auto', got {self.jit_compile!r}")
        if self.steps_per_execution < 1:
            raise ValueError(f"steps_per_execution must be an integer >= 1, got {self.steps_per_execution!r}")
        if self.log_flush_every < 1:
            raise ValueError(f"log_flush_every must be >= 1, got {self.log_flush_every}")
        if any(not 0.0 <= w <= 1.0 for w in self.figure2_weights):
            raise ValueError(f"figure2_weights must lie in [0, 1], got {self.figure2_weights}")
        self.network_optimizer.validate("network_optimizer")
        if self.finetune_optimizer is not None:
            self.finetune_optimizer.validate("finetune_optimizer")
        self.weight_optimizer.validate("weight_optimizer")
        if self.reduced_methods and not self.reduced_folds:
            raise ValueError(f"reduced_methods {self.reduced_methods} need reduced_folds (the folds they run on)")
        for method in expand_method_names(
            [*self.methods, *self.single_seed_methods, *self.reduced_methods], self.figure2_weights
        ):
            parse_method(method)


def methods_override(methods: list[str] | None) -> dict:
    """The :meth:`ExperimentConfig.override` arguments of a ``--methods`` flag: exactly those methods, on
    every fold (no ``reduced_methods``), or no change when the flag is absent."""
    return {"methods": methods, "reduced_methods": [] if methods else None}
