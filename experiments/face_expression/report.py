"""``dynamic-mtl report RUN_DIR``: the tables of a run directory, finished or not (reads only)."""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from experiments.face_expression.config import ExperimentConfig
from experiments.face_expression.methods import parse_method
from experiments.rundir import read_result

_RESULT_NAME = re.compile(r"(?P<method>.+)_fold(?P<fold>\d+)\.json")


def report(run_dir: str | Path) -> str:
    """The Markdown tables of the (method, fold) results ``run_dir`` holds so far.

    A method enters the tables once at least one of its folds has finished; the header lists the
    methods (and folds) still missing and the command that continues the run. Writes nothing, so
    it can be called while the run is still going.
    """
    from experiments.face_expression.run import expand_methods, render_results

    run_dir = Path(run_dir)
    if not (run_dir / "config.yaml").is_file():
        raise FileNotFoundError(
            f"{run_dir} is not a run directory (no config.yaml); runs are in results/<dataset>/<run-id>"
        )
    config = ExperimentConfig.load(run_dir / "config.yaml")
    env_path = run_dir / "environment.json"
    env = json.loads(env_path.read_text()) if env_path.is_file() else {}
    planned = [m for m in expand_methods(config) if m not in env.get("skipped_methods", [])]
    found: dict[str, list[dict]] = {}
    for path in sorted((run_dir / "per_fold").glob("*.json")):
        match = _RESULT_NAME.fullmatch(path.name)
        result = read_result(path) if match else None
        if result is not None:
            found.setdefault(result["method"], []).append(result)
    folds = (
        sorted(config.folds)
        if config.folds is not None
        else sorted({r["fold"] for results in found.values() for r in results})
    )
    done = [m for m in planned if m in found]
    pending = [m for m in planned if m not in found]
    partial = [
        f"{m} (folds {sorted(set(folds) - {r['fold'] for r in found[m]})})"
        for m in done
        if {r["fold"] for r in found[m]} != set(folds)
    ]
    results = [r for m in done for r in sorted(found[m], key=lambda r: r["fold"])]
    _, _, text = render_results(
        run_dir,
        config,
        results,
        folds,
        [parse_method(m) for m in done],
        env.get("machine", "unknown machine"),
        pending=pending + [f"missing {p}" for p in partial] or None,
    )
    return text


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "report",
        help="table the results of a run directory, also of a partial run",
        description="Print the Table 2-4 / Figure 2 Markdown of RUN_DIR from the (method, "
        "fold) results it holds so far; writes nothing.",
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run directory, results/<dataset>/<run-id>")
    p.set_defaults(func=_main)


def _main(args: argparse.Namespace) -> int:
    try:
        text = report(args.run_dir)
    except (FileNotFoundError, ValueError) as err:
        print(f"dynamic-mtl report: error: {err}", file=sys.stderr)
        return 2
    print(text)
    return 0
