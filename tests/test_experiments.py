"""The experiments harness end to end (tiny config), configs, and kill-and-resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from experiments.face_expression.config import ExperimentConfig
from experiments.face_expression.methods import METHODS, parse_method
from experiments.face_expression.run import expand_methods

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tiny_data(synthfaces_tiny):
    """The session's 20-identity synthfaces set (tests/conftest.py)."""
    return synthfaces_tiny


def tiny_config(data_dir, results_dir, **changes) -> ExperimentConfig:
    return ExperimentConfig.load("tiny").override(data_dir=str(data_dir), results_dir=str(results_dir), **changes)


def test_config_round_trips_through_yaml_and_json(tmp_path):
    config = ExperimentConfig.load("quick")
    for suffix in (".yaml", ".json"):
        config.save(tmp_path / f"c{suffix}")
        assert ExperimentConfig.load(tmp_path / f"c{suffix}") == config


def test_config_refuses_unknown_keys_and_methods(tmp_path):
    (tmp_path / "bad.yaml").write_text("epochz: 3\n")
    with pytest.raises(ValueError, match="unknown config keys"):
        ExperimentConfig.load(tmp_path / "bad.yaml")
    with pytest.raises(ValueError, match="unknown method"):
        ExperimentConfig.load("tiny").override(methods=["dynamik"])
    with pytest.raises(FileNotFoundError, match="bundled configs"):
        ExperimentConfig.load("no-such-config")
    with pytest.raises(ValueError, match="static weight"):
        parse_method("static@1.5")


def test_bundled_configs_load():
    for path in (REPO / "experiments" / "configs").glob("*.yaml"):
        assert ExperimentConfig.load(path).methods


def test_static_sweep_expands_to_the_figure2_weights():
    config = ExperimentConfig.load("figure2")
    names = expand_methods(config)
    assert names == [f"static@{w:.1f}" for w in np.round(np.arange(0, 1.01, 0.1), 1)]
    assert parse_method("static@0.3").options == {"weights": [0.3, 0.7]}


def test_harness_end_to_end_writes_every_result_file(tiny_data, tmp_path):
    from experiments.face_expression.run import run_experiment

    config = tiny_config(tiny_data, tmp_path, run_id="e2e", methods=["single_task_face", "static", "dynamic"])
    run_dir = run_experiment(config, progress=False)
    for name in ("config.yaml", "environment.json", "per_fold.csv", "table2.csv", "table3.csv", "results.md"):
        assert (run_dir / name).is_file(), name
    per_fold = pd.read_csv(run_dir / "per_fold.csv")
    assert set(per_fold["method"]) == {"single_task_face", "static", "dynamic"}
    assert set(per_fold["fold"]) == {0, 1}
    assert per_fold["verification_accuracy"].between(0, 1).all()
    assert (per_fold["threshold_protocol"] == "threshold from this model's validation pairs").all()
    assert per_fold["verification_accuracy_crossfold"].between(0, 1).all()
    table2 = pd.read_csv(run_dir / "table2.csv")
    assert list(table2["label"]) == ["Single-task (scratch)", "Static MTL", "Proposed dynamic MTL"]
    assert table2.loc[table2["label"] == "Proposed dynamic MTL", "paper"].item() == 99.00
    table3 = pd.read_csv(run_dir / "table3.csv")
    assert "Single-task (scratch)" not in set(table3["label"])  # face single-task reports no expression
    steps = pd.read_csv(run_dir / "steps" / "dynamic_fold0.csv")
    assert {"w_identity", "w_expression", "loss_identity", "loss_expression", "weight_loss", "weight_grad_norm"} <= set(
        steps.columns
    )
    assert len(steps) > 0 and np.allclose(steps["w_identity"] + steps["w_expression"], 1.0, atol=1e-5)
    saved = ExperimentConfig.load(run_dir / "config.yaml")
    assert saved.run_id == "e2e" and saved.methods == ["single_task_face", "static", "dynamic"]
    env = json.loads((run_dir / "environment.json").read_text())
    assert env["tensorflow"] and env["machine"]
    assert "embedded synthfaces" in (run_dir / "results.md").read_text()
    for name in ("roc.png", "method_comparison.png", "verification_details.csv", "confusion_static.csv"):
        assert (run_dir / "analyses" / name).is_file(), (
            name
        )  # experiments/face_expression/analyses.py, for every finished run
    assert "Further analyses" in (run_dir / "results.md").read_text()
    with pytest.raises(FileExistsError, match="--resume"):
        run_experiment(config, progress=False)


