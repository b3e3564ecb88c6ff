"""What `dynamic-mtl run` tells its user (run directory and resume command first, a line per finished
(method, fold), results.md refreshed after each method), `dynamic-mtl report` on a partial run, and
the library callbacks behind it (`StopOnDivergence`, the step log's resume rule)."""

from __future__ import annotations

import re
import shutil

import numpy as np
import pandas as pd
import pytest

from experiments.face_expression.config import ExperimentConfig

FOLD_LINE = re.compile(
    r"\[dynamic-mtl\] (?P<method>\S+) fold 0: validation score \d+\.\d% \(expression \d+\.\d%, "
    r"verification \d+\.\d%, epoch 1 of 1\) \| test expression \d+\.\d%, verification "
    r"\d+\.\d% \| \d+\.\d s"
)


# the tests share one module-scoped run: one xdist worker (--dist loadgroup) makes it once
pytestmark = pytest.mark.xdist_group("feedback_run")


@pytest.fixture(scope="module")
def feedback_run(tmp_path_factory, synthfaces_tiny):
    """A 1-epoch run of static and dynamic on fold 0, its stdout, and results.md as it was after static."""
    import experiments.face_expression.run as run

    root = tmp_path_factory.mktemp("feedback")
    config = ExperimentConfig.load("tiny").override(
        data_dir=str(synthfaces_tiny),
        results_dir=str(root / "r"),
        run_id="feedback",
        methods=["static", "dynamic"],
        folds=[0],
    )
    snapshots = []
    write_tables = run.write_tables

    def recording(run_dir, *args, **kwargs):
        built = write_tables(run_dir, *args, **kwargs)
        snapshots.append(((run_dir / "results.md").read_text(), (run_dir / "per_fold.csv").exists()))
        return built

    lines = []
    run.write_tables, say = recording, run.say
    run.say = lambda line: (lines.append(line), say(line))
    try:
        run_dir = run.run_experiment(config, progress=False, tensorboard=True, save_models=True)
    finally:
        run.write_tables, run.say = write_tables, say
    return run_dir, lines, snapshots


@pytest.mark.slow  # shares one ~40 s run
def test_run_prints_its_directory_and_resume_command_first(feedback_run):
    run_dir, lines, _ = feedback_run
    assert lines[0] == f"[dynamic-mtl] run directory: {run_dir}"
    prefix = lines[1].removeprefix("[dynamic-mtl] if interrupted, resume with: ").split(" run --config ")[0]
    assert (
        lines[1] == f"[dynamic-mtl] if interrupted, resume with: {prefix} run --config {run_dir}/config.yaml --resume"
    )
    assert shutil.which(prefix.split()[0])  # runnable as printed: a command on PATH or the venv's own script


@pytest.mark.slow  # shares one ~40 s run
def test_one_line_per_finished_method_and_fold_with_scores_and_seconds(feedback_run):
    _, lines, _ = feedback_run
    fold_lines = [line for line in lines if " fold 0: " in line]
    assert [FOLD_LINE.fullmatch(line).group("method") for line in fold_lines] == ["static", "dynamic"]


@pytest.mark.slow  # shares one ~40 s run
def test_results_md_is_refreshed_after_each_method(feedback_run):
    run_dir, lines, snapshots = feedback_run
    assert len(snapshots) == 2
    partial, finished = snapshots[0]
    assert "Static MTL" in partial and "Proposed dynamic MTL" not in partial
    assert "Partial run" in partial and "Not run yet: dynamic" in partial
    assert not finished  # per_fold.csv marks a finished run: written only at the end
    assert snapshots[1][1]
    assert any(line.endswith("results.md updated: 1 of 2 methods done") for line in lines)
    final = (run_dir / "results.md").read_text()
    assert "Proposed dynamic MTL" in final and "Partial run" not in final


