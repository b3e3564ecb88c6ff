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
def test_seeds_resume_keeps_the_finished_steps_and_refuses_changed_settings(tiny_run, tmp_path, capsys, monkeypatch):
    """A killed ``experiments.ttc.seeds`` loses only the step it was in: --resume keeps every finished selection
    and run (files untouched), makes the missing run again, adds up every step's recorded time, and refuses a
    finished step made with other settings, naming the setting. Training is replaced by copies of the tiny run
    (each with the config the seed resolves), so what is tested is the bookkeeping."""
    import shutil

    import pandas as pd

    from experiments.ttc import seeds

    made = []

    def fake_selection_table(dataset, out, seed_list, grid, *args, **kwargs):
        made.append(("select", seed_list[0]))
        return pd.DataFrame([dict(seed=seed_list[0], alpha_lr=float(r), val_accuracy=50.0 + r) for r in grid])

    def fake_run_seeds(dataset, out, seed_list, quick, alpha_lr, progress=False, settings=(), **overrides):
        (seed,) = seed_list
        made.append(("run", seed))
        target = tmp_path / "out" / dataset / f"seed{seed}"
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(tiny_run, target)
        config = seeds._config(
            dataset, out, seed, quick, settings, alpha_lr=alpha_lr, run_id=f"seed{seed}", **overrides
        )
        (target / "config.json").write_text(json.dumps(config.to_dict()))
        return [target]

    monkeypatch.setattr(seeds, "selection_table", fake_selection_table)
    monkeypatch.setattr(seeds, "run_seeds", fake_run_seeds)
    monkeypatch.delenv("TF_NUM_INTRAOP_THREADS", raising=False)  # main() sets it for this process
    out = tmp_path / "out"
    argv = ["--datasets", "digits", "--seeds", "3", "--alpha-lr-seeds", "2", "--out", str(out), "--quick"]
    argv += ["--set", "steps_per_task=4"]
    assert seeds.main(argv) == 0
    assert sorted(made) == [("run", 0), ("run", 1), ("run", 2), ("select", 0), ("select", 1)]
    root, seeds_dir = out / "digits", out / "digits" / "seeds"
    assert len(list(seeds_dir.glob("*.usage.json"))) == 5
    kept = [
        root / "seed0" / "results.json",
        root / "seed2" / "results.json",
        seeds_dir / "alpha_lr_selection.seed1.csv",
    ]
    times = [p.stat().st_mtime_ns for p in kept]
    (root / "seed1" / "results.json").unlink()  # seed 1's run was killed before it finished
    (seeds_dir / "seed1.run.usage.json").unlink()
    made.clear()
    assert seeds.main([*argv, "--resume"]) == 0
    assert made == [("run", 1)] and [p.stat().st_mtime_ns for p in kept] == times
    summary = (seeds_dir / "summary.md").read_text()
    assert "took" in summary and "not counted" not in summary  # every step's time is on record
    (seeds_dir / "seed0.select.usage.json").unlink()  # a step made before times were kept
    assert seeds.main([*argv, "--resume"]) == 0 and made == [("run", 1)]
    assert "1 step(s) made before step times were kept are not counted" in (seeds_dir / "summary.md").read_text()
    capsys.readouterr()
    assert seeds.main([*argv[:-1], "steps_per_task=5", "--resume"]) == 2
    err = capsys.readouterr().err
    assert "made with other settings (steps_per_task)" in err and "rerun without --resume" in err
    assert made == [("run", 1)] and [p.stat().st_mtime_ns for p in kept] == times


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