def test_every_weighting_strategy_is_a_table_row_the_harness_runs(tiny_data, tmp_path):
    from dynamic_mtl.weighting import WEIGHTINGS
    from experiments.face_expression.run import run_experiment

    rows = {spec.weighting for spec in METHODS.values()}
    assert set(WEIGHTINGS) <= rows, sorted(set(WEIGHTINGS) - rows)
    config = tiny_config(tiny_data, tmp_path, run_id="new", methods=["pcgrad", "rlw"], folds=[0])
    per_fold = pd.read_csv(run_experiment(config, progress=False) / "per_fold.csv")
    assert list(per_fold["method"]) == ["pcgrad", "rlw"]
    assert per_fold["expression_accuracy"].between(0, 1).all()


@pytest.mark.slow
def test_a_new_weighting_strategy_is_a_registry_entry_and_a_row_the_harness_runs(tiny_data, tmp_path, monkeypatch):
    """docs/contributing.md: a strategy module (its WEIGHTINGS entry, made by @register_weighting) and
    its MethodSpec row make a new row of Tables 2-3; the harness (experiments/face_expression/run.py, training.py) is
    not touched."""
    import keras
    from keras import ops

    from dynamic_mtl.weighting import WEIGHTINGS, WeightingStrategy
    from experiments.face_expression.methods import MethodSpec
    from experiments.face_expression.run import run_experiment

    @keras.saving.register_keras_serializable(package="tests")
    class TiltedWeighting(WeightingStrategy):
        """Fixed weights (0.7, 0.3): the smallest strategy there is."""

        def task_weights(self, unit_weights=None):
            return ops.convert_to_tensor([0.7, 0.3], dtype="float32")

    monkeypatch.setitem(WEIGHTINGS, "tilted", TiltedWeighting)
    monkeypatch.setitem(METHODS, "tilted", MethodSpec("tilted", "Tilted toy weighting", "tilted"))
    config = tiny_config(tiny_data, tmp_path, run_id="toy", methods=["tilted"], folds=[0])
    run_dir = run_experiment(config, progress=False)
    per_fold = pd.read_csv(run_dir / "per_fold.csv")
    assert list(per_fold["method"]) == ["tilted"] and per_fold["expression_accuracy"].between(0, 1).all()
    assert pd.read_csv(run_dir / "table2.csv")["label"].tolist() == ["Tilted toy weighting"]
    steps = pd.read_csv(run_dir / "steps" / "tilted_fold0.csv")
    assert np.allclose(steps["w_identity"], 0.7) and np.allclose(steps["w_expression"], 0.3)


def test_gpu_options_validate_and_resolve_on_cpu(tiny_data, tmp_path):
    """jit_compile "auto" resolves to False on a CPU-only machine (Keras's rule); mixed_precision
    builds a mixed_float16 network with a loss-scaled optimizer and leaves the global policy alone."""
    import keras

    from experiments.face_expression.run import run_experiment

    with pytest.raises(ValueError, match="jit_compile"):
        ExperimentConfig.load("tiny").override(jit_compile="xla")
    with pytest.raises(ValueError, match="steps_per_execution"):
        ExperimentConfig.load("tiny").override(steps_per_execution=0)
    config = tiny_config(
        tiny_data,
        tmp_path,
        run_id="gpu-options",
        methods=["dynamic"],
        folds=[0],
        jit_compile="auto",
        mixed_precision=True,
        steps_per_execution=2,
    )
    run_dir = run_experiment(config, progress=False)
    assert keras.config.dtype_policy().name == "float32"
    compiled = json.loads((run_dir / "environment.json").read_text())["compiled"]["dynamic"]
    assert compiled == {
        "jit_compile": False,
        "steps_per_execution": 2,
        "dtype_policy": "mixed_float16",
        "network_optimizer": "LossScaleOptimizer",
    }
    per_fold = pd.read_csv(run_dir / "per_fold.csv")
    assert np.isfinite(per_fold[["expression_accuracy", "verification_accuracy"]].to_numpy()).all()
    steps = pd.read_csv(run_dir / "steps" / "dynamic_fold0.csv")
    assert len(steps) > 0 and np.isfinite(steps[["w_identity", "weight_loss"]].to_numpy()).all()