@pytest.mark.slow  # shares one ~40 s run
def test_report_tables_a_partial_run_and_writes_nothing(feedback_run, tmp_path, capsys):
    import shutil

    from experiments.cli import main

    run_dir, _, _ = feedback_run
    partial = tmp_path / "synthfaces" / "feedback"
    shutil.copytree(run_dir, partial)
    for name in ("dynamic_fold0.json", "dynamic_fold0_distances.npz"):
        (partial / "per_fold" / name).unlink()
    before = sorted(p.name for p in partial.rglob("*"))
    assert main(["report", str(partial)]) == 0
    out = capsys.readouterr().out
    assert "| Static MTL |" in out and "Proposed dynamic MTL" not in out and "Not run yet: dynamic" in out
    assert f"dynamic-mtl run --config {partial}/config.yaml --resume" in out
    assert sorted(p.name for p in partial.rglob("*")) == before
    # the finished run reports the tables of its results.md (the analyses section lives in analyses/)
    assert main(["report", str(run_dir)]) == 0
    tables = (run_dir / "results.md").read_text().split("### Further analyses")[0]
    assert capsys.readouterr().out.strip() == tables.strip()
    assert main(["report", str(tmp_path / "nothing")]) == 2
    assert "not a run directory" in capsys.readouterr().err


