"""Execute notebooks/ttc_alphas.ipynb against a run directory (papermill-style parameters, nbclient).

Executed by :func:`experiments.notebooks.execute`, the one notebook executor of the harnesses: the kernel is
pinned to this interpreter (``sys.executable``), so running this module with the venv's interpreter
runs the notebook in the venv, whatever user-level ``python3`` kernelspec exists. Usage::

    .venv/bin/python -m experiments.ttc.notebook results/ttc/synthattrs/<run-id>
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = REPO_ROOT / "notebooks" / "ttc_alphas.ipynb"


def execute_notebook(run_dir: str | Path, notebook: str | Path = NOTEBOOK, timeout: int = 600) -> Path:
    """Runs ``notebook`` with ``run_dir`` injected after its ``parameters`` cell; writes the executed copy
    to ``run_dir/ttc_alphas.executed.ipynb`` and returns that path. Figures land in ``run_dir/figures``."""
    import nbformat

    from experiments.notebooks import execute

    run_dir = Path(run_dir).resolve()
    if not (run_dir / "alphas.npz").is_file():
        raise FileNotFoundError(f"{run_dir} is not a TTC run directory (no alphas.npz)")
    nb = execute(notebook, {"run_dir": str(run_dir)}, timeout=timeout)
    out = run_dir / "ttc_alphas.executed.ipynb"
    nbformat.write(nb, str(out))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", help="a run directory, or a dataset folder holding LATEST")
    args = parser.parse_args(argv)
    run_dir = Path(args.run_dir)
    if (run_dir / "LATEST").is_file():
        run_dir = run_dir / (run_dir / "LATEST").read_text().strip()
    print(execute_notebook(run_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