def test_folds_without_verification_pairs_still_report_expression(tmp_path, capsys):
    """10 identities in 10 folds: one test subject per fold, so no test pairs. The run finishes,
    says so, and leaves verification empty (NaN) rather than failing after training."""
    from data_prep.prepare import prepare_synthfaces
    from experiments.face_expression.run import run_experiment

    data = tmp_path / "synth10"
    prepare_synthfaces(data, num_identities=10, seed=0, image_size=32, progress=False)
    config = tiny_config(data, tmp_path / "r", run_id="few", methods=["static"], folds=[0, 1])
    run_dir = run_experiment(config, progress=False)
    assert "has no verification pairs" in capsys.readouterr().out
    per_fold = pd.read_csv(run_dir / "per_fold.csv")
    assert per_fold["expression_accuracy"].between(0, 1).all()
    assert (per_fold["num_test_pairs"] == 0).all()
    assert pd.read_csv(run_dir / "table2.csv")["accuracy"].isna().all()
    assert pd.read_csv(run_dir / "table3.csv")["accuracy"].between(0, 100).all()


def test_missing_real_dataset_gives_a_clear_error(tmp_path):
    from experiments.face_expression.run import run_experiment

    config = ExperimentConfig.load("tiny").override(
        dataset="ckplus", data_dir=str(tmp_path / "ck"), results_dir=str(tmp_path / "r")
    )
    with pytest.raises(FileNotFoundError, match="DATA_ROOT"):
        run_experiment(config, progress=False)


def _cli(args, **kwargs):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.Popen(
        [sys.executable, "-m", "experiments.cli", "run", *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        **kwargs,
    )


@pytest.mark.slow
def test_a_killed_run_resumes_to_the_same_results(tiny_data, tmp_path):
    """SIGKILL in the middle of a fold's training, then --resume: same numbers as a clean run."""
    common = [
        "--config",
        "tiny",
        "--data-dir",
        str(tiny_data),
        "--results-dir",
        str(tmp_path),
        "--epochs",
        "2",
        "--methods",
        "dynamic",
        "--quiet",
    ]
    clean = _cli(common + ["--run-id", "clean"])
    output, _ = clean.communicate(timeout=600)
    assert clean.returncode == 0, output[-3000:]

    killed = _cli(common + ["--run-id", "killed"])
    run_dir = tmp_path / "synthfaces" / "killed"
    target = run_dir / "checkpoints" / "dynamic_fold1.npz"
    deadline = time.time() + 600
    while not target.exists() and killed.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    killed.send_signal(signal.SIGKILL)
    killed.communicate(timeout=60)
    assert not (run_dir / "per_fold.csv").exists(), "the run finished before it could be killed"

    resumed = _cli(common + ["--run-id", "killed", "--resume"])
    output, _ = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, output[-3000:]
    a = pd.read_csv(tmp_path / "synthfaces" / "clean" / "per_fold.csv").drop(columns=["train_seconds"])
    b = pd.read_csv(run_dir / "per_fold.csv").drop(columns=["train_seconds"])
    pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-6)
    for name in ("table2.csv", "table3.csv"):
        pd.testing.assert_frame_equal(
            pd.read_csv(tmp_path / "synthfaces" / "clean" / name),
            pd.read_csv(run_dir / name),
            check_exact=False,
            rtol=1e-6,
        )


def test_methods_of_a_fold_start_from_the_same_network_and_see_the_same_batches(tiny_data, tmp_path):
    """Paired design: in one fold every method starts from bit-identical network weights (the
    same weight-unit init for the methods that have one) and trains on identical batches; the
    next fold starts from a different draw."""
    import tensorflow as tf

    from data_prep import seeds
    from experiments.face_expression.data import load_prepared
    from experiments.face_expression.training import FoldRunner

    config = tiny_config(tiny_data, tmp_path)
    data = load_prepared(config)
    splits = {k: data.split(k, config.validation_subjects, config.seed) for k in (0, 1)}
    identities = max(len(s.train_subjects) for s in splits.values())
    runner = FoldRunner(config, data, tmp_path / "run", tf.distribute.get_strategy(), identities, None)

    def network_weights(name, fold):
        return [v.numpy() for v in runner.model_for(parse_method(name), fold).network.variables]

    static, dynamic, naive = (network_weights(m, 0) for m in ("static", "dynamic", "naive_dynamic"))
    for other in (dynamic, naive):
        assert len(other) == len(static)
        for a, b in zip(static, other):
            np.testing.assert_array_equal(a, b)
    psi = {
        m: runner.model_for(parse_method(m), 0).weight_unit.kernel.numpy()
        for m in ("dynamic", "naive_dynamic", "dynamic_published")
    }
    np.testing.assert_array_equal(psi["dynamic"], psi["naive_dynamic"])
    np.testing.assert_array_equal(psi["dynamic"], psi["dynamic_published"])
    fold1 = network_weights("static", 1)
    assert any(not np.array_equal(a, b) for a, b in zip(static, fold1))
    # the fold's start is restored after training another fold
    for a, b in zip(static, network_weights("static", 0)):
        np.testing.assert_array_equal(a, b)

    # batches depend on (seed, fold, epoch) only, never on the method
    split = splits[0]
    from data_prep.pipeline import identity_map

    id_map = identity_map(split.train_subjects)
    seed = seeds.EPOCH_ORDER.seed(config.seed, split.fold, 0)
    first = [(x.numpy(), y["identity"].numpy()) for x, y in runner.training_dataset(split, id_map, seed)]
    again = [(x.numpy(), y["identity"].numpy()) for x, y in runner.training_dataset(split, id_map, seed)]
    assert len(first) == len(again) > 0
    for (xa, ya), (xb, yb) in zip(first, again):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)


