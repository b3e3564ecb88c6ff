"""Execute the figure notebooks (notebooks/figure*.ipynb) headless against run directories.

Each notebook runs on the shared executor (:func:`experiments.notebooks.execute`: parameters injected
papermill-style after the cell tagged ``parameters``, the kernel pinned to this interpreter). Executed
copies go to ``<run_dir>/notebooks/<notebook>.ipynb``; the committed notebooks are never written.

Usage (``make figures``)::

    .venv/bin/python -m experiments.face_expression.figure_notebooks [--table2-run R] [--figure2-run R]
        [--figure7-run R] [--dataset synthfaces] [--only figure4 figure7] [--train-missing]

A kind whose run is not given uses the latest finished run of that kind under
``results/<dataset>/``. When there is none the command stops before executing anything and names
the command that makes one; with ``--train-missing`` it runs that profile (quick, figure2 or
figure7) first, in this process with its progress shown. Notebooks never train.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from experiments.notebooks import NOTEBOOK_DIR, execute

#: figure -> (notebook file, kind of run it reads; see experiments.face_expression.figures.KINDS)
NOTEBOOKS = {
    "figure4": ("figure4_dynamic_weights.ipynb", "table2"),
    "figure5": ("figure5_task_losses.ipynb", "table2"),
    "figure6": ("figure6_training_efficiency.ipynb", "table2"),
    "figure2": ("figure2_static_sweep.ipynb", "figure2"),
    "figure7": ("figure7_gradient_normalisation.ipynb", "figure7"),
}
_RESOLVED = re.compile(r"^run_dir: (.+)$", re.MULTILINE)


def resolved_run_dir(nb) -> Path | None:
    """The run directory the notebook printed (``run_dir: <path>``), if any."""
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            match = _RESOLVED.search(output.get("text", "")) if output.get("output_type") == "stream" else None
            if match:
                return Path(match.group(1).strip())
    return None


def run_figure(
    figure: str,
    run_dir: str | Path | None = None,
    dataset: str = "synthfaces",
    results_dir: str | Path = "results",
    timeout: int | None = None,
    **parameters,
) -> tuple[Path, Path]:
    """Executes one figure notebook; returns (run directory used, executed notebook path)."""
    import nbformat

    name, _ = NOTEBOOKS[figure]
    params = {
        "run_dir": str(Path(run_dir).resolve()) if run_dir else None,
        "dataset": dataset,
        "results_dir": str(Path(results_dir).resolve()),
        **parameters,
    }
    nb = execute(NOTEBOOK_DIR / name, params, timeout=timeout)
    used = resolved_run_dir(nb)
    if used is None:
        raise RuntimeError(f"{name} did not print its run directory ('run_dir: <path>')")
    out = used / "notebooks" / name
    out.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(out))
    return used, out


def resolve_runs(
    runs: dict[str, str | None],
    figures: list[str],
    dataset: str = "synthfaces",
    results_dir: str | Path = "results",
    train_missing: bool = False,
) -> dict[str, Path]:
    """The run directory of every kind the ``figures`` need: the one given, else the latest finished
    one; a missing one is trained first only with ``train_missing`` (else ``FileNotFoundError``)."""
    from experiments.face_expression.figures import resolve_run, train_missing_run

    resolved = {}
    for kind in dict.fromkeys(NOTEBOOKS[f][1] for f in figures):
        try:
            resolved[kind] = resolve_run(runs.get(kind), kind, results_dir, dataset)
        except FileNotFoundError:
            if not train_missing or runs.get(kind):
                raise
            resolved[kind] = train_missing_run(kind, results_dir, dataset)
    return resolved


def run_figures(
    runs: dict[str, str | None] | None = None,
    figures: list[str] | None = None,
    dataset: str = "synthfaces",
    results_dir: str | Path = "results",
    timeout: int | None = None,
    train_missing: bool = False,
) -> dict[str, Path]:
    """Executes the figure notebooks; ``runs`` maps a kind (table2, figure2, figure7) to its run dir.
    Every run is resolved before the first notebook starts (:func:`resolve_runs`). Returns figure ->
    executed notebook."""
    figures = list(figures or NOTEBOOKS)
    runs = resolve_runs(dict(runs or {}), figures, dataset, results_dir, train_missing)
    done = {}
    for figure in figures:
        kind = NOTEBOOKS[figure][1]
        print(f"[figures] {figure}: {runs[kind]}", flush=True)
        used, out = run_figure(figure, runs[kind], dataset, results_dir, timeout)
        runs[kind] = str(used)
        done[figure] = out
        print(f"[figures] {figure}: {out} -> {used / 'figures' / figure}.png", flush=True)
    return done


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="execute the figure notebooks headless (Figures 2, 4-7)")
    parser.add_argument("--table2-run", help="run with naive_dynamic and dynamic step logs (Figures 4-6)")
    parser.add_argument("--figure2-run", help="run with figure2.csv (a static_sweep run)")
    parser.add_argument("--figure7-run", help="run with dynamic_published and dynamic step logs (Figure 7)")
    parser.add_argument("--dataset", default="synthfaces")
    parser.add_argument("--results-dir", default="results")
    parser.add_argument("--only", nargs="+", choices=sorted(NOTEBOOKS), help="only these figures")
    parser.add_argument("--timeout", type=int, default=None, help="per-cell timeout in seconds (default none)")
    parser.add_argument(
        "--train-missing",
        action="store_true",
        help="run the profile of a kind that has no finished run first (quick: ~15 min on 2 cores)",
    )
    args = parser.parse_args(argv)
    runs = {"table2": args.table2_run, "figure2": args.figure2_run, "figure7": args.figure7_run}
    try:
        run_figures(runs, args.only, args.dataset, args.results_dir, args.timeout, args.train_missing)
    except FileNotFoundError as error:
        print(f"figures: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
