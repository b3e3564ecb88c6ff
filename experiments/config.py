"""Experiment configuration: one dataclass, loaded from and saved to YAML or JSON."""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

CONFIG_DIR = Path(__file__).with_name("configs")


@dataclass
class OptimizerConfig:
    """A Keras optimizer by class name, with optional step decay of the learning rate."""

    name: str = "RMSprop"
    learning_rate: float = 1e-3
    options: dict[str, Any] = field(default_factory=dict)
    #: epochs at which the learning rate is divided by 10 (paper Section 5.2: "decay by 10")
    decay_epochs: list[int] = field(default_factory=list)

    def build(self, steps_per_epoch: int):
        import keras

        learning_rate: Any = self.learning_rate
        if self.decay_epochs:
            boundaries = [int(e) * steps_per_epoch for e in self.decay_epochs]
            values = [self.learning_rate / 10 ** i for i in range(len(boundaries) + 1)]
            learning_rate = keras.optimizers.schedules.PiecewiseConstantDecay(boundaries, values)
        return keras.optimizers.get({"class_name": self.name,
                                     "config": {"learning_rate": learning_rate, **self.options}})


@dataclass
class ExperimentConfig:
    """Everything a Table 2-4 / Figure 2 / Figure 7 run needs. Saved with its results.

    Paths are relative to the working directory. ``data_dir`` holds a prepared dataset
    (``dynamic-mtl prepare``); if it has no manifest, synthfaces is generated there, and
    CK+ / Oulu-CASIA are prepared from ``data_root``.
    """

    name: str = "quick"
    dataset: str = "synthfaces"                # synthfaces | ckplus | oulu
    data_dir: str = "data/synthfaces"
    data_root: str | None = None               # raw CK+ / Oulu-CASIA tree (real datasets)
    synthfaces_identities: int = 80
    expression_protocol: str = "dataset"       # dataset | oulu6 (6 classes, neutral frames unlabelled)
    results_dir: str = "results"
    run_id: str | None = None
    methods: list[str] = field(default_factory=lambda: [
        "single_task_face", "single_task_expression", "pretrained", "single_task_face_finetuned",
        "single_task_expression_finetuned", "static", "naive_dynamic", "dynamic",
        "dynamic_published", "uncertainty", "gradnorm", "dwa"])
    folds: list[int] | None = None             # None: every fold of folds.csv
    validation_subjects: float = 0.12          # share of training subjects held out for model selection
    seed: int = 0
    backbone: str = "small_cnn"
    backbone_options: dict[str, Any] = field(default_factory=dict)   # e.g. {width: 16} for small_cnn
    image_size: int = 48
    standardize: str = "prewhiten"
    embedding_size: int | None = 128
    dropout_rate: float = 0.2
    weight_decay: float = 5e-5
    center_loss_weight: float = 1e-4
    center_loss_input: str = "bottleneck"      # bottleneck (X1, paper) | embedding (normalised, authors' code)
    static_weights: list[float] = field(default_factory=lambda: [0.5, 0.5])
    dynamic_sigma: float = 0.01
    stop_gradient_weights: bool = True
    weight_unit: dict[str, Any] = field(default_factory=dict)
    batch_size: int = 32
    epochs: int = 6
    network_optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    weight_optimizer: OptimizerConfig = field(default_factory=lambda: OptimizerConfig(
        "RMSprop", 0.1, {"rho": 0.9, "momentum": 0.9, "epsilon": 1.0, "global_clipnorm": 5.0}))
    pretrained_checkpoint: str | None = "auto"  # auto: the `make pretrain` default if it exists
    strategy: str = "default"                  # default | mirrored | multiworker
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

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ExperimentConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown config keys {unknown}; known keys: {sorted(known)}")
        data = dict(data)
        for key in ("network_optimizer", "weight_optimizer"):
            if isinstance(data.get(key), dict):
                data[key] = OptimizerConfig(**data[key])
        config = cls(**data)
        config.validate()
        return config

    @classmethod
    def load(cls, path: str | Path) -> "ExperimentConfig":
        """Load a YAML or JSON file. A bare name (``quick``) is looked up in experiments/configs."""
        path = Path(path)
        if not path.exists() and (CONFIG_DIR / f"{path}.yaml").exists():
            path = CONFIG_DIR / f"{path}.yaml"
        if not path.exists():
            raise FileNotFoundError(f"config {path} not found; bundled configs: "
                                    f"{sorted(p.stem for p in CONFIG_DIR.glob('*.yaml'))}")
        text = path.read_text()
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
        return cls.from_dict(data or {})

    def save(self, path: str | Path) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix == ".json":
            path.write_text(json.dumps(self.to_dict(), indent=2))
        else:
            path.write_text(yaml.safe_dump(self.to_dict(), sort_keys=False))

    def override(self, **changes) -> "ExperimentConfig":
        """A copy with the non-None ``changes`` applied (CLI flags)."""
        data = self.to_dict()
        data.update({k: v for k, v in changes.items() if v is not None})
        return ExperimentConfig.from_dict(data)

    def validate(self) -> None:
        from experiments.methods import parse_method

        if self.dataset not in ("synthfaces", "ckplus", "oulu"):
            raise ValueError(f"dataset must be synthfaces, ckplus or oulu, got {self.dataset!r}")
        if self.expression_protocol not in ("dataset", "oulu6"):
            raise ValueError(f"expression_protocol must be 'dataset' or 'oulu6', got {self.expression_protocol!r}")
        if self.center_loss_input not in ("bottleneck", "embedding"):
            raise ValueError(f"center_loss_input must be 'bottleneck' or 'embedding', got {self.center_loss_input!r}")
        if self.strategy not in ("default", "mirrored", "multiworker"):
            raise ValueError(f"strategy must be default, mirrored or multiworker, got {self.strategy!r}")
        if not 0.0 < self.validation_subjects < 0.5:
            raise ValueError("validation_subjects must lie in (0, 0.5)")
        if self.epochs < 1 or self.batch_size < 2:
            raise ValueError("epochs must be >= 1 and batch_size >= 2")
        if not self.methods:
            raise ValueError("methods is empty")
        if self.jit_compile not in (True, False, "auto"):
            raise ValueError(f"jit_compile must be true, false or 'auto', got {self.jit_compile!r}")
        if not isinstance(self.steps_per_execution, int) or self.steps_per_execution < 1:
            raise ValueError(f"steps_per_execution must be an integer >= 1, got {self.steps_per_execution!r}")
        if not isinstance(self.mixed_precision, bool):
            raise ValueError(f"mixed_precision must be true or false, got {self.mixed_precision!r}")
        for method in self.methods:
            if method != "static_sweep":   # expands to static@w1 for every figure2_weights
                parse_method(method)
