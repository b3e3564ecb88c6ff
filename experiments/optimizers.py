"""One optimizer factory for every harness, and the authors' RMSProp constants in one place.

Importing this module does not import TensorFlow (the CLI's ``--help`` and config validation use the
constants); :func:`make_optimizer` imports Keras when called.

The authors' code trains with ``tf.train.RMSPropOptimizer(lr, decay=0.9, momentum=0.9, epsilon=1.0)``
(docs/fidelity.md); :data:`AUTHORS_RMSPROP` holds those constants under Keras's argument names. The
paper's "decay by 10" (Section 5.2) is a piecewise-constant learning rate over epochs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

#: The authors' RMSProp settings: decay (Keras ``rho``) 0.9, momentum 0.9, epsilon 1.0.
AUTHORS_RMSPROP: dict[str, float] = {"rho": 0.9, "momentum": 0.9, "epsilon": 1.0}
#: The weight unit's optimizer options: the authors' RMSProp, gradients clipped to a global norm of 5.
WEIGHT_UNIT_RMSPROP: dict[str, float] = {**AUTHORS_RMSPROP, "global_clipnorm": 5.0}


def make_optimizer(
    name: str,
    learning_rate: float | Sequence[float],
    options: dict[str, Any] | None = None,
    decay_epochs: Sequence[int] = (),
    steps_per_epoch: int = 1,
):
    """A new Keras optimizer by class name (``"RMSprop"``, ``"adam"``, ...) with ``options``.

    ``learning_rate``: a number, or with ``decay_epochs`` one rate per phase (``len(decay_epochs) + 1``
    values): ``learning_rate[i]`` from epoch ``decay_epochs[i - 1]`` on, as a
    ``PiecewiseConstantDecay`` over ``steps_per_epoch`` optimizer steps per epoch.
    """
    import keras

    rate: Any = learning_rate
    if decay_epochs:
        values = [float(v) for v in learning_rate]
        if len(values) != len(decay_epochs) + 1:
            raise ValueError(
                f"{len(decay_epochs)} decay epochs need {len(decay_epochs) + 1} learning rates, got {values}"
            )
        boundaries = [int(e * steps_per_epoch) for e in decay_epochs]
        rate = keras.optimizers.schedules.PiecewiseConstantDecay(boundaries, values)
    elif not isinstance(learning_rate, (int, float)):
        raise ValueError(f"learning_rate must be a number without decay_epochs, got {learning_rate!r}")
    return keras.optimizers.get({"class_name": name, "config": {"learning_rate": rate, **(options or {})}})
