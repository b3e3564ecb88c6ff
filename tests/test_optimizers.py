"""The shared optimizer factory builds the same optimizers the harnesses built before it existed."""

from __future__ import annotations

from pathlib import Path

import pytest

keras = pytest.importorskip("keras")

from experiments.face_expression.config import CONFIG_DIR, ExperimentConfig  # noqa: E402
from experiments.optimizers import AUTHORS_RMSPROP, WEIGHT_UNIT_RMSPROP, make_optimizer  # noqa: E402
from experiments.pretraining.train import PretrainConfig  # noqa: E402
from experiments.pretraining.train import make_optimizer as pretrain_optimizer  # noqa: E402


def _same(a, b) -> None:
    assert type(a) is type(b)
    ignore = {"name"}  # Keras numbers the names of optimizers built in one process (adam, adam_1, ...)
    assert {k: v for k, v in a.get_config().items() if k not in ignore} == {
        k: v for k, v in b.get_config().items() if k not in ignore
    }


def _config_reference(c, steps):
    """How ``OptimizerConfig.build`` constructed the optimizer before the factory."""
    rate = c.learning_rate
    if c.decay_epochs:
        rate = keras.optimizers.schedules.PiecewiseConstantDecay(
            [int(e) * steps for e in c.decay_epochs], [c.learning_rate / 10**i for i in range(len(c.decay_epochs) + 1)]
        )
    return keras.optimizers.get({"class_name": c.name, "config": {"learning_rate": rate, **c.options}})


@pytest.mark.parametrize("path", sorted(CONFIG_DIR.glob("*.yaml")), ids=lambda p: Path(p).stem)
def test_experiment_optimizers_are_unchanged(path):
    config = ExperimentConfig.load(path)
    for c in (config.network_optimizer, config.weight_optimizer):
        _same(c.build(13), _config_reference(c, 13))


def _pretrain_reference(cfg, steps):
    """How pretraining constructed its optimizer before the factory."""
    lr = cfg.learning_rate
    if cfg.lr_decay_epochs:
        lr = keras.optimizers.schedules.PiecewiseConstantDecay(
            [int(e * steps) for e in cfg.lr_decay_epochs],
            [cfg.learning_rate * cfg.lr_decay_factor**i for i in range(len(cfg.lr_decay_epochs) + 1)],
        )
    extra = {"global_clipnorm": cfg.global_clipnorm} if cfg.global_clipnorm else {}
    if cfg.optimizer == "adam":
        return keras.optimizers.Adam(lr, **extra)
    if cfg.optimizer == "rmsprop":
        return keras.optimizers.RMSprop(lr, rho=0.9, momentum=0.9, epsilon=1.0, **extra)
    return keras.optimizers.SGD(lr, momentum=0.9, **extra)


@pytest.mark.parametrize("name", ["adam", "rmsprop", "sgd"])
@pytest.mark.parametrize("decay", [[], [2, 5]])
def test_pretraining_optimizers_are_unchanged(tmp_path, name, decay):
    for clip in (None, 5.0):
        cfg = PretrainConfig(
            data=str(tmp_path), out=str(tmp_path), optimizer=name, learning_rate=0.1, lr_decay_epochs=decay,
            global_clipnorm=clip,
        )  # fmt: skip
        _same(pretrain_optimizer(cfg, 11), _pretrain_reference(cfg, 11))


def test_the_authors_rmsprop_constants_are_the_ones_everywhere():
    import dynamic_mtl as dm

    assert AUTHORS_RMSPROP == {"rho": 0.9, "momentum": 0.9, "epsilon": 1.0}
    assert dm.DEFAULT_WEIGHT_OPTIMIZER["config"] == {"learning_rate": 0.1, **WEIGHT_UNIT_RMSPROP}
    assert ExperimentConfig().weight_optimizer.options == WEIGHT_UNIT_RMSPROP
    for path in CONFIG_DIR.glob("*.yaml"):  # the configs spell the weight unit's optimizer out
        assert ExperimentConfig.load(path).weight_optimizer.options == WEIGHT_UNIT_RMSPROP, path.name


def test_the_factory_refuses_a_schedule_of_the_wrong_length():
    with pytest.raises(ValueError, match="2 decay epochs need 3 learning rates"):
        make_optimizer("SGD", [0.1, 0.01], decay_epochs=[1, 2])
