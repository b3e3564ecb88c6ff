"""The ``run`` command's inputs: a config, then command-line flags, then ``--seed`` and ``--set``; and every
check that needs no training (paths, the prepared dataset, folds), so bad input stops before any work.

Everything here imports without TensorFlow, so ``dynamic-mtl run --help`` and ``--print-config`` are fast.
"""

from __future__ import annotations

import argparse
import csv
import json
import textwrap
from pathlib import Path

from data_prep import datasets
from experiments.face_expression.config import ConfigError, ExperimentConfig, bundled_configs, methods_override
from experiments.face_expression.methods import (
    LATER_WEIGHTING_GROUP,
    LATER_WEIGHTING_METHODS,
    METHODS,
    STATIC_SWEEP_GROUP,
)

EXAMPLES = """\
examples:
  dynamic-mtl run --config quick                      # Tables 2-3 on the embedded synthfaces dataset
  dynamic-mtl run --config tiny --print-config        # the resolved config, no work
  dynamic-mtl run --config quick --set epochs=2 network_optimizer.learning_rate=1e-3 --seed 1
  dynamic-mtl run --config paper --dataset ckplus --data-root /data/CK+ --pretrained ckpt.keras"""


def description() -> str:
    """``run --help``'s text: what a run does, the method names and the bundled configs."""
    width = max(len(name) for name in METHODS) + 2
    methods = "\n".join(f"  {name:<{width}}{spec.label} [{', '.join(spec.reports)}]" for name, spec in METHODS.items())
    intro = textwrap.fill(
        "Run every (method, fold) of a config: subject-independent cross-validation of the face verification + "
        "facial expression network (Tables 2-4, Figures 2 and 7). Results go to RESULTS_DIR/DATASET/RUN_ID "
        "(config.yaml, per_fold.csv, table*.csv, results.md). Every input is checked before any work.",
        100,
    )
    return (
        f"{intro}\n\n"
        f"methods (--methods or `methods:` in the config):\n{methods}\n"
        f"  {'static@W':<{width}}static MTL with weights (W, 1 - W), 0 <= W <= 1 (Figure 2)\n"
        f"  {STATIC_SWEEP_GROUP:<{width}}static@W for every figure2_weights\n"
        f"  {LATER_WEIGHTING_GROUP:<{width}}{' '.join(LATER_WEIGHTING_METHODS)}\n\n"
        f"bundled configs (--config NAME): {', '.join(bundled_configs())}; or a YAML/JSON file.\n\n{EXAMPLES}"
    )


def config_from_args(args: argparse.Namespace) -> ExperimentConfig:
    """The config ``args`` resolve to, checked by :func:`check_run_inputs`; raises :class:`ConfigError`."""
    config = ExperimentConfig.load(args.profile or args.config)
    jit = {"true": True, "false": False, "auto": "auto", None: None}[args.jit_compile]
    changes = dict(
        dataset=args.dataset,
        data_dir=args.data_dir,
        data_root=args.data_root,
        strategy=args.strategy,
        pretrained_checkpoint=args.pretrained,
        run_id=args.run_id,
        results_dir=args.results_dir,
        epochs=args.epochs,
        folds=args.folds,
        **methods_override(args.methods),
        seed=args.seed,
        expression_protocol=args.expression_protocol,
        steps_per_execution=args.steps_per_execution,
        mixed_precision=args.mixed_precision,
        jit_compile=jit,
    )
    if args.dataset and datasets.get(args.dataset).needs_raw_root and not args.data_dir:
        changes["data_dir"] = datasets.get(args.dataset).default_data_dir
    config = config.override(**changes)
    if args.settings:
        config = config.with_settings(args.settings)
    explicit = args.data_dir is not None or any(s.split("=", 1)[0].strip() == "data_dir" for s in args.settings)
    check_run_inputs(config, explicit_data_dir=explicit, resume=args.resume)
    return config


def _fold_ids(folds_csv: Path) -> list[int]:
    with folds_csv.open(newline="") as handle:
        return sorted({int(row["fold"]) for row in csv.DictReader(handle)})


def _synthfaces_num_folds() -> int:
    """The number of folds ``run`` generates synthfaces with (prepare_synthfaces's default)."""
    import inspect

    from data_prep.prepare import prepare_synthfaces

    return int(inspect.signature(prepare_synthfaces).parameters["num_folds"].default)


