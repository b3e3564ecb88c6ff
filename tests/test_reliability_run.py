"""`dynamic-mtl run` under faults: an interruption at each commit point resumes to identical tables
and step logs; a changed --resume, a second holder of the run directory, an unsafe --run-id and a
diverging training stop with one line (exit 2) and publish nothing wrong."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from experiments.face_expression.config import ExperimentConfig


class Interrupted(BaseException):
    """Stands for a kill at the injected point (BaseException: no handler in the run may swallow it)."""


@pytest.fixture(scope="module")
def tiny_data(synthfaces_tiny):
    """The session's 20-identity synthfaces set (tests/conftest.py)."""
    return synthfaces_tiny


def config_for(data, results, run_id, **changes) -> ExperimentConfig:
    options = dict(
        data_dir=str(data), results_dir=str(results), run_id=run_id, methods=["dynamic"], folds=[0], epochs=2
    )
    return ExperimentConfig.load("tiny").override(**{**options, **changes})


@pytest.fixture(scope="module")
def clean_run(tiny_data, tmp_path_factory):
    """An uninterrupted 2-epoch run of `dynamic` on fold 0: the reference."""
    from experiments.face_expression.run import run_experiment

    return run_experiment(config_for(tiny_data, tmp_path_factory.mktemp("clean"), "clean"), progress=False)


def assert_same_results(clean: Path, other: Path) -> None:
    """Identical tables, per-fold rows and step logs (the clock columns aside)."""
    a = pd.read_csv(clean / "per_fold.csv").drop(columns=["train_seconds"])
    b = pd.read_csv(other / "per_fold.csv").drop(columns=["train_seconds"])
    pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-6)
    for name in ("table2.csv", "table3.csv"):
        pd.testing.assert_frame_equal(
            pd.read_csv(clean / name), pd.read_csv(other / name), check_exact=False, rtol=1e-6
        )
    steps_a = pd.read_csv(clean / "steps" / "dynamic_fold0.csv").drop(columns=["wall_time"])
    steps_b = pd.read_csv(other / "steps" / "dynamic_fold0.csv").drop(columns=["wall_time"])
    assert list(steps_b["step"]) == list(range(1, len(steps_a) + 1))  # no duplicated or lost rows
    pd.testing.assert_frame_equal(steps_a, steps_b, check_exact=False, rtol=1e-6)


@pytest.mark.slow
def test_interruption_between_step_log_flush_and_checkpoint_resumes_to_identical_logs(
    clean_run, tiny_data, tmp_path, monkeypatch
):
    """Epoch 2's step-log rows are on disk, its checkpoint is not: --resume retrains epoch 2 from
    epoch 1's checkpoint and the step log holds each step once."""
    import experiments.face_expression.training as training
    from experiments.face_expression.run import run_experiment

    save = training._save_checkpoint
    calls = []

    def save_then_die(path, model, state, best):
        calls.append(state["epoch"])
        if state["epoch"] == 2:
            raise Interrupted
        save(path, model, state, best)

    monkeypatch.setattr(training, "_save_checkpoint", save_then_die)
    config = config_for(tiny_data, tmp_path, "flush")
    with pytest.raises(Interrupted):
        run_experiment(config, progress=False)
    run_dir = tmp_path / "synthfaces" / "flush"
    steps = pd.read_csv(run_dir / "steps" / "dynamic_fold0.csv")
    epoch_steps = int((steps["epoch"] == 0).sum())
    assert len(steps) == 2 * epoch_steps, "the fault was not injected after epoch 2's flush"
    monkeypatch.setattr(training, "_save_checkpoint", save)
    run_experiment(config, resume=True, progress=False)
    assert_same_results(clean_run, run_dir)


