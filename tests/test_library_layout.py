"""The library's internal homes: the single-task model's module, the shared custom-step plumbing,
the replica helpers and the Keras workarounds (behaviour unchanged by the move)."""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import pytest

import dynamic_mtl as dm
from dynamic_mtl import compat, replicas, single_task, transfer
from dynamic_mtl.custom_step import CustomStepModel

SAVED = Path(__file__).parent / "data" / "saved_before_single_task_move"


def _inputs():
    return np.random.default_rng(0).uniform(size=(4, 16, 16, 3)).astype("float32")


def test_single_task_model_import_paths_and_registered_names():
    assert dm.SingleTaskFaceModel is single_task.SingleTaskFaceModel is transfer.SingleTaskFaceModel
    assert transfer.build_single_task_network is single_task.build_single_task_network
    assert keras.saving.get_registered_name(dm.SingleTaskFaceModel) == "dynamic_mtl>SingleTaskFaceModel"
    assert keras.saving.get_registered_name(dm.DynamicMultiTaskModel) == "dynamic_mtl>DynamicMultiTaskModel"
    assert issubclass(dm.SingleTaskFaceModel, CustomStepModel) and issubclass(dm.DynamicMultiTaskModel, CustomStepModel)


@pytest.mark.parametrize("name,key,output", [("single_task", "single_task_embedding", "embedding"),
                                             ("multi_task", "multi_task_identity", "identity_probabilities")])  # fmt: skip
def test_models_saved_before_the_move_load_compiled_and_predict_the_same(name, key, output):
    """The files were saved (compiled, after one step) by the code where SingleTaskFaceModel lived in
    dynamic_mtl/transfer.py; they load with their optimizers and give the predictions recorded then."""
    model = keras.saving.load_model(SAVED / f"{name}.keras", compile=True, safe_mode=True)
    assert model.compiled and model.optimizer.built
    expected = json.loads((SAVED / "predictions.json").read_text())[key]
    np.testing.assert_allclose(model.predict(_inputs(), verbose=0)[output][:2, :3], expected, rtol=1e-5, atol=1e-6)


def test_compile_configs_keep_their_keys():
    network = dm.build_single_task_network(
        5, backbone="small_cnn", image_size=16, embedding_size=8, backbone_options={"width": 4}
    )
    model = dm.SingleTaskFaceModel(network)
    assert model.get_compile_config() is None
    model.compile(optimizer=keras.optimizers.SGD(0.5))
    config = model.get_compile_config()
    assert list(config) == ["optimizer", "steps_per_execution", "jit_compile"]
    clone = dm.SingleTaskFaceModel.from_config(model.get_config())
    clone.compile_from_config(config)
    assert isinstance(clone.optimizer, keras.optimizers.SGD) and float(clone.optimizer.learning_rate) == 0.5
    assert [m.name for m in model.metrics] == ["loss", "softmax_loss", "center_loss", "accuracy"]

    multi = dm.build_face_expression_model(
        5, 3, backbone="small_cnn", image_size=16, embedding_size=8, backbone_options={"width": 4}
    )
    multi.compile(network_optimizer="sgd")
    assert list(multi.get_compile_config()) == [
        "network_optimizer", "weight_optimizer", "steps_per_execution", "jit_compile",
    ]  # fmt: skip


def test_replica_helpers_are_the_identity_outside_a_distributed_step():
    import tensorflow as tf

    assert replicas.num_replicas() == 1
    value = tf.constant([1.0, 2.0])
    assert replicas.sum_over_replicas(value) is value
    assert not replicas.is_multi_worker(tf.distribute.get_strategy())
    assert not replicas.is_multi_worker(None)


def test_multi_worker_log_reshape_only_under_multi_worker(monkeypatch):
    import tensorflow as tf

    logs = {"loss": tf.constant(1.5)}
    assert compat.multi_worker_logs(logs, tf.distribute.get_strategy()) is logs
    monkeypatch.setattr(compat, "is_multi_worker", lambda strategy: True)
    assert compat.multi_worker_logs(logs, None)["loss"].shape == (1,)


def test_a_prebuilt_model_skips_the_symbolic_build_only_when_compiled_without_keras_losses(monkeypatch):
    calls = []
    monkeypatch.setattr(keras.Model, "_maybe_symbolic_build", lambda self, **kw: calls.append(kw), raising=False)
    network = dm.build_single_task_network(
        5, backbone="small_cnn", image_size=16, embedding_size=8, backbone_options={"width": 4}
    )
    model = dm.SingleTaskFaceModel(network)
    model.compile(optimizer="sgd")
    model._maybe_symbolic_build(data_batch=None)
    assert calls == []  # built and optimizer built: nothing left to build
    model.compile(optimizer="sgd", metrics=["accuracy"])  # Keras compile metrics still need the build
    model._maybe_symbolic_build(data_batch=None)
    assert len(calls) == 1