@pytest.mark.slow  # shares one ~40 s run
def test_tensorboard_scalars_per_step_and_per_epoch(feedback_run):
    import tensorflow as tf

    run_dir, _, _ = feedback_run
    tags: dict[str, set] = {}
    for path in (run_dir / "tensorboard" / "dynamic_fold0").rglob("events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                tags.setdefault(value.tag, set()).add(event.step)
    steps = pd.read_csv(run_dir / "steps" / "dynamic_fold0.csv")
    per_task = [c for c in steps.columns if c.startswith(("w_", "loss_"))]  # w_i and L_i of every task
    assert len(per_task) == 4
    for tag in [f"step/{c}" for c in per_task] + ["step/weight_loss", "step/network_loss"]:
        assert tags[tag] == set(steps["step"]), tag
    assert {"epoch_val_score", "epoch_val_expression_accuracy", "epoch_loss"} <= set(tags)
    assert any("acc" in t or "accuracy" in t for t in tags if t.startswith("epoch_") and "val_" not in t)


@pytest.mark.slow  # shares one ~40 s run
def test_the_selected_model_of_each_method_and_fold_loads_with_keras(feedback_run):
    import keras

    import dynamic_mtl as dm

    run_dir, _, _ = feedback_run
    for method in ("static", "dynamic"):
        loaded = keras.models.load_model(run_dir / "models" / f"{method}_fold0.keras", safe_mode=True)
        assert type(loaded) is dm.DynamicMultiTaskModel
        from experiments.face_expression.training import _seed_generator_keys, _state_keys

        keys = _state_keys("model", loaded.variables, _seed_generator_keys(loaded))
        with np.load(run_dir / "checkpoints" / f"{method}_fold0.npz") as saved:
            assert sum(k.startswith("best/") for k in saved.files) == len(loaded.variables)
            best = [saved[f"best/{key}"] for key in keys]
        for variable, value in zip(loaded.variables, best):  # the selected epoch's weights
            if "seed_generator" not in variable.path:
                np.testing.assert_array_equal(variable.numpy(), value, err_msg=variable.path)


# ------------------------------------------------------------------------------- library callbacks
def test_model_selection_writes_its_score_into_logs_for_the_callbacks_after_it(tiny_batch, tmp_path):
    import keras
    from conftest import small_model

    import dynamic_mtl as dm

    x, y = tiny_batch
    model = small_model()
    model.compile(network_optimizer="sgd", weight_optimizer=dm.default_weight_optimizer())
    scores = iter([0.2, 0.5, 0.4, 0.3, 0.9])
    weights_at = []

    def score(m):
        weights_at.append([v.numpy() for v in m.variables])
        return {"val_score": next(scores), "val_other": 1.0}

    selection = dm.ModelSelection(score, restore_best=True)
    seen = []
    history = model.fit(
        x,
        y,
        batch_size=8,
        epochs=5,
        verbose=0,
        shuffle=False,
        callbacks=[
            selection,
            keras.callbacks.LambdaCallback(on_epoch_end=lambda e, logs: seen.append(logs["val_score"])),
            keras.callbacks.EarlyStopping(monitor="val_score", mode="max", patience=2),
            keras.callbacks.ModelCheckpoint(
                str(tmp_path / "best.weights.h5"),
                monitor="val_score",
                mode="max",
                save_best_only=True,
                save_weights_only=True,
            ),
        ],
    )
    assert history.history["val_score"] == seen == [0.2, 0.5, 0.4, 0.3]  # EarlyStopping read it
    assert (selection.best_epoch, selection.best_score) == (1, 0.5)
    assert (tmp_path / "best.weights.h5").is_file()
    for variable, value in zip(model.variables, weights_at[1]):  # restore_best: epoch 2's weights
        np.testing.assert_array_equal(variable.numpy(), value)


def test_stop_on_divergence_names_epoch_step_and_values_and_composes_with_other_callbacks(tiny_batch):
    import keras
    from conftest import small_model

    import dynamic_mtl as dm

    x, y = tiny_batch
    bad = x.copy()
    bad[0, 0, 0, 0] = np.nan  # one NaN pixel in the third batch of epoch 2
    images, labels = np.concatenate([x, x, bad]), {k: np.concatenate([v, v, v]) for k, v in y.items()}
    model = small_model()
    model.compile(network_optimizer="sgd", weight_optimizer=dm.default_weight_optimizer())
    seen = []
    recorder = keras.callbacks.LambdaCallback(on_train_batch_end=lambda batch, logs: seen.append(batch))
    good = (np.concatenate([x, x, x]), {k: np.concatenate([v, v, v]) for k, v in y.items()})
    model.fit(
        *good,
        batch_size=16,
        epochs=1,
        verbose=0,
        shuffle=False,
        callbacks=[dm.StopOnDivergence(), recorder, keras.callbacks.TerminateOnNaN()],
    )
    with pytest.raises(dm.TrainingDiverged, match=r"epoch 2 step 3 \(global step 6\): .*loss\w*=nan") as err:
        model.fit(
            images,
            labels,
            batch_size=16,
            epochs=2,
            initial_epoch=1,
            verbose=0,
            shuffle=False,
            callbacks=[recorder, dm.StopOnDivergence()],
        )
    assert (err.value.epoch, err.value.step, err.value.global_step) == (2, 3, 6)
    assert seen == [0, 1, 2, 0, 1, 2]  # the other callback ran for every batch, the bad one included

    plain = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    plain.compile(optimizer="sgd", loss="mse")
    with pytest.raises(dm.TrainingDiverged, match=r"epoch 1 step 2: loss=(nan|inf)"):
        plain.fit(
            np.array([[1.0, 1.0], [np.inf, 1.0]]),
            np.zeros((2, 1)),
            batch_size=1,
            verbose=0,
            shuffle=False,
            callbacks=[dm.StopOnDivergence()],
        )


def test_step_log_keeps_rows_up_to_the_restored_step(tmp_path):
    from dynamic_mtl.callbacks import truncate_step_log

    path = tmp_path / "steps.csv"
    rows = "".join(f"{s},0,{0.5 * s:.4f},1\n" for s in range(1, 11))
    path.write_text("step,epoch,wall_time,x\n" + rows + "11,0,5.5")  # a torn last line
    assert truncate_step_log(str(path), 6) == pytest.approx(3.0)  # wall_time of the last kept row
    assert list(pd.read_csv(path)["step"]) == [1, 2, 3, 4, 5, 6]
    with pytest.raises(ValueError, match=f"{path} ends at step 6 but the model is at step 8"):
        truncate_step_log(str(path), 8)
    assert truncate_step_log(str(path), 8, strict=False) == pytest.approx(3.0)  # a library user's gap
    assert truncate_step_log(str(tmp_path / "new.csv"), 8, strict=False) == 0.0  # logging starts now
    with pytest.raises(ValueError, match="is missing but the model is at step 8"):
        truncate_step_log(str(tmp_path / "new.csv"), 8)
    assert truncate_step_log(str(path), 0) == 0.0
    assert path.read_text() == "step,epoch,wall_time,x\n"