@pytest.mark.slow
def test_interruption_while_writing_the_per_fold_json_resumes_to_identical_tables(
    clean_run, tiny_data, tmp_path, monkeypatch, capsys
):
    """A kill half-way through the per-fold JSON leaves only a temporary file; a torn JSON or checkpoint
    under the final name (as an older version could leave) is named, not trusted, and recomputed."""
    import experiments.rundir as rundir
    from experiments.face_expression.run import run_experiment

    write = rundir.atomic_write

    def die_half_way(path, writer):
        if Path(path).suffix == ".json" and Path(path).parent.name == "per_fold":
            with open(rundir.temporary_name(Path(path)), "wb") as handle:
                handle.write(b'{"method": "dyn')
            raise Interrupted
        write(path, writer)

    monkeypatch.setattr(rundir, "atomic_write", die_half_way)
    config = config_for(tiny_data, tmp_path, "json")
    with pytest.raises(Interrupted):
        run_experiment(config, progress=False)
    run_dir = tmp_path / "synthfaces" / "json"
    done = run_dir / "per_fold" / "dynamic_fold0.json"
    assert not done.exists() and list(done.parent.glob(".dynamic_fold0.json.*.tmp"))
    done.write_text('{"method": "dynamic", "fold": 0, "expression_acc')  # torn under the final name
    checkpoint = run_dir / "checkpoints" / "dynamic_fold0.npz"
    checkpoint.write_bytes(checkpoint.read_bytes()[:1000])  # and a torn checkpoint
    monkeypatch.setattr(rundir, "atomic_write", write)
    capsys.readouterr()
    run_experiment(config, resume=True, progress=False)
    out = capsys.readouterr().out
    assert f"{done} is unreadable" in out and f"{checkpoint} or dynamic_fold0.csv is unusable" in out
    assert json.loads(done.read_text())["method"] == "dynamic"
    assert_same_results(clean_run, run_dir)


