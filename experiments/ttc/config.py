"""Resolved configuration of one ``dynamic-mtl ttc`` run (saved as config.json / config.yaml)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from data_prep.ttc.datasets import DATASETS as _REGISTRY
from data_prep.ttc.datasets import ttc_dataset

#: The ``--dataset`` names (``data_prep.ttc.datasets.DATASETS``, the registry).
DATASETS = tuple(_REGISTRY)


@dataclass
class TTCConfig:
    """Everything a run depends on. Profiles: :func:`resolve_config` (``default`` or ``quick``).

    Steps are counted in optimiser steps; a multi-task model trained for ``steps_per_task`` x T steps gives
    each task ``steps_per_task`` turns, the same number of updates its single-task model gets.
    """

    dataset: str
    out: str
    data_root: str | None = None
    run_id: str = ""
    profile: str = "default"
    seed: int = 0
    # data
    size: int = 24
    n_train: int = 4000  # synthattrs only
    n_val: int = 500  # synthattrs only
    n_test: int = 1500  # synthattrs only
    max_train: int | None = None  # celeba / cifar10 subsets
    max_val: int | None = None
    max_test: int | None = None
    train_per_class: int | None = None  # digits only (few-shot training set)
    tasks: list[str] = field(default_factory=list)  # main experiment (Tables 4 / 5)
    # network (Sec. 4.1 architecture, filter counts scaled by width)
    width: float = 0.25
    initial_alpha: float = 0.5
    per_task_statistics: bool = True  # one copy of the BN statistics per task (dynamic_mtl.ttc.norms)
    # optimisation (not given by the paper)
    batch_size: int = 32
    lr: float = 3e-3
    alpha_lr: float = 0.1  # Adam rate of the betas; `experiments.ttc.seeds` picks it on validation
    steps_per_task: int = 300
    resample: bool = True
    capacity_control: bool = False  # also ST nets trained T x longer (as many steps as a T-task model)
    crossstitch: bool = True  # also the cross-stitch baseline (Misra et al. 2016; not in the paper's tables)
    history_every: int = 100  # alpha snapshots during DMT training (Figure 4)
    # task removal (Sec. 4.3, Table 4 last row, Table 6)
    removed_tasks: list[str] = field(default_factory=list)
    removal_steps_per_task: int = 60
    # incremental addition (Sec. 4.4, Figure 6)
    incremental_task: str = ""
    incremental_steps: int = 500
    curve_every: int = 25
    error_threshold: float = 0.1
    # Table 3 (two-task groups, imbalanced vs resampled); empty = skipped
    table3_groups: list[list[str]] = field(default_factory=list)
    table3_steps_per_task: int = 150

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


#: Per dataset: default profile overrides (tasks, removal, incremental task, Table 3 groups, sizes).
_DATASET_DEFAULTS: dict[str, dict] = {
    "synthattrs": dict(
        size=24,
        width=0.25,
        steps_per_task=300,
        tasks=["goatee", "heavy_makeup", "high_cheekbones", "no_beard", "sideburns", "smiling", "wearing_lipstick"],
        removed_tasks=["sideburns", "wearing_lipstick"],
        incremental_task="smiling",
        table3_groups=[["sideburns", "eyeglasses"], ["mustache", "goatee"]],
    ),
    "digits": dict(
        size=16,
        width=0.25,
        steps_per_task=150,
        lr=2e-3,
        train_per_class=10,
        curve_every=5,
        incremental_steps=200,
        tasks=["3.8", "5.9", "1.7", "4.6", "0.2"],
        removed_tasks=["1.7", "0.2"],
        incremental_task="4.6",
    ),
    "celeba": dict(
        size=40,
        width=1.0,
        steps_per_task=3000,
        lr=1e-3,
        batch_size=64,
        max_train=50000,
        max_val=5000,
        max_test=None,
        tasks=["Goatee", "Heavy_Makeup", "High_Cheekbones", "No_Beard", "Sideburns", "Smiling", "Wearing_Lipstick"],
        removed_tasks=["Sideburns", "Wearing_Lipstick"],
        incremental_task="Smiling",
        removal_steps_per_task=500,
        incremental_steps=3000,
        curve_every=100,
        history_every=500,
        table3_groups=[["Bald", "Wearing_Hat"], ["Mustache", "Goatee"]],
        table3_steps_per_task=2000,
    ),
    "cifar10": dict(
        size=32,
        width=1.0,
        steps_per_task=3000,
        lr=1e-3,
        batch_size=64,
        tasks=["airplane.ship", "automobile.truck", "bird.frog", "cat.dog", "deer.horse"],
        removed_tasks=["automobile.truck", "bird.frog"],
        incremental_task="cat.dog",
        removal_steps_per_task=500,
        incremental_steps=3000,
        curve_every=100,
        history_every=500,
    ),
}

#: ``--quick``: a smoke run (well under a minute on 2 cores), not a result: 3 tasks, a few steps each.
_QUICK = dict(
    n_train=240,
    n_val=80,
    n_test=160,
    max_train=2000,
    max_val=300,
    max_test=500,
    steps_per_task=8,
    removal_steps_per_task=4,
    incremental_steps=16,
    curve_every=4,
    history_every=8,
    table3_steps_per_task=6,
    batch_size=16,
)
_QUICK_TASKS = {
    "synthattrs": dict(
        tasks=["goatee", "no_beard", "smiling"],
        removed_tasks=["goatee"],
        incremental_task="smiling",
        table3_groups=[["mustache", "goatee"]],
    ),
    "digits": dict(tasks=["3.8", "5.9", "4.6"], removed_tasks=["5.9"], incremental_task="4.6"),
    "celeba": dict(
        tasks=["Goatee", "No_Beard", "Smiling"],
        removed_tasks=["Goatee"],
        incremental_task="Smiling",
        table3_groups=[["Mustache", "Goatee"]],
    ),
    "cifar10": dict(
        tasks=["airplane.ship", "bird.frog", "cat.dog"], removed_tasks=["bird.frog"], incremental_task="cat.dog"
    ),
}


def resolve_config(dataset: str, out: str, quick: bool = False, **overrides) -> TTCConfig:
    """Defaults for ``dataset``, then the quick profile, then explicit ``overrides`` (None = keep)."""
    entry = ttc_dataset(dataset)
    values = dict(_DATASET_DEFAULTS[dataset])
    if quick:
        values.update(_QUICK, **_QUICK_TASKS[dataset])
        values["profile"] = "quick"
        if entry.needs_data_root:  # the real datasets' defaults are the paper's scale
            values.update(size=24, width=0.25)
    values.update({k: v for k, v in overrides.items() if v is not None})
    config = TTCConfig(dataset=dataset, out=str(out), **values)
    _validate(config)
    return config


def apply_settings(config: TTCConfig, settings, quick: bool = False) -> TTCConfig:
    """``config`` with ``KEY=VALUE`` assignments (``--set``) applied, typed by TTCConfig's fields and validated
    again (``quick``: the profile ``config`` was resolved with)."""
    from experiments.typed_config import from_mapping, set_dotted

    data = config.to_dict()
    for assignment in settings:
        set_dotted(data, TTCConfig, assignment)
    typed = from_mapping(TTCConfig, data, "--set")
    if (typed.dataset, typed.out) != (config.dataset, config.out):
        raise ValueError("--set cannot change dataset or out: use --dataset and --out")
    fields = {k: v for k, v in dataclasses.asdict(typed).items() if k not in ("dataset", "out")}
    return resolve_config(typed.dataset, typed.out, quick=quick, **fields)


def _validate(c: TTCConfig) -> None:
    if ttc_dataset(c.dataset).needs_data_root and not c.data_root:
        raise ValueError(f"--data-root is required for {c.dataset}")
    for name in ("size", "batch_size", "steps_per_task", "incremental_steps", "curve_every", "history_every"):
        if getattr(c, name) < 1:
            raise ValueError(f"{name} must be >= 1, got {getattr(c, name)}")
    if c.width <= 0 or c.lr <= 0 or c.alpha_lr <= 0:
        raise ValueError("width, lr and alpha_lr must be > 0")
    if not 0 < c.error_threshold < 1:
        raise ValueError(f"error_threshold must lie in (0, 1), got {c.error_threshold}")
    if len(set(c.tasks)) != len(c.tasks) or len(c.tasks) < 2:
        raise ValueError(f"need at least two distinct tasks, got {c.tasks}")
    bad = [t for t in c.removed_tasks if t not in c.tasks]
    if bad or len(c.removed_tasks) >= len(c.tasks):
        raise ValueError(f"removed_tasks must be a proper subset of tasks, got {c.removed_tasks}")
    if c.incremental_task and c.incremental_task not in c.tasks:
        raise ValueError(f"incremental_task {c.incremental_task!r} is not one of the tasks")
