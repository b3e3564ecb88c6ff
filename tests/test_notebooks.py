"""The figure notebooks (Figures 2, 4-7) executed headless against a tiny run, and their helpers."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest

from experiments.face_expression import figures
from experiments.face_expression.figure_notebooks import NOTEBOOK_DIR, NOTEBOOKS, run_figures
from experiments.notebooks import inject_parameters

METHODS = ["naive_dynamic", "dynamic_published", "dynamic", "static@0.0", "static@0.5", "static@1.0"]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, synthfaces_tiny):
    """One fold, one epoch of every method the figures read, on a 20-identity synthfaces set."""
    from experiments.face_expression.config import ExperimentConfig
    from experiments.face_expression.run import run_experiment

    root = tmp_path_factory.mktemp("figures")
    config = ExperimentConfig.load("tiny").override(
        data_dir=str(synthfaces_tiny),
        results_dir=str(root / "results"),
        run_id="tiny",
        methods=METHODS,
        folds=[0],
        epochs=1,
    )
    return run_experiment(config, progress=False)


@pytest.mark.slow
def test_every_notebook_draws_its_figure(tiny_run):
    committed = {p: p.read_bytes() for p in NOTEBOOK_DIR.glob("figure*.ipynb")}
    assert set(figures.run_kinds(tiny_run)) == {"table2", "figure2", "figure7"}
    done = run_figures({"table2": tiny_run, "figure2": tiny_run, "figure7": tiny_run}, timeout=300)
    assert set(done) == set(NOTEBOOKS)
    for figure, executed in done.items():
        assert executed == tiny_run / "notebooks" / NOTEBOOKS[figure][0]
        for suffix in (".png", ".pdf"):
            path = tiny_run / "figures" / f"{figure}{suffix}"
            assert path.is_file() and path.stat().st_size > 1000, path
        nb = nbformat.read(executed, as_version=4)
        text = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))
        assert f"kernel python: {sys.executable}" in text  # the kernel is this interpreter
        assert f"run_dir: {tiny_run}" in text
        assert not [o for c in nb.cells for o in c.get("outputs", []) if o.output_type == "error"]
    assert {p: p.read_bytes() for p in NOTEBOOK_DIR.glob("figure*.ipynb")} == committed


def test_committed_notebooks_are_parameterised_and_cleared():
    for name, _ in NOTEBOOKS.values():
        nb = nbformat.read(NOTEBOOK_DIR / name, as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert "parameters" in code[0].metadata.get("tags", []), name
        assert "run_dir = None" in code[0].source
        assert all(not c.outputs and c.execution_count is None for c in code), f"{name} has outputs"
        assert any(
            "paper" in c.source.lower() and "ours" in c.source.lower() for c in nb.cells if c.cell_type == "markdown"
        ), name


#: notebooks with no image under docs/images/ (their first cell says so and names the command that draws them)
NO_COMMITTED_IMAGE = {"ttc_alphas.ipynb": "experiments.ttc.notebook"}


def test_every_notebook_s_first_cell_shows_its_committed_figure():
    """Browsing notebooks/ shows each figure without executing it: the first (markdown) cell links the PNG
    committed under docs/images/ (relative, as GitHub renders it) and names the command that drew it."""
    import re

    notebooks = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
    assert {p.name for p in notebooks} >= {name for name, _ in NOTEBOOKS.values()} | set(NO_COMMITTED_IMAGE)
    for path in notebooks:
        first = nbformat.read(path, as_version=4).cells[0]
        assert first.cell_type == "markdown", path.name
        links = re.findall(r"!\[[^\]]*\]\(([^)\s]+)\)", first.source)
        if path.name in NO_COMMITTED_IMAGE:
            assert not links and "docs/images/" in first.source, path.name
            assert NO_COMMITTED_IMAGE[path.name] in first.source, path.name
            continue
        assert links, f"{path.name}: no image in the first cell"
        for link in links:
            assert link.startswith("../docs/images/") and link.endswith(".png"), link
            assert (NOTEBOOK_DIR / link).resolve().is_file(), f"{path.name}: {link} does not exist"
        assert "make figures" in first.source, path.name
    for figure, (name, _) in NOTEBOOKS.items():  # each figure notebook shows the PNG it draws
        first = nbformat.read(NOTEBOOK_DIR / name, as_version=4).cells[0]
        assert f"](../docs/images/{figure}.png)" in first.source, name


def test_inject_parameters_follows_the_parameters_cell():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("x"), nbformat.v4.new_code_cell("a = 1")])
    nb.cells[1].metadata["tags"] = ["parameters"]
    inject_parameters(nb, {"a": 2, "run_dir": "/r"})
    assert nb.cells[2].source.splitlines()[1:] == ["a = 2", "run_dir = '/r'"]
    assert nb.cells[2].metadata["tags"] == ["injected-parameters"]
    with pytest.raises(ValueError, match="parameters"):
        inject_parameters(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("")]), {})


def _fake_run(path: Path, methods: list[str], figure2: bool = False) -> Path:
    (path / "steps").mkdir(parents=True)
    for m in methods:
        (path / "steps" / f"{m}_fold0.csv").write_text("step\n1\n")
    (path / "per_fold.csv").write_text("method\n")
    if figure2:
        (path / "figure2.csv").write_text("w1\n0.5\n")
    return path


def test_find_run_takes_the_latest_finished_run_of_each_kind(tmp_path):
    base = tmp_path / "synthfaces"
    old = _fake_run(base / "a", ["naive_dynamic", "dynamic"])
    new = _fake_run(base / "b", ["naive_dynamic", "dynamic_published", "dynamic"], figure2=True)
    os.utime(old / "per_fold.csv", (time.time() - 100, time.time() - 100))
    _fake_run(base / "c", ["naive_dynamic", "dynamic"]).joinpath("per_fold.csv").unlink()  # unfinished
    assert figures.run_kinds(new) == ["table2", "figure2", "figure7"]
    assert figures.find_run("table2", tmp_path) == new
    assert figures.find_run("figure7", tmp_path) == new
    assert figures.find_run("figure2", tmp_path, "ckplus") is None
    with pytest.raises(FileNotFoundError, match="not a finished figure7 run"):
        figures.resolve_run(old, "figure7")
    assert figures.resolve_run(old, "table2") == old


def test_observations_follow_the_logged_values():
    step = np.arange(1, 5)
    proposed = pd.DataFrame(
        {
            "step": step,
            "wall_time": step * 0.1,
            "w_identity": [0.9, 0.8, 0.3, 0.2],
            "w_expression": [0.1, 0.2, 0.7, 0.8],
            "loss_identity": [3.0, 2.0, 1.0, 0.5],
            "loss_expression": [1.0, 1.0, 1.5, 1.5],
            "weight_grad_norm": [1e-7, 1e-3, 1e-3, 1e-3],
            "logit_identity": [20.0, 1.0, 0.0, 0.0],
            "logit_expression": [0.0, 0.0, 1.0, 1.0],
        }
    )
    proposed["a_identity"], proposed["a_expression"] = (
        np.exp(proposed.logit_identity),
        np.exp(proposed.logit_expression),
    )
    naive = proposed.assign(w_identity=0.1, w_expression=0.9)
    obs = figures.weight_observations({"naive_dynamic": naive, "dynamic": proposed})
    assert obs.loc["dynamic", "larger_loss_gets_larger_weight"] == 1.0
    assert obs.loc["naive_dynamic", "larger_loss_gets_larger_weight"] == 0.5
    assert obs.loc["naive_dynamic", "steps_w_identity_below_0.2"] == 1.0
    grad = figures.gradient_observations({"dynamic_published": proposed, "dynamic": proposed})
    assert grad.loc["dynamic_published", "steps_grad_below_1e-06"] == 0.25
    assert grad.loc["dynamic_published", "max_a_raw"] == pytest.approx(np.exp(20))
    assert grad.loc["dynamic_published", "max_a_softmax_input"] == pytest.approx(np.exp(20))
    assert grad.loc["dynamic", "max_a_softmax_input"] == pytest.approx(np.e)
    sweep = pd.DataFrame(
        {"w1": [0.0, 0.5, 1.0], "verification_accuracy": [80, 85, 90], "expression_accuracy": [70, 75, 60]}
    )
    s = figures.sweep_observations(sweep)
    assert s.loc["verification", "best_w1"] == 1.0 and bool(s.loc["expression", "best_is_equal_weights"])


def test_a_missing_run_is_named_not_trained(tmp_path, monkeypatch):
    import experiments.face_expression.run
    from experiments.face_expression import figure_notebooks as notebooks

    seen = {}

    def fake_run_experiment(config, progress=True):
        seen.update(name=config.name, results_dir=config.results_dir, dataset=config.dataset, progress=progress)
        return tmp_path / "made"

    monkeypatch.setattr(experiments.face_expression.run, "run_experiment", fake_run_experiment)
    with pytest.raises(FileNotFoundError, match="make reproduce-figure7"):
        figures.resolve_run(None, "figure7", results_dir=tmp_path)
    assert notebooks.main(["--results-dir", str(tmp_path), "--only", "figure4"]) == 2
    assert seen == {}  # nothing trained, no notebook started
    runs = notebooks.resolve_runs({}, ["figure7", "figure4", "figure5"], results_dir=tmp_path, train_missing=True)
    assert runs == {"figure7": tmp_path / "made", "table2": tmp_path / "made"}
    assert seen == {"name": "quick", "results_dir": str(tmp_path), "dataset": "synthfaces", "progress": True}


def test_fold_summary_is_the_median_and_quartiles_over_folds():
    folds = [
        pd.DataFrame({"step": [1, 2, 3], "w_a": [v, v, v], "w_b": [1 - v] * 3, "loss_a": [v] * 3, "loss_b": [0.5] * 3})
        for v in (0.1, 0.2, 0.9)
    ]
    folds[2] = pd.concat([folds[2], folds[2].tail(1).assign(step=4)], ignore_index=True)  # a longer fold
    median, low, high = figures.fold_summary(folds)
    assert list(median["step"]) == [1, 2, 3]  # cut to the shortest fold
    assert median["w_a"].tolist() == pytest.approx([0.2] * 3)
    assert low["w_a"].tolist() == pytest.approx([0.15] * 3) and high["w_a"].tolist() == pytest.approx([0.55] * 3)
    assert figures.tasks_of(folds[0]) == ("a", "b")
    obs = figures.weight_observations({"m": folds})
    assert obs.loc["m", "folds"] == 3 and obs.loc["m", "steps"] == 10
    assert obs.loc["m", "final_w_a"] == pytest.approx(0.2)
    assert obs.loc["m", "steps_a_loss_larger"] == pytest.approx(4 / 10)  # only the 0.9 fold: loss_a > loss_b
    fig = figures.plot_weights({"m": folds, "n": folds[:1]})
    assert "median over 3 folds" in fig._suptitle.get_text()