@pytest.mark.slow
def test_resume_refuses_changed_settings_and_names_them(clean_run, capsys):
    """Resuming a finished 2-epoch run with 5 epochs (and another seed) is refused; nothing changes."""
    from experiments.cli import main

    before = (clean_run / "config.yaml").read_text()
    code = main(["run", "--config", str(clean_run / "config.yaml"), "--resume", "--epochs", "5", "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "settings that differ" in err and "epochs: 2 -> 5" in err
    assert (clean_run / "config.yaml").read_text() == before
    # the same settings resume (every fold is done: nothing is retrained) and a moved results root is allowed
    assert main(["run", "--config", str(clean_run / "config.yaml"), "--resume", "--quiet"]) == 0


def test_a_second_run_on_a_locked_directory_exits_2_naming_the_holder(tiny_data, tmp_path, capsys):
    from experiments.cli import main
    from experiments.rundir import run_lock

    run_dir = tmp_path / "synthfaces" / "busy"
    run_dir.mkdir(parents=True)
    with run_lock(run_dir):
        code = main(
            [
                "run",
                "--config",
                "tiny",
                "--data-dir",
                str(tiny_data),
                "--results-dir",
                str(tmp_path),
                "--run-id",
                "busy",
                "--quiet",
            ]
        )
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert f"pid {os.getpid()}" in err and str(run_dir / ".lock") in err
    assert not (run_dir / "config.yaml").exists()


def test_a_stale_lock_of_a_dead_process_is_taken_over(tmp_path):
    from experiments.rundir import RunLocked, run_lock

    (tmp_path / ".lock").write_text("999999999 elsewhere\n")  # the holder was killed
    with run_lock(tmp_path):
        assert (tmp_path / ".lock").read_text().split()[0] == str(os.getpid())
        with pytest.raises(RunLocked, match=f"pid {os.getpid()}"):
            with run_lock(tmp_path):
                pass
    with run_lock(tmp_path):  # released at the end of the block
        pass


def test_the_lock_file_is_removed_at_the_end_and_a_removed_one_is_never_held(tmp_path):
    """``.lock`` exists while a run holds the directory and is gone after it; a process that opened the
    file just before it was removed does not hold the lock of the directory by locking that file."""
    from experiments.rundir import LOCK_NAME, _same_file, run_lock

    path = tmp_path / LOCK_NAME
    with run_lock(tmp_path):
        assert path.read_text().split()[0] == str(os.getpid())
        late = os.open(path, os.O_RDWR)  # opened by a second process before the holder ends
    try:
        assert not path.exists()
        assert not _same_file(late, path)
        with run_lock(tmp_path):  # a third process creates and holds a new lock file
            assert not _same_file(late, path)
        assert not path.exists()
    finally:
        os.close(late)


@pytest.mark.parametrize(
    "run_id", ["../../x", "/abs", "a/../b", "a//b", "..", ".hidden", "", "x" * 101, "a b", "a/b/c/d"]
)
def test_unsafe_run_ids_are_refused_before_anything_is_written(run_id, tmp_path, capsys):
    from experiments.cli import main

    code = main(["run", "--config", "tiny", "--results-dir", str(tmp_path / "r"), "--run-id", run_id, "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "not a safe name" in err
    assert not (tmp_path / "r").exists()


def test_run_ids_of_study_seeds_stay_allowed():
    from experiments.rundir import check_run_id

    for run_id in ("20261202-112233", "smoke", "quick-study/seed3", "v1.2_run"):
        assert check_run_id(run_id) == run_id


def test_unique_temporary_names():
    from experiments.rundir import temporary_name

    names = {temporary_name(Path("r/checkpoints/dynamic_fold0.npz")) for _ in range(100)}
    assert len(names) == 100 and all(n.parent == Path("r/checkpoints") and n.name.endswith(".tmp") for n in names)


@pytest.mark.slow
def test_divergence_stops_the_run_naming_method_fold_epoch_and_step(tiny_data, tmp_path):
    """A learning rate of 1e12: the run stops at the first non-finite loss and publishes no row."""
    from experiments.face_expression.run import run_experiment
    from experiments.rundir import RunError

    optimizer = {"name": "SGD", "learning_rate": 1e12, "options": {}, "decay_epochs": []}
    config = config_for(
        tiny_data, tmp_path, "diverge", methods=["static", "dynamic"], epochs=1, network_optimizer=optimizer
    )
    with pytest.raises(RunError, match=r"^training diverged in static fold 0 epoch 1 step \d+: .*loss") as err:
        run_experiment(config, progress=False)
    assert "\n" not in str(err.value)
    step = int(str(err.value).split(" step ")[1].split(":")[0])
    run_dir = tmp_path / "synthfaces" / "diverge"
    steps = (
        pd.read_csv(run_dir / "steps" / "static_fold0.csv")
        if (run_dir / "steps" / "static_fold0.csv").exists()
        else pd.DataFrame(columns=["step", "network_loss"])
    )
    assert steps["network_loss"].astype(float).head(step - 1).map(lambda v: abs(v) < float("inf")).all()
    assert not list((run_dir / "per_fold").glob("*.json")) and not (run_dir / "per_fold.csv").exists()
    assert "stopped, training diverged in static fold 0" in (run_dir / "results.md").read_text()


def _trained_model(method: str = "dynamic"):
    """A tiny compiled model after one training step (optimizer slots and step counter non-zero)."""
    import dynamic_mtl as dm

    config = ExperimentConfig.load("tiny")
    model = dm.build_face_expression_model(5, 3, backbone="small_cnn", image_size=24, weighting=method)
    model.compile(
        network_optimizer=config.network_optimizer.build(3), weight_optimizer=config.weight_optimizer.build(3)
    )
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 24, 24, 3)).astype("float32")
    y = {"identity": rng.integers(0, 5, 8).astype("int32"), "expression": rng.integers(0, 3, 8).astype("int32")}
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    return model


def _state_by_key(model) -> dict[str, np.ndarray]:
    from experiments.face_expression.training import _seed_generator_keys, _state_groups, _state_keys

    generators = _seed_generator_keys(model)
    return {
        f"{group}/{key}": variable.numpy()
        for group, variables in _state_groups(model).items()
        for key, variable in zip(_state_keys(group, variables, generators), variables)
    }


@pytest.mark.slow
def test_checkpoints_restore_by_variable_path_into_a_model_built_later_and_in_another_order(tmp_path):
    """A model built after others (Keras numbers its seed generators and optimizer differently) gets every
    variable back bit-identically, and so does one whose variables are listed in another order."""
    from types import SimpleNamespace

    import dynamic_mtl as dm
    from experiments.face_expression.training import _load_checkpoint, _save_checkpoint

    saved = _trained_model()
    best = [v.numpy() + 1 for v in saved.variables]
    state = {"epoch": 1, "best_score": 0.5, "best_epoch": 0, "history": [], "seconds": 1.0}
    _save_checkpoint(tmp_path / "c.npz", saved, state, best)
    expected = _state_by_key(saved)
    assert int(saved.train_step_count.numpy()) == 1

    dm.build_face_expression_model(5, 3, backbone="small_cnn", image_size=24, weighting="static")  # shifts names
    restored = _trained_model()  # other weights, another step
    restored_state, restored_best = _load_checkpoint(tmp_path / "c.npz", restored)
    assert restored_state == state
    after = _state_by_key(restored)
    assert after.keys() == expected.keys()
    for key, value in expected.items():
        np.testing.assert_array_equal(after[key], value, err_msg=key)
    for a, b in zip(restored_best, best):
        np.testing.assert_array_equal(a, b)

    fresh = _trained_model()
    reordered = SimpleNamespace(
        variables=list(reversed(fresh.variables)),
        optimizer=SimpleNamespace(variables=list(reversed(fresh.optimizer.variables))),
        weight_optimizer=SimpleNamespace(variables=list(reversed(fresh.weight_optimizer.variables))),
        weighting_variables=fresh.weighting_variables,
        weighting=fresh.weighting,
        _flatten_layers=fresh._flatten_layers,
    )
    _, reordered_best = _load_checkpoint(tmp_path / "c.npz", reordered)
    after = _state_by_key(fresh)
    for key, value in expected.items():
        np.testing.assert_array_equal(after[key], value, err_msg=key)
    for a, b in zip(reordered_best, reversed(best)):
        np.testing.assert_array_equal(a, b)


def test_a_checkpoint_whose_variables_were_renamed_or_reshaped_is_refused_before_any_assignment(tmp_path):
    from experiments.face_expression.training import _load_checkpoint, _save_checkpoint

    saved = _trained_model()
    state = {"epoch": 1, "best_score": 0.5, "best_epoch": 0, "history": [], "seconds": 1.0}
    _save_checkpoint(tmp_path / "c.npz", saved, state, [v.numpy() for v in saved.variables])
    with np.load(tmp_path / "c.npz") as data:
        arrays = {k: data[k] for k in data.files}
    kernel = next(k for k in arrays if k.startswith("model/") and k.endswith("/kernel"))

    def written(name, changed):
        np.savez(tmp_path / name, **changed)
        return tmp_path / name

    renamed = {("model/renamed_layer/kernel" if k == kernel else k): v for k, v in arrays.items()}
    reshaped = {**arrays, kernel: arrays[kernel].reshape(-1)}
    by_index = {f"model_{i:05d}": v for i, v in enumerate(a for k, a in arrays.items() if k.startswith("model/"))}
    cases = {
        "renamed.npz": (renamed, f"does not hold the model's variable '{kernel}'"),
        "reshaped.npz": (reshaped, f"checkpoint variable '{kernel}' has shape"),
        "by_index.npz": ({**by_index, "state": arrays["state"]}, "does not hold the model's variable"),
        "extra.npz": ({**arrays, "model/unknown/bias": np.zeros(3)}, "variables the model does not have"),
    }
    target = _trained_model()
    before = _state_by_key(target)
    for name, (changed, message) in cases.items():
        with pytest.raises(ValueError, match=message):
            _load_checkpoint(written(name, changed), target)
        for key, value in _state_by_key(target).items():  # nothing was assigned
            np.testing.assert_array_equal(value, before[key], err_msg=f"{name}: {key}")


@pytest.mark.slow
def test_a_fold_whose_checkpoint_names_other_variables_starts_again(
    clean_run, tiny_data, tmp_path, monkeypatch, capsys
):
    """Resume with a checkpoint keyed by other variable paths: named as not trusted, the fold is retrained
    from its first epoch and the tables are those of the uninterrupted run."""
    import experiments.face_expression.training as training
    from experiments.face_expression.run import run_experiment

    save = training._save_checkpoint

    def save_then_die(path, model, state, best):
        save(path, model, state, best)
        if state["epoch"] == 1:
            raise Interrupted

    monkeypatch.setattr(training, "_save_checkpoint", save_then_die)
    config = config_for(tiny_data, tmp_path, "renamed")
    with pytest.raises(Interrupted):
        run_experiment(config, progress=False)
    monkeypatch.setattr(training, "_save_checkpoint", save)
    checkpoint = tmp_path / "synthfaces" / "renamed" / "checkpoints" / "dynamic_fold0.npz"
    with np.load(checkpoint) as data:
        arrays = {k.replace("model/", "model/old_", 1): data[k] for k in data.files}
    with open(checkpoint, "wb") as handle:
        np.savez(handle, **arrays)
    capsys.readouterr()
    run_experiment(config, resume=True, progress=False)
    out = capsys.readouterr().out
    assert f"{checkpoint} or dynamic_fold0.csv is unusable" in out and "does not hold the model's variable" in out
    assert_same_results(clean_run, tmp_path / "synthfaces" / "renamed")
