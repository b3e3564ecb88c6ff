"""Checkpoint transfer: trunk + branch 1 copied by name, expression branch from the face branch,
identity_logits skipped on a class-count mismatch, clear errors otherwise; both backbones."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import dynamic_mtl as dm
from dynamic_mtl.transfer import SingleTaskFaceModel, build_single_task_network, load_network, load_pretrained


def _randomise(network, seed=0):
    """Give every weight (incl. batch-norm moving statistics) distinctive values."""
    rng = np.random.default_rng(seed)
    for layer in network.layers:
        if layer.weights:
            layer.set_weights([rng.normal(0.5, 0.2, w.shape).astype("float32") for w in layer.get_weights()])


def _pretrained(tmp_path, backbone="small_cnn", image_size=24, classes=7, embedding_size=16, **kw):
    keras.utils.set_random_seed(1)
    net = build_single_task_network(
        classes, backbone=backbone, image_size=image_size, embedding_size=embedding_size, **kw
    )
    _randomise(net)
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / f"{backbone}.keras"
    net.save(path)
    return net, path


def _weights(layer):
    return [np.asarray(w) for w in layer.get_weights()]


def _check_transfer(source, model, report, identity_copied):
    target = model.network
    src = {layer.name: layer for layer in source.layers if layer.weights}
    for name in report.copied:
        for a, b in zip(_weights(src[name]), _weights(target.get_layer(name))):
            np.testing.assert_array_equal(a, b, err_msg=name)
    trunk_and_face = [
        layer.name
        for layer in target.layers
        if layer.weights and not layer.name.startswith("expression_") and layer.name != "identity_logits"
    ]
    assert set(trunk_and_face) <= set(report.copied)
    assert ("identity_logits" in report.copied) == identity_copied
    expression = [layer.name for layer in target.layers if layer.weights and layer.name.startswith("expression_")]
    pairs = dict(report.from_face)
    assert set(pairs) == {n for n in expression if n not in ("expression_hidden", "expression_logits")}
    assert pairs, "no expression layer was initialised from the face branch"
    for exp_name, face_name in pairs.items():
        assert face_name == "face_" + exp_name[len("expression_") :]
        for a, b in zip(_weights(src[face_name]), _weights(target.get_layer(exp_name))):
            np.testing.assert_array_equal(a, b, err_msg=exp_name)
    assert set(report.not_in_checkpoint) == {"expression_hidden", "expression_logits"}


def test_small_cnn_transfer_into_multitask_model(tmp_path):
    source, path = _pretrained(tmp_path)
    model = dm.build_face_expression_model(5, 4, backbone="small_cnn", image_size=24, embedding_size=16)
    before = _weights(model.network.get_layer("identity_logits"))
    report = load_pretrained(model, path)
    _check_transfer(source, model, report, identity_copied=False)
    assert dict(report.skipped)["identity_logits"] == "class count differs: checkpoint 7, model 5"
    for a, b in zip(before, _weights(model.network.get_layer("identity_logits"))):
        np.testing.assert_array_equal(a, b)  # skipped layer untouched
    x = np.random.default_rng(0).normal(size=(4, 24, 24, 3)).astype("float32")
    np.testing.assert_allclose(
        model.predict(x, verbose=0)["embedding"], source.predict(x, verbose=0)["embedding"], rtol=1e-5, atol=1e-6
    )
    assert "identity_logits" in report.summary()


def test_same_class_count_copies_identity_logits_and_flag_off_keeps_expression(tmp_path):
    source, path = _pretrained(tmp_path, classes=5)
    model = dm.build_face_expression_model(5, 4, backbone="small_cnn", image_size=32, embedding_size=16)
    report = load_pretrained(model.network, path)  # a bare network works too; other image size
    _check_transfer(source, model, report, identity_copied=True)
    assert any("input shapes differ" in n for n in report.notes)
    fresh = dm.build_face_expression_model(5, 4, backbone="small_cnn", image_size=24, embedding_size=16)
    kept = _weights(fresh.network.get_layer("expression_conv1_conv"))
    report = load_pretrained(fresh, path, expression_from_face=False)
    assert report.from_face == []
    np.testing.assert_array_equal(kept[0], _weights(fresh.network.get_layer("expression_conv1_conv"))[0])


def test_training_checkpoint_and_run_folder_are_accepted(tmp_path):
    source, _ = _pretrained(tmp_path)
    trainer = SingleTaskFaceModel(source, center_loss_weight=0.01)
    trainer.compile(keras.optimizers.Adam(1e-3))
    trainer.save(tmp_path / "epoch_001.keras")
    run = tmp_path / "run"
    run.mkdir()
    source.save(run / "network.keras")
    for path in (tmp_path / "epoch_001.keras", run):
        assert load_network(path).get_layer("face_bottleneck") is not None
        model = dm.build_face_expression_model(5, 4, backbone="small_cnn", image_size=24, embedding_size=16)
        _check_transfer(source, model, load_pretrained(model, path), identity_copied=False)


def test_mismatches_raise_clear_errors(tmp_path):
    _, path = _pretrained(tmp_path)
    other = dm.build_face_expression_model(5, 4, backbone="small_cnn", image_size=24, embedding_size=32)
    with pytest.raises(ValueError, match="face_bottleneck: shape mismatch"):
        load_pretrained(other, path)
    report = load_pretrained(other, path, strict=False)
    assert "face_bottleneck" in dict(report.skipped) and "trunk_stage1_conv" in report.copied
    _, narrow = _pretrained(tmp_path / "w8", backbone_options={"width": 8})
    with pytest.raises(ValueError, match="by name but not by shape.*trunk_stage1_conv: shape mismatch"):
        load_pretrained(
            dm.build_face_expression_model(5, 4, backbone="small_cnn", image_size=24, embedding_size=16), narrow
        )
    report = load_pretrained(
        dm.build_face_expression_model(
            5, 4, backbone="small_cnn", image_size=24, embedding_size=16, backbone_options={"width": 8}
        ),
        narrow,
    )
    assert "trunk_stage1_conv" in report.copied
    with pytest.raises(FileNotFoundError, match="make pretrain"):
        load_pretrained(other, tmp_path / "missing.keras")


@pytest.mark.slow
def test_inception_transfer_and_backbone_mismatch(tmp_path):
    source, path = _pretrained(tmp_path, backbone="inception_resnet_v1_reduced", image_size=75, embedding_size=32)
    model = dm.build_face_expression_model(
        3, 6, backbone="inception_resnet_v1_reduced", image_size=75, embedding_size=32
    )
    report = load_pretrained(model, path)
    _check_transfer(source, model, report, identity_copied=False)
    assert ("expression_block8_final_up", "face_block8_final_up") in report.from_face
    assert "mixed_7a_b2c_conv" in report.copied
    small = dm.build_face_expression_model(3, 6, backbone="small_cnn", image_size=75, embedding_size=32)
    with pytest.raises(ValueError, match="no layer of the checkpoint matches the model by name"):
        load_pretrained(small, path)
