"""``dynamic-mtl ttc``: a tiny end-to-end run writes its tables, alphas and figures; the notebook draws
from it; bad input gets a clear error."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from experiments.cli import build_parser, main

# the tests share one module-scoped run: one xdist worker (--dist loadgroup) makes it once
pytestmark = pytest.mark.xdist_group("ttc_tiny_run")


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("ttc")
    argv = [
        "ttc",
        "--dataset",
        "digits",
        "--quick",
        "--out",
        str(out),
        "--run-id",
        "tiny",
        "--no-progress",
        "--steps-per-task",
        "4",
    ]
    assert main(argv) == 0
    return out / "digits" / "tiny"


@pytest.mark.slow
def test_cli_writes_tables_alphas_and_figures(tiny_run):
    for name in (
        "config.json",
        "config.yaml",
        "environment.json",
        "table_main.csv",
        "table_main.md",
        "table6_share_change.csv",
        "table6_alpha_change_raw.csv",
        "removal_accuracy.csv",
        "incremental_curve.csv",
        "summary.md",
        "results.json",
        "alphas.npz",
        "alphas_dmt_layer6.csv",
        "dmt.keras",
        "data_summary.csv",
    ):
        assert (tiny_run / name).is_file(), name
    table = pd.read_csv(tiny_run / "table_main.csv")
    assert list(table.task) == ["3.8", "5.9", "4.6", "mean"]
    assert {"paper ST", "paper DMT", "ours ST", "ours MT", "ours DMT", "ours CrossStitch"} <= set(table.columns)
    assert table["paper DMT"].iloc[0] == 91.2  # airplane.ship, by position
    assert table[["ours ST", "ours MT", "ours DMT"]].iloc[:3].apply(lambda c: c.between(0, 100)).all().all()
    alphas = np.load(tiny_run / "alphas.npz")
    assert alphas["dmt"].shape == (6, 3, 3) and alphas["history_alphas"].shape[1:] == (6, 3, 3)
    config = json.loads((tiny_run / "config.json").read_text())
    assert config["dataset"] == "digits" and config["steps_per_task"] == 4 and config["run_id"] == "tiny"
    results = json.loads((tiny_run / "results.json").read_text())
    assert results["removal"]["subnets_bit_identical"] is True
    summary = json.loads((tiny_run / "incremental_summary.json").read_text())
    assert summary["old_subnets_bit_identical"] is True and summary["old_task_logit_max_change"] == 0.0
    assert summary["same_batches"] is True  # incremental and alone curves drew the same batches
    t6 = pd.read_csv(tiny_run / "table6_share_change.csv").set_index("From \\ To")
    np.testing.assert_allclose(
        t6.loc["sum of the column", ["3.8", "4.6"]].astype(float),
        t6.loc["removed tasks' former share", ["3.8", "4.6"]].astype(float),
        atol=0.11,
    )
    removal = pd.read_csv(tiny_run / "removal_accuracy.csv")
    assert [c for c in removal.columns if c != "task"] == [
        "DMT (all tasks)",
        "cut",
        "cut + statistics re-estimated (baseline)",
        "connections only re-trained (paper)",
        "joint re-trained (extension)",
    ]
    assert (tiny_run.parent / "LATEST").read_text().strip() == "tiny"
    for fig in ("alpha_matrices_dmt.png", "alpha_history.png", "alpha_by_layer.png", "incremental_curve.png"):
        assert (tiny_run / "figures" / fig).stat().st_size > 1000


@pytest.mark.slow
def test_seed_statistics_from_runs(tiny_run, tmp_path):
    """The multi-seed analysis on two copies of the tiny run (seeds 0 and 1): tables, verdicts, docs text."""
    import shutil

    from experiments.ttc.seeds import analyse, load_runs, render

    dirs = []
    for seed in (0, 1):
        d = tmp_path / f"seed{seed}"
        shutil.copytree(tiny_run, d)
        config = json.loads((d / "config.json").read_text())
        (d / "config.json").write_text(json.dumps(dict(config, seed=seed)))
        dirs.append(d)
    runs = load_runs(dirs)
    analysis = analyse("digits", runs, None, None)
    verdicts = analysis["verdicts"]
    assert {"claim", "measurement", "statistic", "verdict"} <= set(verdicts.columns)
    assert any("DMT CNN performs better than ST" in c for c in verdicts.claim)
    text = render("digits", analysis, runs, "header")
    assert "Table 5 shape" in text and "Table 6 (shares)" in text and "Incremental addition" in text


@pytest.mark.slow
def test_notebook_draws_from_the_run(tiny_run):
    from experiments.ttc.notebook import execute_notebook

    executed = execute_notebook(tiny_run)
    assert executed.is_file()
    for name in (
        "nb_figure4_alpha_history",
        "nb_figure5_alpha_by_layer",
        "nb_alpha_matrices_dmt",
        "nb_figure6_incremental",
    ):
        png = tiny_run / "figures" / f"{name}.png"
        assert png.is_file() and png.stat().st_size > 1000, name
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert (tiny_run / "figures" / f"{name}.pdf").is_file()


def test_cli_options_reach_the_config():
    from experiments.ttc.config import resolve_config

    args = build_parser().parse_args(["ttc", "--dataset", "digits", "--capacity-control", "--shared-bn-statistics"])
    assert args.capacity_control and args.shared_bn_statistics
    config = resolve_config("digits", "out", capacity_control=True, per_task_statistics=False)
    assert config.capacity_control and not config.per_task_statistics
    assert resolve_config("digits", "out").per_task_statistics  # per-task statistics by default


def test_cli_clear_errors(tmp_path, capsys):
    assert main(["ttc", "--dataset", "cifar10", "--out", str(tmp_path)]) == 2
    assert "--data-root is required" in capsys.readouterr().err
    assert main(["ttc", "--dataset", "cifar10", "--data-root", str(tmp_path / "none"), "--out", str(tmp_path)]) == 2
    assert "no CIFAR-10 python batches" in capsys.readouterr().err
    assert main(["ttc", "--dataset", "celeba", "--data-root", str(tmp_path), "--out", str(tmp_path)]) == 2
    assert "not a CelebA root" in capsys.readouterr().err
    assert not (tmp_path / "celeba").exists()  # no half-made run directory
    with pytest.raises(SystemExit):
        build_parser().parse_args(["ttc", "--dataset", "mnist", "--out", str(tmp_path)])


def test_ttc_notebook_runs_on_the_figure_notebooks_executor_pinned_to_this_interpreter(tmp_path):
    """The TTC notebook goes through ``experiments.notebooks.execute``: the kernel is this interpreter
    (not whatever ``python3`` kernelspec the user has) and ``run_dir`` is injected after ``parameters``."""
    import sys

    import nbformat

    from experiments.ttc.notebook import execute_notebook

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "alphas.npz").write_bytes(b"")
    nb = nbformat.v4.new_notebook()
    parameters = nbformat.v4.new_code_cell("run_dir = None")
    parameters.metadata["tags"] = ["parameters"]
    nb.cells = [parameters, nbformat.v4.new_code_cell("import sys\nprint(sys.executable)\nprint(run_dir)")]
    notebook = tmp_path / "probe.ipynb"
    nbformat.write(nb, str(notebook))
    executed = nbformat.read(execute_notebook(run_dir, notebook=notebook, timeout=120), as_version=4)
    printed = executed.cells[-1].outputs[0]["text"].splitlines()
    assert printed == [sys.executable, str(run_dir.resolve())]