def check_run_inputs(config: ExperimentConfig, explicit_data_dir: bool = False, resume: bool = False) -> None:
    """Raise :class:`ConfigError` for any input a run would fail on, before it creates anything."""
    if resume and not config.run_id:
        raise ConfigError("--resume needs --run-id of the run to continue")
    if config.data_root is not None:
        if not datasets.get(config.dataset).needs_raw_root:
            raw = [s for s in datasets.DATASETS.values() if s.needs_raw_root]
            raise ConfigError(
                f"--data-root {config.data_root}: a raw {' or '.join(s.display_name for s in raw)} tree needs "
                f"{' or '.join('--dataset ' + s.name for s in raw)} (the dataset is {config.dataset}, which is generated)"
            )
        if not Path(config.data_root).is_dir():
            raise ConfigError(f"--data-root {config.data_root}: no such directory")
    pretrained = config.pretrained_checkpoint
    if pretrained not in (None, "", "none", "auto") and not Path(pretrained).exists():
        raise ConfigError(
            f"--pretrained {pretrained}: no such checkpoint (run `make pretrain`, fix the path, "
            "or pass --pretrained none)"
        )
    from experiments.face_expression.checkpoint_check import CheckpointMismatch, check_pretrained

    try:
        check_pretrained(config)  # the checkpoint's sidecar against the profile (backbone, size, standardisation)
    except CheckpointMismatch as err:
        raise ConfigError(str(err)) from None
    results = Path(config.results_dir)
    if results.exists() and not results.is_dir():
        raise ConfigError(f"--results-dir {results} is a file, not a directory")
    if config.run_id and not resume and any((results / config.dataset / config.run_id / "per_fold").glob("*.json")):
        raise ConfigError(
            f"{results / config.dataset / config.run_id} already holds results: pass --resume to "
            "continue it, or choose another --run-id"
        )
    _check_data_dir(config, explicit_data_dir)


def _check_data_dir(config: ExperimentConfig, explicit: bool) -> None:
    root = Path(config.data_dir)
    if root.exists() and not root.is_dir():
        raise ConfigError(f"--data-dir {root} is a file, not a directory")
    if (root / "manifest.csv").is_file():
        summary = root / "summary.json"
        prepared = json.loads(summary.read_text()).get("dataset") if summary.is_file() else None
        if prepared not in (None, config.dataset):
            raise ConfigError(
                f"--data-dir {root} holds a prepared {prepared} dataset, but the dataset is "
                f"{config.dataset}: pass --dataset {prepared} or another --data-dir"
            )
        if config.folds is not None and (root / "folds.csv").is_file():
            available = _fold_ids(root / "folds.csv")
            bad = sorted(set(config.folds) - set(available))
            if bad:
                raise ConfigError(
                    f"folds {bad} are not in {root}/folds.csv (it has folds {available[0]}-{available[-1]})"
                )
        return
    # not prepared yet: `run` prepares it (synthfaces is generated, CK+ / Oulu-CASIA read from data_root)
    if explicit and not root.parent.is_dir():
        raise ConfigError(f"--data-dir {root}: its parent directory {root.parent} does not exist")
    if explicit and root.is_dir() and any(root.iterdir()):
        raise ConfigError(
            f"--data-dir {root} holds files but no prepared dataset (manifest.csv): pass a directory "
            "made by `dynamic-mtl prepare`, or a new one"
        )
    if datasets.get(config.dataset).needs_raw_root:
        if config.data_root is None:
            raise ConfigError(
                f"no prepared {config.dataset} dataset in {root} (manifest.csv) and no --data-root: "
                f"pass --data-root /path/to/the/raw/{config.dataset} tree to prepare it"
            )
        return
    num_folds = _synthfaces_num_folds()
    if config.synthfaces_identities < num_folds:
        raise ConfigError(
            f"synthfaces_identities={config.synthfaces_identities} cannot fill {num_folds} "
            f"subject-independent folds: use at least {num_folds} identities"
        )
    bad = sorted(set(config.folds or []) - set(range(num_folds)))
    if bad:
        raise ConfigError(f"folds {bad} do not exist: synthfaces is generated with folds 0-{num_folds - 1}")