def test_a_method_can_set_its_own_weight_unit_learning_rate(tiny_data, tmp_path):
    import tensorflow as tf

    from experiments.face_expression.data import load_prepared
    from experiments.face_expression.training import FoldRunner

    config = tiny_config(tiny_data, tmp_path)
    data = load_prepared(config)
    split = data.split(0, config.validation_subjects, config.seed)
    runner = FoldRunner(config, data, tmp_path / "run", tf.distribute.get_strategy(), len(split.train_subjects), None)
    rates = {
        name: float(runner.model_for(parse_method(name), 0).weight_optimizer.learning_rate.numpy())
        for name in ("dynamic", "dynamic_unit_lr0.01", "dynamic_unit_lr0.001")
    }
    assert rates["dynamic"] == pytest.approx(config.weight_optimizer.learning_rate)
    assert rates["dynamic_unit_lr0.01"] == pytest.approx(0.01)
    assert rates["dynamic_unit_lr0.001"] == pytest.approx(0.001)
    no_stop = runner.model_for(parse_method("dynamic_no_stop_gradient"), 0)
    assert not no_stop.weighting.stop_gradient_weights


def test_rows_that_start_from_the_pretrained_network_use_the_fine_tuning_optimizer(tiny_data, tmp_path, monkeypatch):
    import tensorflow as tf

    import dynamic_mtl.transfer
    from experiments.face_expression.config import OptimizerConfig
    from experiments.face_expression.data import load_prepared
    from experiments.face_expression.training import FoldRunner

    monkeypatch.setattr(dynamic_mtl.transfer, "load_pretrained", lambda model, path: None)
    config = tiny_config(tiny_data, tmp_path, finetune_optimizer=OptimizerConfig("Adam", 2e-4, decay_epochs=[1]))
    data = load_prepared(config)
    split = data.split(0, config.validation_subjects, config.seed)
    runner = FoldRunner(
        config, data, tmp_path / "run", tf.distribute.get_strategy(), len(split.train_subjects), "pretrained.keras"
    )

    def start_rate(name):
        optimizer = runner.model_for(parse_method(name), 0).optimizer
        return type(optimizer).__name__, float(optimizer.learning_rate.numpy())

    assert start_rate("single_task_expression_finetuned") == ("Adam", pytest.approx(2e-4))
    assert start_rate("static") == ("Adam", pytest.approx(2e-4))  # multi-task rows start pretrained too
    scratch = start_rate("single_task_expression")
    assert scratch == (config.network_optimizer.name, pytest.approx(config.network_optimizer.learning_rate))


def test_evaluation_images_are_preprocessed_once_and_equal_the_evaluation_pipeline(tiny_data, tmp_path, monkeypatch):
    import tensorflow as tf

    import experiments.face_expression.training as training
    from data_prep.pipeline import evaluation_batches
    from experiments.face_expression.data import load_prepared

    config = tiny_config(tiny_data, tmp_path)
    data = load_prepared(config)
    split = data.split(0, config.validation_subjects, config.seed)
    runner = training.FoldRunner(
        config, data, tmp_path / "run", tf.distribute.get_strategy(), len(split.train_subjects), None
    )
    cache = runner._evaluation_images
    calls = []
    monkeypatch.setattr(
        training, "evaluation_batches", lambda images, *a: calls.append(len(images)) or evaluation_batches(images, *a)
    )
    paths = split.validation["path"].tolist()
    first = cache.take(paths)
    expected = np.concatenate(
        [b.numpy() for b in evaluation_batches(runner.store.take(paths), runner.preprocessing, 7)]
    )
    np.testing.assert_array_equal(first, expected)
    mixed = paths[::-1][:5] + split.test["path"].tolist()[:3] + paths[:2]
    np.testing.assert_array_equal(cache.take(mixed)[:5], expected[::-1][:5])
    np.testing.assert_array_equal(cache.take(paths), expected)
    assert calls == [len(paths), 3]  # each image once: the validation set, then the 3 new test images
    assert cache.take([]).shape == (0, config.image_size, config.image_size, 3)


