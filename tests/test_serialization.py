"""Save -> load (.keras, safe_mode) -> identical predictions, for every weighting."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from conftest import small_model

import dynamic_mtl as dm


@pytest.mark.parametrize("weighting", sorted(dm.WEIGHTINGS))
def test_save_load_gives_identical_predictions(tmp_path, tiny_batch, weighting):
    """Trained, saved, loaded: the same predictions and variables, and the loaded model trains on with both
    optimizers. Steps and predictions run eagerly (``run_eagerly``, ``predict_step``): what is checked is the
    saved state, and tracing a step for each of the weightings would cost most of this test's time (traced
    training is every fit test's)."""
    x, y = tiny_batch
    model = small_model(weighting, dropout_rate=0.3)
    model.compile(
        network_optimizer=keras.optimizers.RMSprop(1e-3),
        weight_optimizer=dm.default_weight_optimizer(),
        run_eagerly=True,
    )
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    before = keras.tree.map_structure(np.asarray, model.predict_step(x))
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    assert type(loaded) is dm.DynamicMultiTaskModel
    assert type(loaded.weighting) is type(model.weighting)
    after = keras.tree.map_structure(np.asarray, loaded.predict_step(x))
    assert set(before) == set(after)
    for key in before:
        np.testing.assert_array_equal(before[key], after[key], err_msg=key)
    for a, b in zip(model.variables, loaded.variables):
        if "seed_generator" not in a.path:  # Keras does not save dropout RNG states
            np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)
    # the loaded model keeps training with both optimizers
    loaded.run_eagerly = True
    weights = [v.numpy() for v in loaded.trainable_variables]
    loaded.fit(x, y, batch_size=8, epochs=1, verbose=0)
    assert any(not np.array_equal(w, v.numpy()) for w, v in zip(weights, loaded.trainable_variables))


def test_predict_returns_embedding_and_expression_probabilities(tiny_batch):
    x, _ = tiny_batch
    out = small_model("dynamic").predict(x, verbose=0)
    assert out["embedding"].shape == (16, 16)
    np.testing.assert_allclose(np.linalg.norm(out["embedding"], axis=1), 1.0, rtol=1e-5)
    assert out["expression_probabilities"].shape == (16, 4)
    np.testing.assert_allclose(out["expression_probabilities"].sum(axis=1), 1.0, rtol=1e-5)
    assert out["task_weights"].shape == (16, 2)


def test_evaluate_reports_task_losses_and_accuracies(tiny_batch):
    x, y = tiny_batch
    model = small_model("static")
    model.compile(network_optimizer="sgd")
    logs = model.evaluate(x, y, verbose=0, return_dict=True)
    for key in ("identity_loss", "expression_loss", "identity_accuracy", "expression_accuracy"):
        assert np.isfinite(logs[key]), key


def test_paper_backbone_has_about_13m_parameters():
    """Reduced Inception-ResNet-v1 at 160 px, 80 identities, 6 expressions (authors' network: ~13.2M, docs/fidelity.md row 14)."""
    model = dm.build_face_expression_model(80, 6, backbone="inception_resnet_v1_reduced", image_size=160)
    count = model.network.count_params()
    assert 12.8e6 <= count <= 13.8e6, count
    assert tuple(model.network.output["shared"].shape) == (None, 3 * 3 * 1792)  # Mixed_7a, 3x3x1792


def test_bad_construction_is_refused():
    with pytest.raises(ValueError, match="unknown weighting"):
        small_model("nope")
    with pytest.raises(ValueError, match="unknown backbone"):
        dm.build_face_expression_model(5, 4, backbone="vgg", image_size=32)
    with pytest.raises(ValueError, match="image_size"):
        dm.build_face_expression_model(5, 4, backbone="inception_resnet_v1_reduced", image_size=32)
    with pytest.raises(ValueError, match="do not pass loss"):
        small_model("dynamic").compile(network_optimizer="sgd", loss="mse")
