"""``dynamic-mtl ttc``: the task-transfer-connection experiments of Fang et al. 2017 (docs/ttc.md)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from data_prep.ttc.datasets import DATASETS as REGISTRY
from experiments.ttc.config import DATASETS
from experiments.typed_config import add_settings_argument

#: datasets read from --data-root (the others are generated or embedded)
RAW_DATASETS = tuple(name for name, entry in REGISTRY.items() if entry.needs_data_root)


def check_args(args: argparse.Namespace) -> None:
    """Paths and the run folder, checked before any work; raises ``ValueError``."""
    if args.data_root is not None:
        if args.dataset not in RAW_DATASETS:
            raise ValueError(f"--data-root is only read for {' and '.join(RAW_DATASETS)}; {args.dataset} is embedded")
        try:
            REGISTRY[args.dataset].check_root(args.data_root)
        except FileNotFoundError as err:
            raise ValueError(str(err).split(". ")[0]) from None
    if Path(args.out).is_file():
        raise ValueError(f"--out {args.out} is a file, not a results folder")
    if args.run_id:
        from experiments.rundir import RunError, run_directory

        try:
            run_dir = run_directory(args.out, args.dataset, args.run_id)
        except RunError as err:
            raise ValueError(str(err)) from None
        if run_dir.is_dir() and any(run_dir.iterdir()):
            raise ValueError(f"run directory {run_dir} exists and is not empty; choose another --run-id")


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "ttc",
        help="Fang et al. 2017: ST / MT / DMT (TTC) / cross-stitch, task removal, incremental addition",
        description="Tables 3-6 and Figures 4-6 of Fang et al. 2017 on one dataset. Results go to "
        "OUT/<dataset>/<run-id>/ (tables as CSV + Markdown, alphas, figures, config, environment).",
    )
    p.add_argument(
        "--dataset",
        required=True,
        choices=DATASETS,
        help="synthattrs and digits are embedded (no download); celeba and cifar10 need --data-root",
    )
    p.add_argument("--data-root", default=None, help="CelebA folder or folder holding cifar-10-batches-py/")
    p.add_argument("--out", default="results/ttc", help="results root (default: results/ttc)")
    p.add_argument("--quick", action="store_true", help="tiny smoke run (seconds to a minute), not a result")
    p.add_argument("--run-id", default=None, help="run folder name (default: timestamp-profile)")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--steps-per-task", type=int, default=None, help="training turns per task")
    p.add_argument("--width", type=float, default=None, help="multiplier of the paper's filter counts")
    p.add_argument("--size", type=int, default=None, help="input side in pixels")
    p.add_argument("--lr", type=float, default=None, help="Adam learning rate of the weights")
    p.add_argument("--alpha-lr", type=float, default=None, help="Adam learning rate of the betas / stitch weights")
    p.add_argument("--no-table3", action="store_true", help="skip the Table 3 two-task experiment")
    p.add_argument(
        "--capacity-control",
        action="store_true",
        help="also train each single-task net T x longer (as many steps as a T-task model)",
    )
    p.add_argument(
        "--shared-bn-statistics",
        action="store_true",
        help="one batch-norm statistics copy for all tasks (default: one per task)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    add_settings_argument(
        p,
        "override any field of the resolved config (typed, e.g. --set batch_size=64 "
        "tasks=[3.8,5.9,4.6]); --print-config lists the fields",
    )
    p.add_argument(
        "--print-config",
        action="store_true",
        help="print the resolved config as YAML and exit (no data, no run folder)",
    )
    p.set_defaults(func=main)


def _with_settings(config, args: argparse.Namespace):
    """``config`` with ``--set KEY=VALUE`` applied, typed by TTCConfig's fields and validated again."""
    from experiments.ttc.config import apply_settings

    return apply_settings(config, args.settings, quick=args.quick)


def main(args: argparse.Namespace) -> int:
    from experiments.ttc.config import resolve_config

    try:
        check_args(args)
        config = resolve_config(
            args.dataset,
            args.out,
            quick=args.quick,
            data_root=args.data_root,
            run_id=args.run_id,
            seed=args.seed,
            steps_per_task=args.steps_per_task,
            width=args.width,
            size=args.size,
            lr=args.lr,
            alpha_lr=args.alpha_lr,
            table3_groups=[] if args.no_table3 else None,
            capacity_control=True if args.capacity_control else None,
            per_task_statistics=False if args.shared_bn_statistics else None,
        )
        if args.settings:
            config = _with_settings(config, args)
    except ValueError as err:
        print(f"dynamic-mtl ttc: error: {err}", file=sys.stderr)
        return 2
    if args.print_config:
        import yaml

        print(yaml.safe_dump(config.to_dict(), sort_keys=False), end="")
        return 0
    from experiments.rundir import RunError
    from experiments.ttc.runner import run

    try:
        run_dir = run(config, progress=not args.no_progress)
    except (FileNotFoundError, FileExistsError, KeyError, RunError) as err:
        print(f"dynamic-mtl ttc: error: {err}", file=sys.stderr)
        return 2
    print((run_dir / "summary.md").read_text())
    print(f"results: {run_dir}")
    return 0