def test_frames_without_an_expression_label_train_the_identity_branch(tiny_data, tmp_path):
    """Under Oulu's 6 classes the neutral (and contempt) frames have no expression label: they are in
    the training batches with the missing-label sentinel -1 (identity loss only), not dropped."""
    import tensorflow as tf

    from data_prep.pipeline import identity_map
    from dynamic_mtl.labels import MISSING_LABEL
    from experiments.face_expression.data import load_prepared
    from experiments.face_expression.training import FoldRunner

    config = tiny_config(tiny_data, tmp_path, expression_protocol="oulu6")
    data = load_prepared(config)
    split = data.split(0, config.validation_subjects, config.seed)
    unlabelled = int((split.train["expression"] < 0).sum())
    assert unlabelled > 0
    runner = FoldRunner(config, data, tmp_path / "run", tf.distribute.get_strategy(), len(split.train_subjects), None)
    labels = np.concatenate(
        [y["expression"].numpy() for _, y in runner.training_dataset(split, identity_map(split.train_subjects), 0)]
    )
    batches = len(split.train) // config.batch_size
    assert len(labels) == batches * config.batch_size  # every training image, labelled or not
    assert (labels == MISSING_LABEL).sum() > 0 and labels.max() < 6


def test_reduced_methods_run_on_the_reduced_folds_only_and_methods_flag_drops_them(tiny_data, tmp_path, capsys):
    from experiments.cli import main
    from experiments.face_expression.run import method_folds, run_experiment

    config = tiny_config(
        tiny_data, tmp_path, methods=["static"], reduced_methods=["static@0.2"], reduced_folds=[1], epochs=1
    )
    assert expand_methods(config) == ["static", "static@0.2"]
    assert method_folds(config, "static", [0, 1]) == [0, 1] and method_folds(config, "static@0.2", [0, 1]) == [1]
    per_fold = pd.read_csv(run_experiment(config, progress=False) / "per_fold.csv")
    assert sorted(zip(per_fold["method"], per_fold["fold"])) == [("static", 0), ("static", 1), ("static@0.2", 1)]
    with pytest.raises(ValueError, match="reduced_folds"):
        ExperimentConfig.from_dict({"reduced_methods": ["static@0.2"]})
    # `--methods` names every method the run trains: a config's reduced rows are not added to it
    config.save(tmp_path / "c.yaml")
    capsys.readouterr()
    assert main(["run", "--config", str(tmp_path / "c.yaml"), "--methods", "dynamic", "--print-config"]) == 0
    assert "reduced_methods: []" in capsys.readouterr().out


def test_one_fit_over_every_epoch_trains_bit_identically_to_one_fit_per_epoch(tiny_data, tmp_path):
    """The harness trains a fold's epochs in one ``fit``; epoch by epoch (one ``fit`` and one dataset
    per epoch, as a resumed run restarts) gives the same weights and logs, bit for bit."""
    import tensorflow as tf

    from data_prep import seeds
    from data_prep.pipeline import identity_map, steps_per_epoch
    from experiments.face_expression.data import load_prepared
    from experiments.face_expression.training import FoldRunner

    config = tiny_config(tiny_data, tmp_path, epochs=3)
    data = load_prepared(config)
    split = data.split(0, config.validation_subjects, config.seed)
    runner = FoldRunner(config, data, tmp_path / "run", tf.distribute.get_strategy(), len(split.train_subjects), None)
    method = parse_method("dwa")  # a strategy with per-epoch state (its loss history)
    id_map = identity_map(split.train_subjects)
    epoch_seeds = [seeds.EPOCH_ORDER.seed(config.seed, split.fold, e) for e in range(config.epochs)]
    steps = steps_per_epoch(len(split.train), config.batch_size)

    model = runner.model_for(method, 0)
    history = model.fit(
        runner.training_dataset(split, id_map, epoch_seeds), epochs=3, steps_per_epoch=steps, verbose=0, shuffle=False
    ).history
    together = [v.numpy() for v in model.variables]

    model = runner.model_for(method, 0)
    apart = {}
    for epoch, seed in enumerate(epoch_seeds):
        logs = model.fit(
            runner.training_dataset(split, id_map, seed),
            epochs=epoch + 1,
            initial_epoch=epoch,
            verbose=0,
            shuffle=False,
        )
        for key, values in logs.history.items():
            apart.setdefault(key, []).extend(values)
    assert len(together) == len(model.variables)
    for a, v in zip(together, model.variables):
        np.testing.assert_array_equal(a, v.numpy(), err_msg=v.path)
    assert history == apart
